//! A disk in RAM: for the host tests and the fuzz target, which tear and
//! corrupt its bytes at will.

use super::log::{BlockDevice, BLOCK};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryDisk {
    pub bytes: Vec<u8>,
}

/// A block index past the end of a [`MemoryDisk`].
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange(pub u64);

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "block {} is past the end of the disk", self.0)
    }
}

impl MemoryDisk {
    pub fn new(blocks: usize) -> Self {
        MemoryDisk { bytes: vec![0; blocks * BLOCK] }
    }

    fn range(&self, index: u64) -> Result<core::ops::Range<usize>, OutOfRange> {
        let start = usize::try_from(index).ok().and_then(|i| i.checked_mul(BLOCK));
        match start {
            Some(start) if start + BLOCK <= self.bytes.len() => Ok(start..start + BLOCK),
            _ => Err(OutOfRange(index)),
        }
    }
}

impl BlockDevice for MemoryDisk {
    type Error = OutOfRange;

    fn block_count(&self) -> u64 {
        (self.bytes.len() / BLOCK) as u64
    }

    fn read_block(&mut self, index: u64, block: &mut [u8; BLOCK]) -> Result<(), OutOfRange> {
        let range = self.range(index)?;
        block.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write_block(&mut self, index: u64, block: &[u8; BLOCK]) -> Result<(), OutOfRange> {
        let range = self.range(index)?;
        self.bytes[range].copy_from_slice(block);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutOfRange> {
        Ok(())
    }
}
