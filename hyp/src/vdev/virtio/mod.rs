//! virtio devices Duet serves to guests over virtio-mmio (virtio 1.x,
//! modern only). `backend` is the contract with what backs them on the
//! real board; `guest_memory` the one way into a guest's RAM; `queue` the
//! checked split virtqueue; `mmio` the transport; the rest device models.

pub mod backend;
pub mod blk;
pub mod console;
pub mod gpu;
pub mod guest_memory;
pub mod input;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod rng;
