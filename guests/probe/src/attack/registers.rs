//! Attempts on system registers and instructions. EL2's and EL3's are
//! UNDEFINED at EL1: the CPU itself gives the guest an undefined-instruction
//! exception, Duet never sees them. The physical timer and the GIC's SGI
//! registers trap to Duet, which emulates what a guest may do (SGIs to its
//! own vCPUs) and refuses the rest. An illegal exception return asking for
//! EL2 must leave the guest at EL1. The debug and PMU registers, hardware
//! Duet does not switch between vCPUs, must trap or keep nothing; and the
//! PMU must never count what Duet does at EL2.

use super::Attempt;
use crate::exceptions::guarded;
use crate::guarded as leaf;
use duet_probe::report::Outcome;
use duet_probe::{breach, emulated};

/// A leaf function of `guarded` taking one value.
type Leaf = unsafe extern "C" fn(u64) -> u64;

/// ICC_SGI1R_EL1 fields: target list (Aff0 bits), Aff1, INTID, IRM.
const SGI_TARGETS_1_TO_3: u64 = 0b1110;
const SGI_AFF1_1: u64 = 1 << 16;
const SGI_INTID_1: u64 = 1 << 24;
const SGI_ALL_BUT_SELF: u64 = 1 << 40;

/// SPSR for EL2h with every exception masked.
const SPSR_EL2H: u64 = 0b1111 << 6 | 0b1001;

/// PMCCFILTR_EL0: P (bit 31) and U (bit 30) stop the cycle counter at EL1
/// and EL0; NSH (bit 27) makes it count at EL2.
const COUNT_NOTHING: u64 = 1 << 31 | 1 << 30;
const COUNT_EL2_ONLY: u64 = COUNT_NOTHING | 1 << 27;

pub const ATTEMPTS: &[Attempt] = &[
    Attempt { name: "read-hcr-el2", run: |_| refused(leaf::probe_read_hcr_el2, 0) },
    Attempt { name: "write-hcr-el2", run: |_| refused(leaf::probe_write_hcr_el2, 0) },
    Attempt { name: "read-vttbr-el2", run: |_| refused(leaf::probe_read_vttbr_el2, 0) },
    Attempt { name: "write-vttbr-el2", run: |_| refused(leaf::probe_write_vttbr_el2, 0) },
    Attempt { name: "read-vbar-el2", run: |_| refused(leaf::probe_read_vbar_el2, 0) },
    Attempt { name: "write-vbar-el2", run: |_| refused(leaf::probe_write_vbar_el2, 0) },
    Attempt { name: "read-sctlr-el2", run: |_| refused(leaf::probe_read_sctlr_el2, 0) },
    Attempt { name: "read-esr-el2", run: |_| refused(leaf::probe_read_esr_el2, 0) },
    Attempt { name: "read-elr-el2", run: |_| refused(leaf::probe_read_elr_el2, 0) },
    Attempt { name: "read-tpidr-el2", run: |_| refused(leaf::probe_read_tpidr_el2, 0) },
    Attempt { name: "read-cnthctl-el2", run: |_| refused(leaf::probe_read_cnthctl_el2, 0) },
    Attempt { name: "write-cnthctl-el2", run: |_| refused(leaf::probe_write_cnthctl_el2, 3) },
    Attempt { name: "read-cntvoff-el2", run: |_| refused(leaf::probe_read_cntvoff_el2, 0) },
    Attempt { name: "write-cntvoff-el2", run: |_| refused(leaf::probe_write_cntvoff_el2, 0) },
    Attempt { name: "read-mdcr-el2", run: |_| refused(leaf::probe_read_mdcr_el2, 0) },
    Attempt { name: "write-mdcr-el2", run: |_| refused(leaf::probe_write_mdcr_el2, 0) },
    Attempt { name: "read-vmpidr-el2", run: |_| refused(leaf::probe_read_vmpidr_el2, 0) },
    Attempt { name: "write-vmpidr-el2", run: |_| refused(leaf::probe_write_vmpidr_el2, 0) },
    Attempt { name: "read-ich-hcr-el2", run: |_| refused(leaf::probe_read_ich_hcr_el2, 0) },
    Attempt { name: "write-ich-hcr-el2", run: |_| refused(leaf::probe_write_ich_hcr_el2, 0) },
    Attempt { name: "read-ich-lr0-el2", run: |_| refused(leaf::probe_read_ich_lr0_el2, 0) },
    Attempt { name: "write-ich-lr0-el2", run: |_| refused(leaf::probe_write_ich_lr0_el2, 0) },
    Attempt { name: "read-icc-sre-el2", run: |_| refused(leaf::probe_read_icc_sre_el2, 0) },
    Attempt { name: "read-sp-el1", run: |_| refused(leaf::probe_read_sp_el1, 0) },
    Attempt { name: "read-cnthp-ctl-el2", run: |_| refused(leaf::probe_read_cnthp_ctl_el2, 0) },
    Attempt { name: "read-scr-el3", run: |_| refused(leaf::probe_read_scr_el3, 0) },
    Attempt { name: "write-scr-el3", run: |_| refused(leaf::probe_write_scr_el3, 0) },
    Attempt { name: "read-sctlr-el3", run: |_| refused(leaf::probe_read_sctlr_el3, 0) },
    Attempt { name: "read-mdcr-el3", run: |_| refused(leaf::probe_read_mdcr_el3, 0) },
    Attempt { name: "read-vbar-el3", run: |_| refused(leaf::probe_read_vbar_el3, 0) },
    Attempt { name: "read-icc-sre-el3", run: |_| refused(leaf::probe_read_icc_sre_el3, 0) },
    Attempt { name: "at-s12e1r", run: |_| refused(leaf::probe_at_s12e1r, 0x4020_0000) },
    Attempt { name: "at-s1e2r", run: |_| refused(leaf::probe_at_s1e2r, 0x4020_0000) },
    Attempt { name: "at-s1e3r", run: |_| refused(leaf::probe_at_s1e3r, 0x4020_0000) },
    Attempt { name: "tlbi-alle2", run: |_| refused(leaf::probe_tlbi_alle2, 0) },
    Attempt { name: "tlbi-vmalls12e1is", run: |_| refused(leaf::probe_tlbi_vmalls12e1is, 0) },
    Attempt { name: "tlbi-alle3", run: |_| refused(leaf::probe_tlbi_alle3, 0) },
    Attempt { name: "eret-to-el2", run: |_| refused(leaf::probe_eret_to, SPSR_EL2H) },
    Attempt {
        name: "write-icc-sgi0r-el1",
        run: |_| refused(leaf::probe_write_icc_sgi0r_el1, SGI_ALL_BUT_SELF),
    },
    Attempt {
        name: "write-icc-asgi1r-el1",
        run: |_| refused(leaf::probe_write_icc_asgi1r_el1, SGI_ALL_BUT_SELF),
    },
    Attempt {
        name: "sgi-to-vcpus-it-does-not-have",
        run: |_| own_gic(SGI_INTID_1 | SGI_TARGETS_1_TO_3),
    },
    Attempt { name: "sgi-to-affinity-1", run: |_| own_gic(SGI_INTID_1 | SGI_AFF1_1 | 1) },
    Attempt { name: "sgi-to-all-but-self", run: |_| own_gic(SGI_INTID_1 | SGI_ALL_BUT_SELF) },
    Attempt { name: "read-cntp-ctl-el0", run: |_| refused(leaf::probe_read_cntp_ctl_el0, 0) },
    Attempt { name: "write-cntp-ctl-el0", run: |_| refused(leaf::probe_write_cntp_ctl_el0, 1) },
    Attempt { name: "write-cntp-cval-el0", run: |_| refused(leaf::probe_write_cntp_cval_el0, 0) },
    Attempt { name: "read-cntps-ctl-el1", run: |_| refused(leaf::probe_read_cntps_ctl_el1, 0) },
    Attempt {
        name: "breakpoint-register",
        run: |_| not_kept(leaf::probe_write_dbgbvr0_el1, leaf::probe_read_dbgbvr0_el1, MARK),
    },
    Attempt {
        name: "watchpoint-register",
        run: |_| not_kept(leaf::probe_write_dbgwvr0_el1, leaf::probe_read_dbgwvr0_el1, MARK),
    },
    Attempt {
        name: "os-lock",
        run: |_| not_kept(leaf::probe_write_oslar_el1, leaf::probe_read_oslsr_el1, 1),
    },
    Attempt { name: "read-mdscr-el1", run: |_| reads_zero(leaf::probe_read_mdscr_el1) },
    Attempt { name: "read-pmcr-el0", run: |_| refused(leaf::probe_read_pmcr_el0, 0) },
    Attempt { name: "write-pmccntr-el0", run: |_| refused(leaf::probe_write_pmccntr_el0, 0) },
    Attempt { name: "pmu-cycles-at-el2", run: |_| pmu_at_el2() },
];

/// An address-like value for the debug registers to keep, if they did.
const MARK: u64 = 0x0000_4000_dead_bee0;

/// Writes `value` with `write`, reads back with `read`. Debug registers
/// are hardware every vCPU on a CPU shares, which Duet does not switch: it
/// must trap them (an exception), or emulate them as reading zero and
/// ignoring writes; a register that keeps what was written is shared.
fn not_kept(write: Leaf, read: Leaf, value: u64) -> Outcome {
    // SAFETY: debug registers with every debug exception masked (PSTATE.D)
    // and nothing enabled, inside guarded leaf functions.
    let written = guarded(|| unsafe { write(value) });
    // SAFETY: as above.
    let read_back = guarded(|| unsafe { read(0) });
    match (written, read_back) {
        (Err(e), _) | (_, Err(e)) => Outcome::Exception(e),
        (Ok(_), Ok(0)) => emulated!("the write was ignored and the register reads as zero"),
        (Ok(_), Ok(kept)) => {
            breach!("the register kept {kept:#x}: hardware the other vCPUs on this CPU share")
        }
    }
}

/// Reads a debug register the guest never wrote: it must trap or read as
/// zero, not show what the hardware holds.
fn reads_zero(read: Leaf) -> Outcome {
    // SAFETY: reading a debug register, inside a guarded leaf function.
    match guarded(|| unsafe { read(0) }) {
        Err(e) => Outcome::Exception(e),
        Ok(0) => emulated!("the register reads as zero"),
        Ok(value) => breach!("the register holds {value:#x}: hardware this vCPU does not own"),
    }
}

/// Runs `leaf` with `value`: it must take an exception.
fn refused(leaf: Leaf, value: u64) -> Outcome {
    // SAFETY: an instruction EL1 may not execute, inside a guarded leaf
    // function.
    match guarded(|| unsafe { leaf(value) }) {
        Err(e) => Outcome::Exception(e),
        Ok(result) => breach!("it ran (result {result:#x})"),
    }
}

/// An SGI request naming vCPUs the guest does not have: Duet's virtual GIC
/// takes it and delivers to nobody outside this VM.
fn own_gic(value: u64) -> Outcome {
    // SAFETY: a write of ICC_SGI1R_EL1, which Duet traps and emulates,
    // inside a guarded leaf function.
    match guarded(|| unsafe { leaf::probe_write_icc_sgi1r_el1(value) }) {
        Err(e) => Outcome::Exception(e),
        Ok(_) => emulated!("ICC_SGI1R_EL1 {value:#x} taken by its own virtual GIC"),
    }
}

/// Counts cycles at EL2 only, across one HVC that Duet handles there. Any
/// count is Duet's own execution, seen from inside a guest. A first count
/// with EL2 filtered out too must be zero, or the filter does not work and
/// the second count proves nothing.
fn pmu_at_el2() -> Outcome {
    let count = |filter| {
        // SAFETY: PMU registers and an HVC, inside a guarded leaf function.
        guarded(|| unsafe { leaf::probe_pmu_cycles_across_hvc(filter) })
    };
    match (count(COUNT_NOTHING), count(COUNT_EL2_ONLY)) {
        (Err(e), _) | (_, Err(e)) => Outcome::Exception(e),
        (Ok(0), Ok(0)) => emulated!("the cycle counter counted nothing at EL2"),
        (Ok(0), Ok(cycles)) => breach!(
            "the PMU counted {cycles} cycles of Duet's own work at EL2 across one HVC \
             (PMCCFILTR_EL0.NSH; 0 with EL2 filtered out)"
        ),
        (Ok(control), Ok(cycles)) => emulated!(
            "the counter's filter does not work here ({control} cycles with every level \
             filtered out, {cycles} with EL2 counted): nothing to conclude"
        ),
    }
}
