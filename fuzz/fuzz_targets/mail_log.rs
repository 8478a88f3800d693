//! The mail store's log recovery (guests/mail/src/store/log.rs): a log of
//! records the input describes, then torn at a byte and corrupted where the
//! input says; or the input itself as the log's bytes behind a valid
//! superblock. Opening must never panic, must find only records that were
//! written, in order (a prefix of them), and must go on: a record appended
//! after the open is there at the next open, after the same records.
#![no_main]

use duet_mail::store::log::{Log, BLOCK};
use duet_mail::store::memory::MemoryDisk;
use libfuzzer_sys::fuzz_target;

const SALT: u32 = 0x1234_5678;
const BLOCKS: usize = 24;

fn open(disk: MemoryDisk) -> (Vec<(u8, Vec<u8>)>, Log<MemoryDisk>) {
    let mut seen = Vec::new();
    let log = Log::open(disk, SALT, |r| seen.push((r.kind, r.payload.to_vec())))
        .expect("a disk of the right size always opens");
    (seen, log)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let (disk, written) = if mode & 1 == 0 {
        // Records from the input, then damage.
        let (_, mut log) = open(MemoryDisk::new(BLOCKS));
        let mut written = Vec::new();
        let count = data.first().map_or(0, |n| n % 8) as usize;
        for i in 0..count {
            let len = data.get(1 + i).map_or(0, |&b| b as usize * 5);
            let payload: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            if log.append(i as u8, &payload).is_ok() {
                written.push((i as u8, payload));
            }
        }
        let mut disk = log.into_device();
        let damage = data.get(1 + count..).unwrap_or(&[]);
        if let [hi, lo, rest @ ..] = damage {
            // Torn: everything from this byte of the log on is lost.
            let torn = BLOCK + (usize::from(*hi) << 8 | usize::from(*lo));
            if torn < disk.bytes.len() {
                disk.bytes[torn..].fill(0);
            }
            for flip in rest.chunks_exact(3) {
                let at = BLOCK + (usize::from(flip[0]) << 8 | usize::from(flip[1]));
                if at < disk.bytes.len() {
                    disk.bytes[at] ^= flip[2];
                }
            }
        }
        (disk, written)
    } else {
        // The input as the log's bytes.
        let (_, log) = open(MemoryDisk::new(BLOCKS));
        let mut disk = log.into_device();
        let n = data.len().min(disk.bytes.len() - BLOCK);
        disk.bytes[BLOCK..BLOCK + n].copy_from_slice(&data[..n]);
        (disk, Vec::new())
    };
    let (seen, mut log) = open(disk);
    if mode & 1 == 0 {
        assert!(seen.len() <= written.len() && seen[..] == written[..seen.len()]);
    }
    let mut expected = seen.clone();
    if log.append(0xaa, b"after").is_ok() {
        expected.push((0xaa, b"after".to_vec()));
    }
    let (again, _) = open(log.into_device());
    assert_eq!(again, expected);
});
