//! The register banks every GIC version shares: the set/clear, priority,
//! target and configuration arrays from offset 0x80 of a distributor (and of
//! a GICv3 redistributor's SGI frame), their decoding, the access sizes they
//! take, and how an access becomes calls on the model. Both front ends use
//! this; what differs between them (SGI and PPI banking, routing) stays in
//! the front end.

use super::{Field, Vgic, INTID_LIMIT, PRIVATE_COUNT};
use crate::vm::mmio::{MmioError, Size};

/// Offsets of the interrupt banks, identical in the distributor and in a
/// redistributor's SGI_base frame (which implements only their first word).
pub(super) mod offsets {
    pub const IGROUPR: u64 = 0x0080;
    pub const ISENABLER: u64 = 0x0100;
    pub const ICENABLER: u64 = 0x0180;
    pub const ISPENDR: u64 = 0x0200;
    pub const ICPENDR: u64 = 0x0280;
    pub const ISACTIVER: u64 = 0x0300;
    pub const ICACTIVER: u64 = 0x0380;
    pub const IPRIORITYR: u64 = 0x0400;
    pub const ITARGETSR: u64 = 0x0800;
    pub const ICFGR: u64 = 0x0c00;
    pub const IGRPMODR: u64 = 0x0d00;
    pub const IGRPMODR_END: u64 = 0x0d80;
    pub const NSACR: u64 = 0x0e00;
    pub const NSACR_END: u64 = 0x0f00;
}

/// Accesses must be 1, 4 or 8 bytes and naturally aligned.
pub(super) fn check_access(offset: u64, size: Size) -> Result<(), MmioError> {
    if !matches!(size, 1 | 4 | 8) {
        return Err(MmioError::BadSize { offset, size });
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(MmioError::Unaligned { offset, size });
    }
    Ok(())
}

/// The access sizes a register takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Width {
    Word,
    ByteOrWord,
    /// 64 bits, or either 32-bit half.
    Double,
}

impl Width {
    pub(super) fn check(self, offset: u64, size: Size) -> Result<(), MmioError> {
        let ok = match self {
            Width::Word => size == 4,
            Width::ByteOrWord => size == 1 || size == 4,
            Width::Double => size == 4 || size == 8,
        };
        if ok {
            Ok(())
        } else {
            Err(MmioError::BadSize { offset, size })
        }
    }
}

/// A register of the interrupt banks. `first` is the INTID of bit 0 (or
/// byte 0, or field 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BankReg {
    Group {
        first: u32,
    },
    Bits {
        field: Field,
        set: bool,
        first: u32,
    },
    Priority {
        first: u32,
    },
    Config {
        first: u32,
    },
    /// Reads as zero, ignores writes, takes accesses of this width:
    /// ITARGETSR (unused with affinity routing), IGRPMODR and NSACR
    /// (meaningless with one security state), and registers of interrupts
    /// that live elsewhere.
    Ignored(Width),
}

impl BankReg {
    pub(super) fn decode(offset: u64) -> Option<Self> {
        use offsets::*;
        let bits = |base: u64, field, set| BankReg::Bits {
            field,
            set,
            first: ((offset - base) / 4 * 32) as u32,
        };
        Some(match offset {
            IGROUPR..ISENABLER => BankReg::Group { first: ((offset - IGROUPR) / 4 * 32) as u32 },
            ISENABLER..ICENABLER => bits(ISENABLER, Field::Enabled, true),
            ICENABLER..ISPENDR => bits(ICENABLER, Field::Enabled, false),
            ISPENDR..ICPENDR => bits(ISPENDR, Field::Pending, true),
            ICPENDR..ISACTIVER => bits(ICPENDR, Field::Pending, false),
            ISACTIVER..ICACTIVER => bits(ISACTIVER, Field::Active, true),
            ICACTIVER..IPRIORITYR => bits(ICACTIVER, Field::Active, false),
            IPRIORITYR..ITARGETSR => BankReg::Priority { first: (offset - IPRIORITYR) as u32 },
            ITARGETSR..ICFGR => BankReg::Ignored(Width::ByteOrWord),
            ICFGR..IGRPMODR => BankReg::Config { first: ((offset - ICFGR) / 4 * 16) as u32 },
            IGRPMODR..IGRPMODR_END | NSACR..NSACR_END => BankReg::Ignored(Width::Word),
            _ => return None,
        })
    }

    pub(super) fn width(self) -> Width {
        match self {
            BankReg::Priority { .. } => Width::ByteOrWord,
            BankReg::Ignored(width) => width,
            _ => Width::Word,
        }
    }

    /// The same register, read as zero and written to no effect.
    pub(super) fn ignored(self) -> Self {
        BankReg::Ignored(self.width())
    }

    /// The lowest INTID the register covers, if it covers any.
    pub(super) fn first(self) -> Option<u32> {
        match self {
            BankReg::Group { first }
            | BankReg::Bits { first, .. }
            | BankReg::Priority { first }
            | BankReg::Config { first } => Some(first),
            BankReg::Ignored(_) => None,
        }
    }

    /// True for registers of SGIs and PPIs (INTIDs 0..32).
    pub(super) fn is_private(self) -> bool {
        self.first().is_some_and(|first| first < PRIVATE_COUNT)
    }
}

/// Bank accesses on behalf of `actor`, for the interrupts of `bank` (the
/// vCPU whose SGIs and PPIs are meant).
impl Vgic {
    pub(super) fn bank_read(&self, bank: usize, reg: BankReg, size: Size) -> u64 {
        let word = match reg {
            BankReg::Group { first } => self.implemented_bits(first),
            BankReg::Bits { field, first, .. } => self.read_bits(bank, first, field),
            BankReg::Priority { first } => (0..u32::from(size)).fold(0, |word, lane| {
                word | u32::from(self.priority(bank, first + lane)) << (8 * lane)
            }),
            BankReg::Config { first } => (0..16)
                .filter(|&field| self.is_edge(bank, first + field))
                .fold(0, |word, field| word | 2 << (2 * field)),
            BankReg::Ignored(_) => 0,
        };
        u64::from(word)
    }

    pub(super) fn bank_write(
        &mut self,
        actor: usize,
        bank: usize,
        reg: BankReg,
        size: Size,
        value: u64,
    ) {
        let word = value as u32;
        match reg {
            BankReg::Bits { field, set, first } => {
                self.write_bits(actor, bank, first, field, word, set)
            }
            BankReg::Priority { first } => {
                for lane in 0..u32::from(size) {
                    self.set_priority(actor, bank, first + lane, (word >> (8 * lane)) as u8);
                }
            }
            BankReg::Config { first } => {
                for field in 0..16 {
                    self.set_edge(actor, bank, first + field, word & (2 << (2 * field)) != 0);
                }
            }
            BankReg::Group { .. } | BankReg::Ignored(_) => {}
        }
    }

    /// A word with a bit set for each implemented INTID from `first`
    /// (IGROUPR: every interrupt is Group 1).
    pub(super) fn implemented_bits(&self, first: u32) -> u32 {
        (0..32).filter(|&bit| first + bit < INTID_LIMIT).fold(0, |word, bit| word | 1 << bit)
    }
}
