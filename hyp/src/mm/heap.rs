//! Duet's heap: a buddy allocator over one region of RAM, set aside at boot.

use super::regions::Region;
use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands `region` to the allocator.
///
/// # Safety
/// The region must be mapped read-write, unused by anything else, and stay
/// so for as long as Duet runs.
pub unsafe fn init(region: Region) {
    // SAFETY: the caller's contract.
    unsafe { HEAP.lock().init(region.start as usize, region.size() as usize) };
}

/// Bytes in use and bytes in all.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_alloc_actual(), heap.stats_total_bytes())
}
