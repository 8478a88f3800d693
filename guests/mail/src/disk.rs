//! The store's disk: the virtio-blk device as the store's `BlockDevice`,
//! and opening the store at boot (formatting a disk that has none).

use crate::devices::{Hal, Transport};
use duet_mail::store::log::{BlockDevice, BLOCK};
use duet_mail::store::Store;
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};

const _: () = assert!(SECTOR_SIZE == BLOCK);

pub struct Disk(VirtIOBlk<Hal, Transport>);

impl BlockDevice for Disk {
    type Error = virtio_drivers::Error;

    fn block_count(&self) -> u64 {
        self.0.capacity()
    }

    fn read_block(&mut self, index: u64, block: &mut [u8; BLOCK]) -> Result<(), Self::Error> {
        let index = usize::try_from(index).map_err(|_| virtio_drivers::Error::InvalidParam)?;
        self.0.read_blocks(index, block)
    }

    fn write_block(&mut self, index: u64, block: &[u8; BLOCK]) -> Result<(), Self::Error> {
        let index = usize::try_from(index).map_err(|_| virtio_drivers::Error::InvalidParam)?;
        self.0.write_blocks(index, block)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}

/// Opens the store on the disk at `address`, and says what it holds.
pub fn open(address: usize, blk: VirtIOBlk<Hal, Transport>, salt: u32) -> Option<Store<Disk>> {
    let blocks = blk.capacity();
    say!("mail: virtio disk at {address:#x}, {} KiB", blocks * BLOCK as u64 / 1024);
    match Store::open(Disk(blk), salt) {
        Ok(store) => {
            let log = store.log();
            say!(
                "mail: store open: {} records, {} of {} KiB used, {} messages, {} in the outbox",
                log.records(),
                log.used() / 1024,
                log.capacity() / 1024,
                store.messages().count(),
                store.outbox().count()
            );
            if log.dropped_tail() {
                say!(
                    "mail: store recovered: the bytes after record {} were not a whole record (a write cut off); the log goes on from there",
                    log.records()
                );
            }
            Some(store)
        }
        Err(e) => {
            say!("mail: cannot open the store: {e}");
            None
        }
    }
}
