//! Raspberry Pi 4 Model B: the BCM2711 with four Cortex-A72 cores and an
//! Arm GIC-400 (GICv2 with the virtualization extensions). Developers run
//! Duet on it from an SD card (`cargo xtask image --board rpi4`, see
//! docs/boards/rpi4.md) or under QEMU's `raspi4b` model.
//!
//! How Duet gets going here: the Pi's firmware (or QEMU standing in for it)
//! loads the raw image `kernel8.img` at 0x80000 and enters it at EL2 with
//! the device tree in x0, like a Linux `Image`; secondary CPUs wait on a spin
//! table (`cpu-release-addr`), not PSCI; there is no PSCI at all, so Duet
//! powers the board off through the BCM2835 power-management watchdog. The
//! hypervisor learns all of this from the device tree; the constants below
//! are what that tree says, kept for the tests and docs.

use crate::{Board, Qemu};

pub const BOARD: Board = Board {
    name: "rpi4",
    description: "Raspberry Pi 4 Model B (BCM2711, GIC-400), QEMU raspi4b, 4 CPUs, 2 GiB",
    qemu: Qemu {
        machine: "raspi4b",
        cpu: "cortex-a72",
        cpus: 4,
        cpus_fixed: true,
        memory_mib: 2048,
        extra_args: &[],
        // QEMU's raspi4b makes no device tree; the one Debian's kernel
        // package ships for the board is what the Pi's firmware also uses.
        dtb: Some("broadcom/bcm2711-rpi-4-b.dtb"),
    },
};

/// Where the firmware (and QEMU's `-kernel` for a raw image) loads and
/// enters the 64-bit kernel image.
pub const LOAD_ADDRESS: u64 = 0x8_0000;
/// The file the firmware loads, on the SD card's FAT boot partition.
pub const KERNEL_FILE: &str = "kernel8.img";

/// The GIC-400's frames as the CPU sees them (the device tree gives them as
/// `soc` bus addresses 0x4004_1000.. under a `ranges` window to 0xff80_0000).
pub mod gic {
    pub const DISTRIBUTOR: u64 = 0xff84_1000;
    pub const CPU_INTERFACE: u64 = 0xff84_2000;
    pub const HYPERVISOR: u64 = 0xff84_4000;
    pub const VIRTUAL_CPU: u64 = 0xff84_6000;
    pub const LIST_REGISTERS: usize = 4;
}

/// The PL011 (UART0, GPIO 14/15, the serial console Duet uses).
pub const PL011: u64 = 0xfe20_1000;
/// The power-management watchdog (PM block), Duet's way to power off.
pub const PM_WATCHDOG: u64 = 0xfe10_0000;

/// The firmware files a Pi 4 boots from (Debian's `raspi-firmware`): the
/// VideoCore firmware and its memory-split table. Older Pis' files
/// (bootcode.bin, start.elf) are not needed.
pub const FIRMWARE_FILES: &[&str] = &["start4.elf", "fixup4.dat"];
/// The device tree the firmware loads and hands over (from Debian's
/// kernel package, as for QEMU).
pub const DTB_FILE: &str = "bcm2711-rpi-4-b.dtb";
/// Duet's persona package on the boot partition, loaded by the firmware as
/// the "initramfs" right after the kernel.
pub const PACKAGE_FILE: &str = "duet-personas.pkg";
