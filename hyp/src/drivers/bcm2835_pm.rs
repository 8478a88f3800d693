//! The power-management watchdog of the Broadcom BCM2835 family (the
//! Raspberry Pi 4's BCM2711 included): the one way to turn such a board off
//! without PSCI. As Linux does, Duet marks the reset as a halt (reset
//! partition 63 in PM_RSTS) and lets the watchdog reset the chip at once; the
//! Pi's firmware then stays halted, and QEMU's model powers the machine off.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    Pm {
        (0x00 => _reserved0),
        (0x1c => rstc: ReadWrite<u32>),
        (0x20 => rsts: ReadWrite<u32>),
        (0x24 => wdog: ReadWrite<u32>),
        (0x28 => @END),
    }
}

/// Every write must carry this in its top byte.
const PASSWORD: u32 = 0x5a00_0000;
/// PM_RSTC.WRCFG: what the watchdog does when it expires.
const RSTC_WRCFG_MASK: u32 = 0x30;
const RSTC_WRCFG_FULL_RESET: u32 = 0x20;
/// PM_RSTS: the reset partition bits, all set: partition 63, "halt".
const RSTS_PARTITION_HALT: u32 = 0x555;
/// Watchdog ticks (about 15 us each) before it fires.
const WDOG_TICKS: u32 = 10;

/// Powers the board off.
///
/// # Safety
/// `base` must be the PM block's registers, mapped as device memory.
pub unsafe fn power_off(base: usize) {
    // SAFETY: the caller's contract.
    let pm = unsafe { &*(base as *const Pm) };
    pm.rsts.set(PASSWORD | pm.rsts.get() & !0xff00_0000 | RSTS_PARTITION_HALT);
    pm.wdog.set(PASSWORD | WDOG_TICKS);
    pm.rstc
        .set(PASSWORD | pm.rstc.get() & !(RSTC_WRCFG_MASK | 0xff00_0000) | RSTC_WRCFG_FULL_RESET);
}
