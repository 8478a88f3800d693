//! The probe's exception vectors, and recovering from the exceptions its
//! attempts provoke.
//!
//! Every deliberate fault happens inside a leaf function of
//! `.text.guarded` (see `guarded`), called through [`guarded`]. Such a
//! function never touches the stack or x30, so when it faults the handler
//! records the syndrome and resumes at x30: the call returns to its caller,
//! which then finds the exception in [`guarded`]'s result. A branch into a
//! hole faults at its target instead; [`guarded_jump`] allows that one
//! case. Any other exception is a bug in the probe: it is reported and the
//! probe powers off.

use crate::smccc;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use duet_probe::report::Exception;

global_asm!(
    r#"
// 16 entries of 0x80 bytes: (current EL with SP_EL0, current EL with
// SP_ELx, lower EL AArch64, lower EL AArch32) x (sync, IRQ, FIQ, SError).
// Each saves x0 and x1, puts its number in x1 and joins the common path.
.section .text
.balign 0x800
.global probe_vectors
probe_vectors:
    .set entry, 0
    .rept 16
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp]
    mov     x1, #entry
    b       probe_exception
    .set entry, entry + 1
    .endr

probe_exception:
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
    str     x30, [sp, #16 * 15]
    mov     x0, sp
    bl      {handler}
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
    ldr     x30, [sp, #16 * 15]
    ldp     x0, x1, [sp]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const core::mem::size_of::<Frame>(),
    handler = sym on_exception,
);

/// The interrupted context's general registers, as the vector saved them.
#[repr(C)]
struct Frame {
    x: [u64; 31],
    _pad: u64,
}

/// The vector entry a synchronous exception from EL1 on SP_EL1 takes: the
/// only kind the probe expects (it runs at EL1h with interrupts masked).
const SYNC_CURRENT_EL_SPX: u64 = 4;
const ENTRY_NAMES: [&str; 4] = ["sync", "IRQ", "FIQ", "SError"];

/// SPSR_EL1 to resume with: EL1h, every exception masked. It also clears
/// PSTATE.IL, which an illegal exception return leaves set.
const SPSR_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;

/// Set while a guarded call runs.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Set while a guarded jump runs: the fault may then be anywhere.
static JUMPING: AtomicBool = AtomicBool::new(false);
static FAULTED: AtomicBool = AtomicBool::new(false);
static FAULT_ESR: AtomicU64 = AtomicU64::new(0);
static FAULT_FAR: AtomicU64 = AtomicU64::new(0);

/// Points VBAR_EL1 at the vectors.
pub fn install() {
    extern "C" {
        static probe_vectors: u8;
    }
    // SAFETY: the vectors are code of this image, aligned as VBAR needs;
    // taking their address reads nothing.
    unsafe {
        asm!("msr vbar_el1, {}", "isb", in(reg) core::ptr::addr_of!(probe_vectors));
    }
}

/// Runs `call`, which must call one function of `guarded` and nothing else
/// that can fault; returns its result, or the exception it took.
pub fn guarded<T>(call: impl FnOnce() -> T) -> Result<T, Exception> {
    FAULTED.store(false, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let value = call();
    ARMED.store(false, Ordering::SeqCst);
    if FAULTED.load(Ordering::SeqCst) {
        Err(Exception {
            esr: FAULT_ESR.load(Ordering::SeqCst),
            far: FAULT_FAR.load(Ordering::SeqCst),
        })
    } else {
        Ok(value)
    }
}

/// Branches to `target` (through `guarded::probe_jump`), expecting the
/// instruction fetch there to fault; `Ok` if it came back without one.
pub fn guarded_jump(target: u64) -> Result<(), Exception> {
    JUMPING.store(true, Ordering::SeqCst);
    // SAFETY: a branch to `target`; whatever happens there ends in an
    // exception, from which the handler returns to this call's caller.
    let result = guarded(|| unsafe { crate::guarded::probe_jump(target) });
    JUMPING.store(false, Ordering::SeqCst);
    result.map(|_| ())
}

fn guarded_text(pc: u64) -> bool {
    extern "C" {
        static __guarded_start: u8;
        static __guarded_end: u8;
    }
    // Linker symbols: only their addresses are taken.
    let start = core::ptr::addr_of!(__guarded_start) as u64;
    let end = core::ptr::addr_of!(__guarded_end) as u64;
    (start..end).contains(&pc)
}

extern "C" fn on_exception(frame: &mut Frame, entry: u64) {
    let (esr, far, elr): (u64, u64, u64);
    // SAFETY: reading the EL1 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr);
        asm!("mrs {}, far_el1", out(reg) far);
        asm!("mrs {}, elr_el1", out(reg) elr);
    }
    let expected = entry == SYNC_CURRENT_EL_SPX
        && ARMED.load(Ordering::SeqCst)
        && (guarded_text(elr) || JUMPING.load(Ordering::SeqCst));
    if !expected {
        unexpected(entry, esr, far, elr);
    }
    FAULT_ESR.store(esr, Ordering::SeqCst);
    FAULT_FAR.store(far, Ordering::SeqCst);
    FAULTED.store(true, Ordering::SeqCst);
    let resume = frame.x[30];
    // SAFETY: returns from the guarded leaf function to its caller, at
    // EL1h with exceptions masked, as it was called.
    unsafe {
        asm!("msr elr_el1, {}", "msr spsr_el1, {}", in(reg) resume, in(reg) SPSR_EL1H_MASKED);
    }
}

fn unexpected(entry: u64, esr: u64, far: u64, elr: u64) -> ! {
    let kind = ENTRY_NAMES[(entry % 4) as usize];
    say!(
        "probe: unexpected {kind} exception (vector entry {entry}): ESR {esr:#x}, FAR {far:#x}, \
         ELR {elr:#x}; powering off"
    );
    smccc::power_off()
}
