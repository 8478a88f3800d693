//! The CPU's random number generator (FEAT_RNG: RNDR), Duet's entropy for
//! virtio-rng. On a CPU without it there is no entropy source yet: `fill`
//! says so and the guest's request completes with no bytes (the guest
//! keeps waiting for entropy, as it would on a board without a generator).

use crate::vdev::virtio::backend::EntropySource;
use aarch64_cpu::registers::{Readable, ID_AA64ISAR0_EL1};
use core::arch::asm;

/// RNDR, when the CPU has it.
pub struct Rndr;

/// Whether this CPU implements RNDR.
pub fn available() -> bool {
    ID_AA64ISAR0_EL1.read(ID_AA64ISAR0_EL1::RNDR) != 0
}

/// One 64-bit random number, or None when the generator has none now
/// (RNDR sets Z on failure).
fn rndr() -> Option<u64> {
    let value: u64;
    let failed: u64;
    // SAFETY: reading RNDR (S3_3_C2_C4_0) only returns a number and sets
    // the flags; the caller checked the CPU implements it.
    unsafe {
        asm!(
            "mrs {value}, S3_3_C2_C4_0",
            "cset {failed}, eq",
            value = out(reg) value,
            failed = out(reg) failed,
            options(nomem, nostack),
        );
    }
    (failed == 0).then_some(value)
}

impl EntropySource for Rndr {
    fn fill(&mut self, buffer: &mut [u8]) -> bool {
        if !available() {
            return false;
        }
        for chunk in buffer.chunks_mut(8) {
            // The architecture allows a transient failure; try a few times.
            let Some(value) = (0..10).find_map(|_| rndr()) else { return false };
            chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
        }
        true
    }
}
