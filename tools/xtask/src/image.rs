//! Building the hypervisor image: `cargo build` for `aarch64-unknown-none-softfloat`,
//! then the ELF turned into the flat arm64 `Image` that bootloaders load.
//!
//! Each variant builds in its own target directory, so switching between
//! them costs nothing, and so that a `cargo test` that holds the workspace's
//! target directory can still build images.

use anyhow::{bail, ensure, Context, Result};
use object::elf::{PT_LOAD, R_AARCH64_RELATIVE};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, Object, RelocationFlags};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which hypervisor build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// What ships.
    Release,
    /// With the `fault-injection` feature, for the crash-report tests.
    FaultInjection,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Release => "release",
            Variant::FaultInjection => "fault-injection",
        }
    }

    fn features(self) -> &'static [&'static str] {
        match self {
            Variant::Release => &[],
            Variant::FaultInjection => &["fault-injection"],
        }
    }
}

pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// A built image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The flat image to hand to a bootloader.
    pub binary: PathBuf,
    /// The ELF it came from, with symbols and debug information.
    pub elf: PathBuf,
}

/// Builds the hypervisor (if anything changed) and writes its flat image.
pub fn build(variant: Variant) -> Result<Image> {
    crate::deps::ensure_rust_target(TARGET)?;
    let target_dir = crate::target_dir().join("hyp").join(variant.name());
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(crate::workspace_root())
        .args(["build", "--quiet", "--release", "--package", "duet", "--bin", "duet"])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    if !variant.features().is_empty() {
        cargo.args(["--features", &variant.features().join(",")]);
    }
    let status = cargo.status().context("cannot run cargo")?;
    ensure!(status.success(), "building the hypervisor failed ({status})");
    let elf = target_dir.join(TARGET).join("release").join("duet");
    let binary = target_dir.join("duet.bin");
    write_flat_image(&elf, &binary)?;
    Ok(Image { binary, elf })
}

/// Builds the probe guest (`guests/probe`) and writes its flat image.
pub fn build_probe() -> Result<Image> {
    build_guest("duet-probe", "probe")
}

/// Builds the mail guest (`guests/mail`, the corporate persona) and writes
/// its flat image, `target/guests/mail/mail.bin` (what guests/mail.toml
/// names).
pub fn build_mail() -> Result<Image> {
    build_guest("duet-mail", "mail")
}

/// Builds the microbenchmark guest (`guests/bench`) and writes its flat image.
pub fn build_bench_guest() -> Result<Image> {
    build_guest("duet-bench-guest", "bench")
}

/// Builds the bare-metal guest `package` and writes its flat image as
/// `target/guests/<name>/<name>.bin`.
fn build_guest(package: &str, name: &str) -> Result<Image> {
    crate::deps::ensure_rust_target(TARGET)?;
    let target_dir = crate::target_dir().join("guests").join(name);
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(crate::workspace_root())
        .args(["build", "--quiet", "--release", "--package", package])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    let status = cargo.status().context("cannot run cargo")?;
    ensure!(status.success(), "building the {name} guest failed ({status})");
    let elf = target_dir.join(TARGET).join("release").join(package);
    let binary = target_dir.join(format!("{name}.bin"));
    write_flat_image(&elf, &binary)?;
    Ok(Image { binary, elf })
}

/// Writes the loadable segments of `elf` as one flat file starting at its
/// lowest address (0 for Duet, which is linked there), after checking it is
/// an arm64 `Image` whose only relocations Duet's entry code can apply.
pub fn write_flat_image(elf: &Path, out: &Path) -> Result<()> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let flat =
        flatten(&data).with_context(|| format!("{} is not a usable Duet image", elf.display()))?;
    crate::write_whole(out, &flat)
}

fn flatten(data: &[u8]) -> Result<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(data)?;
    check_relocations(&file)?;
    let endian = file.endian();
    let loadable = || {
        file.elf_program_headers()
            .iter()
            .filter(|s| s.p_type(endian) == PT_LOAD && s.p_filesz(endian) > 0)
    };
    let base = loadable().map(|s| s.p_vaddr(endian)).min().context("no loadable segment")?;
    let mut flat = Vec::new();
    for segment in loadable() {
        let address = (segment.p_vaddr(endian) - base) as usize;
        let bytes = segment.data(endian, data).map_err(|()| anyhow::anyhow!("bad segment"))?;
        if flat.len() < address + bytes.len() {
            flat.resize(address + bytes.len(), 0);
        }
        flat[address..address + bytes.len()].copy_from_slice(bytes);
    }
    ensure!(flat.len() >= 64 && &flat[56..60] == b"ARM\x64", "no arm64 Image header at the start");
    Ok(flat)
}

/// The entry code applies only R_AARCH64_RELATIVE; anything else would be
/// left unrelocated, so it is refused here rather than crash at boot.
fn check_relocations(file: &ElfFile64<Endianness>) -> Result<()> {
    let Some(relocations) = file.dynamic_relocations() else {
        return Ok(());
    };
    for (offset, relocation) in relocations {
        match relocation.flags() {
            RelocationFlags::Elf { r_type } if r_type == R_AARCH64_RELATIVE => {}
            flags => bail!("unsupported dynamic relocation {flags:?} at {offset:#x}"),
        }
    }
    Ok(())
}
