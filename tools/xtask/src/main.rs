//! `cargo xtask`: Duet's developer commands.
//!
//!   cargo xtask run    build Duet and boot it under QEMU (the main job)
//!   cargo xtask test   every test: host unit tests, then QEMU integration tests
//!   cargo xtask build  build the hypervisor image only
//!   cargo xtask guest  fetch or build the Linux guest (kernel, initramfs)
//!   cargo xtask bench  measure Duet against the same work without it

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use xtask::image::{self, Variant};
use xtask::qemu::{self, Ending};
use xtask::{bench, deps, disk, guest, personas, sdcard, workspace_root};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test Duet")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build Duet and boot it under QEMU; returns when the machine powers off.
    Run {
        /// The board to emulate.
        #[arg(long, default_value = duet_boards::default_board().name)]
        board: String,
        /// CPUs, if not the board's default.
        #[arg(long)]
        smp: Option<u32>,
        /// Duet's boot command line, e.g. `duet.log=debug`.
        #[arg(long)]
        append: Option<String>,
        /// The persona manifest to boot (default: guests/default.toml, with
        /// Debian's kernel and a busybox initramfs fetched on first use).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Replace the manifest's disk image (target/disk/<manifest>.img)
        /// with a new one; without this an existing image is kept.
        #[arg(long)]
        new_disk: bool,
        /// Give the board the phone's screen (720x1280), touch panel and
        /// keyboard, which Duet drives: the lock screen shows at boot
        /// (QEMU stays headless; QMP `screendump` shows the screen). Only
        /// on QEMU `virt`.
        #[arg(long)]
        screen: bool,
        /// Open a QMP socket at this path (QEMU's machine protocol: tests
        /// take screenshots and send touches and keys through it).
        #[arg(long)]
        qmp: Option<PathBuf>,
        /// Extra QEMU arguments, after `--`.
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
    /// Run every test: host unit tests, then integration tests under QEMU.
    Test {
        /// Only the host unit tests.
        #[arg(long)]
        unit: bool,
        /// Passed to the integration tests' harness, e.g. a test name filter.
        #[arg(last = true)]
        filter: Vec<String>,
    },
    /// Write a flashable SD-card image: Duet, its personas and the board's
    /// boot firmware (see docs/boards/rpi4.md).
    Image {
        /// The board (only rpi4 has one).
        #[arg(long)]
        board: String,
        /// The persona manifest (default: guests/default.toml).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Where to write the image.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build the hypervisor image and print its path.
    Build {
        /// Build the variant with deliberate faults for the crash tests.
        #[arg(long)]
        fault_injection: bool,
    },
    /// Fetch Debian's arm64 kernel, build the busybox initramfs, and print
    /// their paths (kernel first); cached under target/guests/.
    Guest {
        /// The kernel series: 6.12 (bookworm-backports, the default
        /// persona's) or 6.1 (bookworm's own).
        #[arg(long, default_value = guest::DEFAULT_SERIES.name())]
        kernel: String,
    },
    /// Measure Duet against the same Linux without it (boot, idle, busy) and
    /// its size; prints a table and writes target/bench/results.json.
    Bench {
        /// Also write docs/benchmarks.md and docs/benchmarks.png.
        #[arg(long)]
        report: bool,
        /// The idle window, in seconds.
        #[arg(long, default_value_t = 60)]
        idle_seconds: u64,
        /// Boots of each kind (native, Duet); figures are medians.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Run the power-scheduling scenarios instead (background hog,
        /// timers, idle with the screen off, big.LITTLE placement;
        /// docs/power.md): target/bench/power.json, and with --report
        /// docs/benchmarks-power.md.
        #[arg(long)]
        power: bool,
        /// With --power, only this scenario: hog, timers, idle or big-little.
        #[arg(long, requires = "power")]
        scenario: Option<String>,
        /// Run only the bench guest's microbenchmarks, once with icount on
        /// each side (quick; for work on Duet's hot paths).
        #[arg(long, conflicts_with = "power")]
        micro: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn find_board(name: &str) -> Result<&'static duet_boards::Board> {
    duet_boards::by_name(name).with_context(|| {
        let names: Vec<_> = duet_boards::BOARDS.iter().map(|b| b.name).collect();
        format!("no board called {name:?}; boards: {}", names.join(", "))
    })
}

fn run(task: Task) -> Result<ExitCode> {
    match task {
        Task::Run { board, smp, append, manifest, new_disk, screen, qmp, qemu_args } => {
            let board = find_board(&board)?;
            deps::ensure_qemu()?;
            let image = image::build(Variant::Release)?;
            // Manifests may name the mail guest (guests/mail.toml does);
            // building it when nothing changed takes a moment.
            image::build_mail()?;
            let manifest = match manifest {
                Some(manifest) => manifest,
                None => guest::default_manifest()?,
            };
            let package = personas::package(&manifest, board)?;
            let dtb = qemu::board_dtb(board)?;
            let checked = duet_pack::Manifest::load(&manifest)?;
            // Only QEMU `virt` has the virtio-mmio bus Duet drives the
            // physical disk and network card on.
            let physical_virtio = qemu::has_virtio_mmio(board);
            let disk = if physical_virtio { disk::ensure(&checked, new_disk)? } else { None };
            let nic = physical_virtio && checked.vms.iter().any(|vm| vm.net.is_some());
            let options = qemu::Options {
                cpus: smp,
                append,
                package: Some(package),
                dtb,
                disk,
                nic,
                // The phone's screen, touch panel and keyboard.
                screen: screen && physical_virtio,
                qmp,
                extra_args: qemu_args,
            };
            let (status, ending) =
                qemu::run_attached(qemu::command(board, &image.binary, &options))?;
            Ok(match ending {
                Ending::PoweredOff if status.success() => ExitCode::SUCCESS,
                Ending::PoweredOff | Ending::Halted => {
                    eprintln!("xtask: Duet halted; see the console above");
                    ExitCode::FAILURE
                }
                Ending::Unknown => {
                    eprintln!("xtask: QEMU ended ({status}) without Duet powering off");
                    ExitCode::FAILURE
                }
            })
        }
        Task::Image { board, manifest, out } => {
            let board = find_board(&board)?;
            sdcard::make(board, manifest, &out)?;
            println!("{}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Task::Test { unit, filter } => {
            cargo(&["test", "--quiet"])?;
            if !unit {
                deps::ensure_qemu()?;
                deps::ensure_mail_servers()?;
                let mut args = vec!["test", "--quiet", "--package", "duet-tests", "--"];
                args.extend(filter.iter().map(String::as_str));
                cargo(&args)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Task::Build { fault_injection } => {
            let variant = if fault_injection { Variant::FaultInjection } else { Variant::Release };
            let image = image::build(variant)?;
            println!("{}", image.binary.display());
            Ok(ExitCode::SUCCESS)
        }
        Task::Guest { kernel } => {
            let series = guest::KernelSeries::by_name(&kernel).with_context(|| {
                let names: Vec<_> = guest::series::ALL_SERIES.iter().map(|s| s.name()).collect();
                format!("no kernel series {kernel:?}; series: {}", names.join(", "))
            })?;
            let kernel = guest::debian_kernel_series(series)?;
            let initramfs = guest::busybox_initramfs()?;
            eprintln!("xtask: Linux {} (Debian, arm64)", kernel.release);
            println!("{}", kernel.image.display());
            println!("{}", initramfs.display());
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench { power: true, report, scenario, .. } => {
            bench::power::run(report, scenario.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench { micro: true, .. } => {
            bench::run_micro()?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench { report, idle_seconds, runs, power: false, micro: false, .. } => {
            bench::run(&bench::Options { report, idle_seconds, runs })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
