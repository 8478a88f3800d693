//! The part of a vCPU's state that stays in the hardware while the vCPU
//! owns its CPU, and must be saved and restored when the CPU switches to
//! another vCPU: EL1 system registers, pointer-authentication keys, FP/SIMD
//! registers, the virtual timer and the GIC virtual CPU interface.

use super::sysreg::{read_sysreg, write_sysreg};
use core::arch::asm;

/// A vCPU's hardware state while it is not loaded.
#[repr(C, align(16))]
#[derive(Clone, Debug)]
pub struct SavedState {
    el1: [u64; EL1_REGISTERS],
    keys: [u64; 10],
    fp: [u128; 32],
    fpcr: u64,
    fpsr: u64,
    timer_ctl: u64,
    timer_cval: u64,
    /// The GIC virtual CPU interface (see `gic::save_virtual_cpu_interface`).
    gic: [u64; 3],
}

impl Default for SavedState {
    fn default() -> Self {
        let mut state = SavedState {
            el1: [0; EL1_REGISTERS],
            keys: [0; 10],
            fp: [0; 32],
            fpcr: 0,
            fpsr: 0,
            timer_ctl: 0,
            timer_cval: 0,
            gic: [0; 3],
        };
        state.el1[SCTLR] = SCTLR_EL1_RESET;
        state
    }
}

/// SCTLR_EL1 with its RES1 bits only: MMU, caches and alignment checks off.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
const SCTLR: usize = 0;

macro_rules! el1_registers {
    ($($name:literal),* $(,)?) => {
        const EL1_NAMES: &[&str] = &[$($name),*];
        const EL1_REGISTERS: usize = EL1_NAMES.len();

        fn save_el1(into: &mut [u64; EL1_REGISTERS]) {
            let mut slot = into.iter_mut();
            $(*slot.next().expect("one slot per register") = read_sysreg!($name);)*
        }

        fn load_el1(from: &[u64; EL1_REGISTERS]) {
            let mut slot = from.iter();
            $(write_sysreg!($name, *slot.next().expect("one slot per register"));)*
        }
    };
}

// SCTLR_EL1 first (index SCTLR). VMPIDR_EL2 travels with the EL1 state
// because it is the guest's MPIDR_EL1.
el1_registers!(
    "sctlr_el1",
    "ttbr0_el1",
    "ttbr1_el1",
    "tcr_el1",
    "mair_el1",
    "amair_el1",
    "vbar_el1",
    "contextidr_el1",
    "tpidr_el1",
    "tpidr_el0",
    "tpidrro_el0",
    "sp_el1",
    "elr_el1",
    "spsr_el1",
    "esr_el1",
    "far_el1",
    "afsr0_el1",
    "afsr1_el1",
    "par_el1",
    "cpacr_el1",
    "cntkctl_el1",
    "csselr_el1",
    "mdscr_el1",
    "vmpidr_el2",
);

/// Whether the CPU has pointer authentication (whose keys guests use
/// without traps).
fn has_pointer_auth() -> bool {
    let isar1 = read_sysreg!("id_aa64isar1_el1");
    let isar2 = read_sysreg!("S3_0_C0_C6_2");
    // APA, API, GPA, GPI in ISAR1; APA3, GPA3 in ISAR2.
    isar1 & (0xff << 4 | 0xff << 24) != 0 || isar2 & (0xff << 8) != 0
}

impl SavedState {
    /// A vCPU that has never run: EL1 at reset, MPIDR `mpidr`.
    pub fn at_reset(mpidr: u64) -> Self {
        let mut state = SavedState::default();
        let vmpidr = EL1_NAMES.iter().position(|n| *n == "vmpidr_el2").expect("listed");
        state.el1[vmpidr] = 1 << 31 | mpidr;
        state
    }

    /// Copies this CPU's hardware state for the loaded vCPU into `self`,
    /// and stops its virtual timer so it cannot fire for another vCPU.
    pub fn save(&mut self) {
        save_el1(&mut self.el1);
        if has_pointer_auth() {
            // APIA, APIB, APDA, APDB and APGA keys, low then high halves (by
            // encoding: the assembler knows their names only with PAuth on).
            self.keys = [
                read_sysreg!("S3_0_C2_C1_0"),
                read_sysreg!("S3_0_C2_C1_1"),
                read_sysreg!("S3_0_C2_C1_2"),
                read_sysreg!("S3_0_C2_C1_3"),
                read_sysreg!("S3_0_C2_C2_0"),
                read_sysreg!("S3_0_C2_C2_1"),
                read_sysreg!("S3_0_C2_C2_2"),
                read_sysreg!("S3_0_C2_C2_3"),
                read_sysreg!("S3_0_C2_C3_0"),
                read_sysreg!("S3_0_C2_C3_1"),
            ];
        }
        self.save_fp();
        self.timer_ctl = read_sysreg!("cntv_ctl_el0");
        self.timer_cval = read_sysreg!("cntv_cval_el0");
        write_sysreg!("cntv_ctl_el0", 0);
        self.gic = super::gic::save_virtual_cpu_interface();
    }

    /// Puts `self` into this CPU's hardware.
    pub fn load(&self) {
        load_el1(&self.el1);
        if has_pointer_auth() {
            let k = &self.keys;
            write_sysreg!("S3_0_C2_C1_0", k[0]);
            write_sysreg!("S3_0_C2_C1_1", k[1]);
            write_sysreg!("S3_0_C2_C1_2", k[2]);
            write_sysreg!("S3_0_C2_C1_3", k[3]);
            write_sysreg!("S3_0_C2_C2_0", k[4]);
            write_sysreg!("S3_0_C2_C2_1", k[5]);
            write_sysreg!("S3_0_C2_C2_2", k[6]);
            write_sysreg!("S3_0_C2_C2_3", k[7]);
            write_sysreg!("S3_0_C2_C3_0", k[8]);
            write_sysreg!("S3_0_C2_C3_1", k[9]);
        }
        self.load_fp();
        write_sysreg!("cntv_cval_el0", self.timer_cval);
        write_sysreg!("cntv_ctl_el0", self.timer_ctl);
        super::gic::load_virtual_cpu_interface(self.gic);
        // SAFETY: an instruction barrier has no memory effects.
        unsafe { asm!("isb", options(nostack, preserves_flags)) };
    }

    /// When the saved virtual timer will fire, if it is armed.
    pub fn timer_deadline(&self) -> Option<u64> {
        let (enabled, masked) = (self.timer_ctl & 1 != 0, self.timer_ctl & 2 != 0);
        (enabled && !masked).then_some(self.timer_cval)
    }

    fn save_fp(&mut self) {
        let fp = self.fp.as_mut_ptr();
        // SAFETY: `fp` has room for 32 16-byte registers and is 16-byte
        // aligned (the struct is); Duet itself never uses these registers.
        unsafe {
            asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{p}, #32 * 0]",
                "stp q2, q3, [{p}, #32 * 1]",
                "stp q4, q5, [{p}, #32 * 2]",
                "stp q6, q7, [{p}, #32 * 3]",
                "stp q8, q9, [{p}, #32 * 4]",
                "stp q10, q11, [{p}, #32 * 5]",
                "stp q12, q13, [{p}, #32 * 6]",
                "stp q14, q15, [{p}, #32 * 7]",
                "stp q16, q17, [{p}, #32 * 8]",
                "stp q18, q19, [{p}, #32 * 9]",
                "stp q20, q21, [{p}, #32 * 10]",
                "stp q22, q23, [{p}, #32 * 11]",
                "stp q24, q25, [{p}, #32 * 12]",
                "stp q26, q27, [{p}, #32 * 13]",
                "stp q28, q29, [{p}, #32 * 14]",
                "stp q30, q31, [{p}, #32 * 15]",
                p = in(reg) fp,
                options(nostack, preserves_flags),
            );
        }
        self.fpcr = read_sysreg!("S3_3_C4_C4_0"); // FPCR
        self.fpsr = read_sysreg!("S3_3_C4_C4_1"); // FPSR
    }

    fn load_fp(&self) {
        let fp = self.fp.as_ptr();
        // SAFETY: as in `save_fp`; this only fills the FP/SIMD registers.
        unsafe {
            asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{p}, #32 * 0]",
                "ldp q2, q3, [{p}, #32 * 1]",
                "ldp q4, q5, [{p}, #32 * 2]",
                "ldp q6, q7, [{p}, #32 * 3]",
                "ldp q8, q9, [{p}, #32 * 4]",
                "ldp q10, q11, [{p}, #32 * 5]",
                "ldp q12, q13, [{p}, #32 * 6]",
                "ldp q14, q15, [{p}, #32 * 7]",
                "ldp q16, q17, [{p}, #32 * 8]",
                "ldp q18, q19, [{p}, #32 * 9]",
                "ldp q20, q21, [{p}, #32 * 10]",
                "ldp q22, q23, [{p}, #32 * 11]",
                "ldp q24, q25, [{p}, #32 * 12]",
                "ldp q26, q27, [{p}, #32 * 13]",
                "ldp q28, q29, [{p}, #32 * 14]",
                "ldp q30, q31, [{p}, #32 * 15]",
                p = in(reg) fp,
                options(nostack, preserves_flags),
            );
        }
        write_sysreg!("S3_3_C4_C4_0", self.fpcr); // FPCR
        write_sysreg!("S3_3_C4_C4_1", self.fpsr); // FPSR
    }
}
