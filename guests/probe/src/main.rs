//! The probe: a tiny bare-metal guest that boots on Duet's virtual platform
//! like a kernel and checks, from the inside, what a guest can and cannot
//! do. Each check prints one `probe:` line on the console; the integration
//! tests read them. It ends with PSCI SYSTEM_OFF.
//!
//! Checks, in order:
//! - PSCI_VERSION over HVC answers 1.1;
//! - a load from an address with neither RAM nor device is answered with a
//!   synchronous external abort injected into this guest;
//! - an instruction class Duet does not handle (an SVE instruction) is
//!   answered with an undefined-instruction exception;
//! - after both, the guest still runs and can power off.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod bare_metal;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("duet-probe is a guest for Duet; `cargo xtask test` builds and boots it");
}
