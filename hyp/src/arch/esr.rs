//! Decoding of the Exception Syndrome Register (ESR_ELx): what kind of
//! exception was taken and, for aborts, what the faulting access was.
//!
//! Crash reports print these decodings in words, and the trap dispatcher uses
//! them to route guest exits; both need exactly the same reading of the bits.

use core::fmt;

/// A raw ESR_ELx value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// The exception class, ESR[31:26].
    pub fn class(self) -> ExceptionClass {
        ExceptionClass::from_bits(((self.0 >> 26) & 0x3f) as u8)
    }

    /// The instruction-specific syndrome, ESR[24:0].
    pub fn iss(self) -> u32 {
        (self.0 & 0x01ff_ffff) as u32
    }

    /// True when the trapped instruction was 32 bits wide (ESR.IL).
    pub fn is_32bit_instruction(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// The abort syndrome, for instruction and data aborts.
    pub fn abort(self) -> Option<AbortSyndrome> {
        use ExceptionClass::*;
        match self.class() {
            DataAbortLowerEl
            | DataAbortSameEl
            | InstructionAbortLowerEl
            | InstructionAbortSameEl => Some(AbortSyndrome(self.iss())),
            _ => None,
        }
    }
}

impl fmt::Debug for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x} ({})", self.0, self.class())
    }
}

macro_rules! exception_classes {
    ($($name:ident = $code:literal, $words:literal;)*) => {
        /// ESR_ELx.EC: why the exception was taken.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ExceptionClass {
            $($name,)*
            /// A class this version of Duet does not know.
            Reserved(u8),
        }

        impl ExceptionClass {
            /// Decodes the six EC bits.
            pub fn from_bits(code: u8) -> Self {
                match code {
                    $($code => Self::$name,)*
                    other => Self::Reserved(other),
                }
            }

            /// The six EC bits.
            pub fn bits(self) -> u8 {
                match self {
                    $(Self::$name => $code,)*
                    Self::Reserved(code) => code,
                }
            }

            /// The class in words, as the Arm ARM names it.
            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$name => $words,)*
                    Self::Reserved(_) => "reserved exception class",
                }
            }
        }
    };
}

exception_classes! {
    Unknown = 0x00, "unknown reason (undefined instruction)";
    WfiWfe = 0x01, "trapped WFI or WFE";
    Cp15McrMrc = 0x03, "trapped AArch32 MCR/MRC (coproc 15)";
    Cp15McrrMrrc = 0x04, "trapped AArch32 MCRR/MRRC (coproc 15)";
    Cp14McrMrc = 0x05, "trapped AArch32 MCR/MRC (coproc 14)";
    Cp14LdcStc = 0x06, "trapped AArch32 LDC/STC";
    FpSimdAccess = 0x07, "trapped SVE, SIMD or floating-point access";
    Cp10Vmrs = 0x08, "trapped AArch32 VMRS";
    PointerAuthInstruction = 0x09, "trapped pointer authentication instruction";
    Ld64bSt64b = 0x0a, "trapped LD64B/ST64B";
    Cp14Mrrc = 0x0c, "trapped AArch32 MRRC (coproc 14)";
    BranchTarget = 0x0d, "branch target exception";
    IllegalExecutionState = 0x0e, "illegal execution state";
    Svc32 = 0x11, "SVC from AArch32";
    Hvc32 = 0x12, "HVC from AArch32";
    Smc32 = 0x13, "SMC from AArch32";
    Svc64 = 0x15, "SVC from AArch64";
    Hvc64 = 0x16, "HVC from AArch64";
    Smc64 = 0x17, "SMC from AArch64";
    SysRegister = 0x18, "trapped MSR, MRS or system instruction";
    SveAccess = 0x19, "trapped SVE access";
    Eret = 0x1a, "trapped ERET";
    Tstart = 0x1b, "trapped TSTART";
    PointerAuthFailure = 0x1c, "pointer authentication failure";
    SmeAccess = 0x1d, "trapped SME access";
    ImplementationDefinedEl3 = 0x1f, "implementation defined exception to EL3";
    InstructionAbortLowerEl = 0x20, "instruction abort from a lower exception level";
    InstructionAbortSameEl = 0x21, "instruction abort without a change in exception level";
    PcAlignment = 0x22, "PC alignment fault";
    DataAbortLowerEl = 0x24, "data abort from a lower exception level";
    DataAbortSameEl = 0x25, "data abort without a change in exception level";
    SpAlignment = 0x26, "SP alignment fault";
    MemoryOperation = 0x27, "memory operation (MOPS) exception";
    Fp32 = 0x28, "floating-point exception from AArch32";
    Fp64 = 0x2c, "floating-point exception from AArch64";
    SError = 0x2f, "SError interrupt";
    BreakpointLowerEl = 0x30, "breakpoint from a lower exception level";
    BreakpointSameEl = 0x31, "breakpoint without a change in exception level";
    SoftwareStepLowerEl = 0x32, "software step from a lower exception level";
    SoftwareStepSameEl = 0x33, "software step without a change in exception level";
    WatchpointLowerEl = 0x34, "watchpoint from a lower exception level";
    WatchpointSameEl = 0x35, "watchpoint without a change in exception level";
    Bkpt32 = 0x38, "BKPT from AArch32";
    VectorCatch32 = 0x3a, "vector catch from AArch32";
    Brk64 = 0x3c, "BRK from AArch64";
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EC {:#04x}: {}", self.bits(), self.description())
    }
}

/// The ISS of an instruction or data abort.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AbortSyndrome(pub u32);

impl AbortSyndrome {
    /// ISV: the access size, register and direction below are valid.
    pub fn is_valid(self) -> bool {
        self.0 & (1 << 24) != 0
    }

    /// Bytes accessed (SAS), meaningful when [`Self::is_valid`].
    pub fn access_size(self) -> usize {
        1 << ((self.0 >> 22) & 0b11)
    }

    /// SSE: a load that sign-extends.
    pub fn sign_extend(self) -> bool {
        self.0 & (1 << 21) != 0
    }

    /// SRT: the general register transferred (31 means XZR).
    pub fn register(self) -> usize {
        ((self.0 >> 16) & 0x1f) as usize
    }

    /// SF: the register is 64 bits wide (X, not W).
    pub fn is_64bit_register(self) -> bool {
        self.0 & (1 << 15) != 0
    }

    /// AR: the access had acquire/release semantics.
    pub fn acquire_release(self) -> bool {
        self.0 & (1 << 14) != 0
    }

    /// FnV: FAR is not valid.
    pub fn far_not_valid(self) -> bool {
        self.0 & (1 << 10) != 0
    }

    /// EA: an external abort.
    pub fn external(self) -> bool {
        self.0 & (1 << 9) != 0
    }

    /// CM: caused by a cache maintenance instruction.
    pub fn cache_maintenance(self) -> bool {
        self.0 & (1 << 8) != 0
    }

    /// S1PTW: the fault happened walking stage-1 tables during stage 2.
    pub fn stage1_table_walk(self) -> bool {
        self.0 & (1 << 7) != 0
    }

    /// WnR: a write (for data aborts).
    pub fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// DFSC/IFSC: what kind of fault.
    pub fn fault(self) -> FaultStatus {
        FaultStatus::from_bits((self.0 & 0x3f) as u8)
    }
}

impl fmt::Debug for AbortSyndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fault())?;
        if self.is_valid() {
            let dir = if self.is_write() { "write" } else { "read" };
            let reg = if self.is_64bit_register() { 'x' } else { 'w' };
            write!(
                f,
                ", {dir} of {} bytes, register {reg}{}",
                self.access_size(),
                self.register()
            )?;
        }
        if self.far_not_valid() {
            write!(f, ", FAR not valid")?;
        }
        if self.stage1_table_walk() {
            write!(f, ", on a stage-1 table walk")?;
        }
        Ok(())
    }
}

/// The fault status code of an abort (DFSC or IFSC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    AddressSize { level: u8 },
    Translation { level: u8 },
    AccessFlag { level: u8 },
    Permission { level: u8 },
    SyncExternal,
    SyncExternalOnWalk { level: u8 },
    TagCheck,
    Parity,
    Alignment,
    TlbConflict,
    UnsupportedAtomicUpdate,
    UnsupportedExclusive,
    Other(u8),
}

impl FaultStatus {
    /// Decodes the six status bits.
    pub fn from_bits(code: u8) -> Self {
        let level = code & 0b11;
        match code {
            0x00..=0x03 => Self::AddressSize { level },
            0x04..=0x07 => Self::Translation { level },
            0x08..=0x0b => Self::AccessFlag { level },
            0x0c..=0x0f => Self::Permission { level },
            0x10 => Self::SyncExternal,
            0x11 => Self::TagCheck,
            0x14..=0x17 => Self::SyncExternalOnWalk { level },
            0x18 => Self::Parity,
            0x21 => Self::Alignment,
            0x30 => Self::TlbConflict,
            0x31 => Self::UnsupportedAtomicUpdate,
            0x35 => Self::UnsupportedExclusive,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::AddressSize { level } => write!(f, "address size fault at level {level}"),
            Self::Translation { level } => write!(f, "translation fault at level {level}"),
            Self::AccessFlag { level } => write!(f, "access flag fault at level {level}"),
            Self::Permission { level } => write!(f, "permission fault at level {level}"),
            Self::SyncExternal => write!(f, "synchronous external abort"),
            Self::SyncExternalOnWalk { level } => {
                write!(f, "synchronous external abort on table walk at level {level}")
            }
            Self::TagCheck => write!(f, "tag check fault"),
            Self::Parity => write!(f, "parity or ECC error"),
            Self::Alignment => write!(f, "alignment fault"),
            Self::TlbConflict => write!(f, "TLB conflict abort"),
            Self::UnsupportedAtomicUpdate => write!(f, "unsupported atomic hardware update"),
            Self::UnsupportedExclusive => write!(f, "unsupported exclusive or atomic access"),
            Self::Other(code) => write!(f, "fault status {code:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_abort_from_el2() {
        // A 64-bit load into x1 that missed a translation at level 0, taken at EL2.
        let esr = Esr(0x9600_0004 | (1 << 24) | (3 << 22) | (1 << 16) | (1 << 15));
        assert_eq!(esr.class(), ExceptionClass::DataAbortSameEl);
        assert!(esr.is_32bit_instruction());
        let abort = esr.abort().expect("a data abort has an abort syndrome");
        assert!(abort.is_valid());
        assert_eq!(abort.access_size(), 8);
        assert_eq!(abort.register(), 1);
        assert!(abort.is_64bit_register());
        assert!(!abort.is_write());
        assert_eq!(abort.fault(), FaultStatus::Translation { level: 0 });
    }

    #[test]
    fn decodes_guest_mmio_write() {
        // A 32-bit store from w3 at a lower EL, translation fault at level 3.
        let esr =
            Esr((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (3 << 16) | (1 << 6) | 0x07);
        let abort = esr.abort().unwrap();
        assert_eq!(esr.class(), ExceptionClass::DataAbortLowerEl);
        assert_eq!(abort.access_size(), 4);
        assert_eq!(abort.register(), 3);
        assert!(!abort.is_64bit_register());
        assert!(abort.is_write());
        assert!(!abort.sign_extend());
        assert_eq!(abort.fault(), FaultStatus::Translation { level: 3 });
        assert_eq!(
            format!("{abort:?}"),
            "translation fault at level 3, write of 4 bytes, register w3"
        );
    }

    #[test]
    fn every_class_round_trips_and_has_words() {
        for code in 0..64u8 {
            let class = ExceptionClass::from_bits(code);
            assert_eq!(class.bits(), code);
            assert!(!class.description().is_empty());
        }
        assert_eq!(ExceptionClass::from_bits(0x16), ExceptionClass::Hvc64);
        assert_eq!(ExceptionClass::from_bits(0x3f), ExceptionClass::Reserved(0x3f));
    }

    #[test]
    fn classes_that_are_not_aborts_have_no_abort_syndrome() {
        assert!(Esr(0x5a00_0000).abort().is_none()); // HVC64
        assert!(Esr(0x0200_0000).abort().is_none()); // unknown
    }

    #[test]
    fn fault_status_codes() {
        assert_eq!(FaultStatus::from_bits(0x0f), FaultStatus::Permission { level: 3 });
        assert_eq!(FaultStatus::from_bits(0x21), FaultStatus::Alignment);
        assert_eq!(FaultStatus::from_bits(0x15), FaultStatus::SyncExternalOnWalk { level: 1 });
        assert_eq!(FaultStatus::from_bits(0x3e), FaultStatus::Other(0x3e));
        assert_eq!(
            Esr(0x9600_0021).to_string_for_test(),
            "0x96000021 (EC 0x25: data abort without a change in exception level)"
        );
    }

    impl Esr {
        fn to_string_for_test(self) -> String {
            format!("{self:?}")
        }
    }
}
