//! The entries of the guest's identity map (`mmu.rs` in the guest installs
//! them): what each descriptor holds, computed as plain values so that the
//! host can test them. The first GiB (devices) is one Device-nGnRE block,
//! never executable; the RAM GiB is 2 MiB Normal write-back blocks, except
//! the 2 MiB region holding the stack's guard page, which is 4 KiB pages
//! with the guard page left invalid: a stack overflow faults on it instead
//! of running silently into `.bss`.

/// One translation table: 512 descriptors (4 KiB granule).
pub type Entries = [u64; 512];

pub const PAGE: u64 = 1 << 12;
pub const BLOCK_2M: u64 = 1 << 21;
pub const GIB: u64 = 1 << 30;

/// Descriptor kinds: a block (levels 1 and 2), a table (levels 1 and 2)
/// or a page (level 3); 0 is invalid.
pub const BLOCK: u64 = 0b01;
pub const TABLE: u64 = 0b11;
pub const PAGE_DESCRIPTOR: u64 = 0b11;
/// Attribute index 0 (Device-nGnRE in MAIR_EL1) and 1 (Normal write-back).
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// The attributes of the devices' GiB: Device-nGnRE, never executable.
pub const DEVICE: u64 = ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;
/// The attributes of RAM: Normal write-back, inner shareable (the same as
/// Duet's view, so virtio buffers are coherent and exclusives work).
pub const NORMAL: u64 = ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG;

/// Level 1: the first GiB a device block, the second (RAM, from
/// `GIB`) the level-2 table at `level2`.
pub fn level1(level2: u64) -> Entries {
    let mut entries = [0; 512];
    entries[0] = BLOCK | DEVICE;
    entries[1] = level2 | TABLE;
    entries
}

/// Level 2 for the GiB at `base`: 2 MiB RAM blocks, but the region
/// holding `guard` goes through the level-3 table at `level3`.
pub fn level2(base: u64, guard: u64, level3: u64) -> Entries {
    let mut entries = [0; 512];
    for (i, entry) in entries.iter_mut().enumerate() {
        let address = base + i as u64 * BLOCK_2M;
        *entry = if (address..address + BLOCK_2M).contains(&guard) {
            level3 | TABLE
        } else {
            address | BLOCK | NORMAL
        };
    }
    entries
}

/// Level 3 for the 2 MiB region holding `guard`: RAM pages, the guard
/// page invalid.
pub fn level3(guard: u64) -> Entries {
    let base = guard & !(BLOCK_2M - 1);
    let mut entries = [0; 512];
    for (i, entry) in entries.iter_mut().enumerate() {
        let address = base + i as u64 * PAGE;
        if address != guard & !(PAGE - 1) {
            *entry = address | PAGE_DESCRIPTOR | NORMAL;
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x4000_0000;
    /// A guard page like the linker's: some way into the third 2 MiB.
    const GUARD: u64 = 0x40d3_5000;
    const LEVEL2: u64 = 0x4030_0000;
    const LEVEL3: u64 = 0x4030_1000;

    #[test]
    fn level1_keeps_devices_and_points_ram_at_level2() {
        let l1 = level1(LEVEL2);
        assert_eq!(l1[0], 0b01 | (1 << 10) | (1 << 53) | (1 << 54));
        assert_eq!(l1[1], LEVEL2 | 0b11);
        assert!(l1[2..].iter().all(|&e| e == 0));
    }

    #[test]
    fn level2_maps_ram_in_2mib_blocks_but_the_guard_region() {
        let l2 = level2(RAM, GUARD, LEVEL3);
        let guard_index = ((GUARD - RAM) / BLOCK_2M) as usize;
        assert_eq!(guard_index, 6);
        assert_eq!(l2[guard_index], LEVEL3 | TABLE);
        for (i, &entry) in l2.iter().enumerate().filter(|&(i, _)| i != guard_index) {
            let address = RAM + i as u64 * BLOCK_2M;
            // Normal write-back (index 1), inner shareable, accessed,
            // executable: the same as the old 1 GiB block.
            assert_eq!(entry, address | 0b01 | (1 << 2) | (3 << 8) | (1 << 10), "entry {i}");
        }
    }

    #[test]
    fn level3_leaves_only_the_guard_page_invalid() {
        let l3 = level3(GUARD);
        let base = GUARD & !(BLOCK_2M - 1);
        let guard_index = ((GUARD - base) / PAGE) as usize;
        assert_eq!(l3[guard_index], 0);
        assert_eq!(l3[guard_index - 1], (GUARD - PAGE) | 0b11 | NORMAL);
        assert_eq!(l3[guard_index + 1], (GUARD + PAGE) | 0b11 | NORMAL);
        assert_eq!(l3.iter().filter(|&&e| e == 0).count(), 1);
        for (i, &entry) in l3.iter().enumerate().filter(|&(i, _)| i != guard_index) {
            assert_eq!(entry, (base + i as u64 * PAGE) | PAGE_DESCRIPTOR | NORMAL);
        }
    }

    #[test]
    fn a_guard_page_at_either_end_of_its_region() {
        for guard in [RAM + BLOCK_2M, RAM + 2 * BLOCK_2M - PAGE] {
            let l3 = level3(guard);
            let index = ((guard % BLOCK_2M) / PAGE) as usize;
            assert_eq!(l3[index], 0);
            assert_eq!(l3.iter().filter(|&&e| e == 0).count(), 1);
            let l2 = level2(RAM, guard, LEVEL3);
            assert_eq!(l2[1], LEVEL3 | TABLE);
            assert_eq!(l2.iter().filter(|&&e| e & 0b11 == TABLE).count(), 1);
        }
    }
}
