//! Sets of physical address ranges, without a heap: what RAM is free once
//! Duet's image, the device tree and firmware reservations are taken out.
//! Boot uses this before the heap exists; VM memory comes from what is left.

use core::fmt;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

impl Region {
    pub const fn new(start: u64, size: u64) -> Self {
        Self { start, end: start.saturating_add(size) }
    }

    pub fn size(self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn contains(self, address: u64) -> bool {
        self.start <= address && address < self.end
    }

    pub fn overlaps(self, other: Region) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The region grown outwards to multiples of `align` (a power of two).
    pub fn align_out(self, align: u64) -> Self {
        Self { start: self.start & !(align - 1), end: self.end.next_multiple_of(align) }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.start, self.end)
    }
}

/// Why a region could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyRegions;

/// Up to `N` disjoint regions, kept sorted.
#[derive(Clone)]
pub struct RegionSet<const N: usize> {
    regions: [Region; N],
    len: usize,
}

impl<const N: usize> Default for RegionSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RegionSet<N> {
    pub const fn new() -> Self {
        Self { regions: [Region { start: 0, end: 0 }; N], len: 0 }
    }

    pub fn iter(&self) -> impl Iterator<Item = Region> + '_ {
        self.regions[..self.len].iter().copied()
    }

    pub fn total(&self) -> u64 {
        self.iter().map(Region::size).sum()
    }

    /// Adds a region that must not overlap those present.
    pub fn insert(&mut self, region: Region) -> Result<(), TooManyRegions> {
        if region.is_empty() {
            return Ok(());
        }
        if self.len == N {
            return Err(TooManyRegions);
        }
        let at = self.regions[..self.len].partition_point(|r| r.start < region.start);
        self.regions.copy_within(at..self.len, at + 1);
        self.regions[at] = region;
        self.len += 1;
        Ok(())
    }

    /// Takes `hole` out of every region it overlaps, splitting where needed.
    pub fn remove(&mut self, hole: Region) -> Result<(), TooManyRegions> {
        let mut index = 0;
        while index < self.len {
            let region = self.regions[index];
            if !region.overlaps(hole) {
                index += 1;
                continue;
            }
            let before = Region { start: region.start, end: hole.start.max(region.start) };
            let after = Region { start: hole.end.min(region.end), end: region.end };
            self.take(index);
            for piece in [before, after] {
                if !piece.is_empty() {
                    self.insert(piece)?;
                    index += 1;
                }
            }
        }
        Ok(())
    }

    /// Carves `size` bytes aligned to `align` out of the first region that
    /// can hold them.
    pub fn allocate(&mut self, size: u64, align: u64) -> Option<Region> {
        let found = self.iter().find_map(|r| {
            let start = r.start.next_multiple_of(align);
            (start.checked_add(size)? <= r.end).then(|| Region::new(start, size))
        })?;
        self.remove(found).ok()?;
        Some(found)
    }

    /// The largest region.
    pub fn largest(&self) -> Option<Region> {
        self.iter().max_by_key(|r| r.size())
    }

    fn take(&mut self, index: usize) {
        self.regions.copy_within(index + 1..self.len, index);
        self.len -= 1;
    }
}

impl<const N: usize> fmt::Debug for RegionSet<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(regions: &[(u64, u64)]) -> RegionSet<8> {
        let mut set = RegionSet::new();
        for &(start, end) in regions {
            set.insert(Region { start, end }).unwrap();
        }
        set
    }

    fn list(set: &RegionSet<8>) -> Vec<(u64, u64)> {
        set.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn insert_keeps_order() {
        let s = set(&[(300, 350), (100, 200), (0, 50)]);
        assert_eq!(list(&s), [(0, 50), (100, 200), (300, 350)]);
        assert_eq!(s.total(), 200);
        assert_eq!(s.largest(), Some(Region { start: 100, end: 200 }));
    }

    #[test]
    fn remove_splits_trims_and_drops() {
        let mut s = set(&[(0, 100), (200, 300), (400, 500)]);
        s.remove(Region { start: 40, end: 60 }).unwrap(); // split
        s.remove(Region { start: 250, end: 450 }).unwrap(); // trims two
        assert_eq!(list(&s), [(0, 40), (60, 100), (200, 250), (450, 500)]);
        s.remove(Region { start: 0, end: 1000 }).unwrap();
        assert!(list(&s).is_empty());
    }

    #[test]
    fn allocate_aligns_and_removes() {
        let mut s = set(&[(0x1000, 0x3000), (0x10_0000, 0x40_0000)]);
        let got = s.allocate(0x20_0000, 0x20_0000).unwrap();
        assert_eq!(got, Region::new(0x20_0000, 0x20_0000));
        assert_eq!(list(&s), [(0x1000, 0x3000), (0x10_0000, 0x20_0000)]);
        assert_eq!(s.allocate(0x20_0000, 0x1000), None);
    }

    #[test]
    fn full_set_reports_it() {
        let mut s: RegionSet<1> = RegionSet::new();
        s.insert(Region { start: 0, end: 100 }).unwrap();
        assert_eq!(s.remove(Region { start: 10, end: 20 }), Err(TooManyRegions));
    }

    #[test]
    fn align_out_grows_to_pages() {
        let r = Region { start: 0x4000_0123, end: 0x4000_1001 }.align_out(0x1000);
        assert_eq!(r, Region { start: 0x4000_0000, end: 0x4000_2000 });
    }
}
