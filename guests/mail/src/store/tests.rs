//! The store's tests: records come back after a reopen, a write torn at
//! any byte (or any set of blocks) loses only that record, a corrupted byte
//! anywhere loses only the records from there on, and the mailbox and
//! outbox never hold or send anything twice.

use super::log::{Log, LogError, BLOCK, HEADER};
use super::memory::MemoryDisk;
use super::*;
use alloc::vec;

const SALT: u32 = 0x5a17_c0de;

/// Every record of the log on `disk`, as (kind, payload).
fn records(disk: MemoryDisk) -> (Vec<(u8, Vec<u8>)>, Log<MemoryDisk>) {
    let mut seen = Vec::new();
    let log = Log::open(disk, SALT, |r| seen.push((r.kind, r.payload.to_vec()))).unwrap();
    (seen, log)
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A log with two records, the second ending mid-block.
fn two_records() -> (MemoryDisk, Vec<(u8, Vec<u8>)>) {
    let (_, mut log) = records(MemoryDisk::new(16));
    let written = vec![(1, payload(100, 1)), (2, payload(300, 2))];
    for (kind, p) in &written {
        log.append(*kind, p).unwrap();
    }
    (log.into_device(), written)
}

#[test]
fn records_come_back_in_order_after_a_reopen() {
    let (disk, written) = two_records();
    let (seen, log) = records(disk);
    assert_eq!(seen, written);
    assert_eq!(log.records(), 2);
    assert_eq!(log.used(), (2 * HEADER + 400) as u64);
    assert!(!log.dropped_tail());
}

#[test]
fn a_fresh_disk_is_formatted_and_junk_in_block_0_too() {
    let mut disk = MemoryDisk::new(4);
    disk.bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let (seen, mut log) = records(disk);
    assert!(seen.is_empty());
    log.append(9, b"x").unwrap();
    let (seen, _) = records(log.into_device());
    assert_eq!(seen, vec![(9, b"x".to_vec())]);
}

#[test]
fn limits_are_errors() {
    let small = Log::open(MemoryDisk::new(1), SALT, |_| {});
    assert!(matches!(small, Err(LogError::TooSmall { blocks: 1 })));
    let (_, mut log) = records(MemoryDisk::new(3));
    assert_eq!(log.append(1, &[0; 2000]), Err(LogError::Full { needed: 2020, free: 1024 }));
    let (_, mut log) = records(MemoryDisk::new(3000));
    let big = vec![0; log::MAX_PAYLOAD + 1];
    assert_eq!(log.append(1, &big), Err(LogError::TooLarge { len: big.len() }));
    // After errors that wrote nothing, the log goes on.
    log.append(1, b"fine").unwrap();
}

/// A write of `new` torn after `k` bytes: the disk as it was before, with
/// only the first `k` bytes of the append's range taken from after.
fn torn(before: &MemoryDisk, after: &MemoryDisk, start: usize, k: usize) -> MemoryDisk {
    let mut disk = before.clone();
    let (from, to) = (BLOCK + start, BLOCK + start + k);
    disk.bytes[from..to].copy_from_slice(&after.bytes[from..to]);
    disk
}

#[test]
fn a_write_torn_at_any_byte_loses_only_that_record() {
    let (before, written) = two_records();
    let (_, mut log) = records(before.clone());
    let start = log.used() as usize;
    // Spans three blocks, starting mid-block.
    let third = payload(900, 3);
    log.append(3, &third).unwrap();
    let after = log.into_device();
    let len = HEADER + third.len();
    for k in 0..=len {
        let (seen, mut log) = records(torn(&before, &after, start, k));
        let mut expected = written.clone();
        if k == len {
            expected.push((3, third.clone()));
        }
        assert_eq!(seen, expected, "torn after {k} bytes");
        // Only a write that left something and did not finish is dropped.
        assert_eq!(log.dropped_tail(), k > 0 && k < len, "torn after {k} bytes");
        // The log goes on from the last good record; what the torn write
        // left past it (a longer record's tail) never comes back.
        log.append(4, b"next").unwrap();
        let (seen, _) = records(log.into_device());
        expected.push((4, b"next".to_vec()));
        assert_eq!(seen, expected, "append after tearing at {k}");
    }
}

#[test]
fn a_write_with_any_set_of_its_blocks_lost_loses_only_that_record() {
    let (before, written) = two_records();
    let (_, mut log) = records(before.clone());
    let start = BLOCK + log.used() as usize;
    let third = payload(1200, 5);
    log.append(3, &third).unwrap();
    let after = log.into_device();
    let blocks: Vec<usize> = (start / BLOCK..=(start + HEADER + third.len() - 1) / BLOCK).collect();
    assert_eq!(blocks.len(), 4);
    for mask in 0..(1u32 << blocks.len()) {
        let mut disk = before.clone();
        for (bit, block) in blocks.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                let range = block * BLOCK..(block + 1) * BLOCK;
                disk.bytes[range.clone()].copy_from_slice(&after.bytes[range]);
            }
        }
        let (seen, _) = records(disk);
        let mut expected = written.clone();
        if mask == (1 << blocks.len()) - 1 {
            expected.push((3, third.clone()));
        }
        assert_eq!(seen, expected, "blocks written: {mask:#b}");
    }
}

#[test]
fn a_corrupted_byte_anywhere_keeps_the_records_before_it() {
    let (disk, written) = two_records();
    let first_end = HEADER + written[0].1.len();
    let used = first_end + HEADER + written[1].1.len();
    for at in 0..used {
        let mut bad = disk.clone();
        bad.bytes[BLOCK + at] ^= 0x40;
        let (seen, mut log) = records(bad);
        let keep = if at < first_end { 0 } else { 1 };
        assert_eq!(seen, written[..keep].to_vec(), "byte {at} flipped");
        log.append(7, b"after").unwrap();
    }
}

#[test]
fn a_record_read_back_is_checked_again() {
    let (_, mut log) = records(MemoryDisk::new(8));
    let at = log.append(1, b"hello").unwrap();
    assert_eq!(log.read(at).unwrap(), b"hello");
    let mut disk = log.into_device();
    disk.bytes[BLOCK + HEADER] ^= 1;
    // Reopening stops before the rotted record; reading it through a kept
    // reference is refused rather than returning the bad bytes.
    let mut kept = Log::open(disk.clone(), SALT, |_| {}).unwrap();
    assert_eq!(kept.read(at), Err(LogError::Corrupt { position: 0 }));
}

#[test]
fn a_message_is_stored_once_by_uid_and_keeps_its_flags() {
    let mut store = Store::open(MemoryDisk::new(64), SALT).unwrap();
    store.set_uidvalidity(1700).unwrap();
    assert!(store.add_message(1, 0, b"From: a\r\n\r\none").unwrap());
    assert!(store.add_message(2, SEEN, b"From: b\r\n\r\ntwo").unwrap());
    // The same UID fetched again (a sync cut off and redone): not stored.
    let used = store.log().used();
    assert!(!store.add_message(2, SEEN, b"From: b\r\n\r\ntwo").unwrap());
    assert_eq!(store.log().used(), used);
    store.set_flags(1, SEEN | FLAGGED).unwrap();
    assert_eq!(store.set_flags(9, SEEN), Err(StoreError::NoMessage(9)));

    let mut store = Store::open(store.into_device(), SALT).unwrap();
    assert_eq!(store.uidvalidity(), 1700);
    let listed: Vec<(u32, u8)> = store.messages().map(|m| (m.uid, m.flags)).collect();
    assert_eq!(listed, vec![(1, SEEN | FLAGGED), (2, SEEN)]);
    assert_eq!(store.highest_uid(), 2);
    assert_eq!(store.read_message(2).unwrap(), b"From: b\r\n\r\ntwo");
    assert!(!store.add_message(1, 0, b"again").unwrap());
    assert_eq!(store.skipped(), 0);
}

#[test]
fn a_new_uidvalidity_empties_the_mailbox_and_expunge_removes() {
    let mut store = Store::open(MemoryDisk::new(64), SALT).unwrap();
    store.set_uidvalidity(1).unwrap();
    store.add_message(5, 0, b"a").unwrap();
    store.add_message(6, 0, b"b").unwrap();
    store.expunge(5).unwrap();
    assert_eq!(store.messages().count(), 1);
    store.set_uidvalidity(2).unwrap();
    assert_eq!(store.messages().count(), 0);
    assert!(store.add_message(5, 0, b"new 5").unwrap());
    let mut store = Store::open(store.into_device(), SALT).unwrap();
    assert_eq!(store.uidvalidity(), 2);
    assert_eq!(store.read_message(5).unwrap(), b"new 5");
    assert_eq!(store.messages().count(), 1);
}

#[test]
fn the_outbox_sends_each_entry_once_and_remembers_an_unfinished_send() {
    let mut store = Store::open(MemoryDisk::new(64), SALT).unwrap();
    let a = store.queue(b"Subject: a\r\n\r\nA").unwrap();
    let b = store.queue(b"Subject: b\r\n\r\nB").unwrap();
    assert_eq!((a, b), (1, 2));
    store.begin_send(a).unwrap();
    store.mark_sent(a).unwrap();
    // Power cut after the send of b began.
    store.begin_send(b).unwrap();
    let mut store = Store::open(store.into_device(), SALT).unwrap();
    let states: Vec<_> = store.outbox().collect();
    assert_eq!(states, vec![(1, Outbox::Sent), (2, Outbox::Uncertain)]);
    assert_eq!(store.read_outbox(b).unwrap(), b"Subject: b\r\n\r\nB");
    // An attempt after "sent" does not make it pending again.
    store.begin_send(a).unwrap();
    assert_eq!(store.outbox().next(), Some((1, Outbox::Sent)));
    assert_eq!(store.queue(b"c").unwrap(), 3);
    assert_eq!(store.mark_sent(9), Err(StoreError::NoEntry(9)));
    // Waiting: 2 (uncertain) and 3; after a failure of 2, 3 comes next,
    // then 2 again.
    assert_eq!(store.next_waiting(None), Some((2, Outbox::Uncertain)));
    assert_eq!(store.next_waiting(Some(2)), Some((3, Outbox::Queued)));
    assert_eq!(store.next_waiting(Some(3)), Some((2, Outbox::Uncertain)));
    store.mark_sent(2).unwrap();
    store.mark_sent(3).unwrap();
    assert_eq!(store.next_waiting(None), None);
}

#[test]
fn a_store_torn_at_any_byte_of_its_last_write_keeps_everything_before() {
    let mut store = Store::open(MemoryDisk::new(64), SALT).unwrap();
    store.set_uidvalidity(3).unwrap();
    store.add_message(1, 0, &payload(600, 9)).unwrap();
    let id = store.queue(b"queued").unwrap();
    let start = store.log().used() as usize;
    let mut before = store.into_device();
    // Stale bytes past the end, so that every torn prefix differs.
    before.bytes[BLOCK + start..].fill(0xee);
    let mut store = Store::open(before.clone(), SALT).unwrap();
    store.mark_sent(id).unwrap();
    let after = store.into_device();
    for k in 0..=HEADER + 8 {
        let store = Store::open(torn(&before, &after, start, k), SALT).unwrap();
        assert_eq!(store.messages().count(), 1);
        let state = if k == HEADER + 8 { Outbox::Sent } else { Outbox::Queued };
        assert_eq!(store.outbox().collect::<Vec<_>>(), vec![(id, state)], "torn at {k}");
    }
}
