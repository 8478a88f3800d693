//! GUID partition tables on 512-byte-sector disks: reading and checking one
//! (Duet, at boot, on the physical disk) and writing one (`cargo xtask`, on
//! the host, for QEMU's disk image). One module does both, so what xtask
//! writes is what Duet reads. The on-disk structures are the
//! `gpt_disk_types` crate's; this module owns the checks and the layout.
//!
//! A table is refused unless every rule holds: signature, revision, header
//! size, both CRC32s, the header's own LBA, 128-byte entries, at most 128
//! of them, and every partition inside the usable area, non-empty, not
//! overlapping another, with a name that is unique and not empty.

use crate::vdev::virtio::backend::{BackendError, BlockStore, SECTOR_SIZE};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytemuck::{bytes_of, pod_read_unaligned};
use core::fmt;
use gpt_disk_types::{
    crc, Crc32, GptHeader, GptHeaderRevision, GptHeaderSignature, GptPartitionEntry,
    GptPartitionName, GptPartitionType, Guid, LbaLe, MasterBootRecord, U32Le, U64Le,
};

/// Entries in a table Duet writes, and the most it reads.
pub const ENTRIES: u32 = 128;
/// Bytes per entry (the only size Duet reads).
const ENTRY_SIZE: u32 = 128;
/// Sectors the entry array takes.
const ENTRY_SECTORS: u64 = (ENTRIES * ENTRY_SIZE) as u64 / SECTOR_SIZE as u64;
/// Partitions start on 1 MiB boundaries, as partitioning tools do.
pub const ALIGN_SECTORS: u64 = (1 << 20) / SECTOR_SIZE as u64;
/// Sectors before the first partition and after the last (primary and
/// backup table).
pub const OVERHEAD_SECTORS: u64 = 2 * ALIGN_SECTORS;

/// One partition: a name and a run of sectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// First sector.
    pub first: u64,
    pub sectors: u64,
}

/// Why a disk's partition table was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GptError {
    /// Reading the disk failed.
    Io(BackendError),
    /// The disk is too small to hold a table.
    TooSmall {
        sectors: u64,
    },
    /// No "EFI PART" signature at sector 1: not partitioned with GPT.
    NoSignature,
    BadRevision {
        found: u32,
    },
    BadHeaderSize {
        found: u32,
    },
    HeaderChecksum,
    BadHeaderLba {
        found: u64,
    },
    BadEntries {
        count: u32,
        size: u32,
    },
    /// The entry array lies outside the disk.
    EntriesOutside {
        lba: u64,
    },
    EntriesChecksum,
    /// The usable area is not inside the disk.
    BadUsableArea {
        first: u64,
        last: u64,
    },
    /// Partition `index` has a name that is empty or not UCS-2.
    BadName {
        index: usize,
    },
    /// Partition `name` ends before it starts or leaves the usable area.
    OutOfBounds {
        name: String,
        first: u64,
        last: u64,
    },
    Overlap {
        first: String,
        second: String,
    },
    DuplicateName {
        name: String,
    },
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the partition table: {e}"),
            Self::TooSmall { sectors } => {
                write!(f, "the disk has {sectors} sectors, too few for a GPT")
            }
            Self::NoSignature => write!(f, "no GPT header (no \"EFI PART\" at sector 1)"),
            Self::BadRevision { found } => write!(f, "GPT revision {found:#x} is not 1.0"),
            Self::BadHeaderSize { found } => write!(f, "GPT header size {found} is not 92..=512"),
            Self::HeaderChecksum => write!(f, "the GPT header's CRC32 does not match"),
            Self::BadHeaderLba { found } => write!(f, "the GPT header says it is at LBA {found}"),
            Self::BadEntries { count, size } => write!(
                f,
                "{count} entries of {size} bytes (Duet reads at most {ENTRIES} of {ENTRY_SIZE})"
            ),
            Self::EntriesOutside { lba } => {
                write!(f, "the partition entries at LBA {lba} lie outside the disk")
            }
            Self::EntriesChecksum => write!(f, "the partition entries' CRC32 does not match"),
            Self::BadUsableArea { first, last } => {
                write!(f, "the usable area {first}..={last} does not fit the disk")
            }
            Self::BadName { index } => write!(f, "partition {index} has no usable name"),
            Self::OutOfBounds { name, first, last } => {
                write!(f, "partition {name:?} ({first}..={last}) leaves the usable area")
            }
            Self::Overlap { first, second } => {
                write!(f, "partitions {first:?} and {second:?} overlap")
            }
            Self::DuplicateName { name } => write!(f, "two partitions are called {name:?}"),
        }
    }
}

impl From<BackendError> for GptError {
    fn from(e: BackendError) -> Self {
        GptError::Io(e)
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&Crc32::ALGORITHM).checksum(bytes)
}

/// Reads and checks the primary partition table of `disk`.
pub fn read(disk: &mut dyn BlockStore) -> Result<Vec<Partition>, GptError> {
    let sectors = disk.sectors();
    if sectors < 2 * (ENTRY_SECTORS + 2) {
        return Err(GptError::TooSmall { sectors });
    }
    let mut sector = vec![0u8; SECTOR_SIZE];
    disk.read(1, &mut sector)?;
    let header: GptHeader = pod_read_unaligned(&sector[..size_of::<GptHeader>()]);
    check_header(&header, &sector, sectors)?;
    let (count, lba) = (header.number_of_partition_entries.to_u32(), header.partition_entry_lba);
    let bytes = (count * ENTRY_SIZE) as usize;
    let mut entries = vec![0u8; bytes.next_multiple_of(SECTOR_SIZE)];
    disk.read(lba.to_u64(), &mut entries)?;
    if crc32(&entries[..bytes]) != header.partition_entry_array_crc32.0.to_u32() {
        return Err(GptError::EntriesChecksum);
    }
    let usable = (header.first_usable_lba.to_u64(), header.last_usable_lba.to_u64());
    partitions(&entries[..bytes], usable)
}

fn check_header(header: &GptHeader, sector: &[u8], sectors: u64) -> Result<(), GptError> {
    if !header.is_signature_valid() {
        return Err(GptError::NoSignature);
    }
    if header.revision != GptHeaderRevision::VERSION_1_0 {
        return Err(GptError::BadRevision { found: header.revision.0.to_u32() });
    }
    let size = header.header_size.to_u32();
    if !(92..=SECTOR_SIZE as u32).contains(&size) {
        return Err(GptError::BadHeaderSize { found: size });
    }
    // The CRC covers `header_size` bytes with the CRC field as zeros.
    let mut copy = sector[..size as usize].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != header.header_crc32.0.to_u32() {
        return Err(GptError::HeaderChecksum);
    }
    if header.my_lba.to_u64() != 1 {
        return Err(GptError::BadHeaderLba { found: header.my_lba.to_u64() });
    }
    let (count, size) =
        (header.number_of_partition_entries.to_u32(), header.size_of_partition_entry.to_u32());
    if count > ENTRIES || size != ENTRY_SIZE {
        return Err(GptError::BadEntries { count, size });
    }
    let lba = header.partition_entry_lba.to_u64();
    let entry_sectors = u64::from(count * size).div_ceil(SECTOR_SIZE as u64);
    if lba < 2 || lba.saturating_add(entry_sectors) > sectors {
        return Err(GptError::EntriesOutside { lba });
    }
    let (first, last) = (header.first_usable_lba.to_u64(), header.last_usable_lba.to_u64());
    if first < 2 || first > last || last >= sectors {
        return Err(GptError::BadUsableArea { first, last });
    }
    Ok(())
}

/// The used entries of an entry array, checked against each other and the
/// usable area `(first, last)`.
fn partitions(entries: &[u8], usable: (u64, u64)) -> Result<Vec<Partition>, GptError> {
    let mut found: Vec<Partition> = Vec::new();
    for (index, bytes) in entries.chunks_exact(ENTRY_SIZE as usize).enumerate() {
        let entry: GptPartitionEntry = pod_read_unaligned(bytes);
        if !entry.is_used() {
            continue;
        }
        let name = entry_name(&entry.name).ok_or(GptError::BadName { index })?;
        let (first, last) = (entry.starting_lba.to_u64(), entry.ending_lba.to_u64());
        if first > last || first < usable.0 || last > usable.1 {
            return Err(GptError::OutOfBounds { name, first, last });
        }
        let partition = Partition { name, first, sectors: last - first + 1 };
        for other in &found {
            if other.name == partition.name {
                return Err(GptError::DuplicateName { name: partition.name });
            }
            let other_last = other.first + other.sectors - 1;
            if first <= other_last && other.first <= last {
                return Err(GptError::Overlap {
                    first: other.name.clone(),
                    second: partition.name,
                });
            }
        }
        found.push(partition);
    }
    Ok(found)
}

fn entry_name(name: &GptPartitionName) -> Option<String> {
    let text: String = name.chars().collect();
    let ok = !text.is_empty() && !text.contains(char::REPLACEMENT_CHARACTER);
    ok.then_some(text)
}

/// A table to write: where each named partition goes on a disk of
/// `disk_sectors`, in order, each starting on a 1 MiB boundary.
pub fn layout(disk_sectors: u64, wanted: &[(&str, u64)]) -> Option<Vec<Partition>> {
    let mut next = ALIGN_SECTORS;
    let last_usable = disk_sectors.checked_sub(ENTRY_SECTORS + 2)?;
    let mut partitions = Vec::new();
    for &(name, sectors) in wanted {
        let last = next.checked_add(sectors)?.checked_sub(1)?;
        if sectors == 0 || last > last_usable {
            return None;
        }
        partitions.push(Partition { name: name.into(), first: next, sectors });
        next = (last + 1).next_multiple_of(ALIGN_SECTORS);
    }
    Some(partitions)
}

/// The sectors that hold a GPT for `partitions` on a disk of
/// `disk_sectors`: `(lba, bytes)` pairs for the protective MBR, the
/// primary header and entries, and the backup entries and header. `seed`
/// makes the GUIDs (a disk image's GUIDs need only differ between disks).
pub fn write(disk_sectors: u64, partitions: &[Partition], seed: u64) -> Vec<(u64, Vec<u8>)> {
    let mut entries = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
    for (index, (partition, slot)) in
        partitions.iter().zip(entries.chunks_exact_mut(ENTRY_SIZE as usize)).enumerate()
    {
        let mut name = GptPartitionName::default();
        for (i, c) in partition.name.chars().take(35).enumerate() {
            let _ = name.set_char(i, c);
        }
        let entry = GptPartitionEntry {
            partition_type_guid: linux_filesystem(),
            unique_partition_guid: guid(seed, index as u64 + 1),
            starting_lba: LbaLe(U64Le::from_u64(partition.first)),
            ending_lba: LbaLe(U64Le::from_u64(partition.first + partition.sectors - 1)),
            attributes: Default::default(),
            name,
        };
        slot.copy_from_slice(bytes_of(&entry));
    }
    let last = disk_sectors - 1;
    let entries_crc = crc32(&entries);
    let header = |my: u64, alternate: u64, entries_at: u64| {
        let mut header = GptHeader {
            signature: GptHeaderSignature::EFI_COMPATIBLE_PARTITION_TABLE_HEADER,
            revision: GptHeaderRevision::VERSION_1_0,
            header_size: U32Le::from_u32(92),
            header_crc32: Crc32(U32Le::from_u32(0)),
            reserved: U32Le::from_u32(0),
            my_lba: LbaLe(U64Le::from_u64(my)),
            alternate_lba: LbaLe(U64Le::from_u64(alternate)),
            first_usable_lba: LbaLe(U64Le::from_u64(ENTRY_SECTORS + 2)),
            last_usable_lba: LbaLe(U64Le::from_u64(last - ENTRY_SECTORS - 1)),
            disk_guid: guid(seed, 0),
            partition_entry_lba: LbaLe(U64Le::from_u64(entries_at)),
            number_of_partition_entries: U32Le::from_u32(ENTRIES),
            size_of_partition_entry: U32Le::from_u32(ENTRY_SIZE),
            partition_entry_array_crc32: Crc32(U32Le::from_u32(entries_crc)),
        };
        header.update_header_crc32();
        let mut sector = vec![0u8; SECTOR_SIZE];
        sector[..size_of::<GptHeader>()].copy_from_slice(bytes_of(&header));
        sector
    };
    let mbr = MasterBootRecord::protective_mbr(disk_sectors);
    vec![
        (0, bytes_of(&mbr).to_vec()),
        (1, header(1, last, 2)),
        (2, entries.clone()),
        (last - ENTRY_SECTORS, entries),
        (last, header(last, 1, last - ENTRY_SECTORS)),
    ]
}

/// The "Linux filesystem data" partition type.
fn linux_filesystem() -> GptPartitionType {
    GptPartitionType(gpt_disk_types::guid!("0fc63daf-8483-4772-8e79-3d69d8477de4"))
}

/// A version-4-shaped GUID from `seed` and `n`.
fn guid(seed: u64, n: u64) -> Guid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&(n ^ 0x9e37_79b9_7f4a_7c15).to_le_bytes());
    bytes[7] = (bytes[7] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Guid::from_bytes(bytes)
}
