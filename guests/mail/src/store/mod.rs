//! The offline store: the inbox and the outbox, kept as records in an
//! append-only log on the guest's disk ([`log`]), and rebuilt in memory
//! (an index, not the messages) each time the guest starts.
//!
//! Records: the mailbox's UIDVALIDITY (a new value empties the mailbox),
//! a message by UID with its flags and raw bytes, a flag change, an
//! expunge, an outbox entry with its raw bytes, a send attempt, and "sent".
//! A message UID already stored is not stored again, and an outbox entry is
//! sent only while it has no "sent" record: a sync that is cut off and done
//! again stores and sends nothing twice. An entry with an attempt but no
//! "sent" was cut off while the server had it (`Outbox::Uncertain`): it
//! must be checked against the server (its Message-ID in the Sent folder)
//! before sending it again.

pub mod log;
pub mod memory;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use log::{BlockDevice, Log, LogError, Record, RecordRef};

/// Record kinds.
const MAILBOX: u8 = 1;
const MESSAGE: u8 = 2;
const FLAGS: u8 = 3;
const EXPUNGE: u8 = 4;
const QUEUED: u8 = 5;
const ATTEMPT: u8 = 6;
const SENT: u8 = 7;

/// Message flags, as bits.
pub const SEEN: u8 = 1 << 0;
pub const ANSWERED: u8 = 1 << 1;
pub const FLAGGED: u8 = 1 << 2;
pub const DELETED: u8 = 1 << 3;
pub const DRAFT: u8 = 1 << 4;

/// A stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub flags: u8,
    at: RecordRef,
}

/// Where an outbox entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    /// Waiting to be sent.
    Queued,
    /// A send began and did not finish: the server may have it.
    Uncertain,
    /// The server accepted it.
    Sent,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: Outbox,
    at: RecordRef,
}

/// What the store's operations can fail with.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreError<E> {
    Log(LogError<E>),
    /// No message with this UID is stored.
    NoMessage(u32),
    /// No outbox entry with this number.
    NoEntry(u64),
}

impl<E: fmt::Display> fmt::Display for StoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            StoreError::Log(e) => write!(f, "{e}"),
            StoreError::NoMessage(uid) => write!(f, "no stored message with UID {uid}"),
            StoreError::NoEntry(id) => write!(f, "no outbox entry {id}"),
        }
    }
}

impl<E> From<LogError<E>> for StoreError<E> {
    fn from(e: LogError<E>) -> Self {
        StoreError::Log(e)
    }
}

/// The index rebuilt from the log.
#[derive(Default)]
struct Index {
    uidvalidity: u32,
    messages: BTreeMap<u32, Message>,
    outbox: BTreeMap<u64, Entry>,
    /// Records whose checksum was good but whose payload made no sense
    /// (from a newer version, or a bug): skipped, counted.
    skipped: u64,
}

impl Index {
    fn apply(&mut self, record: Record) {
        let p = record.payload;
        let word =
            |at: usize| p.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let id = || p.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        let applied = match record.kind {
            MAILBOX => word(0).map(|v| {
                if v != self.uidvalidity {
                    self.messages.clear();
                }
                self.uidvalidity = v;
            }),
            MESSAGE => match (word(0), p.get(4)) {
                (Some(uid), Some(&flags)) => {
                    self.messages.entry(uid).or_insert(Message { uid, flags, at: record.at });
                    Some(())
                }
                _ => None,
            },
            FLAGS => match (word(0), p.get(4)) {
                (Some(uid), Some(&flags)) => {
                    if let Some(m) = self.messages.get_mut(&uid) {
                        m.flags = flags;
                    }
                    Some(())
                }
                _ => None,
            },
            EXPUNGE => word(0).map(|uid| {
                self.messages.remove(&uid);
            }),
            QUEUED => id().map(|id| {
                self.outbox.entry(id).or_insert(Entry { state: Outbox::Queued, at: record.at });
            }),
            ATTEMPT | SENT => id().and_then(|id| self.outbox.get_mut(&id)).map(|entry| {
                entry.state = match (record.kind, entry.state) {
                    (_, Outbox::Sent) | (SENT, _) => Outbox::Sent,
                    _ => Outbox::Uncertain,
                };
            }),
            _ => None,
        };
        if applied.is_none() {
            self.skipped += 1;
        }
    }
}

/// The store, open on a disk.
pub struct Store<D: BlockDevice> {
    log: Log<D>,
    index: Index,
}

impl<D: BlockDevice> Store<D> {
    /// Opens the store on `device` (formatting a disk that has none, with
    /// `salt`), recovering from a torn last write.
    pub fn open(device: D, salt: u32) -> Result<Self, StoreError<D::Error>> {
        let mut index = Index::default();
        let log = Log::open(device, salt, |record| index.apply(record))?;
        Ok(Store { log, index })
    }

    fn append(&mut self, kind: u8, payload: &[u8]) -> Result<(), StoreError<D::Error>> {
        let at = self.log.append(kind, payload)?;
        let record = Record { kind, sequence: self.log.records() - 1, payload, at };
        self.index.apply(record);
        Ok(())
    }

    pub fn uidvalidity(&self) -> u32 {
        self.index.uidvalidity
    }

    /// Records the server's UIDVALIDITY; a change empties the mailbox.
    pub fn set_uidvalidity(&mut self, value: u32) -> Result<(), StoreError<D::Error>> {
        if value == self.index.uidvalidity {
            return Ok(());
        }
        self.append(MAILBOX, &value.to_le_bytes())
    }

    /// Stores a fetched message; false (and nothing written) if a message
    /// with this UID is stored already.
    pub fn add_message(
        &mut self,
        uid: u32,
        flags: u8,
        raw: &[u8],
    ) -> Result<bool, StoreError<D::Error>> {
        if self.index.messages.contains_key(&uid) {
            return Ok(false);
        }
        let mut payload = Vec::with_capacity(5 + raw.len());
        payload.extend_from_slice(&uid.to_le_bytes());
        payload.push(flags);
        payload.extend_from_slice(raw);
        self.append(MESSAGE, &payload)?;
        Ok(true)
    }

    pub fn set_flags(&mut self, uid: u32, flags: u8) -> Result<(), StoreError<D::Error>> {
        match self.index.messages.get(&uid) {
            None => Err(StoreError::NoMessage(uid)),
            Some(m) if m.flags == flags => Ok(()),
            Some(_) => {
                let mut payload = uid.to_le_bytes().to_vec();
                payload.push(flags);
                self.append(FLAGS, &payload)
            }
        }
    }

    pub fn expunge(&mut self, uid: u32) -> Result<(), StoreError<D::Error>> {
        if !self.index.messages.contains_key(&uid) {
            return Err(StoreError::NoMessage(uid));
        }
        self.append(EXPUNGE, &uid.to_le_bytes())
    }

    /// The stored messages, by UID.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.index.messages.values()
    }

    /// The highest stored UID (0 if none): the next fetch asks for more.
    pub fn highest_uid(&self) -> u32 {
        self.index.messages.keys().next_back().copied().unwrap_or(0)
    }

    /// A stored message's raw bytes, read from the disk and checked.
    pub fn read_message(&mut self, uid: u32) -> Result<Vec<u8>, StoreError<D::Error>> {
        let message = *self.index.messages.get(&uid).ok_or(StoreError::NoMessage(uid))?;
        let mut payload = self.log.read(message.at)?;
        payload.drain(..5);
        Ok(payload)
    }

    /// Puts a composed message in the outbox; returns its number.
    pub fn queue(&mut self, raw: &[u8]) -> Result<u64, StoreError<D::Error>> {
        let id = self.index.outbox.keys().next_back().map_or(1, |last| last + 1);
        let mut payload = id.to_le_bytes().to_vec();
        payload.extend_from_slice(raw);
        self.append(QUEUED, &payload)?;
        Ok(id)
    }

    /// Outbox entries and where each stands.
    pub fn outbox(&self) -> impl Iterator<Item = (u64, Outbox)> + '_ {
        self.index.outbox.iter().map(|(id, entry)| (*id, entry.state))
    }

    /// The next entry waiting to be sent (not "sent"), and where it
    /// stands: the first after entry `after` if there is one, else the
    /// first (so that one entry the server keeps refusing does not hold
    /// up those queued after it).
    pub fn next_waiting(&self, after: Option<u64>) -> Option<(u64, Outbox)> {
        let waiting = || self.outbox().filter(|(_, state)| *state != Outbox::Sent);
        after.and_then(|after| waiting().find(|(id, _)| *id > after)).or_else(|| waiting().next())
    }

    /// Records that sending entry `id` begins (before the first byte goes).
    pub fn begin_send(&mut self, id: u64) -> Result<(), StoreError<D::Error>> {
        self.entry(id)?;
        self.append(ATTEMPT, &id.to_le_bytes())
    }

    /// Records that the server accepted entry `id`.
    pub fn mark_sent(&mut self, id: u64) -> Result<(), StoreError<D::Error>> {
        self.entry(id)?;
        self.append(SENT, &id.to_le_bytes())
    }

    /// An outbox entry's raw message.
    pub fn read_outbox(&mut self, id: u64) -> Result<Vec<u8>, StoreError<D::Error>> {
        let entry = self.entry(id)?;
        let mut payload = self.log.read(entry.at)?;
        payload.drain(..8);
        Ok(payload)
    }

    fn entry(&self, id: u64) -> Result<Entry, StoreError<D::Error>> {
        self.index.outbox.get(&id).copied().ok_or(StoreError::NoEntry(id))
    }

    /// Records the log skipped as meaningless (checksum good, payload not).
    pub fn skipped(&self) -> u64 {
        self.index.skipped
    }

    pub fn log(&self) -> &Log<D> {
        &self.log
    }

    pub fn into_device(self) -> D {
        self.log.into_device()
    }
}

#[cfg(test)]
mod tests;
