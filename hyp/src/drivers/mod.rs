//! Devices Duet itself drives on the real board. Register layouts are
//! `tock-registers` structures; each driver is a thin, safe wrapper.

pub mod bcm2711_gpio;
pub mod bcm2835_pm;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
