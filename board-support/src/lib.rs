//! The boards Duet runs on, each described once: what it is, how QEMU
//! emulates it for development, and what the board needs from an image.
//!
//! The hypervisor learns a board from its device tree at boot; this crate is
//! the host side of the same knowledge, used by `cargo xtask` to run, test
//! and package Duet for each board. It is plain data with no dependencies,
//! so the hypervisor can share it later for board quirks.
#![no_std]

pub mod qemu_virt;
pub mod rpi4;
pub mod rpi5;

/// A board Duet supports.
#[derive(Debug)]
pub struct Board {
    /// The name used on the command line (`cargo xtask run --board NAME`).
    pub name: &'static str,
    /// One line for humans.
    pub description: &'static str,
    /// How QEMU emulates it.
    pub qemu: Qemu,
}

/// A QEMU machine that emulates a board, entering Duet at EL2.
#[derive(Debug)]
pub struct Qemu {
    /// The `-machine` value.
    pub machine: &'static str,
    /// The `-cpu` value.
    pub cpu: &'static str,
    /// CPUs, unless the user asks for another number.
    pub cpus: u32,
    /// Whether the CPU count can be changed (some boards have a fixed number).
    pub cpus_fixed: bool,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// Further arguments, always passed.
    pub extra_args: &'static [&'static str],
    /// The device tree to pass with `-dtb`, as a path inside the `broadcom/`
    /// (or other vendor) directory of Debian's arm64 kernel package, for
    /// machines whose QEMU model does not make its own (the Raspberry Pis).
    pub dtb: Option<&'static str>,
}

/// Every supported board; the first is the default.
pub const BOARDS: &[&Board] = &[&qemu_virt::BOARD, &qemu_virt::BOARD_GICV2, &rpi4::BOARD];

/// The board called `name`.
pub fn by_name(name: &str) -> Option<&'static Board> {
    BOARDS.iter().copied().find(|board| board.name == name)
}

/// The board used when none is named.
pub const fn default_board() -> &'static Board {
    BOARDS[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_are_found_by_name_and_names_are_unique() {
        assert_eq!(by_name("virt").map(|b| b.name), Some("virt"));
        assert!(by_name("nokia-3310").is_none());
        assert_eq!(
            by_name("virt-gicv2").map(|b| b.qemu.machine),
            Some("virt,virtualization=on,gic-version=2")
        );
        let pi = by_name("rpi4").expect("the Pi 4 is a board");
        assert!(pi.qemu.cpus_fixed && pi.qemu.dtb.is_some());
        for (i, a) in BOARDS.iter().enumerate() {
            assert!(BOARDS[i + 1..].iter().all(|b| b.name != a.name));
            assert!(
                a.qemu.machine.contains("virtualization=on") || a.qemu.machine.starts_with("raspi")
            );
        }
    }
}
