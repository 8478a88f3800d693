//! What each VM costs, counted as it runs: time its vCPUs spent in the
//! guest, exits by reason, wakeups from waiting, and display flushes. Read on request from
//! the console (`Ctrl-] s`) and printed when Duet powers off.

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Why a vCPU left the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// HVC or SMC: PSCI and other SMCCC calls.
    Call,
    /// An emulated MMIO access.
    Mmio,
    /// A trapped system register (SGIs, ID registers).
    SystemRegister,
    /// WFI or WFE.
    Wait,
    /// A physical interrupt.
    Interrupt,
    /// Anything else (answered with an exception to the guest).
    Fault,
}

impl ExitReason {
    pub const ALL: [ExitReason; 6] = [
        ExitReason::Call,
        ExitReason::Mmio,
        ExitReason::SystemRegister,
        ExitReason::Wait,
        ExitReason::Interrupt,
        ExitReason::Fault,
    ];

    fn name(self) -> &'static str {
        match self {
            ExitReason::Call => "call",
            ExitReason::Mmio => "mmio",
            ExitReason::SystemRegister => "sysreg",
            ExitReason::Wait => "wfi",
            ExitReason::Interrupt => "irq",
            ExitReason::Fault => "fault",
        }
    }
}

/// One VM's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Counter ticks its vCPUs spent in the guest.
    pub guest_ticks: AtomicU64,
    exits: [AtomicU64; 6],
    /// Times a waiting vCPU was woken.
    pub wakeups: AtomicU64,
    /// Flushes of its virtual display's scanout that reached the
    /// compositor (shared with the display's sink, which counts them).
    pub display_flushes: Arc<AtomicU64>,
}

impl Counters {
    pub fn exit(&self, reason: ExitReason) {
        self.exits[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn exits(&self, reason: ExitReason) -> u64 {
        self.exits[reason as usize].load(Ordering::Relaxed)
    }

    pub fn add_guest_ticks(&self, ticks: u64) {
        self.guest_ticks.fetch_add(ticks, Ordering::Relaxed);
    }

    pub fn wakeup(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
    }

    /// Display flushes that reached the compositor so far.
    pub fn display_flushes(&self) -> u64 {
        self.display_flushes.load(Ordering::Relaxed)
    }

    /// A line for VM `name`, with times from a counter of `frequency` Hz.
    pub fn report<'a>(&'a self, name: &'a str, frequency: u64) -> Report<'a> {
        Report { counters: self, name, frequency }
    }
}

/// The counters as one line of text.
pub struct Report<'a> {
    counters: &'a Counters,
    name: &'a str,
    frequency: u64,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticks = self.counters.guest_ticks.load(Ordering::Relaxed);
        let millis = ticks.saturating_mul(1000) / self.frequency.max(1);
        write!(f, "vm {}: guest time {}.{:03} s, exits", self.name, millis / 1000, millis % 1000)?;
        for reason in ExitReason::ALL {
            write!(f, " {} {}", reason.name(), self.counters.exits(reason))?;
        }
        write!(f, ", wakeups {}", self.counters.wakeups.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_reports() {
        let c = Counters::default();
        c.exit(ExitReason::Mmio);
        c.exit(ExitReason::Mmio);
        c.exit(ExitReason::Wait);
        c.add_guest_ticks(2_500_000);
        c.wakeup();
        let line = c.report("personal", 1_000_000).to_string();
        assert_eq!(
            line,
            "vm personal: guest time 2.500 s, exits call 0 mmio 2 sysreg 0 wfi 1 irq 0 fault 0, wakeups 1"
        );
    }
}
