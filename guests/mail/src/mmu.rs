//! The guest's own stage-1 translation: an identity map (virtual address ==
//! guest-physical address), its entries computed by the library's
//! `paging`. The first GiB (GIC, UART, virtio-mmio) is one Device-nGnRE
//! block, never executable; the second (RAM, from 0x4000_0000) is Normal
//! write-back cacheable in 2 MiB blocks, so that the guest's view of its RAM
//! has the same attributes as Duet's (virtio buffers are coherent) and
//! exclusives work on it. The 2 MiB holding the stack's guard page
//! (`__stack_guard`, link.ld) is mapped in 4 KiB pages with the guard page
//! left out, so a stack overflow faults (see `vectors.rs`) rather than
//! running into `.bss`. Everything else is unmapped: a stray pointer faults
//! in the guest before Duet sees it.
//!
//! The identity map is what makes the virtio `Hal` sound: every pointer the
//! guest holds is the guest-physical address the device uses.

use core::arch::asm;
use duet_mail::paging;

/// MAIR_EL1: attribute 0 Device-nGnRE, attribute 1 Normal write-back.
const MAIR: u64 = 0x04 | (0xff << 8);
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

#[repr(C, align(4096))]
struct Table(paging::Entries);

static mut LEVEL1: Table = Table([0; 512]);
static mut LEVEL2: Table = Table([0; 512]);
static mut LEVEL3: Table = Table([0; 512]);

extern "C" {
    /// The stack's guard page (link.ld).
    static __stack_guard: u8;
}

/// The stack's guard page: the 4 KiB the map leaves out.
pub fn guard() -> core::ops::Range<u64> {
    // Only the symbol's address is taken (safe); nothing reads it.
    let start = core::ptr::addr_of!(__stack_guard) as u64;
    start..start + paging::PAGE
}

/// Builds the map and turns the MMU and caches on. Once, at boot, on the
/// only CPU, with the MMU off.
pub fn enable() {
    let guard = guard().start;
    // SAFETY: at boot nothing else refers to the tables; after this only
    // the MMU reads them.
    let (level1, level2, level3) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(LEVEL1),
            &mut *core::ptr::addr_of_mut!(LEVEL2),
            &mut *core::ptr::addr_of_mut!(LEVEL3),
        )
    };
    level3.0 = paging::level3(guard);
    level2.0 = paging::level2(paging::GIB, guard, level3.0.as_ptr() as u64);
    level1.0 = paging::level1(level2.0.as_ptr() as u64);
    let base = level1.0.as_ptr() as u64;
    // SAFETY: the tables map the code, data and stack running now at their
    // own addresses (the second GiB, identity; the guard page lies below
    // anything the stack has used), so turning the MMU on does not move
    // anything under the program's feet. The barriers make the
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
