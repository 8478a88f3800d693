//! The power policy's decisions, as plain functions of a clock reading:
//! which persona is in the foreground, how much CPU a background vCPU may
//! still use in the current window, and when a CPU must wake for the timer
//! deadlines of the vCPUs waiting on it (background deadlines delayed up to
//! their slack so that they line up, foreground ones never). The CPU loop
//! (`vm::cpu`) asks; nothing here touches hardware.
//!
//! Times are counter ticks; `Clock` carries the counter's frequency.
//!
//! - **States.** With the screen on, one persona is in the foreground and
//!   the others are in the background; with the screen off, all are in the
//!   background.
//! - **Budgets.** Time is cut into windows of [`WINDOW_MS`], aligned on the
//!   counter (every CPU sees the same windows). A background vCPU may run
//!   `background_cpu_percent` of each window. It is held to that budget
//!   while a foreground vCPU of its CPU wants to run, and always unless its
//!   persona has `background_may_use_idle` and the screen is on. Once
//!   spent, the vCPU waits for the next window.
//! - **Timer slack.** A background vCPU's timer deadline `d` with slack `s`
//!   may fire at the first multiple of `s` at or after `d`, never later than
//!   `d + s`. Every deadline whose multiple is the same shares one wakeup,
//!   on every CPU, since all CPUs read the same counter; a foreground
//!   deadline (slack 0) is kept exactly and pulls the wakeup earlier, and
//!   background deadlines already due then are served by it too.

use crate::personas::power::PowerSpec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The budget window.
pub const WINDOW_MS: u64 = 100;

/// Counter ticks per second, and conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub frequency: u64,
}

impl Clock {
    pub fn ticks(self, ms: u64) -> u64 {
        self.frequency.saturating_mul(ms) / 1000
    }

    /// The window length in ticks (at least 1).
    pub fn window(self) -> u64 {
        self.ticks(WINDOW_MS).max(1)
    }

    pub fn millis(self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1000 / u128::from(self.frequency.max(1))) as u64
    }

    pub fn micros(self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000 / u128::from(self.frequency.max(1))) as u64
    }

    /// `us` microseconds in ticks, saturating at `u64::MAX`.
    pub fn ticks_from_micros(self, us: u64) -> u64 {
        u64::try_from(u128::from(us) * u128::from(self.frequency) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Whether a persona runs as the one the user looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Foreground,
    Background,
}

/// Which persona is in the foreground, and whether the screen is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scene {
    pub foreground: usize,
    pub screen_on: bool,
}

impl Scene {
    /// The state of VM `vm`.
    pub fn state(self, vm: usize) -> State {
        if self.screen_on && vm == self.foreground {
            State::Foreground
        } else {
            State::Background
        }
    }

    /// Whether a background vCPU of a VM with `power` is held to its budget
    /// now, when `foreground_wants_cpu` says whether a foreground vCPU of
    /// the same CPU wants to run.
    pub fn budget_applies(self, vm: usize, power: &PowerSpec, foreground_wants_cpu: bool) -> bool {
        self.state(vm) == State::Background
            && power.background_cpu_percent < 100
            && (foreground_wants_cpu || !power.background_may_use_idle || !self.screen_on)
    }

    /// The timer slack of VM `vm` in ticks: 0 in the foreground; with the
    /// screen off, the larger of its two slacks.
    pub fn timer_slack(self, vm: usize, power: &PowerSpec, clock: Clock) -> u64 {
        let ms = match self.state(vm) {
            State::Foreground => 0,
            State::Background if self.screen_on => power.background_timer_slack_ms,
            State::Background => {
                power.background_timer_slack_ms.max(power.screen_off_timer_slack_ms)
            }
        };
        clock.ticks(ms.into())
    }
}

/// The scene every CPU reads before it picks a vCPU: set at boot from the
/// persona package (later by persona switches and the screen).
pub struct SharedScene {
    foreground: AtomicUsize,
    screen_on: AtomicBool,
}

impl SharedScene {
    pub const fn new() -> Self {
        SharedScene { foreground: AtomicUsize::new(0), screen_on: AtomicBool::new(true) }
    }

    pub fn load(&self) -> Scene {
        Scene {
            foreground: self.foreground.load(Ordering::Relaxed),
            screen_on: self.screen_on.load(Ordering::Relaxed),
        }
    }

    pub fn set(&self, scene: Scene) {
        self.foreground.store(scene.foreground, Ordering::Relaxed);
        self.screen_on.store(scene.screen_on, Ordering::Relaxed);
    }
}

impl Default for SharedScene {
    fn default() -> Self {
        Self::new()
    }
}

/// The scene of this boot.
pub static SCENE: SharedScene = SharedScene::new();

/// One vCPU's use of its current window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// The window the count is for (counter / window length).
    window: u64,
    /// Ticks run in it.
    used: u64,
}

/// What a vCPU held to its budget may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run, but stop by `until` (the budget's end), when the CPU asks again.
    RunUntil(u64),
    /// Budget spent: wait until `until`, when the next window starts.
    WaitUntil(u64),
}

impl Budget {
    /// Counts a run from `start` to `end` of a vCPU with `percent` of each
    /// window. A run that crossed into a new window is split at the
    /// boundary; what a window used beyond its allowance (the run stopped a
    /// little after its budget ended: interrupt latency) counts against
    /// the next one, so overshoots do not add up.
    pub fn charge(&mut self, start: u64, end: u64, percent: u32, clock: Clock) {
        let window = clock.window();
        let end_window = end / window;
        let boundary = end_window * window;
        if end_window != self.window {
            if start / window == self.window {
                self.used = self.used.saturating_add(boundary.saturating_sub(start));
            }
            self.used = self.carried_into(end_window, allowance(percent, clock));
            self.window = end_window;
        }
        self.used = self.used.saturating_add(end.saturating_sub(start.max(boundary)));
    }

    /// What window `index`, after this budget's, starts with: the excess
    /// of the window just before it, at most one allowance.
    fn carried_into(&self, index: u64, allowance: u64) -> u64 {
        if index == self.window + 1 {
            self.used.saturating_sub(allowance).min(allowance)
        } else {
            0
        }
    }

    /// Ticks used in the window holding `now` (excess carried in included).
    pub fn used(&self, now: u64, percent: u32, clock: Clock) -> u64 {
        let index = now / clock.window();
        if index == self.window {
            self.used
        } else {
            self.carried_into(index, allowance(percent, clock))
        }
    }

    /// Whether a vCPU with `percent` of each window may run at `now`, and
    /// until when.
    pub fn verdict(&self, now: u64, percent: u32, clock: Clock) -> Verdict {
        let window = clock.window();
        let allowance = allowance(percent, clock);
        let window_end = (now / window + 1) * window;
        let left = allowance.saturating_sub(self.used(now, percent, clock));
        if left == 0 {
            Verdict::WaitUntil(window_end)
        } else if now + left <= window_end {
            Verdict::RunUntil(now + left)
        } else {
            // It cannot spend this window's budget before the window ends;
            // the next window's budget then runs out this far into it.
            Verdict::RunUntil(window_end + allowance)
        }
    }
}

/// Ticks of each window a vCPU with `percent` may run.
fn allowance(percent: u32, clock: Clock) -> u64 {
    clock.window() * u64::from(percent.min(100)) / 100
}

/// One waiting vCPU's timer: its deadline and how late it may fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: u64,
    pub slack: u64,
}

impl Deadline {
    /// The latest time this deadline can be served at: the first multiple
    /// of its slack at or after it (itself without slack).
    pub fn latest(self) -> u64 {
        if self.slack <= 1 {
            self.at
        } else {
            self.at.div_ceil(self.slack).saturating_mul(self.slack)
        }
    }
}

/// When a CPU must wake for these deadlines (and other wake times, slack
/// 0): the earliest latest-time among them, so every deadline is served no
/// later than its slack allows and those that share a slack multiple share
/// one wakeup.
pub fn coalesced_wake(deadlines: impl IntoIterator<Item = Deadline>) -> Option<u64> {
    deadlines.into_iter().map(Deadline::latest).min()
}

/// The next vCPU (by position in a CPU's queue of `len`) to run after the
/// one at `last`: among those `rank` gives a rank (those that can run), the
/// highest rank, and among equals the next in round-robin order.
pub fn next_by_rank(len: usize, last: usize, rank: impl Fn(usize) -> Option<u32>) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in (1..=len).map(|step| (last + step) % len) {
        if let Some(r) = rank(i) {
            if best.is_none_or(|(_, b)| r > b) {
                best = Some((i, r));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// A CPU's time slice: the vCPU (by position in the CPU's queue) that
/// holds the CPU, when its hold ends, and whether a foreground vCPU that
/// comes to want the CPU takes it at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub slot: usize,
    pub ends: u64,
    pub yields_to_foreground: bool,
}

/// What a CPU's scheduler knows of one vCPU in its queue at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Its VM's priority.
    pub rank: u32,
    /// Its persona is in the foreground.
    pub foreground: bool,
}

/// Who runs the next turn on a CPU whose queue has `len` vCPUs; `want`
/// says which can run now. The holder of the `current` slice keeps the
/// CPU, with its slice's end unchanged, while the slice lasts, it can run
/// and nothing ranks above it: an interrupt that ends a turn does not hand
/// the CPU on. Ending turns early would preempt a guest kernel inside a
/// critical section and let its sibling vCPU spin on the lock it holds
/// (QEMU does not trap WFE, so the spinner gives nothing back until its
/// own slice ends). Otherwise [`next_by_rank`] after the holder chooses,
/// with a fresh slice of `length` ticks from `now`.
///
/// The foreground persona wins a CPU it wants: a background holder that
/// got its slice while no foreground vCPU could run gives the CPU up as
/// soon as one can, to a foreground vCPU. One that got its slice beside a
/// busy foreground (its share within its budget) keeps it.
pub fn next_slice(
    len: usize,
    current: Option<Slice>,
    now: u64,
    length: u64,
    want: impl Fn(usize) -> Option<Want>,
) -> Option<Slice> {
    let rank = |i: usize| want(i).map(|w| w.rank);
    let foreground_wants = (0..len).any(|i| want(i).is_some_and(|w| w.foreground));
    let current = current.filter(|s| s.slot < len);
    if let Some(held) = current.filter(|s| now < s.ends) {
        if let Some(own) = want(held.slot) {
            let outranked = (0..len).any(|i| rank(i).is_some_and(|r| r > own.rank));
            let displaced = held.yields_to_foreground && !own.foreground && foreground_wants;
            if !outranked && !displaced {
                return Some(held);
            }
        }
    }
    let last = current.map_or(len.saturating_sub(1), |s| s.slot);
    let displacing = current.is_some_and(|s| s.yields_to_foreground) && foreground_wants;
    let slot = if displacing {
        next_by_rank(len, last, |i| want(i).filter(|w| w.foreground).map(|w| w.rank))
    } else {
        next_by_rank(len, last, rank)
    }?;
    let foreground = want(slot).is_some_and(|w| w.foreground);
    Some(Slice {
        slot,
        ends: now.saturating_add(length),
        yields_to_foreground: !foreground && !foreground_wants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 MHz counter: a tick is a microsecond, a window 100_000 ticks.
    const CLOCK: Clock = Clock { frequency: 1_000_000 };
    const MS: u64 = 1000;

    fn power(percent: u32, slack_ms: u32, may_use_idle: bool) -> PowerSpec {
        PowerSpec {
            priority: 0,
            background_cpu_percent: percent,
            background_timer_slack_ms: slack_ms,
            background_may_use_idle: may_use_idle,
            screen_off_timer_slack_ms: 0,
        }
    }

    #[test]
    fn micros_become_counter_ticks() {
        // QEMU virt's counter: 62.5 MHz; the Raspberry Pi 4's: 54 MHz.
        assert_eq!(Clock { frequency: 62_500_000 }.ticks_from_micros(1_000_000), 62_500_000);
        assert_eq!(Clock { frequency: 54_000_000 }.ticks_from_micros(30_000_000), 1_620_000_000);
        assert_eq!(Clock { frequency: 1_000_000 }.ticks_from_micros(1), 1);
        assert_eq!(Clock { frequency: 62_500_000 }.ticks_from_micros(0), 0);
        // No overflow on the way, and saturation past the end.
        assert_eq!(Clock { frequency: 2_000_000 }.ticks_from_micros(u64::MAX / 2), u64::MAX - 1);
        assert_eq!(Clock { frequency: 62_500_000 }.ticks_from_micros(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_screen_decides_who_is_in_the_foreground() {
        let on = Scene { foreground: 1, screen_on: true };
        assert_eq!(on.state(1), State::Foreground);
        assert_eq!(on.state(0), State::Background);
        let off = Scene { screen_on: false, ..on };
        assert_eq!(off.state(1), State::Background);
        assert_eq!(off.state(0), State::Background);
    }

    #[test]
    fn when_the_budget_applies() {
        let on = Scene { foreground: 0, screen_on: true };
        let off = Scene { screen_on: false, ..on };
        let strict = power(10, 0, false);
        let lenient = power(10, 0, true);
        assert!(!on.budget_applies(0, &strict, true), "never to the foreground");
        assert!(on.budget_applies(1, &strict, false), "always without may-use-idle");
        assert!(on.budget_applies(1, &lenient, true), "with it, while the foreground is busy");
        assert!(!on.budget_applies(1, &lenient, false), "but not on an idle CPU");
        assert!(off.budget_applies(1, &lenient, false), "with the screen off, always");
        assert!(off.budget_applies(0, &strict, false), "the foreground persona too");
        assert!(!on.budget_applies(1, &power(100, 0, false), true), "100% is no budget");
    }

    #[test]
    fn a_fresh_budget_runs_until_its_allowance_is_spent() {
        let budget = Budget::default();
        // 10% of a 100 ms window is 10 ms.
        assert_eq!(budget.verdict(5 * MS, 10, CLOCK), Verdict::RunUntil(15 * MS));
    }

    #[test]
    fn a_spent_budget_waits_for_the_next_window() {
        let mut budget = Budget::default();
        budget.charge(5 * MS, 15 * MS, 10, CLOCK);
        assert_eq!(budget.used(15 * MS, 10, CLOCK), 10 * MS);
        assert_eq!(budget.verdict(15 * MS, 10, CLOCK), Verdict::WaitUntil(100 * MS));
        assert_eq!(budget.verdict(99 * MS, 10, CLOCK), Verdict::WaitUntil(100 * MS));
        // The next window refills it.
        assert_eq!(budget.used(100 * MS, 10, CLOCK), 0);
        assert_eq!(budget.verdict(100 * MS, 10, CLOCK), Verdict::RunUntil(110 * MS));
    }

    #[test]
    fn runs_add_up_within_a_window() {
        let mut budget = Budget::default();
        budget.charge(210 * MS, 213 * MS, 10, CLOCK);
        budget.charge(250 * MS, 254 * MS, 10, CLOCK);
        assert_eq!(budget.used(260 * MS, 10, CLOCK), 7 * MS);
        assert_eq!(budget.verdict(260 * MS, 10, CLOCK), Verdict::RunUntil(263 * MS));
    }

    #[test]
    fn a_run_across_a_window_boundary_charges_only_the_new_window() {
        let mut budget = Budget::default();
        budget.charge(95 * MS, 103 * MS, 10, CLOCK);
        assert_eq!(budget.used(103 * MS, 10, CLOCK), 3 * MS);
        assert_eq!(budget.verdict(103 * MS, 10, CLOCK), Verdict::RunUntil(110 * MS));
    }

    #[test]
    fn a_budget_that_outlasts_its_window_ends_in_the_next() {
        // 50% from 80 ms: 20 ms left of this window, then 50 ms of the next.
        assert_eq!(Budget::default().verdict(80 * MS, 50, CLOCK), Verdict::RunUntil(150 * MS));
    }

    #[test]
    fn a_spinning_vcpu_gets_its_share_over_many_windows() {
        // The CPU loop's pattern: ask, run until told, charge, repeat.
        for percent in [1, 5, 10, 25, 50, 99] {
            let mut budget = Budget::default();
            let (mut now, mut ran) = (0, 0);
            let end = 10_000 * MS;
            while now < end {
                match budget.verdict(now, percent, CLOCK) {
                    Verdict::RunUntil(until) => {
                        let stop = until.min(end);
                        budget.charge(now, stop, percent, CLOCK);
                        ran += stop - now;
                        now = stop;
                    }
                    Verdict::WaitUntil(until) => now = until,
                }
            }
            assert_eq!(ran * 100 / end, u64::from(percent), "{percent}%");
        }
    }

    #[test]
    fn late_stops_are_paid_back_in_the_next_window() {
        // Every run stops 2 ms after the budget said (timer latency).
        for percent in [5, 10, 20, 50] {
            let mut budget = Budget::default();
            let (mut now, mut ran) = (0, 0);
            let end = 10_000 * MS;
            while now < end {
                match budget.verdict(now, percent, CLOCK) {
                    Verdict::RunUntil(until) => {
                        let stop = (until + 2 * MS).min(end);
                        budget.charge(now, stop, percent, CLOCK);
                        ran += stop - now;
                        now = stop;
                    }
                    Verdict::WaitUntil(until) => now = until,
                }
            }
            let share = ran * 1000 / end;
            let target = u64::from(percent) * 10;
            assert!(share.abs_diff(target) <= 3, "{percent}%: {share} per mille");
        }
    }

    #[test]
    fn an_overshoot_is_carried_only_into_the_next_window() {
        let mut budget = Budget::default();
        budget.charge(0, 14 * MS, 10, CLOCK);
        budget.charge(99 * MS, 101 * MS, 10, CLOCK);
        // 10 ms allowed, 15 used in window 0: 5 carried, plus 1 ms of window 1.
        assert_eq!(budget.used(101 * MS, 10, CLOCK), 6 * MS);
        let mut idle_between = Budget::default();
        idle_between.charge(0, 14 * MS, 10, CLOCK);
        idle_between.charge(300 * MS, 301 * MS, 10, CLOCK);
        assert_eq!(idle_between.used(301 * MS, 10, CLOCK), MS, "nothing carried over a gap");
    }

    #[test]
    fn slack_aligns_deadlines_on_its_multiples() {
        let slack = 100 * MS;
        let d = |at| Deadline { at, slack };
        assert_eq!(d(10 * MS).latest(), 100 * MS);
        assert_eq!(d(100 * MS).latest(), 100 * MS);
        assert_eq!(d(101 * MS).latest(), 200 * MS);
        assert_eq!(Deadline { at: 7, slack: 0 }.latest(), 7);
        // Never later than the slack.
        for at in (0..1000).map(|i| i * 7919) {
            let latest = d(at).latest();
            assert!(latest >= at && latest - at < slack, "{at}");
        }
    }

    #[test]
    fn background_deadlines_within_the_slack_share_one_wakeup() {
        let slack = 50 * MS;
        // Three background vCPUs (on any CPUs) due at 12, 31 and 49 ms.
        let deadlines = [12, 31, 49].map(|ms| Deadline { at: ms * MS, slack });
        assert_eq!(coalesced_wake(deadlines), Some(50 * MS));
        for d in deadlines {
            assert!(d.at <= 50 * MS);
        }
        // A fourth at 51 ms waits for the next multiple.
        let later = Deadline { at: 51 * MS, slack };
        assert_eq!(later.latest(), 100 * MS);
        assert!(later.at > 50 * MS);
    }

    #[test]
    fn foreground_deadlines_are_never_delayed() {
        let background = Deadline { at: 12 * MS, slack: 50 * MS };
        let foreground = Deadline { at: 20 * MS, slack: 0 };
        assert_eq!(coalesced_wake([background, foreground]), Some(20 * MS));
        assert_eq!(coalesced_wake([]), None);
    }

    #[test]
    fn slack_follows_the_scene() {
        let scene = Scene { foreground: 0, screen_on: true };
        let p = power(10, 50, false);
        assert_eq!(scene.timer_slack(0, &p, CLOCK), 0);
        assert_eq!(scene.timer_slack(1, &p, CLOCK), 50 * MS);
        let off = Scene { foreground: 0, screen_on: false };
        assert_eq!(off.timer_slack(0, &p, CLOCK), 50 * MS);
        // With the screen off the longer of the two slacks counts.
        let longer = PowerSpec { screen_off_timer_slack_ms: 1000, ..p };
        assert_eq!(off.timer_slack(0, &longer, CLOCK), 1000 * MS);
        assert_eq!(scene.timer_slack(1, &longer, CLOCK), 50 * MS);
        let shorter = PowerSpec { screen_off_timer_slack_ms: 20, ..p };
        assert_eq!(off.timer_slack(1, &shorter, CLOCK), 50 * MS);
    }

    #[test]
    fn ten_ms_timers_wake_ten_times_less_with_100_ms_slack() {
        // A guest re-arming its timer 10 ms after each wakeup, for 10 s.
        let wakeups = |slack_ms: u64| {
            let (mut now, mut count) = (0, 0);
            while now < 10_000 * MS {
                now = Deadline { at: now + 10 * MS, slack: slack_ms * MS }.latest();
                count += 1;
            }
            count
        };
        assert_eq!(wakeups(0), 1000);
        assert_eq!(wakeups(100), 100);
    }

    #[test]
    fn the_highest_rank_runs_first_then_round_robin() {
        let ranks = [Some(0), Some(2), None, Some(2)];
        let rank = |i: usize| ranks[i];
        assert_eq!(next_by_rank(4, 0, rank), Some(1));
        assert_eq!(next_by_rank(4, 1, rank), Some(3));
        assert_eq!(next_by_rank(4, 3, rank), Some(1));
        assert_eq!(next_by_rank(4, 0, |i| (i == 0).then_some(0)), Some(0));
        assert_eq!(next_by_rank(4, 0, |_| None), None);
        // Equal ranks: plain round-robin, as `sched::next_runnable`.
        for last in 0..4 {
            assert_eq!(next_by_rank(4, last, |_| Some(1)), Some((last + 1) % 4));
        }
    }

    fn any(rank: u32) -> Option<Want> {
        Some(Want { rank, foreground: false })
    }

    fn slice(slot: usize, ends: u64) -> Slice {
        Slice { slot, ends, yields_to_foreground: true }
    }

    #[test]
    fn the_slice_holder_keeps_the_cpu_until_its_slice_ends() {
        let all = |_: usize| any(1);
        let first = next_slice(3, None, 0, 10, all).unwrap();
        assert_eq!(first, slice(0, 10));
        // A turn that ended early (an interrupt) does not hand the CPU on.
        assert_eq!(next_slice(3, Some(first), 4, 10, all), Some(first));
        // At the slice's end the next in round-robin order gets a fresh one.
        assert_eq!(next_slice(3, Some(first), 10, 10, all), Some(slice(1, 20)));
    }

    #[test]
    fn the_slice_moves_on_when_its_holder_cannot_run_or_is_outranked() {
        let held = slice(1, 50);
        let blocked = |i: usize| if i == 1 { None } else { any(1) };
        assert_eq!(next_slice(3, Some(held), 20, 10, blocked), Some(slice(2, 30)));
        let outranked = |i: usize| any(if i == 0 { 5 } else { 1 });
        assert_eq!(next_slice(3, Some(held), 20, 10, outranked), Some(slice(0, 30)));
        assert_eq!(next_slice(3, Some(held), 20, 10, |_| None), None);
    }

    #[test]
    fn a_sole_or_top_ranked_holder_gets_a_fresh_slice() {
        let only = |i: usize| if i == 0 { any(1) } else { None };
        assert_eq!(next_slice(2, Some(slice(0, 10)), 15, 10, only), Some(slice(0, 25)));
        // A queue that shrank under the holder starts again from its front.
        assert_eq!(next_slice(2, Some(slice(4, 99)), 15, 10, |_| any(1)), Some(slice(0, 25)));
    }

    #[test]
    fn a_waking_foreground_takes_the_cpu_from_an_idle_time_background_holder() {
        // Slots 0 and 1 background, 2 foreground; only 0 wants the CPU.
        let alone = |i: usize| if i == 0 { any(0) } else { None };
        let held = next_slice(3, None, 0, 10, alone).unwrap();
        assert!(held.yields_to_foreground);
        // Every slot wants it now: the foreground, not the next background.
        let fg = |i: usize| Some(Want { rank: 0, foreground: i == 2 });
        let taken = next_slice(3, Some(held), 2, 10, fg).unwrap();
        assert_eq!(taken.slot, 2);
        assert!(!taken.yields_to_foreground);
        // Its slice over, a background vCPU gets its turn beside the busy
        // foreground, and keeps it although the foreground still wants one.
        let turn = next_slice(3, Some(taken), 12, 10, fg).unwrap();
        assert_eq!(turn, Slice { slot: 0, ends: 22, yields_to_foreground: false });
        assert_eq!(next_slice(3, Some(turn), 15, 10, fg), Some(turn));
    }
}
