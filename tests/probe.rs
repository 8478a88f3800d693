//! The probe guest (guests/probe) boots on Duet from a persona manifest and
//! checks, from inside, that Duet answers what a guest may do (PSCI) and
//! turns what it may not do into exceptions in that guest, logged by Duet,
//! with Duet and the guest still running afterwards.

use duet_tests::{probe_manifest, status, Machine, Options, Variant, BOOT_TIMEOUT};

fn boot_probe() -> Machine {
    let package = xtask::personas::package(&probe_manifest(), duet_boards::default_board())
        .expect("the probe manifest packs");
    let options = Options { package: Some(package), ..Options::default() };
    let mut machine = Machine::boot(Variant::Release, &options);
    machine.wait(BOOT_TIMEOUT);
    machine
}

#[test]
fn probe_guest_gets_exceptions_for_what_it_may_not_do() {
    let mut machine = boot_probe();
    machine.require(&[
        "duet: vm probe (Corporate): 1 vcpus, 64 MiB",
        "probe: started at EL1",
        "probe: PSCI version 1.1",
        // A load from a hole: Duet logs it and the guest sees a synchronous
        // external abort (class 0x25, taken at its own EL1) at that address.
        "vm probe vcpu 0: an address with neither memory nor a device",
        "injecting a synchronous external abort (FAR 0x10000000)",
        "probe: load from a hole: exception class 0x25, FAR 0x10000000",
        // An SVE instruction reaches Duet, which does not handle that class:
        // logged, and the guest gets an undefined-instruction exception.
        "an instruction Duet does not handle: EC 0x19: trapped SVE access",
        "probe: SVE instruction: exception class 0x0",
        "probe: still running; powering off",
        "duet: vm probe powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    machine.forbid(status::HALTED);
    machine.forbid("NO EXCEPTION");
}
