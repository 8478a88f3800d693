//! Physical virtio-mmio devices Duet drives itself, through the
//! `virtio-drivers` crate: finding them ([`probe`], with the MMU still
//! off), the crate's `Hal` (DMA memory from Duet's heap), and bringing up
//! the one disk ([`super::virtio_blk`]), one NIC ([`super::virtio_net`]),
//! one screen ([`super::virtio_gpu`]) and the input devices
//! ([`super::virtio_input`]) Duet drives. Guests never see these devices: they get Duet's virtual
//! ones, at their own virtual slots.

use super::display::{InputSource, Panel};
use crate::platform::{
    Platform, VirtioSlot, VIRTIO_ID_BLOCK, VIRTIO_ID_GPU, VIRTIO_ID_INPUT, VIRTIO_ID_NET,
};
use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;
use spin::Mutex;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// "virt" in little-endian: the first register of every virtio-mmio slot.
const MAGIC: u32 = 0x7472_6976;

/// Reads each virtio-mmio slot's device ID, so that Duet's map can include
/// exactly the devices Duet drives. Runs once, on the boot CPU, before the
/// MMU is on (data accesses are then Device-nGnRnE, as MMIO needs).
pub fn probe(platform: &mut Platform) {
    for slot in platform.virtio.iter_mut().flatten() {
        let base = slot.region.start as *const u32;
        // SAFETY: the device tree names this a virtio-mmio register window
        // (at least 0x100 bytes; magic, version and device ID are its first
        // three words); reading them has no side effect, and with the MMU
        // off the physical address is the address.
        let (magic, device_id) = unsafe { (base.read_volatile(), base.add(2).read_volatile()) };
        slot.device_id = if magic == MAGIC { device_id } else { 0 };
    }
}

/// The `virtio-drivers` transport for a slot Duet's map includes.
pub fn transport(slot: &VirtioSlot) -> Option<MmioTransport<'static>> {
    let header = NonNull::new(slot.region.start as *mut VirtIOHeader)?;
    // SAFETY: `slot` is one of `Platform::driven_virtio`, which Duet's map
    // has as device memory for as long as Duet runs; one driver owns it.
    match unsafe { MmioTransport::new(header, slot.region.size() as usize) } {
        Ok(transport) => Some(transport),
        Err(e) => {
            log::warn!("virtio-mmio at {:#x}: {e}", slot.region.start);
            None
        }
    }
}

/// The screen, until `vm::screen` takes it.
static PANEL: Mutex<Option<Box<dyn Panel>>> = Mutex::new(None);
/// The input devices with their interrupts, until `vm::screen` takes them.
static INPUTS: Mutex<Vec<(Box<dyn InputSource>, u32)>> = Mutex::new(Vec::new());

/// Brings up the disk, the NIC, the screen and the input devices the board
/// has, if any; says what it found. Input interrupts come to this CPU.
pub fn start(platform: &Platform) {
    if let Some(slot) = platform.virtio_device(VIRTIO_ID_BLOCK) {
        super::virtio_blk::start(&slot);
    }
    if let Some(slot) = platform.virtio_device(VIRTIO_ID_NET) {
        super::virtio_net::start(&slot);
    }
    if let Some(slot) = platform.virtio_device(VIRTIO_ID_GPU) {
        *PANEL.lock() = super::virtio_gpu::start(&slot);
    }
    for slot in platform.virtio_inputs() {
        if let Some((input, intid)) = super::virtio_input::start(&slot) {
            INPUTS.lock().push((input, intid));
            crate::boot::enable_device_interrupt(intid);
        }
    }
}

/// The screen, for the compositor to own.
pub fn take_panel() -> Option<Box<dyn Panel>> {
    PANEL.lock().take()
}

/// The input devices and their interrupts, for the router to own.
pub fn take_inputs() -> Vec<(Box<dyn InputSource>, u32)> {
    core::mem::take(&mut *INPUTS.lock())
}

/// `virtio-drivers`' access to memory: DMA buffers come from Duet's heap.
pub struct DuetHal;

fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

// SAFETY: Duet's map is an identity map (virtual == physical) of all RAM it
// uses, heap and stacks included, so every pointer the crate hands out or
// gets is also the address the device uses. The memory comes from the
// global allocator, zeroed, page aligned, owned by the crate until it
// gives it back. Devices on QEMU `virt` are cache coherent with the CPUs
// (Duet maps RAM write-back cacheable); a board with non-coherent DMA
// needs cache maintenance in `share`/`unshare` before it can use this.
unsafe impl Hal for DuetHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages) else { return (0, NonNull::dangling()) };
        // SAFETY: the layout has a non-zero size (pages >= 1).
        let pointer = unsafe { alloc_zeroed(layout) };
        match NonNull::new(pointer) {
            // Identity map: the address is the physical address.
            Some(pointer) => (pointer.as_ptr() as PhysAddr, pointer),
            // The crate reads physical address 0 as "no memory".
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let Some(layout) = dma_layout(pages) else { return -1 };
        // SAFETY: the crate's contract: `vaddr` came from `dma_alloc` with
        // the same page count, so from `alloc_zeroed` with this layout.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks; Duet uses MMIO slots it mapped itself.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        // Identity map, coherent device: the buffer is shared where it is.
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The device kind of a virtio device ID, for the boot log.
pub fn kind(device_id: u32) -> &'static str {
    match device_id {
        VIRTIO_ID_BLOCK => "blk",
        VIRTIO_ID_NET => "net",
        VIRTIO_ID_GPU => "gpu",
        VIRTIO_ID_INPUT => "input",
        _ => "other",
    }
}
