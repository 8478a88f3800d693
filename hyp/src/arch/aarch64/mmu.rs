//! The EL2 stage-1 MMU: the register values for Duet's own map, and turning
//! translation and caches on. The tables themselves come from
//! `mm::pagetable`; this file only points the hardware at them.

use crate::mm::pagetable::mair;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2,
};
use core::arch::asm;

/// Bits of virtual address in Duet's map. The map is an identity map, so
/// this also bounds the physical addresses Duet can reach.
pub const VA_BITS: u32 = 48;

/// The register values that describe Duet's map. Secondary CPUs read them
/// with their MMU off, from the entry code.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmuConfig {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr: u64,
}

/// Physical address bits the CPU supports, capped at what a 4 KiB granule
/// without LPA2 can output.
pub fn physical_address_bits() -> u32 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// The configuration for a map rooted at `root`.
pub fn config(root: u64) -> MmuConfig {
    let ps = match physical_address_bits() {
        32 => TCR_EL2::PS::Bits_32,
        36 => TCR_EL2::PS::Bits_36,
        40 => TCR_EL2::PS::Bits_40,
        42 => TCR_EL2::PS::Bits_42,
        44 => TCR_EL2::PS::Bits_44,
        _ => TCR_EL2::PS::Bits_48,
    };
    let tcr = TCR_EL2::T0SZ.val(u64::from(64 - VA_BITS))
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + ps;
    // Bits 31 and 23 of TCR_EL2 are RES1 without VHE.
    let res1 = (1 << 31) | (1 << 23);
    MmuConfig { mair: mair::VALUE, tcr: tcr.value | res1, ttbr: root }
}

/// Turns on translation with `config`, and the data and instruction caches.
///
/// # Safety
/// The map must identity-map all code, data and stack in use, with
/// attributes that allow their use.
pub unsafe fn enable(config: &MmuConfig) {
    MAIR_EL2.set(config.mair);
    TCR_EL2.set(config.tcr);
    TTBR0_EL2.set(config.ttbr);
    barrier::isb(barrier::SY);
    // SAFETY: drops stale translations; nothing depends on them with the MMU off.
    unsafe { asm!("tlbi alle2", "dsb nsh", options(nostack, preserves_flags)) };
    barrier::isb(barrier::SY);
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable);
    barrier::isb(barrier::SY);
}
