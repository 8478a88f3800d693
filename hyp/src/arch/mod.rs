//! The CPU architecture: everything that executes AArch64 instructions or
//! reads and writes system registers.
//!
//! The decoders of architectural values ([`esr`]) and the layout of saved
//! state ([`frame`]) are plain Rust, tested on the host. The code that runs
//! instructions ([`aarch64`]) exists only in the bare-metal build.

pub mod esr;
pub mod frame;

#[cfg(target_os = "none")]
pub mod aarch64;
