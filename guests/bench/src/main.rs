//! The bench guest: a bare-metal arm64 `Image` that times, with the virtual
//! counter, what a guest's traps cost on the machine it finds itself on: a
//! null SMCCC call (PSCI_VERSION), an emulated MMIO read (GICD_TYPER, and a
//! virtio-mmio MagicValue if the device tree has one), an IPI between two
//! vCPUs, and the virtual timer's interrupt latency. It prints one line per
//! figure (see `figure`) and powers off with PSCI SYSTEM_OFF.
//!
//! Nothing in it is specific to Duet: it learns its UART (PL011 or
//! ns16550), GIC (v2 or v3), CPUs, virtio-mmio transports and PSCI conduit
//! from the device tree in x0, relocates itself wherever it was loaded, and
//! runs under any hypervisor, or QEMU alone, that provides those. The
//! host-testable half is the `duet_bench_guest` library (`lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod bench;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod vectors;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("bench: panic: {info}");
    arch::power_off()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("duet-bench-guest is a bare-metal guest; `cargo xtask bench` builds and boots it");
}
