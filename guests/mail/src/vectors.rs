//! The exception vector table (VBAR_EL1), for fatal exceptions only: the
//! guest expects none (IRQs stay masked, `gic.rs` waits for them with WFI),
//! so any exception is a bug. Every entry first moves to a small emergency
//! stack of its own (a stack overflow faults with SP in the guard page, so
//! the faulting stack is unusable), then calls [`fatal`], which prints one
//! line straight to the PL011 (no heap, no lock: either may be what broke)
//! and powers the VM off, as `entry::stop` does.

use crate::{console, mmu, psci};
use aarch64_cpu::registers::{Readable, ELR_EL1, ESR_EL1, FAR_EL1};
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};
use duet_mail::fault::Fatal;

/// The emergency stack: enough for formatting one line.
const EMERGENCY_STACK: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; EMERGENCY_STACK]);

/// Only the vectors use it (as a stack, from assembly); Rust never touches
/// its bytes.
static mut EMERGENCY: Stack = Stack([0; EMERGENCY_STACK]);

// Sixteen entries of 0x80 bytes, the table 2 KiB aligned (the
// architecture's layout). Each sets SP to the emergency stack's top and
// calls `fatal` with its own index; nothing returns.
global_asm!(
    r#"
.section .text.vectors, "ax"
.balign 0x800
.global mail_vectors
mail_vectors:
.set index, 0
.rept 16
    .balign 0x80
    adrp    x9, {stack} + {size}
    add     x9, x9, :lo12:{stack} + {size}
    mov     sp, x9
    mov     x0, #index
    bl      {fatal}
    b       .
.set index, index + 1
.endr
"#,
    stack = sym EMERGENCY,
    size = const EMERGENCY_STACK,
    fatal = sym fatal,
);

extern "C" {
    static mail_vectors: u8;
}

/// Points VBAR_EL1 at the table. First thing at boot.
pub fn install() {
    let table = core::ptr::addr_of!(mail_vectors) as u64;
    // SAFETY: writing VBAR_EL1 changes only where exceptions go; the
    // table's entries are complete code.
    unsafe {
        core::arch::asm!("msr vbar_el1, {}", "isb", in(reg) table, options(nostack));
    }
}

/// Set once the guest is reporting a fault: a fault in the report itself
/// powers off without a word rather than looping.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Says what the exception was, and powers the VM off.
extern "C" fn fatal(vector: u64) -> ! {
    if FAILING.swap(true, Ordering::Relaxed) {
        psci::power_off();
    }
    let fault = Fatal {
        vector,
        esr: ESR_EL1.get(),
        far: FAR_EL1.get(),
        elr: ELR_EL1.get(),
        guard: mmu::guard(),
    };
    console::early(format_args!("mail: fatal: {fault}; powering off"));
    psci::power_off()
}
