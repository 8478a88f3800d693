//! Calls from Duet to the board's PSCI firmware (over SMC or HVC, as the
//! device tree says), through the `smccc` crate.

use crate::platform::Conduit;
use smccc::psci;
use smccc::{Hvc, Smc};

pub use smccc::psci::Error;

/// Starts the CPU with affinity `mpidr` at physical address `entry`, MMU off,
/// at EL2, with `context` in x0.
pub fn cpu_on(conduit: Conduit, mpidr: u64, entry: u64, context: u64) -> Result<(), Error> {
    match conduit {
        Conduit::Smc => psci::cpu_on::<Smc>(mpidr, entry, context),
        Conduit::Hvc => psci::cpu_on::<Hvc>(mpidr, entry, context),
    }
}

/// The firmware's PSCI version as (major, minor).
pub fn version(conduit: Conduit) -> Result<(u16, u16), Error> {
    let version = match conduit {
        Conduit::Smc => psci::version::<Smc>(),
        Conduit::Hvc => psci::version::<Hvc>(),
    }?;
    Ok((version.major, version.minor))
}

/// Powers the whole machine off. Returns only if the firmware refused.
pub fn system_off(conduit: Conduit) -> Error {
    let result = match conduit {
        Conduit::Smc => psci::system_off::<Smc>(),
        Conduit::Hvc => psci::system_off::<Hvc>(),
    };
    result.err().unwrap_or(Error::InternalFailure)
}

/// Turns this CPU off. Returns only if the firmware refused; a later
/// `CPU_ON` starts it afresh at the entry point given then.
pub fn cpu_off(conduit: Conduit) -> Error {
    let result = match conduit {
        Conduit::Smc => psci::cpu_off::<Smc>(),
        Conduit::Hvc => psci::cpu_off::<Hvc>(),
    };
    result.err().unwrap_or(Error::InternalFailure)
}

/// Suspends this CPU in the power-down state `power_state`. Its wakeup
/// starts it afresh at physical address `entry`, MMU off, at EL2, with
/// `context` in x0, as `CPU_ON` would; or the firmware may choose a
/// shallower state and return (`Ok`) with every register kept, as QEMU's
/// PSCI does.
pub fn cpu_suspend_power_down(
    conduit: Conduit,
    power_state: u32,
    entry: u64,
    context: u64,
) -> Result<(), Error> {
    match conduit {
        Conduit::Smc => psci::cpu_suspend::<Smc>(power_state, entry, context),
        Conduit::Hvc => psci::cpu_suspend::<Hvc>(power_state, entry, context),
    }
}

/// Suspends this CPU in the standby (retention) state `power_state`: like
/// WFI, it returns when an interrupt arrives, with every register kept.
pub fn cpu_suspend_standby(conduit: Conduit, power_state: u32) -> Result<(), Error> {
    match conduit {
        Conduit::Smc => psci::cpu_suspend::<Smc>(power_state, 0, 0),
        Conduit::Hvc => psci::cpu_suspend::<Hvc>(power_state, 0, 0),
    }
}
