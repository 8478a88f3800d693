//! The corporate persona's mail guest: a small `no_std` program that boots
//! on Duet's virtual platform like a kernel (arm64 `Image` header, device
//! tree in x0), finds its virtio devices in the device tree and drives them
//! with the `virtio-drivers` crate. It has no shell and loads no code.
//!
//! It brings up its devices, opens its offline store on the disk, and runs
//! its mail client or its interface on the console and on its own display
//! (see README.md). Every line
//! it prints starts with `mail:`. The host-testable logic (the store's log,
//! the IMAP response parser) is the `duet_mail` library (`lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod client;
#[cfg(target_os = "none")]
mod devices;
#[cfg(target_os = "none")]
mod disk;
#[cfg(target_os = "none")]
mod display;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(target_os = "none")]
mod net;
#[cfg(target_os = "none")]
mod psci;
#[cfg(target_os = "none")]
mod screen;
#[cfg(target_os = "none")]
mod send;
#[cfg(target_os = "none")]
mod sync;
#[cfg(target_os = "none")]
mod tls;
#[cfg(target_os = "none")]
mod vectors;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::early(format_args!("mail: panic: {info}"));
    psci::power_off()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("duet-mail is a guest for Duet; `cargo xtask mail` builds it");
}
