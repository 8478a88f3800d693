//! Where Duet starts: the arm64 `Image` header and the first instructions of
//! the boot CPU and of each secondary CPU.
//!
//! The header makes Duet load like a Linux kernel, so QEMU `-kernel`, U-Boot
//! and the Raspberry Pi firmware all start it the same way: at EL2, MMU off,
//! with the device tree's physical address in x0. Before any Rust runs, the
//! boot CPU applies the image's own relocations (it is linked at address 0
//! and may be loaded anywhere), clears `.bss`, picks its stacks and leaves
//! FP/SIMD untrapped for guests (Duet itself is built soft-float).
//!
//! Each CPU has two stacks. Duet's code runs on SP_EL0 (the "main" stack);
//! exceptions taken at EL2 switch to SP_EL2 (the "exception" stack). So a
//! main stack that overflows into its guard page faults onto a stack that is
//! still good, and the crash report gets printed.

use crate::MAX_CPUS;
use core::arch::global_asm;

/// Bytes of main stack per CPU. The boot CPU builds the VMs, and the
/// deepest path there (boot, `system::start`, `Vm::build`, the vGIC and
/// device-tree code, each with frames of 4 to 16 KiB from values built in
/// place) outgrew 64 KiB once VMs gained virtio devices.
pub const MAIN_STACK_SIZE: usize = 128 * 1024;
/// Bytes of exception stack per CPU.
pub const EXCEPTION_STACK_SIZE: usize = 16 * 1024;
/// An unmapped page below each stack turns an overflow into a fault.
pub const GUARD_SIZE: usize = 4096;
const MAIN_SLOT: usize = MAIN_STACK_SIZE + GUARD_SIZE;
const EXCEPTION_SLOT: usize = EXCEPTION_STACK_SIZE + GUARD_SIZE;

/// Every CPU's stacks, each with its guard page below it.
#[repr(C, align(4096))]
pub struct Stacks {
    main: [[u8; MAIN_SLOT]; MAX_CPUS],
    exception: [[u8; EXCEPTION_SLOT]; MAX_CPUS],
}

#[link_section = ".stacks"]
static mut STACKS: Stacks =
    Stacks { main: [[0; MAIN_SLOT]; MAX_CPUS], exception: [[0; EXCEPTION_SLOT]; MAX_CPUS] };

/// The guard pages, so that Duet's map can leave them out.
pub fn stack_guards() -> impl Iterator<Item = usize> {
    let base = (&raw const STACKS) as usize;
    let exception = base + core::mem::offset_of!(Stacks, exception);
    (0..MAX_CPUS).flat_map(move |cpu| [base + cpu * MAIN_SLOT, exception + cpu * EXCEPTION_SLOT])
}

/// The MMU settings secondary CPUs load before their first memory access
/// with translation on; written by the boot CPU before it starts them.
#[no_mangle]
pub static mut SECONDARY_MMU: super::mmu::MmuConfig =
    super::mmu::MmuConfig { mair: 0, tcr: 0, ttbr: 0 };

/// The physical address secondary CPUs start at (for PSCI `CPU_ON`).
pub fn secondary_entry_address() -> u64 {
    extern "C" {
        fn duet_secondary_entry();
    }
    duet_secondary_entry as *const () as u64
}

/// The index the next CPU released from a spin table takes (it arrives
/// with no argument of its own); written by the boot CPU before each release.
#[no_mangle]
pub static mut SPIN_TABLE_INDEX: u64 = 0;

/// The physical address CPUs released from a spin table start at.
pub fn spin_table_entry_address() -> u64 {
    extern "C" {
        fn duet_spin_table_entry();
    }
    duet_spin_table_entry as *const () as u64
}

// arm64 Image header flags: little endian, 4 KiB pages, may be placed anywhere.
const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);
const R_AARCH64_RELATIVE: u64 = 1027;
// CPTR_EL2 without VHE: RES1 bits, FP/SIMD not trapped, SVE (TZ) and SME (TSM) trapped.
const CPTR_EL2_VALUE: u64 = 0x33ff;
// SCTLR_EL2 without VHE: RES1 bits, stack alignment check; MMU and caches off.
const SCTLR_EL2_MMU_OFF: u64 = 0x30c5_0838;
// SCTLR_EL2.{M, C, I}.
const SCTLR_EL2_MMU_ON: u64 = (1 << 0) | (1 << 2) | (1 << 12);

global_asm!(
    r#"
// Points SP_EL2 at the exception stack and SP_EL0 at the main stack of
// CPU \cpu, and selects SP_EL0. Clobbers x1 and x2.
.macro set_stacks cpu
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    add     x1, x1, #{exception_offset_hi}, lsl #12
    add     x1, x1, #{exception_offset_lo}
    mov     x2, #{exception_slot}
    madd    x1, \cpu, x2, x1
    add     x1, x1, x2
    msr     spsel, #1
    mov     sp, x1
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    movz    x2, #{main_slot_hi}, lsl #16
    movk    x2, #{main_slot_lo}
    madd    x1, \cpu, x2, x1
    add     x1, x1, x2
    msr     spsel, #0
    mov     sp, x1
.endm

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry
    .long   0
    .quad   0x80000                 // text_offset
    .quad   __image_size            // image_size, .bss and stacks included
    .quad   {flags}
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    mov     x19, x0                 // the device tree, from the bootloader
    adr     x20, _start             // where the image was loaded

    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
1:  cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16
    ldr     x5, [x1], #8
    cmp     x4, #{r_relative}
    b.ne    1b                      // the build checks there are no others
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       1b

2:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b

4:  mrs     x0, CurrentEL
    ubfx    x0, x0, #2, #2
    cmp     x0, #2
    b.ne    5f
    mov     x3, #0
    set_stacks x3
    mov     x1, #{cptr}
    msr     cptr_el2, x1
    movz    x1, #{sctlr_hi}, lsl #16
    movk    x1, #{sctlr_lo}
    msr     sctlr_el2, x1
    isb
    mov     x0, x19
    mov     x1, x20
    bl      {primary}
    b       .

    // Not at EL2: one stack will do; report it.
5:  adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    movz    x2, #{main_slot_hi}, lsl #16
    movk    x2, #{main_slot_lo}
    add     sp, x1, x2
    mov     x1, x0
    mov     x0, x19
    bl      {wrong_el}
    b       .

// A secondary CPU released from a spin table, at EL2, MMU off: it takes the
// index the boot CPU left for it and goes on as if started by PSCI.
.section .text
.global duet_spin_table_entry
duet_spin_table_entry:
    adrp    x0, {spin_index}
    add     x0, x0, :lo12:{spin_index}
    ldr     x0, [x0]
    b       duet_secondary_entry

// A secondary CPU, started by PSCI CPU_ON at EL2 with its index in x0.
.global duet_secondary_entry
duet_secondary_entry:
    mov     x19, x0
    mov     x1, #{cptr}
    msr     cptr_el2, x1
    movz    x1, #{sctlr_hi}, lsl #16
    movk    x1, #{sctlr_lo}
    msr     sctlr_el2, x1
    isb
    // The boot CPU's map, before any load or store with the MMU on.
    adrp    x1, {mmu}
    add     x1, x1, :lo12:{mmu}
    ldp     x2, x3, [x1]
    ldr     x4, [x1, #16]
    msr     mair_el2, x2
    msr     tcr_el2, x3
    msr     ttbr0_el2, x4
    isb
    tlbi    alle2
    dsb     nsh
    isb
    mrs     x1, sctlr_el2
    mov     x2, #{sctlr_on}
    orr     x1, x1, x2
    msr     sctlr_el2, x1
    isb
    set_stacks x19
    mov     x0, x19
    bl      {secondary}
    b       .
"#,
    stacks = sym STACKS,
    main_slot_hi = const MAIN_SLOT >> 16,
    main_slot_lo = const MAIN_SLOT & 0xffff,
    exception_slot = const EXCEPTION_SLOT,
    exception_offset_hi = const core::mem::offset_of!(Stacks, exception) >> 12,
    exception_offset_lo = const core::mem::offset_of!(Stacks, exception) & 0xfff,
    flags = const IMAGE_FLAGS,
    r_relative = const R_AARCH64_RELATIVE,
    cptr = const CPTR_EL2_VALUE,
    sctlr_hi = const SCTLR_EL2_MMU_OFF >> 16,
    sctlr_lo = const SCTLR_EL2_MMU_OFF & 0xffff,
    sctlr_on = const SCTLR_EL2_MMU_ON,
    mmu = sym SECONDARY_MMU,
    spin_index = sym SPIN_TABLE_INDEX,
    primary = sym crate::boot::primary_main,
    wrong_el = sym crate::boot::wrong_el_main,
    secondary = sym crate::smp::secondary_main,
);
