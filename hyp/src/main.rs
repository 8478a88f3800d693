//! The Duet binary. On bare metal the library's entry code (`arch::aarch64::entry`)
//! is where execution starts; on the host there is nothing to run.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use duet as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("duet runs on bare-metal AArch64; build and boot it with `cargo xtask run`");
    std::process::exit(2);
}
