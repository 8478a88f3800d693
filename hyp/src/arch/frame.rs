//! The state saved when an exception is taken at EL2, and which of the
//! sixteen vector entries took it. The vector code in `aarch64::exceptions`
//! writes [`TrapFrame`] with the offsets defined here.

use core::mem::{offset_of, size_of};

/// General registers and exception registers at the moment of the exception.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The stack pointer before the exception.
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}

impl TrapFrame {
    pub const SIZE: usize = size_of::<Self>();
    pub const SP_OFFSET: usize = offset_of!(TrapFrame, sp);
    pub const ELR_OFFSET: usize = offset_of!(TrapFrame, elr);
    pub const ESR_OFFSET: usize = offset_of!(TrapFrame, esr);
}

// The vector code moves pairs with stp/ldp and keeps the stack 16-byte aligned.
const _: () = assert!(TrapFrame::SIZE.is_multiple_of(16));
const _: () = assert!(TrapFrame::SP_OFFSET == 31 * 8);
const _: () = assert!(TrapFrame::ESR_OFFSET == TrapFrame::ELR_OFFSET + 16);

/// Which entry of the EL2 vector table was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    pub origin: Origin,
    pub kind: Kind,
}

/// Where the exception came from, in vector-table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    CurrentElSp0,
    CurrentElSpx,
    LowerElAarch64,
    LowerElAarch32,
}

/// The kind of exception, in vector-table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Synchronous,
    Irq,
    Fiq,
    SError,
}

impl Vector {
    /// The vector from its index (0..16) in the table.
    pub fn from_index(index: u64) -> Self {
        let origin = match (index >> 2) & 3 {
            0 => Origin::CurrentElSp0,
            1 => Origin::CurrentElSpx,
            2 => Origin::LowerElAarch64,
            _ => Origin::LowerElAarch32,
        };
        let kind = match index & 3 {
            0 => Kind::Synchronous,
            1 => Kind::Irq,
            2 => Kind::Fiq,
            _ => Kind::SError,
        };
        Vector { origin, kind }
    }

    /// Whether the exception carries a syndrome in ESR_EL2.
    pub fn has_syndrome(self) -> bool {
        matches!(self.kind, Kind::Synchronous | Kind::SError)
    }
}

impl core::fmt::Display for Vector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match self.kind {
            Kind::Synchronous => "synchronous exception",
            Kind::Irq => "IRQ",
            Kind::Fiq => "FIQ",
            Kind::SError => "SError",
        };
        let origin = match self.origin {
            Origin::CurrentElSp0 => "EL2 using SP_EL0",
            Origin::CurrentElSpx => "EL2",
            Origin::LowerElAarch64 => "a lower EL in AArch64",
            Origin::LowerElAarch32 => "a lower EL in AArch32",
        };
        write!(f, "{kind} from {origin}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_indices_follow_the_table_order() {
        assert_eq!(
            Vector::from_index(4),
            Vector { origin: Origin::CurrentElSpx, kind: Kind::Synchronous }
        );
        assert_eq!(
            Vector::from_index(9),
            Vector { origin: Origin::LowerElAarch64, kind: Kind::Irq }
        );
        assert_eq!(Vector::from_index(15).kind, Kind::SError);
        assert_eq!(Vector::from_index(4).to_string(), "synchronous exception from EL2");
        assert!(!Vector::from_index(5).has_syndrome());
    }
}
