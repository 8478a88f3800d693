//! A vCPU's registers as the exit path saves them, and the architectural
//! rules for changing them: reading and writing general registers by number
//! (31 is the zero register), stepping over a trapped instruction, and
//! delivering a synchronous exception to the guest's EL1.

use crate::arch::esr::ExceptionClass;

/// General-purpose state, saved on every exit and restored on every entry.
/// The layout is shared with the entry/exit assembly (`arch::aarch64::guest`).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct GuestRegs {
    /// x0..x30.
    pub x: [u64; 31],
    pub sp_el0: u64,
    /// The guest's PC (ELR_EL2).
    pub pc: u64,
    /// The guest's PSTATE (SPSR_EL2).
    pub pstate: u64,
}

impl GuestRegs {
    pub const X_OFFSET: usize = core::mem::offset_of!(GuestRegs, x);
    pub const SP_EL0_OFFSET: usize = core::mem::offset_of!(GuestRegs, sp_el0);
    pub const PC_OFFSET: usize = core::mem::offset_of!(GuestRegs, pc);

    /// Register `n` as an instruction's Rt field names it; 31 reads as zero.
    pub fn reg(&self, n: usize) -> u64 {
        self.x.get(n).copied().unwrap_or(0)
    }

    /// Writes register `n`; writes to 31 (the zero register) are dropped.
    pub fn set_reg(&mut self, n: usize, value: u64) {
        if let Some(x) = self.x.get_mut(n) {
            *x = value;
        }
    }

    /// Moves past the trapped instruction.
    pub fn skip_instruction(&mut self, is_32bit: bool) {
        self.pc = self.pc.wrapping_add(if is_32bit { 4 } else { 2 });
    }
}

const _: () = assert!(GuestRegs::SP_EL0_OFFSET == 31 * 8);
const _: () = assert!(GuestRegs::PC_OFFSET == 32 * 8);

/// PSTATE for a vCPU that starts at EL1 with its own stack and every
/// exception masked, as the Linux boot protocol asks.
pub const PSTATE_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;

const PSTATE_MODE_MASK: u64 = 0b1111;
const PSTATE_EL1T: u64 = 0b0100;
const PSTATE_EL1H: u64 = 0b0101;

/// What the guest's EL1 registers must become to take a synchronous
/// exception, and where execution continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedException {
    pub esr_el1: u64,
    pub far_el1: Option<u64>,
    pub elr_el1: u64,
    pub spsr_el1: u64,
    /// The new PC: VBAR_EL1 plus the vector offset.
    pub pc: u64,
    pub pstate: u64,
}

/// Kinds of synchronous exception Duet delivers to a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestFault {
    /// The instruction is not available (an unhandled trap).
    Undefined,
    /// A load or store Duet could not complete: synchronous external abort.
    DataAbort { address: u64 },
    /// An instruction fetch from an address with no memory.
    InstructionAbort { address: u64 },
}

impl core::fmt::Display for GuestFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Undefined => write!(f, "an undefined-instruction exception"),
            Self::DataAbort { address } => {
                write!(f, "a synchronous external abort (FAR {address:#x})")
            }
            Self::InstructionAbort { address } => {
                write!(f, "an instruction abort (FAR {address:#x})")
            }
        }
    }
}

/// Computes the exception entry for `fault`, taken from the guest state
/// `regs` with vector base `vbar`. `is_32bit` is the IL of the trapped
/// instruction.
pub fn inject(regs: &GuestRegs, vbar: u64, fault: GuestFault, is_32bit: bool) -> InjectedException {
    let from_el0 = regs.pstate & PSTATE_MODE_MASK == 0;
    let on_sp_el1 = regs.pstate & PSTATE_MODE_MASK == PSTATE_EL1H;
    // Vector table: +0x000 current EL with SP_EL0, +0x200 current EL with
    // SP_ELx, +0x400 lower EL in AArch64; synchronous is the first entry.
    let offset = if from_el0 {
        0x400
    } else if on_sp_el1 {
        0x200
    } else {
        debug_assert_eq!(regs.pstate & PSTATE_MODE_MASK, PSTATE_EL1T);
        0
    };
    let il = if is_32bit { 1 << 25 } else { 0 };
    // Fault status 0x10: synchronous external abort, not on a table walk.
    const EXTERNAL_ABORT: u64 = 0x10;
    let (class, iss, far) = match fault {
        GuestFault::Undefined => (ExceptionClass::Unknown, 0, None),
        GuestFault::DataAbort { address } => {
            let class = if from_el0 {
                ExceptionClass::DataAbortLowerEl
            } else {
                ExceptionClass::DataAbortSameEl
            };
            (class, EXTERNAL_ABORT, Some(address))
        }
        GuestFault::InstructionAbort { address } => {
            let class = if from_el0 {
                ExceptionClass::InstructionAbortLowerEl
            } else {
                ExceptionClass::InstructionAbortSameEl
            };
            (class, EXTERNAL_ABORT, Some(address))
        }
    };
    // An undefined-instruction syndrome always has IL set.
    let il = if fault == GuestFault::Undefined { 1 << 25 } else { il };
    InjectedException {
        esr_el1: (u64::from(class.bits()) << 26) | il | iss,
        far_el1: far,
        elr_el1: regs.pc,
        spsr_el1: regs.pstate,
        pc: vbar + offset,
        pstate: PSTATE_EL1H_MASKED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pstate: u64) -> GuestRegs {
        GuestRegs { pc: 0xffff_8000_1000_0000, pstate, ..Default::default() }
    }

    #[test]
    fn register_31_is_the_zero_register() {
        let mut regs = GuestRegs::default();
        regs.set_reg(31, 7);
        regs.set_reg(3, 9);
        assert_eq!(regs.reg(31), 0);
        assert_eq!(regs.reg(3), 9);
    }

    #[test]
    fn undefined_from_el1h_uses_the_current_el_spx_vector() {
        let e = inject(&at(0x3c5), 0xffff_8000_0801_0000, GuestFault::Undefined, true);
        assert_eq!(e.pc, 0xffff_8000_0801_0200);
        assert_eq!(e.esr_el1, 1 << 25);
        assert_eq!(e.elr_el1, 0xffff_8000_1000_0000);
        assert_eq!(e.spsr_el1, 0x3c5);
        assert_eq!(e.pstate, 0x3c5);
        assert_eq!(e.far_el1, None);
    }

    #[test]
    fn data_abort_from_el0_uses_the_lower_el_vector_and_sets_far() {
        let e = inject(&at(0), 0x1000, GuestFault::DataAbort { address: 0x1234 }, true);
        assert_eq!(e.pc, 0x1400);
        assert_eq!(e.esr_el1, 0x24 << 26 | 1 << 25 | 0x10);
        assert_eq!(e.far_el1, Some(0x1234));
    }

    #[test]
    fn instruction_abort_from_el1t_uses_the_sp0_vector() {
        let e = inject(&at(0x3c4), 0x1000, GuestFault::InstructionAbort { address: 0x8000 }, true);
        assert_eq!(e.pc, 0x1000);
        assert_eq!(e.esr_el1 >> 26, 0x21);
    }
}
