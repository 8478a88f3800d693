//! Just enough of a GICv2 or GICv3 for the benchmarks: the distributor on,
//! each CPU's interface on with the ping SGIs and the virtual timer's PPI
//! enabled, SGIs sent, interrupts acknowledged and ended. GICv3 is used
//! through its system registers (ICC_*), with affinity routing.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use duet_bench_guest::platform::Gic;

/// GICD registers.
const GICD_CTLR: u64 = 0x000;
pub const GICD_TYPER: u64 = 0x004;
const GICD_ISENABLER0: u64 = 0x100;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR0: u64 = 0x800;
const GICD_SGIR: u64 = 0xf00;
/// GICD_CTLR: enable (group 1, or the only group), and for v3 ARE (bit 4)
/// and RWP, the write-pending bit to wait on.
const GICD_CTLR_V2_ENABLE: u32 = 1;
const GICD_CTLR_V3: u32 = 1 << 4 | 1 << 1;
const GICD_CTLR_RWP: u32 = 1 << 31;
/// GICv2 CPU interface registers.
const GICC_CTLR: u64 = 0x00;
const GICC_PMR: u64 = 0x04;
const GICC_IAR: u64 = 0x0c;
const GICC_EOIR: u64 = 0x10;
/// GICv3 redistributor registers, and the SGI frame 64 KiB in.
const GICR_TYPER: u64 = 0x08;
const GICR_WAKER: u64 = 0x14;
const GICR_SGI: u64 = 0x1_0000;
const GICR_IGROUPR0: u64 = GICR_SGI + 0x080;
const GICR_ISENABLER0: u64 = GICR_SGI + 0x100;
const GICR_IPRIORITYR: u64 = GICR_SGI + 0x400;
const GICR_TYPER_VLPIS: u32 = 1 << 1;
const GICR_TYPER_LAST: u32 = 1 << 4;
const GICR_WAKER_SLEEP: u32 = 1 << 1;
const GICR_WAKER_ASLEEP: u32 = 1 << 2;
/// A middle priority, for every private interrupt (PMR lets all through).
const PRIORITY_WORD: u32 = 0x8080_8080;
/// INTIDs from here on mean "none" (spurious).
pub const SPURIOUS: u32 = 1020;
/// Bounded polls of a GIC status bit.
const POLLS: u32 = 100_000;

/// GICv2's CPU interface mask of each CPU (index 0 and 1), which a GICv2
/// SGI names its targets by; each CPU writes its own.
static V2_TARGETS: [AtomicU64; 2] = [AtomicU64::new(1), AtomicU64::new(2)];

fn read32(address: u64) -> u32 {
    // SAFETY: a register of the GIC the device tree describes; the MMU is
    // off, so it is a device access with no memory effects.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

fn write32(address: u64, value: u32) {
    // SAFETY: as in `read32`.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

fn poll_clear(address: u64, bit: u32) {
    for _ in 0..POLLS {
        if read32(address) & bit == 0 {
            return;
        }
    }
}

/// Turns the distributor on (CPU 0, once).
pub fn init_distributor(gic: Gic) {
    match gic {
        Gic::V2 { distributor, .. } => write32(distributor + GICD_CTLR, GICD_CTLR_V2_ENABLE),
        Gic::V3 { distributor, .. } => {
            write32(distributor + GICD_CTLR, GICD_CTLR_V3);
            poll_clear(distributor + GICD_CTLR, GICD_CTLR_RWP);
        }
    }
}

/// Sets up this CPU (index `cpu` of the device tree's CPUs) to take the
/// private interrupts `intids` (SGIs and PPIs, all below 32).
pub fn init_cpu(gic: Gic, cpu: usize, intids: &[u32]) -> Result<(), &'static str> {
    let mask = intids.iter().fold(0u32, |mask, intid| mask | 1 << intid);
    match gic {
        Gic::V2 { distributor, cpu_interface } => {
            // Banked per CPU: this CPU's SGIs and PPIs.
            for word in 0..8 {
                write32(distributor + GICD_IPRIORITYR + 4 * word, PRIORITY_WORD);
            }
            write32(distributor + GICD_ISENABLER0, mask);
            if let Some(target) = V2_TARGETS.get(cpu) {
                let own = u64::from(read32(distributor + GICD_ITARGETSR0) & 0xff);
                if own != 0 {
                    target.store(own, Ordering::SeqCst);
                }
            }
            write32(cpu_interface + GICC_PMR, 0xff);
            write32(cpu_interface + GICC_CTLR, 1);
        }
        Gic::V3 { redistributors, .. } => {
            let frame = redistributor(redistributors, crate::arch::mpidr())
                .ok_or("no redistributor for this CPU")?;
            let waker = read32(frame + GICR_WAKER);
            write32(frame + GICR_WAKER, waker & !GICR_WAKER_SLEEP);
            poll_clear(frame + GICR_WAKER, GICR_WAKER_ASLEEP);
            for word in 0..8 {
                write32(frame + GICR_IPRIORITYR + 4 * word, PRIORITY_WORD);
            }
            write32(frame + GICR_IGROUPR0, read32(frame + GICR_IGROUPR0) | mask);
            write32(frame + GICR_ISENABLER0, mask);
            // SAFETY: this CPU's own GIC CPU interface: system registers on,
            // no priority masked, group 1 on.
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
    }
    Ok(())
}

/// The redistributor frame whose GICR_TYPER names the CPU `mpidr`.
fn redistributor(base: u64, mpidr: u64) -> Option<u64> {
    let affinity = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
    let mut frame = base;
    for _ in 0..64 {
        let low = read32(frame + GICR_TYPER);
        if u64::from(read32(frame + GICR_TYPER + 4)) == affinity {
            return Some(frame);
        }
        if low & GICR_TYPER_LAST != 0 {
            return None;
        }
        frame += if low & GICR_TYPER_VLPIS != 0 { 0x4_0000 } else { 0x2_0000 };
    }
    None
}

/// Sends SGI `intid` to the CPU with index `cpu` and affinity `mpidr`.
pub fn send_sgi(gic: Gic, intid: u32, cpu: usize, mpidr: u64) {
    match gic {
        Gic::V2 { distributor, .. } => {
            let target = V2_TARGETS.get(cpu).map_or(0, |t| t.load(Ordering::SeqCst));
            write32(distributor + GICD_SGIR, (target as u32) << 16 | intid);
        }
        Gic::V3 { .. } => {
            let aff0 = mpidr & 0xff;
            let value = ((mpidr >> 32) & 0xff) << 48
                | ((mpidr >> 16) & 0xff) << 32
                | (aff0 >> 4) << 44
                | u64::from(intid) << 24
                | ((mpidr >> 8) & 0xff) << 16
                | 1 << (aff0 & 0xf);
            // SAFETY: generates an SGI; no memory effects.
            unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) value) };
        }
    }
}

/// Acknowledges the highest pending interrupt: (its INTID, the raw value to
/// end it with); the INTID is SPURIOUS or above if there was none.
pub fn acknowledge(gic: Gic) -> (u32, u64) {
    match gic {
        Gic::V2 { cpu_interface, .. } => {
            let iar = read32(cpu_interface + GICC_IAR);
            (iar & 0x3ff, u64::from(iar))
        }
        Gic::V3 { .. } => {
            let iar: u64;
            // SAFETY: reading this CPU's interrupt acknowledge register.
            unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar) };
            ((iar & 0xff_ffff) as u32, iar)
        }
    }
}

/// Ends the interrupt `acknowledge` returned `raw` for.
pub fn end(gic: Gic, raw: u64) {
    match gic {
        Gic::V2 { cpu_interface, .. } => write32(cpu_interface + GICC_EOIR, raw as u32),
        // SAFETY: ends the interrupt just acknowledged.
        Gic::V3 { .. } => unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) raw) },
    }
}

/// The distributor's base.
pub fn distributor(gic: Gic) -> u64 {
    match gic {
        Gic::V2 { distributor, .. } | Gic::V3 { distributor, .. } => distributor,
    }
}

/// Stored so the interrupt handler, which gets no arguments, finds the GIC.
static KIND: AtomicU64 = AtomicU64::new(0);
static BASE_A: AtomicU64 = AtomicU64::new(0);
static BASE_B: AtomicU64 = AtomicU64::new(0);

pub fn remember(gic: Gic) {
    let (kind, a, b) = match gic {
        Gic::V2 { distributor, cpu_interface } => (2, distributor, cpu_interface),
        Gic::V3 { distributor, redistributors } => (3, distributor, redistributors),
    };
    BASE_A.store(a, Ordering::SeqCst);
    BASE_B.store(b, Ordering::SeqCst);
    KIND.store(kind, Ordering::SeqCst);
}

pub fn remembered() -> Option<Gic> {
    let (a, b) = (BASE_A.load(Ordering::SeqCst), BASE_B.load(Ordering::SeqCst));
    match KIND.load(Ordering::SeqCst) {
        2 => Some(Gic::V2 { distributor: a, cpu_interface: b }),
        3 => Some(Gic::V3 { distributor: a, redistributors: b }),
        _ => None,
    }
}
