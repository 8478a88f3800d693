//! The probe's logic that needs no hardware: reading its device tree and
//! command line, the hunter's needle, the platform's addresses and how
//! attempts are reported. It builds for the host too, where
//! `cargo test -p duet-probe` checks it against what Duet itself writes.
//! The bare-metal half (entry, exceptions, the modes) is the binary,
//! `main.rs`.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod bootargs;
pub mod fdt;
pub mod needle;
pub mod platform;
pub mod report;
