//! The guest's heap: a fixed 12 MiB array in `.bss` handed to a buddy
//! allocator. This is the whole dynamic memory budget (virtio queues and
//! buffers, the display's framebuffer (720x1232 pixels of 4 bytes, a 4 MiB
//! block), the store's index, network buffers); an allocation beyond it
//! fails (the allocator returns null and Rust's alloc error handler stops
//! the guest) rather than grow.

use buddy_system_allocator::LockedHeap;

pub const HEAP_SIZE: usize = 12 << 20;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Gives the arena to the allocator; once, before anything allocates.
pub fn init() {
    // SAFETY: called once at boot, on the only CPU, before any allocation:
    // nothing else refers to ARENA, and from here on only the allocator does.
    unsafe {
        let start = core::ptr::addr_of_mut!(ARENA) as usize;
        HEAP.lock().init(start, HEAP_SIZE);
    }
}

/// Bytes allocated now.
pub fn in_use() -> usize {
    HEAP.lock().stats_alloc_actual()
}
