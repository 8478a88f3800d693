//! `probe.mode=checks`, the default: a guest's basic rights and wrongs.
//! PSCI_VERSION over HVC answers 1.1; a load from an address with neither
//! RAM nor device comes back as a synchronous external abort injected into
//! this guest; an instruction class Duet does not handle (SVE) comes back as
//! an undefined-instruction exception; and after both the guest still runs
//! and can power off.

use crate::exceptions::guarded;
use crate::guarded as leaf;
use crate::smccc::{self, PSCI_VERSION};
use core::arch::asm;
use duet_probe::platform::host;

/// Inside the virtual platform's address space, but neither RAM nor device
/// (QEMU virt's PCIe window, which no guest is given).
const HOLE: u64 = host::PCIE_MMIO;

pub fn run() -> ! {
    let version = smccc::hvc(PSCI_VERSION, [0; 3]);
    say!("probe: PSCI version {}.{}", version >> 16, version & 0xffff);

    // SAFETY: a load from a hole, inside a guarded leaf function.
    match guarded(|| unsafe { leaf::probe_load32(HOLE, 0) }) {
        Err(e) => {
            say!("probe: load from a hole: exception class {:#x}, FAR {:#x}", e.class(), e.far)
        }
        Ok(_) => say!("probe: load from a hole: NO EXCEPTION"),
    }

    allow_fp_and_sve();
    // SAFETY: RDVL is an SVE instruction; it should fault, not run.
    match guarded(|| unsafe { leaf::probe_sve_rdvl() }) {
        Err(e) => say!("probe: SVE instruction: exception class {:#x}", e.class()),
        Ok(_) => say!("probe: SVE instruction: NO EXCEPTION"),
    }

    say!("probe: still running; powering off");
    smccc::power_off()
}

/// Gives EL1 FP and SVE access (CPACR_EL1.FPEN and ZEN), so that an SVE
/// instruction goes past EL1's own traps and reaches Duet's, which Duet
/// does not handle.
fn allow_fp_and_sve() {
    // SAFETY: changes only which instructions trap.
    unsafe {
        asm!(
            "mrs {0}, cpacr_el1",
            "orr {0}, {0}, #(3 << 16)", // ZEN
            "orr {0}, {0}, #(3 << 20)", // FPEN
            "msr cpacr_el1, {0}",
            "isb",
            out(reg) _
        )
    };
}
