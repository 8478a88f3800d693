//! What the guest says about a fatal exception (the guest's `vectors.rs`
//! takes it and prints this): a stack overflow when a data abort's address
//! is in the stack's guard page, otherwise the exception class by name
//! with ESR, FAR and ELR. Formatting only, no allocation: it runs on the
//! small emergency stack, possibly with the heap's lock held.

use core::fmt;
use core::ops::Range;

/// A fatal exception as the vector saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    /// Which of the 16 vector entries: `4 * source + kind`, sources
    /// current EL with SP_EL0, current EL with SP_ELx, lower EL AArch64,
    /// lower EL AArch32; kinds synchronous, IRQ, FIQ, SError.
    pub vector: u64,
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    /// The stack's guard page.
    pub guard: Range<u64>,
}

const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

impl Fatal {
    /// 0 synchronous, 1 IRQ, 2 FIQ, 3 SError.
    fn kind(&self) -> u64 {
        self.vector % 4
    }

    fn class(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }

    /// True for a data abort on the guard page: the stack ran over.
    pub fn stack_overflow(&self) -> bool {
        self.kind() == 0 && self.class() == EC_DATA_ABORT_SAME_EL && self.guard.contains(&self.far)
    }

    /// What the exception is, by name.
    pub fn name(&self) -> &'static str {
        match self.kind() {
            1 => return "IRQ",
            2 => return "FIQ",
            3 => return "SError",
            _ => {}
        }
        match self.class() {
            0x00 => "unknown reason",
            0x01 => "WFI or WFE trapped",
            0x07 => "FP or SIMD access trapped",
            0x0e => "illegal execution state",
            0x15 => "SVC",
            0x16 => "HVC",
            0x17 => "SMC",
            0x18 => "system register access trapped",
            0x20 | 0x21 => "instruction abort",
            0x22 => "PC alignment fault",
            0x24 | 0x25 => "data abort",
            0x26 => "SP alignment fault",
            0x2f => "SError",
            0x30..=0x35 => "debug exception",
            0x3c => "BRK",
            _ => "exception",
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.stack_overflow() {
            return write!(
                f,
                "stack overflow (data abort at FAR {:#x}, ELR {:#x})",
                self.far, self.elr
            );
        }
        write!(f, "{} ESR={:#x} FAR={:#x} ELR={:#x}", self.name(), self.esr, self.far, self.elr)?;
        if self.vector < 4 {
            f.write_str(" (taken on SP_EL0)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const GUARD: Range<u64> = 0x40d3_5000..0x40d3_6000;

    fn fatal(vector: u64, esr: u64, far: u64) -> Fatal {
        Fatal { vector, esr, far, elr: 0x4020_1234, guard: GUARD }
    }

    #[test]
    fn a_data_abort_in_the_guard_page_is_a_stack_overflow() {
        // EC 0x25, translation fault at level 3 on a write.
        let esr = (0x25 << 26) | (1 << 25) | (1 << 6) | 0x07;
        let f = fatal(4, esr, 0x40d3_5ff0);
        assert!(f.stack_overflow());
        assert_eq!(f.to_string(), "stack overflow (data abort at FAR 0x40d35ff0, ELR 0x40201234)");
        // Just above the guard page: the stack itself, not an overflow.
        assert!(!fatal(4, esr, GUARD.end).stack_overflow());
        assert!(!fatal(4, esr, GUARD.start - 1).stack_overflow());
    }

    #[test]
    fn other_exceptions_are_named_with_their_registers() {
        let esr = (0x25 << 26) | (1 << 25) | 0x05;
        assert_eq!(
            fatal(4, esr, 0x1_0000_0000).to_string(),
            "data abort ESR=0x96000005 FAR=0x100000000 ELR=0x40201234"
        );
        assert_eq!(fatal(4, 0x3c << 26, 0).name(), "BRK");
        assert_eq!(fatal(4, 0, 0).name(), "unknown reason");
        assert_eq!(fatal(5, 0, 0).name(), "IRQ");
        assert_eq!(fatal(7, 0, 0).name(), "SError");
        // An IRQ is no stack overflow, whatever FAR holds.
        assert!(!fatal(5, 0x25 << 26, GUARD.start).stack_overflow());
        assert!(fatal(0, 0x22 << 26, 0).to_string().ends_with("(taken on SP_EL0)"));
    }
}
