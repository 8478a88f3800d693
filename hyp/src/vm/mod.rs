//! Virtual machines: the virtual platform they see, their vCPUs, and how
//! their exits are handled.

pub mod device_tree;
pub mod layout;
pub mod mmio;
pub mod psci;
