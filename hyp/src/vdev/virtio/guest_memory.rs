//! The one way virtio devices reach a guest's RAM: a checked accessor that
//! copies bytes and little-endian integers to and from guest physical
//! addresses, refusing any range that is not wholly inside the VM's RAM.
//!
//! It copies rather than lending references: the guest's vCPUs may change
//! the bytes at any moment, so Duet takes each value once, checks the copy
//! and uses only the copy (no double fetch).

use core::fmt;

/// An access outside the VM's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryError {
    /// Guest physical address of the first byte asked for.
    pub address: u64,
    pub length: u64,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at guest address {:#x} are not all in the VM's RAM",
            self.length, self.address
        )
    }
}

/// A VM's RAM as the devices see it: `size` bytes at guest physical
/// address `base`, held by Duet at `host`.
#[derive(Clone, Copy, Debug)]
pub struct GuestMemory {
    base: u64,
    host: *mut u8,
    size: u64,
}

// SAFETY: a GuestMemory is an address range, not a borrow; every access
// copies with raw pointer operations that tolerate concurrent guest writes
// to the same bytes (the guest sees torn values at worst, Duet checks only
// its own copy). Whoever builds one promises the range lives as long as it.
unsafe impl Send for GuestMemory {}
// SAFETY: as for Send: the accessor keeps no state of its own.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// The guest's RAM at guest physical `base`, `size` bytes held by Duet
    /// at `host`.
    ///
    /// # Safety
    /// `host..host + size` must be memory Duet may read and write for as
    /// long as this value (and its copies) is used, and belong to this VM
    /// alone.
    pub unsafe fn new(base: u64, host: *mut u8, size: u64) -> Self {
        GuestMemory { base, host, size }
    }

    /// Guest physical address of the first byte of RAM.
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks that `length` bytes at `address` are inside RAM; their offset
    /// from the start of RAM.
    pub fn check(&self, address: u64, length: u64) -> Result<u64, MemoryError> {
        let error = MemoryError { address, length };
        let offset = address.checked_sub(self.base).ok_or(error)?;
        let end = offset.checked_add(length).ok_or(error)?;
        if end > self.size {
            return Err(error);
        }
        Ok(offset)
    }

    /// Copies guest bytes at `address` into `buffer`.
    pub fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        let offset = self.check(address, buffer.len() as u64)?;
        // SAFETY: the range was checked to be inside the VM's RAM, which
        // `new`'s caller promised is readable; `buffer` is Duet's own and
        // cannot overlap guest RAM.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.host.add(offset as usize),
                buffer.as_mut_ptr(),
                buffer.len(),
            )
        };
        Ok(())
    }

    /// Copies `bytes` into guest RAM at `address`.
    pub fn write(&self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        let offset = self.check(address, bytes.len() as u64)?;
        // SAFETY: as for `read`, the other way round.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.host.add(offset as usize),
                bytes.len(),
            )
        };
        Ok(())
    }

    /// Sets `length` bytes at `address` to zero.
    pub fn zero(&self, address: u64, length: u64) -> Result<(), MemoryError> {
        let offset = self.check(address, length)?;
        // SAFETY: as for `write`.
        unsafe { core::ptr::write_bytes(self.host.add(offset as usize), 0, length as usize) };
        Ok(())
    }

    pub fn read_u16(&self, address: u64) -> Result<u16, MemoryError> {
        let mut bytes = [0; 2];
        self.read(address, &mut bytes)?;
        Ok(u16::from_le_bytes(bytes))
    }

    pub fn read_u32(&self, address: u64) -> Result<u32, MemoryError> {
        let mut bytes = [0; 4];
        self.read(address, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    pub fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut bytes = [0; 8];
        self.read(address, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    pub fn write_u16(&self, address: u64, value: u16) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    pub fn write_u32(&self, address: u64, value: u32) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    pub fn write_u64(&self, address: u64, value: u64) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }
}

/// Guest RAM for host tests (and the fuzzer): a buffer that owns its bytes
/// and lends a [`GuestMemory`] over them.
#[cfg(any(test, feature = "test-ram"))]
pub struct TestRam {
    bytes: alloc::vec::Vec<u8>,
    base: u64,
}

#[cfg(any(test, feature = "test-ram"))]
impl TestRam {
    pub fn new(base: u64, size: usize) -> Self {
        TestRam { bytes: alloc::vec![0; size], base }
    }

    /// The accessor; valid while `self` lives (the buffer never moves).
    pub fn memory(&mut self) -> GuestMemory {
        // SAFETY: the Vec's buffer is ours, never reallocated, and lives as
        // long as `self`; tests drop the accessor before the TestRam.
        unsafe { GuestMemory::new(self.base, self.bytes.as_mut_ptr(), self.bytes.len() as u64) }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x4000_0000;

    #[test]
    fn reads_and_writes_little_endian_inside_ram() {
        let mut ram = TestRam::new(BASE, 4096);
        let memory = ram.memory();
        memory.write_u32(BASE + 8, 0x1234_5678).unwrap();
        memory.write_u16(BASE + 4094, 0xbeef).unwrap();
        memory.write_u64(BASE + 16, u64::MAX - 1).unwrap();
        assert_eq!(memory.read_u32(BASE + 8), Ok(0x1234_5678));
        assert_eq!(memory.read_u16(BASE + 4094), Ok(0xbeef));
        assert_eq!(memory.read_u64(BASE + 16), Ok(u64::MAX - 1));
        assert_eq!(&ram.bytes()[8..12], &[0x78, 0x56, 0x34, 0x12]);
    }

    #[test]
    fn refuses_anything_reaching_outside_ram() {
        let mut ram = TestRam::new(BASE, 4096);
        let memory = ram.memory();
        assert_eq!(
            memory.read_u32(BASE + 4094),
            Err(MemoryError { address: BASE + 4094, length: 4 })
        );
        assert!(memory.read_u16(BASE - 1).is_err());
        assert!(memory.write(u64::MAX, &[1]).is_err());
        assert!(memory.check(BASE + 1, u64::MAX).is_err());
        assert!(memory.zero(BASE, 4097).is_err());
        assert_eq!(memory.check(BASE + 4096, 0), Ok(4096));
    }

    #[test]
    fn the_error_names_address_and_length() {
        let error = MemoryError { address: 0x10, length: 4 };
        assert_eq!(error.to_string(), "4 bytes at guest address 0x10 are not all in the VM's RAM");
    }
}
