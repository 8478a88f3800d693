//! The guest's TCP/IP: `smoltcp` over the virtio-net device, an address by
//! DHCP (QEMU user networking through Duet's uplink: the host is 10.0.2.2)
//! kept up for as long as the guest runs ([`Net`]), TCP connections for
//! the mail protocols, and one check of the whole path, `mail.hello`: a
//! TCP connection that sends a line and prints the line that comes back.
//! Waiting (for DHCP, a connection, bytes) sleeps in WFI until the NIC's
//! interrupt or smoltcp's next timer ([`sleep`]), never spins.

use crate::devices::{Hal, Transport};
use crate::disk::Disk;
use crate::{console, gic, send, sync, tls};
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTVCT_EL0};
use alloc::vec;
use core::cell::RefCell;
use core::net::SocketAddrV4;
use duet_mail::provision::Provision;
use duet_mail::store::{Outbox, Store};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};
use virtio_drivers::device::net::{RxBuffer, VirtIONet};

pub const QUEUE: usize = 16;
/// A 1514-byte frame and the 12-byte virtio-net header fit.
pub const BUFFER: usize = 2048;
const MTU: usize = 1514;

pub type Nic = VirtIONet<Hal, Transport, QUEUE>;

/// Now, from the virtual counter.
pub fn now() -> Instant {
    let ticks = CNTVCT_EL0.get();
    let frequency = CNTFRQ_EL0.get().max(1);
    Instant::from_micros((ticks as u128 * 1_000_000 / frequency as u128) as i64)
}

/// `at` in virtual counter ticks.
fn ticks(at: Instant) -> u64 {
    let frequency = CNTFRQ_EL0.get().max(1);
    (at.total_micros().max(0) as u128 * frequency as u128 / 1_000_000) as u64
}

/// Sleeps until an interrupt (a frame, a key) or `until`, then takes the
/// NIC's interrupt and the keys typed meanwhile.
pub fn sleep(port: &Port, until: Instant) {
    gic::wait_until(Some(ticks(until)));
    port.nic.borrow_mut().ack_interrupt();
    console::pump();
}

/// The NIC as smoltcp's `Device`. The tokens share it through a `RefCell`
/// (a receive token also hands its buffer back to the device).
pub struct Port {
    nic: RefCell<Nic>,
}

pub struct Rx<'a> {
    nic: &'a RefCell<Nic>,
    buffer: RxBuffer,
}

pub struct Tx<'a> {
    nic: &'a RefCell<Nic>,
}

impl smoltcp::phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(self.buffer.packet());
        if let Err(e) = self.nic.borrow_mut().recycle_rx_buffer(self.buffer) {
            say!("mail: net: cannot give a receive buffer back: {e}");
        }
        result
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut nic = self.nic.borrow_mut();
        let mut buffer = nic.new_tx_buffer(len);
        let result = f(buffer.packet_mut());
        if let Err(e) = nic.send(buffer) {
            say!("mail: net: frame of {len} bytes not sent: {e}");
        }
        result
    }
}

impl Device for Port {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let buffer = self.nic.borrow_mut().receive().ok()?;
        Some((Rx { nic: &self.nic, buffer }, Tx { nic: &self.nic }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.nic.borrow().can_send().then_some(Tx { nic: &self.nic })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// How long each step may take.
const TCP_WAIT: Duration = Duration::from_secs(30);
pub const SYNC_WAIT: Duration = Duration::from_secs(120);
/// The longest sleep while smoltcp has no timer (DHCP keeps one).
const IDLE_POLL: Duration = Duration::from_secs(60);

/// The network, up for as long as the guest runs: the interface, its
/// sockets and the DHCP client.
pub struct Net {
    iface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    address: Option<Ipv4Cidr>,
    next_port: u16,
}

/// Why no connection was made.
#[derive(Clone, Debug)]
pub enum NetError {
    NoAddress,
    NoConnection(SocketAddrV4),
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            NetError::NoAddress => write!(f, "no network address"),
            NetError::NoConnection(to) => write!(f, "no TCP connection to {to}"),
        }
    }
}

impl Net {
    /// The NIC with smoltcp over it; DHCP starts. `seed` spreads the local
    /// ports of successive boots.
    pub fn new(nic: Nic, seed: u32) -> Net {
        let mac = EthernetAddress(nic.mac_address());
        let mut port = Port { nic: RefCell::new(nic) };
        let config = Config::new(HardwareAddress::Ethernet(mac));
        let iface = Interface::new(config, &mut port, now());
        let mut sockets: SocketSet<'static> = SocketSet::new(vec![]);
        let dhcp = sockets.add(dhcpv4::Socket::new());
        let next_port = 49152 + (seed % 8192) as u16;
        Net { iface, port, sockets, dhcp, address: None, next_port }
    }

    /// Moves frames and timers along; takes a DHCP lease (or its loss).
    pub fn poll(&mut self) {
        self.iface.poll(now(), &mut self.port, &mut self.sockets);
        match self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll() {
            Some(dhcpv4::Event::Configured(lease)) => {
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(lease.address));
                });
                self.iface.routes_mut().remove_default_ipv4_route();
                if let Some(router) = lease.router {
                    let _ = self.iface.routes_mut().add_default_ipv4_route(router);
                }
                say!(
                    "mail: net: address {} by DHCP, router {}",
                    lease.address,
                    lease.router.map_or(Ipv4Address::UNSPECIFIED, |r| r)
                );
                self.address = Some(lease.address);
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                if self.address.take().is_some() {
                    say!("mail: net: DHCP lease lost; offline");
                }
            }
            None => {}
        }
    }

    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.address
    }

    /// When smoltcp next needs a poll (its timers: DHCP, retransmits).
    pub fn next_poll(&mut self) -> Instant {
        let now = now();
        now + self.iface.poll_delay(now, &self.sockets).unwrap_or(IDLE_POLL).min(IDLE_POLL)
    }

    /// Sleeps until an interrupt or `until` (at the latest, smoltcp's next
    /// timer).
    pub fn sleep(&mut self, until: Instant) {
        let until = until.min(self.next_poll());
        sleep(&self.port, until);
    }

    /// Waits up to `wait` for a DHCP lease.
    pub fn wait_for_address(&mut self, wait: Duration) -> Option<Ipv4Cidr> {
        let deadline = now() + wait;
        loop {
            self.poll();
            if self.address.is_some() {
                return self.address;
            }
            if now() > deadline {
                say!("mail: net: no DHCP lease in {} s", wait.secs());
                return None;
            }
            self.sleep(deadline);
        }
    }

    fn local_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = if port == u16::MAX { 49152 } else { port + 1 };
        port
    }

    /// Opens a TCP connection to `to`, runs `work` on it (until `wait` has
    /// passed), and closes it.
    pub fn connected<R>(
        &mut self,
        to: SocketAddrV4,
        wait: Duration,
        work: impl FnOnce(tls::Stream) -> R,
    ) -> Result<R, NetError> {
        if self.address.is_none() {
            return Err(NetError::NoAddress);
        }
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 8192]),
            tcp::SocketBuffer::new(vec![0; 8192]),
        );
        let handle = self.sockets.add(socket);
        let remote = (*to.ip(), to.port());
        let local = self.local_port();
        let sockets = &mut self.sockets;
        if let Err(e) =
            sockets.get_mut::<tcp::Socket>(handle).connect(self.iface.context(), remote, local)
        {
            say!("mail: net: cannot connect to {to}: {e}");
            sockets.remove(handle);
            return Err(NetError::NoConnection(to));
        }
        let deadline = now() + wait;
        let connect_deadline = now() + TCP_WAIT.min(wait);
        loop {
            self.poll();
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if socket.may_send() {
                break;
            }
            if now() > connect_deadline || !socket.is_open() {
                say!("mail: net: no TCP connection to {to}");
                self.sockets.remove(handle);
                return Err(NetError::NoConnection(to));
            }
            self.sleep(connect_deadline);
        }
        let stream = tls::Stream {
            iface: &mut self.iface,
            port: &mut self.port,
            sockets: &mut self.sockets,
            handle,
            deadline,
        };
        let result = work(stream);
        let end = now() + Duration::from_millis(500);
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        while now() < end && self.sockets.get::<tcp::Socket>(handle).is_open() {
            self.poll();
            self.sleep(end);
        }
        self.sockets.get_mut::<tcp::Socket>(handle).abort();
        self.poll();
        self.sockets.remove(handle);
        Ok(result)
    }
}

/// TLS work to do after DHCP, with the provisioned servers.
pub struct TlsWork<'a> {
    pub provision: &'a Provision,
    pub rng: &'a mut tls::Rng,
    pub action: TlsAction<'a>,
}

pub enum TlsAction<'a> {
    /// Exchange a line (`mail.tls-hello`).
    Hello,
    /// Sync the inbox into the store (`mail.sync`).
    Sync(&'a mut Store<Disk>),
    /// Send the outbox (`mail.send`).
    Send(&'a mut Store<Disk>),
}

/// The one-shot steps: gets an address by DHCP (returned, as text, for the
/// status line); then, if `hello` is set, exchanges a line with it, and
/// does `tls_work`.
pub fn run(
    net: &mut Net,
    hello: Option<SocketAddrV4>,
    tls_work: Option<TlsWork>,
) -> Option<alloc::string::String> {
    let address = net.wait_for_address(Duration::from_secs(30))?;
    if let Some(hello) = hello {
        exchange_line(net, hello);
    }
    if let Some(work) = tls_work {
        self::tls_work(net, work);
    }
    Some(alloc::format!("{address}"))
}

/// Does `work`: a line over TLS or a sync with the provisioned IMAP
/// address, or the outbox sent to the SMTP address, an entry a connection.
fn tls_work(net: &mut Net, work: TlsWork) {
    let provision = work.provision;
    let rng = work.rng;
    match work.action {
        TlsAction::Hello => {
            let to = provision.imap;
            let _ = net.connected(to, TCP_WAIT, |stream| {
                match tls::exchange_line(
                    stream,
                    rng,
                    &provision.ca,
                    &provision.server_name,
                    b"hello from the mail guest\n",
                ) {
                    Ok(line) => say!("mail: tls: {} verified, got {line:?}", provision.server_name),
                    Err(e) => say!("mail: tls: connection to {to} refused: {e:?}; nothing sent"),
                }
            });
        }
        TlsAction::Sync(store) => {
            let _ = sync::once(net, rng, provision, store, false);
        }
        TlsAction::Send(store) => {
            // An entry at a time, the first waiting first, until one fails.
            let waiting = store.outbox().filter(|(_, state)| *state != Outbox::Sent).count();
            for _ in 0..waiting {
                if send::next(net, rng, provision, store, None).1
                    != duet_mail::schedule::Outcome::Done
                {
                    break;
                }
            }
        }
    }
}

/// Connects to `to`, sends a line, prints the line that comes back.
fn exchange_line(net: &mut Net, to: SocketAddrV4) {
    let line = b"hello from the mail guest\n";
    let result = net.connected(to, TCP_WAIT, |mut stream| {
        use embedded_io::{Read, Write};
        if stream.write_all(line).and_then(|()| stream.flush()).is_err() {
            say!("mail: net: {to} closed the connection before a line came");
            return;
        }
        say!("mail: net: connected to {to}, line sent");
        let mut got = alloc::vec::Vec::new();
        let mut buffer = [0; 512];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => {
                    say!("mail: net: {to} closed the connection before a line came");
                    return;
                }
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
            if let Some(end) = got.iter().position(|&b| b == b'\n') {
                let reply = core::str::from_utf8(&got[..end]).unwrap_or("(not UTF-8)");
                say!("mail: net: got {reply:?}");
                return;
            }
            if got.len() > 512 {
                say!("mail: net: no line end in {} bytes", got.len());
                return;
            }
        }
    });
    if let Err(e) = result {
        say!("mail: net: {e}");
    }
}
