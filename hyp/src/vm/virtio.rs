//! A VM's virtio devices: which backends it gets, the slots they sit in,
//! and the glue between the transports and the VM (MMIO routing, the
//! vGIC interrupt, frames arriving from the switch). Bare metal only; the
//! devices themselves are in `vdev::virtio`.
//!
//! Slots are fixed, so a guest's device names do not depend on which
//! other devices it has: console in slot 0, entropy in 1, disk in 2,
//! network in 3 (`layout::VIRTIO_BASE + n * VIRTIO_STRIDE`, interrupt
//! `VIRTIO_FIRST_INTID + n`).

use super::instance::Vm;
use super::layout;
use super::mmio::{Access, MmioError};
use super::run::{kick_all, perform, Cpus};
use crate::arch::aarch64::{cpu, random};
use crate::personas::VmSpec;
use crate::vdev::virtio::backend::{Backends, EntropySource};
use crate::vdev::virtio::guest_memory::GuestMemory;
use crate::vdev::virtio::mmio::{Device, Transport};
use crate::vdev::virtio::{blk, console, net, rng};
use alloc::boxed::Box;
use alloc::vec::Vec;
use spin::Mutex;

pub const CONSOLE_SLOT: u32 = 0;
pub const RNG_SLOT: u32 = 1;
pub const BLK_SLOT: u32 = 2;
pub const NET_SLOT: u32 = 3;

/// The backends of the VM built from `spec`: its partition of the physical
/// disk and its switch port where the manifest gives it a disk and a NIC
/// (see `vm::backends`), and the CPU's entropy.
pub fn backends_for(spec: &VmSpec) -> Backends {
    Backends {
        disk: super::backends::disk_for(spec),
        net: super::backends::net_for(spec),
        entropy: entropy_source(spec),
    }
}

/// RNDR where the CPU has it, else the seeded DRBG (see `vdev::virtio::rng`).
pub fn entropy_source(spec: &VmSpec) -> Box<dyn EntropySource> {
    if random::has_rndr() {
        return Box::new(rng::Rndr::new(random::rndr));
    }
    Box::new(rng::Drbg::new(&fallback_seed(spec), cpu::counter))
}

/// Seed material without a hardware RNG: counter readings around memory
/// accesses whose timing varies, the CPU's identity and the VM's name.
fn fallback_seed(spec: &VmSpec) -> Vec<u8> {
    let mut seed = Vec::with_capacity(1024);
    seed.extend_from_slice(spec.name.as_bytes());
    seed.extend_from_slice(&cpu::mpidr().to_le_bytes());
    let mut scratch = [0u8; 4096];
    for round in 0..64usize {
        for at in (0..scratch.len()).step_by(64 + round) {
            scratch[at] = scratch[at].wrapping_add(round as u8);
        }
        seed.extend_from_slice(&cpu::counter().to_le_bytes());
    }
    seed.extend_from_slice(&scratch[..64]);
    seed
}

/// One virtio device of a VM in its slot.
pub struct VirtioSlot {
    pub slot: u32,
    pub transport: Mutex<Transport>,
}

/// The VM's virtio devices, in slot order, for RAM `memory`.
pub fn devices(
    index: usize,
    name: &'static str,
    memory: GuestMemory,
    backends: Backends,
) -> Vec<VirtioSlot> {
    let output = Box::new(move |bytes: &[u8]| crate::console::guest_output(index, name, bytes));
    let mut devices: Vec<(u32, Box<dyn Device>)> = Vec::new();
    devices.push((CONSOLE_SLOT, Box::new(console::Console::new(output))));
    devices.push((RNG_SLOT, Box::new(rng::Rng::new(backends.entropy))));
    if let Some(disk) = backends.disk {
        devices.push((BLK_SLOT, Box::new(blk::Blk::new(disk, name))));
    }
    if let Some(port) = backends.net {
        devices.push((NET_SLOT, Box::new(net::Net::new(port))));
    }
    devices
        .into_iter()
        .map(|(slot, device)| VirtioSlot {
            slot,
            transport: Mutex::new(Transport::new(device, memory, name)),
        })
        .collect()
}

/// Performs an MMIO access in the virtio window; None if no device is in
/// the slot it falls in.
pub(super) fn access(
    vm: &Vm,
    vcpu: usize,
    access: &Access,
    value: u64,
    cpus: &impl Cpus,
) -> Option<Result<Option<u64>, MmioError>> {
    let offset = access.address - layout::VIRTIO_BASE;
    let slot = (offset / layout::VIRTIO_STRIDE) as u32;
    let device = vm.virtio.iter().find(|d| d.slot == slot)?;
    let mut transport = device.transport.lock();
    let result = perform(&mut *transport, vcpu, offset % layout::VIRTIO_STRIDE, access, value);
    let raise = transport.take_interrupt();
    drop(transport);
    if raise {
        interrupt(vm, slot, cpus);
    }
    Some(result)
}

/// Signals slot `slot`'s interrupt (edge-triggered) to the VM.
fn interrupt(vm: &Vm, slot: u32, cpus: &impl Cpus) {
    let mut vgic = vm.vgic.lock();
    // Cannot fail: the virtio SPIs exist in every VM.
    let _ = vgic.raise(layout::VIRTIO_FIRST_INTID + slot, 0);
    let kicks = vgic.take_kicks();
    drop(vgic);
    kick_all(vm, kicks, cpus);
}

/// Fills the VM's posted receive buffers with the frames its switch port
/// holds, and interrupts it if any arrived. The switch calls this when
/// frames are waiting for `vm`; the guest posting buffers does the same.
pub fn deliver_received_frames(vm: &Vm, cpus: &impl Cpus) {
    let Some(device) = vm.virtio.iter().find(|d| d.slot == NET_SLOT) else { return };
    let mut transport = device.transport.lock();
    transport.service(net::RECEIVE_QUEUE);
    let raise = transport.take_interrupt();
    drop(transport);
    if raise {
        interrupt(vm, NET_SLOT, cpus);
    }
}

/// Back to power-on state, as a machine reset does.
pub fn reset(devices: &[VirtioSlot]) {
    devices.iter().for_each(|d| d.transport.lock().reset());
}

/// The slots the VM's device tree lists.
pub fn slots(devices: &[VirtioSlot]) -> Vec<u32> {
    devices.iter().map(|d| d.slot).collect()
}
