//! Virtual machines: the virtual platform they see, their vCPUs, and how
//! their exits are handled.

pub mod features;
pub mod layout;
pub mod loader;
pub mod mmio;
pub mod sysreg;
pub mod vcpu;
