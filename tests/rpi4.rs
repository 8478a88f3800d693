//! Duet on the Raspberry Pi 4, as QEMU's `raspi4b` models it: entered at
//! EL2 at 0x80000 with Debian's bcm2711-rpi-4-b.dtb, secondary CPUs started
//! from their spin tables, the GIC-400 virtualized for guests; the Debian
//! kernel boots as a guest with 2 vCPUs on the virtual GICv2, answers on its
//! console and powers off, and Duet then powers the board off through the
//! BCM2835 watchdog (QEMU exits).

use duet_tests::{Machine, BOOT_TIMEOUT};
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

/// What Duet says about the board before any VM starts.
const PI_BANNER: &[&str] = &[
    "Duet 0.1.0 -- a hypervisor for phones, at EL2",
    "  board   Raspberry Pi 4 Model B",
    "  cpus    4 in the device tree, boot cpu MPIDR 0x0",
    "  image   ",
    "KiB at 0x80000",
    "  gic     GICv2, distributor 0xff841000, cpu interface 0xff842000, virtualization yes",
    "  uart    PL011 at 0xfe201000",
    "  psci    none",
    "all 4 cpus online at EL2",
];

#[test]
fn debian_linux_boots_on_the_raspberry_pi_4_with_two_vcpus() {
    let mut run = Machine::xtask(&["run", "--board", "rpi4"]);
    run.expect("all 4 cpus online at EL2", BOOT_TIMEOUT);
    run.require(PI_BANNER);
    for cpu in 1..4 {
        run.require(&[&format!("cpu{cpu} INFO  cpu{cpu} online at EL2 (MPIDR {cpu:#x})")]);
    }
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.require(&[
        "duet: vm personal (Personal): 2 vcpus, 256 MiB",
        "[personal] duet-guest: cpus online: 2",
    ]);
    let output = run.shell("grep arch_timer /proc/interrupts", PROMPT, COMMAND);
    let counts = timer_counts(&output);
    if !output.contains("GIC-0") || counts.len() != 2 || counts.contains(&0) {
        run.fail(&format!("timer interrupts per CPU: {counts:?} in {output:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND * 2);
}

/// The per-CPU counts of the line of /proc/interrupts that names arch_timer.
fn timer_counts(output: &str) -> Vec<u64> {
    let Some(line) = output.lines().find(|l| l.contains("arch_timer") && l.contains(':')) else {
        return Vec::new();
    };
    let after_colon = line.split_once(':').map(|(_, rest)| rest).unwrap_or("");
    after_colon.split_whitespace().map_while(|w| w.parse().ok()).collect()
}
