//! Disks Duet serves to VMs: each VM's disk is a partition of the physical
//! disk, found by name in its GUID partition table ([`gpt`]). A
//! [`PartitionStore`] is a VM's [`BlockStore`]: every request is bounds
//! checked against the partition and moved by the partition's first
//! sector; a flush is the physical device's flush.

pub mod gpt;

use crate::vdev::virtio::backend::{BackendError, BlockStore, SECTOR_SIZE};
use alloc::sync::Arc;
use spin::Mutex;

/// The physical disk, shared by the partitions on it.
pub type SharedDisk = Arc<Mutex<dyn BlockStore>>;

/// One partition of a shared disk, as a VM's disk.
pub struct PartitionStore {
    disk: SharedDisk,
    first: u64,
    sectors: u64,
}

impl PartitionStore {
    pub fn new(disk: SharedDisk, partition: &gpt::Partition) -> Self {
        PartitionStore { disk, first: partition.first, sectors: partition.sectors }
    }

    /// The physical sector of `sector`, if `buffer` fits in the partition
    /// from there on.
    fn place(&self, sector: u64, bytes: usize) -> Result<u64, BackendError> {
        let count = (bytes / SECTOR_SIZE) as u64;
        let out_of_range = BackendError::OutOfRange { sector, sectors: count };
        if !bytes.is_multiple_of(SECTOR_SIZE) {
            return Err(out_of_range);
        }
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors => Ok(self.first + sector),
            _ => Err(out_of_range),
        }
    }
}

impl BlockStore for PartitionStore {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        let at = self.place(sector, buffer.len())?;
        self.disk.lock().read(at, buffer)
    }

    fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
        let at = self.place(sector, buffer.len())?;
        self.disk.lock().write(at, buffer)
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.disk.lock().flush()
    }

    fn read_only(&self) -> bool {
        self.disk.lock().read_only()
    }
}

/// A disk in memory, for tests: counts flushes, and keeps what was flushed
/// apart from what was only written, so a test can cut the power.
#[cfg(test)]
pub mod memory {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    pub struct MemoryDisk {
        pub written: Vec<u8>,
        pub durable: Vec<u8>,
        pub flushes: usize,
    }

    impl MemoryDisk {
        pub fn new(sectors: u64) -> Self {
            let bytes = vec![0; sectors as usize * SECTOR_SIZE];
            MemoryDisk { written: bytes.clone(), durable: bytes, flushes: 0 }
        }

        /// What survives a power cut: the last flushed state.
        pub fn power_cut(&mut self) {
            self.written = self.durable.clone();
        }
    }

    impl BlockStore for MemoryDisk {
        fn sectors(&self) -> u64 {
            (self.written.len() / SECTOR_SIZE) as u64
        }
        fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
            let start = sector as usize * SECTOR_SIZE;
            let source =
                self.written.get(start..start + buffer.len()).ok_or(BackendError::Device)?;
            buffer.copy_from_slice(source);
            Ok(())
        }
        fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
            let start = sector as usize * SECTOR_SIZE;
            let target =
                self.written.get_mut(start..start + buffer.len()).ok_or(BackendError::Device)?;
            target.copy_from_slice(buffer);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), BackendError> {
            self.durable = self.written.clone();
            self.flushes += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gpt::{self, GptError, Partition};
    use super::memory::MemoryDisk;
    use super::*;
    use alloc::vec;

    const DISK: u64 = 64 * 2048; // 64 MiB

    fn partitioned() -> (Arc<Mutex<MemoryDisk>>, Vec<Partition>) {
        let wanted = [("personal", 16 * 2048), ("corporate", 8 * 2048)];
        let layout = gpt::layout(DISK, &wanted).unwrap();
        let mut disk = MemoryDisk::new(DISK);
        for (lba, bytes) in gpt::write(DISK, &layout, 7) {
            disk.write(lba, &bytes).unwrap();
        }
        (Arc::new(Mutex::new(disk)), layout)
    }

    use alloc::vec::Vec;

    #[test]
    fn reads_back_the_table_it_writes() {
        let (disk, layout) = partitioned();
        let read = gpt::read(&mut *disk.lock()).unwrap();
        assert_eq!(read, layout);
        assert_eq!(read[0], Partition { name: "personal".into(), first: 2048, sectors: 32768 });
        assert_eq!(read[1].first, 2048 + 32768);
    }

    #[test]
    fn layout_refuses_what_does_not_fit() {
        assert!(gpt::layout(DISK, &[("a", DISK)]).is_none());
        assert!(gpt::layout(DISK, &[("a", 0)]).is_none());
        let fits = DISK - gpt::OVERHEAD_SECTORS;
        assert!(gpt::layout(DISK, &[("a", fits)]).is_some());
    }

    /// Damages sector `lba` at `offset` and reads the table again.
    fn damaged(lba: u64, offset: usize, value: u8) -> Result<Vec<Partition>, GptError> {
        let (disk, _) = partitioned();
        let mut disk = disk.lock();
        let mut sector = vec![0u8; SECTOR_SIZE];
        disk.read(lba, &mut sector).unwrap();
        sector[offset] = value;
        disk.write(lba, &sector).unwrap();
        gpt::read(&mut *disk)
    }

    #[test]
    fn damaged_tables_are_refused_by_name() {
        assert_eq!(damaged(1, 0, b'X'), Err(GptError::NoSignature));
        assert_eq!(damaged(1, 40, 0xff), Err(GptError::HeaderChecksum));
        assert_eq!(damaged(2, 60, 0xff), Err(GptError::EntriesChecksum));
        let blank = MemoryDisk::new(DISK);
        assert_eq!(gpt::read(&mut { blank }), Err(GptError::NoSignature));
        let tiny = MemoryDisk::new(8);
        assert_eq!(gpt::read(&mut { tiny }), Err(GptError::TooSmall { sectors: 8 }));
        assert!(GptError::HeaderChecksum.to_string().contains("CRC32"));
    }

    #[test]
    fn overlapping_duplicate_and_outside_partitions_are_refused() {
        let write_with = |partitions: &[Partition]| {
            let mut disk = MemoryDisk::new(DISK);
            for (lba, bytes) in gpt::write(DISK, partitions, 1) {
                disk.write(lba, &bytes).unwrap();
            }
            gpt::read(&mut disk)
        };
        let p = |name: &str, first, sectors| Partition { name: name.into(), first, sectors };
        assert_eq!(
            write_with(&[p("a", 2048, 4096), p("b", 4096, 100)]),
            Err(GptError::Overlap { first: "a".into(), second: "b".into() })
        );
        assert_eq!(
            write_with(&[p("a", 2048, 10), p("a", 4096, 10)]),
            Err(GptError::DuplicateName { name: "a".into() })
        );
        assert!(matches!(write_with(&[p("a", DISK - 10, 8)]), Err(GptError::OutOfBounds { .. })));
        assert!(matches!(write_with(&[p("", 2048, 8)]), Err(GptError::BadName { index: 0 })));
    }

    #[test]
    fn a_partition_is_bounds_checked_and_offset() {
        let (disk, layout) = partitioned();
        let shared: SharedDisk = disk.clone();
        let mut corporate = PartitionStore::new(shared.clone(), &layout[1]);
        assert_eq!(corporate.sectors(), 8 * 2048);
        let data = vec![0xabu8; 2 * SECTOR_SIZE];
        corporate.write(5, &data).unwrap();
        let mut raw = vec![0u8; 2 * SECTOR_SIZE];
        disk.lock().read(layout[1].first + 5, &mut raw).unwrap();
        assert_eq!(raw, data);
        let end = corporate.sectors();
        assert_eq!(
            corporate.write(end - 1, &data),
            Err(BackendError::OutOfRange { sector: end - 1, sectors: 2 })
        );
        assert_eq!(
            corporate.read(u64::MAX, &mut raw),
            Err(BackendError::OutOfRange { sector: u64::MAX, sectors: 2 })
        );
        assert!(corporate.write(0, &[0u8; 100]).is_err(), "not whole sectors");
        // The neighbour's sectors are untouched.
        let mut personal = PartitionStore::new(shared, &layout[0]);
        let mut last = vec![0u8; SECTOR_SIZE];
        personal.read(personal.sectors() - 1, &mut last).unwrap();
        assert!(last.iter().all(|&b| b == 0));
    }

    #[test]
    fn flushed_writes_survive_a_power_cut_unflushed_may_not() {
        let (disk, layout) = partitioned();
        let mut vm = PartitionStore::new(disk.clone(), &layout[0]);
        vm.write(0, &[1u8; SECTOR_SIZE]).unwrap();
        vm.flush().unwrap();
        vm.write(1, &[2u8; SECTOR_SIZE]).unwrap();
        disk.lock().power_cut();
        let mut sector = [0u8; SECTOR_SIZE];
        vm.read(0, &mut sector).unwrap();
        assert_eq!(sector, [1u8; SECTOR_SIZE]);
        vm.read(1, &mut sector).unwrap();
        assert_eq!(sector, [0u8; SECTOR_SIZE]);
        assert_eq!(disk.lock().flushes, 1);
    }
}
