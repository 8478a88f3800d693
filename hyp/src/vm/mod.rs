//! Virtual machines: the virtual platform they see, their vCPUs, and how
//! their exits are handled.

pub mod console_mux;
pub mod counters;
pub mod device_tree;
pub mod features;
pub mod layout;
pub mod loader;
pub mod mmio;
pub mod psci;
pub mod sysreg;
pub mod vcpu;

#[cfg(target_os = "none")]
pub mod backends;
#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
pub mod instance;
#[cfg(target_os = "none")]
pub mod placement;
#[cfg(target_os = "none")]
mod run;
#[cfg(target_os = "none")]
pub mod screen;
#[cfg(target_os = "none")]
pub mod system;
#[cfg(target_os = "none")]
pub mod virtio;
