//! The benchmark report: which machine the figures came from, and
//! `docs/benchmarks.md` (how each figure is measured, then the table) with
//! `docs/benchmarks.png`, a bar chart of each ratio against its target.

use super::table::{self, Row};
use super::{Results, BUSY_JOB, BUSY_SETUP};
use crate::deps::{self, QEMU};
use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The machine and software a run measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Host {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub qemu: String,
    pub host_kernel: String,
    pub guest_kernel: String,
    /// When the run finished (UTC).
    pub date: String,
    /// The host's 1-minute load average when the run started and ended:
    /// other work on a shared host shows here.
    pub load: (String, String),
}

impl Host {
    /// The host, with `load_at_start` from [`load_average`] at the start.
    pub fn describe(load_at_start: String) -> Result<Host> {
        let cpuinfo =
            std::fs::read_to_string("/proc/cpuinfo").context("cannot read /proc/cpuinfo")?;
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Ok(Host {
            cpu: cpu_model(&cpuinfo),
            cores: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
            memory_gib: mem_total_kib(&meminfo).unwrap_or(0) as f64 / (1024.0 * 1024.0),
            qemu: first_line(Command::new(QEMU).arg("--version"))?,
            host_kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            guest_kernel: crate::guest::debian_kernel_release()?,
            date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?,
            load: (load_at_start, load_average()),
        })
    }
}

/// The 1-minute load average, from /proc/loadavg (empty if unreadable).
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("").to_owned()
}

/// The CPU's name: `model name` on x86, else what arm64 kernels print.
fn cpu_model(cpuinfo: &str) -> String {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    if let Some(model) = field("model name").or_else(|| field("Hardware")) {
        return model;
    }
    match (field("CPU implementer"), field("CPU part")) {
        (Some(implementer), Some(part)) => format!("implementer {implementer}, part {part}"),
        _ => "unknown".into(),
    }
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn first_line(command: &mut Command) -> Result<String> {
    let output = command.output().with_context(|| format!("cannot run {command:?}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Writes docs/benchmarks.md and docs/benchmarks.png.
pub fn write(results: &Results) -> Result<()> {
    let docs = crate::workspace_root().join("docs");
    let png = docs.join("benchmarks.png");
    plot(&results.rows, &png).context("cannot draw the benchmark chart")?;
    let md = docs.join("benchmarks.md");
    // The power section is `bench --power`'s: keep the one there is.
    let earlier = std::fs::read_to_string(&md).unwrap_or_default();
    let power = power_section(&earlier).unwrap_or(POWER_PLACEHOLDER);
    std::fs::write(&md, markdown(results) + "\n" + power)
        .with_context(|| format!("cannot write {}", md.display()))?;
    eprintln!("bench: wrote {} and {}", md.display(), png.display());
    Ok(())
}

fn markdown(results: &Results) -> String {
    let host = &results.host;
    let mut out = String::from(
        "# Benchmarks\n\n\
         What Duet costs, measured by `cargo xtask bench` against the same work\n\
         without Duet, in the same run on the same machine, so the ratios mean\n\
         something on any machine even where the absolute figures do not. This\n\
         file and `benchmarks.png` are written by `cargo xtask bench --report`;\n\
         `target/bench/results.json` holds every sample.\n\n",
    );
    out += &format!(
        "## The machine\n\n\
         | | |\n| --- | --- |\n\
         | CPU | {} |\n| cores | {} |\n| memory | {:.0} GiB |\n| QEMU | {} |\n\
         | host kernel | {} |\n| guest kernel | Debian's arm64 Linux {} |\n| date | {} |\n\
         | host load (1-minute average) at start, end | {}, {} on {} cores |\n\
         | command | `cargo xtask bench --report --runs {} --idle-seconds {}` |\n\n",
        host.cpu,
        host.cores,
        host.memory_gib,
        host.qemu,
        host.host_kernel,
        host.guest_kernel,
        host.date,
        host.load.0,
        host.load.1,
        host.cores,
        results.runs,
        results.idle_seconds,
    );
    out += "## Results\n\n";
    out += &table::markdown(&results.rows);
    out += "\n![Each ratio against its target](benchmarks.png)\n\n";
    out += &METHOD
        .replace("{BUSY_JOB}", BUSY_JOB)
        .replace("{BUSY_SETUP}", BUSY_SETUP)
        .replace("{CORES}", &host.cores.to_string());
    out
}

/// The heading of docs/benchmarks.md's last section, which `cargo xtask
/// bench --power --report` writes.
const POWER_HEADING: &str = "## Power\n";
/// The power section before `bench --power --report` ever ran.
const POWER_PLACEHOLDER: &str =
    "## Power\n\nNot measured yet: `cargo xtask bench --power --report` \
                                 writes this section and benchmarks-power.md.\n";

/// The power section of a benchmarks.md: from its heading to the end.
fn power_section(md: &str) -> Option<&str> {
    let start = md.find(POWER_HEADING)?;
    (start == 0 || md[..start].ends_with('\n')).then(|| &md[start..])
}

/// `md` with its power section replaced by (or, without one, followed by)
/// `section`, which starts with the power heading.
pub fn with_power_section(md: &str, section: &str) -> String {
    let kept = match power_section(md) {
        Some(old) => &md[..md.len() - old.len()],
        None if md.is_empty() || md.ends_with("\n\n") => md,
        None => return format!("{}\n\n{section}", md.trim_end()),
    };
    format!("{kept}{section}")
}

/// The power section written by `bench --power --report`: the table.
pub fn power_markdown(table: &str) -> String {
    format!(
        "{POWER_HEADING}\nPower-aware scheduling (docs/power.md), measured by `cargo xtask bench \
         --power --report`; how each scenario runs is in benchmarks-power.md.\n\n```\n{table}```\n"
    )
}

/// How each figure is measured (docs/benchmarks.md, after the table).
const METHOD: &str = "## How each figure is measured

Everything runs under `qemu-system-aarch64` with TCG (software emulation)
and the same CPU model (`-cpu max`). Duet's machine is `cargo xtask run`'s:
QEMU `virt` with `virtualization=on`, GICv3, 4 CPUs, 2 GiB. The machine
without Duet is QEMU `virt` at EL1 (no EL2; QEMU answers PSCI over HVC
itself) with the same interrupt controller the guest sees under Duet,
`-M virt,gic-version=3`.

### Microbenchmarks (the bench guest)

`guests/bench` is a bare-metal arm64 `Image` (standard header, device tree
in x0, self-relocating) that learns its UART, GIC (v2 or v3), CPUs,
virtio-mmio transports and PSCI conduit from the device tree and nothing
else, so it runs unchanged under Duet (as the only VM of a package: 2 vCPUs,
64 MiB) and directly on QEMU (`-M virt,gic-version=3 -smp 2 -m 64M`; the
integration tests also run it with GICv2). It times each operation over
many iterations with the virtual counter (`CNTVCT_EL0`, read after an ISB)
and prints one `bench: <figure> ticks_per_op=... total_ticks=...
iterations=...` line each:

- **hvc_null** (2000 iterations): SMCCC `PSCI_VERSION` over the device
  tree's conduit (HVC): the cheapest exit and return.
- **mmio_gicd_typer** (2000): a 32-bit read of the distributor's
  `GICD_TYPER`, emulated by Duet's vGIC under Duet and by QEMU natively.
- **mmio_virtio_magic** (2000): a 32-bit read of the first virtio-mmio
  transport's `MagicValue`; reported absent when the device tree has no
  virtio-mmio node (Duet gives its guests none until it has virtio devices).
- **ipi_one_way**, **ipi_round_trip** (200): CPU 0 (the second CPU started
  with PSCI `CPU_ON`) sends SGI 1 to CPU 1 and waits in WFI; CPU 1's
  handler reads the counter at its vector entry and answers with SGI 2.
  One way is CPU 1's vector entry minus the send; the round trip ends at
  CPU 0's vector entry.
- **timer_busy**, **timer_wfi** (100): the virtual timer armed 1 ms ahead
  (`CNTV_CVAL_EL0`) while CPU 0 spins or waits in WFI; the counter at the
  IRQ vector minus the deadline.

Each side runs three times: twice with `-icount shift=0,sleep=off` and once
on the wall clock. With `-icount shift=0` QEMU advances virtual time by
exactly 1 ns per instruction executed, and `sleep=off` makes an idle CPU
jump to the next timer deadline instead of waiting for the host, so the
run is deterministic: the counter's ticks convert to instructions as
`ticks * 10^9 / CNTFRQ` (QEMU's `-cpu max` counts at 1 GHz, so one tick is
one instruction). That stands in for the PMU's instruction counter, which
Duet hides from guests. The table's *instructions/op* are that figure
(the median of the two icount runs; they agree to the instruction), and
*Duet's instructions/op* the difference: what Duet's exit, emulation and
return add. *ns/op (wall clock)* is the third run's counter in nanoseconds,
which follows the host's clock and is only as steady as the host's load.

Caveats: icount time is global, so a figure counts the instructions of
every CPU of the machine while it runs. For the null call and the MMIO
read only the calling CPU runs (the others sleep in WFI); for the IPI and
the timer it includes the wakeup of a sleeping CPU: under Duet, the sleeping
physical CPU's wakeup, Duet's scheduling and the vGIC's work. The null
call's native figure is the guest's own loop (QEMU emulates the HVC as one
instruction), so under Duet almost all of it is Duet's path.

### Where the null call's instructions go

Traced with QEMU's per-instruction execution log (`-icount
shift=0,sleep=off -accel tcg,one-insn-per-tb=on -d exec,nochain`) over the
bench guest's HVC loop, each EL2 address mapped to Duet's functions (with
their inlined callers) by `llvm-addr2line -i`. One `PSCI_VERSION` round
trip under Duet, 645 instructions in all (9 are the guest's loop):

| instructions | where |
| ---: | --- |
| about 170 | `memset`: zeroing the 16-entry list-register buffers of `load_list_registers` and `save_list_registers` (the slow part is compiler-builtins' memset) |
| about 110 | reading, clearing and writing the 4 list registers and ICH_HCR_EL2 |
| 68 | the exit and entry assembly (`duet_guest_exit`, `duet_enter_guest`, the vector) |
| about 40 | the vGIC's fill and sync, which now look only at the interrupts that may be pending or active |
| about 40 | decoding the exit and answering PSCI (`handle_exit`, `psci::handle`) |
| about 35 | spin locks (the vGIC, the vCPU's power state) |
| about 170 | the CPU loop: picking the vCPU, arming the EL2 timer, counters |

Before this benchmark the same call took 5034 instructions: on every guest
entry `fill_lrs` looked up all 96 interrupts (32 private, 64 SPIs) with
their routing, then zeroed and sorted a candidate list. The vGIC now keeps
a hint bit per interrupt, set by every change to its state and cleared
when a fill finds it idle, so an entry looks only at those (1756
instructions with only an early exit for idle interrupts, 645 with the
hints). The check whether a waiting vCPU has an interrupt to take used the
same 96-interrupt walk, on each pass of the CPU loop; it uses the hints
too, which took the one-way IPI from 7660 instructions to about 2400 and
the timer's latency from about 4600 to about 1200. The MMIO read costs
about 150 more than the call: the data abort's decoding and the vGIC's
register emulation. What is left to shorten: the list-register buffers'
zeroing (a quarter of the null call), and, for interrupts, the second exit
a level-triggered virtual timer interrupt takes (its EOI maintenance
interrupt).

### Linux: boot, idle, busy

The Linux runs use the same Linux `Image` and busybox initramfs (`cargo
xtask guest`) and the same kernel command line (`console=ttyAMA0 quiet`).

- **Native**: `qemu-system-aarch64 -M virt,gic-version=3 -cpu max -smp 2 -m
  256M -nographic -no-reboot -nic none -kernel Image -initrd initramfs.cpio
  -append \"console=ttyAMA0 quiet\"`.
- **Under Duet (one persona)**: a package with one VM, the default personal
  persona: the same kernel, initramfs and command line, 2 vCPUs, 256 MiB.
  Boot and busy compare these two, so the ratio is Duet's cost alone.
- **Under Duet (two personas)**: the default persona set
  (`guests/default.toml`): the personal VM (2 vCPUs, 256 MiB) and the
  corporate VM (1 vCPU, 192 MiB) side by side; booted once, for the idle
  window.

Runs alternate native and Duet boots, so drift in the host's load touches
both sides alike. The console is read as QEMU prints it, each piece stamped
with the time it arrived.

- **boot to init, one persona**: wall time from starting QEMU to the
  guest's `duet-guest: init ran` line (`[personal] duet-guest: init ran`
  under Duet); the median of the runs. The ratio is Duet's median over the
  native median.
- **boot to init, two personas**: the same for the personal VM of the pair
  (one sample): what the corporate VM booting beside it adds.
- **persona switch**: the default pair booted with the phone's screen
  (`--screen`); five times, Duet's console key `Ctrl-] o` unlocks the lock
  screen into the persona used last and locks it again. The figure is
  Duet's own (`duet: screen: switch to vm ... took N us`): the system
  counter from reading the key to the end of the physical flush of the
  persona's frame (see persona-switch.md); the median of the five.
- **boot: Duet's banner**: wall time from starting QEMU to Duet's first line
  (`Duet ... -- a hypervisor for phones, at EL2`): QEMU's own start-up plus
  Duet's early boot.
- **idle: QEMU host CPU time**: once the guests' shells are up and 2 s more
  have passed, the user plus system time of the QEMU process (all its
  threads; `/proc/<pid>/stat` fields 14 and 15 over `sysconf(_SC_CLK_TCK)`)
  is sampled, the guests are left alone for the window, and it is sampled
  again. Under Duet that is two idle personas; natively, one idle Linux (the
  first native run). The window is wall time, which is guest time too:
  QEMU's virtual counter follows the host clock.
- **idle: Duet idle sleeps / timer interrupts**: Duet's counters (`Ctrl-] s`)
  read just before and just after that window (outside the CPU-time samples);
  the differences, in all and per physical CPU. An idle sleep is one WFI with
  nothing to run, so each ends in a wakeup; timer interrupts are those of
  Duet's own EL2 timer (a tickless Duet takes none while guests idle).
- **memory: heap in use**: the `duet: heap ... KiB in use` line of the
  counters after the idle window: bytes allocated from Duet's heap, out of
  the heap Duet reserves at boot.
- **busy**: the guest's shell runs `{BUSY_SETUP}` (untimed: one 16 MiB file
  in tmpfs under 16 names), then `{BUSY_JOB}`: busybox's md5sum hashing 256
  MiB in one process. The figure is busybox's `real` time, in guest time,
  and the median of the runs (one persona under Duet against native).
- **size**: the hypervisor ELF's allocated sections, sorted by their flags:
  executable (text), read-only (rodata, with the dynamic symbols and
  relocations Duet applies to itself), initialised writable (data),
  uninitialised (bss) and the per-CPU boot stacks (`.stacks`). *Image file*
  is the flat `duet.bin` a bootloader loads; *image in memory* is all of
  them together, what the image occupies once running (the heap comes on
  top).

## Reading the figures

- The targets (boot ratio at most 1.05, idle at most 1.10 with two personas
  against one native guest, busy at most 1.02; the null call and MMIO trap
  in at most a few hundred instructions) are goals for Duet on a phone;
  the benchmark reports whether they are met and never fails because of them.
- Under QEMU every emulated CPU is a host thread: Duet's machine has 4 of them
  and the native one 2, on a host with {CORES} cores. Duet's idle CPUs sleep in
  WFI, which costs the host nothing, but any work is emulated instruction by
  instruction, so the wall-clock figures and ratios measure Duet's emulated
  cost, not a phone's; the icount instruction counts are the same on any host.
- The host is shared: other work (other QEMU runs) may load it while the
  benchmark runs, which moves the wall-clock figures but not the icount ones.
  Runs alternate sides so that such load touches both alike.
- The wall-clock IPI and timer figures mostly measure when QEMU gets round
  to delivering an interrupt to a TCG vCPU on a loaded host (a spinning
  vCPU notices a timer only between translated blocks, natively too), so
  they swing by large factors between runs; the icount figures are the
  ones to compare.
- With `virtualization=on`, QEMU's emulated MMU translates every guest
  access through stage 1 and stage 2, so a TLB miss costs more under Duet
  even where Duet itself never runs: part of the boot and busy ratios is that.
- The two sides do not see identical CPU features: Duet hides from its
  guests what it does not virtualise (SVE, SME, MTE, the PMU and more; see
  `hyp/src/vm/features.rs`), while the native guest sees all of `-cpu max`.
- Idle CPU time is a small figure (a fraction of a second per minute): one
  clock tick is 10 ms, so short windows give coarse ratios.
";

/// Draws the ratios that have targets as bars, each with its target.
fn plot(rows: &[Row], path: &Path) -> Result<()> {
    let bars: Vec<(&str, f64, f64)> = rows
        .iter()
        .filter_map(|row| Some((short_label(&row.id), row.ratio?, row.target?)))
        .collect();
    if bars.is_empty() {
        bail!("no ratio with a target to draw");
    }
    register_font()?;
    let (width, height) = (800u32, 480u32);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    draw(&bars, &mut pixels, (width, height)).map_err(|e| anyhow!("{e}"))?;
    write_png(path, &pixels, (width, height))
}

fn short_label(id: &str) -> &str {
    match id {
        "boot.init" => "boot to init",
        "idle.host_cpu" => "idle host CPU",
        "busy.md5" => "busy (md5sum)",
        other => other,
    }
}

fn draw(
    bars: &[(&str, f64, f64)],
    pixels: &mut [u8],
    size: (u32, u32),
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars.iter().map(|&(_, ratio, target)| ratio.max(target)).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("Duet / native, with each target (lower is better)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(52)
        // A segmented range over 0..n has a segment for n too: stop at n - 1.
        .build_cartesian_2d((0..bars.len() as i32 - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc("ratio")
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(i) => bars.get(*i as usize).map(|b| b.0).unwrap_or("").into(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 16))
        .draw()?;
    let at = |i: usize| SegmentValue::Exact(i as i32);
    let centre = |i: usize| SegmentValue::CenterOf(i as i32);
    // Parity: where Duet would cost nothing.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(at(0), 1.0), (at(bars.len()), 1.0)],
        BLACK.mix(0.4),
    )))?;
    for (i, &(_, ratio, target)) in bars.iter().enumerate() {
        let colour = if ratio <= target { RGBColor(60, 150, 80) } else { RGBColor(200, 70, 60) };
        let mut bar = Rectangle::new([(at(i), 0.0), (at(i + 1), ratio)], colour.filled());
        bar.set_margin(0, 0, 40, 40);
        chart.draw_series(std::iter::once(bar))?;
        let mut mark =
            Rectangle::new([(at(i), target), (at(i + 1), target)], BLACK.stroke_width(3));
        mark.set_margin(0, 0, 24, 24);
        chart.draw_series(std::iter::once(mark))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{ratio:.3} (target {target:.2})"),
            (centre(i), ratio.max(target) + top * 0.03),
            ("sans-serif", 16).into_font().color(&BLACK).pos(text_centre()),
        )))?;
    }
    root.present()?;
    Ok(())
}

fn text_centre() -> plotters::style::text_anchor::Pos {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    Pos::new(HPos::Center, VPos::Bottom)
}

fn write_png(path: &Path, rgb: &[u8], (width, height): (u32, u32)) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}

/// Where Debian's `fonts-dejavu-core` (and other distributions) put the font.
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// The chart's text needs a TrueType font; plotters draws it with ab_glyph.
fn register_font() -> Result<()> {
    let path = match find_font() {
        Some(path) => path,
        None if deps::can_install_debian_packages() => {
            deps::apt(&["install", "-y", "-q", "fonts-dejavu-core"])?;
            find_font().context("fonts-dejavu-core installed no DejaVuSans.ttf")?
        }
        None => bail!(
            "the chart needs the DejaVu Sans font; on Debian: apt-get install fonts-dejavu-core"
        ),
    };
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable font", path.display()))
}

fn find_font() -> Option<PathBuf> {
    FONT_PATHS.iter().map(PathBuf::from).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_names_from_x86_and_arm64_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(x86), "AMD EPYC 7B13");
        let arm = "processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n";
        assert_eq!(cpu_model(arm), "implementer 0x41, part 0xd0b");
        assert_eq!(cpu_model(""), "unknown");
    }

    #[test]
    fn the_report_names_the_machine_then_the_table_then_the_method() {
        let results = Results {
            host: Host {
                cpu: "Test CPU".into(),
                cores: 2,
                memory_gib: 24.0,
                qemu: "QEMU emulator version 10.0.2".into(),
                host_kernel: "6.1".into(),
                guest_kernel: "6.12.117+deb12-arm64".into(),
                date: "2026-11-23 20:40 UTC".into(),
                load: ("1.50".into(), "2.25".into()),
            },
            runs: 3,
            idle_seconds: 60,
            busy_job: BUSY_JOB.into(),
            rows: vec![Row::duet_only("size.text", "size: text", table::Unit::Kib, 147.0)],
            idle_counters: None,
            size: Default::default(),
        };
        let text = markdown(&results);
        let machine = text.find("| CPU | Test CPU |").unwrap();
        let table = text.find("| size: text | - | 147 KiB | - | - |").unwrap();
        let method = text.find("## How each figure is measured").unwrap();
        assert!(machine < table && table < method);
        assert!(text.contains("`cargo xtask bench --report --runs 3 --idle-seconds 60`"));
        assert!(
            text.contains("| host load (1-minute average) at start, end | 1.50, 2.25 on 2 cores |")
        );
        assert!(text.contains(BUSY_JOB) && text.contains(BUSY_SETUP));
        assert!(!text.contains("{BUSY_JOB}") && !text.contains("{CORES}"));
    }

    #[test]
    fn memory_from_meminfo() {
        assert_eq!(mem_total_kib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24576000));
        assert_eq!(mem_total_kib(""), None);
    }

    #[test]
    fn the_power_section_is_replaced_or_added_and_kept() {
        let section = power_markdown("idle 0.6\n");
        let main = "# Benchmarks\n\nrows\n";
        let added = with_power_section(main, &section);
        assert_eq!(added, format!("# Benchmarks\n\nrows\n\n{section}"));
        assert_eq!(power_section(&added), Some(section.as_str()));
        let newer = power_markdown("idle 0.5\n");
        let replaced = with_power_section(&added, &newer);
        assert_eq!(replaced, format!("# Benchmarks\n\nrows\n\n{newer}"));
        assert_eq!(power_section("no section\n"), None);
        // A heading's text inside a line is not a heading.
        assert_eq!(power_section("see ## Power\nx"), None);
    }
}
