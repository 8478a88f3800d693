//! Powering off through PSCI over HVC (the conduit Duet's device tree names).

use core::arch::asm;

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

pub fn power_off() -> ! {
    // SAFETY: SYSTEM_OFF takes no arguments and touches no guest memory;
    // Duet stops this VM and does not return.
    unsafe { asm!("hvc #0", in("x0") PSCI_SYSTEM_OFF, options(nomem, nostack)) };
    loop {
        // SAFETY: waiting for an interrupt has no memory effects.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}
