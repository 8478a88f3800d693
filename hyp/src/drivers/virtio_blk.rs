//! The physical virtio-blk disk Duet drives (polled: each request waits for
//! the device), as the [`BlockStore`] every VM's partition sits on. A flush
//! is `VIRTIO_BLK_T_FLUSH`; a device without the flush feature writes
//! through, so its writes are durable when they complete.

use super::virtio::{transport, DuetHal};
use crate::disk::SharedDisk;
use crate::platform::VirtioSlot;
use crate::println;
use crate::vdev::virtio::backend::{BackendError, BlockStore, SECTOR_SIZE};
use alloc::sync::Arc;
use spin::{Mutex, Once};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::MmioTransport;

/// The disk, once started.
pub static DISK: Once<SharedDisk> = Once::new();

/// The physical disk.
pub struct VirtioDisk {
    device: VirtIOBlk<DuetHal, MmioTransport<'static>>,
}

// SAFETY: the device is reached only through `&mut self`, under the
// `SharedDisk` mutex; its MMIO window and DMA memory are not tied to a CPU.
unsafe impl Send for VirtioDisk {}

/// Starts the disk in `slot` and publishes it in [`DISK`].
pub fn start(slot: &VirtioSlot) {
    let Some(transport) = transport(slot) else { return };
    match VirtIOBlk::<DuetHal, _>::new(transport) {
        Ok(device) => {
            let sectors = device.capacity();
            println!(
                "  virtio  blk at {:#x}: {} sectors ({} MiB){}",
                slot.region.start,
                sectors,
                (sectors * SECTOR_SIZE as u64) >> 20,
                if device.readonly() { ", read-only" } else { "" }
            );
            DISK.call_once(|| Arc::new(Mutex::new(VirtioDisk { device })));
        }
        Err(e) => println!("  virtio  blk at {:#x}: cannot start: {e}", slot.region.start),
    }
}

impl VirtioDisk {
    fn check(&self, sector: u64, bytes: usize) -> Result<(), BackendError> {
        let count = (bytes / SECTOR_SIZE) as u64;
        let fits = bytes.is_multiple_of(SECTOR_SIZE)
            && sector.checked_add(count).is_some_and(|end| end <= self.device.capacity());
        if fits {
            Ok(())
        } else {
            Err(BackendError::OutOfRange { sector, sectors: count })
        }
    }
}

impl BlockStore for VirtioDisk {
    fn sectors(&self) -> u64 {
        self.device.capacity()
    }

    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        self.check(sector, buffer.len())?;
        if buffer.is_empty() {
            return Ok(());
        }
        self.device.read_blocks(sector as usize, buffer).map_err(|e| {
            log::warn!("virtio-blk: reading sector {sector}: {e}");
            BackendError::Device
        })
    }

    fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
        self.check(sector, buffer.len())?;
        if self.device.readonly() {
            return Err(BackendError::ReadOnly);
        }
        if buffer.is_empty() {
            return Ok(());
        }
        self.device.write_blocks(sector as usize, buffer).map_err(|e| {
            log::warn!("virtio-blk: writing sector {sector}: {e}");
            BackendError::Device
        })
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.device.flush().map_err(|e| {
            log::warn!("virtio-blk: flush: {e}");
            BackendError::Device
        })
    }

    fn read_only(&self) -> bool {
        self.device.readonly()
    }
}
