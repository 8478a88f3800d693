//! virtio-console (device ID 3) with a single port and no multiport
//! feature: what the guest writes to `/dev/hvc0` goes to Duet's console,
//! tagged with the VM's name, just like its PL011 output.
//!
//! Input is not offered through this device: typed bytes go to the VM's
//! PL011, the guest's main console. Buffers the guest posts on the
//! receive queue simply stay there.

use super::mmio::{ConfigSpace, Device, Env};
use super::queue::QueueError;
use alloc::boxed::Box;

/// Where the guest's output goes.
pub type Sink = Box<dyn FnMut(&[u8]) + Send>;

const RECEIVE_QUEUE: usize = 0;
const TRANSMIT_QUEUE: usize = 1;

/// Output is passed on in pieces of this size.
const CHUNK: usize = 256;

pub struct Console {
    output: Sink,
}

impl Console {
    pub fn new(output: Sink) -> Self {
        Console { output }
    }
}

impl Device for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn id(&self) -> u32 {
        3
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        2
    }

    /// cols, rows, max_nr_ports, emerg_wr: all zero (none offered).
    fn config(&self, _out: &mut ConfigSpace) -> usize {
        12
    }

    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        if queue == RECEIVE_QUEUE {
            return Ok(());
        }
        debug_assert_eq!(queue, TRANSMIT_QUEUE);
        while let Some(chain) = env.pop(TRANSMIT_QUEUE)? {
            let mut offset = 0;
            let mut piece = [0u8; CHUNK];
            loop {
                let got = chain.read_at(env.memory, offset, &mut piece);
                if got == 0 {
                    break;
                }
                (self.output)(&piece[..got]);
                offset += got as u64;
            }
            env.push(TRANSMIT_QUEUE, &chain, 0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::VIRTQ_DESC_F_NEXT;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use spin::Mutex;

    const BASE: u64 = 0x4000_0000;

    #[test]
    fn transmitted_bytes_reach_the_sink_in_order() {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let memory = ram.memory();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let console = Console::new(Box::new(move |bytes| sink.lock().extend_from_slice(bytes)));
        let mut transport = Transport::new(Box::new(console), memory, "test");
        let rx = TestDriver::new(BASE, 16);
        let mut tx = TestDriver::new(BASE + 0x1000, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&rx, &tx]);
        let long = [b'x'; 600];
        memory.write(BASE + 0x1_0000, b"hello ").unwrap();
        memory.write(BASE + 0x1_1000, &long).unwrap();
        tx.descriptor(&memory, 0, BASE + 0x1_0000, 6, VIRTQ_DESC_F_NEXT, 1);
        tx.descriptor(&memory, 1, BASE + 0x1_1000, 600, 0, 0);
        tx.offer(&memory, 0);
        notify(&mut transport, 1);
        let seen = seen.lock();
        assert_eq!(&seen[..6], b"hello ");
        assert_eq!(seen.len(), 606);
        assert_eq!(tx.used(&memory, 0), (1, 0, 0));
    }
}
