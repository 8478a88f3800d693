//! The router's next deadline (the idle lock), kept where the CPU loop can
//! read it without the router's lock: a loop that found that lock busy would
//! arm no timer for the idle lock that turn, and the lock would come late.
//! Whoever changes the router publishes its deadline here afterwards.

use core::sync::atomic::{AtomicU64, Ordering};

/// What [`SharedDeadline`] holds for "no deadline". A deadline this far
/// away (the saturated sum of a time and a timeout) is never reached, so
/// reading it back as none changes nothing.
const NONE: u64 = u64::MAX;

/// A deadline, in microseconds of the counter, that one side publishes and
/// any CPU reads without waiting.
pub struct SharedDeadline(AtomicU64);

impl SharedDeadline {
    /// No deadline yet.
    pub const fn none() -> Self {
        Self(AtomicU64::new(NONE))
    }

    /// Publishes `deadline`. Callers publish under the lock of what the
    /// deadline comes from, so publications land in the order of changes.
    pub fn set(&self, deadline: Option<u64>) {
        self.0.store(deadline.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// The deadline last published.
    pub fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&us| us != NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_reads_back_until_the_next_one() {
        let deadline = SharedDeadline::none();
        assert_eq!(deadline.get(), None);
        deadline.set(Some(60_000_000));
        assert_eq!(deadline.get(), Some(60_000_000));
        deadline.set(Some(0));
        assert_eq!(deadline.get(), Some(0), "a deadline at 0 is a deadline");
        deadline.set(None);
        assert_eq!(deadline.get(), None);
    }

    #[test]
    fn a_deadline_never_reached_reads_as_none() {
        let deadline = SharedDeadline::none();
        deadline.set(Some(u64::MAX));
        assert_eq!(deadline.get(), None);
        deadline.set(Some(u64::MAX - 1));
        assert_eq!(deadline.get(), Some(u64::MAX - 1));
    }

    #[test]
    fn the_routers_deadline_goes_through_unchanged() {
        use crate::screen::route::Router;
        // Two personas, a 30 s idle lock; the router starts locked.
        let mut router = Router::new((720, 1280), (0x7fff, 0x7fff), 2, 0, Some(30_000_000));
        let deadline = SharedDeadline::none();
        deadline.set(router.next_deadline_us());
        assert_eq!(deadline.get(), None, "locked: no idle deadline");
        let _ = router.toggle(5_000_000);
        deadline.set(router.next_deadline_us());
        assert_eq!(deadline.get(), Some(35_000_000), "unlocked at 5 s");
        let _ = router.toggle(6_000_000);
        deadline.set(router.next_deadline_us());
        assert_eq!(deadline.get(), None, "locked again");
    }
}
