//! `cargo xtask bench`: what Duet costs, measured against the same work
//! without Duet in the same run, so the ratios hold on any machine.
//!
//! First the microbenchmark guest (`guests/bench`) runs under Duet and
//! directly under QEMU, twice with `-icount` (instructions, repeatable) and
//! once on the wall clock (`micro`). Then each run boots one Linux persona
//! natively and under Duet (the same kernel, initramfs, vCPUs and memory),
//! alternating, and takes from each: the time to init and a fixed CPU-bound
//! job in its shell. The idle window (QEMU's host CPU time, with Duet's
//! counters around it) compares one idle native Linux (first run) with the
//! default pair of personas under Duet (one extra boot); one more boot of
//! the pair with the phone's screen times persona switches. Duet's size comes
//! from its ELF. One table goes to stdout and `target/bench/results.json`,
//! and with `--report` to `docs/benchmarks.md` with a plot of the ratios.
//!
//! Submodules: `machine` drives one Linux boot, `micro` runs the bench
//! guest, `parse` reads console and /proc text, `size` reads the ELF,
//! `table` holds and renders rows, `report` describes the host and writes
//! the report; `power` is `--power`'s own scenarios (docs/power.md).

mod machine;
mod micro;
mod parse;
pub mod power;
mod report;
mod size;
mod table;

use crate::image::{self, Image, Variant};
use crate::{deps, guest, personas, qemu};
use anyhow::{ensure, Context, Result};
use machine::{Machine, Setup};
use micro::Clock;
use parse::{Counters, CpuCounters};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
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
    /// The personal persona alone (the boot and busy comparisons).
    single: PathBuf,
    /// The default persona pair (the idle window).
    pair: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    /// The bench guest's Image, and a package with it as the only VM.
    bench_guest: PathBuf,
    bench_package: PathBuf,
}

/// The personal VM of `guests/default.toml`, alone: what the native boot
/// is compared with (same kernel, initramfs, command line, vCPUs, memory).
const SINGLE_PERSONA: &str = "[[vm]]\nname = \"personal\"\nrole = \"personal\"\n\
    kernel = {KERNEL:?}\ninitrd = {INITRD:?}\ncmdline = \"console=ttyAMA0 quiet\"\n\
    memory_mib = 256\nvcpus = 2\n";
/// The bench guest with two vCPUs (for the IPI), as on the native side.
const BENCH_CPUS: u32 = 2;
const BENCH_MEMORY_MIB: u32 = 64;

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

/// The bench guest's runs: two with icount and one on the wall clock, on
/// each side.
#[derive(Default)]
struct Micro {
    native_icount: Vec<micro::Run>,
    duet_icount: Vec<micro::Run>,
    native_wall: Vec<micro::Run>,
    duet_wall: Vec<micro::Run>,
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
    let load_at_start = report::load_average();
    let inputs = prepare()?;
    let micro = microbenchmarks(&inputs)?;
    let (mut native, mut duet, mut pair) =
        (Samples::default(), Samples::default(), Samples::default());
    for run in 1..=options.runs {
        let idle = (run == 1).then(|| Duration::from_secs(options.idle_seconds));
        eprintln!("bench: run {run}/{}: native", options.runs);
        measure(&inputs, Setup::Native, idle, true, &mut native)
            .with_context(|| format!("run {run}, native"))?;
        eprintln!("bench: run {run}/{}: Duet", options.runs);
        measure(&inputs, Setup::Duet, None, true, &mut duet)
            .with_context(|| format!("run {run}, Duet"))?;
    }
    eprintln!("bench: idle window: Duet, two personas");
    let window = Duration::from_secs(options.idle_seconds);
    measure(&inputs, Setup::DuetPair, Some(window), false, &mut pair)
        .context("the idle window under Duet")?;
    eprintln!("bench: persona switches: Duet, two personas, with a screen");
    let switches = switch_latencies(&inputs).context("persona switches under Duet")?;
    let size = size::measure(&inputs.image.elf, &inputs.image.binary)?;
    let results = Results {
        host: report::Host::describe(load_at_start)?,
        runs: options.runs,
        idle_seconds: options.idle_seconds,
        busy_job: BUSY_JOB.into(),
        rows: rows(options, &native, &duet, &pair, &switches, &micro, &size),
        idle_counters: pair.idle.and_then(|idle| idle.counters),
        size,
    };
    print!("{}", table::plain(&results.rows));
    write_json(&results)?;
    if options.report {
        report::write(&results)?;
    }
    Ok(())
}

/// Builds Duet, the bench guest and the persona packages, and fetches the
/// Linux guest.
fn prepare() -> Result<Inputs> {
    deps::ensure_qemu()?;
    let board = duet_boards::default_board();
    let image = image::build(Variant::Release)?;
    let pair = personas::package(&guest::default_manifest()?, board)?;
    let kernel = guest::debian_kernel()?;
    let initrd = guest::busybox_initramfs()?;
    let single = SINGLE_PERSONA
        .replace("{KERNEL:?}", &format!("{kernel:?}"))
        .replace("{INITRD:?}", &format!("{initrd:?}"));
    let single = personas::package(&write_manifest("bench-personal", &single)?, board)?;
    let bench_guest = image::build_bench_guest()?.binary;
    let text = format!(
        "[[vm]]\nname = \"bench\"\nrole = \"corporate\"\nkernel = {bench_guest:?}\n\
         memory_mib = {BENCH_MEMORY_MIB}\nvcpus = {BENCH_CPUS}\n"
    );
    let bench_package = personas::package(&write_manifest("bench-guest", &text)?, board)?;
    Ok(Inputs { image, single, pair, kernel, initrd, bench_guest, bench_package })
}

/// Writes a manifest under `target/bench/`; returns its path.
fn write_manifest(name: &str, text: &str) -> Result<PathBuf> {
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The QEMU command running the bench guest, under Duet or directly.
pub fn bench_guest_command(duet: Option<(&Path, &Path)>, guest: &Path) -> Command {
    match duet {
        Some((image, package)) => {
            let options = qemu::Options { package: Some(package.into()), ..Default::default() };
            qemu::command(duet_boards::default_board(), image, &options)
        }
        None => qemu::native_command(guest, BENCH_CPUS, BENCH_MEMORY_MIB),
    }
}

/// The bench guest natively and under Duet: twice with icount, once on the
/// wall clock.
fn microbenchmarks(inputs: &Inputs) -> Result<Micro> {
    let mut micro = Micro::default();
    let duet = Some((inputs.image.binary.as_path(), inputs.bench_package.as_path()));
    for clock in [Clock::Icount, Clock::Icount, Clock::Wall] {
        eprintln!("bench: microbenchmarks ({clock:?})");
        let native = micro::run(bench_guest_command(None, &inputs.bench_guest), clock)
            .context("the bench guest without Duet")?;
        let under_duet = micro::run(bench_guest_command(duet, &inputs.bench_guest), clock)
            .context("the bench guest under Duet")?;
        let (n, d) = match clock {
            Clock::Icount => (&mut micro.native_icount, &mut micro.duet_icount),
            Clock::Wall => (&mut micro.native_wall, &mut micro.duet_wall),
        };
        n.push(native);
        d.push(under_duet);
    }
    Ok(micro)
}

/// One boot: boot time, the idle window if asked for, the busy job if
/// asked for, power-off.
fn measure(
    inputs: &Inputs,
    setup: Setup,
    idle: Option<Duration>,
    busy: bool,
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
    if busy {
        machine.shell_until(BUSY_SETUP, BUSY_READY)?;
        samples.busy.push(machine.timed_job(BUSY_JOB)?);
    }
    machine.power_off()
}

/// Unlocks into a persona this many times.
const SWITCHES: u32 = 5;

/// The default pair with the phone's screen: the latency of unlocking into
/// a persona (Duet's own figure, from the key to the persona's frame on the
/// screen), [`SWITCHES`] times.
fn switch_latencies(inputs: &Inputs) -> Result<Vec<f64>> {
    let options =
        qemu::Options { package: Some(inputs.pair.clone()), screen: true, ..Default::default() };
    let command = qemu::command(duet_boards::default_board(), &inputs.image.binary, &options);
    let mut machine = Machine::start(command, Setup::DuetPair)?;
    machine.boot()?;
    machine.locked()?;
    machine::idle_for(SETTLE);
    let micros = (0..SWITCHES).map(|_| machine.switch_micros()).collect::<Result<Vec<_>>>()?;
    machine.power_off()?;
    Ok(micros)
}

fn command(inputs: &Inputs, setup: Setup) -> std::process::Command {
    match setup {
        Setup::Native => qemu::native_linux_command(&inputs.kernel, &inputs.initrd),
        Setup::Duet | Setup::DuetPair => {
            let package = if setup == Setup::Duet { &inputs.single } else { &inputs.pair };
            let options = qemu::Options { package: Some(package.clone()), ..Default::default() };
            qemu::command(duet_boards::default_board(), &inputs.image.binary, &options)
        }
    }
}

/// QEMU's CPU time over `window` of idleness; under Duet, its counters are
/// read just outside the window, so printing them is not counted.
fn idle_window(machine: &mut Machine, setup: Setup, window: Duration) -> Result<Idle> {
    let before = match setup {
        Setup::Duet | Setup::DuetPair => Some(machine.counters()?),
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
fn rows(
    options: &Options,
    native: &Samples,
    duet: &Samples,
    pair: &Samples,
    switches: &[f64],
    micro: &Micro,
    size: &size::Size,
) -> Vec<Row> {
    let idle = format!("idle {} s", options.idle_seconds);
    let cpu = |s: &Samples| s.idle.as_ref().map(|i| vec![i.cpu_seconds]).unwrap_or_default();
    let mut rows = micro_rows(micro);
    rows.extend([
        Row::compared(
            "boot.init",
            "boot to init, one persona (median)",
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
            "boot.init_pair",
            "boot to init, two personas",
            Unit::Seconds,
            Vec::new(),
            pair.boot.clone(),
            None,
        ),
        Row::compared(
            "idle.host_cpu",
            &format!("{idle}: QEMU host CPU time (Duet: two personas)"),
            Unit::CpuSeconds,
            cpu(native),
            cpu(pair),
            Some(IDLE_TARGET),
        ),
    ]);
    if let Some((before, after)) = pair.idle.as_ref().and_then(|i| i.counters.as_ref()) {
        rows.extend(wakeup_rows(&idle, &after.cpus_since(before)));
        rows.push(Row::duet_only(
            "memory.heap_used",
            &format!("memory: heap in use (of {} KiB)", after.heap_total_kib),
            Unit::Kib,
            after.heap_used_kib as f64,
        ));
    }
    rows.push(Row::compared(
        "screen.switch",
        "persona switch: key to the persona's frame on the screen (median)",
        Unit::Microseconds,
        Vec::new(),
        switches.to_vec(),
        None,
    ));
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

/// Each figure of the bench guest: instructions per operation (icount,
/// the median of two runs), what Duet adds to them, and nanoseconds per
/// operation on the wall clock; then how far the icount runs differ.
fn micro_rows(micro: &Micro) -> Vec<Row> {
    let per_op = |runs: &[micro::Run], name: &str| -> Vec<f64> {
        runs.iter().filter_map(|run| run.nanoseconds_per_op(name)).collect()
    };
    let mut rows = Vec::new();
    let mut spread: f64 = 0.0;
    for name in duet_bench_guest::figure::NAMES {
        let (native, duet) = (per_op(&micro.native_icount, name), per_op(&micro.duet_icount, name));
        if native.is_empty() && duet.is_empty() {
            continue;
        }
        for samples in [&native, &duet] {
            spread = spread.max(table::relative_spread(samples));
        }
        let instructions = Row::compared(
            &format!("micro.{name}.instructions"),
            &format!("{name}: instructions/op (icount)"),
            Unit::Instructions,
            native,
            duet,
            None,
        );
        let added = instructions.duet.zip(instructions.native).map(|(d, n)| d - n);
        rows.push(instructions);
        if let Some(added) = added {
            rows.push(Row::duet_only(
                &format!("micro.{name}.duet_instructions"),
                &format!("{name}: Duet's instructions/op"),
                Unit::Instructions,
                added,
            ));
        }
        rows.push(Row::compared(
            &format!("micro.{name}.wall_ns"),
            &format!("{name}: ns/op (wall clock)"),
            Unit::Nanoseconds,
            per_op(&micro.native_wall, name),
            per_op(&micro.duet_wall, name),
            None,
        ));
    }
    rows.push(Row::duet_only(
        "micro.icount_spread",
        "microbenchmarks: largest icount run-to-run difference",
        Unit::Percent,
        spread * 100.0,
    ));
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
