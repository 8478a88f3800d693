//! `probe.mode=hunt`: looks for the planter's secret everywhere this guest
//! can read, and reports whether it found it.
//!
//! Where it looks:
//! - all of its own RAM except its own image (code, data, stack), word by
//!   word;
//! - every 4 KiB page of guest-physical addresses below the end of the
//!   host's RAM (0..0xc000_0000): its devices, and every address at which
//!   Duet, the persona package or another VM's RAM sits on the host;
//! - one page per GiB from there to the top of its 1 TiB IPA space;
//! - the spare registers where a VM sharing its CPU might have left data
//!   (see `stash`).
//!
//! Pages that fault are counted and skipped. Then it stores to every page
//! of host RAM outside its own; each store must fault. Before hunting, it checks the
//! scan itself: it plants one copy of the secret in its own RAM, must find
//! it, and wipes it. The hunter never keeps the whole secret in memory (see
//! `duet_probe::needle`), so only another VM's copy could be found.

use crate::entry::Guest;
use crate::scan::{scan_page, try_store, Page, PAGE};
use crate::{smccc, stash, timer};
use duet_probe::needle::Needle;
use duet_probe::platform::{host, virt};

const GIB: u64 = 1 << 30;
/// What the hunter stores where other VMs' RAM lives on the host.
const STOMP: u64 = 0x570d_570d_570d_570d;

/// Readable pages outside its RAM that the report names.
const NAMED: usize = 8;

/// Pages scanned, and what they held.
#[derive(Default)]
struct Tally {
    pages: u64,
    readable: u64,
    own: u64,
    found: Option<u64>,
    /// The first readable pages outside its RAM (its emulated devices).
    elsewhere: [u64; NAMED],
}

impl Tally {
    fn add(&mut self, page: u64, needle: &Needle) {
        self.pages += 1;
        if let Page::Readable { found } = scan_page(page, needle) {
            let outside = self.readable - self.own;
            if self.own != 0 && (outside as usize) < NAMED {
                self.elsewhere[outside as usize] = page;
            }
            self.readable += 1;
            if self.found.is_none() {
                self.found = found;
            }
        }
    }
}

pub fn run(guest: &Guest, needle: Needle) -> ! {
    self_check(guest, &needle);
    say!("probe: hunt: starting");
    let start = timer::now();
    let mut tally = Tally::default();
    let image = guest.image();
    let own_pages = (guest.ram.base..guest.ram_end()).step_by(PAGE as usize);
    for page in own_pages.clone().filter(|page| !image.contains(page)) {
        tally.add(page, &needle);
    }
    tally.own = tally.readable;
    let below_host_ram_end = (0..host::RAM_END).step_by(PAGE as usize);
    for page in below_host_ram_end.filter(|&page| !guest.owns(page)) {
        tally.add(page, &needle);
    }
    for page in (host::RAM_END..virt::IPA_LIMIT).step_by(GIB as usize) {
        tally.add(page, &needle);
    }
    report(guest, &tally, own_pages.count() as u64, timer::millis(timer::now() - start));
    let registers = stash::hunt(&needle);
    match registers.found {
        Some(name) => say!("probe: hunt: found the secret in {name}"),
        None => say!(
            "probe: hunt: secret not found in {} registers ({} readable: {})",
            stash::REGISTERS.len(),
            registers.readable.count_ones(),
            stash::Names(registers.readable)
        ),
    }
    stomp(guest);
    smccc::power_off()
}

/// Stores to every page of host RAM outside its own RAM, where the other
/// VMs' RAM is: every store must fault. (The planter then checks that its
/// RAM holds only what it put there.)
fn stomp(guest: &Guest) {
    let start = timer::now();
    let pages = (host::RAM_BASE..host::RAM_END).step_by(PAGE as usize);
    let mut stored = 0u64;
    let mut faulted = 0u64;
    for page in pages.filter(|&page| !guest.owns(page)) {
        stored += 1;
        match try_store(page, STOMP) {
            Some(()) => {
                say!("probe: hunt: a store to {page:#x} completed");
                return;
            }
            None => faulted += 1,
        }
    }
    let millis = timer::millis(timer::now() - start);
    say!("probe: hunt: stores to {stored} pages of host RAM outside its own: all {faulted} faulted in {millis} ms");
}

fn report(guest: &Guest, tally: &Tally, own_pages: u64, millis: u64) {
    let image_pages = (guest.image.1 - guest.image.0).div_ceil(PAGE);
    say!(
        "probe: hunt: own RAM: {} of its {own_pages} pages read ({image_pages} of its image skipped)",
        tally.own
    );
    let outside = ((tally.readable - tally.own) as usize).min(NAMED);
    say!(
        "probe: hunt: readable outside its RAM: {} pages, the first: {}",
        tally.readable - tally.own,
        Addresses(&tally.elsewhere[..outside])
    );
    match tally.found {
        Some(address) => say!("probe: hunt: found the secret at {address:#x}"),
        None => say!(
            "probe: hunt: secret not found in {} pages ({} readable) in {millis} ms",
            tally.pages,
            tally.readable
        ),
    }
}

/// Addresses, comma-separated, in hex.
struct Addresses<'a>(&'a [u64]);

impl core::fmt::Display for Addresses<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (n, address) in self.0.iter().enumerate() {
            let separator = if n == 0 { "" } else { ", " };
            write!(f, "{separator}{address:#x}")?;
        }
        Ok(())
    }
}

/// Proves the scan finds the secret when it is there: plants one copy in
/// the first page of its own RAM, scans that page, wipes the copy and scans
/// again. Powers off if the scan is blind.
fn self_check(guest: &Guest, needle: &Needle) {
    let page = guest.ram.base;
    let copy = page + PAGE / 2;
    // SAFETY: a word of the hunter's own RAM, below its image.
    unsafe { core::ptr::write_volatile(copy as *mut u64, needle.unmasked()) };
    let found = scan_page(page, needle);
    // SAFETY: as above; wipes the copy.
    unsafe { core::ptr::write_volatile(copy as *mut u64, 0) };
    let after = scan_page(page, needle);
    if found == (Page::Readable { found: Some(copy) }) && after == (Page::Readable { found: None })
    {
        say!("probe: hunt: self-check: a copy planted at {copy:#x} is found, and gone once wiped");
    } else {
        say!("probe: hunt: self-check FAILED: {found:?}, then {after:?}; powering off");
        smccc::power_off();
    }
}
