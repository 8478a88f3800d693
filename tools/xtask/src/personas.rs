//! Persona packages for runs and tests: a manifest checked against the board
//! and packed, with its images, into the file the hypervisor boots from.

use anyhow::{Context, Result};
use duet_boards::Board;
use duet_pack::{memory_for_vms, write_package, Manifest};
use std::path::{Path, PathBuf};

/// Checks `manifest` for `board` and writes its package under
/// `target/personas/`; returns the package's path.
pub fn package(manifest: &Path, board: &Board) -> Result<PathBuf> {
    let manifest = Manifest::load(manifest)?;
    let bytes = write_package(&manifest)
        .with_context(|| format!("cannot pack {}", manifest.origin.display()))?;
    let available = memory_for_vms(u64::from(board.qemu.memory_mib), bytes.len() as u64);
    manifest.validate(available)?;
    let dir = crate::target_dir().join("personas");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem =
        manifest.origin.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let out = dir.join(format!("{stem}.pkg"));
    crate::write_whole(&out, &bytes)?;
    Ok(out)
}
