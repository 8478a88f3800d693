//! Duet's network: the switch between the VMs' NICs and the uplink (the
//! physical NIC Duet drives), and the glue that makes a switch port a
//! [`NetPort`] for a VM's virtio-net device.
//!
//! Who calls what: a VM's virtio-net model calls [`SwitchPort::transmit`]
//! when its guest sends; frames for the uplink go straight out through the
//! physical NIC, frames for other VMs wait in their ports' queues and the
//! VMs are marked in [`Network::take_pending`], which the exit path and the
//! NIC's interrupt handler read to tell those VMs' devices (never while
//! holding a device lock: no lock order between two VMs' devices).

pub mod switch;

use crate::vdev::virtio::backend::NetPort;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;
pub use switch::{mac_for, Drops, Mac, PortId, Switch};

/// The physical side of the switch: a NIC Duet drives.
pub trait Uplink: Send {
    /// Acknowledges the device's interrupt, before its queue is read.
    fn acknowledge(&mut self) {}
    /// Sends one whole Ethernet frame; false if the device refused it.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Takes the next received frame into `buffer`, returning its length.
    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize>;
}

/// This boot's network, once the VMs are built.
pub static NETWORK: spin::Once<Arc<Network>> = spin::Once::new();

/// The switch and the uplink, shared by every port.
pub struct Network {
    inner: Mutex<Inner>,
    /// VMs with frames waiting that they have not been told about (bit =
    /// VM index).
    pending: AtomicU32,
}

struct Inner {
    switch: Switch,
    uplink: Option<Box<dyn Uplink>>,
    /// Frames the physical NIC refused.
    uplink_errors: u64,
}

impl Network {
    pub fn new(switch: Switch, uplink: Option<Box<dyn Uplink>>) -> Arc<Network> {
        Arc::new(Network {
            inner: Mutex::new(Inner { switch, uplink, uplink_errors: 0 }),
            pending: AtomicU32::new(0),
        })
    }

    /// VM `vm`'s port, if it has one.
    pub fn port(self: &Arc<Self>, vm: usize) -> Option<SwitchPort> {
        let inner = self.inner.lock();
        let mac = inner.switch.mac_of(vm)?;
        Some(SwitchPort { network: self.clone(), vm, mac })
    }

    /// The port whose MAC is `mac` (a VM's MAC comes from its name).
    pub fn port_with_mac(self: &Arc<Self>, mac: Mac) -> Option<SwitchPort> {
        let vm = self.inner.lock().switch.vm_with_mac(mac)?;
        self.port(vm)
    }

    /// Whether some VM has frames it has not been told about.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }

    /// Takes the set of VMs with frames they have not been told about.
    pub fn take_pending(&self) -> u32 {
        self.pending.swap(0, Ordering::AcqRel)
    }

    /// Moves every frame the physical NIC has received into the switch;
    /// returns how many.
    pub fn poll_uplink(&self) -> usize {
        let mut buffer = [0u8; switch::MAX_FRAME];
        let mut count = 0;
        let mut inner = self.inner.lock();
        if let Some(uplink) = inner.uplink.as_mut() {
            uplink.acknowledge();
        }
        while let Some(len) = inner.uplink.as_mut().and_then(|u| u.receive(&mut buffer)) {
            let reached = inner.switch.forward(PortId::Uplink, &buffer[..len]);
            self.pending.fetch_or(reached, Ordering::AcqRel);
            count += 1;
        }
        count
    }

    /// The switch's drop counters, frames forwarded and uplink send errors.
    pub fn counters(&self) -> (Drops, u64, u64) {
        let inner = self.inner.lock();
        (inner.switch.drops, inner.switch.forwarded, inner.uplink_errors)
    }
}

impl Inner {
    /// Sends what waits for the uplink.
    fn flush_uplink(&mut self) {
        while let Some(frame) = self.switch.take_for_uplink() {
            let sent = self.uplink.as_mut().is_some_and(|uplink| uplink.send(&frame));
            if !sent {
                self.uplink_errors += 1;
            }
        }
    }
}

/// A VM's port on the switch.
pub struct SwitchPort {
    network: Arc<Network>,
    vm: usize,
    mac: Mac,
}

impl NetPort for SwitchPort {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn transmit(&mut self, frame: &[u8]) {
        let mut inner = self.network.inner.lock();
        let reached = inner.switch.forward(PortId::Vm(self.vm), frame);
        inner.flush_uplink();
        drop(inner);
        self.network.pending.fetch_or(reached, Ordering::AcqRel);
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
        loop {
            let frame = self.network.inner.lock().switch.take(self.vm)?;
            // Too long for the guest's buffer: dropped, as the trait says.
            if let Some(room) = buffer.get_mut(..frame.len()) {
                room.copy_from_slice(&frame);
                return Some(frame.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;

    /// A physical NIC that records what it sends and replays what it is given.
    #[derive(Default)]
    struct FakeNic {
        sent: Arc<Mutex<Vec<Vec<u8>>>>,
        incoming: Arc<Mutex<VecDeque<Vec<u8>>>>,
    }

    impl Uplink for FakeNic {
        fn send(&mut self, frame: &[u8]) -> bool {
            self.sent.lock().push(frame.to_vec());
            true
        }
        fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
            let frame = self.incoming.lock().pop_front()?;
            buffer[..frame.len()].copy_from_slice(&frame);
            Some(frame.len())
        }
    }

    fn frame(to: Mac, from: Mac) -> Vec<u8> {
        [&to[..], &from[..], &[0x08, 0x06, 1, 2, 3]].concat()
    }

    #[test]
    fn ports_carry_frames_to_the_uplink_and_back() {
        let nic = FakeNic::default();
        let (sent, incoming) = (nic.sent.clone(), nic.incoming.clone());
        let mut switch = Switch::new(false);
        switch.add_port(0, mac_for("personal"), true);
        let network = Network::new(switch, Some(Box::new(nic)));
        assert!(network.port(1).is_none());
        assert_eq!(network.port_with_mac(mac_for("personal")).map(|p| p.vm), Some(0));
        assert!(network.port_with_mac(mac_for("corporate")).is_none());
        let mut port = network.port(0).unwrap();
        assert_eq!(port.mac(), mac_for("personal"));

        let hello = frame([0xff; 6], port.mac());
        port.transmit(&hello);
        assert_eq!(*sent.lock(), [hello]);
        assert_eq!(network.take_pending(), 0);

        let outside = [0x52, 0x55, 10, 0, 2, 2];
        let answer = frame(port.mac(), outside);
        incoming.lock().push_back(answer.clone());
        assert_eq!(network.poll_uplink(), 1);
        assert_eq!(network.take_pending(), 0b1);
        assert_eq!(network.take_pending(), 0, "taking clears");
        let mut small = [0u8; 8];
        let mut buffer = [0u8; 64];
        incoming.lock().push_back(answer.clone());
        network.poll_uplink();
        assert_eq!(port.receive(&mut small), None, "too long for the buffer: dropped");
        assert_eq!(port.receive(&mut buffer), None);
        incoming.lock().push_back(answer.clone());
        network.poll_uplink();
        assert_eq!(port.receive(&mut buffer), Some(answer.len()));
        assert_eq!(&buffer[..answer.len()], &answer[..]);
    }

    #[test]
    fn vm_to_vm_frames_mark_the_receiver_pending() {
        let mut switch = Switch::new(true);
        switch.add_port(0, mac_for("a"), false);
        switch.add_port(1, mac_for("b"), false);
        let network = Network::new(switch, None);
        let mut a = network.port(0).unwrap();
        a.transmit(&frame(mac_for("b"), mac_for("a")));
        assert_eq!(network.take_pending(), 0b10);
        let mut buffer = [0u8; 64];
        assert!(network.port(1).unwrap().receive(&mut buffer).is_some());
        assert_eq!(network.counters().0, Drops::default());
    }
}
