//! The few CPU operations the bench guest needs, each a line of assembly:
//! the virtual counter and timer, SMCCC calls over the device tree's
//! conduit, PSCI, interrupt masking and WFI.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use duet_bench_guest::platform::Conduit;

pub const PSCI_VERSION: u64 = 0x8400_0000;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_CPU_ON: u64 = 0xc400_0003;

/// Set when the device tree says SMC; HVC otherwise (and before it is read).
static USE_SMC: AtomicBool = AtomicBool::new(false);

pub fn set_conduit(conduit: Conduit) {
    USE_SMC.store(conduit == Conduit::Smc, Ordering::Relaxed);
}

/// An SMCCC call with up to three arguments; x0 of the answer.
pub fn smccc(function: u64, args: [u64; 3]) -> u64 {
    let mut x0 = function;
    if USE_SMC.load(Ordering::Relaxed) {
        // SAFETY: an SMCCC call; it may change x0..x17, all marked clobbered.
        unsafe {
            asm!("smc #0", inout("x0") x0, inout("x1") args[0] => _, inout("x2") args[1] => _,
                inout("x3") args[2] => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        };
    } else {
        // SAFETY: as above.
        unsafe {
            asm!("hvc #0", inout("x0") x0, inout("x1") args[0] => _, inout("x2") args[1] => _,
                inout("x3") args[2] => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        };
    }
    x0
}

/// PSCI CPU_ON: starts the CPU `mpidr` at `entry`; PSCI's status.
pub fn cpu_on(mpidr: u64, entry: u64) -> i64 {
    smccc(PSCI_CPU_ON, [mpidr, entry, 0]) as i64
}

/// PSCI SYSTEM_OFF; waits for ever if it returns.
pub fn power_off() -> ! {
    smccc(PSCI_SYSTEM_OFF, [0; 3]);
    loop {
        wfi();
    }
}

/// The virtual counter, after earlier instructions have completed.
#[inline(always)]
pub fn counter() -> u64 {
    let count: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack)) };
    count
}

/// Counter ticks per second.
pub fn counter_hz() -> u64 {
    let hz: u64;
    // SAFETY: reading the counter frequency has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
    hz
}

/// Arms the virtual timer to fire at `deadline`, its interrupt unmasked.
pub fn timer_fire_at(deadline: u64) {
    // SAFETY: the guest's own virtual timer.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
            in(reg) deadline, in(reg) 1u64, options(nostack))
    };
}

/// Switches the virtual timer off (which also lowers its interrupt).
pub fn timer_off() {
    // SAFETY: the guest's own virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nostack)) };
}

/// This CPU's affinity (MPIDR_EL1's Aff3..Aff0), as the device tree's `reg`.
pub fn mpidr() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    mpidr & 0xff_00ff_ffff
}

/// Lets IRQs in (PSTATE.I clear).
pub fn irqs_on() {
    // SAFETY: the vectors are installed before anything unmasks IRQs.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
}

pub fn irqs_off() {
    // SAFETY: masking IRQs is always sound.
    unsafe { asm!("msr daifset, #2", options(nostack)) };
}

pub fn wfi() {
    // SAFETY: waiting for an interrupt has no memory effects.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}
