//! virtio-net (device ID 1) over a [`NetPort`]: one receive and one
//! transmit queue, a MAC address, no offloads.
//!
//! Each buffer starts with the 12-byte `virtio_net_hdr` of virtio 1.x
//! (VERSION_1 makes `num_buffers` part of it). Transmitted frames go to
//! the port without their header; received frames fill one posted buffer
//! each (no mergeable buffers), behind a header that says "no checksum, no
//! segmentation, one buffer". Frames the port has wait there until the
//! guest posts buffers: the port, not this device, holds the backlog.

use super::backend::NetPort;
use super::mmio::{ConfigSpace, Device, Env};
use super::queue::QueueError;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Feature bits.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;

pub const RECEIVE_QUEUE: usize = 0;
pub const TRANSMIT_QUEUE: usize = 1;

/// The virtio-net header with VERSION_1.
pub const HEADER_BYTES: usize = 12;
/// Offset of `num_buffers` in the header.
const NUM_BUFFERS: usize = 10;
/// The longest frame without offloads: 1500 bytes of payload, an Ethernet
/// header and a VLAN tag.
pub const MAX_FRAME: usize = 1522;
/// The shortest frame: an Ethernet header.
const MIN_FRAME: usize = 14;

pub struct Net {
    port: Box<dyn NetPort>,
    frame: Vec<u8>,
}

impl Net {
    pub fn new(port: Box<dyn NetPort>) -> Self {
        Net { port, frame: vec![0; MAX_FRAME] }
    }

    fn transmit(&mut self, env: &mut Env) -> Result<(), QueueError> {
        while let Some(chain) = env.pop(TRANSMIT_QUEUE)? {
            let length = chain.readable_len() as usize;
            let frame = length.saturating_sub(HEADER_BYTES);
            if length < HEADER_BYTES + MIN_FRAME || frame > MAX_FRAME {
                env.reject(format_args!("a {frame}-byte frame to transmit; dropped"));
            } else {
                chain.read_at(env.memory, HEADER_BYTES as u64, &mut self.frame[..frame]);
                self.port.transmit(&self.frame[..frame]);
            }
            env.push(TRANSMIT_QUEUE, &chain, 0)?;
        }
        Ok(())
    }

    /// Fills posted receive buffers with waiting frames, one frame each.
    fn receive(&mut self, env: &mut Env) -> Result<(), QueueError> {
        while let Some(chain) = env.pop(RECEIVE_QUEUE)? {
            let room = chain.writable_len() as usize;
            if room < HEADER_BYTES + MIN_FRAME {
                env.reject(format_args!("a receive buffer of {room} bytes is too small"));
                env.push(RECEIVE_QUEUE, &chain, 0)?;
                continue;
            }
            let capacity = (room - HEADER_BYTES).min(MAX_FRAME);
            let Some(length) = self.port.receive(&mut self.frame[..capacity]) else {
                env.queues[RECEIVE_QUEUE].undo_pop();
                return Ok(());
            };
            // The port promises no more than the buffer; hold it to that.
            let length = length.min(capacity);
            let mut header = [0u8; HEADER_BYTES];
            header[NUM_BUFFERS..].copy_from_slice(&1u16.to_le_bytes());
            chain.write_at(env.memory, 0, &header);
            chain.write_at(env.memory, HEADER_BYTES as u64, &self.frame[..length]);
            env.push(RECEIVE_QUEUE, &chain, (HEADER_BYTES + length) as u32)?;
        }
        Ok(())
    }
}

impl Device for Net {
    fn name(&self) -> &'static str {
        "net"
    }

    fn id(&self) -> u32 {
        1
    }

    fn features(&self) -> u64 {
        VIRTIO_NET_F_MAC
    }

    fn queue_count(&self) -> usize {
        2
    }

    /// mac[6], then status (not offered).
    fn config(&self, out: &mut ConfigSpace) -> usize {
        out[..6].copy_from_slice(&self.port.mac());
        8
    }

    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        match queue {
            TRANSMIT_QUEUE => self.transmit(env),
            _ => self.receive(env),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, CONFIG_BYTES, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::{VIRTQ_DESC_F_NEXT as N, VIRTQ_DESC_F_WRITE as W};
    use alloc::collections::VecDeque;
    use alloc::sync::Arc;
    use spin::Mutex;

    const BASE: u64 = 0x4000_0000;
    const BUFFER: u64 = BASE + 0x1_0000;

    #[derive(Clone, Default)]
    struct Wire {
        sent: Arc<Mutex<Vec<Vec<u8>>>>,
        waiting: Arc<Mutex<VecDeque<Vec<u8>>>>,
    }

    impl NetPort for Wire {
        fn mac(&self) -> [u8; 6] {
            [0x52, 0x54, 0, 0x12, 0x34, 0x56]
        }
        fn transmit(&mut self, frame: &[u8]) {
            self.sent.lock().push(frame.to_vec());
        }
        fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
            let frame = self.waiting.lock().pop_front()?;
            buffer.get_mut(..frame.len())?.copy_from_slice(&frame);
            Some(frame.len())
        }
    }

    fn setup() -> (TestRam, Transport, TestDriver, TestDriver, Wire) {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let wire = Wire::default();
        let mut transport =
            Transport::new(Box::new(Net::new(Box::new(wire.clone()))), ram.memory(), "t");
        let rx = TestDriver::new(BASE, 16);
        let tx = TestDriver::new(BASE + 0x1000, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&rx, &tx]);
        (ram, transport, rx, tx, wire)
    }

    #[test]
    fn reports_its_mac() {
        let (_ram, mut transport, ..) = setup();
        let mut config = [0u8; CONFIG_BYTES];
        transport.device().config(&mut config);
        assert_eq!(&config[..6], &[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_ne!(transport.device().features() & VIRTIO_NET_F_MAC, 0);
    }

    #[test]
    fn transmits_frames_without_their_header() {
        let (mut ram, mut transport, _rx, mut tx, wire) = setup();
        let memory = ram.memory();
        let frame: Vec<u8> = (0..60u8).collect();
        memory.write(BUFFER + 0x100, &frame).unwrap();
        tx.descriptor(&memory, 0, BUFFER, 12, N, 1);
        tx.descriptor(&memory, 1, BUFFER + 0x100, 60, 0, 0);
        tx.offer(&memory, 0);
        // A runt and an oversized frame are dropped, the queue goes on.
        tx.descriptor(&memory, 2, BUFFER, 20, 0, 0);
        tx.offer(&memory, 2);
        tx.descriptor(&memory, 3, BUFFER, 12 + 1600, 0, 0);
        tx.offer(&memory, 3);
        notify(&mut transport, 1);
        assert_eq!(*wire.sent.lock(), [frame]);
        assert_eq!(tx.used(&memory, 2), (3, 3, 0));
    }

    #[test]
    fn receives_into_posted_buffers_only_when_frames_wait() {
        let (mut ram, mut transport, mut rx, _tx, wire) = setup();
        let memory = ram.memory();
        rx.descriptor(&memory, 0, BUFFER, 1526 + 12, W, 0);
        rx.offer(&memory, 0);
        notify(&mut transport, 0);
        assert_eq!(rx.used(&memory, 0).0, 0, "no frame yet");
        assert!(!transport.take_interrupt());
        let frame: Vec<u8> = (100..200u8).collect();
        wire.waiting.lock().push_back(frame.clone());
        wire.waiting.lock().push_back(frame.clone());
        transport.service(RECEIVE_QUEUE);
        assert_eq!(rx.used(&memory, 0), (1, 0, 112));
        assert!(transport.take_interrupt());
        let mut got = [0u8; 112];
        memory.read(BUFFER, &mut got).unwrap();
        assert_eq!(&got[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(&got[12..], &frame[..]);
        // The second frame waits for the next buffer.
        assert_eq!(wire.waiting.lock().len(), 1);
        rx.offer(&memory, 0);
        notify(&mut transport, 0);
        assert_eq!(rx.used(&memory, 1), (2, 0, 112));
    }
}
