//! Stopping the machine: a clean power-off when Duet has nothing left to
//! run, or a halt after something went wrong. Both end in PSCI SYSTEM_OFF
//! when the board has PSCI, or in the BCM2835 watchdog's halt on a
//! Raspberry Pi, so whoever started Duet gets control back.

use crate::arch::aarch64::{cpu, psci};
use crate::platform::Conduit;
use crate::{println, status};
use spin::Once;

static FIRMWARE: Once<Conduit> = Once::new();
static BCM2835_WATCHDOG: Once<usize> = Once::new();

/// Records the BCM2835 power-management block (mapped as device memory in
/// Duet's map), for boards without PSCI.
pub fn set_bcm2835_watchdog(base: usize) {
    BCM2835_WATCHDOG.call_once(|| base);
}

/// Records how to reach PSCI firmware, once the device tree is read.
pub fn set_psci(conduit: Conduit) {
    FIRMWARE.call_once(|| conduit);
}

/// How to reach PSCI firmware, if the board has it.
pub fn psci() -> Option<Conduit> {
    FIRMWARE.get().copied()
}

/// Powers off after saying why.
pub fn power_off(reason: core::fmt::Arguments) -> ! {
    println!("{} {reason}", status::POWER_OFF);
    stop()
}

/// Turns the machine off without a word; the caller has said what happened.
pub fn stop() -> ! {
    if let Some(conduit) = psci() {
        let error = psci::system_off(conduit);
        crate::console::print_emergency(format_args!("duet: SYSTEM_OFF refused: {error:?}\n"));
    }
    if let Some(&base) = BCM2835_WATCHDOG.get() {
        // SAFETY: `set_bcm2835_watchdog`'s contract.
        unsafe { crate::drivers::bcm2835_pm::power_off(base) };
    }
    cpu::park()
}
