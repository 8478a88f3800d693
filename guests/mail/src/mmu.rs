//! The guest's own stage-1 translation: an identity map (virtual address ==
//! guest-physical address) with one level-1 table of 1 GiB blocks. The
//! first GiB (GIC, UART, virtio-mmio) is Device-nGnRE and never executable;
//! the second (RAM, from 0x4000_0000) is Normal write-back cacheable, so
//! that the guest's view of its RAM has the same attributes as Duet's
//! (virtio buffers are coherent) and exclusives work on it. Everything else
//! is unmapped: a stray pointer faults in the guest before Duet sees it.
//!
//! The identity map is what makes the virtio `Hal` sound: every pointer the
//! guest holds is the guest-physical address the device uses.

use core::arch::asm;

/// MAIR_EL1: attribute 0 Device-nGnRE, attribute 1 Normal write-back.
const MAIR: u64 = 0x04 | (0xff << 8);
/// Block descriptor bits.
const VALID_BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
/// TCR_EL1: 39-bit addresses through TTBR0 (T0SZ 25, walks start at level
/// 1), write-back inner-shareable walks, 4 KiB granule, TTBR1 walks off,
/// 40-bit intermediate physical addresses.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32);
/// SCTLR_EL1: M (MMU), C (data cache), I (instruction cache); A (alignment
/// checks) off.
const SCTLR_M: u64 = 1 << 0;
const SCTLR_A: u64 = 1 << 1;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_I: u64 = 1 << 12;

const GIB: u64 = 1 << 30;

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut LEVEL1: Table = Table([0; 512]);

/// Builds the map and turns the MMU and caches on. Once, at boot, on the
/// only CPU, with the MMU off.
pub fn enable() {
    // SAFETY: at boot nothing else refers to LEVEL1; after this only the
    // MMU reads it.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(LEVEL1) };
    table.0[0] = VALID_BLOCK | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;
    table.0[1] = GIB | VALID_BLOCK | ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG;
    let base = table.0.as_ptr() as u64;
    // SAFETY: the table maps the code, data and stack running now at their
    // own addresses (the second GiB, identity), so turning the MMU on does
    // not move anything under the program's feet. The barriers make the
    // table writes visible to the walker before it is used.
    unsafe {
        asm!(
            "dsb ish",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {base}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {sctlr}, sctlr_el1",
            "orr {sctlr}, {sctlr}, {on}",
            "bic {sctlr}, {sctlr}, {off}",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            base = in(reg) base,
            sctlr = out(reg) _,
            on = in(reg) SCTLR_M | SCTLR_C | SCTLR_I,
            off = in(reg) SCTLR_A,
            options(nostack),
        );
    }
}
