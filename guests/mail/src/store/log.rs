//! The append-only record log the store keeps on its disk, over any
//! [`BlockDevice`] of 512-byte blocks.
//!
//! Block 0 is a superblock (magic, version, a random salt, its checksum),
//! written once when the disk is formatted. The log is the byte stream of
//! blocks 1.., records back to back:
//!
//! ```text
//! 0..2 magic 0xd0e7 | 2 kind | 3 zero | 4..8 payload length | 8..16 sequence number
//! 16..20 CRC-32 of (chain, bytes 0..16, payload) | payload
//! ```
//!
//! where `chain` is the previous record's CRC (the salt for the first).
//! Opening the log walks it from the start and stops at the first record
//! that is not whole and right: bad magic, a length past the limit or the
//! disk, a sequence number out of order, a bad checksum. That is where a
//! write was torn by a power cut, and where the next record goes. Chaining
//! the checksums to the salt means stale bytes past the end, even bytes
//! that came from the network inside an earlier payload, cannot pass for a
//! record (short of a 1 in 2^32 accident): their chain value is unknown
//! when they are written. The CRC finds torn and rotted writes; it is not
//! a MAC and does not protect against someone who can write the disk.
//!
//! A record is durable once [`Log::append`] returns (it flushes). Appends
//! rewrite the last block's earlier bytes with the same values, so a torn
//! block write cannot damage records that were already durable.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub const BLOCK: usize = 512;
/// The largest payload a record may have: bounds what opening the log (and
/// reading a record) allocates, whatever the disk holds.
pub const MAX_PAYLOAD: usize = 1 << 20;
pub const HEADER: usize = 20;

const SUPER_MAGIC: &[u8; 8] = b"DUETMLOG";
const VERSION: u32 = 1;
const RECORD_MAGIC: u16 = 0xd0e7;

/// A disk of 512-byte blocks.
pub trait BlockDevice {
    type Error: fmt::Debug + fmt::Display;
    fn block_count(&self) -> u64;
    fn read_block(&mut self, index: u64, block: &mut [u8; BLOCK]) -> Result<(), Self::Error>;
    fn write_block(&mut self, index: u64, block: &[u8; BLOCK]) -> Result<(), Self::Error>;
    /// Returns once every completed write is on stable storage.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// What can go wrong with the log.
#[derive(Debug, PartialEq, Eq)]
pub enum LogError<E> {
    /// The disk failed; after a failed append the log must be opened again.
    Device(E),
    /// The disk is too small to hold the superblock and a record.
    TooSmall { blocks: u64 },
    /// The record does not fit in what is left of the disk.
    Full { needed: u64, free: u64 },
    /// A payload longer than [`MAX_PAYLOAD`].
    TooLarge { len: usize },
    /// A write failed earlier, so where the log ends is not known.
    Broken,
    /// A record read back does not match what was written.
    Corrupt { position: u64 },
}

impl<E: fmt::Display> fmt::Display for LogError<E> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            LogError::Device(e) => write!(f, "disk error: {e}"),
            LogError::TooSmall { blocks } => write!(f, "disk of {blocks} blocks is too small"),
            LogError::Full { needed, free } => {
                write!(f, "log full: a record of {needed} bytes, {free} bytes free")
            }
            LogError::TooLarge { len } => {
                write!(f, "record payload of {len} bytes is over {MAX_PAYLOAD}")
            }
            LogError::Broken => write!(f, "an earlier write failed; reopen the log"),
            LogError::Corrupt { position } => write!(f, "record at byte {position} is corrupt"),
        }
    }
}

/// Where a record is, so it can be read back and checked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef {
    pub position: u64,
    pub len: u32,
    /// The chain value its checksum starts from.
    chain: u32,
}

/// A record met while opening the log.
pub struct Record<'a> {
    pub kind: u8,
    pub sequence: u64,
    pub payload: &'a [u8],
    pub at: RecordRef,
}

/// An open log: where it ends and what the next record chains to.
pub struct Log<D: BlockDevice> {
    device: D,
    capacity: u64,
    tail: u64,
    sequence: u64,
    chain: u32,
    broken: bool,
    /// Opening stopped at bytes that were not zero and not a whole, right
    /// record (a write cut off, or stale bytes): they were dropped.
    dropped_tail: bool,
}

impl<D: BlockDevice> Log<D> {
    /// Opens the log on `device`, calling `each` for every good record in
    /// order. A disk without a valid superblock is formatted first, with
    /// `salt` (which should be random: it keeps stale bytes from passing as
    /// records).
    pub fn open(
        mut device: D,
        salt: u32,
        mut each: impl FnMut(Record),
    ) -> Result<Self, LogError<D::Error>> {
        let blocks = device.block_count();
        if blocks < 2 {
            return Err(LogError::TooSmall { blocks });
        }
        let mut block = [0; BLOCK];
        device.read_block(0, &mut block).map_err(LogError::Device)?;
        let salt = match read_superblock(&block) {
            Some(salt) => salt,
            None => {
                device.write_block(0, &superblock(salt)).map_err(LogError::Device)?;
                device.flush().map_err(LogError::Device)?;
                // A fresh log must not start on old bytes that happen to
                // look like a record: clear the first block of it.
                device.write_block(1, &[0; BLOCK]).map_err(LogError::Device)?;
                device.flush().map_err(LogError::Device)?;
                salt
            }
        };
        let capacity = (blocks - 1) * BLOCK as u64;
        let mut log = Log {
            device,
            capacity,
            tail: 0,
            sequence: 0,
            chain: salt,
            broken: false,
            dropped_tail: false,
        };
        log.replay(&mut each)?;
        Ok(log)
    }

    fn replay(&mut self, each: &mut impl FnMut(Record)) -> Result<(), LogError<D::Error>> {
        let mut header = [0; HEADER];
        let mut payload = Vec::new();
        loop {
            let position = self.tail;
            if position + HEADER as u64 > self.capacity {
                return Ok(());
            }
            self.read_bytes(position, &mut header)?;
            self.dropped_tail = header.iter().any(|&b| b != 0);
            let Some((kind, len, sequence, crc)) = parse_header(&header) else { return Ok(()) };
            let end = position + (HEADER + len) as u64;
            if sequence != self.sequence || end > self.capacity {
                return Ok(());
            }
            payload.resize(len, 0);
            self.read_bytes(position + HEADER as u64, &mut payload)?;
            if checksum(self.chain, &header, &payload) != crc {
                return Ok(());
            }
            self.dropped_tail = false;
            let at = RecordRef { position, len: len as u32, chain: self.chain };
            each(Record { kind, sequence, payload: &payload, at });
            self.tail = end;
            self.sequence += 1;
            self.chain = crc;
        }
    }

    /// Appends a record and makes it durable.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<RecordRef, LogError<D::Error>> {
        if self.broken {
            return Err(LogError::Broken);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(LogError::TooLarge { len: payload.len() });
        }
        let needed = (HEADER + payload.len()) as u64;
        let free = self.capacity - self.tail;
        if needed > free {
            return Err(LogError::Full { needed, free });
        }
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&[kind, 0]);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        let crc = checksum(self.chain, &bytes[..16], payload);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(payload);
        let at = RecordRef { position: self.tail, len: payload.len() as u32, chain: self.chain };
        let written = self
            .write_bytes(self.tail, &bytes)
            .and_then(|()| self.device.flush().map_err(LogError::Device));
        if let Err(e) = written {
            self.broken = true;
            return Err(e);
        }
        self.tail += needed;
        self.sequence += 1;
        self.chain = crc;
        Ok(at)
    }

    /// Reads a record's payload back, checking it again.
    pub fn read(&mut self, at: RecordRef) -> Result<Vec<u8>, LogError<D::Error>> {
        let corrupt = LogError::Corrupt { position: at.position };
        let len = at.len as usize;
        if len > MAX_PAYLOAD || at.position + (HEADER + len) as u64 > self.tail {
            return Err(corrupt);
        }
        let mut header = [0; HEADER];
        self.read_bytes(at.position, &mut header)?;
        let mut payload = vec![0; len];
        self.read_bytes(at.position + HEADER as u64, &mut payload)?;
        match parse_header(&header) {
            Some((_, l, _, crc)) if l == len && checksum(at.chain, &header, &payload) == crc => {
                Ok(payload)
            }
            _ => Err(corrupt),
        }
    }

    /// Bytes used by records.
    pub fn used(&self) -> u64 {
        self.tail
    }

    /// Bytes the log can hold in all.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True if opening found bytes after the last good record that were
    /// not a record (a write cut off by a power cut, or stale bytes): the
    /// log goes on over them.
    pub fn dropped_tail(&self) -> bool {
        self.dropped_tail
    }

    /// Records in the log.
    pub fn records(&self) -> u64 {
        self.sequence
    }

    /// Gives the disk back (tests look at what was written).
    pub fn into_device(self) -> D {
        self.device
    }

    /// Reads log bytes from `offset` (block 1 is offset 0).
    fn read_bytes(&mut self, offset: u64, out: &mut [u8]) -> Result<(), LogError<D::Error>> {
        let mut block = [0; BLOCK];
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let (index, start) = (1 + at / BLOCK as u64, (at % BLOCK as u64) as usize);
            self.device.read_block(index, &mut block).map_err(LogError::Device)?;
            let n = (BLOCK - start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&block[start..start + n]);
            done += n;
        }
        Ok(())
    }

    /// Writes log bytes at `offset`, keeping the rest of partial blocks.
    fn write_bytes(&mut self, offset: u64, bytes: &[u8]) -> Result<(), LogError<D::Error>> {
        let mut block = [0; BLOCK];
        let mut done = 0;
        while done < bytes.len() {
            let at = offset + done as u64;
            let (index, start) = (1 + at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let n = (BLOCK - start).min(bytes.len() - done);
            if n < BLOCK {
                self.device.read_block(index, &mut block).map_err(LogError::Device)?;
            }
            block[start..start + n].copy_from_slice(&bytes[done..done + n]);
            self.device.write_block(index, &block).map_err(LogError::Device)?;
            done += n;
        }
        Ok(())
    }
}

/// (kind, payload length, sequence, crc) of a header that could be a record.
fn parse_header(header: &[u8; HEADER]) -> Option<(u8, usize, u64, u32)> {
    let word = |r: core::ops::Range<usize>| {
        let mut b = [0; 8];
        b[..r.len()].copy_from_slice(&header[r]);
        u64::from_le_bytes(b)
    };
    let len = word(4..8) as usize;
    if word(0..2) as u16 != RECORD_MAGIC || header[3] != 0 || len > MAX_PAYLOAD {
        return None;
    }
    Some((header[2], len, word(8..16), word(16..20) as u32))
}

fn checksum(chain: u32, header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&chain.to_le_bytes());
    hasher.update(&header[..16]);
    hasher.update(payload);
    hasher.finalize()
}

fn superblock(salt: u32) -> [u8; BLOCK] {
    let mut block = [0; BLOCK];
    block[..8].copy_from_slice(SUPER_MAGIC);
    block[8..12].copy_from_slice(&VERSION.to_le_bytes());
    block[12..16].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32fast::hash(&block[..16]);
    block[16..20].copy_from_slice(&crc.to_le_bytes());
    block
}

/// The salt of a valid superblock.
fn read_superblock(block: &[u8; BLOCK]) -> Option<u32> {
    let word =
        |at: usize| u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
    (&block[..8] == SUPER_MAGIC && word(8) == VERSION && crc32fast::hash(&block[..16]) == word(16))
        .then(|| word(12))
}
