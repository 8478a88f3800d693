//! The first instructions: an arm64 `Image` header, the image's own
//! relocations applied where it was loaded, `.bss` cleared, a stack, then
//! Rust. The second CPU, started with PSCI CPU_ON, enters at
//! `bench_secondary_entry` on its own stack.

use crate::{arch, bench, console, vectors};
use core::arch::global_asm;
use duet_bench_guest::platform::Platform;

const R_AARCH64_RELATIVE: u64 = 1027;

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       1f
    .long   0
    .quad   0x200000            // text_offset
    .quad   __image_size        // .bss and stacks included
    .quad   0xa                 // little endian, 4 KiB pages, anywhere in RAM
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
1:  mov     x19, x0             // the device tree
    adr     x20, _start         // where the image was loaded
    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
2:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16
    ldr     x5, [x1], #8
    cmp     x4, #{r_relative}
    b.ne    2b
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       2b
3:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       4b
5:  adrp    x1, __stack0_top
    add     sp, x1, :lo12:__stack0_top
    mov     x0, x19
    bl      {main}
    b       .

.section .text
.global bench_secondary_entry
bench_secondary_entry:
    adrp    x1, __stack1_top
    add     sp, x1, :lo12:__stack1_top
    bl      {secondary}
    b       .
"#,
    r_relative = const R_AARCH64_RELATIVE,
    main = sym main,
    secondary = sym secondary_main,
);

/// Where the second CPU starts (a physical address: the MMU stays off).
pub fn secondary_entry() -> u64 {
    extern "C" {
        fn bench_secondary_entry();
    }
    bench_secondary_entry as *const () as u64
}

extern "C" fn main(device_tree: u64) -> ! {
    vectors::install();
    let blob = device_tree_blob(device_tree);
    let platform = match Platform::from_blob(blob) {
        Ok(platform) => platform,
        Err(e) => {
            // Without a usable tree there is no console to say why on:
            // try to power off through the conduit the guest requires.
            let _ = e;
            arch::power_off()
        }
    };
    console::init(platform.uart);
    arch::set_conduit(platform.conduit);
    bench::run(&platform)
}

extern "C" fn secondary_main() -> ! {
    vectors::install();
    bench::secondary()
}

/// The device tree at `address`, as long as its header says (at most 2 MiB).
fn device_tree_blob(address: u64) -> &'static [u8] {
    // SAFETY: the loader put a device tree at `address` in RAM (x0 of the
    // arm64 boot protocol); its header's first 8 bytes are readable.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, 8) };
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // SAFETY: the tree's own size, capped; nothing writes it while we run.
    unsafe { core::slice::from_raw_parts(address as *const u8, size.min(2 << 20)) }
}
