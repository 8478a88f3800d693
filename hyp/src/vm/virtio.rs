//! A VM's virtio devices: which backends it gets, the slots they sit in,
//! and the glue between the transports and the VM (MMIO routing, the
//! vGIC interrupt, frames arriving from the switch, input events from
//! Duet, the scanout for the compositor). Bare metal only; the devices
//! themselves are in `vdev::virtio`.
//!
//! Slots are fixed, so a guest's device names do not depend on which
//! other devices it has: console in slot 0, entropy in 1, disk in 2,
//! network in 3, display (virtio-gpu) in 4, keyboard in 5, touchscreen in
//! 6 (`layout::VIRTIO_BASE + n * VIRTIO_STRIDE`, interrupt
//! `VIRTIO_FIRST_INTID + n`).

use super::instance::Vm;
use super::layout;
use super::mmio::{Access, MmioError};
use super::run::{kick_all, perform, Cpus};
use crate::arch::aarch64::{cpu, random};
use crate::personas::VmSpec;
use crate::vdev::virtio::backend::{Backends, DisplaySink, EntropySource, Frame, Rect};
use crate::vdev::virtio::guest_memory::GuestMemory;
use crate::vdev::virtio::input::{self, Flavour, InputEvent};
use crate::vdev::virtio::mmio::{Device, Transport};
use crate::vdev::virtio::{blk, console, gpu, net, rng};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

pub const CONSOLE_SLOT: u32 = 0;
pub const RNG_SLOT: u32 = 1;
pub const BLK_SLOT: u32 = 2;
pub const NET_SLOT: u32 = 3;
pub const GPU_SLOT: u32 = 4;
pub const KEYBOARD_SLOT: u32 = 5;
pub const TOUCH_SLOT: u32 = 6;

/// The backends of VM number `index`, built from `spec`: its partition of
/// the physical disk and its switch port where the manifest gives it a
/// disk and a NIC (see `vm::backends`), the CPU's entropy, and its display.
pub fn backends_for(index: usize, spec: &VmSpec) -> Backends {
    Backends {
        disk: super::backends::disk_for(spec),
        net: super::backends::net_for(spec),
        entropy: entropy_source(spec),
        display: super::backends::display_for(index),
        display_size: super::backends::display_size(),
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

/// The VM's virtio devices, in slot order, for RAM `memory`; display
/// flushes are counted in `flushes`.
pub fn devices(
    index: usize,
    name: &'static str,
    memory: GuestMemory,
    backends: Backends,
    flushes: Arc<AtomicU64>,
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
    let (width, height) = backends.display_size;
    let display = Box::new(CountingSink { inner: backends.display, flushes });
    devices.push((GPU_SLOT, Box::new(gpu::Gpu::new((width, height), display, memory))));
    devices.push((KEYBOARD_SLOT, Box::new(input::Input::new(Flavour::Keyboard))));
    devices.push((TOUCH_SLOT, Box::new(input::Input::new(Flavour::Touch { width, height }))));
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

/// Counts the flushes that reach the VM's display sink.
struct CountingSink {
    inner: Box<dyn DisplaySink>,
    flushes: Arc<AtomicU64>,
}

impl DisplaySink for CountingSink {
    fn flushed(&mut self, frame: &dyn Frame, rect: Rect) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.inner.flushed(frame, rect);
    }

    fn scanout_off(&mut self) {
        self.inner.scanout_off();
    }
}

/// Which of a VM's input devices events are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Keyboard,
    Touch,
}

/// Gives `events` to the VM's keyboard or touchscreen and interrupts it.
/// False if the driver is not ready or has posted fewer buffers than
/// there are events: then they are all dropped.
pub fn push_input(vm: &Vm, kind: InputKind, events: &[InputEvent], cpus: &dyn Cpus) -> bool {
    let slot = match kind {
        InputKind::Keyboard => KEYBOARD_SLOT,
        InputKind::Touch => TOUCH_SLOT,
    };
    let Some(device) = vm.virtio.iter().find(|d| d.slot == slot) else { return false };
    let mut transport = device.transport.lock();
    let delivered = transport.deliver(input::EVENT_QUEUE, |env| input::deliver(env, events));
    let raise = transport.take_interrupt();
    drop(transport);
    if raise {
        interrupt(vm, slot, cpus);
    }
    delivered
}

/// Calls `f` with what the VM's display shows now (None if its scanout is
/// off), read from its RAM without asking it to redraw. The VM's display
/// device stays locked meanwhile: `f` must not wait for a lock that a
/// `DisplaySink` of this VM takes.
pub fn with_scanout<R>(vm: &Vm, f: impl FnOnce(Option<&dyn Frame>) -> R) -> R {
    let Some(device) = vm.virtio.iter().find(|d| d.slot == GPU_SLOT) else { return f(None) };
    let mut transport = device.transport.lock();
    let frame = transport.device().frame();
    f(frame.as_deref())
}

/// Signals slot `slot`'s interrupt (edge-triggered) to the VM.
fn interrupt(vm: &Vm, slot: u32, cpus: &(impl Cpus + ?Sized)) {
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
