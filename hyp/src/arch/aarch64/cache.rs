//! Data-cache maintenance by address range, to the point of coherency.
//!
//! Needed where memory is shared with an observer that does not snoop the
//! caches: the table walker before the MMU is on, and a CPU that starts with
//! its MMU and caches off.

use core::arch::asm;

/// The smallest data-cache line, from CTR_EL0.DminLine.
fn line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Discards cached copies of `[start, end)`; memory keeps what was written
/// with the caches off. Only for ranges no cacheable write has touched.
pub fn invalidate_range(start: usize, end: usize) {
    let line = line_size();
    let mut address = start & !(line - 1);
    while address < end {
        // SAFETY: invalidation only drops cached copies; callers guarantee that
        // memory holds the current data for this range.
        unsafe { asm!("dc ivac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    // SAFETY: a barrier has no memory-safety effects.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Writes cached data in `[start, end)` back to memory.
pub fn clean_range(start: usize, end: usize) {
    let line = line_size();
    let mut address = start & !(line - 1);
    while address < end {
        // SAFETY: cleaning writes dirty lines back and changes no data.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    // SAFETY: a barrier has no memory-safety effects.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}
