//! The EL2 exception vector table. Each entry saves the interrupted state as
//! a [`TrapFrame`] on this CPU's exception stack (SP_EL2; Duet's own code runs
//! on SP_EL0, see `entry`) and calls [`el2_exception`]; if that returns, the
//! state is restored and execution resumes.
//!
//! Exceptions taken at EL2 itself are unexpected and end in a crash report
//! (Duet runs with interrupts masked and waits for them with WFI). Exits from
//! a guest arrive through the lower-EL entries and take the short path in
//! `guest`, which returns to the code that entered the guest.

use crate::arch::frame::{TrapFrame, Vector};
use core::arch::global_asm;

global_asm!(
    r#"
.macro vector_entry index
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp]
    mov     x0, #\index
    b       duet_el2_trap
.endm

// A guest exit: keep the guest's x0 and x1 on the exception stack, pass the
// kind (0 synchronous, 1 IRQ, 2 FIQ, 3 SError) in x1 (see `guest`).
.macro guest_exit_entry kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\kind
    b       duet_guest_exit
.endm

.section .text.vectors, "ax"
.balign 0x800
.global duet_el2_vectors
duet_el2_vectors:
    .irp index, 0, 1, 2, 3, 4, 5, 6, 7
    vector_entry \index
    .endr
    // From a guest, AArch64 then AArch32.
    .irp kind, 0, 1, 2, 3, 0, 1, 2, 3
    guest_exit_entry \kind
    .endr

duet_el2_trap:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    // The interrupted stack: SP_EL0 for the first four entries, else SP_EL2.
    mrs     x1, sp_el0
    add     x2, sp, #{frame_size}
    cmp     x0, #4
    csel    x1, x1, x2, lo
    stp     x30, x1, [sp, #{sp_offset} - 8]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x1, x2, [sp, #{elr_offset}]
    mrs     x1, esr_el2
    mrs     x2, far_el2
    stp     x1, x2, [sp, #{esr_offset}]
    mov     x1, sp
    bl      {handler}
    ldp     x1, x2, [sp, #{elr_offset}]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldr     x30, [sp, #{sp_offset} - 8]
    add     sp, sp, #{frame_size}
    eret
"#,
    frame_size = const TrapFrame::SIZE,
    sp_offset = const TrapFrame::SP_OFFSET,
    elr_offset = const TrapFrame::ELR_OFFSET,
    esr_offset = const TrapFrame::ESR_OFFSET,
    handler = sym el2_exception,
);

/// Points VBAR_EL2 at the vector table.
pub fn install() {
    use aarch64_cpu::registers::{Writeable, VBAR_EL2};
    extern "C" {
        static duet_el2_vectors: u8;
    }
    VBAR_EL2.set((&raw const duet_el2_vectors) as u64);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

extern "C" fn el2_exception(index: u64, frame: &mut TrapFrame) {
    crate::crash::unexpected_exception(Vector::from_index(index), frame);
}
