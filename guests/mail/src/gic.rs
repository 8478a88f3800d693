//! Waiting without spinning: just enough of the GIC (v3 or v2, whichever
//! the device tree names) to wake from WFI on the interrupts the guest
//! cares about (the NIC, the console UART's receive, the EL1 virtual
//! timer), and [`wait_until`], which arms the virtual timer for a deadline
//! and sleeps in WFI until one of them comes.
//!
//! The guest never takes an interrupt as an exception: PSTATE.I stays set
//! and its vector table (`vectors.rs`) is for fatal faults only. WFI still wakes on a pending interrupt
//! (Duet wakes a waiting vCPU when its vGIC has one it can signal), and
//! after waking the guest acknowledges and ends every pending one through
//! the CPU interface, then looks at its devices. Whatever arrived after it
//! last looked stays pending, so the next WFI returns at once: no wakeup is
//! lost between looking and sleeping.

use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0,
};
use core::arch::asm;
use spin::Once;

/// The EL1 virtual timer's PPI (architected).
pub const TIMER_INTID: u32 = 27;

#[derive(Clone, Copy, Debug)]
enum Gic {
    V3 { gicd: usize, gicr: usize },
    V2 { gicd: usize, gicc: usize },
}

static GIC: Once<Gic> = Once::new();

fn read32(address: usize) -> u32 {
    // SAFETY: `address` is a GIC register named by the device tree, in the
    // first GiB, which the identity map has as device memory.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

fn write32(address: usize, value: u32) {
    // SAFETY: as in `read32`; GIC register writes have no memory effects.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

/// Sets up the GIC named by `tree` to signal `intids` (SPIs and PPIs;
/// `edge` says which SPIs are edge-triggered). False if there is no GIC
/// the guest knows: then [`wait_until`] only polls.
pub fn init(tree: &fdt::Fdt, intids: &[(u32, bool)]) -> bool {
    let Some(node) = tree.find_compatible(&["arm,gic-v3", "arm,cortex-a15-gic", "arm,gic-400"])
    else {
        return false;
    };
    let v3 = node.compatible().is_some_and(|c| c.all().any(|c| c == "arm,gic-v3"));
    let mut regions = match node.reg() {
        Some(regions) => regions,
        None => return false,
    };
    let (Some(first), Some(second)) = (regions.next(), regions.next()) else { return false };
    let (gicd, other) = (first.starting_address as usize, second.starting_address as usize);
    let gic = if v3 { Gic::V3 { gicd, gicr: other } } else { Gic::V2 { gicd, gicc: other } };
    match gic {
        Gic::V3 { gicd, gicr } => {
            // SAFETY: ICC_SRE_EL1.SRE (the system-register interface, which
            // Duet's guests use; the virtual ICV registers behind it).
            unsafe { asm!("msr S3_0_C12_C12_5, {}", "isb", in(reg) 1u64, options(nostack)) };
            // GICD_CTLR: affinity routing, Group 1 on.
            write32(gicd, (1 << 4) | (1 << 1));
            // GICR_WAKER: the CPU interface is awake.
            write32(gicr + 0x14, 0);
            for &(intid, edge) in intids {
                if intid < 32 {
                    // The SGI frame's GICR_ISENABLER0.
                    write32(gicr + 0x1_0000 + 0x100, 1 << intid);
                } else {
                    configure_spi(gicd, intid, edge);
                }
            }
            // SAFETY: ICC_PMR_EL1 (let every priority through) and
            // ICC_IGRPEN1_EL1 (Group 1 on): only which interrupts the
            // CPU interface signals changes.
            unsafe {
                asm!(
                    "msr S3_0_C4_C6_0, {pmr}",
                    "msr S3_0_C12_C12_7, {on}",
                    "isb",
                    pmr = in(reg) 0xffu64,
                    on = in(reg) 1u64,
                    options(nostack)
                )
            };
        }
        Gic::V2 { gicd, gicc } => {
            write32(gicd, 1);
            for &(intid, edge) in intids {
                if intid >= 32 {
                    // GICD_ITARGETSR: this (only) CPU.
                    let at = gicd + 0x800 + intid as usize;
                    // SAFETY: a byte-wide GICD_ITARGETSR field, as above.
                    unsafe { core::ptr::write_volatile(at as *mut u8, 1) };
                    configure_spi(gicd, intid, edge);
                } else {
                    write32(gicd + 0x100, 1 << intid);
                }
            }
            write32(gicc + 0x4, 0xff); // GICC_PMR
            write32(gicc, 1); // GICC_CTLR
        }
    }
    GIC.call_once(|| gic);
    true
}

/// GICD_ICFGR (edge or level) and GICD_ISENABLER for an SPI.
fn configure_spi(gicd: usize, intid: u32, edge: bool) {
    let (word, shift) = (intid as usize / 16, (intid % 16) * 2 + 1);
    let icfgr = gicd + 0xc00 + 4 * word;
    let bits = read32(icfgr) & !(1 << shift);
    write32(icfgr, bits | (u32::from(edge) << shift));
    write32(gicd + 0x100 + 4 * (intid as usize / 32), 1 << (intid % 32));
}

/// Acknowledges and ends every interrupt pending now.
fn acknowledge_all(gic: Gic) {
    // Bounded: a storm must not keep the guest here.
    for _ in 0..64 {
        let (iar, intid) = match gic {
            Gic::V3 { .. } => {
                let iar: u64;
                // SAFETY: ICC_IAR1_EL1: acknowledges the most urgent
                // pending interrupt (or reads a spurious INTID); no memory.
                unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) iar, options(nostack)) };
                (iar, (iar & 0xff_ffff) as u32)
            }
            Gic::V2 { gicc, .. } => {
                let iar = read32(gicc + 0xc);
                (u64::from(iar), iar & 0x3ff)
            }
        };
        if intid >= 1020 {
            return;
        }
        match gic {
            // SAFETY: ICC_EOIR1_EL1 with the value just acknowledged.
            Gic::V3 { .. } => unsafe {
                asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) iar, options(nostack))
            },
            Gic::V2 { gicc, .. } => write32(gicc + 0x10, iar as u32),
        }
    }
}

/// Sleeps in WFI until an interrupt comes or the virtual counter reaches
/// `deadline` (in counter ticks; `None`: no timer). Without a GIC it
/// returns at once (the caller polls).
pub fn wait_until(deadline: Option<u64>) {
    let Some(&gic) = GIC.get() else { return };
    match deadline {
        Some(at) if at <= CNTVCT_EL0.get() => return,
        Some(at) => {
            CNTV_CVAL_EL0.set(at);
            CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
        }
        None => CNTV_CTL_EL0.set(0),
    }
    WAITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: waiting for an interrupt has no memory effects; PSTATE.I is
    // set, so a pending interrupt ends the wait without being taken.
    unsafe { asm!("dsb sy", "wfi", options(nomem, nostack)) };
    // The timer has done its job; a stale level must not wake the next WFI.
    CNTV_CTL_EL0.modify(CNTV_CTL_EL0::ENABLE::CLEAR);
    acknowledge_all(gic);
}

static WAITS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How many times the guest has slept in WFI.
pub fn waits() -> u64 {
    WAITS.load(core::sync::atomic::Ordering::Relaxed)
}

/// True once [`init`] found a GIC.
pub fn ready() -> bool {
    GIC.get().is_some()
}
