//! The CPU this code runs on: its exception level, identity, counter and idle.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{
    CurrentEL, Readable, Writeable, CNTFRQ_EL0, CNTPCT_EL0, MPIDR_EL1, TPIDR_EL2,
};

/// The exception level the CPU runs at (0..=3).
pub fn current_el() -> u8 {
    CurrentEL.read(CurrentEL::EL) as u8
}

/// Duet's index of this CPU (0 is the boot CPU), kept in TPIDR_EL2.
pub fn id() -> usize {
    TPIDR_EL2.get() as usize
}

/// Records Duet's index for this CPU; called once per CPU at boot.
pub fn set_id(id: usize) {
    TPIDR_EL2.set(id as u64);
}

/// The affinity fields of MPIDR_EL1, as PSCI and the device tree name CPUs.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The physical counter.
pub fn counter() -> u64 {
    CNTPCT_EL0.get()
}

/// Counter ticks per second.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Routes physical interrupts to EL2. Without this an interrupt would target
/// EL1, and a CPU waiting at EL2 would not even wake for it.
pub fn route_interrupts_to_el2() {
    use aarch64_cpu::registers::HCR_EL2;
    HCR_EL2.write(
        HCR_EL2::FMO::EnableVirtualFIQ
            + HCR_EL2::IMO::EnableVirtualIRQ
            + HCR_EL2::AMO::SET
            + HCR_EL2::RW::EL1IsAarch64,
    );
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Sleeps until an interrupt or event arrives (or spuriously returns).
pub fn wait_for_interrupt() {
    asm::wfi();
}

/// Stops this CPU for good.
pub fn park() -> ! {
    loop {
        asm::wfi();
    }
}
