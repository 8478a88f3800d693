//! The bench guest's host-testable half: what it learns from its device
//! tree (`platform`) and the lines it prints its figures in (`figure`),
//! which `cargo xtask bench` parses with the same code.
#![cfg_attr(not(test), no_std)]

pub mod figure;
pub mod platform;
