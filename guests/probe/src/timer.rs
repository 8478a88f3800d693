//! Time, from the architected virtual counter, and sleeping on the
//! virtual timer: Duet traps the guest's WFI and lets the CPU sleep (or run
//! another vCPU) until the timer's interrupt arrives, so a waiting probe
//! costs no host CPU. Needs `gic::enable_timer_interrupt` first.

use core::arch::asm;

/// CNTV_CTL_EL0.ENABLE, with the interrupt not masked (IMASK clear): the
/// timer's firing is what wakes a WFI.
const TIMER_ENABLE: u64 = 1;

/// The virtual counter.
pub fn now() -> u64 {
    let count: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) count) };
    count
}

/// Counter ticks per second.
pub fn frequency() -> u64 {
    let hz: u64;
    // SAFETY: reading the counter frequency has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) hz) };
    hz.max(1)
}

/// Ticks in `seconds`.
pub fn seconds(seconds: u64) -> u64 {
    seconds * frequency()
}

/// Whole milliseconds in `ticks`.
pub fn millis(ticks: u64) -> u64 {
    ticks * 1000 / frequency()
}

/// Waits until the counter reaches `deadline`.
pub fn sleep_until(deadline: u64) {
    // SAFETY: the virtual timer is the probe's own; interrupts stay masked
    // at PSTATE, so its firing only ends a WFI.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
            in(reg) deadline, in(reg) TIMER_ENABLE);
    }
    while now() < deadline {
        // SAFETY: waiting for an interrupt has no memory effects.
        unsafe { asm!("wfi") };
    }
    // SAFETY: switching the probe's own timer off.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "isb") };
    // Its interrupt, raised when it fired, must not stay pending.
    crate::gic::acknowledge();
}

/// Waits `ticks` counter ticks.
pub fn sleep(ticks: u64) {
    sleep_until(now() + ticks);
}
