//! `probe.mode=attack`: every way out of a VM the probe knows, tried one
//! after another. Each attempt prints one line,
//! `probe: attempt <name>: <outcome>` (see `duet_probe::report`); the last
//! line counts them. Then the probe powers off with PSCI SYSTEM_OFF over
//! SMC, itself a last attempt: Duet must take it as this VM's power-off,
//! not the machine's.
//!
//! The attempts, by group:
//! - [`memory`]: IPAs around its RAM, at the top of and beyond the IPA
//!   space, and where the host keeps Duet, the persona package and the
//!   other VMs' RAM;
//! - [`devices`]: the host's devices and the parts of the GIC and UART its
//!   virtual platform does not give it, console input meant for others;
//! - [`shapes`]: accesses no hypervisor can emulate (pairs, SIMD, atomics,
//!   exclusives, writeback), unaligned and page-crossing accesses, cache
//!   maintenance, instruction fetches and page-table walks through holes;
//! - [`registers`]: EL2 and EL3 system registers and instructions, trapped
//!   timer and GIC registers, the PMU;
//! - [`firmware`]: SMCs to firmware and HVCs Duet does not implement.

mod devices;
mod firmware;
mod memory;
mod registers;
mod shapes;

use crate::entry::Guest;
use crate::exceptions::guarded;
use crate::guarded as leaf;
use crate::mmu;
use crate::smccc::{self, Conduit, Registers, PSCI_SYSTEM_OFF};
use duet_probe::breach;
use duet_probe::report::{Exception, Outcome, Tally};

/// One attempt: a name for its report line, and what it does.
pub struct Attempt {
    pub name: &'static str,
    pub run: fn(&Guest) -> Outcome,
}

/// What stores write where they must not arrive.
pub const STORE_MARK: u64 = 0x0bad_c0de_0bad_c0de;

pub fn run(guest: &Guest) -> ! {
    mmu::enable();
    mmu::enable_fp();
    let groups = [
        memory::ATTEMPTS,
        devices::ATTEMPTS,
        shapes::ATTEMPTS,
        registers::ATTEMPTS,
        firmware::ATTEMPTS,
    ];
    let total: usize = groups.iter().map(|g| g.len()).sum();
    say!("probe: attack: {total} attempts");
    let mut tally = Tally::default();
    for attempt in groups.iter().flat_map(|group| group.iter()) {
        let outcome = (attempt.run)(guest);
        tally.add(&outcome);
        say!("probe: attempt {}: {outcome}", attempt.name);
    }
    say!("probe: attack done: {tally}");
    say!("probe: powering off with PSCI SYSTEM_OFF over SMC");
    smccc::call(Conduit::Smc, Registers::call(PSCI_SYSTEM_OFF, [0; 3]));
    say!("probe: attempt smc-system-off: NOT CONTAINED: SYSTEM_OFF over SMC returned");
    smccc::power_off()
}

/// A load of `size` bytes (1, 2, 4 or 8) from `address`.
pub fn load(address: u64, size: u8) -> Result<u64, Exception> {
    // SAFETY: a deliberate access that may fault, inside a guarded leaf
    // function; the probe's own memory is never at these addresses unless
    // the attempt means it.
    guarded(|| unsafe {
        match size {
            1 => leaf::probe_load8(address, 0),
            2 => leaf::probe_load16(address, 0),
            4 => leaf::probe_load32(address, 0),
            _ => leaf::probe_load64(address, 0),
        }
    })
}

/// A store of `size` bytes of `value` to `address`.
pub fn store(address: u64, size: u8, value: u64) -> Result<(), Exception> {
    // SAFETY: as in `load`.
    guarded(|| unsafe {
        match size {
            1 => leaf::probe_store8(address, value),
            2 => leaf::probe_store16(address, value),
            4 => leaf::probe_store32(address, value),
            _ => leaf::probe_store64(address, value),
        }
    })
    .map(|_| ())
}

/// A result that must be an exception; `Ok` means the guest got through.
pub fn must_fault(result: Result<u64, Exception>, what: &str, address: u64) -> Outcome {
    match result {
        Err(e) => Outcome::Exception(e),
        Ok(value) => breach!("{what} at {address:#x} completed (value {value:#x})"),
    }
}

/// A load from `address` that must fault.
pub fn must_fault_load(address: u64) -> Outcome {
    must_fault(load(address, 8), "a load", address)
}

/// A store to `address` that must fault.
pub fn must_fault_store(address: u64) -> Outcome {
    must_fault(store(address, 8, STORE_MARK).map(|()| 0), "a store", address)
}

/// `access` at each of `addresses`, every one of which must fault.
pub fn must_all_fault(
    addresses: impl Iterator<Item = u64>,
    access: fn(u64) -> Result<u64, Exception>,
) -> Outcome {
    let mut first = None;
    let mut count = 0;
    for address in addresses {
        match access(address) {
            Err(e) => {
                first.get_or_insert(e);
                count += 1;
            }
            Ok(value) => {
                return breach!("an access at {address:#x} completed (value {value:#x})");
            }
        }
    }
    match first {
        Some(first) => Outcome::Exceptions { first, count },
        None => breach!("no address was tried"),
    }
}
