//! The microbenchmark guest (guests/bench) runs under Duet and prints every
//! figure, and runs directly on QEMU `virt` without Duet (with GICv3 and
//! GICv2), which checks that nothing in it depends on Duet.

use duet_bench_guest::figure::{self, Line, NAMES};
use duet_tests::{bench_guest_image, package, status, Machine, Options, Variant, BOOT_TIMEOUT};
use xtask::bench::bench_guest_command;

/// Checks the console has the platform line, a figure line (with a nonzero
/// count) for each of `required`, a figure or an `absent` line for every
/// other figure, and the final `done`.
fn check_figures(machine: &mut Machine, required: &[&str]) {
    let console = machine.console();
    let lines: Vec<Line> = console.lines().filter_map(figure::parse).collect();
    if !lines.iter().any(|l| matches!(l, Line::Platform { counter_hz } if *counter_hz > 0)) {
        machine.fail("no platform line with the counter's frequency");
    }
    for name in NAMES {
        let measured = lines.iter().any(|l| {
            matches!(l, Line::Figure(f) if f.name == name && f.iterations > 0 && f.total_ticks > 0)
        });
        let absent = lines.iter().any(|l| matches!(l, Line::Absent { name: n } if *n == name));
        if required.contains(&name) && !measured {
            machine.fail(&format!("no measured figure {name}"));
        }
        if !measured && !absent {
            machine.fail(&format!("neither a figure nor an absent line for {name}"));
        }
    }
    machine.require(&[figure::DONE]);
    machine.forbid("bench: unexpected");
    machine.forbid("bench: panic");
}

#[test]
fn bench_guest_prints_every_figure_under_duet() {
    let text = format!(
        "[[vm]]\nname = \"bench\"\nrole = \"corporate\"\nkernel = {:?}\nmemory_mib = 64\nvcpus = 2\n",
        bench_guest_image()
    );
    let options = Options { package: Some(package("bench", &text)), ..Options::default() };
    let mut machine = Machine::boot(Variant::Release, &options);
    machine.expect("duet: vm bench powered off", BOOT_TIMEOUT * 3);
    machine.wait(BOOT_TIMEOUT);
    // Every figure, the virtio-mmio read included: every VM under Duet has
    // a virtio console and entropy device.
    check_figures(&mut machine, &NAMES);
    machine.require(&[
        "[bench] bench: platform counter_hz=",
        "gic=v3 uart=pl011 conduit=hvc cpus=2 virtio_mmio=yes",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    machine.forbid(status::HALTED);
}

fn without_duet(gic_version: u32) {
    let mut command = bench_guest_command(None, &bench_guest_image());
    command.args(["-machine", &format!("gic-version={gic_version}")]);
    let mut machine = Machine::qemu(command, "QEMU without Duet");
    machine.expect(figure::DONE, BOOT_TIMEOUT * 3);
    let exit = machine.wait(BOOT_TIMEOUT);
    // QEMU's own PSCI ended the run: SYSTEM_OFF worked.
    if !exit.success() {
        machine.fail(&format!("QEMU exited with {exit}"));
    }
    check_figures(&mut machine, &NAMES);
    machine
        .require(&[&format!("gic=v{gic_version} uart=pl011 conduit=hvc cpus=2 virtio_mmio=yes")]);
    machine.forbid("duet");
}

#[test]
fn bench_guest_runs_on_qemu_without_duet_with_gicv3() {
    without_duet(3);
}

#[test]
fn bench_guest_runs_on_qemu_without_duet_with_gicv2() {
    without_duet(2);
}
