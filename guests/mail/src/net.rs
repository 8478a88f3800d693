//! The guest's TCP/IP: `smoltcp` over the virtio-net device, an address by
//! DHCP (QEMU user networking through Duet's uplink: the host is 10.0.2.2),
//! and for now one check of the whole path, `mail.hello`: a TCP connection
//! that sends a line and prints the line that comes back.

use crate::devices::{Hal, Transport};
use crate::disk::Disk;
use crate::{send, sync, tls};
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTVCT_EL0};
use alloc::vec;
use core::cell::RefCell;
use core::net::SocketAddrV4;
use duet_mail::provision::Provision;
use duet_mail::store::{Outbox, Store};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
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
const DHCP_WAIT: Duration = Duration::from_secs(30);
const TCP_WAIT: Duration = Duration::from_secs(30);
const SYNC_WAIT: Duration = Duration::from_secs(120);

/// TLS work to do after DHCP, with the provisioned IMAP server.
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

/// Gets an address by DHCP (returned, as text, for the status line);
/// then, if `hello` is set, exchanges a line with it, and if `tls_check`
/// is, one over TLS with the provisioned IMAP address.
pub fn run(
    nic: Nic,
    hello: Option<SocketAddrV4>,
    tls_work: Option<TlsWork>,
) -> Option<alloc::string::String> {
    let mac = EthernetAddress(nic.mac_address());
    let mut port = Port { nic: RefCell::new(nic) };
    let config = Config::new(HardwareAddress::Ethernet(mac));
    let mut iface = Interface::new(config, &mut port, now());
    let mut sockets: SocketSet<'static> = SocketSet::new(vec![]);
    let dhcp = sockets.add(dhcpv4::Socket::new());

    let start = now();
    let address = loop {
        iface.poll(now(), &mut port, &mut sockets);
        if let Some(dhcpv4::Event::Configured(lease)) =
            sockets.get_mut::<dhcpv4::Socket>(dhcp).poll()
        {
            iface.update_ip_addrs(|addrs| {
                addrs.clear();
                let _ = addrs.push(IpCidr::Ipv4(lease.address));
            });
            if let Some(router) = lease.router {
                let _ = iface.routes_mut().add_default_ipv4_route(router);
            }
            say!(
                "mail: net: address {} by DHCP, router {}",
                lease.address,
                lease.router.map_or(Ipv4Address::UNSPECIFIED, |r| r)
            );
            break lease.address;
        }
        if now() - start > DHCP_WAIT {
            say!("mail: net: no DHCP lease in {} s", DHCP_WAIT.secs());
            return None;
        }
    };
    if let Some(hello) = hello {
        exchange_line(&mut iface, &mut port, &mut sockets, hello);
    }
    if let Some(work) = tls_work {
        self::tls_work(&mut iface, &mut port, &mut sockets, work);
    }
    Some(alloc::format!("{address}"))
}

/// Does `work`: a line over TLS or a sync with the provisioned IMAP
/// address, or the outbox sent to the SMTP address, an entry a connection.
fn tls_work(
    iface: &mut Interface,
    port: &mut Port,
    sockets: &mut SocketSet<'static>,
    work: TlsWork,
) {
    let provision = work.provision;
    let rng = work.rng;
    match work.action {
        TlsAction::Hello => {
            let to = provision.imap;
            connected(
                iface,
                port,
                sockets,
                to,
                49153,
                TCP_WAIT,
                |stream| match tls::exchange_line(
                    stream,
                    rng,
                    &provision.ca,
                    &provision.server_name,
                    b"hello from the mail guest\n",
                ) {
                    Ok(line) => say!("mail: tls: {} verified, got {line:?}", provision.server_name),
                    Err(e) => say!("mail: tls: connection to {to} refused: {e:?}; nothing sent"),
                },
            );
        }
        TlsAction::Sync(store) => {
            let to = provision.imap;
            connected(iface, port, sockets, to, 49154, SYNC_WAIT, |stream| {
                match sync::run(stream, rng, provision, store) {
                    Ok(report) => say!(
                        "mail: sync: {} new messages, {} flag updates; {} stored",
                        report.new,
                        report.flags,
                        store.messages().count()
                    ),
                    Err(e) => say!("mail: sync with {to} failed: {e}; the store keeps what it has"),
                }
            });
        }
        TlsAction::Send(store) => {
            let to = provision.smtp;
            let waiting: alloc::vec::Vec<(u64, Outbox)> =
                store.outbox().filter(|(_, state)| *state != Outbox::Sent).collect();
            for (n, (id, state)) in waiting.into_iter().enumerate() {
                if state == Outbox::Uncertain {
                    // The server may have it: never sent again blindly.
                    say!("mail: send: outbox entry {id} was cut off mid-send; left for checking");
                    continue;
                }
                connected(iface, port, sockets, to, 49200 + n as u16, TCP_WAIT, |stream| {
                    match send::one(stream, rng, provision, store, id) {
                        Ok(()) => say!("mail: send: outbox entry {id} sent"),
                        Err(e) => say!("mail: send: outbox entry {id} not sent: {e}"),
                    }
                });
            }
        }
    }
}

/// Opens a TCP connection to `to` from `local_port`, runs `work` on it
/// (until `wait` has passed), and closes it.
fn connected(
    iface: &mut Interface,
    port: &mut Port,
    sockets: &mut SocketSet<'static>,
    to: SocketAddrV4,
    local_port: u16,
    wait: Duration,
    work: impl FnOnce(tls::Stream),
) {
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 8192]),
        tcp::SocketBuffer::new(vec![0; 8192]),
    );
    let handle = sockets.add(socket);
    let remote = (*to.ip(), to.port());
    if let Err(e) =
        sockets.get_mut::<tcp::Socket>(handle).connect(iface.context(), remote, local_port)
    {
        say!("mail: net: cannot connect to {to}: {e}");
        sockets.remove(handle);
        return;
    }
    let deadline = now() + wait;
    loop {
        iface.poll(now(), port, sockets);
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if socket.may_send() {
            break;
        }
        if now() > deadline || !socket.is_open() {
            say!("mail: net: no TCP connection to {to}");
            sockets.remove(handle);
            return;
        }
    }
    work(tls::Stream { iface, port, sockets, handle, deadline });
    let end = now() + Duration::from_millis(500);
    sockets.get_mut::<tcp::Socket>(handle).close();
    while now() < end {
        iface.poll(now(), port, sockets);
    }
    sockets.remove(handle);
}

/// Connects to `to`, sends a line, prints the line that comes back.
fn exchange_line(
    iface: &mut Interface,
    port: &mut Port,
    sockets: &mut SocketSet,
    to: SocketAddrV4,
) {
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    let handle = sockets.add(socket);
    let remote = (*to.ip(), to.port());
    if let Err(e) = sockets.get_mut::<tcp::Socket>(handle).connect(iface.context(), remote, 49152) {
        say!("mail: net: cannot connect to {to}: {e}");
        return;
    }
    let line = b"hello from the mail guest\n";
    let (mut sent, mut got) = (false, alloc::vec::Vec::new());
    let start = now();
    loop {
        iface.poll(now(), port, sockets);
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !sent && socket.may_send() {
            match socket.send_slice(line) {
                Ok(n) if n == line.len() => {
                    say!("mail: net: connected to {to}, line sent");
                    sent = true;
                }
                _ => {}
            }
        }
        if socket.can_recv() {
            let mut buffer = [0; 512];
            if let Ok(n) = socket.recv_slice(&mut buffer) {
                got.extend_from_slice(&buffer[..n]);
            }
            if let Some(end) = got.iter().position(|&b| b == b'\n') {
                let reply = core::str::from_utf8(&got[..end]).unwrap_or("(not UTF-8)");
                say!("mail: net: got {reply:?}");
                socket.close();
                break;
            }
            if got.len() > 512 {
                say!("mail: net: no line end in {} bytes", got.len());
                socket.abort();
                break;
            }
        }
        if sent && !socket.is_active() {
            say!("mail: net: {to} closed the connection before a line came");
            return;
        }
        if now() - start > TCP_WAIT {
            say!("mail: net: no line from {to} in {} s", TCP_WAIT.secs());
            return;
        }
    }
    // Let the FIN go out.
    let end = now();
    while now() - end < Duration::from_millis(500) {
        iface.poll(now(), port, sockets);
    }
}
