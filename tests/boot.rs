//! Duet boots at EL2 on QEMU virt, brings up every CPU and powers off when
//! its VM has, through the same command a developer types; and refuses
//! clearly to run below EL2.

use duet_tests::{probe_manifest, status, Machine, BOOT_TIMEOUT};

#[test]
fn xtask_run_boots_at_el2_with_four_cpus_and_powers_off() {
    // The probe guest powers itself off, so the run ends on its own.
    let manifest = probe_manifest();
    let mut run = Machine::xtask(&["run", "--manifest", manifest.to_str().expect("UTF-8 path")]);
    let exit = run.wait(BOOT_TIMEOUT * 3);
    run.require(&[
        "Duet 0.1.0 -- a hypervisor for phones, at EL2",
        "  cpus    4 in the device tree, boot cpu MPIDR 0x0",
        "  memory  2048 MiB at [0x40000000..0xc0000000)",
        "  gic     GICv3, distributor 0x8000000, redistributors 0x80a0000",
        "  uart    PL011 at 0x9000000",
        "  timer   1000000000 Hz",
        "  psci    1.1 over SMC",
        "all 4 cpus online at EL2",
        "duet: vm probe powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    for cpu in 1..4 {
        run.require(&[&format!("cpu{cpu} INFO  cpu{cpu} online at EL2 (MPIDR {cpu:#x})")]);
    }
    run.forbid(status::HALTED);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

#[test]
fn xtask_run_below_el2_says_so_and_fails() {
    let manifest = probe_manifest();
    let manifest = manifest.to_str().expect("UTF-8 path");
    let mut run =
        Machine::xtask(&["run", "--manifest", manifest, "--", "-machine", "virtualization=off"]);
    let exit = run.wait(BOOT_TIMEOUT * 3);
    run.require(&[&format!("{} not started at EL2 (running at EL1)", status::HALTED)]);
    run.forbid("online at EL2");
    if exit.success() {
        run.fail("`cargo xtask run` exited with success although Duet could not start");
    }
}
