//! The host side of Duet's developer commands, shared by the `xtask` binary
//! and the integration tests: where things are, how the hypervisor image is
//! built, how QEMU is started and watched, what the host must have, and the
//! Linux guest Duet boots.

pub mod bench;
pub mod big_little;
pub mod console;
pub mod deps;
pub mod disk;
pub mod guest;
pub mod image;
pub mod personas;
pub mod qemu;
pub mod sdcard;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tools/xtask sits two levels below the workspace root")
        .to_path_buf()
}

/// Where xtask keeps what it builds and fetches.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target")
}

/// Writes `data` to `path` through a file of its own and a rename, so that
/// a reader sees the old file or the new one, never a part: tests that run
/// at once build and pack the same things to the same paths, and one may
/// read (or boot) a file while another writes it; an interrupted run leaves
/// no half file either.
pub fn write_whole(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().context("a file to write sits in a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().context("a file to write has a name")?.to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let partial = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
    std::fs::write(&partial, data)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}
