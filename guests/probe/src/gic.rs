//! Just enough of the GIC for the probe's one interrupt, the virtual
//! timer's: so that WFI ends when the timer fires. Duet wakes a waiting
//! vCPU only for an interrupt its virtual GIC would deliver (distributor
//! enabled, interrupt enabled and pending), as a real GIC would; the probe
//! keeps PSTATE.I masked, so the interrupt only ends the WFI, and the probe
//! acknowledges it afterwards.

use core::arch::asm;
use duet_probe::platform::virt::{GICD_BASE, GICR_BASE, GICR_SGI_FRAME};

/// The virtual timer's PPI.
pub const TIMER_INTID: u32 = 27;

/// GICD_CTLR.EnableGrp1 (the virtual GIC has one security state).
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// Redistributor registers (vCPU 0's frames).
const GICR_WAKER: u64 = 0x0014;
const GICR_IGROUPR0: u64 = GICR_SGI_FRAME + 0x0080;
const GICR_ISENABLER0: u64 = GICR_SGI_FRAME + 0x0100;
const GICR_IPRIORITYR: u64 = GICR_SGI_FRAME + 0x0400;
/// A middle priority, above the mask set below.
const PRIORITY: u8 = 0x80;
/// INTIDs from here on are special ("spurious" and the like).
const SPECIAL_INTIDS: u64 = 1020;

fn write32(address: u64, value: u32) {
    // SAFETY: a register of the guest's own virtual GIC (device memory, or
    // the MMU is off); writing it has no memory effects.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) };
}

fn read32(address: u64) -> u32 {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// Sets up the distributor, vCPU 0's redistributor and the CPU interface
/// to deliver the virtual timer's interrupt, as group 1.
pub fn enable_timer_interrupt() {
    write32(GICD_BASE, GICD_CTLR_ENABLE_GRP1);
    write32(GICR_BASE + GICR_WAKER, 0);
    write32(GICR_BASE + GICR_IGROUPR0, read32(GICR_BASE + GICR_IGROUPR0) | 1 << TIMER_INTID);
    // SAFETY: the priority byte of one PPI of the guest's own GIC.
    unsafe {
        core::ptr::write_volatile(
            (GICR_BASE + GICR_IPRIORITYR + u64::from(TIMER_INTID)) as *mut u8,
            PRIORITY,
        )
    };
    write32(GICR_BASE + GICR_ISENABLER0, 1 << TIMER_INTID);
    // SAFETY: the guest's own (virtual) CPU interface: system register
    // access, no priority masked, group 1 on.
    unsafe {
        asm!(
            "mrs {0}, icc_sre_el1",
            "orr {0}, {0}, #1",
            "msr icc_sre_el1, {0}",
            "isb",
            "mov {0}, #0xff",
            "msr icc_pmr_el1, {0}",
            "mov {0}, #1",
            "msr icc_igrpen1_el1, {0}",
            "isb",
            out(reg) _,
        )
    };
}

/// Acknowledges and ends the interrupt the CPU interface holds, if any.
pub fn acknowledge() {
    let intid: u64;
    // SAFETY: reading the guest's own interrupt acknowledge register.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
    let intid = intid & 0xff_ffff;
    if intid < SPECIAL_INTIDS {
        // SAFETY: ends the interrupt just acknowledged.
        unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid) };
    }
}
