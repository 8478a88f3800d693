//! Attempts on firmware and hypervisor calls. Duet traps every SMC and
//! answers it as it answers an HVC: as this VM's PSCI and SMCCC, never
//! passing it on to the real firmware. An SMC the firmware would answer one
//! way (a physical CPU that is already on) must get Duet's answer (no such
//! vCPU); calls Duet does not implement must get NOT_SUPPORTED; and no
//! register the call does not return in may come back changed.

use super::Attempt;
use crate::smccc::{self, Conduit, Registers, ALREADY_ON, INVALID_PARAMETERS, NOT_SUPPORTED};
use duet_probe::report::Outcome;
use duet_probe::{breach, emulated};

const PSCI_VERSION: u64 = 0x8400_0000;
const PSCI_CPU_SUSPEND_64: u64 = 0xc400_0001;
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
const PSCI_AFFINITY_INFO_64: u64 = 0xc400_0004;
const PSCI_FEATURES: u64 = 0x8400_000a;
const PSCI_CPU_FREEZE: u64 = 0x8400_000b;
const PSCI_SYSTEM_SUSPEND_64: u64 = 0xc400_000e;
const PSCI_MEM_PROTECT: u64 = 0x8400_0013;
const PSCI_UNKNOWN: u64 = 0x8400_001f;
const SMCCC_ARCH_WORKAROUND_1: u64 = 0x8000_8000;
const SMCCC_ARCH_SOC_ID: u64 = 0x8000_0002;
const TRNG_RND64: u64 = 0xc400_0053;
const SIP_SERVICE: u64 = 0xc200_0000;
const OEM_SERVICE: u64 = 0xc300_0000;
const STANDARD_HYP_SERVICE: u64 = 0xc500_0000;
const VENDOR_HYP_SERVICE: u64 = 0x8600_0000;
const TRUSTED_APP: u64 = 0xb000_0000;
const TRUSTED_OS: u64 = 0xb200_0000;

/// PSCI 1.1, as Duet reports it.
const DUET_PSCI_VERSION: u64 = 0x1_0001;
/// A reserved bit of CPU_SUSPEND's power_state.
const POWER_STATE_RESERVED_BIT: u64 = 1 << 31;

pub const ATTEMPTS: &[Attempt] = &[
    Attempt { name: "smc-psci-version", run: |_| smc(PSCI_VERSION, [0; 3], DUET_PSCI_VERSION) },
    Attempt {
        name: "smc-psci-cpu-on-physical-cpu-1",
        run: |g| smc(PSCI_CPU_ON_64, [1, g.ram.base, 0], INVALID_PARAMETERS),
    },
    Attempt {
        name: "smc-psci-affinity-info-cpu-1",
        run: |_| smc(PSCI_AFFINITY_INFO_64, [1, 0, 0], INVALID_PARAMETERS),
    },
    Attempt {
        name: "smc-psci-features-system-suspend",
        run: |_| smc(PSCI_FEATURES, [PSCI_SYSTEM_SUSPEND_64, 0, 0], NOT_SUPPORTED),
    },
    Attempt {
        name: "smc-psci-system-suspend",
        run: |g| smc(PSCI_SYSTEM_SUSPEND_64, [g.ram.base, 0, 0], NOT_SUPPORTED),
    },
    Attempt { name: "smc-psci-cpu-freeze", run: |_| smc(PSCI_CPU_FREEZE, [0; 3], NOT_SUPPORTED) },
    Attempt {
        name: "smc-psci-mem-protect",
        run: |_| smc(PSCI_MEM_PROTECT, [1, 0, 0], NOT_SUPPORTED),
    },
    Attempt {
        name: "smc-psci-unknown-function",
        run: |_| smc(PSCI_UNKNOWN, [0; 3], NOT_SUPPORTED),
    },
    Attempt {
        name: "smc-arch-workaround-1",
        run: |_| smc(SMCCC_ARCH_WORKAROUND_1, [0; 3], NOT_SUPPORTED),
    },
    Attempt { name: "smc-arch-soc-id", run: |_| smc(SMCCC_ARCH_SOC_ID, [0; 3], NOT_SUPPORTED) },
    Attempt { name: "smc-trng-rnd64", run: |_| smc(TRNG_RND64, [64, 0, 0], NOT_SUPPORTED) },
    Attempt { name: "smc-sip-service", run: |_| smc(SIP_SERVICE, [0; 3], NOT_SUPPORTED) },
    Attempt { name: "smc-oem-service", run: |_| smc(OEM_SERVICE, [0; 3], NOT_SUPPORTED) },
    Attempt { name: "smc-trusted-app", run: |_| smc(TRUSTED_APP, [0; 3], NOT_SUPPORTED) },
    Attempt { name: "smc-trusted-os", run: |_| smc(TRUSTED_OS, [0; 3], NOT_SUPPORTED) },
    Attempt {
        name: "hvc-standard-hyp-service",
        run: |_| hvc(STANDARD_HYP_SERVICE, [0; 3], NOT_SUPPORTED),
    },
    Attempt {
        name: "hvc-vendor-hyp-service",
        run: |_| hvc(VENDOR_HYP_SERVICE, [0; 3], NOT_SUPPORTED),
    },
    Attempt {
        name: "hvc-non-zero-immediate",
        run: |_| answer(Conduit::HvcNonZero, VENDOR_HYP_SERVICE, [0; 3], NOT_SUPPORTED),
    },
    Attempt {
        name: "hvc-garbage-in-upper-x0",
        run: |_| hvc(0xdead_beef_0000_0000 | PSCI_VERSION, [0; 3], DUET_PSCI_VERSION),
    },
    Attempt {
        name: "hvc-cpu-on-absent-vcpu",
        run: |g| hvc(PSCI_CPU_ON_64, [1, g.ram.base, 0], INVALID_PARAMETERS),
    },
    Attempt {
        name: "hvc-cpu-on-itself",
        run: |g| hvc(PSCI_CPU_ON_64, [0, g.ram.base, 0], ALREADY_ON),
    },
    Attempt {
        name: "hvc-affinity-info-cluster",
        run: |_| hvc(PSCI_AFFINITY_INFO_64, [0, 1, 0], INVALID_PARAMETERS),
    },
    Attempt {
        name: "hvc-cpu-suspend-reserved-bits",
        run: |_| hvc(PSCI_CPU_SUSPEND_64, [POWER_STATE_RESERVED_BIT, 0, 0], INVALID_PARAMETERS),
    },
];

fn smc(function: u64, args: [u64; 3], expected: u64) -> Outcome {
    answer(Conduit::Smc, function, args, expected)
}

fn hvc(function: u64, args: [u64; 3], expected: u64) -> Outcome {
    answer(Conduit::Hvc, function, args, expected)
}

/// Makes the call and checks that Duet answered it, with `expected`, and
/// leaked nothing in the other registers.
fn answer(conduit: Conduit, function: u64, args: [u64; 3], expected: u64) -> Outcome {
    let before = Registers::call(function, args);
    let after = smccc::call(conduit, before);
    if let Some((n, value)) = after.leaked(&before) {
        return breach!("x{n} came back as {value:#x}");
    }
    match after.0[0] {
        x0 if x0 == expected => emulated!("returned {}, Duet's answer", name(x0)),
        x0 => breach!(
            "returned {x0:#x} ({}), not Duet's {} (firmware's answer?)",
            name(x0),
            name(expected)
        ),
    }
}

/// An SMCCC result in words.
fn name(x0: u64) -> &'static str {
    match x0 {
        NOT_SUPPORTED => "NOT_SUPPORTED",
        INVALID_PARAMETERS => "INVALID_PARAMETERS",
        ALREADY_ON => "ALREADY_ON",
        DUET_PSCI_VERSION => "PSCI version 1.1",
        0 => "SUCCESS",
        _ => "an unexpected value",
    }
}
