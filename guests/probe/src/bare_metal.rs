//! Everything that runs: entry, exception vectors, console and the checks.

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

const UART: usize = 0x0900_0000;
/// Inside the virtual platform's address space, but neither RAM nor device.
const HOLE: u64 = 0x1000_0000;
const PSCI_VERSION: u64 = 0x8400_0000;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       1f
    .long   0
    .quad   0x200000            // text_offset: 2 MiB into RAM (see link.ld)
    .quad   __image_size
    .quad   2                   // little endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
1:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  adrp    x1, __stack_top
    add     sp, x1, :lo12:__stack_top
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    isb
    bl      {main}
    b       .

// Synchronous exceptions at EL1 with SP_EL1 (offset 0x200) go to the Rust
// handler, which records the syndrome and steps over the instruction.
.balign 0x800
vectors:
    .rept 4
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    sub     sp, sp, #32
    stp     x0, x1, [sp]
    stp     x2, x30, [sp, #16]
    bl      {handler}
    ldp     x2, x30, [sp, #16]
    ldp     x0, x1, [sp]
    add     sp, sp, #32
    eret
    .rept 11
    .balign 0x80
    b       .
    .endr
"#,
    main = sym main,
    handler = sym on_exception,
);

/// The last exception's syndrome, 0 if none since it was cleared.
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_exception() {
    let (esr, far, elr): (u64, u64, u64);
    // SAFETY: reading EL1 exception registers and writing ELR_EL1 only
    // changes where this handler returns to: the next instruction.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr);
        asm!("mrs {}, far_el1", out(reg) far);
        asm!("mrs {}, elr_el1", out(reg) elr);
        asm!("msr elr_el1, {}", in(reg) elr + 4);
    }
    LAST_ESR.store(esr, Ordering::SeqCst);
    LAST_FAR.store(far, Ordering::SeqCst);
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: the PL011 data register of the virtual platform.
            unsafe { core::ptr::write_volatile(UART as *mut u32, u32::from(byte)) };
        }
        Ok(())
    }
}

macro_rules! say {
    ($($arg:tt)*) => {{ let _ = writeln!(Console, $($arg)*); }};
}

fn hvc(function: u64) -> u64 {
    let result;
    // SAFETY: an SMCCC call to the hypervisor; it clobbers only x0-x3.
    unsafe {
        asm!("hvc #0", inout("x0") function => result, out("x1") _, out("x2") _, out("x3") _);
    }
    result
}

/// Runs `f`, which should fault, and returns the exception class taken.
fn expect_exception(f: impl FnOnce()) -> Option<(u64, u64)> {
    LAST_ESR.store(0, Ordering::SeqCst);
    f();
    let esr = LAST_ESR.load(Ordering::SeqCst);
    (esr != 0).then(|| (esr >> 26, LAST_FAR.load(Ordering::SeqCst)))
}

extern "C" fn main() -> ! {
    say!("probe: started at EL{}", current_el());
    let version = hvc(PSCI_VERSION);
    say!("probe: PSCI version {}.{}", version >> 16, version & 0xffff);

    // SAFETY: a deliberate load from an address with nothing behind it.
    let abort = expect_exception(|| unsafe {
        core::ptr::read_volatile(HOLE as *const u32);
    });
    match abort {
        Some((class, far)) => {
            say!("probe: load from a hole: exception class {class:#x}, FAR {far:#x}")
        }
        None => say!("probe: load from a hole: NO EXCEPTION"),
    }

    // Give EL1 FP and SVE access (CPACR_EL1.FPEN and ZEN), so that an SVE
    // instruction goes past EL1's own traps and reaches Duet's, which Duet
    // does not handle.
    // SAFETY: changes only which instructions trap.
    unsafe {
        asm!(
            "mrs {0}, cpacr_el1",
            "orr {0}, {0}, #(3 << 16)", // ZEN
            "orr {0}, {0}, #(3 << 20)", // FPEN
            "msr cpacr_el1, {0}",
            "isb",
            out(reg) _
        )
    };
    // SAFETY: RDVL is an SVE instruction; it should fault, not run.
    let undefined = expect_exception(|| unsafe { asm!(".inst 0x04bf5020", out("x0") _) });
    match undefined {
        Some((class, _)) => say!("probe: SVE instruction: exception class {class:#x}"),
        None => say!("probe: SVE instruction: NO EXCEPTION"),
    }

    say!("probe: still running; powering off");
    hvc(PSCI_SYSTEM_OFF);
    say!("probe: SYSTEM_OFF returned");
    loop {
        // SAFETY: waiting for an interrupt has no memory effects.
        unsafe { asm!("wfi") };
    }
}

fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el) };
    (el >> 2) & 3
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    say!("probe: panic");
    loop {}
}
