//! The host side of Duet's developer commands, shared by the `xtask` binary
//! and the integration tests: where things are, how the hypervisor image is
//! built, how QEMU is started and watched, what the host must have, and the
//! Linux guest Duet boots.

pub mod bench;
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
