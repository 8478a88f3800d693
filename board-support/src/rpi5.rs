//! Raspberry Pi 5: the BCM2712 with four Cortex-A76 cores, a GIC-400, and
//! most I/O (including the 40-pin header's UARTs) behind the RP1 chip on
//! PCIe. No emulator models it, so it is not in [`crate::BOARDS`]: nothing
//! here has run. What differs from the Pi 4 is described in
//! docs/boards/rpi5.md; the facts below are from the BCM2712 device tree
//! (`bcm2712-rpi-5-b.dtb` in Debian's kernel package) and the Pi firmware
//! documentation, kept for when Duet supports the board.

/// The firmware loads `kernel_2712.img` if present, else `kernel8.img`, at
/// 0x80000 and enters it at EL2 with the device tree in x0 (as on the Pi 4).
pub const LOAD_ADDRESS: u64 = 0x8_0000;
pub const KERNEL_FILE: &str = "kernel_2712.img";

/// The GIC-400 (GICv2 with the virtualization extensions), as the CPU sees
/// it: GICD, GICC, GICH, GICV at 0x10_7fff_9000.. (40-bit addresses; the
/// tree gives them under the `soc` bus, `ranges` to 0x10_0000_0000).
pub mod gic {
    pub const DISTRIBUTOR: u64 = 0x10_7fff_9000;
    pub const CPU_INTERFACE: u64 = 0x10_7fff_a000;
    pub const HYPERVISOR: u64 = 0x10_7fff_c000;
    pub const VIRTUAL_CPU: u64 = 0x10_7fff_e000;
}

/// The debug UART (a PL011 on the 3-pin JST connector between the HDMI
/// ports, `uart10` in the tree): the one console that needs no PCIe and no
/// RP1 driver, so Duet's console on the Pi 5.
pub const DEBUG_PL011: u64 = 0x10_7d00_1000;

/// The firmware starts secondary CPUs through PSCI (Arm Trusted Firmware's
/// BL31, loaded by the Pi 5 firmware), not a spin table as on the Pi 4.
pub const SECONDARIES_BY_PSCI: bool = true;
