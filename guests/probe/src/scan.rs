//! Reaching memory that may not be there, page by page, for the hunter:
//! every word of a page that answers is compared with the needle, and a
//! page whose first word faults is counted unreadable and skipped.

use crate::exceptions::guarded;
use crate::guarded as leaf;
use duet_probe::needle::Needle;

pub const PAGE: u64 = 4096;
const WORD: u64 = 8;

/// What scanning one page found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Its first word faulted.
    Unreadable,
    /// It could be read; `found` is where the needle was, if it was.
    Readable { found: Option<u64> },
}

/// A load that may fault: `None` if it did.
pub fn try_load(address: u64) -> Option<u64> {
    // SAFETY: a load that may fault, inside a guarded leaf function.
    guarded(|| unsafe { leaf::probe_load64(address, 0) }).ok()
}

/// A store that may fault: `None` if it did.
pub fn try_store(address: u64, value: u64) -> Option<()> {
    // SAFETY: a store that may fault, inside a guarded leaf function; the
    // caller never aims it at the probe's own memory.
    guarded(|| unsafe { leaf::probe_store64(address, value) }).ok().map(|_| ())
}

/// Looks for `needle` in the page at `page`. Words after the first that
/// fault (an emulated device may refuse some offsets) are skipped.
pub fn scan_page(page: u64, needle: &Needle) -> Page {
    let Some(first) = try_load(page) else {
        return Page::Unreadable;
    };
    if needle.matches(first) {
        return Page::Readable { found: Some(page) };
    }
    let found = (page + WORD..page + PAGE)
        .step_by(WORD as usize)
        .find(|&address| try_load(address).is_some_and(|word| needle.matches(word)));
    Page::Readable { found }
}
