//! Finding the guest's virtio devices in the device tree and handing them
//! to `virtio-drivers`: the crate's `Hal` (DMA memory from the guest's own
//! heap) and one transport per `virtio,mmio` node.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport as _};
use virtio_drivers::{BufferDirection, PhysAddr, PAGE_SIZE};

pub type Transport = MmioTransport<'static>;

/// A virtio device the device tree lists and that answered.
pub struct Found {
    pub address: usize,
    pub kind: DeviceType,
    pub transport: Transport,
    /// Its interrupt (INTID) and whether it is edge-triggered.
    pub interrupt: Option<(u32, bool)>,
}

/// The first interrupt of `node` as (INTID, edge-triggered), from its
/// three-cell GIC specifier (SPI or PPI, number, flags).
pub fn interrupt(node: &fdt::node::FdtNode) -> Option<(u32, bool)> {
    let cells = node.property("interrupts")?.value;
    let cell = |i: usize| {
        cells.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (kind, number, flags) = (cell(0)?, cell(1)?, cell(2)?);
    let intid = match kind {
        0 => 32 + number,
        1 => 16 + number,
        _ => return None,
    };
    // Flags 1 and 2 are edges (rising, falling), 4 and 8 levels.
    Some((intid, flags & 3 != 0))
}

/// Every `virtio,mmio` node of `tree` whose slot holds a device, in
/// address order (console, rng, blk, net on Duet's platform).
pub fn find(tree: &fdt::Fdt) -> Vec<Found> {
    let mut found = Vec::new();
    for node in tree.find_all_nodes("/virtio_mmio") {
        let Some(region) = node.reg().and_then(|mut regs| regs.next()) else { continue };
        let address = region.starting_address as usize;
        let size = region.size.unwrap_or(0);
        let Some(header) = NonNull::new(address as *mut VirtIOHeader) else { continue };
        // SAFETY: the device tree Duet wrote names this a virtio-mmio
        // register window of `size` bytes in the first GiB, which the
        // identity map has as device memory for as long as the guest runs;
        // each node is visited once, so one driver owns each window.
        match unsafe { MmioTransport::new(header, size) } {
            Ok(transport) => found.push(Found {
                address,
                kind: transport.device_type(),
                transport,
                interrupt: interrupt(&node),
            }),
            Err(e) => say!("mail: virtio-mmio at {address:#x}: {e}"),
        }
    }
    found.sort_by_key(|f| f.address);
    found
}

/// `virtio-drivers`' access to memory: DMA buffers from the guest's heap.
pub struct Hal;

fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

// SAFETY: the guest runs on an identity map (`mmu.rs`: virtual address ==
// guest-physical address) of all its RAM, heap included, so every pointer
// the crate hands out or gets is also the address the device uses. DMA
// memory comes from the global allocator, zeroed, page aligned, owned by
// the crate until it gives it back. Duet's devices read guest RAM through
// Duet's own cacheable mapping and the guest maps its RAM write-back
// cacheable too, so both see the same bytes without cache maintenance.
unsafe impl virtio_drivers::Hal for Hal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages) else { return (0, NonNull::dangling()) };
        // SAFETY: the layout has a non-zero size (pages >= 1).
        let pointer = unsafe { alloc_zeroed(layout) };
        match NonNull::new(pointer) {
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
        // Only the PCI transport asks; identity map.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        // Identity map, coherent device: the buffer is shared where it is.
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
