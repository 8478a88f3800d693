//! Helpers shared by duet-pack's tests: a scratch directory and fake images.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system's temporary directory, removed when
/// dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "duet-pack-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir.canonicalize().expect("canonical scratch path"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` inside the scratch directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake arm64 kernel: `len` bytes of a recognisable pattern, seeded so
/// two kernels differ, with the `Image` magic in place.
pub fn fake_kernel(len: usize, seed: u8) -> Vec<u8> {
    let mut image: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
    image[0x38..0x3c].copy_from_slice(b"ARM\x64");
    image
}

/// Two VMs: "personal" with an initrd, a command line and a restart limit
/// of 3 (restarting, the default policy), "corporate" with none of these
/// but staying off when reset (with the default limit, 5).
pub const TWO_VMS: &str = r#"
[[vm]]
name = "personal"
role = "personal"
kernel = "Image"
initrd = "initramfs.cpio"
cmdline = "console=ttyAMA0 quiet"
memory_mib = 256
vcpus = 2
restart_limit = 3

[[vm]]
name = "corporate"
role = "corporate"
kernel = "mail/Image"
memory_mib = 128
vcpus = 1
on_reset = "stay-off"
"#;

/// A scratch directory holding [`TWO_VMS`] as `personas.toml` and its
/// images: kernels of 5000 and 70000 bytes and an initrd of 9000.
pub fn two_vm_setup() -> (Scratch, PathBuf) {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path().join("mail")).expect("mkdir mail");
    dir.write("Image", &fake_kernel(5000, 1));
    dir.write("mail/Image", &fake_kernel(70_000, 2));
    dir.write("initramfs.cpio", &vec![0xc5; 9000]);
    let manifest = dir.write("personas.toml", TWO_VMS.as_bytes());
    (dir, manifest)
}
