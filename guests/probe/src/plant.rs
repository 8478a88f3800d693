//! `probe.mode=plant`: puts a copy of the secret at the start of every
//! 4 KiB page of its RAM (except the pages of its own image and device
//! tree), and one in every spare register that takes it (see `stash`),
//! says so, and keeps them there while the hunter looks for them:
//! until a byte arrives on its console (the test types one when the hunter
//! is done; the planter must be the VM with the console), or `linger`
//! seconds at most. Then it checks that every copy is intact and that
//! nothing else in those pages was written, by anyone, and powers off.

use crate::entry::Guest;
use crate::{console, smccc, stash, timer};
use core::ops::Range;

const PAGE: u64 = 4096;
const WORD: u64 = 8;

pub fn run(guest: &Guest, secret: u64, linger: u64) -> ! {
    let mut copies = 0u64;
    for page in pages(guest) {
        // SAFETY: a page of the guest's own RAM that holds neither its
        // image nor its device tree.
        unsafe { core::ptr::write_volatile(page as *mut u64, secret) };
        copies += 1;
    }
    say!("probe: planted {copies} copies of the secret, one per 4 KiB page of its RAM");
    let registers = stash::plant(secret);
    say!("probe: plant: registers holding the secret too: {}", stash::Names(registers));
    say!("probe: plant: keeping them until a key is typed, or {linger} s");
    let seconds = linger_until_typed(linger);
    match first_change(guest, secret) {
        None => say!(
            "probe: plant: all {copies} copies intact and nothing else written after {seconds} s"
        ),
        Some((address, value)) => {
            say!("probe: plant: NOT INTACT: {address:#x} holds {value:#x}")
        }
    }
    smccc::power_off()
}

/// How often the planter looks at its console.
const POLLS_PER_SECOND: u64 = 10;

/// Waits for a byte on the console or `linger` seconds; returns the whole
/// seconds waited.
fn linger_until_typed(linger: u64) -> u64 {
    let start = timer::now();
    let deadline = start + timer::seconds(linger);
    while timer::now() < deadline && console::read_byte().is_none() {
        timer::sleep(timer::frequency() / POLLS_PER_SECOND);
    }
    (timer::now() - start) / timer::frequency()
}

/// The pages that get a copy.
fn pages(guest: &Guest) -> impl Iterator<Item = u64> + '_ {
    let ram = guest.ram.base..guest.ram_end();
    ram.step_by(PAGE as usize).filter(move |&page| {
        let this = page..page + PAGE;
        !overlaps(&this, &guest.image()) && !overlaps(&this, &guest.device_tree())
    })
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The first word of a planted page that is not what the planter left
/// there: the secret at the start, zeros after it.
fn first_change(guest: &Guest, secret: u64) -> Option<(u64, u64)> {
    pages(guest).find_map(|page| {
        (page..page + PAGE).step_by(WORD as usize).find_map(|address| {
            let expected = if address == page { secret } else { 0 };
            // SAFETY: a word of the planter's own RAM, outside its image.
            let value = unsafe { core::ptr::read_volatile(address as *const u64) };
            (value != expected).then_some((address, value))
        })
    })
}
