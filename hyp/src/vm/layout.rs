//! Duet's virtual platform: the one board every guest sees, whatever the
//! physical board. It mirrors QEMU `virt`, so a kernel that boots there boots
//! on Duet unmodified, and a persona image moves between devices unchanged.
//! Only the GIC version follows the hardware (v3 on QEMU virt, v2 on the
//! GIC-400 of the Raspberry Pi 4).

/// Guest RAM starts here (intermediate physical address).
pub const RAM_BASE: u64 = 0x4000_0000;

/// The GIC distributor.
pub const GICD_BASE: u64 = 0x0800_0000;
pub const GICD_SIZE: u64 = 0x1_0000;
/// GICv2 only: the CPU interface (backed by the hardware's GICV frame).
pub const GICC_BASE: u64 = 0x0801_0000;
pub const GICC_SIZE: u64 = 0x2000;
/// GICv3 only: one redistributor per vCPU, 128 KiB each (RD and SGI frames).
pub const GICR_BASE: u64 = 0x080a_0000;
pub const GICR_STRIDE: u64 = 0x2_0000;

/// The guest console, an emulated PL011.
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// Its interrupt: SPI 1.
pub const UART_INTID: u32 = 32 + 1;

/// virtio-mmio transports: slot `n` at `VIRTIO_BASE + n * VIRTIO_STRIDE`,
/// interrupt SPI 16 + n.
pub const VIRTIO_BASE: u64 = 0x0a00_0000;
pub const VIRTIO_STRIDE: u64 = 0x200;
pub const VIRTIO_SLOTS: u32 = 32;
pub const VIRTIO_FIRST_INTID: u32 = 32 + 16;

/// Architected timer PPIs, as INTIDs.
pub const TIMER_SECURE_PHYS_INTID: u32 = 16 + 13;
pub const TIMER_PHYS_INTID: u32 = 16 + 14;
pub const TIMER_VIRT_INTID: u32 = 16 + 11;
pub const TIMER_HYP_INTID: u32 = 16 + 10;
/// The GIC maintenance interrupt, as the guest's device tree names it.
pub const GIC_MAINTENANCE_INTID: u32 = 16 + 9;

/// SPIs the virtual distributor implements (INTIDs 32..32 + SPI_COUNT).
pub const SPI_COUNT: u32 = 64;

/// The most vCPUs one VM may have.
pub const MAX_VCPUS: usize = 8;

/// The MPIDR affinity of vCPU `index` (Aff0 = index, as on QEMU virt).
pub const fn vcpu_mpidr(index: usize) -> u64 {
    index as u64
}
