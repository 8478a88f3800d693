//! An unmodified Debian arm64 Linux kernel boots as a guest under Duet, from
//! the default persona set that `cargo xtask run` boots (the personal VM,
//! with a corporate one beside it), and is checked from inside: init runs,
//! both vCPUs are online, time passes at the right rate, the
//! interrupt-driven console answers typed commands, `reboot` restarts the
//! VM, and `poweroff` (in both VMs) ends the whole run cleanly. A second
//! Debian kernel (bookworm's Linux 6.1) boots just as well from a manifest
//! that names it: nothing in Duet is specific to one kernel build.

use duet_tests::{status, Machine};
use std::time::Duration;
use xtask::guest::{self, LINUX_6_1};

/// Linux under QEMU's software emulation, on a busy machine: generous.
const LINUX_BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

#[test]
fn debian_linux_boots_with_two_vcpus_and_answers_on_its_console() {
    let mut run = Machine::xtask(&["run"]);
    // Only the VM with the focus shows its prompt; the other's lines come whole.
    run.expect("[corporate] duet-guest: init ran", LINUX_BOOT);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.require(&[
        "duet: vm personal (Personal): 2 vcpus, 256 MiB",
        "[personal] duet-guest: cpus online: 2",
    ]);

    // The shell evaluates what is typed: the answer is not an echo.
    let answer = run.shell("echo duet-$((6 * 7))", PROMPT, COMMAND);
    if !answer.contains("duet-42") {
        run.fail(&format!("`echo duet-$((6 * 7))` printed {answer:?}"));
    }

    // Guest time: `sleep 1` takes about a second.
    let output = run.shell("time sleep 1", PROMPT, COMMAND);
    let seconds =
        real_seconds(&output).unwrap_or_else(|| run.fail(&format!("no `real` time in {output:?}")));
    if !(0.9..1.5).contains(&seconds) {
        run.fail(&format!("`sleep 1` took {seconds} s of guest time"));
    }

    // Both vCPUs take timer interrupts through the virtual GIC.
    let output = run.shell("grep arch_timer /proc/interrupts", PROMPT, COMMAND);
    let counts = timer_counts(&output);
    if counts.len() != 2 || counts.contains(&0) {
        run.fail(&format!("timer interrupts per CPU: {counts:?} in {output:?}"));
    }

    // A reset (PSCI SYSTEM_RESET) restarts the VM from its images.
    let mark = run.mark();
    run.send("reboot -f\n");
    run.expect_since(mark, "duet: vm personal is restarting", COMMAND);
    let restarted = run.expect_after(mark, "[personal] duet-guest: init ran", LINUX_BOOT);
    let after_reboot = run.expect_since(restarted, &format!("[personal] {PROMPT}"), COMMAND);
    if !after_reboot.contains("[personal] duet-guest: cpus online: 2") {
        run.fail("after the reset, not both vCPUs came online");
    }

    // The corporate VM still runs beside it: both are powered off.
    run.power_off_personal_then_corporate(COMMAND * 2);
}

#[test]
fn another_debian_kernel_boots_from_its_manifest() {
    let kernel = guest::debian_kernel_series(LINUX_6_1)
        .unwrap_or_else(|e| panic!("cannot fetch Debian's Linux 6.1: {e:#}"));
    let initramfs = guest::busybox_initramfs()
        .unwrap_or_else(|e| panic!("cannot build the busybox initramfs: {e:#}"));
    let text = format!(
        "[[vm]]\nname = \"linux-6-1\"\nrole = \"personal\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 256\nvcpus = 2\n",
        kernel.image, initramfs
    );
    let manifest = duet_tests::manifest("linux-6-1", &text);
    let path = manifest.to_str().expect("the workspace path is UTF-8");

    let mut run = Machine::xtask(&["run", "--manifest", path]);
    run.expect("[linux-6-1] duet-guest: init ran", LINUX_BOOT);
    run.expect(PROMPT, COMMAND);
    run.require(&[
        "duet: vm linux-6-1 (Personal): 2 vcpus, 256 MiB",
        "[linux-6-1] duet-guest: cpus online: 2",
    ]);

    // The kernel that runs is the one the manifest names, not the default.
    let release = run.shell("uname -r", PROMPT, COMMAND);
    let release = release
        .lines()
        .map(|line| line.trim_start_matches("[linux-6-1]").trim())
        .find(|line| !line.is_empty())
        .unwrap_or("");
    if release != kernel.release || release.contains("6.12") {
        run.fail(&format!("`uname -r` printed {release:?}, not {:?}", kernel.release));
    }

    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND * 2);
    run.require(&[
        "duet: vm linux-6-1 powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    run.forbid(status::HALTED);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// Seconds from busybox's `real\t0m 1.01s` (behind Duet's `[vm]` tag).
fn real_seconds(output: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains("real\t"))?;
    let after = &line[line.find("real\t")? + "real\t".len()..];
    let (minutes, seconds) = after.trim().split_once('m')?;
    let seconds = seconds.trim().strip_suffix('s')?.parse::<f64>().ok()?;
    Some(minutes.trim().parse::<f64>().ok()? * 60.0 + seconds)
}

/// The per-CPU counts of the line of /proc/interrupts that names arch_timer.
fn timer_counts(output: &str) -> Vec<u64> {
    let Some(line) = output.lines().find(|l| l.contains("arch_timer") && l.contains(':')) else {
        return Vec::new();
    };
    let after_colon = line.split_once(':').map(|(_, rest)| rest).unwrap_or("");
    after_colon.split_whitespace().map_while(|w| w.parse().ok()).collect()
}

#[test]
fn time_and_interrupt_parsers_read_busybox_and_proc() {
    assert_eq!(real_seconds("real\t0m 1.01s\nuser\t0m 0.00s\n"), Some(1.01));
    assert_eq!(real_seconds("[personal] real\t0m 2.50s\r\n"), Some(2.5));
    assert_eq!(real_seconds("nothing"), None);
    let line = " 11:        608        490 GICv3  27 Level     arch_timer\n";
    assert_eq!(timer_counts(line), [608, 490]);
}
