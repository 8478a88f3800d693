//! virtio-blk (device ID 2) over a [`BlockStore`]: reads, writes, flushes
//! and the device ID, one request per chain.
//!
//! A request is a 16-byte header (type, reserved, sector) in readable
//! buffers, data (readable for writes, writable for reads) and one status
//! byte, the last writable byte. Every request is checked before the store
//! is touched: the header is whole, data is whole sectors, the range lies
//! inside the disk, writes to a read-only disk are refused. A bad request
//! fails with IOERR (or UNSUPP) and a log line; a chain without room for
//! the status byte cannot even be answered and is returned empty.

use super::backend::{BlockStore, SECTOR_SIZE};
use super::mmio::{ConfigSpace, Device, Env};
use super::queue::{Chain, QueueError};
use crate::vdev::virtio::guest_memory::GuestMemory;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Feature bits.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Request types.
const VIRTIO_BLK_T_IN: u32 = 0;
const VIRTIO_BLK_T_OUT: u32 = 1;
const VIRTIO_BLK_T_FLUSH: u32 = 4;
const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Status byte values.
pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

const HEADER_BYTES: u64 = 16;
/// The device ID string's length.
const ID_BYTES: usize = 20;
/// Data segments per request the driver may use (SEG_MAX): the chain also
/// holds the header and the status byte, and stays within the queue.
const SEG_MAX: u32 = 126;
/// Bytes moved between guest and store in one step.
const BOUNCE_BYTES: usize = 16 * SECTOR_SIZE;

/// Why a request failed (logged; the guest gets the status byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    ShortHeader { bytes: u64 },
    PartialSector { bytes: u64 },
    OutOfRange { sector: u64, sectors: u64, capacity: u64 },
    ReadOnly,
    Unsupported { kind: u32 },
    Backend(super::backend::BackendError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ShortHeader { bytes } => {
                write!(f, "a request header of {bytes} bytes (16 needed)")
            }
            Self::PartialSector { bytes } => write!(f, "{bytes} data bytes are not whole sectors"),
            Self::OutOfRange { sector, sectors, capacity } => {
                write!(f, "sectors {sector}..+{sectors} reach past the disk's {capacity} sectors")
            }
            Self::ReadOnly => write!(f, "a write to a read-only disk"),
            Self::Unsupported { kind } => write!(f, "request type {kind} is not supported"),
            Self::Backend(e) => write!(f, "{e}"),
        }
    }
}

impl RequestError {
    fn status(&self) -> u8 {
        match self {
            Self::Unsupported { .. } => VIRTIO_BLK_S_UNSUPP,
            _ => VIRTIO_BLK_S_IOERR,
        }
    }
}

/// A request as parsed from a chain, before it is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read { sector: u64, bytes: u64 },
    Write { sector: u64, bytes: u64 },
    Flush,
    GetId { bytes: u64 },
}

/// Parses the request in `chain` (which has at least the status byte) for
/// a disk of `capacity` sectors.
pub fn parse(
    chain: &Chain,
    memory: &GuestMemory,
    capacity: u64,
    read_only: bool,
) -> Result<Request, RequestError> {
    let mut header = [0u8; HEADER_BYTES as usize];
    let got = chain.read_at(memory, 0, &mut header) as u64;
    if got < HEADER_BYTES {
        return Err(RequestError::ShortHeader { bytes: got });
    }
    let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
    let sector = u64::from_le_bytes(header[8..16].try_into().unwrap());
    // The status byte is the last writable byte; data is what lies between.
    let data_in = chain.writable_len() - 1;
    let data_out = chain.readable_len() - HEADER_BYTES;
    let request = match kind {
        VIRTIO_BLK_T_IN => Request::Read { sector, bytes: data_in },
        VIRTIO_BLK_T_OUT if read_only => return Err(RequestError::ReadOnly),
        VIRTIO_BLK_T_OUT => Request::Write { sector, bytes: data_out },
        VIRTIO_BLK_T_FLUSH => Request::Flush,
        VIRTIO_BLK_T_GET_ID => Request::GetId { bytes: data_in },
        kind => return Err(RequestError::Unsupported { kind }),
    };
    if let Request::Read { sector, bytes } | Request::Write { sector, bytes } = request {
        if bytes % SECTOR_SIZE as u64 != 0 {
            return Err(RequestError::PartialSector { bytes });
        }
        let sectors = bytes / SECTOR_SIZE as u64;
        if sector.checked_add(sectors).is_none_or(|end| end > capacity) {
            return Err(RequestError::OutOfRange { sector, sectors, capacity });
        }
    }
    Ok(request)
}

pub struct Blk {
    store: Box<dyn BlockStore>,
    /// What GET_ID answers (NUL-padded).
    id: [u8; ID_BYTES],
    bounce: Vec<u8>,
}

impl Blk {
    /// A disk over `store`, identifying itself as `id` (cut to 20 bytes).
    pub fn new(store: Box<dyn BlockStore>, id: &str) -> Self {
        let mut id_bytes = [0u8; ID_BYTES];
        let n = id.len().min(ID_BYTES);
        id_bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
        Blk { store, id: id_bytes, bounce: vec![0; BOUNCE_BYTES] }
    }

    /// Carries out `request`; the data bytes written into the chain.
    fn perform(
        &mut self,
        request: Request,
        chain: &Chain,
        memory: &GuestMemory,
    ) -> Result<u64, RequestError> {
        match request {
            Request::Read { sector, bytes } => {
                let mut done = 0;
                while done < bytes {
                    let step = (bytes - done).min(BOUNCE_BYTES as u64) as usize;
                    let at = sector + done / SECTOR_SIZE as u64;
                    self.store.read(at, &mut self.bounce[..step]).map_err(RequestError::Backend)?;
                    chain.write_at(memory, done, &self.bounce[..step]);
                    done += step as u64;
                }
                Ok(bytes)
            }
            Request::Write { sector, bytes } => {
                let mut done = 0;
                while done < bytes {
                    let step = (bytes - done).min(BOUNCE_BYTES as u64) as usize;
                    chain.read_at(memory, HEADER_BYTES + done, &mut self.bounce[..step]);
                    let at = sector + done / SECTOR_SIZE as u64;
                    self.store.write(at, &self.bounce[..step]).map_err(RequestError::Backend)?;
                    done += step as u64;
                }
                Ok(0)
            }
            Request::Flush => self.store.flush().map(|()| 0).map_err(RequestError::Backend),
            Request::GetId { bytes } => {
                let n = (bytes as usize).min(ID_BYTES);
                Ok(chain.write_at(memory, 0, &self.id[..n]) as u64)
            }
        }
    }
}

impl Device for Blk {
    fn name(&self) -> &'static str {
        "blk"
    }

    fn id(&self) -> u32 {
        2
    }

    fn features(&self) -> u64 {
        let read_only = if self.store.read_only() { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_SEG_MAX | read_only
    }

    fn queue_count(&self) -> usize {
        1
    }

    /// capacity (u64), size_max (u32, not offered), seg_max (u32).
    fn config(&self, out: &mut ConfigSpace) -> usize {
        out[0..8].copy_from_slice(&self.store.sectors().to_le_bytes());
        out[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        16
    }

    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        while let Some(chain) = env.pop(queue)? {
            let Some(status_at) = chain.writable_len().checked_sub(1) else {
                env.reject(format_args!("a request with no room for its status byte"));
                env.push(queue, &chain, 0)?;
                continue;
            };
            let capacity = self.store.sectors();
            let outcome = parse(&chain, env.memory, capacity, self.store.read_only())
                .and_then(|request| self.perform(request, &chain, env.memory));
            let (status, data) = match outcome {
                Ok(data) => (VIRTIO_BLK_S_OK, data),
                Err(e) => {
                    env.reject(format_args!("request refused: {e}"));
                    (e.status(), 0)
                }
            };
            chain.write_at(env.memory, status_at, &[status]);
            env.push(queue, &chain, (data + 1) as u32)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::backend::BackendError;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, CONFIG_BYTES, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::{VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};
    use alloc::sync::Arc;
    use spin::Mutex;

    const BASE: u64 = 0x4000_0000;
    const HEADER: u64 = BASE + 0x1_0000;
    const DATA: u64 = BASE + 0x1_1000;
    const STATUS: u64 = BASE + 0x1_f000;

    /// An in-memory disk shared with the test, counting flushes.
    #[derive(Clone)]
    struct MemoryDisk {
        sectors: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<u32>>,
        read_only: bool,
    }

    impl BlockStore for MemoryDisk {
        fn sectors(&self) -> u64 {
            (self.sectors.lock().len() / SECTOR_SIZE) as u64
        }
        fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
            let start = sector as usize * SECTOR_SIZE;
            buffer.copy_from_slice(&self.sectors.lock()[start..start + buffer.len()]);
            Ok(())
        }
        fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
            let start = sector as usize * SECTOR_SIZE;
            self.sectors.lock()[start..start + buffer.len()].copy_from_slice(buffer);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), BackendError> {
            *self.flushes.lock() += 1;
            Ok(())
        }
        fn read_only(&self) -> bool {
            self.read_only
        }
    }

    struct Setup {
        ram: TestRam,
        transport: Transport,
        driver: TestDriver,
        disk: MemoryDisk,
        offered: u16,
    }

    fn setup(read_only: bool) -> Setup {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let disk = MemoryDisk {
            sectors: Arc::new(Mutex::new(vec![0; 64 * SECTOR_SIZE])),
            flushes: Arc::new(Mutex::new(0)),
            read_only,
        };
        let blk = Blk::new(Box::new(disk.clone()), "duet-disk");
        let mut transport = Transport::new(Box::new(blk), ram.memory(), "test");
        let driver = TestDriver::new(BASE, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&driver]);
        Setup { ram, transport, driver, disk, offered: 0 }
    }

    impl Setup {
        /// Submits a request of `kind` at `sector` with `data` bytes of data
        /// (written by the device when `incoming`); status and used length.
        fn submit(&mut self, kind: u32, sector: u64, data: u32, incoming: bool) -> (u8, u32) {
            let memory = self.ram.memory();
            memory.write_u32(HEADER, kind).unwrap();
            memory.write_u64(HEADER + 8, sector).unwrap();
            memory.write(STATUS, &[0xff]).unwrap();
            let d = &mut self.driver;
            d.descriptor(&memory, 0, HEADER, 16, N, 1);
            d.descriptor(&memory, 1, DATA, data, N | if incoming { W } else { 0 }, 2);
            d.descriptor(&memory, 2, STATUS, 1, W, 0);
            d.offer(&memory, 0);
            notify(&mut self.transport, 0);
            let (index, head, used) = d.used(&memory, self.offered);
            self.offered += 1;
            assert_eq!((index, head), (self.offered, 0));
            let mut status = [0u8];
            memory.read(STATUS, &mut status).unwrap();
            (status[0], used)
        }
    }

    #[test]
    fn writes_then_reads_back() {
        let mut s = setup(false);
        let memory = s.ram.memory();
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        memory.write(DATA, &pattern).unwrap();
        assert_eq!(s.submit(VIRTIO_BLK_T_OUT, 3, 1024, false), (VIRTIO_BLK_S_OK, 1));
        assert_eq!(&s.disk.sectors.lock()[3 * 512..5 * 512], &pattern[..]);
        memory.zero(DATA, 1024).unwrap();
        assert_eq!(s.submit(VIRTIO_BLK_T_IN, 3, 1024, true), (VIRTIO_BLK_S_OK, 1025));
        let mut back = vec![0u8; 1024];
        memory.read(DATA, &mut back).unwrap();
        assert_eq!(back, pattern);
    }

    #[test]
    fn flushes_and_identifies() {
        let mut s = setup(false);
        assert_eq!(s.submit(VIRTIO_BLK_T_FLUSH, 0, 0, false).0, VIRTIO_BLK_S_OK);
        assert_eq!(*s.disk.flushes.lock(), 1);
        assert_eq!(s.submit(VIRTIO_BLK_T_GET_ID, 0, 20, true), (VIRTIO_BLK_S_OK, 21));
        let mut id = [0u8; 20];
        s.ram.memory().read(DATA, &mut id).unwrap();
        assert_eq!(&id[..10], b"duet-disk\0");
    }

    #[test]
    fn refuses_bad_requests_with_a_status() {
        let mut s = setup(false);
        assert_eq!(s.submit(VIRTIO_BLK_T_IN, 63, 1024, true), (VIRTIO_BLK_S_IOERR, 1));
        assert_eq!(s.submit(VIRTIO_BLK_T_IN, u64::MAX, 512, true), (VIRTIO_BLK_S_IOERR, 1));
        assert_eq!(s.submit(VIRTIO_BLK_T_OUT, 0, 100, false), (VIRTIO_BLK_S_IOERR, 1));
        assert_eq!(s.submit(77, 0, 512, false), (VIRTIO_BLK_S_UNSUPP, 1));
        // The disk was not touched and the device still works.
        assert!(s.disk.sectors.lock().iter().all(|&b| b == 0));
        assert_eq!(s.submit(VIRTIO_BLK_T_IN, 0, 512, true), (VIRTIO_BLK_S_OK, 513));
    }

    #[test]
    fn honours_read_only() {
        let mut s = setup(true);
        let mut config = [0u8; CONFIG_BYTES];
        assert_ne!(s.transport.device().features() & VIRTIO_BLK_F_RO, 0);
        s.transport.device().config(&mut config);
        assert_eq!(u64::from_le_bytes(config[..8].try_into().unwrap()), 64);
        s.ram.memory().write(DATA, &[1; 512]).unwrap();
        assert_eq!(s.submit(VIRTIO_BLK_T_OUT, 0, 512, false), (VIRTIO_BLK_S_IOERR, 1));
        assert!(s.disk.sectors.lock().iter().all(|&b| b == 0));
    }

    #[test]
    fn parses_the_header() {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let memory = ram.memory();
        memory.write_u32(HEADER, VIRTIO_BLK_T_IN).unwrap();
        memory.write_u64(HEADER + 8, 9).unwrap();
        let seg = |address, length| crate::vdev::virtio::queue::Segment { address, length };
        let chain = Chain {
            head: 0,
            readable: vec![seg(HEADER, 8), seg(HEADER + 8, 8)],
            writable: vec![seg(DATA, 4096), seg(STATUS, 1)],
        };
        assert_eq!(
            parse(&chain, &memory, 100, false),
            Ok(Request::Read { sector: 9, bytes: 4096 })
        );
        let short = Chain { readable: vec![seg(HEADER, 12)], ..chain.clone() };
        assert_eq!(
            parse(&short, &memory, 100, false),
            Err(RequestError::ShortHeader { bytes: 12 })
        );
        assert_eq!(
            parse(&chain, &memory, 16, false),
            Err(RequestError::OutOfRange { sector: 9, sectors: 8, capacity: 16 })
        );
    }
}
