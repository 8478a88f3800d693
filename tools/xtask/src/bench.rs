//! `cargo xtask bench`: what Duet costs, measured against the same work
//! without Duet in the same run, so the ratios hold on any machine.
//!
//! Each run boots Linux natively and under Duet (the default persona set),
//! alternating, and takes from each: the time to the personal guest's init,
//! a fixed CPU-bound job in its shell, and (first run only) QEMU's host CPU
//! time over an idle window with Duet's counters around it. Duet's size
//! comes from its ELF. One table goes to stdout and `target/bench/results.json`,
//! and with `--report` to `docs/benchmarks.md` with a plot of the ratios.
//!
//! Submodules: `machine` drives one boot, `parse` reads console and /proc
//! text, `size` reads the ELF, `table` holds and renders rows, `report`
//! describes the host and writes the report; `power` is `--power`'s own
//! scenarios (docs/power.md).

mod machine;
mod parse;
pub mod power;
mod report;
mod size;
mod table;

use crate::image::{self, Image, Variant};
use crate::{deps, guest, personas, qemu};
use anyhow::{ensure, Context, Result};
use machine::{Machine, Setup};
use parse::{Counters, CpuCounters};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use table::{Row, Unit};

/// What `cargo xtask bench` was asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also write docs/benchmarks.md and docs/benchmarks.png.
    pub report: bool,
    /// The idle window, in seconds of wall (and guest) time.
    pub idle_seconds: u64,
    /// Boots of each kind; boot and busy figures are medians over them.
    pub runs: u32,
}

/// Untimed set-up for the busy job: a 16 MiB file in tmpfs under 16 names.
/// The guest answers `busy-42` when done (its echo shows the sum unworked).
pub const BUSY_SETUP: &str = "dd if=/dev/zero of=/tmp/busy bs=1M count=16 2>/dev/null; \
     for i in $(seq 2 16); do ln -f /tmp/busy /tmp/busy$i; done; echo busy-$((40 + 2))";
const BUSY_READY: &str = "busy-42";
/// The CPU-bound job: busybox's md5sum over 256 MiB, one process on one
/// vCPU. (A `dd | md5sum` pipe was tried first: its two processes wake each
/// other across vCPUs, and that made it vary several-fold between runs.)
pub const BUSY_JOB: &str = "time md5sum /tmp/busy* >/dev/null";

/// After the prompts appear, late boot work (deferred probes, the first
/// shell's start) is left to finish before anything is measured.
const SETTLE: Duration = Duration::from_secs(2);

/// The targets from the issue: ratios Duet should stay at or under.
const BOOT_TARGET: f64 = 1.05;
const IDLE_TARGET: f64 = 1.10;
const BUSY_TARGET: f64 = 1.02;

/// What every boot needs, built or fetched once.
struct Inputs {
    image: Image,
    package: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

/// The idle window of one boot.
#[derive(Clone, Debug)]
struct Idle {
    cpu_seconds: f64,
    /// Duet's counters before and after (under Duet only).
    counters: Option<(Counters, Counters)>,
}

/// Everything measured with one setup.
#[derive(Default)]
struct Samples {
    boot: Vec<f64>,
    banner: Vec<f64>,
    busy: Vec<f64>,
    idle: Option<Idle>,
}

/// What `target/bench/results.json` holds.
#[derive(Serialize)]
pub struct Results {
    pub host: report::Host,
    pub runs: u32,
    pub idle_seconds: u64,
    pub busy_job: String,
    pub rows: Vec<Row>,
    /// Duet's counters at the start and end of the idle window.
    pub idle_counters: Option<(Counters, Counters)>,
    pub size: size::Size,
}

/// Runs every scenario and writes the results.
pub fn run(options: &Options) -> Result<()> {
    ensure!(options.runs >= 1, "--runs must be at least 1");
    ensure!(options.idle_seconds >= 1, "--idle-seconds must be at least 1");
    let inputs = prepare()?;
    let (mut native, mut duet) = (Samples::default(), Samples::default());
    for run in 1..=options.runs {
        let idle = (run == 1).then(|| Duration::from_secs(options.idle_seconds));
        for (setup, samples) in [(Setup::Native, &mut native), (Setup::Duet, &mut duet)] {
            eprintln!("bench: run {run}/{}: {}", options.runs, setup.name());
            measure(&inputs, setup, idle, samples)
                .with_context(|| format!("run {run}, {}", setup.name()))?;
        }
    }
    let size = size::measure(&inputs.image.elf, &inputs.image.binary)?;
    let results = Results {
        host: report::Host::describe()?,
        runs: options.runs,
        idle_seconds: options.idle_seconds,
        busy_job: BUSY_JOB.into(),
        rows: rows(options, &native, &duet, &size),
        idle_counters: duet.idle.and_then(|idle| idle.counters),
        size,
    };
    print!("{}", table::plain(&results.rows));
    write_json(&results)?;
    if options.report {
        report::write(&results)?;
    }
    Ok(())
}

/// Builds Duet and its persona package, and fetches the guest.
fn prepare() -> Result<Inputs> {
    deps::ensure_qemu()?;
    let image = image::build(Variant::Release)?;
    let manifest = guest::default_manifest()?;
    let package = personas::package(&manifest, duet_boards::default_board())?;
    let kernel = guest::debian_kernel()?;
    let initrd = guest::busybox_initramfs()?;
    Ok(Inputs { image, package, kernel, initrd })
}

/// One boot: boot time, the idle window if asked for, the busy job, power-off.
fn measure(
    inputs: &Inputs,
    setup: Setup,
    idle: Option<Duration>,
    samples: &mut Samples,
) -> Result<()> {
    let mut machine = Machine::start(command(inputs, setup), setup)?;
    let boot = machine.boot()?;
    samples.boot.push(boot.init);
    samples.banner.extend(boot.banner);
    machine::idle_for(SETTLE);
    if let Some(window) = idle {
        samples.idle = Some(idle_window(&mut machine, setup, window)?);
    }
    machine.shell_until(BUSY_SETUP, BUSY_READY)?;
    samples.busy.push(machine.timed_job(BUSY_JOB)?);
    machine.power_off()
}

fn command(inputs: &Inputs, setup: Setup) -> std::process::Command {
    match setup {
        Setup::Native => qemu::native_linux_command(&inputs.kernel, &inputs.initrd),
        Setup::Duet => {
            let options =
                qemu::Options { package: Some(inputs.package.clone()), ..Default::default() };
            qemu::command(duet_boards::default_board(), &inputs.image.binary, &options)
        }
    }
}

/// QEMU's CPU time over `window` of idleness; under Duet, its counters are
/// read just outside the window, so printing them is not counted.
fn idle_window(machine: &mut Machine, setup: Setup, window: Duration) -> Result<Idle> {
    let before = match setup {
        Setup::Duet => Some(machine.counters()?),
        Setup::Native => None,
    };
    let start = machine.cpu_seconds()?;
    machine::idle_for(window);
    let cpu_seconds = machine.cpu_seconds()? - start;
    let counters = match before {
        Some(before) => Some((before, machine.counters()?)),
        None => None,
    };
    Ok(Idle { cpu_seconds, counters })
}

/// The table: compared scenarios first, then Duet's own figures.
fn rows(options: &Options, native: &Samples, duet: &Samples, size: &size::Size) -> Vec<Row> {
    let idle = format!("idle {} s", options.idle_seconds);
    let cpu = |s: &Samples| s.idle.as_ref().map(|i| vec![i.cpu_seconds]).unwrap_or_default();
    let mut rows = vec![
        Row::compared(
            "boot.init",
            "boot to init (median)",
            Unit::Seconds,
            native.boot.clone(),
            duet.boot.clone(),
            Some(BOOT_TARGET),
        ),
        Row::compared(
            "boot.duet_banner",
            "boot: Duet's banner (median)",
            Unit::Seconds,
            Vec::new(),
            duet.banner.clone(),
            None,
        ),
        Row::compared(
            "idle.host_cpu",
            &format!("{idle}: QEMU host CPU time"),
            Unit::CpuSeconds,
            cpu(native),
            cpu(duet),
            Some(IDLE_TARGET),
        ),
    ];
    if let Some((before, after)) = duet.idle.as_ref().and_then(|i| i.counters.as_ref()) {
        rows.extend(wakeup_rows(&idle, &after.cpus_since(before)));
        rows.push(Row::duet_only(
            "memory.heap_used",
            &format!("memory: heap in use (of {} KiB)", after.heap_total_kib),
            Unit::Kib,
            after.heap_used_kib as f64,
        ));
    }
    rows.push(Row::compared(
        "busy.md5",
        "busy: md5sum of 256 MiB (median)",
        Unit::Seconds,
        native.busy.clone(),
        duet.busy.clone(),
        Some(BUSY_TARGET),
    ));
    rows.extend(size_rows(size));
    rows
}

/// Duet's own wakeups over the idle window: in all, then per CPU.
fn wakeup_rows(idle: &str, cpus: &[CpuCounters]) -> Vec<Row> {
    let sleeps: u64 = cpus.iter().map(|c| c.idle_sleeps).sum();
    let timer: u64 = cpus.iter().map(|c| c.timer_interrupts).sum();
    let mut rows = vec![
        Row::duet_only(
            "idle.sleeps",
            &format!("{idle}: Duet idle sleeps"),
            Unit::Count,
            sleeps as f64,
        ),
        Row::duet_only(
            "idle.timer_interrupts",
            &format!("{idle}: Duet timer interrupts"),
            Unit::Count,
            timer as f64,
        ),
    ];
    for (cpu, counters) in cpus.iter().enumerate() {
        rows.push(Row::duet_only(
            &format!("idle.cpu{cpu}.sleeps"),
            &format!("{idle}: cpu{cpu} idle sleeps"),
            Unit::Count,
            counters.idle_sleeps as f64,
        ));
        rows.push(Row::duet_only(
            &format!("idle.cpu{cpu}.timer_interrupts"),
            &format!("{idle}: cpu{cpu} timer interrupts"),
            Unit::Count,
            counters.timer_interrupts as f64,
        ));
    }
    rows
}

fn size_rows(size: &size::Size) -> Vec<Row> {
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    [
        ("size.text", "size: text", size.text),
        ("size.rodata", "size: rodata", size.rodata),
        ("size.data", "size: data", size.data),
        ("size.bss", "size: bss", size.bss),
        ("size.stacks", "size: boot stacks", size.stacks),
        ("size.image_file", "size: image file", size.image_file),
        ("size.loaded", "size: image in memory", size.loaded()),
    ]
    .into_iter()
    .map(|(id, scenario, bytes)| Row::duet_only(id, scenario, Unit::Kib, kib(bytes)))
    .collect()
}

fn write_json(results: &Results) -> Result<()> {
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("results.json");
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(&path, json + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}
