//! The kernel modules the personal test guest loads at boot: Debian's
//! kernel builds virtio-mmio, virtio-blk, virtio-net, virtio-rng and ext4
//! as modules, shipped xz-compressed and without a `modules.dep` (Debian's
//! postinst runs depmod, which this machine need not have).
//!
//! So this module finds each wanted module in the unpacked package,
//! decompresses it (lzma-rs: busybox `insmod` cannot load `.ko.xz`), reads
//! its `depends=` from the ELF `.modinfo` section and puts dependencies
//! first, giving the order in which `/init` loads them.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What the guest loads, besides their dependencies: the virtio-mmio
/// transport and the drivers for Duet's devices (the display through DRM,
/// whose fbdev emulation gives `/dev/fb0`; keyboard and touchscreen, with
/// evdev for `/dev/input/event*`), ext4 for the disk tests, and crc32c
/// (ext4 and jbd2 ask the crypto API for it by name, which `depends=` does
/// not show).
pub const WANTED: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_rng",
    "virtio_gpu",
    "virtio_input",
    "evdev",
    "crc32c_generic",
    "ext4",
];

/// A module ready for the initramfs.
#[derive(Debug)]
pub struct Module {
    /// Its name with `-` as `_`, as the kernel names modules.
    pub name: String,
    /// The uncompressed ELF object.
    pub object: Vec<u8>,
}

/// Kernel module names treat `-` and `_` alike.
fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// Every `*.ko.xz` (or `*.ko`) under `modules_dir`, by module name.
fn index(modules_dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut found = HashMap::new();
    let mut pending = vec![modules_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = file.strip_suffix(".ko.xz").or_else(|| file.strip_suffix(".ko")) {
                found.insert(normalise(stem), path);
            }
        }
    }
    Ok(found)
}

/// The file's contents, decompressed if it is `.xz`.
fn load(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "xz") {
        let mut object = Vec::new();
        lzma_rs::xz_decompress(&mut bytes.as_slice(), &mut object)
            .with_context(|| format!("cannot decompress {}", path.display()))?;
        return Ok(object);
    }
    Ok(bytes)
}

/// The modules named in the object's `depends=` modinfo entry.
pub fn depends(object: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(object).context("not an ELF object")?;
    let Some(section) = file.section_by_name(".modinfo") else {
        bail!("the object has no .modinfo section");
    };
    let data = section.data().context("cannot read .modinfo")?;
    let depends = data
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .unwrap_or_default();
    let text = std::str::from_utf8(depends).context("depends= is not UTF-8")?;
    Ok(text.split(',').filter(|s| !s.is_empty()).map(normalise).collect())
}

/// `wanted` and everything they depend on, from `modules_dir`, each after
/// its dependencies.
pub fn resolve(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<Module>> {
    let index = index(modules_dir)?;
    let mut ordered = Vec::new();
    let mut visiting = Vec::new();
    for name in wanted {
        visit(&index, &normalise(name), &mut visiting, &mut ordered)?;
    }
    Ok(ordered)
}

fn visit(
    index: &HashMap<String, PathBuf>,
    name: &str,
    visiting: &mut Vec<String>,
    ordered: &mut Vec<Module>,
) -> Result<()> {
    if ordered.iter().any(|m| m.name == name) {
        return Ok(());
    }
    if visiting.iter().any(|v| v == name) {
        bail!("modules depend on each other in a circle through {name}");
    }
    let path = index.get(name).with_context(|| format!("the kernel has no module {name}"))?;
    let object = load(path)?;
    visiting.push(name.to_owned());
    for dependency in depends(&object).with_context(|| format!("in {}", path.display()))? {
        visit(index, &dependency, visiting, ordered)?;
    }
    visiting.pop();
    ordered.push(Module { name: name.to_owned(), object });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian kernel's modules, when `cargo xtask guest` has fetched
    /// them (the test fails otherwise: fetch first).
    fn kernel_modules() -> PathBuf {
        crate::guest::kernel().expect("the guest kernel (cargo xtask guest)").modules()
    }

    #[test]
    fn resolves_the_wanted_modules_dependencies_first() {
        let modules = resolve(&kernel_modules(), WANTED).unwrap();
        let position = |name: &str| {
            modules.iter().position(|m| m.name == name).unwrap_or_else(|| panic!("{name} missing"))
        };
        for name in WANTED {
            assert!(modules[position(name)].object.starts_with(b"\x7fELF"), "{name}");
        }
        assert!(position("jbd2") < position("ext4"));
        assert!(position("mbcache") < position("ext4"));
        assert!(position("net_failover") < position("virtio_net"));
        assert!(position("failover") < position("net_failover"));
        assert!(position("drm") < position("drm_kms_helper"));
        assert!(position("drm_kms_helper") < position("virtio_gpu"));
    }

    #[test]
    fn an_unknown_module_is_an_error() {
        let error = resolve(&kernel_modules(), &["no_such_module"]).unwrap_err();
        assert_eq!(error.to_string(), "the kernel has no module no_such_module");
    }
}
