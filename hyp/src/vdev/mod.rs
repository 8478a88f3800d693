//! Virtual devices Duet emulates for guests.

pub mod pl011;
pub mod vgic;
pub mod virtio;
