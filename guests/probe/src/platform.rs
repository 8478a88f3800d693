//! The addresses the probe knows. [`virt`] is Duet's virtual platform, the
//! board every guest is given (it mirrors QEMU `virt`). [`host`] is QEMU
//! `virt`'s physical map as Duet runs on it: where Duet, the other VMs and
//! the real devices live. A guest's intermediate physical addresses share
//! the numbers but not the meaning: in its IPA space, everything outside its
//! own RAM and its emulated devices must be a hole.

/// Duet's virtual platform (`duet::vm::layout`; a host test keeps the two
/// equal).
pub mod virt {
    pub const RAM_BASE: u64 = 0x4000_0000;
    pub const GICD_BASE: u64 = 0x0800_0000;
    pub const GICR_BASE: u64 = 0x080a_0000;
    /// One redistributor per vCPU: RD frame then SGI frame, 64 KiB each.
    pub const GICR_STRIDE: u64 = 0x2_0000;
    pub const GICR_SGI_FRAME: u64 = 0x1_0000;
    pub const UART_BASE: u64 = 0x0900_0000;
    pub const UART_SIZE: u64 = 0x1000;
    pub const VIRTIO_BASE: u64 = 0x0a00_0000;
    pub const VIRTIO_STRIDE: u64 = 0x200;
    pub const VIRTIO_SLOTS: u64 = 32;
    /// Bits of guest-physical address every stage-2 map takes (1 TiB).
    pub const IPA_BITS: u32 = 40;
    pub const IPA_LIMIT: u64 = 1 << IPA_BITS;
}

/// QEMU `virt`'s physical map (hw/arm/virt.c), 2 GiB of RAM as
/// `cargo xtask run` starts it.
pub mod host {
    pub const FLASH0: u64 = 0x0000_0000;
    pub const FLASH1: u64 = 0x0400_0000;
    /// GICv2 frames, present on a GICv2 board; on QEMU's GICv3 board
    /// nothing, and in a guest's IPA space never anything.
    pub const GICV2_CPU: u64 = 0x0801_0000;
    pub const GICV2M: u64 = 0x0802_0000;
    pub const GICV2_HYP: u64 = 0x0803_0000;
    pub const GICV2_VCPU: u64 = 0x0804_0000;
    pub const GIC_ITS: u64 = 0x0808_0000;
    /// Physical redistributors: one per physical CPU (4 under xtask).
    pub const GICR_BASE: u64 = 0x080a_0000;
    pub const RTC: u64 = 0x0901_0000;
    pub const FW_CFG: u64 = 0x0902_0000;
    pub const GPIO: u64 = 0x0903_0000;
    pub const SECURE_UART: u64 = 0x0904_0000;
    pub const SMMU: u64 = 0x0905_0000;
    pub const VIRTIO_MMIO: u64 = 0x0a00_0000;
    pub const PLATFORM_BUS: u64 = 0x0c00_0000;
    pub const SECURE_RAM: u64 = 0x0e00_0000;
    pub const PCIE_MMIO: u64 = 0x1000_0000;
    pub const PCIE_PIO: u64 = 0x3eff_0000;
    pub const PCIE_ECAM: u64 = 0x3f00_0000;
    pub const RAM_BASE: u64 = 0x4000_0000;
    pub const RAM_END: u64 = 0xc000_0000;
    /// Where QEMU loads Duet (`-kernel`, text offset 0x80000).
    pub const DUET_IMAGE: u64 = 0x4008_0000;
    /// Where QEMU loads the persona package (`-initrd`): 128 MiB into RAM.
    pub const PERSONA_PACKAGE: u64 = 0x4800_0000;
    pub const PCIE_ECAM_HIGH: u64 = 0x40_1000_0000;
    pub const PCIE_MMIO_HIGH: u64 = 0x80_0000_0000;
}

/// The arm64 `Image` header's magic ("ARM\x64"), at offset 0x38: what
/// Duet's own image would show if a guest could read it.
pub const IMAGE_MAGIC: u32 = 0x644d_5241;
pub const IMAGE_MAGIC_OFFSET: u64 = 0x38;

#[cfg(test)]
mod tests {
    use super::*;
    use duet::vm::layout;

    #[test]
    fn the_virtual_platform_is_duet_s() {
        assert_eq!(virt::RAM_BASE, layout::RAM_BASE);
        assert_eq!(virt::GICD_BASE, layout::GICD_BASE);
        assert_eq!(virt::GICR_BASE, layout::GICR_BASE);
        assert_eq!(virt::GICR_STRIDE, layout::GICR_STRIDE);
        assert_eq!(virt::UART_BASE, layout::UART_BASE);
        assert_eq!(virt::UART_SIZE, layout::UART_SIZE);
        assert_eq!(virt::VIRTIO_BASE, layout::VIRTIO_BASE);
        assert_eq!(virt::VIRTIO_STRIDE, layout::VIRTIO_STRIDE);
        assert_eq!(virt::VIRTIO_SLOTS, u64::from(layout::VIRTIO_SLOTS));
        assert_eq!(host::GICV2_CPU, layout::GICC_BASE);
    }

    #[test]
    fn the_image_magic_is_what_the_bytes_say() {
        assert_eq!(IMAGE_MAGIC.to_le_bytes(), *b"ARM\x64");
    }
}
