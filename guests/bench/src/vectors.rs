//! The exception vectors. An IRQ reads the virtual counter first thing (so
//! a latency figure starts at the vector, not after the register saves)
//! and hands it to `bench::interrupt`. A synchronous exception is expected
//! only while a probing read runs (`probe_read32`): it is recorded and the
//! read skipped. Anything else is reported, and the guest powers off.

use crate::{arch, bench};
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, Ordering};

global_asm!(
    r#"
.section .text
.balign 0x800
.global bench_vectors
bench_vectors:
    .set entry, 0
    .rept 16
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp]
    mrs     x1, cntvct_el0      // exception entry synchronises: no isb needed
    mov     x0, #entry
    b       bench_exception
    .set entry, entry + 1
    .endr

bench_exception:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x29, [sp, #16 * 9]
    str     x30, [sp, #16 * 10]
    bl      {handler}
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x29, [sp, #16 * 9]
    ldr     x30, [sp, #16 * 10]
    ldp     x0, x1, [sp]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const 16 * 11 + 8 + 8,
    handler = sym on_exception,
);

/// Vector entries: current EL with SP_ELx, synchronous and IRQ.
const SYNC_CURRENT: u64 = 4;
const IRQ_CURRENT: u64 = 5;

/// Set while a probing read runs; set FAULTED if it took an exception.
static PROBING: AtomicBool = AtomicBool::new(false);
static FAULTED: AtomicBool = AtomicBool::new(false);

/// Points VBAR_EL1 at the vectors.
pub fn install() {
    extern "C" {
        static bench_vectors: u8;
    }
    // SAFETY: the vectors are code of this image, aligned as VBAR needs;
    // taking their address reads nothing.
    unsafe { asm!("msr vbar_el1, {}", "isb", in(reg) core::ptr::addr_of!(bench_vectors)) };
}

/// Reads the 32-bit device register at `address`; None if the read took
/// an exception (no device there, whatever the device tree said).
pub fn probe_read32(address: u64) -> Option<u32> {
    FAULTED.store(false, Ordering::SeqCst);
    PROBING.store(true, Ordering::SeqCst);
    let value: u32;
    // SAFETY: one load; if it faults, the handler skips it (and w0 keeps
    // whatever it held, which the FAULTED flag makes us ignore).
    unsafe { asm!("ldr {0:w}, [{1}]", out(reg) value, in(reg) address, options(nostack)) };
    PROBING.store(false, Ordering::SeqCst);
    (!FAULTED.load(Ordering::SeqCst)).then_some(value)
}

extern "C" fn on_exception(entry: u64, counter: u64) {
    if entry == IRQ_CURRENT {
        bench::interrupt(counter);
        return;
    }
    let (esr, far, elr): (u64, u64, u64);
    // SAFETY: reading the EL1 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr);
        asm!("mrs {}, far_el1", out(reg) far);
        asm!("mrs {}, elr_el1", out(reg) elr);
    }
    if entry == SYNC_CURRENT && PROBING.load(Ordering::SeqCst) {
        FAULTED.store(true, Ordering::SeqCst);
        // SAFETY: resumes after the faulting 4-byte load.
        unsafe { asm!("msr elr_el1, {}", in(reg) elr + 4) };
        return;
    }
    say!("bench: unexpected exception (vector entry {entry}): ESR {esr:#x}, FAR {far:#x}, ELR {elr:#x}");
    arch::power_off()
}
