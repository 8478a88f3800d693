//! Duet, a type-1 hypervisor for phones.
//!
//! Duet runs at EL2 on AArch64 and keeps two personas, a personal one and a
//! corporate one, side by side on one handset. The house rules:
//!
//! 1. **The hardware layer is thin.** Everything that touches the CPU or a
//!    device register lives in [`arch`] and [`drivers`]; the rest is plain
//!    Rust that builds for the host, where `cargo test` checks it.
//! 2. **The shape is fixed before boot.** A persona manifest, checked on the
//!    host, says which VMs exist; the hypervisor learns the board from the
//!    device tree it is given and never guesses.
//! 3. **Guests are not trusted.** Every value a guest controls is checked
//!    where it enters; a misbehaving guest gets an exception, never Duet.
//! 4. **Never a silent hang.** Anything unexpected ends in a decoded report on
//!    the console and a powered-off machine.
//! 5. **Simple beats clever.** Short functions, few locks, `unsafe` only where
//!    the hardware demands it, each use saying why it is sound.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

pub mod arch;
pub mod crash;
pub mod disk;
pub mod drivers;
pub mod fault;
pub mod mm;
pub mod net;
pub mod personas;
pub mod platform;
pub mod sched;
pub mod screen;
pub mod vdev;
pub mod vm;

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod machine;
#[cfg(target_os = "none")]
mod smp;

/// The most CPUs Duet manages; the boot stacks in `link.ld` are sized for it.
pub const MAX_CPUS: usize = 8;

/// Lines Duet prints when it stops, so that whoever runs it (a person, or
/// `cargo xtask`) can tell a clean power-off from a halt.
pub mod status {
    /// Printed before a deliberate power-off; the rest of the line says why.
    pub const POWER_OFF: &str = "duet: powering off:";
    /// Printed when Duet stops because something went wrong.
    pub const HALTED: &str = "duet: HALTED:";
}
