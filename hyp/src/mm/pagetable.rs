//! Translation tables in the VMSAv8-64 format with a 4 KiB granule.
//!
//! One builder serves both translations Duet owns: its own EL2 stage-1 map
//! and each VM's stage-2 map. They differ only in how a descriptor encodes
//! memory type and permissions ([`Stage`]); the walk, block selection and
//! block splitting are shared.
//!
//! Table memory comes from a [`TableAllocator`]. Duet's EL2 map is an
//! identity map, so the address of a table in memory is its physical address;
//! on the host, where the tests run, the same holds for heap memory because no
//! hardware ever walks those tables. Keeping the TLB in step with changes is
//! the caller's job (the arch layer), not this module's.

use core::fmt;
use core::ptr::NonNull;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
const ENTRIES: usize = 512;
const BITS_PER_LEVEL: u32 = 9;

/// One 4 KiB translation table.
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

/// Index of a stage-1 memory type in MAIR_EL2, as programmed by the arch layer.
pub mod mair {
    /// Device-nGnRE.
    pub const DEVICE: u64 = 0;
    /// Normal, inner and outer write-back, read- and write-allocate.
    pub const NORMAL: u64 = 1;
    /// The MAIR_EL2 value matching the indices above.
    pub const VALUE: u64 = 0x04 | (0xff << 8);
}

/// The translation a table belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The hypervisor's own map (EL2, no VHE): one privilege level.
    El2,
    /// A VM's intermediate-physical to physical map.
    Stage2,
}

/// How memory behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Cacheable RAM.
    Normal,
    /// Device registers: no caching, no speculation, no merging.
    Device,
}

/// What a mapping allows. Everything mapped is readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub memory: Memory,
    pub write: bool,
    pub execute: bool,
}

impl Attributes {
    pub const CODE: Self = Self { memory: Memory::Normal, write: false, execute: true };
    pub const READ_ONLY: Self = Self { memory: Memory::Normal, write: false, execute: false };
    pub const READ_WRITE: Self = Self { memory: Memory::Normal, write: true, execute: false };
    pub const RAM: Self = Self { memory: Memory::Normal, write: true, execute: true };
    pub const DEVICE: Self = Self { memory: Memory::Device, write: true, execute: false };
}

/// Why a change to the map was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or size is not a multiple of the page size.
    Misaligned { address: u64 },
    /// The range does not fit the input or output address size.
    OutOfRange { address: u64 },
    /// Part of the range is mapped already.
    AlreadyMapped { address: u64 },
    /// No memory for another table.
    OutOfTables,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned { address } => write!(f, "{address:#x} is not page aligned"),
            Self::OutOfRange { address } => write!(f, "{address:#x} is outside the address space"),
            Self::AlreadyMapped { address } => write!(f, "{address:#x} is mapped already"),
            Self::OutOfTables => write!(f, "no memory left for translation tables"),
        }
    }
}

/// Where tables come from.
pub trait TableAllocator {
    /// `count` contiguous zeroed tables, aligned to their total size
    /// (a concatenated stage-2 root needs that), or `None` when out of memory.
    fn allocate(&mut self, count: usize) -> Option<NonNull<Table>>;
}

/// Tables from the global heap.
pub struct HeapTables;

impl TableAllocator for HeapTables {
    fn allocate(&mut self, count: usize) -> Option<NonNull<Table>> {
        let size = count * core::mem::size_of::<Table>();
        let layout = core::alloc::Layout::from_size_align(size, size).ok()?;
        // SAFETY: the layout has a non-zero size; the memory is zeroed, which
        // is a valid (all invalid entries) table.
        NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) }.cast())
    }
}

/// The shape of a translation: input address size and where the walk starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bits of input address (VA or IPA).
    pub input_bits: u32,
    /// The level of the root table (0..=2).
    pub root_level: u32,
    /// Tables concatenated at the root (stage 2 only; 1 otherwise).
    pub root_tables: usize,
}

impl Geometry {
    /// A stage-1 geometry: a single root table at whatever level covers `input_bits`.
    pub fn stage1(input_bits: u32) -> Self {
        let levels = (input_bits - PAGE_SHIFT).div_ceil(BITS_PER_LEVEL);
        Self { input_bits, root_level: 4 - levels, root_tables: 1 }
    }

    /// A stage-2 geometry: uses up to 16 concatenated root tables to save a
    /// level of walk, as VTCR_EL2.SL0 allows.
    pub fn stage2(input_bits: u32) -> Self {
        let mut geometry = Self::stage1(input_bits);
        let root_bits = input_bits - PAGE_SHIFT - BITS_PER_LEVEL * (3 - geometry.root_level);
        if geometry.root_level < 2 && root_bits <= 4 {
            geometry.root_level += 1;
            geometry.root_tables = 1 << root_bits;
        }
        geometry
    }

    fn block_size(level: u32) -> u64 {
        1 << (PAGE_SHIFT + BITS_PER_LEVEL * (3 - level))
    }

    fn index(self, address: u64, level: u32) -> usize {
        let shift = PAGE_SHIFT + BITS_PER_LEVEL * (3 - level);
        let index = (address >> shift) as usize;
        if level == self.root_level {
            index // may run into the concatenated tables
        } else {
            index % ENTRIES
        }
    }
}

// Descriptor bits common to both stages.
const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ACCESS_FLAG: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const EXECUTE_NEVER: u64 = 1 << 54;
const OUTPUT_MASK: u64 = 0x0000_ffff_ffff_f000;
// Stage 1 (EL2).
const S1_ATTR_INDEX_SHIFT: u32 = 2;
const S1_AP_RES1: u64 = 1 << 6;
const S1_READ_ONLY: u64 = 1 << 7;
// Stage 2.
const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
const S2_MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
const S2_MEMATTR_MASK: u64 = 0b1111 << 2;
const S2_READ: u64 = 1 << 6;
const S2_WRITE: u64 = 1 << 7;

impl Stage {
    fn encode(self, attrs: Attributes) -> u64 {
        let mut bits = ACCESS_FLAG | INNER_SHAREABLE;
        if !attrs.execute {
            bits |= EXECUTE_NEVER;
        }
        match self {
            Stage::El2 => {
                let index = match attrs.memory {
                    Memory::Normal => mair::NORMAL,
                    Memory::Device => mair::DEVICE,
                };
                bits |= index << S1_ATTR_INDEX_SHIFT | S1_AP_RES1;
                if !attrs.write {
                    bits |= S1_READ_ONLY;
                }
            }
            Stage::Stage2 => {
                bits |= match attrs.memory {
                    Memory::Normal => S2_MEMATTR_NORMAL_WB,
                    Memory::Device => S2_MEMATTR_DEVICE_NGNRE,
                };
                bits |= S2_READ;
                if attrs.write {
                    bits |= S2_WRITE;
                }
            }
        }
        bits
    }

    fn decode(self, descriptor: u64) -> Attributes {
        let execute = descriptor & EXECUTE_NEVER == 0;
        match self {
            Stage::El2 => Attributes {
                memory: if (descriptor >> S1_ATTR_INDEX_SHIFT) & 0b111 == mair::NORMAL {
                    Memory::Normal
                } else {
                    Memory::Device
                },
                write: descriptor & S1_READ_ONLY == 0,
                execute,
            },
            Stage::Stage2 => Attributes {
                memory: if descriptor & S2_MEMATTR_MASK == S2_MEMATTR_NORMAL_WB {
                    Memory::Normal
                } else {
                    Memory::Device
                },
                write: descriptor & S2_WRITE != 0,
                execute,
            },
        }
    }
}

/// A translation found by [`PageTable::translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub output: u64,
    pub attributes: Attributes,
    /// The size of the block or page that maps the address.
    pub size: u64,
}

/// A translation regime's tables: the root and everything below it.
pub struct PageTable {
    root: NonNull<Table>,
    stage: Stage,
    geometry: Geometry,
    output_bits: u32,
}

// SAFETY: the table memory is owned by this object alone; moving it between
// CPUs is no different from moving a Box, and shared references only read
// through it (changes take `&mut self`).
unsafe impl Send for PageTable {}
unsafe impl Sync for PageTable {}

impl PageTable {
    /// An empty map.
    pub fn new(
        stage: Stage,
        geometry: Geometry,
        output_bits: u32,
        allocator: &mut impl TableAllocator,
    ) -> Result<Self, MapError> {
        let root = allocator.allocate(geometry.root_tables).ok_or(MapError::OutOfTables)?;
        Ok(Self { root, stage, geometry, output_bits })
    }

    /// The physical address of the root table (for TTBR0_EL2 or VTTBR_EL2).
    pub fn root_address(&self) -> u64 {
        self.root.as_ptr() as u64
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Maps `size` bytes at `input` to `output`, with blocks where alignment
    /// allows. Fails without change to the part not yet mapped if any page of
    /// the range is mapped already.
    pub fn map(
        &mut self,
        allocator: &mut impl TableAllocator,
        input: u64,
        output: u64,
        size: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        self.check_range(input, output, size)?;
        let descriptor_bits = self.stage.encode(attributes);
        let mut done = 0;
        while done < size {
            let (level, block) = self.largest_block(input + done, output + done, size - done);
            self.install(allocator, input + done, level, (output + done) | descriptor_bits)?;
            done += block;
        }
        Ok(())
    }

    /// Removes every mapping in the range, splitting blocks that straddle its
    /// ends. Unmapping what is not mapped is not an error.
    pub fn unmap(
        &mut self,
        allocator: &mut impl TableAllocator,
        input: u64,
        size: u64,
    ) -> Result<(), MapError> {
        self.check_range(input, 0, size)?;
        let end = input + size;
        let mut address = input;
        while address < end {
            address = self.unmap_one(allocator, address, end)?;
        }
        Ok(())
    }

    /// Where `input` translates to, if it is mapped.
    pub fn translate(&self, input: u64) -> Option<Translation> {
        if input >> self.geometry.input_bits != 0 {
            return None;
        }
        let mut table = self.root;
        let mut level = self.geometry.root_level;
        loop {
            let entry = self.entry(table, input, level);
            // SAFETY: `entry` points into a table owned by this map.
            let descriptor = unsafe { *entry };
            if descriptor & VALID == 0 {
                return None;
            }
            if level < 3 && descriptor & TABLE_OR_PAGE != 0 {
                table = Self::next_table(descriptor);
                level += 1;
                continue;
            }
            let size = Geometry::block_size(level);
            return Some(Translation {
                output: (descriptor & OUTPUT_MASK & !(size - 1)) | (input & (size - 1)),
                attributes: self.stage.decode(descriptor),
                size,
            });
        }
    }

    fn check_range(&self, input: u64, output: u64, size: u64) -> Result<(), MapError> {
        for address in [input, output, size] {
            if address % PAGE_SIZE != 0 {
                return Err(MapError::Misaligned { address });
            }
        }
        let input_end = input.checked_add(size).ok_or(MapError::OutOfRange { address: input })?;
        if input_end > 1 << self.geometry.input_bits {
            return Err(MapError::OutOfRange { address: input });
        }
        if output.saturating_add(size) > 1 << self.output_bits {
            return Err(MapError::OutOfRange { address: output });
        }
        Ok(())
    }

    /// The level and size of the largest block that can map the start of the range.
    fn largest_block(&self, input: u64, output: u64, remaining: u64) -> (u32, u64) {
        // 4 KiB granule: blocks exist at levels 1 (1 GiB) and 2 (2 MiB).
        for level in self.geometry.root_level.max(1)..3 {
            let size = Geometry::block_size(level);
            if input.is_multiple_of(size) && output.is_multiple_of(size) && remaining >= size {
                return (level, size);
            }
        }
        (3, PAGE_SIZE)
    }

    fn entry(&self, table: NonNull<Table>, input: u64, level: u32) -> *mut u64 {
        let index = self.geometry.index(input, level);
        // SAFETY: the index is within the table (or, at the root, within the
        // concatenated root tables) because inputs were range checked.
        unsafe { (table.as_ptr() as *mut u64).add(index) }
    }

    fn next_table(descriptor: u64) -> NonNull<Table> {
        NonNull::new((descriptor & OUTPUT_MASK) as *mut Table).expect("table descriptor is zero")
    }

    /// Writes one leaf descriptor at `level`, creating tables on the way.
    fn install(
        &mut self,
        allocator: &mut impl TableAllocator,
        input: u64,
        level: u32,
        leaf: u64,
    ) -> Result<(), MapError> {
        let mut table = self.root;
        for current in self.geometry.root_level..level {
            let entry = self.entry(table, input, current);
            // SAFETY: `entry` points into a table owned by this map.
            let descriptor = unsafe { *entry };
            table = if descriptor & VALID == 0 {
                let new = allocator.allocate(1).ok_or(MapError::OutOfTables)?;
                // SAFETY: as above; the new table is zeroed and now owned by this map.
                unsafe { *entry = new.as_ptr() as u64 | VALID | TABLE_OR_PAGE };
                new
            } else if descriptor & TABLE_OR_PAGE != 0 {
                Self::next_table(descriptor)
            } else {
                return Err(MapError::AlreadyMapped { address: input });
            };
        }
        let entry = self.entry(table, input, level);
        // SAFETY: `entry` points into a table owned by this map.
        unsafe {
            if *entry & VALID != 0 {
                return Err(MapError::AlreadyMapped { address: input });
            }
            *entry = leaf | VALID | if level == 3 { TABLE_OR_PAGE } else { 0 };
        }
        Ok(())
    }

    /// Unmaps from `address` to the end of the entry that holds it or `end`,
    /// whichever comes first; returns where the next step starts.
    fn unmap_one(
        &mut self,
        allocator: &mut impl TableAllocator,
        address: u64,
        end: u64,
    ) -> Result<u64, MapError> {
        let mut table = self.root;
        let mut level = self.geometry.root_level;
        loop {
            let size = Geometry::block_size(level);
            let entry_start = address & !(size - 1);
            let entry_end = entry_start + size;
            let entry = self.entry(table, address, level);
            // SAFETY: `entry` points into a table owned by this map.
            let descriptor = unsafe { *entry };
            if descriptor & VALID == 0 {
                return Ok(entry_end.min(end));
            }
            let is_table = level < 3 && descriptor & TABLE_OR_PAGE != 0;
            if !is_table && address == entry_start && end >= entry_end {
                // SAFETY: as above.
                unsafe { *entry = 0 };
                return Ok(entry_end);
            }
            table = if is_table {
                Self::next_table(descriptor)
            } else {
                self.split_block(allocator, entry, descriptor, level)?
            };
            level += 1;
        }
    }

    /// Replaces a block with a table of the next level that maps the same.
    fn split_block(
        &mut self,
        allocator: &mut impl TableAllocator,
        entry: *mut u64,
        block: u64,
        level: u32,
    ) -> Result<NonNull<Table>, MapError> {
        let new = allocator.allocate(1).ok_or(MapError::OutOfTables)?;
        let child_size = Geometry::block_size(level + 1);
        let base = block & OUTPUT_MASK;
        let attributes = block & !OUTPUT_MASK & !(VALID | TABLE_OR_PAGE);
        let kind = if level + 1 == 3 { TABLE_OR_PAGE } else { 0 };
        // SAFETY: `new` is a fresh table owned by this map; `entry` points into
        // a table owned by this map.
        unsafe {
            for (i, child) in (*new.as_ptr()).0.iter_mut().enumerate() {
                *child = (base + i as u64 * child_size) | attributes | VALID | kind;
            }
            *entry = new.as_ptr() as u64 | VALID | TABLE_OR_PAGE;
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    /// Counts the tables it hands out, so tests can see blocks being used.
    struct Counting(usize);

    impl TableAllocator for Counting {
        fn allocate(&mut self, count: usize) -> Option<NonNull<Table>> {
            self.0 += count;
            HeapTables.allocate(count)
        }
    }

    fn stage2() -> (PageTable, Counting) {
        let mut tables = Counting(0);
        let map = PageTable::new(Stage::Stage2, Geometry::stage2(40), 48, &mut tables).unwrap();
        (map, tables)
    }

    #[test]
    fn geometry_follows_the_input_size() {
        assert_eq!(
            Geometry::stage1(48),
            Geometry { input_bits: 48, root_level: 0, root_tables: 1 }
        );
        assert_eq!(
            Geometry::stage1(39),
            Geometry { input_bits: 39, root_level: 1, root_tables: 1 }
        );
        // 40-bit IPA: two concatenated level-1 tables instead of a level-0 walk.
        assert_eq!(
            Geometry::stage2(40),
            Geometry { input_bits: 40, root_level: 1, root_tables: 2 }
        );
        assert_eq!(
            Geometry::stage2(43),
            Geometry { input_bits: 43, root_level: 1, root_tables: 16 }
        );
        assert_eq!(
            Geometry::stage2(44),
            Geometry { input_bits: 44, root_level: 0, root_tables: 1 }
        );
        assert_eq!(
            Geometry::stage2(48),
            Geometry { input_bits: 48, root_level: 0, root_tables: 1 }
        );
    }

    #[test]
    fn maps_pages_and_translates_them() {
        let (mut map, mut tables) = stage2();
        map.map(&mut tables, 0x4000_0000, 0x8_1234_5000, 3 * PAGE_SIZE, Attributes::RAM).unwrap();
        let t = map.translate(0x4000_1abc).unwrap();
        assert_eq!(t.output, 0x8_1234_6abc);
        assert_eq!(t.size, PAGE_SIZE);
        assert_eq!(t.attributes, Attributes::RAM);
        assert_eq!(map.translate(0x4000_3000), None);
        assert_eq!(map.translate(0x3fff_f000), None);
    }

    #[test]
    fn uses_blocks_where_alignment_allows() {
        let (mut map, mut tables) = stage2();
        let before = tables.0;
        // 1 GiB + 2 MiB + 4 KiB, all aligned: one 1 GiB block, one 2 MiB block, one page.
        map.map(&mut tables, GIB, 2 * GIB, GIB + 2 * MIB + PAGE_SIZE, Attributes::RAM).unwrap();
        assert_eq!(map.translate(GIB + 5).unwrap().size, GIB);
        assert_eq!(map.translate(2 * GIB + MIB).unwrap().size, 2 * MIB);
        assert_eq!(map.translate(2 * GIB + 2 * MIB).unwrap().size, PAGE_SIZE);
        // Only a level-2 and a level-3 table were needed below the root.
        assert_eq!(tables.0 - before, 2);
    }

    #[test]
    fn misaligned_output_forces_pages() {
        let (mut map, mut tables) = stage2();
        map.map(&mut tables, 0, PAGE_SIZE, 2 * MIB, Attributes::RAM).unwrap();
        assert_eq!(map.translate(0).unwrap().size, PAGE_SIZE);
        assert_eq!(map.translate(2 * MIB - 1).unwrap().output, 2 * MIB + PAGE_SIZE - 1);
    }

    #[test]
    fn refuses_overlaps_and_bad_ranges() {
        let (mut map, mut tables) = stage2();
        map.map(&mut tables, 0, 0, 2 * MIB, Attributes::RAM).unwrap();
        assert_eq!(
            map.map(&mut tables, MIB, 0x1000_0000, PAGE_SIZE, Attributes::RAM),
            Err(MapError::AlreadyMapped { address: MIB })
        );
        assert_eq!(
            map.map(&mut tables, 0x123, 0, PAGE_SIZE, Attributes::RAM),
            Err(MapError::Misaligned { address: 0x123 })
        );
        assert_eq!(
            map.map(&mut tables, 1 << 40, 0, PAGE_SIZE, Attributes::RAM),
            Err(MapError::OutOfRange { address: 1 << 40 })
        );
        assert_eq!(
            map.map(&mut tables, !0xfff, 0, 2 * PAGE_SIZE, Attributes::RAM),
            Err(MapError::OutOfRange { address: !0xfff })
        );
        assert_eq!(map.translate(1 << 41), None);
    }

    #[test]
    fn unmapping_splits_blocks_and_keeps_the_rest() {
        let (mut map, mut tables) = stage2();
        map.map(&mut tables, 0, 0x8000_0000, GIB, Attributes::READ_WRITE).unwrap();
        // Punch one page out of the middle of the 1 GiB block.
        map.unmap(&mut tables, 0x1234_5000, PAGE_SIZE).unwrap();
        assert_eq!(map.translate(0x1234_5000), None);
        let before = map.translate(0x1234_4fff).unwrap();
        assert_eq!(before.output, 0x9234_4fff);
        assert_eq!(before.size, PAGE_SIZE);
        assert_eq!(before.attributes, Attributes::READ_WRITE);
        // Far away, the split left 2 MiB blocks.
        let far = map.translate(0x3000_0000).unwrap();
        assert_eq!((far.output, far.size), (0xb000_0000, 2 * MIB));
        // Whole blocks go without splitting; unmapped holes are skipped.
        map.unmap(&mut tables, 0x2000_0000, 0x2000_0000).unwrap();
        assert_eq!(map.translate(0x3000_0000), None);
        assert!(map.translate(0x1fff_f000).is_some());
        // The space is free again.
        map.map(&mut tables, 0x1234_5000, 0, PAGE_SIZE, Attributes::DEVICE).unwrap();
        assert_eq!(map.translate(0x1234_5000).unwrap().attributes, Attributes::DEVICE);
    }

    #[test]
    fn stage1_and_stage2_encode_permissions_differently() {
        let stage1 = Stage::El2.encode(Attributes::READ_ONLY);
        assert_eq!(stage1 & S1_READ_ONLY, S1_READ_ONLY);
        assert_eq!((stage1 >> S1_ATTR_INDEX_SHIFT) & 7, mair::NORMAL);
        assert_ne!(stage1 & EXECUTE_NEVER, 0);
        let stage2 = Stage::Stage2.encode(Attributes::DEVICE);
        assert_eq!(stage2 & (S2_READ | S2_WRITE), S2_READ | S2_WRITE);
        assert_eq!(stage2 & S2_MEMATTR_MASK, S2_MEMATTR_DEVICE_NGNRE);
        for attrs in [
            Attributes::CODE,
            Attributes::READ_ONLY,
            Attributes::READ_WRITE,
            Attributes::RAM,
            Attributes::DEVICE,
        ] {
            assert_eq!(Stage::El2.decode(Stage::El2.encode(attrs)), attrs);
            assert_eq!(Stage::Stage2.decode(Stage::Stage2.encode(attrs)), attrs);
        }
    }

    #[test]
    fn el2_map_with_a_48_bit_input() {
        let mut tables = Counting(0);
        let mut map = PageTable::new(Stage::El2, Geometry::stage1(48), 48, &mut tables).unwrap();
        map.map(&mut tables, 0x0900_0000, 0x0900_0000, PAGE_SIZE, Attributes::DEVICE).unwrap();
        map.map(&mut tables, 0x4000_0000, 0x4000_0000, 2 * GIB, Attributes::READ_WRITE).unwrap();
        assert_eq!(map.translate(0x0900_0018).unwrap().output, 0x0900_0018);
        assert_eq!(map.translate(0x8000_0000).unwrap().size, GIB);
    }
}
