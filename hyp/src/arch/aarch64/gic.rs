//! This CPU's GICv3 system-register interfaces: the physical CPU interface
//! (ICC_*) through which Duet takes interrupts, and the virtual interface
//! control (ICH_*) through which it presents interrupts to the guest that
//! runs here. The distributor and redistributors are MMIO: `drivers::gicv3`.

use super::sysreg::{read_sysreg, write_sysreg};

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
    write_sysreg!("ich_vmcr_el2", 0);
    write_sysreg!("ich_ap0r0_el2", 0);
    write_sysreg!("ich_ap1r0_el2", 0);
    isb();
}

/// Takes the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    let intid = (read_sysreg!("S3_0_C12_C12_0") & 0xff_ffff) as u32; // ICC_IAR1_EL1
    (intid < FIRST_SPECIAL_INTID).then_some(intid)
}

/// Ends (and deactivates) an acknowledged interrupt.
pub fn end_of_interrupt(intid: u32) {
    write_sysreg!("S3_0_C12_C12_1", u64::from(intid)); // ICC_EOIR1_EL1
}

/// Sends SGI `intid` to the CPU with MPIDR affinity `mpidr`.
pub fn send_sgi(intid: u32, mpidr: u64) {
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
    (read_sysreg!("ich_vtr_el2") & 0x1f) as usize + 1
}

/// Asks for a maintenance interrupt when the list registers run (nearly)
/// empty, so more pending interrupts can be loaded.
pub fn set_underflow_interrupt(on: bool) {
    write_sysreg!("ich_hcr_el2", if on { ICH_HCR_EN | ICH_HCR_UIE } else { ICH_HCR_EN });
}

macro_rules! list_register_access {
    ($($n:literal),*) => {
        /// Reads list register `n`.
        pub fn read_list_register(n: usize) -> u64 {
            match n {
                $($n => read_sysreg!(concat!("ich_lr", $n, "_el2")),)*
                _ => 0,
            }
        }

        /// Writes list register `n`.
        pub fn write_list_register(n: usize, value: u64) {
            match n {
                $($n => write_sysreg!(concat!("ich_lr", $n, "_el2"), value),)*
                _ => {}
            }
        }
    };
}

list_register_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

fn isb() {
    // SAFETY: an instruction barrier has no memory effects.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}
