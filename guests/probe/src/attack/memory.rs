//! Attempts on memory: the IPAs around the guest's RAM, the top of the IPA
//! space and beyond it, and the host-physical addresses of Duet, of the
//! persona package and of the other VMs' RAM. In the guest's IPA space those
//! numbers are either its own RAM (then it must see only its own, fresh
//! memory) or holes (then every access must fault).

use super::{load, must_all_fault, must_fault_load, must_fault_store, store, Attempt, STORE_MARK};
use crate::entry::Guest;
use duet_probe::platform::{host, virt, IMAGE_MAGIC, IMAGE_MAGIC_OFFSET};
use duet_probe::report::Outcome;
use duet_probe::{breach, own_ram};

const WORD: u64 = 8;
const PAGE: u64 = 4096;
/// Stage 2 maps guest RAM in 2 MiB blocks: one probe per block finds any.
const BLOCK: u64 = 2 << 20;

pub const ATTEMPTS: &[Attempt] = &[
    Attempt { name: "load-below-ram", run: |_| must_fault_load(virt::RAM_BASE - WORD) },
    Attempt { name: "store-below-ram", run: |_| must_fault_store(virt::RAM_BASE - WORD) },
    Attempt { name: "load-above-ram", run: |g| must_fault_load(g.ram_end()) },
    Attempt { name: "store-above-ram", run: |g| must_fault_store(g.ram_end()) },
    Attempt { name: "load-high-ipa", run: |_| must_fault_load(0xff_0000_0000) },
    Attempt { name: "store-high-ipa", run: |_| must_fault_store(0xff_0000_0000) },
    Attempt { name: "load-top-ipa", run: |_| must_fault_load(virt::IPA_LIMIT - WORD) },
    Attempt { name: "store-top-ipa", run: |_| must_fault_store(virt::IPA_LIMIT - WORD) },
    Attempt { name: "load-beyond-ipa", run: |_| must_fault_load(virt::IPA_LIMIT) },
    Attempt { name: "store-beyond-ipa", run: |_| must_fault_store(virt::IPA_LIMIT + PAGE) },
    Attempt { name: "load-persona-package", run: |g| foreign(g, host::PERSONA_PACKAGE) },
    Attempt { name: "load-host-ram-sweep", run: |g| sweep(g, |a| load(a, 8)) },
    Attempt {
        name: "store-host-ram-sweep",
        run: |g| sweep(g, |a| store(a, 8, STORE_MARK).map(|()| 0)),
    },
    Attempt { name: "load-ipa-of-duet-image", run: read_where_duet_lives },
    Attempt { name: "store-ipa-of-duet-image", run: write_where_duet_lives },
];

/// A load from host-physical `address`: its own RAM, or a hole.
fn foreign(guest: &Guest, address: u64) -> Outcome {
    if guest.owns(address) {
        return fresh_page(address);
    }
    must_fault_load(address)
}

/// Every 2 MiB block of host RAM above the guest's own RAM (where Duet's
/// heap and the other VMs' RAM are), and the last word of host RAM.
fn sweep(guest: &Guest, access: fn(u64) -> Result<u64, duet_probe::report::Exception>) -> Outcome {
    let start = guest.ram_end().max(host::RAM_BASE);
    let blocks = (start..host::RAM_END).step_by(BLOCK as usize);
    must_all_fault(blocks.chain([host::RAM_END - WORD]), access)
}

/// IPA 0x4008_0000 is where QEMU loaded Duet, physically; in the guest's
/// IPA space it is its own RAM, which Duet zeroed. Reading it must show
/// zeros, not Duet's image.
fn read_where_duet_lives(guest: &Guest) -> Outcome {
    foreign(guest, host::DUET_IMAGE)
}

/// A page of the guest's own RAM that nothing has written since Duet
/// cleared it: all zeros, and no `Image` header.
fn fresh_page(page: u64) -> Outcome {
    for offset in (0..PAGE).step_by(WORD as usize) {
        match load(page + offset, 8) {
            Ok(0) => {}
            Ok(value) if offset == IMAGE_MAGIC_OFFSET && value as u32 == IMAGE_MAGIC => {
                return breach!("an arm64 Image header (Duet's?) at {page:#x}");
            }
            Ok(value) => {
                return breach!(
                    "{value:#x} at {:#x}, in RAM Duet should have cleared",
                    page + offset
                );
            }
            Err(e) => return breach!("its own RAM at {:#x} faulted ({e})", page + offset),
        }
    }
    own_ram!("read 4 KiB of zeros at {page:#x}, no Duet image")
}

/// Writes all of the guest's RAM below its image (host-physical: QEMU's
/// device tree, Duet's image, its stacks), reads it back, and clears it.
/// Only the guest's own memory changes; Duet must run on untouched.
fn write_where_duet_lives(guest: &Guest) -> Outcome {
    let range = guest.ram.base..guest.image().start;
    for pass in [STORE_MARK, 0] {
        for address in range.clone().step_by(WORD as usize) {
            if let Err(e) = store(address, 8, pass) {
                return breach!("its own RAM at {address:#x} faulted ({e})");
            }
        }
        if let Some(address) =
            range.clone().step_by(WORD as usize).find(|&a| load(a, 8) != Ok(pass))
        {
            return breach!("its own RAM at {address:#x} did not keep what it wrote");
        }
    }
    own_ram!("wrote, read back and cleared {:#x}..{:#x}", range.start, range.end)
}
