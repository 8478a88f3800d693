//! The first instructions: an arm64 `Image` header (Duet loads the probe
//! like a Linux kernel), `.bss` cleared, the stack set, then Rust. `main`
//! reads the device tree Duet passed in x0, picks the mode the command
//! line asks for, and runs it.

use crate::{attack, checks, exceptions, gic, hunt, listen, plant, smccc, timer, virtio};
use core::arch::{asm, global_asm};
use core::ops::Range;
use duet_probe::bootargs::{self, Mode};
use duet_probe::fdt::{self, DeviceTree, Memory};

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
    // x0 holds the device tree's address until `main` takes it.
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
    bl      {main}
    b       .
"#,
    main = sym main,
);

/// What every mode may need to know about where it runs.
#[derive(Clone, Copy, Debug)]
pub struct Guest {
    /// Its RAM, from the device tree.
    pub ram: Memory,
    /// The probe's own image: code, data, page tables and stack.
    pub image: (u64, u64),
    /// The device tree, which lies in RAM too.
    pub device_tree: (u64, u64),
}

impl Guest {
    pub fn ram_end(&self) -> u64 {
        self.ram.base + self.ram.size
    }

    /// Whether `address` is in the guest's RAM.
    pub fn owns(&self, address: u64) -> bool {
        (self.ram.base..self.ram_end()).contains(&address)
    }

    pub fn image(&self) -> Range<u64> {
        self.image.0..self.image.1
    }

    pub fn device_tree(&self) -> Range<u64> {
        self.device_tree.0..self.device_tree.1
    }
}

extern "C" fn main(device_tree: u64) -> ! {
    exceptions::install();
    let el = current_el();
    let tree = read_device_tree(device_tree);
    let info = match fdt::boot_info(&tree) {
        Ok(info) => info,
        Err(e) => stop(format_args!("cannot read the device tree: {e:?}")),
    };
    let mode = match bootargs::parse(info.bootargs) {
        Ok(mode) => mode,
        Err(e) => stop(format_args!("bad command line {:?}: {e}", info.bootargs)),
    };
    gic::enable_timer_interrupt();
    if let Mode::Hunt { delay, .. } = mode {
        // The hunter gives the planter time to plant and to say so, and
        // keeps quiet meanwhile: the VMs share one console, where lines
        // printed at the same time mix.
        timer::sleep(timer::seconds(delay));
    }
    let memory = info.memory;
    say!(
        "probe: started at EL{el}; {} MiB of RAM at {:#x}; command line {:?}",
        memory.size >> 20,
        memory.base,
        info.bootargs
    );
    if el != 1 {
        stop(format_args!("the probe runs at EL1 only"));
    }
    let guest = Guest {
        ram: memory,
        image: image_range(),
        device_tree: (device_tree, device_tree + tree_size(device_tree) as u64),
    };
    match mode {
        Mode::Checks => checks::run(),
        Mode::Attack => attack::run(&guest),
        Mode::Plant { secret, linger } => plant::run(&guest, secret, linger),
        Mode::Hunt { needle, .. } => hunt::run(&guest, needle),
        Mode::Listen { linger } => listen::run(linger),
        Mode::Virtio => virtio::run(guest.ram.base, guest.ram_end()),
    }
}

/// The device tree at `address` (guest-physical; the MMU is off).
fn read_device_tree(address: u64) -> DeviceTree<'static> {
    let size = tree_size(address);
    // SAFETY: Duet placed a device tree of `size` bytes at `address` in this
    // guest's RAM, and nothing writes it while the probe runs.
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, size) };
    match DeviceTree::parse(blob) {
        Ok(tree) => tree,
        Err(e) => stop(format_args!("no device tree at {address:#x}: {e:?}")),
    }
}

fn tree_size(address: u64) -> usize {
    // SAFETY: the first 8 bytes of the device tree Duet placed at `address`.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, 8) };
    fdt::total_size(header).unwrap_or(0)
}

fn image_range() -> (u64, u64) {
    extern "C" {
        static _start: u8;
        static __image_end: u8;
    }
    // Linker symbols: only their addresses are taken.
    (core::ptr::addr_of!(_start) as u64, core::ptr::addr_of!(__image_end) as u64)
}

fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el) };
    (el >> 2) & 3
}

/// Reports why the probe cannot go on, and powers off.
pub fn stop(why: core::fmt::Arguments) -> ! {
    say!("probe: {why}; powering off");
    smccc::power_off()
}
