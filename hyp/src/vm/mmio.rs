//! Emulated MMIO: a guest's load or store to an address its stage-2 map
//! leaves unmapped arrives here as a data abort, decoded into an [`Access`],
//! and goes to the device that owns the address.

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
