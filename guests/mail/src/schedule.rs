//! When the long-running client (`mail.run`) does what, without a clock of
//! its own: times are milliseconds of uptime that the guest passes in.
//!
//! A sync is due at once at start, then every `sync_seconds`, and at once
//! after a message is queued; the outbox is sent whenever it has entries
//! waiting. A failed attempt is retried with a backoff that doubles from
//! [`FIRST_BACKOFF_MS`] up to the sync interval (at most
//! [`MAX_BACKOFF_MS`]); a server that cannot be reached at all (no address,
//! no TCP connection) makes the client "offline" from the first such
//! failure until an attempt gets through. The guest sleeps until
//! [`Schedule::next_deadline`].

use alloc::string::String;
use core::fmt::Write as _;

pub const FIRST_BACKOFF_MS: u64 = 5_000;
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Send,
    Sync,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// No network address, or no TCP connection to the server.
    Unreachable(String),
    /// The server answered, but the attempt failed (TLS, protocol, refusal).
    Failed(String),
}

/// One kind of work's next attempt, backoff and reachability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Retry {
    next: u64,
    backoff: u64,
    offline_since: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval: u64,
    sync: Retry,
    send: Retry,
    last_sync: Option<u64>,
    last_error: Option<String>,
}

impl Schedule {
    /// A client syncing every `sync_seconds`; the first sync is due now.
    pub fn new(sync_seconds: u32, now: u64) -> Schedule {
        let interval = u64::from(sync_seconds.max(1)) * 1000;
        let first =
            Retry { next: now, backoff: FIRST_BACKOFF_MS.min(interval), offline_since: None };
        Schedule { interval, sync: first, send: first, last_sync: None, last_error: None }
    }

    fn cap(&self) -> u64 {
        self.interval.min(MAX_BACKOFF_MS)
    }

    fn retry(&mut self, work: Work) -> &mut Retry {
        match work {
            Work::Send => &mut self.send,
            Work::Sync => &mut self.sync,
        }
    }

    /// What is due at `now`, with `waiting` outbox entries: sending first.
    pub fn due(&self, now: u64, waiting: usize) -> Option<Work> {
        if waiting > 0 && now >= self.send.next {
            Some(Work::Send)
        } else if now >= self.sync.next {
            Some(Work::Sync)
        } else {
            None
        }
    }

    /// When something is next due (uptime ms), with `waiting` entries.
    pub fn next_deadline(&self, waiting: usize) -> u64 {
        if waiting > 0 {
            self.sync.next.min(self.send.next)
        } else {
            self.sync.next
        }
    }

    /// When `work` is next tried.
    pub fn next(&self, work: Work) -> u64 {
        match work {
            Work::Send => self.send.next,
            Work::Sync => self.sync.next,
        }
    }

    /// A message was queued: send it, and sync, at once.
    pub fn queued(&mut self, now: u64) {
        self.send.next = now;
        self.sync.next = self.sync.next.min(now);
    }

    /// An attempt at `work` ended with `outcome` at `now`.
    pub fn finished(&mut self, work: Work, outcome: &Outcome, now: u64) {
        let cap = self.cap();
        let (first, interval) = (FIRST_BACKOFF_MS.min(cap), self.interval);
        let retry = self.retry(work);
        match outcome {
            Outcome::Done => {
                // A sync is next due an interval later; whatever else is
                // waiting in the outbox goes right away.
                let next = if work == Work::Sync { now + interval } else { now };
                *retry = Retry { next, backoff: first, offline_since: None };
                if work == Work::Sync {
                    self.last_sync = Some(now);
                }
                self.last_error = None;
            }
            Outcome::Unreachable(why) | Outcome::Failed(why) => {
                retry.next = now + retry.backoff;
                retry.backoff = (retry.backoff * 2).min(cap);
                if matches!(outcome, Outcome::Unreachable(_)) {
                    retry.offline_since.get_or_insert(now);
                } else {
                    // The server answered: not offline, but not working.
                    retry.offline_since = None;
                }
                self.last_error = Some(why.clone());
            }
        }
    }

    /// Since when `work`'s server has been out of reach, if it is.
    pub fn offline_since(&self, work: Work) -> Option<u64> {
        match work {
            Work::Send => self.send.offline_since,
            Work::Sync => self.sync.offline_since,
        }
    }

    pub fn last_sync(&self) -> Option<u64> {
        self.last_sync
    }

    /// The status line's part about syncing and sending.
    pub fn status(&self, now: u64, waiting: usize) -> String {
        let mut out = String::new();
        match self.last_sync {
            Some(at) => {
                let _ = write!(out, "last sync at {} ({} ago)", uptime(at), span(now - at));
            }
            None => out.push_str("not synced yet"),
        }
        let _ = write!(out, ", next in {}", span(self.sync.next.saturating_sub(now)));
        if let Some(at) = self.sync.offline_since {
            let _ = write!(out, ", IMAP offline since {}", uptime(at));
        }
        if waiting > 0 {
            out.push_str("; sending: ");
            if let Some(at) = self.send.offline_since {
                let _ = write!(out, "offline since {}, ", uptime(at));
            }
            let _ = write!(
                out,
                "{waiting} waiting, next attempt in {}",
                span(self.send.next.saturating_sub(now))
            );
        }
        if let Some(e) = &self.last_error {
            let _ = write!(out, "; last error: {e}");
        }
        out
    }
}

/// Uptime as `uptime H:MM:SS`.
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    alloc::format!("uptime {}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A duration as `N s`.
fn span(ms: u64) -> String {
    alloc::format!("{} s", ms.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_at_once_then_every_interval_and_at_once_after_queueing() {
        let mut s = Schedule::new(60, 1_000);
        assert_eq!(s.due(1_000, 0), Some(Work::Sync));
        s.finished(Work::Sync, &Outcome::Done, 2_000);
        assert_eq!(s.due(2_000, 0), None);
        assert_eq!(s.next_deadline(0), 62_000);
        assert_eq!(s.due(61_999, 0), None);
        assert_eq!(s.due(62_000, 0), Some(Work::Sync));
        // Queued at 10 s: send first, then sync.
        s.queued(10_000);
        assert_eq!(s.due(10_000, 1), Some(Work::Send));
        s.finished(Work::Send, &Outcome::Done, 11_000);
        assert_eq!(s.due(11_000, 0), Some(Work::Sync));
        assert_eq!(s.status(11_000, 0), "last sync at uptime 0:00:02 (9 s ago), next in 0 s");
    }

    #[test]
    fn failures_back_off_up_to_the_interval_and_say_offline() {
        let mut s = Schedule::new(20, 0);
        s.queued(0);
        let down = Outcome::Unreachable("no TCP connection".into());
        let mut now = 0;
        let mut gaps = alloc::vec::Vec::new();
        for _ in 0..4 {
            assert_eq!(s.due(now, 1), Some(Work::Send));
            s.finished(Work::Send, &down, now);
            gaps.push(s.send.next - now);
            now = s.send.next;
        }
        assert_eq!(gaps, [5_000, 10_000, 20_000, 20_000]);
        assert_eq!(s.offline_since(Work::Send), Some(0));
        // The IMAP server is fine meanwhile: the sending side stays offline.
        s.finished(Work::Sync, &Outcome::Done, now);
        assert_eq!(s.offline_since(Work::Send), Some(0));
        s.finished(Work::Send, &down, now);
        let status = s.status(now, 1);
        assert!(status.contains("sending: offline since uptime 0:00:00, 1 waiting"), "{status}");
        assert!(status.contains("next attempt in 20 s"), "{status}");
        assert!(status.contains("last error: no TCP connection"), "{status}");
        // Back: online, the backoff starts over.
        s.finished(Work::Send, &Outcome::Done, now);
        assert_eq!(s.offline_since(Work::Send), None);
        s.finished(Work::Send, &Outcome::Failed("550 no".into()), now);
        assert_eq!(s.send.next - now, 5_000);
        assert_eq!(s.offline_since(Work::Send), None, "a refusal is not offline");
    }

    #[test]
    fn with_nothing_waiting_only_the_sync_is_a_deadline() {
        let mut s = Schedule::new(300, 0);
        s.finished(Work::Send, &Outcome::Unreachable("x".into()), 0);
        s.finished(Work::Sync, &Outcome::Done, 0);
        assert_eq!(s.next_deadline(0), 300_000);
        assert_eq!(s.next_deadline(1), 5_000);
        assert_eq!(s.due(5_000, 0), None);
        assert_eq!(uptime(3_725_000), "uptime 1:02:05");
    }
}
