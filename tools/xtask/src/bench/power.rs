//! `cargo xtask bench --power`: the power-aware scheduling scenarios of
//! docs/power.md, measured under Duet with a personal (foreground) and a
//! corporate (background) persona.
//!
//! - **Background hog**: the personal persona's CPU-bound job (the same
//!   `md5sum` as the main benchmark) timed with the corporate persona idle,
//!   then with it spinning on its vCPU under a budget; and the corporate
//!   persona's share of a CPU over the second run, against its budget.
//! - **Background timers**: the corporate persona re-arms a 10 ms timer in
//!   a loop (`usleep 10000`); its wakeups over a window with no slack and
//!   with 100 ms, and the personal persona's own 10 ms timer loop timed
//!   beside it (its latency must not change).
//! - **Idle, screen off** (the acceptance scenario): both personas idle
//!   with the screen off (`Ctrl-] o`) for [`IDLE_WINDOW`] against one idle
//!   native Linux for as long: QEMU's host CPU seconds as a ratio, and how
//!   much of the window each CPU without vCPUs spent off or in its deepest
//!   idle state (QEMU's own device tree has no idle states, so that is
//!   `CPU_OFF`).
//! - **big.LITTLE**: on a device tree that makes two CPUs big and two
//!   little (`crate::big_little`), the personal persona spinning in the
//!   foreground and the corporate one idle: each CPU's vCPUs and how busy
//!   it was.
//! - **Energy across budgets**: the hog's estimated energy over its run
//!   (Duet's energy lines) at each budget.
//!
//! Prints a table and writes `target/bench/power.json`; with `--report`
//! also `docs/benchmarks-power.md`. Timings are benchmarks, never asserts.

use super::machine::{self, Machine, Setup};
use super::parse::Counters;
use super::{BUSY_JOB, BUSY_READY, BUSY_SETUP, SETTLE};
use crate::image::{self, Variant};
use crate::{deps, guest, personas, qemu};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The corporate persona's budgets tried in the hog scenario.
const BUDGETS: [u32; 2] = [10, 25];
/// The timer slacks tried in the timer scenario, in ms.
const SLACKS: [u32; 2] = [0, 100];
/// The idle acceptance window.
const IDLE_WINDOW: Duration = Duration::from_secs(60);
/// The personas' background settings in the idle scenario: budgets that
/// together need less than one CPU (2 x 30% + 25%), so that with the
/// screen off Duet packs them onto one CPU, 100 ms of timer slack with the
/// screen on and a second with it off.
const IDLE_PERSONAL_POWER: &str = "background_cpu_percent = 30\nbackground_timer_slack_ms = 100\n\
                                   screen_off_timer_slack_ms = 1000";
const IDLE_CORPORATE_POWER: &str = "background_cpu_percent = 25\nbackground_timer_slack_ms = 100\n\
                                    screen_off_timer_slack_ms = 1000";
/// How long the big.LITTLE run watches the CPUs.
const BIG_LITTLE_WINDOW: Duration = Duration::from_secs(5);
/// How long wakeups are counted.
const TIMER_WINDOW: Duration = Duration::from_secs(10);
/// The personal persona's timer loop: 100 sleeps of 10 ms.
const TIMER_LOOP: &str =
    "time sh -c 'i=0; while [ $i -lt 100 ]; do usleep 10000; i=$((i+1)); done'";

/// One hog run.
#[derive(Debug, Serialize)]
pub struct Hog {
    pub budget_percent: u32,
    /// The personal persona's job, corporate idle, in seconds.
    pub alone_s: f64,
    /// The same job with the corporate persona spinning.
    pub with_hog_s: f64,
    /// The corporate persona's share of a CPU during that job, in percent.
    pub hog_share_percent: f64,
    /// The corporate persona's estimated energy over that job, in mJ.
    pub hog_energy_mj: f64,
    /// The same over the job's wall time: its average power, in mW.
    pub hog_power_mw: f64,
}

/// The idle acceptance run.
#[derive(Debug, Serialize)]
pub struct IdleScreenOff {
    pub window_s: u64,
    /// QEMU's host CPU time over the window: one idle native Linux.
    pub native_cpu_s: f64,
    /// The same with both personas idle under Duet, the screen off.
    pub duet_cpu_s: f64,
    /// Each CPU's vCPUs during the window.
    pub placed: Vec<String>,
    /// For each CPU without vCPUs: (CPU, percent of the window off or in
    /// its deepest idle state).
    pub unused_deepest_percent: Vec<(usize, f64)>,
}

/// One timer run.
#[derive(Debug, Serialize)]
pub struct Timers {
    pub slack_ms: u32,
    /// The corporate persona's wakeups over the window.
    pub background_wakeups: u64,
    /// Interrupts from Duet's own timer, all CPUs, over the window.
    pub duet_timer_interrupts: u64,
    /// The personal persona's 100 × 10 ms sleep loop, in seconds.
    pub foreground_timer_loop_s: f64,
}

/// One CPU in the big.LITTLE run.
#[derive(Debug, Serialize)]
pub struct CpuUse {
    pub cpu: usize,
    pub big: bool,
    /// Its vCPUs.
    pub placed: String,
    /// The share of the window it was neither off nor idle, in percent.
    pub busy_percent: f64,
}

#[derive(Debug, Serialize)]
pub struct PowerResults {
    pub hog: Vec<Hog>,
    pub timers: Vec<Timers>,
    /// The personal persona busy, the corporate one idle, with the screen
    /// on, on CPUs described big and little.
    pub big_little: Vec<CpuUse>,
    pub idle: Option<IdleScreenOff>,
}

/// The scenarios `--scenario` can pick.
pub const SCENARIOS: [&str; 4] = ["hog", "timers", "idle", "big-little"];

/// Runs the scenarios (or only the one named `only`) and writes the
/// results; the report only from a run of all.
pub fn run(report: bool, only: Option<&str>) -> Result<()> {
    anyhow::ensure!(
        only.is_none_or(|o| SCENARIOS.contains(&o)),
        "no power scenario {only:?}; there are {SCENARIOS:?}"
    );
    anyhow::ensure!(!(report && only.is_some()), "--report needs every scenario");
    deps::ensure_qemu()?;
    let image = image::build(Variant::Release)?;
    let kernel = guest::debian_kernel()?;
    let initrd = guest::busybox_initramfs()?;
    let mut results =
        PowerResults { hog: Vec::new(), timers: Vec::new(), big_little: Vec::new(), idle: None };
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    if wanted("idle") {
        eprintln!("bench: power: idle, screen off, against native");
        let (personal, corporate) = (IDLE_PERSONAL_POWER, IDLE_CORPORATE_POWER);
        let package = package_of("idle", &kernel, &initrd, personal, corporate)?;
        results.idle = Some(idle(&image.binary, &package, &kernel, &initrd).context("idle")?);
    }
    for budget in BUDGETS.into_iter().filter(|_| wanted("hog")) {
        eprintln!("bench: power: background hog at {budget}%");
        let power = format!("background_cpu_percent = {budget}");
        let package = package(&format!("hog-{budget}"), &kernel, &initrd, &power)?;
        results.hog.push(hog(&image.binary, &package, budget).context("background hog")?);
    }
    for slack in SLACKS.into_iter().filter(|_| wanted("timers")) {
        eprintln!("bench: power: background timers with {slack} ms of slack");
        let power = format!("background_timer_slack_ms = {slack}");
        let package = package(&format!("timers-{slack}"), &kernel, &initrd, &power)?;
        results.timers.push(timers(&image.binary, &package, slack).context("background timers")?);
    }
    if wanted("big-little") {
        eprintln!("bench: power: big.LITTLE placement");
        let package = package("big-little", &kernel, &initrd, "background_cpu_percent = 25")?;
        results.big_little = big_little(&image.binary, &package).context("big.LITTLE")?;
    }
    let table = table(&results);
    print!("{table}");
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("power.json"), serde_json::to_string_pretty(&results)?)?;
    if report {
        let path = crate::workspace_root().join("docs/benchmarks-power.md");
        std::fs::write(&path, markdown(&table))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let main = crate::workspace_root().join("docs/benchmarks.md");
        let earlier = std::fs::read_to_string(&main).unwrap_or_default();
        let power = super::report::power_markdown(&table);
        std::fs::write(&main, super::report::with_power_section(&earlier, &power))
            .with_context(|| format!("cannot write {}", main.display()))?;
        eprintln!("bench: wrote {} and its section in {}", path.display(), main.display());
    }
    Ok(())
}

/// The default pair with `power` as the corporate persona's `[vm.power]`.
fn package(name: &str, kernel: &Path, initrd: &Path, power: &str) -> Result<PathBuf> {
    package_of(name, kernel, initrd, "", power)
}

/// The default pair with `[vm.power]` keys for each persona.
fn package_of(
    name: &str,
    kernel: &Path,
    initrd: &Path,
    personal: &str,
    corporate: &str,
) -> Result<PathBuf> {
    let vm = |name: &str, vcpus: u32, power: &str| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{name}\"\nkernel = {kernel:?}\ninitrd = {initrd:?}\n\
             cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = {}\nvcpus = {vcpus}\n{power}\n",
            if name == "personal" { 256 } else { 192 },
        )
    };
    let power = |keys: &str| {
        if keys.is_empty() {
            String::new()
        } else {
            format!("[vm.power]\n{keys}\n")
        }
    };
    let text = vm("personal", 2, &power(personal)) + &vm("corporate", 1, &power(corporate));
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let manifest = dir.join(format!("power-{name}.toml"));
    std::fs::write(&manifest, text)?;
    personas::package(&manifest, duet_boards::default_board())
}

fn boot(image: &Path, package: &Path) -> Result<Machine> {
    boot_with_tree(image, package, None)
}

/// [`boot`] with a device tree of its own for the board (`-dtb`).
fn boot_with_tree(image: &Path, package: &Path, dtb: Option<&Path>) -> Result<Machine> {
    let options = qemu::Options {
        package: Some(package.to_path_buf()),
        dtb: dtb.map(Path::to_path_buf),
        ..Default::default()
    };
    let mut machine = Machine::start(
        qemu::command(duet_boards::default_board(), image, &options),
        Setup::DuetPair,
    )?;
    // The personal persona has the focus, so its prompt shows as it comes;
    // the corporate one's shows once it has the focus (a typed newline
    // makes its shell print one afresh). A persona on a small budget boots
    // slowly: ask a few times.
    until_answers(&mut machine, "", "[personal] / # ")?;
    machine.shell_until("\x1dn", "duet: console input now goes to vm corporate")?;
    until_answers(&mut machine, "", "[corporate] / # ")?;
    machine.shell_until("\x1dn", "duet: console input now goes to vm personal")?;
    machine::idle_for(SETTLE);
    Ok(machine)
}

/// Types `command` until the console shows `done` after it (boots take a
/// while in software emulation).
fn until_answers(machine: &mut Machine, command: &str, done: &str) -> Result<()> {
    let mut result = Ok(());
    for _ in 0..4 {
        result = machine.shell_until(command, done);
        if result.is_ok() {
            break;
        }
    }
    result
}

/// Types `command` into the corporate persona, then gives the focus back.
fn in_corporate(machine: &mut Machine, command: &str, done: &str) -> Result<()> {
    machine.shell_until("\x1dn", "duet: console input now goes to vm corporate")?;
    machine.shell_until(command, done)?;
    machine.shell_until("\x1dn", "duet: console input now goes to vm personal")
}

fn hog(image: &Path, package: &Path, budget: u32) -> Result<Hog> {
    let mut machine = boot(image, package)?;
    machine.shell_until(BUSY_SETUP, BUSY_READY)?;
    // The first run warms up (QEMU translates the code once): the better
    // of two runs counts.
    let alone_s = machine.timed_job(BUSY_JOB)?.min(machine.timed_job(BUSY_JOB)?);
    in_corporate(&mut machine, "while :; do :; done & echo hog-$((40 + 2))", "hog-42")?;
    machine::idle_for(Duration::from_secs(1));
    let (before, start) = (machine.counters()?, Instant::now());
    let with_hog_s = machine.timed_job(BUSY_JOB)?.min(machine.timed_job(BUSY_JOB)?);
    let (after, wall) = (machine.counters()?, start.elapsed().as_secs_f64());
    let hog_share_percent = 100.0 * guest_seconds(&after, "corporate", &before) / wall;
    let energy = |c: &Counters| {
        c.energy_mj.iter().find(|(p, _)| p == "corporate").map_or(0.0, |(_, mj)| *mj)
    };
    let hog_energy_mj = energy(&after) - energy(&before);
    let hog_power_mw = hog_energy_mj / wall;
    machine.power_off()?;
    Ok(Hog {
        budget_percent: budget,
        alone_s,
        with_hog_s,
        hog_share_percent,
        hog_energy_mj,
        hog_power_mw,
    })
}

/// One idle native Linux, then both personas idle under Duet with the
/// screen off, each for [`IDLE_WINDOW`].
fn idle(image: &Path, package: &Path, kernel: &Path, initrd: &Path) -> Result<IdleScreenOff> {
    let mut native = Machine::start(qemu::native_linux_command(kernel, initrd), Setup::Native)?;
    native.boot()?;
    machine::idle_for(SETTLE);
    let start = native.cpu_seconds()?;
    machine::idle_for(IDLE_WINDOW);
    let native_cpu_s = native.cpu_seconds()? - start;
    native.power_off()?;

    let mut duet = boot(image, package)?;
    duet.shell_until("\x1do", "duet: screen off")?;
    machine::idle_for(SETTLE);
    let before = duet.counters()?;
    let start = duet.cpu_seconds()?;
    machine::idle_for(IDLE_WINDOW);
    let duet_cpu_s = duet.cpu_seconds()? - start;
    let after = duet.counters()?;
    duet.power_off().context("power-off after the idle window")?;
    let unused_deepest_percent = (0..after.residency.len())
        .filter(|&c| after.placed.get(c).is_some_and(|p| p == "nothing"))
        .map(|c| {
            let earlier = before.residency.get(c).cloned().unwrap_or_default();
            (c, after.residency[c].deepest_percent_since(&earlier))
        })
        .collect();
    Ok(IdleScreenOff {
        window_s: IDLE_WINDOW.as_secs(),
        native_cpu_s,
        duet_cpu_s,
        placed: after.placed,
        unused_deepest_percent,
    })
}

/// The personal persona (foreground) spinning and the corporate one idle,
/// on a device tree that makes CPUs 2 and 3 big: where each CPU's vCPUs
/// are and how busy each CPU was over [`BIG_LITTLE_WINDOW`].
fn big_little(image: &Path, package: &Path) -> Result<Vec<CpuUse>> {
    let dtb = crate::big_little::device_tree(4)?;
    let mut machine = boot_with_tree(image, package, Some(&dtb))?;
    machine.shell_until("while :; do :; done & echo spinning-$((40 + 2))", "spinning-42")?;
    machine::idle_for(Duration::from_secs(1));
    let before = machine.counters()?;
    machine::idle_for(BIG_LITTLE_WINDOW);
    let after = machine.counters()?;
    machine.shell_until("kill $! && echo stopped-$((40 + 2))", "stopped-42")?;
    machine.power_off()?;
    let earlier = |cpu: usize| before.residency.get(cpu).cloned().unwrap_or_default();
    Ok((0..after.residency.len())
        .map(|cpu| CpuUse {
            cpu,
            big: crate::big_little::is_big(cpu),
            placed: after.placed.get(cpu).cloned().unwrap_or_default(),
            busy_percent: after.residency[cpu].busy_percent_since(&earlier(cpu)),
        })
        .collect())
}

fn timers(image: &Path, package: &Path, slack: u32) -> Result<Timers> {
    let mut machine = boot(image, package)?;
    let loop_command = "while :; do usleep 10000; done & echo timers-$((40 + 2))";
    in_corporate(&mut machine, loop_command, "timers-42")?;
    machine::idle_for(Duration::from_secs(1));
    let before = machine.counters()?;
    machine::idle_for(TIMER_WINDOW);
    let after = machine.counters()?;
    let foreground_timer_loop_s = machine.timed_job(TIMER_LOOP)?;
    machine.power_off()?;
    let wakeups =
        |c: &Counters| c.vms.iter().find(|v| v.name == "corporate").map_or(0, |v| v.wakeups);
    Ok(Timers {
        slack_ms: slack,
        background_wakeups: wakeups(&after).saturating_sub(wakeups(&before)),
        duet_timer_interrupts: after.cpus_since(&before).iter().map(|c| c.timer_interrupts).sum(),
        foreground_timer_loop_s,
    })
}

fn guest_seconds(after: &Counters, vm: &str, before: &Counters) -> f64 {
    let of = |c: &Counters| c.vms.iter().find(|v| v.name == vm).map_or(0.0, |v| v.guest_seconds);
    of(after) - of(before)
}

/// The results as a plain-text table.
fn table(results: &PowerResults) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "background hog (personal: {BUSY_JOB})");
    let _ = writeln!(
        out,
        "  budget  personal alone  with hog  speed kept  hog's share  hog's energy  (power)"
    );
    for h in &results.hog {
        let _ = writeln!(
            out,
            "  {:>5}%  {:>12.2} s  {:>6.2} s  {:>9.1}%  {:>10.1}%  {:>9.0} mJ  ({:.0} mW)",
            h.budget_percent,
            h.alone_s,
            h.with_hog_s,
            100.0 * h.alone_s / h.with_hog_s.max(f64::MIN_POSITIVE),
            h.hog_share_percent,
            h.hog_energy_mj,
            h.hog_power_mw
        );
    }
    let _ = writeln!(
        out,
        "background timers (corporate: usleep 10000 in a loop, {} s)",
        TIMER_WINDOW.as_secs()
    );
    let _ = writeln!(out, "  slack  corporate wakeups  Duet timer irqs  personal 100 x 10 ms");
    for t in &results.timers {
        let _ = writeln!(
            out,
            "  {:>3} ms  {:>16}  {:>15}  {:>18.2} s",
            t.slack_ms, t.background_wakeups, t.duet_timer_interrupts, t.foreground_timer_loop_s
        );
    }
    if !results.big_little.is_empty() {
        let _ = writeln!(
            out,
            "big.LITTLE (device tree: cpu2, cpu3 big; personal spinning, corporate idle, \
             screen on, {} s)",
            BIG_LITTLE_WINDOW.as_secs()
        );
        for c in &results.big_little {
            let class = if c.big { "big" } else { "little" };
            let _ = writeln!(
                out,
                "  cpu{} {:<6}  busy {:>5.1}%  runs {}",
                c.cpu, class, c.busy_percent, c.placed
            );
        }
    }
    if let Some(idle) = &results.idle {
        let _ = writeln!(
            out,
            "idle, screen off, {} s (personal: {}; corporate: {})",
            idle.window_s,
            IDLE_PERSONAL_POWER.replace('\n', ", "),
            IDLE_CORPORATE_POWER.replace('\n', ", ")
        );
        let _ = writeln!(
            out,
            "  QEMU host CPU: native Linux {:.2} s, Duet {:.2} s, ratio {:.2}",
            idle.native_cpu_s,
            idle.duet_cpu_s,
            idle.duet_cpu_s / idle.native_cpu_s.max(f64::MIN_POSITIVE)
        );
        for (cpu, placed) in idle.placed.iter().enumerate() {
            let deepest = idle.unused_deepest_percent.iter().find(|(c, _)| *c == cpu);
            let _ = match deepest {
                Some((_, percent)) => {
                    writeln!(out, "  cpu{cpu}: unused, {percent:.1}% off or in its deepest state")
                }
                None => writeln!(out, "  cpu{cpu}: runs {placed}"),
            };
        }
    }
    out
}

fn markdown(table: &str) -> String {
    format!(
        "# Power benchmarks\n\nWritten by `cargo xtask bench --power --report` \
         (`tools/xtask/src/bench/power.rs`); what the scenarios are and what Duet does \
         is in [power.md](power.md). QEMU TCG, 4 CPUs, the personal persona (2 vCPUs) in \
         the foreground and the corporate persona (1 vCPU) in the background, each on \
         CPUs of their own. \"Speed kept\" is the personal job's time alone over its time \
         beside the hog (the better of two runs each); the hog's share is its guest time \
         over the wall time of those two runs, and its power its estimated energy over that \
         wall time. Guest time is wall time between entering \
         and leaving the guest, so on a busy host it includes time the host took from \
         QEMU's vCPU thread: the share then reads high. The idle scenario turns the \
         screen off, so both personas are in the background and packed onto one CPU; \
         its CPU lines say what each CPU ran and, for those without vCPUs, the share \
         of the window they were off or in their deepest idle state. The big.LITTLE run \
         boots with a device tree that describes CPUs 2 and 3 as big and 0 and 1 as \
         little (`tools/xtask/src/big_little.rs`; QEMU's CPUs are all alike) and shows \
         where Duet placed each vCPU and how busy each CPU was (from its idle-state \
         residency).\n\n\
         ```\n{table}```\n"
    )
}
