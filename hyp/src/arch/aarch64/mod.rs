//! The AArch64 hardware layer, bare-metal build only: entry code, exception
//! vectors, the EL2 MMU, cache maintenance, CPU identity and firmware calls.
//! Each file owns one of these; nothing here makes policy.

pub mod cache;
pub mod context;
pub mod cpu;
pub mod entry;
pub mod exceptions;
pub mod gic;
pub mod guest;
pub mod idregs;
pub mod mmu;
pub mod psci;
pub mod random;
mod sysreg;
pub mod timer;
