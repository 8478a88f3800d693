//! A split virtqueue (virtio 1.x, section 2.7): the descriptor table, the
//! available ring the driver fills and the used ring the device fills.
//!
//! This module owns turning what a guest wrote into something Duet can
//! trust. [`Queue::pop`] takes the next available head and walks its chain
//! into a [`Chain`] whose every descriptor was checked: inside the VM's RAM,
//! no loops (so the chain is no longer than the queue), readable descriptors
//! before writable ones, total length bounded, indirect tables only when
//! negotiated and well formed. Devices see only checked chains and copy
//! through [`GuestMemory`]. [`Queue::push`] returns a finished chain.

use super::guest_memory::{GuestMemory, MemoryError};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{fence, Ordering};

/// Descriptor flags.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available ring flag: the driver does not want an interrupt.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// The largest queue Duet offers (QueueNumMax).
pub const MAX_QUEUE_SIZE: u16 = 256;
/// The most bytes one chain may describe; more is refused as abuse.
pub const MAX_CHAIN_BYTES: u64 = 8 << 20;

/// Size of one descriptor in the table.
const DESCRIPTOR_BYTES: u64 = 16;

/// Why a queue or a chain cannot be used. Every one of these is the guest's
/// fault; the device logs it and sets DEVICE_NEEDS_RESET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// A ring or descriptor reaches outside RAM.
    Memory(MemoryError),
    /// The available index ran ahead of the device by more than the queue.
    AvailIndex { avail: u16, last_seen: u16, size: u16 },
    /// A head or `next` index beyond the descriptor table.
    BadIndex { index: u16, size: u16 },
    /// The chain visits a descriptor twice.
    Loop { index: u16 },
    /// The chain describes more bytes than the device takes.
    TooManyBytes { limit: u64 },
    /// A readable descriptor after a writable one.
    ReadAfterWrite { index: u16 },
    /// An indirect descriptor when VIRTIO_F_INDIRECT_DESC was not negotiated.
    IndirectNotNegotiated,
    /// An indirect table whose length is not a whole number of descriptors
    /// (or is zero, or holds more than the queue size).
    IndirectLength { length: u32 },
    /// An indirect descriptor with NEXT set, or one inside an indirect table.
    IndirectMisused,
    /// The queue is not configured (size 0, or not ready).
    NotReady,
}

impl From<MemoryError> for QueueError {
    fn from(error: MemoryError) -> Self {
        Self::Memory(error)
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Memory(e) => write!(f, "{e}"),
            Self::AvailIndex { avail, last_seen, size } => write!(
                f,
                "available index {avail} is more than the queue size {size} ahead of {last_seen}"
            ),
            Self::BadIndex { index, size } => {
                write!(f, "descriptor index {index} is outside the table of {size}")
            }
            Self::Loop { index } => write!(f, "the chain loops back to descriptor {index}"),
            Self::TooManyBytes { limit } => write!(f, "the chain describes more than {limit} bytes"),
            Self::ReadAfterWrite { index } => {
                write!(f, "descriptor {index} is readable but follows a writable one")
            }
            Self::IndirectNotNegotiated => {
                write!(f, "an indirect descriptor, but VIRTIO_F_INDIRECT_DESC was not negotiated")
            }
            Self::IndirectLength { length } => write!(
                f,
                "an indirect table of {length} bytes (not a whole number of 16-byte descriptors within the queue size)"
            ),
            Self::IndirectMisused => {
                write!(f, "an indirect descriptor chained with NEXT or inside an indirect table")
            }
            Self::NotReady => write!(f, "the queue is not ready"),
        }
    }
}

/// One checked buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub address: u64,
    pub length: u32,
}

/// A checked descriptor chain: readable segments, then writable ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// The head index, to return in the used ring.
    pub head: u16,
    pub readable: Vec<Segment>,
    pub writable: Vec<Segment>,
}

impl Chain {
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|s| u64::from(s.length)).sum()
    }

    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|s| u64::from(s.length)).sum()
    }

    /// Copies readable bytes from `offset` into `buffer`; how many there were.
    pub fn read_at(&self, memory: &GuestMemory, offset: u64, buffer: &mut [u8]) -> usize {
        copy(&self.readable, offset, buffer.len(), |address, range| {
            // Cannot fail: every segment was checked against this RAM.
            let _ = memory.read(address, &mut buffer[range]);
        })
    }

    /// Copies `bytes` into the writable buffers from `offset`; how many fit.
    pub fn write_at(&self, memory: &GuestMemory, offset: u64, bytes: &[u8]) -> usize {
        copy(&self.writable, offset, bytes.len(), |address, range| {
            // Cannot fail: every segment was checked against this RAM.
            let _ = memory.write(address, &bytes[range]);
        })
    }
}

/// Walks `segments` from byte `offset` for up to `length` bytes, calling
/// `each(guest address, range of the caller's buffer)`; bytes covered.
fn copy(
    segments: &[Segment],
    mut offset: u64,
    length: usize,
    mut each: impl FnMut(u64, core::ops::Range<usize>),
) -> usize {
    let mut done = 0;
    for segment in segments {
        let segment_length = u64::from(segment.length);
        if offset >= segment_length {
            offset -= segment_length;
            continue;
        }
        let take = ((segment_length - offset) as usize).min(length - done);
        each(segment.address + offset, done..done + take);
        done += take;
        offset = 0;
        if done == length {
            break;
        }
    }
    done
}

/// A descriptor as read from guest memory.
#[derive(Clone, Copy, Debug)]
struct Descriptor {
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
}

fn read_descriptor(memory: &GuestMemory, table: u64, index: u16) -> Result<Descriptor, QueueError> {
    let mut raw = [0u8; 16];
    memory.read(table + u64::from(index) * DESCRIPTOR_BYTES, &mut raw)?;
    Ok(Descriptor {
        address: u64::from_le_bytes(raw[0..8].try_into().unwrap()),
        length: u32::from_le_bytes(raw[8..12].try_into().unwrap()),
        flags: u16::from_le_bytes(raw[12..14].try_into().unwrap()),
        next: u16::from_le_bytes(raw[14..16].try_into().unwrap()),
    })
}

/// One split virtqueue's configuration (as the driver set it through the
/// transport) and the device's position in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// Entries (QueueNum); a power of two up to MAX_QUEUE_SIZE once ready.
    pub size: u16,
    pub ready: bool,
    pub desc: u64,
    /// The available ring (QueueDriver).
    pub avail: u64,
    /// The used ring (QueueDevice).
    pub used: u64,
    /// VIRTIO_F_INDIRECT_DESC was negotiated.
    pub indirect: bool,
    /// The next available ring entry the device will take.
    last_avail: u16,
    /// The used index the device will publish next.
    used_index: u16,
}

/// Why a queue configuration cannot be made ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Size 0, above the maximum, or not a power of two.
    Size(u16),
    /// A ring address not aligned as the spec requires.
    Alignment { ring: &'static str, address: u64 },
    /// A ring outside RAM.
    Memory { ring: &'static str, error: MemoryError },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Size(size) => {
                write!(f, "queue size {size} is not a power of two between 1 and {MAX_QUEUE_SIZE}")
            }
            Self::Alignment { ring, address } => {
                write!(f, "the {ring} at {address:#x} is misaligned")
            }
            Self::Memory { ring, error } => write!(f, "the {ring}: {error}"),
        }
    }
}

impl Queue {
    /// Checks the configuration before the queue is made ready: size, ring
    /// alignment (16, 2 and 4 bytes) and that all three rings are in RAM.
    pub fn validate(&self, memory: &GuestMemory) -> Result<(), ConfigError> {
        let size = self.size;
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(ConfigError::Size(size));
        }
        let n = u64::from(size);
        let rings = [
            ("descriptor table", self.desc, 16, 16 * n),
            ("available ring", self.avail, 2, 6 + 2 * n),
            ("used ring", self.used, 4, 6 + 8 * n),
        ];
        for (ring, address, align, length) in rings {
            if address % align != 0 {
                return Err(ConfigError::Alignment { ring, address });
            }
            memory.check(address, length).map_err(|error| ConfigError::Memory { ring, error })?;
        }
        Ok(())
    }

    /// Forgets the configuration and the device's position.
    pub fn reset(&mut self) {
        *self = Queue::default();
    }

    /// Takes the next available chain, checked; None if the driver has
    /// offered nothing new.
    pub fn pop(&mut self, memory: &GuestMemory) -> Result<Option<Chain>, QueueError> {
        // `validate` let no other size become ready; the walk relies on it.
        if !self.ready || self.size == 0 || self.size > MAX_QUEUE_SIZE {
            return Err(QueueError::NotReady);
        }
        let avail_index = memory.read_u16(self.avail + 2)?;
        let waiting = avail_index.wrapping_sub(self.last_avail);
        if waiting == 0 {
            return Ok(None);
        }
        if waiting > self.size {
            return Err(QueueError::AvailIndex {
                avail: avail_index,
                last_seen: self.last_avail,
                size: self.size,
            });
        }
        // Read the ring entry only after seeing the index that covers it.
        fence(Ordering::Acquire);
        let slot = u64::from(self.last_avail % self.size);
        let head = memory.read_u16(self.avail + 4 + 2 * slot)?;
        let chain = self.walk(memory, head)?;
        self.last_avail = self.last_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    /// How many chains the driver has offered that the device has not
    /// taken yet.
    pub fn available(&self, memory: &GuestMemory) -> Result<u16, QueueError> {
        if !self.ready || self.size == 0 || self.size > MAX_QUEUE_SIZE {
            return Err(QueueError::NotReady);
        }
        let avail_index = memory.read_u16(self.avail + 2)?;
        let waiting = avail_index.wrapping_sub(self.last_avail);
        if waiting > self.size {
            return Err(QueueError::AvailIndex {
                avail: avail_index,
                last_seen: self.last_avail,
                size: self.size,
            });
        }
        Ok(waiting)
    }

    /// Gives back the chain `pop` just returned, unused (a device that had
    /// nothing to put in it yet).
    pub fn undo_pop(&mut self) {
        self.last_avail = self.last_avail.wrapping_sub(1);
    }

    /// Walks the chain starting at `head` into a checked [`Chain`].
    fn walk(&self, memory: &GuestMemory, head: u16) -> Result<Chain, QueueError> {
        let mut walk = Walk { memory, chain: Chain { head, ..Chain::default() }, bytes: 0 };
        let first = self.descriptor(memory, self.desc, self.size, head)?;
        if first.flags & VIRTQ_DESC_F_INDIRECT != 0 {
            if !self.indirect {
                return Err(QueueError::IndirectNotNegotiated);
            }
            if first.flags & VIRTQ_DESC_F_NEXT != 0 {
                return Err(QueueError::IndirectMisused);
            }
            let length = first.length;
            let entries = u64::from(length) / DESCRIPTOR_BYTES;
            if length == 0
                || u64::from(length) % DESCRIPTOR_BYTES != 0
                || entries > u64::from(self.size)
            {
                return Err(QueueError::IndirectLength { length });
            }
            memory.check(first.address, u64::from(length))?;
            walk.table(first.address, entries as u16, 0, true)?;
        } else {
            walk.table(self.desc, self.size, head, false)?;
        }
        Ok(walk.chain)
    }

    fn descriptor(
        &self,
        memory: &GuestMemory,
        table: u64,
        entries: u16,
        index: u16,
    ) -> Result<Descriptor, QueueError> {
        if index >= entries {
            return Err(QueueError::BadIndex { index, size: entries });
        }
        read_descriptor(memory, table, index)
    }

    /// Returns chain `head` to the driver with `written` bytes written into
    /// its writable buffers.
    pub fn push(
        &mut self,
        memory: &GuestMemory,
        head: u16,
        written: u32,
    ) -> Result<(), QueueError> {
        if !self.ready || self.size == 0 {
            return Err(QueueError::NotReady);
        }
        let slot = u64::from(self.used_index % self.size);
        let element = self.used + 4 + 8 * slot;
        memory.write_u32(element, u32::from(head))?;
        memory.write_u32(element + 4, written)?;
        self.used_index = self.used_index.wrapping_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        memory.write_u16(self.used + 2, self.used_index)?;
        Ok(())
    }

    /// Whether the driver wants an interrupt for what was just pushed.
    pub fn wants_interrupt(&self, memory: &GuestMemory) -> bool {
        // Our used index must be visible before we read the driver's flags.
        fence(Ordering::SeqCst);
        match memory.read_u16(self.avail) {
            Ok(flags) => flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0,
            Err(_) => true,
        }
    }
}

/// State of one chain walk.
struct Walk<'a> {
    memory: &'a GuestMemory,
    chain: Chain,
    bytes: u64,
}

impl Walk<'_> {
    /// Follows `next` links in the table at `table` of `entries`
    /// descriptors from `start`.
    fn table(
        &mut self,
        table: u64,
        entries: u16,
        start: u16,
        indirect: bool,
    ) -> Result<(), QueueError> {
        let mut seen = [0u64; (MAX_QUEUE_SIZE as usize) / 64];
        let mut index = start;
        // Ends: each step marks a new index below `entries`, so within
        // `entries + 1` steps the chain ends, leaves the table or repeats.
        loop {
            if index >= entries {
                return Err(QueueError::BadIndex { index, size: entries });
            }
            let (word, bit) = (usize::from(index) / 64, index % 64);
            if seen[word] & (1 << bit) != 0 {
                return Err(QueueError::Loop { index });
            }
            seen[word] |= 1 << bit;
            let descriptor = read_descriptor(self.memory, table, index)?;
            if descriptor.flags & VIRTQ_DESC_F_INDIRECT != 0 && (indirect || index != start) {
                return Err(QueueError::IndirectMisused);
            }
            self.add(index, descriptor)?;
            if descriptor.flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(());
            }
            index = descriptor.next;
        }
    }

    fn add(&mut self, index: u16, descriptor: Descriptor) -> Result<(), QueueError> {
        self.memory.check(descriptor.address, u64::from(descriptor.length))?;
        self.bytes += u64::from(descriptor.length);
        if self.bytes > MAX_CHAIN_BYTES {
            return Err(QueueError::TooManyBytes { limit: MAX_CHAIN_BYTES });
        }
        let segment = Segment { address: descriptor.address, length: descriptor.length };
        if descriptor.flags & VIRTQ_DESC_F_WRITE != 0 {
            self.chain.writable.push(segment);
        } else if self.chain.writable.is_empty() {
            self.chain.readable.push(segment);
        } else {
            return Err(QueueError::ReadAfterWrite { index });
        }
        Ok(())
    }
}

/// Builds split rings in test RAM, as a driver would.
#[cfg(any(test, feature = "test-ram"))]
pub mod driver {
    use super::*;

    /// A driver's view of one queue: where its rings are and what it added.
    pub struct TestDriver {
        pub queue: Queue,
        avail_index: u16,
    }

    impl TestDriver {
        /// Rings for a queue of `size` at `at` (descriptor table, then the
        /// available ring, then the used ring, each suitably aligned).
        pub fn new(at: u64, size: u16) -> Self {
            let n = u64::from(size);
            let avail = at + 16 * n;
            let used = (avail + 6 + 2 * n + 3) & !3;
            let queue = Queue { size, ready: true, desc: at, avail, used, ..Queue::default() };
            TestDriver { queue, avail_index: 0 }
        }

        /// Writes descriptor `index`.
        pub fn descriptor(
            &self,
            memory: &GuestMemory,
            index: u16,
            address: u64,
            length: u32,
            flags: u16,
            next: u16,
        ) {
            write_descriptor(memory, self.queue.desc, index, address, length, flags, next);
        }

        /// Offers chain `head` in the available ring.
        pub fn offer(&mut self, memory: &GuestMemory, head: u16) {
            let slot = u64::from(self.avail_index % self.queue.size);
            memory.write_u16(self.queue.avail + 4 + 2 * slot, head).unwrap();
            self.avail_index = self.avail_index.wrapping_add(1);
            memory.write_u16(self.queue.avail + 2, self.avail_index).unwrap();
        }

        /// The used ring's index and its entry `n`.
        pub fn used(&self, memory: &GuestMemory, n: u16) -> (u16, u32, u32) {
            let element = self.queue.used + 4 + 8 * u64::from(n % self.queue.size);
            (
                memory.read_u16(self.queue.used + 2).unwrap(),
                memory.read_u32(element).unwrap(),
                memory.read_u32(element + 4).unwrap(),
            )
        }
    }

    /// Writes a descriptor into any table (the queue's or an indirect one).
    pub fn write_descriptor(
        memory: &GuestMemory,
        table: u64,
        index: u16,
        address: u64,
        length: u32,
        flags: u16,
        next: u16,
    ) {
        let at = table + 16 * u64::from(index);
        memory.write_u64(at, address).unwrap();
        memory.write_u32(at + 8, length).unwrap();
        memory.write_u16(at + 12, flags).unwrap();
        memory.write_u16(at + 14, next).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::driver::{write_descriptor, TestDriver};
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;

    const BASE: u64 = 0x4000_0000;
    const RINGS: u64 = BASE;
    const DATA: u64 = BASE + 0x1_0000;
    const SIZE: u16 = 8;
    const R: u16 = 0;
    const W: u16 = VIRTQ_DESC_F_WRITE;
    const N: u16 = VIRTQ_DESC_F_NEXT;

    fn setup() -> (TestRam, TestDriver) {
        (TestRam::new(BASE, 0x2_0000), TestDriver::new(RINGS, SIZE))
    }

    #[test]
    fn walks_a_chain_of_readable_then_writable_buffers() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 3, DATA, 16, R | N, 5);
        driver.descriptor(&memory, 5, DATA + 0x100, 512, W | N, 1);
        driver.descriptor(&memory, 1, DATA + 0x400, 1, W, 0);
        driver.offer(&memory, 3);
        let chain = driver.queue.pop(&memory).unwrap().unwrap();
        assert_eq!(chain.head, 3);
        assert_eq!(chain.readable, [Segment { address: DATA, length: 16 }]);
        assert_eq!(chain.writable.len(), 2);
        assert_eq!((chain.readable_len(), chain.writable_len()), (16, 513));
        assert_eq!(driver.queue.pop(&memory), Ok(None));
    }

    #[test]
    fn copies_across_segment_boundaries() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        memory.write(DATA, b"hello, ").unwrap();
        memory.write(DATA + 0x100, b"world").unwrap();
        driver.descriptor(&memory, 0, DATA, 7, R | N, 1);
        driver.descriptor(&memory, 1, DATA + 0x100, 5, R | N, 2);
        driver.descriptor(&memory, 2, DATA + 0x200, 4, W | N, 3);
        driver.descriptor(&memory, 3, DATA + 0x300, 4, W, 0);
        driver.offer(&memory, 0);
        let chain = driver.queue.pop(&memory).unwrap().unwrap();
        let mut text = [0u8; 20];
        assert_eq!(chain.read_at(&memory, 0, &mut text), 12);
        assert_eq!(&text[..12], b"hello, world");
        assert_eq!(chain.read_at(&memory, 5, &mut text[..4]), 4);
        assert_eq!(&text[..4], b", wo");
        assert_eq!(chain.write_at(&memory, 2, b"abcdefgh"), 6);
        let mut out = [0u8; 4];
        memory.read(DATA + 0x200, &mut out).unwrap();
        assert_eq!(&out[2..], b"ab");
        memory.read(DATA + 0x300, &mut out).unwrap();
        assert_eq!(&out, b"cdef");
    }

    #[test]
    fn publishes_used_entries_and_honours_no_interrupt() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 2, DATA, 8, W, 0);
        driver.offer(&memory, 2);
        let chain = driver.queue.pop(&memory).unwrap().unwrap();
        driver.queue.push(&memory, chain.head, 8).unwrap();
        assert_eq!(driver.used(&memory, 0), (1, 2, 8));
        assert!(driver.queue.wants_interrupt(&memory));
        memory.write_u16(driver.queue.avail, VIRTQ_AVAIL_F_NO_INTERRUPT).unwrap();
        assert!(!driver.queue.wants_interrupt(&memory));
    }

    #[test]
    fn the_indices_wrap_around() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 0, DATA, 8, W, 0);
        for round in 0..70_000u32 {
            driver.offer(&memory, 0);
            let chain = driver.queue.pop(&memory).unwrap().unwrap();
            driver.queue.push(&memory, chain.head, round).unwrap();
        }
        assert_eq!(driver.used(&memory, 70_000u32 as u16 - 1), (70_000u32 as u16, 0, 69_999));
    }

    #[test]
    fn refuses_a_loop() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 0, DATA, 8, R | N, 1);
        driver.descriptor(&memory, 1, DATA, 8, R | N, 0);
        driver.offer(&memory, 0);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::Loop { index: 0 }));
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 4, DATA, 8, R | N, 4);
        driver.offer(&memory, 4);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::Loop { index: 4 }));
    }

    #[test]
    fn refuses_a_chain_longer_than_the_queue() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        for i in 0..SIZE {
            driver.descriptor(&memory, i, DATA, 8, R | N, i + 1);
        }
        driver.offer(&memory, 0);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::BadIndex { index: 8, size: 8 }));
    }

    #[test]
    fn refuses_buffers_outside_ram() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 0, BASE + 0x1_ff00, 0x200, W, 0);
        driver.offer(&memory, 0);
        let error = driver.queue.pop(&memory).unwrap_err();
        assert_eq!(
            error,
            QueueError::Memory(MemoryError { address: BASE + 0x1_ff00, length: 0x200 })
        );
        driver.descriptor(&memory, 1, 0x1000, 4, R, 0);
        driver.offer(&memory, 1);
        assert!(matches!(driver.queue.pop(&memory), Err(QueueError::Memory(_))));
    }

    #[test]
    fn refuses_oversized_lengths() {
        let mut ram = TestRam::new(BASE, (MAX_CHAIN_BYTES + 0x2_0000) as usize);
        let memory = ram.memory();
        let mut driver = TestDriver::new(RINGS, SIZE);
        driver.descriptor(&memory, 0, DATA, (MAX_CHAIN_BYTES / 2) as u32, W | N, 1);
        driver.descriptor(&memory, 1, DATA, (MAX_CHAIN_BYTES / 2 + 1) as u32, W, 0);
        driver.offer(&memory, 0);
        assert_eq!(
            driver.queue.pop(&memory),
            Err(QueueError::TooManyBytes { limit: MAX_CHAIN_BYTES })
        );
    }

    #[test]
    fn refuses_readable_after_writable() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.descriptor(&memory, 0, DATA, 8, W | N, 1);
        driver.descriptor(&memory, 1, DATA, 8, R, 0);
        driver.offer(&memory, 0);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::ReadAfterWrite { index: 1 }));
    }

    #[test]
    fn refuses_a_bad_head_and_a_runaway_avail_index() {
        let (mut ram, mut driver) = setup();
        let memory = ram.memory();
        driver.offer(&memory, 9);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::BadIndex { index: 9, size: 8 }));
        memory.write_u16(driver.queue.avail + 2, 100).unwrap();
        assert!(matches!(
            driver.queue.pop(&memory),
            Err(QueueError::AvailIndex { avail: 100, .. })
        ));
    }

    fn indirect_setup(length: u32, flags: u16) -> (TestRam, TestDriver) {
        let (mut ram, mut driver) = setup();
        driver.queue.indirect = true;
        let memory = ram.memory();
        let table = DATA + 0x1000;
        driver.descriptor(&memory, 0, table, length, VIRTQ_DESC_F_INDIRECT | flags, 1);
        driver.offer(&memory, 0);
        (ram, driver)
    }

    #[test]
    fn walks_an_indirect_table() {
        let (mut ram, mut driver) = indirect_setup(48, 0);
        let memory = ram.memory();
        let table = DATA + 0x1000;
        write_descriptor(&memory, table, 0, DATA, 16, R | N, 2);
        write_descriptor(&memory, table, 2, DATA + 0x100, 100, W | N, 1);
        write_descriptor(&memory, table, 1, DATA + 0x200, 1, W, 0);
        let chain = driver.queue.pop(&memory).unwrap().unwrap();
        assert_eq!(chain.head, 0);
        assert_eq!((chain.readable_len(), chain.writable_len()), (16, 101));
    }

    #[test]
    fn refuses_bad_indirect_tables() {
        for (length, flags, expected) in [
            (40, 0, QueueError::IndirectLength { length: 40 }),
            (0, 0, QueueError::IndirectLength { length: 0 }),
            (16 * 9, 0, QueueError::IndirectLength { length: 16 * 9 }),
            (32, N, QueueError::IndirectMisused),
        ] {
            let (mut ram, mut driver) = indirect_setup(length, flags);
            let memory = ram.memory();
            assert_eq!(driver.queue.pop(&memory), Err(expected), "length {length}");
        }
        // Nested indirection.
        let (mut ram, mut driver) = indirect_setup(32, 0);
        let memory = ram.memory();
        let table = DATA + 0x1000;
        write_descriptor(&memory, table, 0, DATA, 16, VIRTQ_DESC_F_INDIRECT, 0);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::IndirectMisused));
        // A table outside RAM.
        let (mut ram, mut driver) = indirect_setup(32, 0);
        let memory = ram.memory();
        driver.descriptor(&memory, 0, BASE + 0x1_fff0, 32, VIRTQ_DESC_F_INDIRECT, 0);
        assert!(matches!(driver.queue.pop(&memory), Err(QueueError::Memory(_))));
        // Not negotiated.
        let (mut ram, mut driver) = indirect_setup(32, 0);
        driver.queue.indirect = false;
        let memory = ram.memory();
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::IndirectNotNegotiated));
        // A loop inside the table.
        let (mut ram, mut driver) = indirect_setup(32, 0);
        let memory = ram.memory();
        write_descriptor(&memory, table, 0, DATA, 16, R | N, 1);
        write_descriptor(&memory, table, 1, DATA, 16, R | N, 0);
        assert_eq!(driver.queue.pop(&memory), Err(QueueError::Loop { index: 0 }));
    }

    #[test]
    fn validates_the_configuration() {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let memory = ram.memory();
        let good = TestDriver::new(RINGS, SIZE).queue;
        assert_eq!(good.validate(&memory), Ok(()));
        for size in [0, 3, 512] {
            let queue = Queue { size, ..good.clone() };
            assert_eq!(queue.validate(&memory), Err(ConfigError::Size(size)));
        }
        let misaligned = Queue { desc: RINGS + 8, ..good.clone() };
        assert!(matches!(misaligned.validate(&memory), Err(ConfigError::Alignment { .. })));
        let outside = Queue { used: BASE + 0x2_0000 - 8, ..good.clone() };
        assert!(matches!(outside.validate(&memory), Err(ConfigError::Memory { .. })));
    }

    #[test]
    fn errors_read_plainly() {
        let text = QueueError::Loop { index: 3 }.to_string();
        assert_eq!(text, "the chain loops back to descriptor 3");
        assert_eq!(
            ConfigError::Size(3).to_string(),
            "queue size 3 is not a power of two between 1 and 256"
        );
    }
}
