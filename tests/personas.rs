//! Two personas side by side: a personal and a corporate Linux guest boot
//! together, each answers on the console when it has the input focus, their
//! vCPUs share CPUs when there are fewer CPUs than vCPUs, idle CPUs sleep
//! without a tick from Duet, a guest that crashes restarts (or stays off) as
//! its manifest says while the other carries on, and each powers off on its
//! own.

use duet_tests::{manifest, status, Machine};
use std::path::PathBuf;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
const PROMPT: &str = "/ # ";
/// Moves the console input focus to the next VM (see the README).
const NEXT_VM: &str = "\x1dn";
/// Asks Duet to print its counters.
const COUNTERS: &str = "\x1ds";

/// A manifest with a personal VM (2 vCPUs) and a corporate VM (1 vCPU),
/// both Debian's kernel with the busybox initramfs.
fn two_personas(name: &str) -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let vm = |name: &str, role: &str, vcpus: u32| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{role}\"\nkernel = {:?}\ninitrd = {:?}\n\
             cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 256\nvcpus = {vcpus}\n\n",
            guests.join("Image"),
            guests.join("initramfs.cpio"),
        )
    };
    manifest(name, &(vm("personal", "personal", 2) + &vm("corporate", "corporate", 1)))
}

fn boot(name: &str, smp: &str) -> Machine {
    let path = two_personas(name);
    let mut run = Machine::xtask(&["run", "--smp", smp, "--manifest", path.to_str().unwrap()]);
    for vm in ["personal", "corporate"] {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    // The VM with the focus shows its prompt; the other's shows once it gets the focus.
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.expect("[personal] duet-guest: cpus online: 2", COMMAND);
    run.expect("[corporate] duet-guest: cpus online: 1", COMMAND);
    run
}

/// Types `command` into the VM with the focus and checks `answer` comes
/// back tagged with `vm`.
fn ask(run: &mut Machine, vm: &str, command: &str, answer: &str) {
    let output = run.shell(command, PROMPT, COMMAND);
    let expected = format!("[{vm}] {answer}");
    if !output.contains(&expected) {
        run.fail(&format!("`{command}` did not answer {expected:?}: {output:?}"));
    }
}

fn power_off_both(run: &mut Machine) {
    run.power_off_personal_then_corporate(COMMAND);
}

#[test]
fn three_vcpus_on_two_cpus_answer_through_the_focus_switch() {
    let mut run = boot("two-personas-smp2", "2");
    run.require(&["cpus    2 in the device tree"]);
    ask(&mut run, "personal", "echo personal-$((20 + 1))", "personal-21");

    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm corporate", COMMAND);
    run.expect_since(mark, &format!("[corporate] {PROMPT}"), COMMAND);
    ask(&mut run, "corporate", "echo corporate-$((40 + 2))", "corporate-42");
    // Input went only to the VM with the focus.
    run.forbid("[personal] corporate-42");

    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm personal", COMMAND);
    ask(&mut run, "personal", "nproc", "2");
    power_off_both(&mut run);
}

/// One CPU's counters from a `duet: cpuN: idle sleeps S, Duet timer
/// interrupts T` line in `console`, the last one printed.
fn cpu_counters(console: &str, cpu: usize) -> Option<(u64, u64)> {
    let prefix = format!("duet: cpu{cpu}: idle sleeps ");
    let line = console.lines().rfind(|l| l.starts_with(&prefix))?;
    let (sleeps, timer) = line.strip_prefix(&prefix)?.split_once(", Duet timer interrupts ")?;
    Some((sleeps.trim().parse().ok()?, timer.trim().parse().ok()?))
}

#[test]
fn idle_personas_sleep_without_a_tick_from_duet() {
    let mut run = boot("two-personas-idle", "4");
    let mark = run.mark();
    run.send(COUNTERS);
    let before = run.expect_since(mark, "duet: cpu3: idle sleeps", COMMAND);
    std::thread::sleep(Duration::from_secs(10));
    let mark = run.mark();
    run.send(COUNTERS);
    let after = run.expect_since(mark, "duet: cpu3: idle sleeps", COMMAND);
    // CPUs 0-2 each run one vCPU; CPU 3 has none.
    for cpu in 0..3 {
        let (Some(b), Some(a)) = (cpu_counters(&before, cpu), cpu_counters(&after, cpu)) else {
            run.fail(&format!("no counters for cpu{cpu}"));
        };
        let (sleeps, timer) = (a.0 - b.0, a.1 - b.1);
        println!("cpu{cpu} over 10 s idle: {sleeps} WFI sleeps, {timer} Duet timer interrupts");
        if sleeps == 0 {
            run.fail(&format!("cpu{cpu} never slept in WFI while its guest idled"));
        }
        if timer != 0 {
            run.fail(&format!("cpu{cpu} took {timer} interrupts from Duet's own timer while idle"));
        }
    }
    power_off_both(&mut run);
}

#[test]
fn counter_lines_are_read() {
    let console = "duet: cpu0: idle sleeps 3, Duet timer interrupts 0\n\
                   duet: cpu0: idle sleeps 9, Duet timer interrupts 2\n";
    assert_eq!(cpu_counters(console, 0), Some((9, 2)));
    assert_eq!(cpu_counters(console, 1), None);
}

/// Two personas where the corporate one panics on request and reboots
/// (`panic=1`), with its reset policy `policy`.
fn crashing_corporate(name: &str, policy: &str) -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let vm = |name: &str, role: &str, vcpus: u32, extra: &str| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{role}\"\nkernel = {:?}\ninitrd = {:?}\n\
             cmdline = \"console=ttyAMA0 quiet panic=1\"\nmemory_mib = 256\nvcpus = {vcpus}\n{extra}\n",
            guests.join("Image"),
            guests.join("initramfs.cpio"),
        )
    };
    let corporate = vm("corporate", "corporate", 1, &format!("on_reset = \"{policy}\"\n"));
    manifest(name, &(vm("personal", "personal", 2, "") + &corporate))
}

/// Boots `manifest`, crashes the corporate guest from its own shell and
/// returns the machine and the console mark from before the crash.
fn crash_corporate(manifest: PathBuf) -> (Machine, usize) {
    let mut run = Machine::xtask(&["run", "--manifest", manifest.to_str().unwrap()]);
    for vm in ["personal", "corporate"] {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm corporate", COMMAND);
    run.expect_since(mark, &format!("[corporate] {PROMPT}"), COMMAND);
    let mark = run.mark();
    run.send("echo c > /proc/sysrq-trigger\n");
    run.expect_since(mark, "Kernel panic - not syncing: sysrq triggered crash", COMMAND);
    (run, mark)
}

/// The personal guest still answers (the focus is moved to it first).
fn personal_still_answers(run: &mut Machine, mark: usize) {
    run.send(NEXT_VM);
    run.expect_since(mark, "duet: console input now goes to vm personal", COMMAND);
    ask(run, "personal", "echo alive-$((7 * 6))", "alive-42");
}

#[test]
fn a_crashed_persona_restarts_and_the_other_keeps_running() {
    let (mut run, mark) = crash_corporate(crashing_corporate("crash-restart", "restart"));
    run.expect_since(mark, "duet: vm corporate is restarting", COMMAND);
    let restarted = run.expect_after(mark, "[corporate] duet-guest: init ran", LINUX_BOOT);
    run.expect_since(restarted, &format!("[corporate] {PROMPT}"), COMMAND);
    personal_still_answers(&mut run, mark);
    power_off_both(&mut run);
}

#[test]
fn a_crashed_persona_with_stay_off_stays_off() {
    let (mut run, mark) = crash_corporate(crashing_corporate("crash-stay-off", "stay-off"));
    run.expect_since(mark, "duet: vm corporate reset itself; its policy is stay-off", COMMAND);
    personal_still_answers(&mut run, mark);
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND);
    run.require(&[&format!("{} every VM has powered off", status::POWER_OFF)]);
    let after = run.console()[mark..].to_string();
    if after.contains("[corporate] duet-guest: init ran") {
        run.fail("the corporate VM restarted although its policy is stay-off");
    }
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}
