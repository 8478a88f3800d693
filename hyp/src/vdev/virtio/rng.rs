//! virtio-rng (device ID 4): fills each buffer the guest posts with random
//! bytes from an [`EntropySource`].
//!
//! Two sources exist. [`Rndr`] reads the CPU's random number register
//! (FEAT_RNG, `RNDR`), used where ID_AA64ISAR0_EL1.RNDR says the CPU has
//! it. Elsewhere [`Drbg`] is used: a deterministic generator (ChaCha20,
//! rekeyed after every request from its own output, so earlier outputs
//! cannot be recovered from a later state) seeded once with SHA-256 over
//! readings of the system counter taken around memory accesses, plus
//! whatever identifies the CPU and the VM. Its limits: the counter jitter
//! is all the unpredictability it has, which is little on a deterministic
//! emulator or a quiet boot; it is good enough to seed a guest's own pool
//! but is not a source of keys on its own.

use super::backend::EntropySource;
use super::mmio::{ConfigSpace, Device, Env};
use super::queue::QueueError;
use alloc::boxed::Box;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The most bytes given for one request (the driver asks again).
const MAX_REQUEST: usize = 4096;

pub struct Rng {
    source: Box<dyn EntropySource>,
}

impl Rng {
    pub fn new(source: Box<dyn EntropySource>) -> Self {
        Rng { source }
    }
}

impl Device for Rng {
    fn name(&self) -> &'static str {
        "rng"
    }

    fn id(&self) -> u32 {
        4
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn config(&self, _out: &mut ConfigSpace) -> usize {
        0
    }

    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        let mut bytes = [0u8; MAX_REQUEST];
        while let Some(chain) = env.pop(queue)? {
            let length = (chain.writable_len() as usize).min(MAX_REQUEST);
            let written = if self.source.fill(&mut bytes[..length]) {
                chain.write_at(env.memory, 0, &bytes[..length])
            } else {
                env.reject(format_args!("no entropy to be had now; the request gets none"));
                0
            };
            bytes[..length].fill(0);
            env.push(queue, &chain, written as u32)?;
        }
        Ok(())
    }
}

/// The CPU's RNDR register, through `read` (None when the hardware had no
/// entropy ready).
pub struct Rndr {
    read: fn() -> Option<u64>,
}

impl Rndr {
    /// RNDR misses this many times in a row before a request goes unfilled.
    const RETRIES: usize = 16;

    pub fn new(read: fn() -> Option<u64>) -> Self {
        Rndr { read }
    }

    fn next(&self) -> Option<u64> {
        (0..Self::RETRIES).find_map(|_| (self.read)())
    }
}

impl EntropySource for Rndr {
    fn fill(&mut self, buffer: &mut [u8]) -> bool {
        for piece in buffer.chunks_mut(8) {
            let Some(value) = self.next() else { return false };
            piece.copy_from_slice(&value.to_le_bytes()[..piece.len()]);
        }
        true
    }
}

/// A deterministic random bit generator for CPUs without RNDR (see the
/// module's documentation for what it is worth).
pub struct Drbg {
    key: [u8; 32],
    /// Read at every request and mixed into its key.
    clock: fn() -> u64,
}

impl Drbg {
    /// A generator seeded with SHA-256 over `seed`.
    pub fn new(seed: &[u8], clock: fn() -> u64) -> Self {
        Drbg { key: Sha256::digest(seed).into(), clock }
    }
}

impl EntropySource for Drbg {
    fn fill(&mut self, buffer: &mut [u8]) -> bool {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update((self.clock)().to_le_bytes());
        let mut generator = ChaCha20Rng::from_seed(hasher.finalize().into());
        generator.fill_bytes(buffer);
        // Fast key erasure: the key that made `buffer` is gone.
        generator.fill_bytes(&mut self.key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::{VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

    const BASE: u64 = 0x4000_0000;

    fn still() -> u64 {
        7
    }

    #[test]
    fn fills_every_writable_byte() {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let memory = ram.memory();
        let source = Drbg::new(b"test", still);
        let mut transport = Transport::new(Box::new(Rng::new(Box::new(source))), memory, "test");
        let mut driver = TestDriver::new(BASE, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&driver]);
        let w = VIRTQ_DESC_F_WRITE;
        driver.descriptor(&memory, 0, BASE + 0x1_0000, 40, w | VIRTQ_DESC_F_NEXT, 1);
        driver.descriptor(&memory, 1, BASE + 0x1_1000, 24, w, 0);
        driver.offer(&memory, 0);
        notify(&mut transport, 0);
        assert_eq!(driver.used(&memory, 0), (1, 0, 64));
        let mut bytes = [0u8; 40];
        memory.read(BASE + 0x1_0000, &mut bytes).unwrap();
        assert!(bytes.iter().filter(|&&b| b == 0).count() < 8, "{bytes:?}");
    }

    #[test]
    fn the_drbg_never_repeats_itself() {
        let mut drbg = Drbg::new(b"seed", still);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        drbg.fill(&mut a);
        drbg.fill(&mut b);
        assert_ne!(a, b);
        let mut other = Drbg::new(b"other seed", still);
        let mut c = [0u8; 32];
        other.fill(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn rndr_retries_and_gives_up() {
        fn never() -> Option<u64> {
            None
        }
        fn always() -> Option<u64> {
            Some(0x0807_0605_0403_0201)
        }
        let mut bytes = [0u8; 11];
        assert!(!Rndr::new(never).fill(&mut bytes));
        assert!(Rndr::new(always).fill(&mut bytes));
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3]);
    }
}
