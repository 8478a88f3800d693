//! Emulated MMIO: a guest's load or store to an address its stage-2 map
//! leaves unmapped arrives here as a data abort, decoded into an [`Access`],
//! and goes to the device that owns the address.

use crate::arch::esr::AbortSyndrome;
use core::fmt;

/// Bytes moved by one access: 1, 2, 4 or 8.
pub type Size = u8;

/// Why a device refused an access. Duet logs it and injects an external
/// abort into the guest; Duet itself carries on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// The device does not take accesses of this size at this offset.
    BadSize { offset: u64, size: Size },
    /// The offset is not aligned to the access size.
    Unaligned { offset: u64, size: Size },
    /// Nothing is at this offset in the device.
    NoRegister { offset: u64 },
    /// The register is read-only (or write-only) and the guest did the other.
    Direction { offset: u64 },
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadSize { offset, size } => {
                write!(f, "{size}-byte access at {offset:#x} not supported")
            }
            Self::Unaligned { offset, size } => {
                write!(f, "{size}-byte access at {offset:#x} is unaligned")
            }
            Self::NoRegister { offset } => write!(f, "no register at {offset:#x}"),
            Self::Direction { offset } => {
                write!(f, "wrong direction for the register at {offset:#x}")
            }
        }
    }
}

/// A device that answers MMIO accesses. Offsets are from the device's base.
/// `vcpu` is the index of the vCPU making the access (the GIC's banked
/// registers depend on it).
pub trait MmioDevice {
    fn read(&mut self, vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError>;
    fn write(&mut self, vcpu: usize, offset: u64, size: Size, value: u64) -> Result<(), MmioError>;
}

/// A guest load or store, decoded from a stage-2 data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The intermediate physical address accessed.
    pub address: u64,
    pub size: Size,
    pub write: bool,
    /// The general register loaded or stored (31 is XZR).
    pub register: usize,
    sign_extend: bool,
    wide_register: bool,
}

/// Why an abort cannot be emulated as an MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The syndrome does not describe the access (ISV clear): load/store
    /// pairs, writeback forms and the like, which no device register needs.
    NoSyndrome,
    /// The abort happened while walking the guest's own page tables.
    TableWalk,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSyndrome => write!(f, "an instruction that cannot be emulated (no syndrome)"),
            Self::TableWalk => {
                write!(f, "a page-table walk through memory the guest does not have")
            }
        }
    }
}

impl Access {
    /// Decodes the abort described by `abort` at `address`.
    pub fn decode(abort: AbortSyndrome, address: u64) -> Result<Self, DecodeError> {
        if abort.stage1_table_walk() {
            return Err(DecodeError::TableWalk);
        }
        if !abort.is_valid() {
            return Err(DecodeError::NoSyndrome);
        }
        Ok(Access {
            address,
            size: abort.access_size() as Size,
            write: abort.is_write(),
            register: abort.register(),
            sign_extend: abort.sign_extend(),
            wide_register: abort.is_64bit_register(),
        })
    }

    /// The value a store writes: the register, cut to the access size.
    pub fn store_value(&self, register_value: u64) -> u64 {
        register_value & size_mask(self.size)
    }

    /// What the destination register holds after a load of `value`:
    /// sign-extended if the instruction asks, cut to a W register if narrow.
    pub fn load_result(&self, value: u64) -> u64 {
        let bits = u32::from(self.size) * 8;
        let value = value & size_mask(self.size);
        let extended = if self.sign_extend && bits < 64 {
            ((value << (64 - bits)) as i64 >> (64 - bits)) as u64
        } else {
            value
        };
        if self.wide_register {
            extended
        } else {
            extended & 0xffff_ffff
        }
    }
}

fn size_mask(size: Size) -> u64 {
    match size {
        8 => u64::MAX,
        n => (1u64 << (u32::from(n) * 8)) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syndrome(size_log2: u32, register: u32, write: bool, sse: bool, sf: bool) -> AbortSyndrome {
        AbortSyndrome(
            1 << 24
                | size_log2 << 22
                | u32::from(sse) << 21
                | register << 16
                | u32::from(sf) << 15
                | u32::from(write) << 6
                | 0x07,
        )
    }

    #[test]
    fn decodes_a_word_store() {
        let access = Access::decode(syndrome(2, 5, true, false, false), 0x0900_0000).unwrap();
        assert_eq!(
            (access.address, access.size, access.write, access.register),
            (0x0900_0000, 4, true, 5)
        );
        assert_eq!(access.store_value(0xdead_beef_1234_5678), 0x1234_5678);
    }

    #[test]
    fn sign_extends_a_byte_load_into_x_and_w_registers() {
        let into_x = Access::decode(syndrome(0, 1, false, true, true), 0).unwrap();
        assert_eq!(into_x.load_result(0x80), 0xffff_ffff_ffff_ff80);
        let into_w = Access::decode(syndrome(0, 1, false, true, false), 0).unwrap();
        assert_eq!(into_w.load_result(0x80), 0xffff_ff80);
        let unsigned = Access::decode(syndrome(1, 1, false, false, false), 0).unwrap();
        assert_eq!(unsigned.load_result(0x1_8000), 0x8000);
    }

    #[test]
    fn refuses_what_it_cannot_emulate() {
        assert_eq!(Access::decode(AbortSyndrome(0x07), 0), Err(DecodeError::NoSyndrome));
        assert_eq!(
            Access::decode(AbortSyndrome(1 << 24 | 1 << 7 | 0x07), 0),
            Err(DecodeError::TableWalk)
        );
    }

    #[test]
    fn a_doubleword_load_is_whole() {
        let access = Access::decode(syndrome(3, 0, false, false, true), 0).unwrap();
        assert_eq!(access.load_result(u64::MAX), u64::MAX);
        assert_eq!(access.store_value(u64::MAX), u64::MAX);
    }
}
