//! Devices Duet itself drives on the real board. Register layouts are
//! `tock-registers` structures; each driver is a thin, safe wrapper. The
//! physical virtio devices (QEMU) go through the `virtio-drivers` crate;
//! the screen and its input devices sit behind `display`'s traits.

pub mod bcm2711_gpio;
pub mod bcm2835_pm;
pub mod display;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
#[cfg(target_os = "none")]
pub mod virtio;
#[cfg(target_os = "none")]
pub mod virtio_blk;
#[cfg(target_os = "none")]
pub mod virtio_gpu;
#[cfg(target_os = "none")]
pub mod virtio_input;
#[cfg(target_os = "none")]
pub mod virtio_net;
