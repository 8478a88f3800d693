//! Fuzzes the split virtqueue walker: arbitrary guest RAM (rings,
//! descriptors, indirect tables all come from the input) and arbitrary
//! queue configuration. Whatever the guest wrote, `pop` must return a
//! chain whose every segment lies in RAM, readable before writable, within
//! the byte limit, or an error; never panic, never loop.

#![no_main]

use duet::vdev::virtio::guest_memory::TestRam;
use duet::vdev::virtio::queue::{Queue, MAX_CHAIN_BYTES};
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const RAM_BYTES: usize = 0x4000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (head, body) = data.split_at(16);
    let word = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
    let mut ram = TestRam::new(BASE, RAM_BYTES);
    let n = body.len().min(RAM_BYTES);
    ram.bytes()[..n].copy_from_slice(&body[..n]);
    let memory = ram.memory();
    // Ring addresses anywhere near RAM (some outside it), any size.
    let address = |w: u16| BASE - 0x100 + u64::from(w) % (RAM_BYTES as u64 + 0x200);
    let mut queue = Queue::default();
    queue.size = 1 << (head[0] % 10);
    queue.ready = true;
    queue.desc = address(word(2));
    queue.avail = address(word(4));
    queue.used = address(word(6));
    queue.indirect = head[1] & 1 != 0;
    if queue.validate(&memory).is_err() && head[1] & 2 == 0 {
        return;
    }
    for _ in 0..(head[8] % 8 + 1) {
        let chain = match queue.pop(&memory) {
            Ok(Some(chain)) => chain,
            Ok(None) | Err(_) => break,
        };
        let mut total = 0u64;
        for segment in chain.readable.iter().chain(&chain.writable) {
            assert!(memory.check(segment.address, u64::from(segment.length)).is_ok());
            total += u64::from(segment.length);
        }
        assert!(total <= MAX_CHAIN_BYTES);
        assert!(chain.readable.len() + chain.writable.len() <= usize::from(queue.size));
        let mut scratch = [0u8; 64];
        chain.read_at(&memory, u64::from(head[9]), &mut scratch);
        chain.write_at(&memory, u64::from(head[10]), &scratch[..usize::from(head[11] % 64)]);
        let _ = queue.push(&memory, chain.head, u32::from(word(12)));
    }
});
