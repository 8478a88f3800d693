//! Power-aware scheduling, judged from Duet's counters: a background
//! persona spinning gets about its CPU budget while the foreground persona
//! still answers; background timers with a slack wake their CPU far less
//! often than the same timers without, and less again with the screen off
//! and a longer screen-off slack; and the energy lines printed at
//! power-off name every persona and add up to the total.

use duet_tests::{manifest, status, Machine};
use std::path::PathBuf;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
const PROMPT: &str = "/ # ";
const NEXT_VM: &str = "\x1dn";
const COUNTERS: &str = "\x1ds";
const SCREEN: &str = "\x1do";

/// A Linux VM's `[[vm]]` table (Debian's kernel, the busybox initramfs)
/// followed by `power`, its `[vm.power]` keys if any.
fn linux_vm(name: &str, role: &str, vcpus: u32, power: &str) -> String {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let power = if power.is_empty() { String::new() } else { format!("[vm.power]\n{power}\n") };
    format!(
        "[[vm]]\nname = \"{name}\"\nrole = \"{role}\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 192\nvcpus = {vcpus}\n{power}\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
    )
}

fn boot(manifest: PathBuf, vms: &[&str]) -> Machine {
    boot_on(manifest, vms, "4")
}

fn boot_on(manifest: PathBuf, vms: &[&str], smp: &str) -> Machine {
    let mut run = Machine::xtask(&["run", "--smp", smp, "--manifest", manifest.to_str().unwrap()]);
    for vm in vms {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    run.expect(&format!("[{}] {PROMPT}", vms[0]), COMMAND);
    run.expect(&format!("duet: vm {} is in the foreground", vms[0]), COMMAND);
    run
}

/// Moves the focus to the next VM, which must be `vm`.
fn focus(run: &mut Machine, vm: &str) {
    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, &format!("duet: console input now goes to vm {vm}"), COMMAND);
}

/// Types `command` into the focused VM `vm` and checks `answer` comes back.
fn ask(run: &mut Machine, vm: &str, command: &str, answer: &str) {
    let output = run.shell(command, PROMPT, COMMAND);
    if !output.contains(&format!("[{vm}] {answer}")) {
        run.fail(&format!("`{command}` in {vm} did not answer {answer:?}: {output:?}"));
    }
}

/// One `Ctrl-] s` print-out: it ends with the heap line.
fn counters(run: &mut Machine) -> String {
    let mark = run.mark();
    run.send(COUNTERS);
    run.expect_since(mark, "duet: heap ", COMMAND)
}

/// Duet's uptime from a print-out, in milliseconds.
fn uptime_ms(text: &str) -> Option<u64> {
    let line = text.lines().rfind(|l| l.starts_with("duet: uptime "))?;
    seconds_ms(line.strip_prefix("duet: uptime ")?.strip_suffix(" s")?)
}

/// "12.345" as 12345.
fn seconds_ms(text: &str) -> Option<u64> {
    let (s, ms) = text.split_once('.')?;
    Some(s.parse::<u64>().ok()? * 1000 + ms.parse::<u64>().ok()?)
}

/// A field of the last `duet: vm NAME: ...` counters line.
fn vm_field(text: &str, vm: &str, field: &str) -> Option<u64> {
    let prefix = format!("duet: vm {vm}: guest time ");
    let line = text.lines().rfind(|l| l.starts_with(&prefix))?;
    match field {
        "guest_ms" => seconds_ms(line.strip_prefix(&prefix)?.split_once(" s")?.0),
        "wakeups" => line.rsplit_once(", wakeups ")?.1.trim().parse().ok(),
        _ => None,
    }
}

/// The last energy line of `persona`: (cpu_ms, wakeups, energy in µJ).
fn energy_line(text: &str, persona: &str) -> Option<(u64, u64, u64)> {
    let prefix = format!("duet: energy persona={persona} ");
    let line = text.lines().rfind(|l| l.starts_with(&prefix))?;
    let mut fields = line.strip_prefix(&prefix)?.split(' ');
    let mut next = |key: &str| fields.next()?.strip_prefix(key).map(str::to_string);
    let cpu_ms = next("cpu_ms=")?.parse().ok()?;
    let wakeups = next("wakeups=")?.parse().ok()?;
    let energy = seconds_ms(&next("energy_mj=")?)?;
    Some((cpu_ms, wakeups, energy))
}

/// Powers off every VM in `vms`, in order, starting with the focused one,
/// and checks the energy lines at power-off: one per VM, adding up to the
/// total.
fn power_off_and_check_energy(run: &mut Machine, vms: &[&str]) {
    let mark = run.mark();
    for (i, vm) in vms.iter().enumerate() {
        if i > 0 {
            focus(run, vm);
        }
        run.send("poweroff -f\n");
        if i + 1 < vms.len() {
            run.expect_since(mark, &format!("duet: vm {vm} powered off"), COMMAND);
        }
    }
    let exit = run.wait(COMMAND);
    run.require(&[&format!("{} every VM has powered off", status::POWER_OFF)]);
    run.forbid(status::HALTED);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    let end = run.console()[mark..].to_string();
    let mut sum = (0, 0, 0);
    for vm in vms {
        let Some((cpu_ms, wakeups, energy)) = energy_line(&end, vm) else {
            run.fail(&format!("no energy line for {vm} at power-off"));
        };
        println!("{vm}: cpu {cpu_ms} ms, {wakeups} wakeups, {energy} µJ");
        if energy == 0 || cpu_ms == 0 {
            run.fail(&format!("{vm} ran and yet cost nothing"));
        }
        sum = (sum.0 + cpu_ms, sum.1 + wakeups, sum.2 + energy);
    }
    let Some(total) = energy_line(&end, "total") else { run.fail("no energy total at power-off") };
    if total != sum {
        run.fail(&format!(
            "the personas' energy lines add up to {sum:?}, the total says {total:?}"
        ));
    }
}

#[test]
fn a_background_hog_gets_its_budget_and_the_foreground_still_runs() {
    const BUDGET: u64 = 20;
    let text = linux_vm("personal", "personal", 2, "")
        + &linux_vm(
            "corporate",
            "corporate",
            1,
            &format!("background_cpu_percent = {BUDGET}\nbackground_timer_slack_ms = 50"),
        );
    let mut run = boot(manifest("power-hog", &text), &["personal", "corporate"]);
    focus(&mut run, "corporate");
    run.send("while :; do :; done &\n");
    std::thread::sleep(Duration::from_secs(2));
    let before = counters(&mut run);
    std::thread::sleep(Duration::from_secs(10));
    let after = counters(&mut run);
    let get = |text: &str, field| vm_field(text, "corporate", field);
    let (Some(t0), Some(t1), Some(g0), Some(g1)) =
        (uptime_ms(&before), uptime_ms(&after), get(&before, "guest_ms"), get(&after, "guest_ms"))
    else {
        run.fail("the counters lack the uptime or corporate's guest time");
    };
    let share = (g1 - g0) * 100 / (t1 - t0).max(1);
    println!("corporate spinning in the background: {} ms of {} ms, {share}%", g1 - g0, t1 - t0);
    if !(BUDGET - 5..=BUDGET + 5).contains(&share) {
        run.fail(&format!("the background hog got {share}% of a CPU, its budget is {BUDGET}%"));
    }
    // The energy lines while running: the hog costs more than before.
    let (Some(e0), Some(e1)) =
        (energy_line(&before, "corporate"), energy_line(&after, "corporate"))
    else {
        run.fail("no energy line in the counters");
    };
    if e1.2 <= e0.2 || e1.0 <= e0.0 {
        run.fail(&format!("corporate's energy line did not grow: {e0:?} then {e1:?}"));
    }

    // The foreground persona still runs, and quickly.
    focus(&mut run, "personal");
    ask(
        &mut run,
        "personal",
        "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo done-$i",
        "done-2000",
    );
    power_off_and_check_energy(&mut run, &["personal", "corporate"]);
}

/// The share of a CPU (percent) `vm` used over `seconds` from now.
fn share_over(run: &mut Machine, vm: &str, seconds: u64) -> u64 {
    let before = counters(run);
    std::thread::sleep(Duration::from_secs(seconds));
    let after = counters(run);
    let (Some(t0), Some(t1), Some(g0), Some(g1)) = (
        uptime_ms(&before),
        uptime_ms(&after),
        vm_field(&before, vm, "guest_ms"),
        vm_field(&after, vm, "guest_ms"),
    ) else {
        run.fail(&format!("the counters lack the uptime or {vm}'s guest time"));
    };
    (g1 - g0) * 100 / (t1 - t0).max(1)
}

#[test]
fn a_background_persona_may_use_an_idle_cpu_only_while_the_foreground_leaves_it() {
    // Two CPUs: CPU 0 runs personal's vCPU 0 and corporate's vCPU, CPU 1
    // personal's vCPU 1.
    let text = linux_vm("personal", "personal", 2, "")
        + &linux_vm(
            "corporate",
            "corporate",
            1,
            "background_cpu_percent = 20\nbackground_may_use_idle = true",
        );
    let mut run = boot_on(manifest("power-idle-use", &text), &["personal", "corporate"], "2");
    focus(&mut run, "corporate");
    run.send("while :; do :; done &\n");
    focus(&mut run, "personal");
    std::thread::sleep(Duration::from_secs(2));
    let alone = share_over(&mut run, "corporate", 6);
    println!("corporate spinning, CPU 0 otherwise idle: {alone}%");
    if alone < 60 {
        run.fail(&format!("with the foreground idle, the background got only {alone}%"));
    }

    // The foreground spins on CPU 0 too: the background keeps to its budget.
    run.send("taskset 1 sh -c 'while :; do :; done' &\n");
    std::thread::sleep(Duration::from_secs(2));
    let contended = share_over(&mut run, "corporate", 6);
    println!("corporate spinning, personal spinning on CPU 0: {contended}%");
    if !(12..=28).contains(&contended) {
        run.fail(&format!("beside a busy foreground the background got {contended}%, budget 20%"));
    }

    // The foreground stops; the screen goes off: the budget holds even on
    // an idle CPU.
    ask(&mut run, "personal", "kill %1; echo killed-$((2 * 21))", "killed-42");
    let mark = run.mark();
    run.send("\x1do");
    run.expect_since(mark, "duet: screen off: every VM is in the background", COMMAND);
    std::thread::sleep(Duration::from_secs(2));
    let screen_off = share_over(&mut run, "corporate", 6);
    println!("corporate spinning, screen off, CPU 0 otherwise idle: {screen_off}%");
    if !(12..=28).contains(&screen_off) {
        run.fail(&format!("with the screen off the background got {screen_off}%, budget 20%"));
    }
    let mark = run.mark();
    run.send("\x1do");
    run.expect_since(mark, "duet: screen on: vm personal is in the foreground", COMMAND);
    power_off_and_check_energy(&mut run, &["personal", "corporate"]);
}

/// Each VM's wakeups over the next 10 s.
fn wakeups_over_10_s(run: &mut Machine, vms: [&str; 2]) -> [u64; 2] {
    let before = counters(run);
    std::thread::sleep(Duration::from_secs(10));
    let after = counters(run);
    let wakeups =
        |vm: &str| Some(vm_field(&after, vm, "wakeups")? - vm_field(&before, vm, "wakeups")?);
    let (Some(first), Some(second)) = (wakeups(vms[0]), wakeups(vms[1])) else {
        run.fail("the counters lack the wakeups");
    };
    [first, second]
}

#[test]
fn background_timer_slack_cuts_wakeups() {
    // Two background personas each wake every 10 ms; one may be 100 ms
    // late, and a second late with the screen off.
    let text = linux_vm("personal", "personal", 1, "")
        + &linux_vm("strict", "corporate", 1, "")
        + &linux_vm(
            "slack",
            "corporate",
            1,
            "background_timer_slack_ms = 100\nscreen_off_timer_slack_ms = 1000",
        );
    let vms = ["personal", "strict", "slack"];
    let mut run = boot(manifest("power-slack", &text), &vms);
    for vm in ["strict", "slack"] {
        focus(&mut run, vm);
        run.send("while :; do usleep 10000; done &\n");
    }
    focus(&mut run, "personal");
    std::thread::sleep(Duration::from_secs(2));
    let [strict, slack] = wakeups_over_10_s(&mut run, ["strict", "slack"]);
    println!(
        "wakeups over 10 s of a 10 ms timer loop: {strict} without slack, {slack} with 100 ms"
    );
    if strict < 200 {
        run.fail(&format!("the loop without slack woke only {strict} times in 10 s"));
    }
    if slack * 5 > strict {
        run.fail(&format!("100 ms of slack cut wakeups only from {strict} to {slack}"));
    }
    let mark = run.mark();
    run.send(SCREEN);
    run.expect_since(mark, "duet: screen off", COMMAND);
    std::thread::sleep(Duration::from_secs(2));
    let [strict_off, slack_off] = wakeups_over_10_s(&mut run, ["strict", "slack"]);
    println!("with the screen off: {strict_off} without slack, {slack_off} with 1000 ms");
    if strict_off < 200 {
        run.fail(&format!("with the screen off the strict loop woke only {strict_off} times"));
    }
    if slack_off * 4 > slack || slack_off > 25 {
        run.fail(&format!("the screen-off slack cut wakeups only from {slack} to {slack_off}"));
    }
    run.send(SCREEN);
    run.expect_since(mark, "duet: screen on", COMMAND);
    ask(&mut run, "personal", "echo still-$((3 * 14))", "still-42");
    power_off_and_check_energy(&mut run, &vms);
}

/// A CPU's idle-state sleeps from the last `duet: cpuN: idle-state sleeps
/// state0 N ...` line.
fn idle_state_sleeps(text: &str, cpu: usize) -> Option<u64> {
    let prefix = format!("duet: cpu{cpu}: idle-state sleeps state0 ");
    let line = text.lines().rfind(|l| l.starts_with(&prefix))?;
    line.strip_prefix(&prefix)?.split(' ').next()?.parse().ok()
}

/// A field of CPU `cpu`'s last `duet: cpuN: residency off=P% ... offs=N`
/// line (`off`, `state1`, `offs`), without its `%`.
fn residency(text: &str, cpu: usize, field: &str) -> Option<f64> {
    let prefix = format!("duet: cpu{cpu}: residency ");
    let line = text.lines().rfind(|l| l.starts_with(&prefix))?;
    let key = format!("{field}=");
    let value = line[prefix.len()..].split(' ').find_map(|kv| kv.strip_prefix(key.as_str()))?;
    value.trim_end_matches('%').parse().ok()
}

/// CPU `cpu`'s vCPUs from the last `duet: cpuN: placed ...` line.
fn placed(text: &str, cpu: usize) -> Option<String> {
    let prefix = format!("duet: cpu{cpu}: placed ");
    let line = text.lines().rfind(|l| l.starts_with(&prefix))?;
    Some(line[prefix.len()..].trim().to_string())
}

/// Toggles the screen with `Ctrl-] o` and waits for the new placement.
fn toggle_screen(run: &mut Machine, now: &str) -> String {
    let mark = run.mark();
    run.send(SCREEN);
    run.expect_since(mark, now, COMMAND);
    run.expect_since(mark, "duet: placement:", COMMAND);
    // Give the CPUs a moment to take their vCPUs, then read the counters.
    std::thread::sleep(Duration::from_secs(1));
    counters(run)
}

fn require_placed(run: &mut Machine, text: &str, expected: [&str; 4]) {
    for (cpu, want) in expected.iter().enumerate() {
        let got = placed(text, cpu);
        if got.as_deref() != Some(*want) {
            run.fail(&format!("cpu{cpu} runs {got:?}, not {want:?}, in:\n{text}"));
        }
    }
}

#[test]
fn big_little_placement_and_idle_states_from_the_device_tree() {
    let dtb = xtask::big_little::device_tree(4).expect("a big.LITTLE device tree");
    // Background budgets that add up to less than one CPU: with the screen
    // off both vCPUs share one little CPU.
    let text = linux_vm("personal", "personal", 1, "background_cpu_percent = 50")
        + &linux_vm("corporate", "corporate", 1, "background_cpu_percent = 25");
    let path = manifest("power-big-little", &text);
    let mut run = Machine::xtask(&[
        "run",
        "--smp",
        "4",
        "--manifest",
        path.to_str().unwrap(),
        "--",
        "-dtb",
        dtb.to_str().unwrap(),
    ]);
    for vm in ["personal", "corporate"] {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    // Duet read the energy model (400 µW/MHz/V² at 2 GHz and 1.0 V is
    // 800 mW; 100 at 1 GHz and 0.8 V is 64 mW) and placed the foreground
    // persona on a big CPU, the background one on a little CPU.
    run.require(&[
        "duet: cpu2: capacity 1024, active 800 mW (device tree), 1 standby idle state, runs personal/0",
        "duet: cpu0: capacity 446, active 64 mW (device tree), 1 standby idle state, runs corporate/0",
        "duet: cpu1: capacity 446, active 64 mW (device tree), 1 standby idle state, runs nothing",
        "duet: cpu3: capacity 1024, active 800 mW (device tree), 1 standby idle state, runs nothing",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let before = counters(&mut run);
    std::thread::sleep(Duration::from_secs(5));
    let after = counters(&mut run);
    for cpu in 0..4 {
        let (Some(b), Some(a)) = (idle_state_sleeps(&before, cpu), idle_state_sleeps(&after, cpu))
        else {
            run.fail(&format!("cpu{cpu} never slept in the device tree's idle state"));
        };
        println!("cpu{cpu}: {} sleeps in the idle state over 5 s", a - b);
    }
    // The idle foreground guest's CPU sleeps there between its interrupts
    // (the unused CPUs entered it once and stay).
    let sleeps = idle_state_sleeps(&after, 2).unwrap() - idle_state_sleeps(&before, 2).unwrap();
    if sleeps == 0 {
        run.fail("cpu2 never entered the idle state while its guest idled");
    }
    require_placed(&mut run, &after, ["corporate/0", "nothing", "personal/0", "nothing"]);
    // The CPUs without vCPUs slept in the power-down state, then turned
    // themselves off; the boot CPU never does.
    for cpu in [1, 3] {
        let offs = residency(&after, cpu, "offs").unwrap_or(0.0);
        let deep = residency(&after, cpu, "state1").unwrap_or(0.0);
        if offs < 1.0 || deep <= 0.0 {
            run.fail(&format!("unused cpu{cpu}: {offs} times off, {deep}% in power-down"));
        }
    }
    if residency(&after, 0, "offs") != Some(0.0) {
        run.fail("the boot CPU turned off");
    }
    // Screen off: both packed onto the first little CPU; the personal VM
    // still answers from there.
    let off = toggle_screen(&mut run, "duet: screen off: every VM is in the background");
    require_placed(&mut run, &off, ["personal/0 corporate/0", "nothing", "nothing", "nothing"]);
    ask(&mut run, "personal", "echo packed-$((40 + 2))", "packed-42");
    // The big CPU its vCPU left turns off too.
    std::thread::sleep(Duration::from_secs(2));
    let packed = counters(&mut run);
    if residency(&packed, 2, "offs") <= residency(&after, 2, "offs") {
        run.fail(&format!("cpu2 did not turn off once unused:\n{packed}"));
    }
    // Screen on again: the foreground persona back on a big CPU.
    let on = toggle_screen(&mut run, "duet: screen on: vm personal is in the foreground");
    require_placed(&mut run, &on, ["corporate/0", "nothing", "personal/0", "nothing"]);
    ask(&mut run, "personal", "echo moved-$((40 + 2))", "moved-42");
    focus(&mut run, "corporate");
    ask(&mut run, "corporate", "echo stayed-$((40 + 2))", "stayed-42");
    focus(&mut run, "personal");
    power_off_and_check_energy(&mut run, &["personal", "corporate"]);
}

#[test]
fn counter_and_energy_lines_are_read() {
    let text = "duet: uptime 56.831 s\n\
                duet: vm corporate: guest time 10.695 s, exits call 10 mmio 714 sysreg 110 wfi 67 \
                irq 3007 fault 0, wakeups 67\n\
                duet: energy persona=corporate cpu_ms=10695 wakeups=67 energy_mj=7152.729\n";
    assert_eq!(uptime_ms(text), Some(56_831));
    assert_eq!(vm_field(text, "corporate", "guest_ms"), Some(10_695));
    assert_eq!(vm_field(text, "corporate", "wakeups"), Some(67));
    assert_eq!(vm_field(text, "personal", "wakeups"), None);
    assert_eq!(energy_line(text, "corporate"), Some((10_695, 67, 7_152_729)));
    assert_eq!(energy_line(text, "total"), None);
    let states = "duet: cpu2: idle-state sleeps state0 17 state1 0 state2 0 state3 0\n";
    assert_eq!(idle_state_sleeps(states, 2), Some(17));
    assert_eq!(idle_state_sleeps(states, 1), None);
    let lines = "duet: cpu0: placed personal/0 corporate/0\nduet: cpu1: placed nothing\n";
    assert_eq!(placed(lines, 0).as_deref(), Some("personal/0 corporate/0"));
    assert_eq!(placed(lines, 1).as_deref(), Some("nothing"));
    assert_eq!(placed(lines, 2), None);
    let line = "duet: cpu3: residency off=97.5% state0=0.0% state1=1.2% offs=2\n";
    assert_eq!(residency(line, 3, "off"), Some(97.5));
    assert_eq!(residency(line, 3, "state1"), Some(1.2));
    assert_eq!(residency(line, 3, "offs"), Some(2.0));
    assert_eq!(residency(line, 2, "off"), None);
}

#[test]
fn packed_with_the_screen_off_the_last_persona_still_answers() {
    // With the screen off both personas share CPU 0. Once the personal one
    // powers off, its vCPUs keep their last timers; those must not keep
    // waking CPU 0 (a deadline past for ever) and starve the corporate one.
    let personal = "background_cpu_percent = 30\nbackground_timer_slack_ms = 100";
    let corporate = "background_cpu_percent = 25\nbackground_timer_slack_ms = 100";
    let text = linux_vm("personal", "personal", 2, personal)
        + &linux_vm("corporate", "corporate", 1, corporate);
    let vms = ["personal", "corporate"];
    let mut run = boot(manifest("power-packed", &text), &vms);
    let text = toggle_screen(&mut run, "duet: screen off");
    require_placed(
        &mut run,
        &text,
        ["personal/0 personal/1 corporate/0", "nothing", "nothing", "nothing"],
    );
    std::thread::sleep(Duration::from_secs(3));
    power_off_and_check_energy(&mut run, &vms);
}
