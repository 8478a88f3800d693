//! A persona's power settings, named once for the manifest (`duet-pack`)
//! and the package reader alike: how it is scheduled while in the
//! background (its CPU budget, how late its timers may fire, whether it may
//! use otherwise idle CPUs) and its priority, with their defaults, limits
//! and property names. What the settings do is `crate::sched::power`'s.
//!
//! Every setting is optional in the manifest and in the package; the
//! defaults leave a persona unthrottled, so a manifest written before these
//! keys existed runs as it did.

use core::fmt;

/// One VM's power settings, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerSpec {
    /// Among vCPUs in the same state (foreground or background) that want
    /// one CPU, the higher priority runs first. 0 to [`MAX_PRIORITY`].
    pub priority: u32,
    /// While in the background, the share of one CPU each of its vCPUs may
    /// use per scheduling window: 1 to 100.
    pub background_cpu_percent: u32,
    /// While in the background, how late its timer interrupts may arrive,
    /// so that several wake the CPU once: 0 to [`MAX_TIMER_SLACK_MS`].
    pub background_timer_slack_ms: u32,
    /// While in the background with the screen on, whether it may run past
    /// its budget on a CPU the foreground does not want.
    pub background_may_use_idle: bool,
    /// With the screen off, how late its timer interrupts may arrive, if
    /// later than `background_timer_slack_ms` allows: nobody looks at the
    /// screen, so wakeups may line up further. 0 to [`MAX_TIMER_SLACK_MS`].
    pub screen_off_timer_slack_ms: u32,
}

impl PowerSpec {
    /// What a VM gets for keys it does not name: no throttling at all.
    pub const DEFAULT: PowerSpec = PowerSpec {
        priority: 0,
        background_cpu_percent: 100,
        background_timer_slack_ms: 0,
        background_may_use_idle: false,
        screen_off_timer_slack_ms: 0,
    };
}

impl Default for PowerSpec {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The highest priority.
pub const MAX_PRIORITY: u32 = 15;
/// The longest timer slack: a timer more than a second late is a broken
/// timer, not a saving.
pub const MAX_TIMER_SLACK_MS: u32 = 1000;

/// One setting, as the manifest and the package name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Priority,
    BackgroundCpuPercent,
    BackgroundTimerSlackMs,
    BackgroundMayUseIdle,
    ScreenOffTimerSlackMs,
}

impl Key {
    pub const ALL: [Key; 5] = [
        Key::Priority,
        Key::BackgroundCpuPercent,
        Key::BackgroundTimerSlackMs,
        Key::BackgroundMayUseIdle,
        Key::ScreenOffTimerSlackMs,
    ];

    /// The manifest's key.
    pub fn manifest_key(self) -> &'static str {
        match self {
            Key::Priority => "priority",
            Key::BackgroundCpuPercent => "background_cpu_percent",
            Key::BackgroundTimerSlackMs => "background_timer_slack_ms",
            Key::BackgroundMayUseIdle => "background_may_use_idle",
            Key::ScreenOffTimerSlackMs => "screen_off_timer_slack_ms",
        }
    }

    /// The package's property on the VM node (one cell each; 0 or 1 for
    /// the flag).
    pub fn property(self) -> &'static str {
        match self {
            Key::Priority => prop::PRIORITY,
            Key::BackgroundCpuPercent => prop::BACKGROUND_CPU_PERCENT,
            Key::BackgroundTimerSlackMs => prop::BACKGROUND_TIMER_SLACK_MS,
            Key::BackgroundMayUseIdle => prop::BACKGROUND_MAY_USE_IDLE,
            Key::ScreenOffTimerSlackMs => prop::SCREEN_OFF_TIMER_SLACK_MS,
        }
    }

    /// The values the setting may take.
    pub fn range(self) -> (u32, u32) {
        match self {
            Key::Priority => (0, MAX_PRIORITY),
            Key::BackgroundCpuPercent => (1, 100),
            Key::BackgroundTimerSlackMs => (0, MAX_TIMER_SLACK_MS),
            Key::BackgroundMayUseIdle => (0, 1),
            Key::ScreenOffTimerSlackMs => (0, MAX_TIMER_SLACK_MS),
        }
    }

    /// `value` if the setting may take it.
    pub fn check(self, value: u32) -> Result<u32, OutOfRange> {
        let (min, max) = self.range();
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(OutOfRange { value, min, max })
        }
    }

    /// Stores a checked `value` in `spec`.
    pub fn set(self, spec: &mut PowerSpec, value: u32) {
        match self {
            Key::Priority => spec.priority = value,
            Key::BackgroundCpuPercent => spec.background_cpu_percent = value,
            Key::BackgroundTimerSlackMs => spec.background_timer_slack_ms = value,
            Key::BackgroundMayUseIdle => spec.background_may_use_idle = value != 0,
            Key::ScreenOffTimerSlackMs => spec.screen_off_timer_slack_ms = value,
        }
    }

    /// The setting's value in `spec`, as the package stores it.
    pub fn get(self, spec: &PowerSpec) -> u32 {
        match self {
            Key::Priority => spec.priority,
            Key::BackgroundCpuPercent => spec.background_cpu_percent,
            Key::BackgroundTimerSlackMs => spec.background_timer_slack_ms,
            Key::BackgroundMayUseIdle => spec.background_may_use_idle.into(),
            Key::ScreenOffTimerSlackMs => spec.screen_off_timer_slack_ms,
        }
    }
}

/// A setting outside its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub value: u32,
    pub min: u32,
    pub max: u32,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must be {}..={}, not {}", self.min, self.max, self.value)
    }
}

/// Package property names.
pub mod prop {
    /// On the root node: the index of the VM in the foreground at boot
    /// (optional, default 0).
    pub const FOREGROUND_VM: &str = "duet,foreground-vm";
    // On each VM node, each optional.
    pub const PRIORITY: &str = "priority";
    pub const BACKGROUND_CPU_PERCENT: &str = "background-cpu-percent";
    pub const BACKGROUND_TIMER_SLACK_MS: &str = "background-timer-slack-ms";
    pub const BACKGROUND_MAY_USE_IDLE: &str = "background-may-use-idle";
    pub const SCREEN_OFF_TIMER_SLACK_MS: &str = "screen-off-timer-slack-ms";

    /// Every power property a VM node may carry.
    pub const VM: &[&str] = &[
        PRIORITY,
        BACKGROUND_CPU_PERCENT,
        BACKGROUND_TIMER_SLACK_MS,
        BACKGROUND_MAY_USE_IDLE,
        SCREEN_OFF_TIMER_SLACK_MS,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(Key::Priority.check(15), Ok(15));
        assert_eq!(Key::Priority.check(16), Err(OutOfRange { value: 16, min: 0, max: 15 }));
        assert_eq!(
            Key::BackgroundCpuPercent.check(0).unwrap_err().to_string(),
            "must be 1..=100, not 0"
        );
        assert_eq!(Key::BackgroundCpuPercent.check(100), Ok(100));
        assert!(Key::BackgroundTimerSlackMs.check(1001).is_err());
        assert!(Key::BackgroundMayUseIdle.check(2).is_err());
        assert!(Key::ScreenOffTimerSlackMs.check(1001).is_err());
    }

    #[test]
    fn set_and_get_agree() {
        let mut spec = PowerSpec::DEFAULT;
        for (key, value) in Key::ALL.into_iter().zip([3, 20, 50, 1, 700]) {
            key.set(&mut spec, value);
            assert_eq!(key.get(&spec), value);
        }
        assert!(spec.background_may_use_idle);
        assert_eq!(spec.background_cpu_percent, 20);
        assert_eq!(spec.screen_off_timer_slack_ms, 700);
    }

    #[test]
    fn the_default_is_the_documented_one() {
        assert_eq!(PowerSpec::default(), PowerSpec::DEFAULT);
        assert_eq!(PowerSpec::DEFAULT.background_cpu_percent, 100);
        for key in Key::ALL {
            assert!(key.check(key.get(&PowerSpec::DEFAULT)).is_ok(), "{key:?}");
        }
    }
}
