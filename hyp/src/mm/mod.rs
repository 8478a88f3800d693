//! Memory: translation tables, physical RAM bookkeeping, Duet's own map and
//! its heap.

pub mod el2_map;
pub mod pagetable;
pub mod regions;

#[cfg(target_os = "none")]
pub mod heap;

use core::ptr::NonNull;
use pagetable::{Table, TableAllocator};

/// A fixed pool of zeroed tables, handed out once each. Duet's own map is
/// built from one before the heap exists.
pub struct TablePool<const N: usize> {
    tables: [Table; N],
    used: usize,
}

impl<const N: usize> TablePool<N> {
    pub const fn new() -> Self {
        Self { tables: [const { Table([0; 512]) }; N], used: 0 }
    }

    /// Tables handed out so far.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl<const N: usize> Default for TablePool<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TableAllocator for TablePool<N> {
    fn allocate(&mut self, count: usize) -> Option<NonNull<Table>> {
        let start = self.used.next_multiple_of(count);
        let end = start.checked_add(count)?;
        // The pool itself is page aligned; `count`-table alignment also needs
        // the start address to be a multiple of the total size.
        let address = self.tables.get(start)? as *const Table as usize;
        if end > N || !address.is_multiple_of(count * core::mem::size_of::<Table>()) {
            return None;
        }
        self.used = end;
        NonNull::new(&mut self.tables[start] as *mut Table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hands_out_each_table_once_then_runs_dry() {
        let mut pool: Box<TablePool<3>> = Box::default();
        let a = pool.allocate(1).unwrap();
        let b = pool.allocate(1).unwrap();
        assert_ne!(a, b);
        assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 4096);
        assert!(pool.allocate(1).is_some());
        assert!(pool.allocate(1).is_none());
        assert_eq!(pool.used(), 3);
    }
}
