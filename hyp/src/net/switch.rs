//! Duet's Ethernet switch: one port per VM that has a NIC, and the uplink
//! (the physical NIC). It learns which MAC sits behind which port, forwards
//! unicast frames to that port, floods broadcast, multicast and unknown
//! unicast, and applies the manifest's policy: a VM reaches the uplink only
//! with `uplink = true`, and VMs reach each other only when the manifest
//! lets them talk. Frames for a port wait in a bounded queue until its VM
//! takes them. Every drop is counted, by reason.
//!
//! Plain Rust, no locks: the caller (`net`) owns the switch behind one.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A MAC address.
pub type Mac = [u8; 6];

/// Where a frame comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortId {
    /// The port of the VM with this index (its place in the manifest).
    Vm(usize),
    /// The physical NIC.
    Uplink,
}

/// Frames a port's queue holds before it drops new ones.
pub const QUEUE_FRAMES: usize = 64;
/// The largest frame the switch carries: Ethernet header and 1500 bytes of
/// payload, plus a VLAN tag.
pub const MAX_FRAME: usize = 1518;
/// An Ethernet header: destination, source, type.
const HEADER: usize = 14;
/// Learned addresses kept (oldest forgotten first).
const LEARNED: usize = 64;

/// Why frames were dropped, and how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Shorter than an Ethernet header, or longer than [`MAX_FRAME`].
    pub malformed: u64,
    /// A VM sent with a source MAC that is not its own.
    pub spoofed: u64,
    /// The policy forbids the destination port.
    pub forbidden: u64,
    /// The destination's queue was full.
    pub queue_full: u64,
}

/// One VM's port.
#[derive(Debug)]
struct VmPort {
    mac: Mac,
    uplink: bool,
    queue: VecDeque<Vec<u8>>,
}

/// The switch.
#[derive(Debug)]
pub struct Switch {
    /// Indexed by VM index; `None` for VMs without a NIC.
    ports: Vec<Option<VmPort>>,
    /// Whether VMs may exchange frames with each other.
    vms_may_talk: bool,
    /// Frames waiting for the physical NIC.
    to_uplink: VecDeque<Vec<u8>>,
    learned: VecDeque<(Mac, PortId)>,
    pub drops: Drops,
    /// Frames handed to a port's queue or the uplink's.
    pub forwarded: u64,
}

impl Switch {
    pub fn new(vms_may_talk: bool) -> Self {
        Switch {
            ports: Vec::new(),
            vms_may_talk,
            to_uplink: VecDeque::new(),
            learned: VecDeque::new(),
            drops: Drops::default(),
            forwarded: 0,
        }
    }

    /// Gives VM `vm` a port with `mac`; `uplink` says whether it may reach
    /// the physical network.
    pub fn add_port(&mut self, vm: usize, mac: Mac, uplink: bool) {
        if self.ports.len() <= vm {
            self.ports.resize_with(vm + 1, || None);
        }
        self.ports[vm] = Some(VmPort { mac, uplink, queue: VecDeque::new() });
    }

    /// The MAC of VM `vm`'s port, if it has one.
    pub fn mac_of(&self, vm: usize) -> Option<Mac> {
        self.port(vm).map(|p| p.mac)
    }

    /// The VM whose port has `mac`.
    pub fn vm_with_mac(&self, mac: Mac) -> Option<usize> {
        self.ports.iter().position(|p| p.as_ref().is_some_and(|p| p.mac == mac))
    }

    /// Takes a frame that entered at `from` and puts it in the queues of
    /// the ports it may reach. Returns a bit mask of the VMs that got a
    /// frame (bit = VM index), so the caller can tell them.
    pub fn forward(&mut self, from: PortId, frame: &[u8]) -> u32 {
        if frame.len() < HEADER || frame.len() > MAX_FRAME {
            self.drops.malformed += 1;
            return 0;
        }
        let destination: Mac = frame[0..6].try_into().unwrap_or_default();
        let source: Mac = frame[6..12].try_into().unwrap_or_default();
        if let PortId::Vm(vm) = from {
            if self.port(vm).map(|p| p.mac) != Some(source) {
                self.drops.spoofed += 1;
                return 0;
            }
        }
        if !is_group(&source) {
            self.learn(source, from);
        }
        if is_group(&destination) {
            return self.flood(from, frame);
        }
        match self.lookup(&destination) {
            Some(to) if to == from => 0,
            Some(to) if self.allowed(from, to) => self.deliver(to, frame),
            Some(_) => {
                self.drops.forbidden += 1;
                0
            }
            None => self.flood(from, frame),
        }
    }

    /// The next frame waiting for VM `vm`.
    pub fn take(&mut self, vm: usize) -> Option<Vec<u8>> {
        self.ports.get_mut(vm)?.as_mut()?.queue.pop_front()
    }

    /// The next frame waiting for the physical NIC.
    pub fn take_for_uplink(&mut self) -> Option<Vec<u8>> {
        self.to_uplink.pop_front()
    }

    /// Frames waiting for VM `vm`.
    pub fn queued(&self, vm: usize) -> usize {
        self.port(vm).map_or(0, |p| p.queue.len())
    }

    fn port(&self, vm: usize) -> Option<&VmPort> {
        self.ports.get(vm)?.as_ref()
    }

    /// Whether the policy lets a frame go from `from` to `to`.
    fn allowed(&self, from: PortId, to: PortId) -> bool {
        let uplink_of = |vm: usize| self.port(vm).is_some_and(|p| p.uplink);
        match (from, to) {
            (PortId::Uplink, PortId::Uplink) => false,
            (PortId::Vm(vm), PortId::Uplink) | (PortId::Uplink, PortId::Vm(vm)) => uplink_of(vm),
            (PortId::Vm(a), PortId::Vm(b)) => a != b && self.vms_may_talk && self.port(b).is_some(),
        }
    }

    /// Sends a group (or unknown) frame to every port the policy allows.
    /// Ports it may not reach are not counted as drops: flooding reaches
    /// only where the frame may go.
    fn flood(&mut self, from: PortId, frame: &[u8]) -> u32 {
        let mut reached = 0;
        for vm in 0..self.ports.len() {
            if self.allowed(from, PortId::Vm(vm)) {
                reached |= self.deliver(PortId::Vm(vm), frame);
            }
        }
        if self.allowed(from, PortId::Uplink) {
            self.deliver(PortId::Uplink, frame);
        }
        reached
    }

    fn deliver(&mut self, to: PortId, frame: &[u8]) -> u32 {
        let (queue, bit) = match to {
            PortId::Uplink => (&mut self.to_uplink, 0),
            PortId::Vm(vm) => match self.ports.get_mut(vm).and_then(Option::as_mut) {
                Some(port) => (&mut port.queue, 1u32.checked_shl(vm as u32).unwrap_or(0)),
                None => return 0,
            },
        };
        if queue.len() >= QUEUE_FRAMES {
            self.drops.queue_full += 1;
            return 0;
        }
        queue.push_back(frame.to_vec());
        self.forwarded += 1;
        bit
    }

    /// Where `mac` lives: a VM port's own address, else what was learned.
    fn lookup(&self, mac: &Mac) -> Option<PortId> {
        let own = self.ports.iter().position(|p| p.as_ref().is_some_and(|p| &p.mac == mac));
        if let Some(vm) = own {
            return Some(PortId::Vm(vm));
        }
        self.learned.iter().find(|(m, _)| m == mac).map(|&(_, port)| port)
    }

    /// Remembers that `mac` sent from `port`. VM ports' own addresses are
    /// known already and never move, so a VM cannot steal another's.
    fn learn(&mut self, mac: Mac, port: PortId) {
        if self.ports.iter().flatten().any(|p| p.mac == mac) {
            return;
        }
        self.learned.retain(|(m, _)| *m != mac);
        if self.learned.len() == LEARNED {
            self.learned.pop_front();
        }
        self.learned.push_back((mac, port));
    }
}

/// Broadcast or multicast: the group bit of the first byte.
fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// A stable MAC for the VM called `name`: locally administered, unicast
/// (0x02 first), then 40 bits of the name's FNV-1a hash. The same name
/// gives the same MAC on every boot, so DHCP leases and ARP caches hold.
pub fn mac_for(name: &str) -> Mac {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    let b = hash.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROADCAST: Mac = [0xff; 6];
    const OUTSIDE: Mac = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];

    fn frame(to: Mac, from: Mac, tag: u8) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&to);
        f.extend_from_slice(&from);
        f.extend_from_slice(&[0x08, 0x00, tag]);
        f
    }

    /// VM 0 "personal" with the uplink, VM 1 "corporate" with it too,
    /// VM 2 has no NIC, VM 3 "lab" without the uplink.
    fn switch(vms_may_talk: bool) -> (Switch, [Mac; 4]) {
        let macs = [mac_for("personal"), mac_for("corporate"), [0; 6], mac_for("lab")];
        let mut s = Switch::new(vms_may_talk);
        s.add_port(0, macs[0], true);
        s.add_port(1, macs[1], true);
        s.add_port(3, macs[3], false);
        (s, macs)
    }

    #[test]
    fn macs_are_stable_local_unicast_and_differ_by_name() {
        let mac = mac_for("personal");
        assert_eq!(mac, mac_for("personal"));
        assert_eq!(mac[0], 0x02);
        assert_ne!(mac, mac_for("corporate"));
        assert_ne!(mac_for("a"), mac_for("b"));
        assert!(!is_group(&mac));
    }

    #[test]
    fn isolated_vms_reach_the_uplink_but_not_each_other() {
        let (mut s, m) = switch(false);
        assert_eq!(s.forward(PortId::Vm(0), &frame(m[1], m[0], 1)), 0);
        assert_eq!(s.drops.forbidden, 1);
        assert_eq!(s.queued(1), 0);
        // Broadcast (ARP, DHCP) goes to the uplink only.
        assert_eq!(s.forward(PortId::Vm(0), &frame(BROADCAST, m[0], 2)), 0);
        assert_eq!(s.take_for_uplink(), Some(frame(BROADCAST, m[0], 2)));
        assert_eq!(s.take_for_uplink(), None);
        assert_eq!(s.queued(1), 0);
    }

    #[test]
    fn vms_that_may_talk_exchange_unicast_and_broadcast() {
        let (mut s, m) = switch(true);
        assert_eq!(s.forward(PortId::Vm(0), &frame(m[1], m[0], 1)), 0b10);
        assert_eq!(s.take(1), Some(frame(m[1], m[0], 1)));
        assert_eq!(s.forward(PortId::Vm(1), &frame(BROADCAST, m[1], 2)), 0b1001);
        assert_eq!(s.take(0), Some(frame(BROADCAST, m[1], 2)));
        assert_eq!(s.take(3), Some(frame(BROADCAST, m[1], 2)));
        assert_eq!(s.take(1), None, "a frame never returns to its sender");
        assert!(s.take_for_uplink().is_some());
        assert_eq!(s.drops, Drops::default());
    }

    #[test]
    fn a_vm_without_the_uplink_never_reaches_it_nor_hears_it() {
        let (mut s, m) = switch(true);
        s.forward(PortId::Vm(3), &frame(BROADCAST, m[3], 1));
        assert_eq!(s.take_for_uplink(), None);
        assert_eq!(s.forward(PortId::Uplink, &frame(m[3], OUTSIDE, 2)), 0);
        assert_eq!(s.drops.forbidden, 1);
        assert_eq!(s.forward(PortId::Uplink, &frame(BROADCAST, OUTSIDE, 3)), 0b11);
        assert_eq!(s.queued(3), 0);
    }

    #[test]
    fn learns_what_sits_behind_the_uplink() {
        let (mut s, m) = switch(false);
        // Unknown unicast from a VM floods to where it may go: the uplink.
        s.forward(PortId::Vm(0), &frame(OUTSIDE, m[0], 1));
        assert!(s.take_for_uplink().is_some());
        // The answer teaches the switch where OUTSIDE is, and goes to VM 0 only.
        assert_eq!(s.forward(PortId::Uplink, &frame(m[0], OUTSIDE, 2)), 0b1);
        assert_eq!(s.lookup(&OUTSIDE), Some(PortId::Uplink));
        s.forward(PortId::Vm(1), &frame(OUTSIDE, m[1], 3));
        assert_eq!(s.take_for_uplink(), Some(frame(OUTSIDE, m[1], 3)));
    }

    #[test]
    fn spoofed_short_and_long_frames_are_dropped_and_counted() {
        let (mut s, m) = switch(true);
        assert_eq!(s.forward(PortId::Vm(0), &frame(m[1], m[1], 1)), 0);
        assert_eq!(s.drops.spoofed, 1);
        assert_eq!(s.forward(PortId::Vm(0), &[0xff; 13]), 0);
        assert_eq!(s.forward(PortId::Vm(0), &[0xff; MAX_FRAME + 1]), 0);
        assert_eq!(s.drops.malformed, 2);
        // A VM port that does not exist sends nothing.
        assert_eq!(s.forward(PortId::Vm(2), &frame(BROADCAST, [2, 0, 0, 0, 0, 0], 1)), 0);
        assert_eq!(s.drops.spoofed, 2);
        // The uplink cannot claim a VM's address.
        s.forward(PortId::Uplink, &frame(BROADCAST, m[1], 1));
        assert_eq!(s.lookup(&m[1]), Some(PortId::Vm(1)));
    }

    #[test]
    fn full_queues_drop_new_frames() {
        let (mut s, m) = switch(false);
        for i in 0..QUEUE_FRAMES + 3 {
            s.forward(PortId::Uplink, &frame(m[0], OUTSIDE, i as u8));
        }
        assert_eq!(s.queued(0), QUEUE_FRAMES);
        assert_eq!(s.drops.queue_full, 3);
        assert_eq!(s.take(0), Some(frame(m[0], OUTSIDE, 0)), "oldest first");
    }

    #[test]
    fn learning_is_bounded() {
        let (mut s, m) = switch(false);
        for i in 0..LEARNED + 10 {
            let outside = [0x52, 0, 0, 0, 0, i as u8];
            s.forward(PortId::Uplink, &frame(m[0], outside, 0));
        }
        assert_eq!(s.learned.len(), LEARNED);
        assert_eq!(s.lookup(&[0x52, 0, 0, 0, 0, 0]), None, "the oldest is forgotten");
    }
}
