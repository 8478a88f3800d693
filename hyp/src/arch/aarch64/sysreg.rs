//! Reading and writing system registers by name, for the few that the
//! `aarch64-cpu` crate does not describe (GIC CPU interface registers, some
//! EL2 controls). Only for registers whose access has no effect on memory.

/// Reads a system register, e.g. `read_sysreg!("icc_iar1_el1")` or an
/// `S3_..` encoding.
macro_rules! read_sysreg {
    ($name:expr) => {{
        let value: u64;
        // SAFETY: reading a system register has no memory effects; the
        // callers use this only for registers readable at EL2.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value,
                options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// Writes a system register.
macro_rules! write_sysreg {
    ($name:expr, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the callers use this only for control registers whose
        // writes have no memory-safety effects on Duet itself.
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value,
                options(nostack, preserves_flags))
        };
    }};
}

pub(crate) use {read_sysreg, write_sysreg};
