//! The probe: a tiny bare-metal guest that boots on Duet's virtual platform
//! like a kernel and checks, from the inside, what a guest can and cannot
//! do. Its command line (`/chosen/bootargs`) picks the mode:
//!
//! - `probe.mode=checks` (the default): PSCI answers, a load from a hole and
//!   an instruction Duet does not handle come back as exceptions, and the
//!   guest still runs and powers off;
//! - `probe.mode=attack`: tries every way out of its VM the probe knows,
//!   one `probe: attempt <name>: <outcome>` line each (see `attack`);
//! - `probe.mode=plant probe.secret=<hex>`: fills its RAM with a secret;
//! - `probe.mode=hunt probe.secret=<hex>`: looks for that secret wherever it
//!   can read, without ever holding it whole;
//! - `probe.mode=listen`: watches for console input typed for others;
//! - `probe.mode=virtio`: abuses each virtio device Duet gave it (see
//!   `virtio`).
//!
//! Every line it prints starts with `probe:`; the integration tests read
//! them. Each mode ends with PSCI SYSTEM_OFF. The host-testable half is the
//! `duet_probe` library (`lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod attack;
#[cfg(target_os = "none")]
mod checks;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod exceptions;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod guarded;
#[cfg(target_os = "none")]
mod hunt;
#[cfg(target_os = "none")]
mod listen;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(target_os = "none")]
mod plant;
#[cfg(target_os = "none")]
mod scan;
#[cfg(target_os = "none")]
mod smccc;
#[cfg(target_os = "none")]
mod stash;
#[cfg(target_os = "none")]
mod timer;
#[cfg(target_os = "none")]
mod virtio;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("probe: panic: {info}");
    smccc::power_off()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("duet-probe is a guest for Duet; `cargo xtask test` builds and boots it");
}
