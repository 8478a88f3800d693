//! `duet-pack`: check a persona manifest, or build the package Duet boots.
//!
//!   duet-pack check MANIFEST [--board-memory-mib N]
//!   duet-pack build MANIFEST --out FILE [--board-memory-mib N]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use duet::personas::PersonaPackage;
use duet_pack::manifest::DEFAULT_BOARD_MEMORY_MIB;
use duet_pack::{memory_for_vms, write_package, Manifest};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "duet-pack", about = "Check persona manifests and build persona packages")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a manifest and the images it names; write nothing.
    Check {
        /// The persona manifest (TOML).
        manifest: PathBuf,
        /// The board's RAM in MiB (Duet and the package take their share).
        #[arg(long, default_value_t = DEFAULT_BOARD_MEMORY_MIB)]
        board_memory_mib: u64,
    },
    /// Check a manifest and pack it with its images into one package file.
    Build {
        /// The persona manifest (TOML).
        manifest: PathBuf,
        /// Where to write the package.
        #[arg(long)]
        out: PathBuf,
        /// The board's RAM in MiB (Duet and the package take their share).
        #[arg(long, default_value_t = DEFAULT_BOARD_MEMORY_MIB)]
        board_memory_mib: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("duet-pack: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Check { manifest, board_memory_mib } => {
            let (manifest, package) = pack(&manifest, board_memory_mib)?;
            summarize(&manifest, package.len());
            println!("{}: ok", manifest.origin.display());
        }
        Command::Build { manifest, out, board_memory_mib } => {
            let (manifest, package) = pack(&manifest, board_memory_mib)?;
            let blobs = self_check(&package)?;
            std::fs::write(&out, &package)
                .with_context(|| format!("cannot write {}", out.display()))?;
            summarize(&manifest, package.len());
            let images: usize =
                manifest.vms.iter().map(|vm| 1 + usize::from(vm.initrd.is_some())).sum();
            println!("images: {images}, stored as {blobs} blobs (identical images once)");
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

/// Loads and checks the manifest, packs it in memory, and checks that the
/// VMs fit the board next to Duet and the package.
fn pack(path: &Path, board_memory_mib: u64) -> Result<(Manifest, Vec<u8>)> {
    let manifest = Manifest::load(path)?;
    let package =
        write_package(&manifest).with_context(|| format!("{}: cannot pack", path.display()))?;
    manifest.validate(memory_for_vms(board_memory_mib, package.len() as u64))?;
    Ok((manifest, package))
}

/// Reads the package back with the hypervisor's own reader, so a package
/// this tool writes is one Duet accepts; returns how many blobs it holds.
fn self_check(package: &[u8]) -> Result<usize> {
    // The reader takes 'static bytes, as the hypervisor's package lives for
    // ever; this process ends right after, so leaking one copy costs nothing.
    let bytes: &'static [u8] = Box::leak(package.to_vec().into_boxed_slice());
    PersonaPackage::parse(bytes)
        .map(|package| package.blobs().len())
        .context("the package fails Duet's own check (a duet-pack bug)")
}

fn summarize(manifest: &Manifest, package_len: usize) {
    for (index, vm) in manifest.vms.iter().enumerate() {
        println!("vm@{index}: {vm}");
    }
    let mib = package_len as f64 / f64::from(1 << 20);
    println!(
        "package: {package_len} bytes ({mib:.1} MiB), VMs ask for {} MiB",
        manifest.total_memory_mib()
    );
}
