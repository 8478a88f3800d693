//! Attempts with accesses of unusual shape: what a hypervisor cannot decode
//! from the syndrome (pairs, 64-byte SIMD loads, writeback, exclusives,
//! atomics), unaligned accesses to emulated registers and loads crossing
//! from RAM into a hole, cache maintenance and DC ZVA on holes, instruction
//! fetches from holes, and stage-1 page-table walks that read from holes
//! and from the GIC. Each must end in an exception (or, for a cache
//! operation that touches nothing, in nothing at all).

use super::{must_fault, Attempt, STORE_MARK};
use crate::entry::Guest;
use crate::exceptions::{guarded, guarded_jump};
use crate::guarded as leaf;
use crate::mmu::{self, NORMAL_ALIAS, UPPER_VA};
use duet_probe::platform::{host, virt};
use duet_probe::report::Outcome;
use duet_probe::{breach, emulated};

/// A hole: the first IPA above the guest's RAM (Normal memory in its own
/// map, so every access shape goes out to stage 2).
fn hole(guest: &Guest) -> u64 {
    guest.ram_end()
}

/// Another VM's RAM, physically; a hole in this guest's IPA space.
const HOST_RAM: u64 = 0x8000_0000;

/// The GIC distributor as Normal memory (see `mmu`).
const GICD_NORMAL: u64 = NORMAL_ALIAS + virt::GICD_BASE;
const UART_NORMAL: u64 = NORMAL_ALIAS + virt::UART_BASE;

pub const ATTEMPTS: &[Attempt] = &[
    Attempt { name: "load-pair-hole", run: |g| run(leaf::probe_load_pair, hole(g), 0) },
    Attempt { name: "store-pair-hole", run: |g| run(leaf::probe_store_pair, hole(g), STORE_MARK) },
    Attempt { name: "load-pair-gicd", run: |_| device(leaf::probe_load_pair, virt::GICD_BASE, 0) },
    Attempt {
        name: "store-pair-uart",
        run: |_| device(leaf::probe_store_pair, virt::UART_BASE, 0),
    },
    Attempt { name: "load-simd-64-bytes-hole", run: |g| run(leaf::probe_load_simd64, hole(g), 0) },
    Attempt {
        name: "load-simd-64-bytes-gicd",
        run: |_| device(leaf::probe_load_simd64, GICD_NORMAL, 0),
    },
    Attempt { name: "load-crossing-ram-end", run: |g| run(leaf::probe_load64, hole(g) - 4, 0) },
    Attempt {
        name: "store-crossing-ram-end",
        run: |g| run(leaf::probe_store64, hole(g) - 4, STORE_MARK),
    },
    Attempt {
        name: "load-unaligned-gicd",
        run: |_| device(leaf::probe_load32, GICD_NORMAL + 1, 0),
    },
    Attempt {
        name: "store-unaligned-gicd",
        run: |_| device(leaf::probe_store32, GICD_NORMAL + 2, 0),
    },
    Attempt {
        name: "load-unaligned-uart",
        run: |_| device(leaf::probe_load32, UART_NORMAL + 1, 0),
    },
    Attempt {
        name: "load-post-index-uart",
        run: |_| device(leaf::probe_load_post_index, virt::UART_BASE, 0),
    },
    Attempt { name: "load-exclusive-hole", run: |g| run(leaf::probe_load_exclusive, hole(g), 0) },
    Attempt {
        name: "load-exclusive-gicd",
        run: |_| device(leaf::probe_load_exclusive, GICD_NORMAL, 0),
    },
    Attempt { name: "atomic-add-hole", run: |g| run(leaf::probe_atomic_add, hole(g), 1) },
    Attempt { name: "atomic-add-gicd", run: |_| device(leaf::probe_atomic_add, GICD_NORMAL, 1) },
    Attempt { name: "compare-swap-host-ram", run: |_| run(leaf::probe_compare_swap, HOST_RAM, 1) },
    Attempt { name: "dc-zva-hole", run: |g| run(leaf::probe_dc_zva, hole(g), 0) },
    Attempt { name: "dc-zva-host-ram", run: |_| run(leaf::probe_dc_zva, HOST_RAM, 0) },
    Attempt { name: "dc-zva-gicd", run: |_| device(leaf::probe_dc_zva, GICD_NORMAL, 0) },
    Attempt { name: "dc-civac-hole", run: |g| maintenance(leaf::probe_dc_civac, hole(g)) },
    Attempt { name: "dc-civac-host-ram", run: |_| maintenance(leaf::probe_dc_civac, HOST_RAM) },
    Attempt { name: "dc-ivac-host-ram", run: |_| maintenance(leaf::probe_dc_ivac, HOST_RAM) },
    Attempt { name: "execute-hole", run: |g| execute(hole(g)) },
    Attempt { name: "execute-host-ram", run: |_| execute(HOST_RAM) },
    Attempt { name: "execute-gicd", run: |_| execute(GICD_NORMAL) },
    Attempt { name: "execute-high-ipa", run: |_| execute(0xff_0000_0000) },
    Attempt { name: "page-walk-through-hole", run: |g| walk(hole(g)) },
    Attempt { name: "page-walk-through-host-ram", run: |_| walk(HOST_RAM) },
    Attempt { name: "page-walk-through-gicd", run: |_| walk(virt::GICD_BASE) },
    Attempt { name: "page-walk-through-flash", run: |_| walk(host::FLASH0) },
    Attempt { name: "address-translation-through-hole", run: |g| translate(hole(g)) },
];

/// A leaf function of `guarded` taking an address and a value.
type Leaf = unsafe extern "C" fn(u64, u64) -> u64;

/// Runs `leaf` on `address`, a hole: it must fault.
fn run(leaf: Leaf, address: u64, value: u64) -> Outcome {
    // SAFETY: a deliberate access to a hole, inside a guarded leaf function.
    must_fault(guarded(|| unsafe { leaf(address, value) }), "the access", address)
}

/// Runs `leaf` on an emulated device's register: Duet may refuse it (an
/// exception) or emulate it; either way only its own device is involved.
fn device(leaf: Leaf, address: u64, value: u64) -> Outcome {
    // SAFETY: an access to the guest's own emulated device, inside a
    // guarded leaf function.
    match guarded(|| unsafe { leaf(address, value) }) {
        Err(e) => Outcome::Exception(e),
        Ok(result) => emulated!("answered by its own emulated device ({result:#x})"),
    }
}

/// Cache maintenance by address on a hole: it may fault, or complete with
/// no effect (nothing there to clean); it must not reach anyone's memory,
/// which the other attempts and the other VM's health show.
fn maintenance(leaf: Leaf, address: u64) -> Outcome {
    // SAFETY: cache maintenance of a hole, inside a guarded leaf function.
    match guarded(|| unsafe { leaf(address, 0) }) {
        Err(e) => Outcome::Exception(e),
        Ok(_) => emulated!("completed with nothing to maintain"),
    }
}

/// A branch to `address`: the instruction fetch must fault.
fn execute(address: u64) -> Outcome {
    match guarded_jump(address) {
        Err(e) => Outcome::Exception(e),
        Ok(()) => breach!("a branch to {address:#x} ran code and came back"),
    }
}

/// A load through stage-1 tables at `table`: the walk must fault.
fn walk(table: u64) -> Outcome {
    // SAFETY: a load through the upper VA range, inside a guarded leaf
    // function; nothing of the probe's lives there.
    let result =
        mmu::walk_through(table, || guarded(|| unsafe { leaf::probe_load64(UPPER_VA, 0) }));
    must_fault(result, "a load through tables in a hole", table)
}

/// PAR_EL1.F: the translation failed.
const PAR_FAILED: u64 = 1;

/// AT S1E1R through tables at `table`: it must fault, or report failure
/// in PAR_EL1, and never produce an address.
fn translate(table: u64) -> Outcome {
    // SAFETY: an address translation instruction, inside a guarded leaf
    // function.
    let result = mmu::walk_through(table, || guarded(|| unsafe { leaf::probe_at_s1e1r(UPPER_VA) }));
    match result {
        Err(e) => Outcome::Exception(e),
        Ok(par) if par & PAR_FAILED != 0 => emulated!("PAR_EL1 {par:#x}: the translation failed"),
        Ok(par) => breach!("AT S1E1R translated through a hole: PAR_EL1 {par:#x}"),
    }
}
