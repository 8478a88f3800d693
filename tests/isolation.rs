//! Isolation that holds: a guest reaches only its own RAM and the devices
//! its virtual platform gives it. Bare-metal probe guests (guests/probe) try
//! to break out beside other VMs and report, one line per attempt, what
//! happened; these tests hold every report to "contained", check that Duet
//! logged the faults and that the VM beside the attacker never noticed.
//!
//! - The attack guest runs its whole list beside Debian's Linux, which must
//!   answer on its console afterwards; on CPUs of their own, and with the
//!   attacker sharing a CPU with one of Linux's vCPUs.
//! - A secret planted in one VM's RAM and spare registers is searched for
//!   by another wherever it can read, and must not be found, whether or not
//!   they share a CPU; the hunter's stores to host RAM must all fault, and
//!   the planter's RAM must be as it left it.
//! - Console input typed for the Linux VM (the first of the manifest, which
//!   has the console) must never reach another VM.

use duet_tests::{probe_image, status, Machine, BOOT_TIMEOUT};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Linux under QEMU's software emulation, on a busy machine: generous.
const LINUX_BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

/// How an attempt's report line may end: an exception, or an answer that
/// only the guest's own virtual platform could give.
const CONTAINED: [&str; 3] =
    ["(contained)", "(emulated, reveals nothing)", "(its own RAM, reveals nothing)"];

/// Attempts whose exception must come from Duet (a synchronous external
/// abort it injected), not from the guest's own MMU: they prove the access
/// really went out to stage 2.
const STOPPED_BY_DUET: [&str; 14] = [
    "load-above-ram",
    "store-beyond-ipa",
    "load-host-ram-sweep",
    "store-host-ram-sweep",
    "load-gicr-of-vcpu-1",
    "store-gicr-waker-of-vcpu-1",
    "load-gic-its",
    "load-rtc",
    "load-unaligned-gicd",
    "store-crossing-ram-end",
    "dc-zva-hole",
    "execute-hole",
    "page-walk-through-hole",
    "load-simd-64-bytes-hole",
];

#[test]
fn attack_guest_is_contained_beside_linux() {
    attack_beside_linux("isolation-attack", None);
}

/// On 2 CPUs the attacker's vCPU takes turns with one of Linux's on the
/// same CPU: what Duet switches between them must hold too.
#[test]
fn attack_guest_is_contained_beside_linux_on_a_shared_cpu() {
    attack_beside_linux("isolation-attack-shared-cpu", Some("2"));
}

/// Runs the attack beside the personal Linux VM (first: it has the focus),
/// on `smp` CPUs (xtask's default if none), and checks the report, Duet's
/// log and that Linux still answers.
fn attack_beside_linux(name: &str, smp: Option<&str>) {
    let manifest =
        two_vms(name, &linux_vm("personal"), &probe_vm("attack", "corporate", "probe.mode=attack"));
    let mut run = xtask_run(&manifest, smp);
    let console = run.expect("duet: vm attack powered off", BOOT_TIMEOUT * 2);
    let attempts = attempt_lines(&mut run, &probe_lines(&console, "attack"));
    for name in STOPPED_BY_DUET {
        let line = attempts.iter().find(|(n, _)| n == name);
        if !line.is_some_and(|(_, outcome)| outcome.contains("injected by Duet")) {
            run.fail(&format!("attempt {name} was not stopped by Duet: {line:?}"));
        }
    }
    // Duet logged the faults (until its per-VM limit), and the attacker's
    // SYSTEM_OFF over SMC stopped that VM only.
    run.require(&[
        "WARN  vm attack vcpu 0: an address with neither memory nor a device",
        "probe: powering off with PSCI SYSTEM_OFF over SMC",
        "duet: vm attack powered off",
    ]);
    run.forbid(status::POWER_OFF);
    linux_still_answers(&mut run);
    // Last, so that a breach does not hide how the rest went.
    let escaped: Vec<String> = attempts
        .iter()
        .filter(|(_, outcome)| !CONTAINED.iter().any(|end| outcome.ends_with(end)))
        .map(|(name, outcome)| format!("{name}: {outcome}"))
        .collect();
    if !escaped.is_empty() {
        run.fail(&format!("attempts not contained:\n  {}", escaped.join("\n  ")));
    }
    let total = attempts.len();
    run.require(&[&format!(
        "[attack] probe: attack done: {total} attempts, {total} contained, 0 not contained"
    )]);
}

/// The attack's report `lines` as (name, outcome) pairs, one per attempt
/// the probe announced.
fn attempt_lines(run: &mut Machine, lines: &[String]) -> Vec<(String, String)> {
    let total = lines.iter().find_map(|line| number_after(line, "probe: attack: "));
    let Some(total) = total else {
        run.fail("no `probe: attack: N attempts` line");
    };
    let attempts: Vec<(String, String)> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("probe: attempt "))
        .filter_map(|rest| rest.split_once(": "))
        .map(|(name, outcome)| (name.to_string(), outcome.to_string()))
        .collect();
    if attempts.len() as u64 != total {
        run.fail(&format!("{} attempt lines for {total} attempts", attempts.len()));
    }
    attempts
}

#[test]
fn secret_planted_in_one_vm_is_not_found_by_another() {
    plant_and_hunt("isolation-secret", None);
}

/// With one CPU, planter and hunter take turns on it: what Duet does not
/// switch between vCPUs (registers, caches of state) would carry the secret.
#[test]
fn secret_planted_in_one_vm_is_not_found_by_another_on_the_same_cpu() {
    plant_and_hunt("isolation-secret-one-cpu", Some("1"));
}

/// Boots a planter (first: it has the console, and waits for a key) and a
/// hunter with the same random secret, on `smp` CPUs (xtask's default if
/// none), and checks the hunt found nothing and changed nothing.
fn plant_and_hunt(name: &str, smp: Option<&str>) {
    let secret = format!("{:016x}", random_secret());
    let plant = format!("probe.mode=plant probe.secret={secret} probe.linger=900");
    let manifest = two_vms(
        name,
        &probe_vm("plant", "corporate", &plant),
        &probe_vm("hunt", "personal", &format!("probe.mode=hunt probe.secret={secret}")),
    );
    let mut run = xtask_run(&manifest, smp);
    run.expect("[plant] probe: planted", BOOT_TIMEOUT);
    run.expect("[hunt] probe: hunt: stores to", BOOT_TIMEOUT * 5);
    run.expect("duet: vm hunt powered off", COMMAND);
    // The hunter is done; the planter checks its RAM once a key is typed.
    run.send("\n");
    run.expect("[plant] probe: plant: all", COMMAND);
    let exit = run.wait(COMMAND);
    let console = run.console();
    run.require(&[
        "[hunt] probe: hunt: self-check: a copy planted at",
        "[hunt] probe: hunt: secret not found in",
        "registers (",
        "of host RAM outside its own: all",
        "copies intact and nothing else written",
        "duet: vm plant powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    run.forbid("probe: hunt: found");
    run.forbid("probe: hunt: a store to");
    run.forbid(status::HALTED);
    if console.find("probe: planted") > console.find("probe: hunt: starting") {
        run.fail("the hunter started before the secret was planted");
    }
    check_hunt_counts(&mut run, &probe_lines(&console, "hunt"));
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// The hunt must have read all of its own RAM but its image (or it proves
/// little), and its total must include those pages.
fn check_hunt_counts(run: &mut Machine, hunt: &[String]) {
    let own = hunt.iter().find_map(|l| l.strip_prefix("probe: hunt: own RAM: "));
    let counts = own.map(numbers).unwrap_or_default();
    let [read, total, image] = counts[..] else {
        run.fail(&format!("no `own RAM: R of its P pages read (I ...)` line: {own:?}"));
    };
    if read + image != total {
        run.fail(&format!("the hunter read {read} of its {total} pages, skipping {image}"));
    }
    let not_found = hunt.iter().find_map(|l| l.strip_prefix("probe: hunt: secret not found in "));
    let counts = not_found.map(numbers).unwrap_or_default();
    let [_pages, readable, ..] = counts[..] else {
        run.fail(&format!("no `secret not found in N pages (M readable)` line: {not_found:?}"));
    };
    if readable < read {
        run.fail(&format!("{readable} readable pages, fewer than its own {read}"));
    }
}

#[test]
fn console_input_for_linux_never_reaches_another_vm() {
    let manifest = two_vms(
        "isolation-console",
        &linux_vm("personal"),
        &probe_vm("listen", "corporate", "probe.mode=listen probe.linger=20"),
    );
    let mut run = xtask_run(&manifest, None);
    run.expect("[listen] probe: listening", BOOT_TIMEOUT);
    // Typed while Linux boots: more than the 32 bytes its UART's receive
    // FIFO holds, so some wait in the physical UART for Linux to read.
    run.send("# keystrokes-for-the-personal-vm-only-0123456789-abcdefghijklmnop\n");
    run.expect("duet: vm listen powered off", LINUX_BOOT);
    let lines = probe_lines(&run.console(), "listen");
    let heard = lines.iter().find(|l| l.starts_with("probe: listen:")).cloned().unwrap_or_default();
    linux_still_answers(&mut run);
    // Last, so that a leak does not hide how the rest went.
    if !heard.contains("probe: listen: received nothing") {
        run.fail(&format!("console input typed for Linux reached the listener: {heard}"));
    }
}

/// The Linux VM answers a typed command; `poweroff -f` then ends the run
/// cleanly.
fn linux_still_answers(run: &mut Machine) {
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    let answer = run.shell("echo still-$((40+2))", PROMPT, COMMAND);
    if !answer.contains("still-42") {
        run.fail(&format!("`echo still-$((40+2))` printed {answer:?}"));
    }
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND * 2);
    run.require(&[
        "duet: vm personal powered off",
        &format!("{} every VM has powered off", status::POWER_OFF),
    ]);
    run.forbid(status::HALTED);
    run.forbid("duet: vm personal is restarting");
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// `cargo xtask run` of `manifest`, on `smp` CPUs if given.
fn xtask_run(manifest: &std::path::Path, smp: Option<&str>) -> Machine {
    let mut args = vec!["run", "--manifest", manifest.to_str().expect("UTF-8 path")];
    args.extend(smp.map(|cpus| ["--smp", cpus]).iter().flatten());
    Machine::xtask(&args)
}

/// A manifest of two VMs, `first` first (it has the console).
fn two_vms(name: &str, first: &str, second: &str) -> PathBuf {
    duet_tests::manifest(name, &format!("{first}\n{second}"))
}

/// The default personal Linux VM, with the kernel and initramfs xtask
/// fetches or builds.
fn linux_vm(name: &str) -> String {
    if let Err(e) = xtask::guest::default_manifest() {
        panic!("cannot get the Linux guest: {e:#}");
    }
    let guests = xtask::guest::guests_dir();
    format!(
        "[[vm]]\nname = {name:?}\nrole = \"personal\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 256\nvcpus = 2\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
    )
}

/// A probe VM with one vCPU and 64 MiB.
fn probe_vm(name: &str, role: &str, cmdline: &str) -> String {
    format!(
        "[[vm]]\nname = {name:?}\nrole = {role:?}\nkernel = {:?}\ncmdline = {cmdline:?}\n\
         memory_mib = 64\nvcpus = 1\n",
        probe_image()
    )
}

/// A 64-bit secret nobody could guess in advance: the clock and this
/// process's id, mixed (splitmix64's finaliser).
fn random_secret() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the probe VM `vm` printed, line by line, without the console's
/// `[vm] ` tags. The console breaks a guest's line when another VM prints
/// in the middle of it and prints it again from its start once it goes on;
/// `undo_reprints` drops the broken copy. Every line the probe prints
/// starts with `probe: `, so a tagged piece that does not (a line longer
/// than the console holds back) is joined to the line before it.
fn probe_lines(console: &str, vm: &str) -> Vec<String> {
    let tag = format!("[{vm}] ");
    let mut lines: Vec<String> = Vec::new();
    let console = duet_tests::undo_reprints(console);
    for piece in console.lines().filter_map(|line| line.strip_prefix(&tag)) {
        match lines.last_mut() {
            Some(last) if !piece.starts_with("probe: ") => last.push_str(piece),
            _ => lines.push(piece.to_string()),
        }
    }
    lines
}

/// The first number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    numbers(rest).first().copied()
}

/// The decimal numbers in `text`, in order (hex like 0x1f is skipped).
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_alphanumeric()).filter_map(|word| word.parse().ok()).collect()
}

#[test]
fn report_parsers_read_the_probe_s_lines() {
    assert_eq!(
        numbers("own RAM: 16338 of its 16384 pages read (46 of its image skipped)"),
        [16338, 16384, 46]
    );
    assert_eq!(numbers("787407 pages (16340 readable) in 8187 ms"), [787407, 16340, 8187]);
    assert_eq!(numbers("at 0x40000800 is found"), Vec::<u64>::new());
    assert_eq!(number_after("x\nprobe: attack: 158 attempts\n", "probe: attack: "), Some(158));
    let console = "[attack] probe: attempt a: ok\n[attack] probe: att\n[personal] / # \n\
                   [attack] empt b: ok\n[listen] probe: x\n";
    assert_eq!(probe_lines(console, "attack"), ["probe: attempt a: ok", "probe: attempt b: ok"]);
    assert_eq!(probe_lines(console, "listen"), ["probe: x"]);
    let reprinted = "[attack] probe: att\nduet: a line of Duet's\n[attack] probe: attempt c: ok\n";
    assert_eq!(probe_lines(reprinted, "attack"), ["probe: attempt c: ok"]);
}
