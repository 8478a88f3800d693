//! This CPU's GIC interfaces, whichever the GIC version: the physical CPU
//! interface through which Duet takes interrupts, and the virtual interface
//! control through which it presents interrupts to the guest that runs
//! here. On a GICv3 they are system registers (ICC_*, ICH_*), handled here;
//! on a GICv2 they are MMIO frames, handled by `drivers::gicv2` once boot
//! has installed it ([`use_gicv2`]). Callers never ask which.
//! The GICv3 distributor and redistributors are MMIO: `drivers::gicv3`.

use super::cpu;
use super::sysreg::{read_sysreg, write_sysreg};
use crate::drivers::gicv2::Gicv2;
use crate::vm::device_tree::GicVersion;
use spin::Once;

/// The physical GICv2, when the board has one.
static GICV2: Once<(Gicv2, u64)> = Once::new();

/// Makes every function here drive `gic` (a GICv2) instead of the GICv3
/// system registers; `virtual_cpu` is the physical address of its GICV
/// frame, which guests get as their CPU interface. Called once at boot.
pub fn use_gicv2(gic: Gicv2, virtual_cpu: u64) -> &'static Gicv2 {
    &GICV2.call_once(|| (gic, virtual_cpu)).0
}

fn gicv2() -> Option<&'static Gicv2> {
    GICV2.get().map(|(gic, _)| gic)
}

/// The GIC version guests get: the hardware's.
pub fn guest_version() -> GicVersion {
    if GICV2.get().is_some() {
        GicVersion::V2
    } else {
        GicVersion::V3
    }
}

/// GICv2: the physical address of the virtual CPU interface (GICV).
pub fn virtual_cpu_interface() -> Option<u64> {
    GICV2.get().map(|&(_, base)| base)
}

/// INTIDs from 1020 up are special (spurious and friends).
const FIRST_SPECIAL_INTID: u32 = 1020;

/// Enables system-register access and Group 1 interrupts on this CPU, and
/// the virtual CPU interface for guests.
pub fn init_cpu_interface() {
    // ICC_SRE_EL2: SRE, DFB, DIB, and Enable (lets EL1 use ICC_SRE_EL1).
    write_sysreg!("icc_sre_el2", 0b1111);
    isb();
    write_sysreg!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1: take every priority
    write_sysreg!("S3_0_C12_C12_4", 0); // ICC_CTLR_EL1: EOI also deactivates
    write_sysreg!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1: Group 1 on
    write_sysreg!("ich_vmcr_el2", 0);
    write_sysreg!("ich_hcr_el2", ICH_HCR_EN);
    isb();
}

const ICH_HCR_EN: u64 = 1 << 0;
const ICH_HCR_UIE: u64 = 1 << 1;

/// Forgets what a previous guest left in the virtual CPU interface: its
/// priority mask, group enables and active priorities.
pub fn reset_virtual_cpu_interface() {
    if let Some(gic) = gicv2() {
        return gic.set_virtual_cpu_state(0, 0);
    }
    write_sysreg!("ich_vmcr_el2", 0);
    write_sysreg!("ich_ap0r0_el2", 0);
    write_sysreg!("ich_ap1r0_el2", 0);
    isb();
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    if let Some(gic) = gicv2() {
        return gic.acknowledge(cpu::id());
    }
    let intid = (read_sysreg!("S3_0_C12_C12_0") & 0xff_ffff) as u32; // ICC_IAR1_EL1
    (intid < FIRST_SPECIAL_INTID).then_some(intid)
}

/// Ends (and deactivates) an acknowledged interrupt.
pub fn end_of_interrupt(intid: u32) {
    if let Some(gic) = gicv2() {
        return gic.end_of_interrupt(cpu::id(), intid);
    }
    write_sysreg!("S3_0_C12_C12_1", u64::from(intid)); // ICC_EOIR1_EL1
}

/// Sends SGI `intid` to the CPU with Duet's index `target`.
pub fn send_sgi(intid: u32, target: usize) {
    if let Some(gic) = gicv2() {
        return gic.send_sgi(intid, target);
    }
    let mpidr = crate::smp::mpidr_of(target);
    let aff0 = mpidr & 0xf;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let value = aff3 << 48 | aff2 << 32 | u64::from(intid & 0xf) << 24 | aff1 << 16 | 1 << aff0;
    write_sysreg!("S3_0_C12_C11_5", value); // ICC_SGI1R_EL1
    isb();
}

/// List registers this CPU implements.
pub fn list_register_count() -> usize {
    if let Some(gic) = gicv2() {
        return gic.list_register_count();
    }
    (read_sysreg!("ich_vtr_el2") & 0x1f) as usize + 1
}

/// Asks for a maintenance interrupt when the list registers run (nearly)
/// empty, so more pending interrupts can be loaded.
pub fn set_underflow_interrupt(on: bool) {
    if let Some(gic) = gicv2() {
        return gic.set_underflow_interrupt(on);
    }
    write_sysreg!("ich_hcr_el2", if on { ICH_HCR_EN | ICH_HCR_UIE } else { ICH_HCR_EN });
}

macro_rules! list_register_access {
    ($($n:literal),*) => {
        /// Reads list register `n`.
        pub fn read_list_register(n: usize) -> u64 {
            if let Some(gic) = gicv2() {
                return u64::from(gic.read_list_register(n));
            }
            match n {
                $($n => read_sysreg!(concat!("ich_lr", $n, "_el2")),)*
                _ => 0,
            }
        }

        /// Writes list register `n`.
        pub fn write_list_register(n: usize, value: u64) {
            if let Some(gic) = gicv2() {
                return gic.write_list_register(n, value as u32);
            }
            match n {
                $($n => write_sysreg!(concat!("ich_lr", $n, "_el2"), value),)*
                _ => {}
            }
        }
    };
}

list_register_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

/// The guest's virtual CPU interface state, to keep while another vCPU
/// uses this CPU: ICH_VMCR_EL2, ICH_AP0R0_EL2 and ICH_AP1R0_EL2 on v3;
/// GICH_VMCR and GICH_APR on v2.
pub fn save_virtual_cpu_interface() -> [u64; 3] {
    if let Some(gic) = gicv2() {
        let (vmcr, apr) = gic.virtual_cpu_state();
        return [u64::from(vmcr), u64::from(apr), 0];
    }
    [read_sysreg!("ich_vmcr_el2"), read_sysreg!("ich_ap0r0_el2"), read_sysreg!("ich_ap1r0_el2")]
}

/// Puts back what [`save_virtual_cpu_interface`] returned.
pub fn load_virtual_cpu_interface(state: [u64; 3]) {
    if let Some(gic) = gicv2() {
        return gic.set_virtual_cpu_state(state[0] as u32, state[1] as u32);
    }
    write_sysreg!("ich_vmcr_el2", state[0]);
    write_sysreg!("ich_ap0r0_el2", state[1]);
    write_sysreg!("ich_ap1r0_el2", state[2]);
}

fn isb() {
    // SAFETY: an instruction barrier has no memory effects.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}
