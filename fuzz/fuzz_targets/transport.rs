//! Fuzzes a whole virtio-mmio device as a guest driver sees it: arbitrary
//! register accesses (any offset, size, direction and value) against a
//! virtio-blk device over an in-memory disk, with guest RAM taken from the
//! input. Duet must never panic, whatever the driver does.

#![no_main]

use duet::vdev::virtio::backend::{BackendError, BlockStore, SECTOR_SIZE};
use duet::vdev::virtio::blk::Blk;
use duet::vdev::virtio::guest_memory::TestRam;
use duet::vdev::virtio::mmio::testing::bring_up;
use duet::vdev::virtio::mmio::{Transport, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use duet::vdev::virtio::queue::driver::TestDriver;
use duet::vm::mmio::MmioDevice;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const RAM_BYTES: usize = 0x4000;

struct Disk(Vec<u8>);

impl BlockStore for Disk {
    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR_SIZE) as u64
    }
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        let start = sector as usize * SECTOR_SIZE;
        buffer.copy_from_slice(&self.0[start..start + buffer.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
        let start = sector as usize * SECTOR_SIZE;
        self.0[start..start + buffer.len()].copy_from_slice(buffer);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // The first half is RAM (rings and buffers), the rest register accesses.
    let split = (data.len() / 2).min(RAM_BYTES);
    let (ram_bytes, accesses) = data.split_at(split);
    let mut ram = TestRam::new(BASE, RAM_BYTES);
    ram.bytes()[..ram_bytes.len()].copy_from_slice(ram_bytes);
    let disk = Disk(vec![0; 16 * SECTOR_SIZE]);
    let mut transport =
        Transport::new(Box::new(Blk::new(Box::new(disk), "fuzz")), ram.memory(), "fuzz");
    // Usually start from a driver that did everything right, so that the
    // accesses (notifies above all) reach the queue and the device, with
    // rings whose contents come from the input.
    if accesses.first().is_some_and(|b| b & 1 == 0) {
        let driver = TestDriver::new(BASE, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC, &[&driver]);
    }
    for access in accesses.chunks_exact(7) {
        let offset = u64::from(u16::from_le_bytes([access[0], access[1]]) % 0x220);
        let size = 1u8 << (access[2] % 4);
        let value = u64::from(u32::from_le_bytes([access[3], access[4], access[5], access[6]]));
        // Addresses in the rings registers land near RAM more often.
        let value = if access[2] & 0x10 != 0 { BASE + value % (RAM_BYTES as u64) } else { value };
        if access[2] & 0x80 != 0 {
            let _ = transport.write(0, offset, size, value);
        } else {
            let _ = transport.read(0, offset, size);
        }
        transport.take_interrupt();
    }
});
