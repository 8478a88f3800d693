//! virtio devices Duet serves to guests over virtio-mmio (virtio 1.x,
//! modern only). `backend` is the contract with what backs them on the
//! real board.

pub mod backend;
