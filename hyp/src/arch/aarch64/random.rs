//! The CPU's random number generator (FEAT_RNG): whether it exists and one
//! read of RNDR.

use aarch64_cpu::registers::{Readable, ID_AA64ISAR0_EL1};

/// True if the CPU implements RNDR (ID_AA64ISAR0_EL1.RNDR, bits 63:60).
pub fn has_rndr() -> bool {
    ID_AA64ISAR0_EL1.get() >> 60 != 0
}

/// One 64-bit random value from RNDR, or None when the hardware had none
/// ready (it then sets PSTATE.Z). Only call where [`has_rndr`] is true.
pub fn rndr() -> Option<u64> {
    let value: u64;
    let ok: u64;
    // SAFETY: reads RNDR (s3_3_c2_c4_0), present as checked by the caller,
    // and the condition flags it sets; touches no memory.
    unsafe {
        core::arch::asm!(
            "mrs {value}, s3_3_c2_c4_0",
            "cset {ok}, ne",
            value = out(reg) value,
            ok = out(reg) ok,
            options(nomem, nostack),
        )
    };
    (ok != 0).then_some(value)
}
