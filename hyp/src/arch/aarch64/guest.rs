//! Running a guest on this CPU: the registers that make EL1 a VM (traps,
//! stage 2, virtual IDs, timer access), the guest's EL1 state at reset, and
//! the entry into and exit from guest code.
//!
//! Entry saves Duet's callee-saved registers on the main stack (SP_EL0),
//! leaves the register block's address and Duet's stack pointer on the
//! exception stack (SP_EL2), loads the guest's registers and `eret`s. Any
//! exception from the guest lands on SP_EL2 (see `exceptions`), which finds
//! the block there, saves the guest's registers into it, and returns from
//! [`enter`] as if it were a function call. Only general registers move on
//! this path; FP/SIMD and EL1 system registers stay in the hardware, since
//! Duet (built soft-float) never touches them.

use super::sysreg::{read_sysreg, write_sysreg};
use crate::vm::vcpu::GuestRegs;
use aarch64_cpu::registers::*;
use core::arch::{asm, global_asm};

global_asm!(
    r#"
.section .text
.global duet_enter_guest
duet_enter_guest:
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mov     x1, sp
    msr     spsel, #1
    stp     x0, x1, [sp, #-16]!
    ldr     x1, [x0, #{sp_el0}]
    msr     sp_el0, x1
    ldp     x1, x2, [x0, #{pc}]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x2, x3, [x0, #16 * 1]
    ldp     x4, x5, [x0, #16 * 2]
    ldp     x6, x7, [x0, #16 * 3]
    ldp     x8, x9, [x0, #16 * 4]
    ldp     x10, x11, [x0, #16 * 5]
    ldp     x12, x13, [x0, #16 * 6]
    ldp     x14, x15, [x0, #16 * 7]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x18, x19, [x0, #16 * 9]
    ldp     x20, x21, [x0, #16 * 10]
    ldp     x22, x23, [x0, #16 * 11]
    ldp     x24, x25, [x0, #16 * 12]
    ldp     x26, x27, [x0, #16 * 13]
    ldp     x28, x29, [x0, #16 * 14]
    ldr     x30, [x0, #8 * 30]
    ldp     x0, x1, [x0]
    eret

// Reached from a lower-EL vector entry, on SP_EL2, with the guest's x0 and
// x1 pushed and the exit kind in x1.
.global duet_guest_exit
duet_guest_exit:
    ldr     x0, [sp, #16]
    stp     x2, x3, [x0, #16 * 1]
    stp     x4, x5, [x0, #16 * 2]
    stp     x6, x7, [x0, #16 * 3]
    stp     x8, x9, [x0, #16 * 4]
    stp     x10, x11, [x0, #16 * 5]
    stp     x12, x13, [x0, #16 * 6]
    stp     x14, x15, [x0, #16 * 7]
    stp     x16, x17, [x0, #16 * 8]
    stp     x18, x19, [x0, #16 * 9]
    stp     x20, x21, [x0, #16 * 10]
    stp     x22, x23, [x0, #16 * 11]
    stp     x24, x25, [x0, #16 * 12]
    stp     x26, x27, [x0, #16 * 13]
    stp     x28, x29, [x0, #16 * 14]
    str     x30, [x0, #8 * 30]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
    mrs     x2, sp_el0
    str     x2, [x0, #{sp_el0}]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #{pc}]
    ldp     x2, x3, [sp], #16
    msr     spsel, #0
    mov     sp, x3
    mov     x0, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
"#,
    sp_el0 = const GuestRegs::SP_EL0_OFFSET,
    pc = const GuestRegs::PC_OFFSET,
);

/// Why the guest stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// A trap: what it was is in [`Exit::esr`].
    Synchronous,
    /// A physical interrupt arrived (IRQs are routed to EL2 while a guest runs).
    Irq,
    Fiq,
    SError,
}

/// An exit and the syndrome registers that describe it.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub kind: ExitKind,
    pub esr: u64,
    pub far: u64,
    /// HPFAR_EL2: bits [47:12] of the faulting IPA, in bits [43:4].
    pub hpfar: u64,
}

impl Exit {
    /// The faulting intermediate physical address of a stage-2 abort.
    pub fn fault_ipa(&self) -> u64 {
        ((self.hpfar >> 4) << 12) | (self.far & 0xfff)
    }
}

/// Runs the guest until it exits.
///
/// # Safety
/// This CPU must be set up for this guest: traps ([`configure`]), its
/// stage-2 map, and its EL1 state. `regs` must be a valid guest state.
pub unsafe fn enter(regs: &mut GuestRegs) -> Exit {
    extern "C" {
        fn duet_enter_guest(regs: *mut GuestRegs) -> u64;
    }
    // SAFETY: the caller's contract; the assembly saves and restores every
    // callee-saved register and both stack pointers.
    let kind = unsafe { duet_enter_guest(regs) };
    let kind = match kind & 3 {
        0 => ExitKind::Synchronous,
        1 => ExitKind::Irq,
        2 => ExitKind::Fiq,
        _ => ExitKind::SError,
    };
    Exit { kind, esr: ESR_EL2.get(), far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() }
}

// HCR_EL2 for a guest: stage 2 on (VM), set/way invalidation as clean
// (SWIO), physical FIQ/IRQ/SError to EL2 (FMO, IMO, AMO), broadcast TLB and
// cache maintenance (FB) inner shareable (BSU), trap WFI and WFE (TWI, TWE), ID group 3
// registers (TID3) so features Duet cannot give are hidden, and SMC (TSC);
// EL1 is AArch64 (RW); pointer authentication runs without traps (APK, API).
const HCR_GUEST: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 9)
    | (1 << 10)
    | (1 << 13)
    | (1 << 14)
    | (1 << 18)
    | (1 << 19)
    | (1 << 31)
    | (1 << 40)
    | (1 << 41);

// MDCR_EL2: TPMCR (5), TPM (6), TDA (9), TDOSA (10), TDRA (11).
const MDCR_TRAP_DEBUG_AND_PMU: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11);

// CNTHCTL_EL2 (no VHE): EL1 may read the physical counter (EL1PCTEN) but not
// use the physical timer (EL1PCEN clear); guests get the virtual timer.
const CNTHCTL_GUEST: u64 = 1 << 0;

/// Sets up this CPU's EL2 controls for running guests.
pub fn configure() {
    HCR_EL2.set(HCR_GUEST);
    CNTHCTL_EL2.set(CNTHCTL_GUEST);
    CNTVOFF_EL2.set(0);
    write_sysreg!("vpidr_el2", MIDR_EL1.get());
    // Debug and PMU registers are shared hardware that Duet does not switch
    // between vCPUs: trap them (TDA, TDOSA, TDRA; TPM, TPMCR), so one guest's
    // watchpoints or counters cannot reach another. Every counter stays
    // visible to EL1 (HPMN), which only matters to the traps' decoding.
    let counters = (read_sysreg!("pmcr_el0") >> 11) & 0x1f;
    MDCR_EL2.set(counters | MDCR_TRAP_DEBUG_AND_PMU);
    // Trap no AArch32 cp15 access.
    write_sysreg!("hstr_el2", 0);
    barrier();
}

/// The VTCR_EL2 value for a stage-2 map with `ipa_bits` of input, walked
/// from `root_level`.
pub fn vtcr(ipa_bits: u32, root_level: u32) -> u64 {
    let ps = match super::mmu::physical_address_bits() {
        32 => 0,
        36 => 1,
        40 => 2,
        42 => 3,
        44 => 4,
        _ => 5,
    };
    let t0sz = u64::from(64 - ipa_bits);
    let sl0 = u64::from(2 - root_level);
    // Inner/outer write-back walks (IRGN0, ORGN0 = 01), inner shareable,
    // 4 KiB granule; bit 31 is RES1.
    t0sz | sl0 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | ps << 16 | 1 << 31
}

/// Installs a VM's stage-2 map on this CPU.
pub fn install_stage2(vtcr: u64, root: u64, vmid: u8) {
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(root | u64::from(vmid) << 48);
    barrier();
    // SAFETY: invalidates stale stage-1+2 translations of this VMID; no
    // memory effects beyond the TLB.
    unsafe { asm!("tlbi vmalls12e1is", "dsb ish", "isb", options(nostack, preserves_flags)) };
}

/// Resets the guest's EL1 state on this CPU for a vCPU with MPIDR
/// affinity `mpidr`: MMU and caches off, everything else cleared.
pub fn reset_el1(mpidr: u64) {
    // MPIDR as the guest reads it: RES1 bit 31 plus the affinity.
    VMPIDR_EL2.set(1 << 31 | mpidr);
    // RES1 bits only: MMU, caches and alignment checks off.
    SCTLR_EL1.set(0x30d0_0800);
    TCR_EL1.set(0);
    TTBR0_EL1.set(0);
    TTBR1_EL1.set(0);
    MAIR_EL1.set(0);
    VBAR_EL1.set(0);
    CPACR_EL1.set(0);
    CNTKCTL_EL1.set(0);
    CNTV_CTL_EL0.set(0);
    CNTV_CVAL_EL0.set(0);
    SP_EL1.set(0);
    ELR_EL1.set(0);
    SPSR_EL1.set(0);
    ESR_EL1.set(0);
    FAR_EL1.set(0);
    TPIDR_EL1.set(0);
    TPIDR_EL0.set(0);
    TPIDRRO_EL0.set(0);
    CONTEXTIDR_EL1.set(0);
    MDSCR_EL1.set(0);
    barrier();
}

/// The guest's VBAR_EL1.
pub fn guest_vbar() -> u64 {
    VBAR_EL1.get()
}

/// Writes the guest's EL1 exception registers, to deliver an exception.
pub fn set_guest_exception_registers(esr: u64, far: Option<u64>, elr: u64, spsr: u64) {
    ESR_EL1.set(esr);
    if let Some(far) = far {
        FAR_EL1.set(far);
    }
    ELR_EL1.set(elr);
    SPSR_EL1.set(spsr);
}

/// The guest's virtual timer control: (enabled, masked, fired).
pub fn virtual_timer() -> (bool, bool, bool) {
    let ctl = CNTV_CTL_EL0.get();
    (ctl & 1 != 0, ctl & 2 != 0, ctl & 4 != 0)
}

/// Masks the guest's virtual timer interrupt until the guest re-arms it.
pub fn mask_virtual_timer() {
    CNTV_CTL_EL0.set(CNTV_CTL_EL0.get() | 2);
}

fn barrier() {
    // SAFETY: an instruction barrier has no memory effects.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}
