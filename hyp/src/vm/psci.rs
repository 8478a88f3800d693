//! The firmware interface guests see: SMCCC 1.1 and PSCI 1.1, reached with
//! HVC (the device tree says so) or with an SMC that Duet traps.
//!
//! This module owns the decision: given a call and the state of the VM's
//! vCPUs, what the answer is or what the caller must do. It touches no vCPU
//! itself; the trap handler carries out the [`Outcome`]. Unknown function
//! IDs, bad arguments and every other guest mistake end as an error code in
//! x0, never as anything worse.
//!
//! The caller feeds calls from HVC #0 and from trapped SMCs alike. They
//! differ in one way it must mind: a trapped SMC leaves ELR_EL2 pointing at
//! the SMC itself, so the guest resumes 4 bytes further on, while an HVC's
//! ELR_EL2 already points past it.

use crate::vm::layout;
use smccc::arch::{self, SMCCC_ARCH_FEATURES, SMCCC_VERSION};
use smccc::psci::{self, AffinityState, MigrateType};
use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

pub use smccc::psci::Error;

/// The PSCI version Duet implements.
pub const PSCI_VERSION_IMPLEMENTED: psci::Version = psci::Version { major: 1, minor: 1 };
/// The SMC Calling Convention version Duet implements.
pub const SMCCC_VERSION_IMPLEMENTED: arch::Version = arch::Version { major: 1, minor: 1 };

/// x0 after a call that succeeded with nothing to return.
pub const SUCCESS: u64 = 0;

/// The PSCI functions Duet implements, as `PSCI_FEATURES` reports them.
const IMPLEMENTED: [u32; 12] = [
    PSCI_VERSION,
    PSCI_CPU_SUSPEND_32,
    PSCI_CPU_SUSPEND_64,
    PSCI_CPU_OFF,
    PSCI_CPU_ON_32,
    PSCI_CPU_ON_64,
    PSCI_AFFINITY_INFO_32,
    PSCI_AFFINITY_INFO_64,
    PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET,
    PSCI_FEATURES,
];

/// `PSCI_FEATURES` flags for an implemented function. For `CPU_SUSPEND`
/// zero says: original `power_state` format, platform-coordinated mode only.
const NO_FEATURE_FLAGS: u64 = 0;

/// SMCCC function IDs: bit 30 set means the SMC64/HVC64 convention, whose
/// arguments are whole X registers; without it arguments are W registers.
const SMC64_BIT: u32 = 1 << 30;

/// The original-format `power_state` parameter of `CPU_SUSPEND`: StateID,
/// StateType and PowerLevel; every other bit is reserved and must be zero.
const POWER_STATE_ID: u32 = 0xffff;
const POWER_STATE_TYPE: u32 = 1 << 16;
const POWER_STATE_LEVEL: u32 = 0b11 << 24;
const POWER_STATE_RESERVED: u32 = !(POWER_STATE_ID | POWER_STATE_TYPE | POWER_STATE_LEVEL);

/// The only `lowest_affinity_level` `AFFINITY_INFO` accepts: single cores.
/// (PSCI 1.0 made the higher levels optional.)
const AFFINITY_LEVEL_CORE: u64 = 0;

/// One call, as the guest made it: W0 names the function, x1..x3 carry the
/// arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub function: u32,
    pub args: [u64; 3],
}

impl Call {
    /// The call in the guest's x0..x3. Only W0 holds the function ID; the
    /// upper half of x0 is not part of it.
    pub fn from_registers(x: [u64; 4]) -> Self {
        Call { function: x[0] as u32, args: [x[1], x[2], x[3]] }
    }

    /// Argument `n` (0 for x1). For SMC32/HVC32 function IDs only the W
    /// register counts: the upper 32 bits may hold anything and are dropped.
    fn arg(&self, n: usize) -> u64 {
        let value = self.args[n];
        if self.function & SMC64_BIT != 0 {
            value
        } else {
            u64::from(value as u32)
        }
    }
}

/// Where a vCPU is in its power life, as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuPower {
    On,
    Off,
    /// Started by `CPU_ON` but not yet running.
    OnPending,
}

/// What PSCI needs to know about the VM's vCPUs; the VM implements it.
pub trait VcpuStates {
    /// How many vCPUs the VM has, numbered from 0.
    fn count(&self) -> usize;

    /// The power state of vCPU `index` (below [`Self::count`]).
    fn power(&self, index: usize) -> VcpuPower;

    /// The vCPU whose affinity is exactly `mpidr`, as a guest names it in
    /// `CPU_ON` and `AFFINITY_INFO`. Any other bit set means no vCPU.
    fn index_of(&self, mpidr: u64) -> Option<usize> {
        (0..self.count()).find(|&index| layout::vcpu_mpidr(index) == mpidr)
    }
}

/// What the trap handler does after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write this to x0 and resume the caller; x1..x17 keep the guest's own
    /// values (SMCCC 1.1 lets the callee preserve unused result registers,
    /// and preserving them leaks nothing of Duet's).
    Return(u64),
    /// Start vCPU `target` (checked: it exists and is off) at `entry` with
    /// `context` in its x0, MMU and caches off, at EL1h with DAIF masked.
    /// First check `entry` lies in guest RAM; if not, return
    /// [`error_value`]`(Error::InvalidAddress)` instead. If the target left
    /// the off state since (another vCPU won the race), return
    /// `Error::AlreadyOn` or `Error::OnPending`. Otherwise mark the target
    /// on-pending and return [`SUCCESS`] to the caller.
    CpuOn { target: usize, entry: u64, context: u64 },
    /// The calling vCPU powers off; it never returns from the call. It can
    /// be started again with `CPU_ON`.
    CpuOff,
    /// The calling vCPU waits as for WFI (until an interrupt for it is
    /// pending, or for any reason at all), then resumes after the call with
    /// [`SUCCESS`] in x0 and every other register as it was. PSCI allows
    /// this even for power-down states (the request may be downgraded to
    /// standby, DEN0022 section 5.4.2), so the entry point and context ID
    /// the guest passed are not used.
    CpuSuspend,
    /// Power the whole VM off; no vCPU of it runs again.
    SystemOff,
    /// Reset the whole VM: every vCPU stops and the VM boots afresh.
    SystemReset,
}

/// The x0 value for a PSCI or SMCCC error: the negative code, sign-extended
/// to 64 bits (Linux tests both `(int)x0 < 0` and `x0 == -1UL`).
pub fn error_value(error: Error) -> u64 {
    i64::from(error) as u64
}

/// Answers one SMCCC call from a guest.
pub fn handle(call: &Call, vcpus: &impl VcpuStates) -> Outcome {
    match call.function {
        PSCI_VERSION => Outcome::Return(u32::from(PSCI_VERSION_IMPLEMENTED).into()),
        PSCI_FEATURES => returning(psci_features(call.arg(0) as u32)),
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(call, vcpus),
        PSCI_CPU_OFF => Outcome::CpuOff,
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => returning(affinity_info(call, vcpus)),
        PSCI_CPU_SUSPEND_32 | PSCI_CPU_SUSPEND_64 => cpu_suspend(call),
        PSCI_SYSTEM_OFF => Outcome::SystemOff,
        PSCI_SYSTEM_RESET => Outcome::SystemReset,
        PSCI_MIGRATE_INFO_TYPE => Outcome::Return(MigrateType::MigrationNotRequired as u64),
        SMCCC_VERSION => Outcome::Return(u32::from(SMCCC_VERSION_IMPLEMENTED).into()),
        SMCCC_ARCH_FEATURES => returning(arch_features(call.arg(0) as u32)),
        _ => returning(Err(Error::NotSupported)),
    }
}

fn returning(result: Result<u64, Error>) -> Outcome {
    Outcome::Return(result.unwrap_or_else(error_value))
}

/// `PSCI_FEATURES`: the PSCI functions above, and `SMCCC_VERSION`, which is
/// how a guest learns that SMCCC 1.1 (and `SMCCC_ARCH_FEATURES`) exists.
fn psci_features(function: u32) -> Result<u64, Error> {
    if IMPLEMENTED.contains(&function) || function == SMCCC_VERSION {
        Ok(NO_FEATURE_FLAGS)
    } else {
        Err(Error::NotSupported)
    }
}

/// `SMCCC_ARCH_FEATURES`. The Spectre workarounds (`ARCH_WORKAROUND_1`, `_2`
/// and `_3`) are reported not supported: that is the honest answer while
/// Duet cannot carry the call to firmware, and it makes Linux fall back on
/// what it knows of the CPU (and report itself vulnerable where it is),
/// rather than trust a mitigation that does nothing ("supported") or skip
/// one it needs ("not required").
fn arch_features(function: u32) -> Result<u64, Error> {
    match function {
        SMCCC_VERSION | SMCCC_ARCH_FEATURES => Ok(NO_FEATURE_FLAGS),
        _ => Err(Error::NotSupported),
    }
}

fn cpu_on(call: &Call, vcpus: &impl VcpuStates) -> Outcome {
    let Some(target) = vcpus.index_of(call.arg(0)) else {
        return returning(Err(Error::InvalidParameters));
    };
    match vcpus.power(target) {
        VcpuPower::On => returning(Err(Error::AlreadyOn)),
        VcpuPower::OnPending => returning(Err(Error::OnPending)),
        VcpuPower::Off => Outcome::CpuOn { target, entry: call.arg(1), context: call.arg(2) },
    }
}

fn affinity_info(call: &Call, vcpus: &impl VcpuStates) -> Result<u64, Error> {
    if call.arg(1) != AFFINITY_LEVEL_CORE {
        return Err(Error::InvalidParameters);
    }
    let target = vcpus.index_of(call.arg(0)).ok_or(Error::InvalidParameters)?;
    let state = match vcpus.power(target) {
        VcpuPower::On => AffinityState::On,
        VcpuPower::Off => AffinityState::Off,
        VcpuPower::OnPending => AffinityState::OnPending,
    };
    Ok(state as u64)
}

/// `CPU_SUSPEND`: `power_state` is a 32-bit parameter in both conventions.
/// A reserved bit set is refused; any StateID, type and level is accepted,
/// since the guest's device tree describes no idle states to choose from.
fn cpu_suspend(call: &Call) -> Outcome {
    let power_state = call.arg(0) as u32;
    if power_state & POWER_STATE_RESERVED != 0 {
        return returning(Err(Error::InvalidParameters));
    }
    Outcome::CpuSuspend
}

#[cfg(test)]
mod tests {
    use super::*;
    use smccc::arch::{SMCCC_ARCH_SOC_ID, SMCCC_ARCH_WORKAROUND_1};
    use smccc::arch::{SMCCC_ARCH_WORKAROUND_2, SMCCC_ARCH_WORKAROUND_3};
    use smccc::psci::{PSCI_MIGRATE_64, PSCI_SYSTEM_RESET2_64, PSCI_SYSTEM_SUSPEND_64};

    /// A VM whose vCPU `i` is in state `power[i]`.
    struct Vm(Vec<VcpuPower>);

    impl VcpuStates for Vm {
        fn count(&self) -> usize {
            self.0.len()
        }

        fn power(&self, index: usize) -> VcpuPower {
            self.0[index]
        }
    }

    fn vm() -> Vm {
        Vm(vec![VcpuPower::On, VcpuPower::Off, VcpuPower::OnPending, VcpuPower::Off])
    }

    fn call(function: u32, args: [u64; 3]) -> Outcome {
        handle(&Call { function, args }, &vm())
    }

    fn returns(error: Error) -> Outcome {
        Outcome::Return(error_value(error))
    }

    #[test]
    fn errors_are_sign_extended() {
        assert_eq!(error_value(Error::NotSupported), u64::MAX);
        assert_eq!(error_value(Error::InvalidAddress) as i64, -9);
    }

    #[test]
    fn function_id_is_w0() {
        let regs = [0xdead_beef_0000_0000 | u64::from(PSCI_VERSION), 1, 2, 3];
        let call = Call::from_registers(regs);
        assert_eq!(call, Call { function: PSCI_VERSION, args: [1, 2, 3] });
    }

    #[test]
    fn versions() {
        assert_eq!(call(PSCI_VERSION, [0; 3]), Outcome::Return(0x1_0001));
        assert_eq!(call(SMCCC_VERSION, [0; 3]), Outcome::Return(0x1_0001));
    }

    #[test]
    fn psci_features_lists_what_is_implemented() {
        for function in IMPLEMENTED.into_iter().chain([SMCCC_VERSION]) {
            let outcome = call(PSCI_FEATURES, [function.into(), 0, 0]);
            assert_eq!(outcome, Outcome::Return(0), "{function:#x}");
        }
        for function in [
            PSCI_MIGRATE_64,
            PSCI_SYSTEM_SUSPEND_64,
            PSCI_SYSTEM_RESET2_64,
            SMCCC_ARCH_FEATURES,
            0,
            u32::MAX,
        ] {
            let outcome = call(PSCI_FEATURES, [function.into(), 0, 0]);
            assert_eq!(outcome, returns(Error::NotSupported), "{function:#x}");
        }
    }

    #[test]
    fn psci_features_reads_only_w1() {
        let function = (0xffff_ffff_u64 << 32) | u64::from(PSCI_CPU_ON_64);
        assert_eq!(call(PSCI_FEATURES, [function, 0, 0]), Outcome::Return(0));
    }

    #[test]
    fn arch_features_offers_no_spectre_workarounds() {
        for function in [SMCCC_VERSION, SMCCC_ARCH_FEATURES] {
            assert_eq!(call(SMCCC_ARCH_FEATURES, [function.into(), 0, 0]), Outcome::Return(0));
        }
        for function in [
            SMCCC_ARCH_WORKAROUND_1,
            SMCCC_ARCH_WORKAROUND_2,
            SMCCC_ARCH_WORKAROUND_3,
            SMCCC_ARCH_SOC_ID,
            PSCI_VERSION,
        ] {
            let outcome = call(SMCCC_ARCH_FEATURES, [function.into(), 0, 0]);
            assert_eq!(outcome, returns(Error::NotSupported), "{function:#x}");
        }
        // Calling a workaround anyway is just an unknown function.
        assert_eq!(call(SMCCC_ARCH_WORKAROUND_1, [0; 3]), returns(Error::NotSupported));
    }

    #[test]
    fn cpu_on_starts_an_off_vcpu() {
        let outcome = call(PSCI_CPU_ON_64, [layout::vcpu_mpidr(3), 0x4008_0000, 0xc0ffee]);
        assert_eq!(outcome, Outcome::CpuOn { target: 3, entry: 0x4008_0000, context: 0xc0ffee });
    }

    #[test]
    fn cpu_on_32_reads_w_registers() {
        let high = 0xffff_ffff_0000_0000;
        let args = [high | layout::vcpu_mpidr(1), high | 0x4008_0000, high | 7];
        let outcome = call(PSCI_CPU_ON_32, args);
        assert_eq!(outcome, Outcome::CpuOn { target: 1, entry: 0x4008_0000, context: 7 });
        // The same upper bits in a 64-bit call name no vCPU.
        assert_eq!(call(PSCI_CPU_ON_64, args), returns(Error::InvalidParameters));
    }

    #[test]
    fn cpu_on_refuses_vcpus_that_are_on_or_missing() {
        let on = call(PSCI_CPU_ON_64, [layout::vcpu_mpidr(0), 0x4008_0000, 0]);
        assert_eq!(on, returns(Error::AlreadyOn));
        let pending = call(PSCI_CPU_ON_64, [layout::vcpu_mpidr(2), 0x4008_0000, 0]);
        assert_eq!(pending, returns(Error::OnPending));
        for mpidr in [layout::vcpu_mpidr(4), 1 << 8, 1 << 31 | 1, u64::MAX] {
            let outcome = call(PSCI_CPU_ON_64, [mpidr, 0x4008_0000, 0]);
            assert_eq!(outcome, returns(Error::InvalidParameters), "{mpidr:#x}");
        }
    }

    #[test]
    fn cpu_off_system_off_and_reset() {
        assert_eq!(call(PSCI_CPU_OFF, [0; 3]), Outcome::CpuOff);
        assert_eq!(call(PSCI_SYSTEM_OFF, [0; 3]), Outcome::SystemOff);
        assert_eq!(call(PSCI_SYSTEM_RESET, [0; 3]), Outcome::SystemReset);
    }

    #[test]
    fn affinity_info_reports_each_vcpu() {
        let states =
            [(0, AffinityState::On), (1, AffinityState::Off), (2, AffinityState::OnPending)];
        for (index, state) in states {
            for function in [PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64] {
                let outcome = call(function, [layout::vcpu_mpidr(index), 0, 0]);
                assert_eq!(outcome, Outcome::Return(state as u64));
            }
        }
    }

    #[test]
    fn affinity_info_takes_only_level_zero_and_known_vcpus() {
        for level in [1, 2, 3, 1 << 40] {
            let outcome = call(PSCI_AFFINITY_INFO_64, [0, level, 0]);
            assert_eq!(outcome, returns(Error::InvalidParameters), "level {level}");
        }
        // A 32-bit call sees only W2: 1 << 40 there is level 0.
        let outcome = call(PSCI_AFFINITY_INFO_32, [0, 1 << 40, 0]);
        assert_eq!(outcome, Outcome::Return(AffinityState::On as u64));
        let missing = call(PSCI_AFFINITY_INFO_64, [layout::vcpu_mpidr(9), 0, 0]);
        assert_eq!(missing, returns(Error::InvalidParameters));
    }

    #[test]
    fn cpu_suspend_waits_for_any_valid_power_state() {
        let standby = 0x0000_0001;
        let power_down_cluster = POWER_STATE_TYPE | 1 << 24 | 0x42;
        for function in [PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64] {
            for power_state in [0, standby, power_down_cluster, POWER_STATE_LEVEL] {
                let outcome = call(function, [power_state.into(), 0x4008_0000, 0]);
                assert_eq!(outcome, Outcome::CpuSuspend, "{power_state:#x}");
            }
        }
        // power_state is 32 bits even in the 64-bit call.
        let outcome = call(PSCI_CPU_SUSPEND_64, [0xffff_ffff_0000_0000, 0, 0]);
        assert_eq!(outcome, Outcome::CpuSuspend);
    }

    #[test]
    fn cpu_suspend_refuses_reserved_bits() {
        for bit in [17, 23, 26, 31] {
            let outcome = call(PSCI_CPU_SUSPEND_64, [1 << bit, 0, 0]);
            assert_eq!(outcome, returns(Error::InvalidParameters), "bit {bit}");
        }
    }

    #[test]
    fn migration_is_not_needed() {
        assert_eq!(call(PSCI_MIGRATE_INFO_TYPE, [0; 3]), Outcome::Return(2));
        assert_eq!(call(PSCI_MIGRATE_64, [0; 3]), returns(Error::NotSupported));
    }

    #[test]
    fn unknown_functions_are_not_supported() {
        let unknown = [
            0,
            u32::MAX,
            0x8600_ff01,                 // a vendor hypervisor service (KVM's UID query)
            0x8400_0050,                 // TRNG_VERSION
            PSCI_CPU_ON_64 & !(1 << 31), // a yielding call
            PSCI_VERSION | 1 << 16,      // bits 23:16 must be zero for fast calls
        ];
        for function in unknown {
            assert_eq!(
                call(function, [u64::MAX; 3]),
                returns(Error::NotSupported),
                "{function:#x}"
            );
        }
    }

    #[test]
    fn a_vm_may_give_its_own_mpidr_lookup() {
        struct Clustered;
        impl VcpuStates for Clustered {
            fn count(&self) -> usize {
                2
            }
            fn power(&self, _: usize) -> VcpuPower {
                VcpuPower::Off
            }
            fn index_of(&self, mpidr: u64) -> Option<usize> {
                [0x000, 0x100].iter().position(|&m| m == mpidr)
            }
        }
        let outcome =
            handle(&Call { function: PSCI_CPU_ON_64, args: [0x100, 0x4000_0000, 0] }, &Clustered);
        assert_eq!(outcome, Outcome::CpuOn { target: 1, entry: 0x4000_0000, context: 0 });
    }
}
