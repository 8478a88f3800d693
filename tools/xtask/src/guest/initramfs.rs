//! Writing initramfs archives: the uncompressed `newc` cpio archive that
//! Linux unpacks into its first root file system before it runs `/init`,
//! and the personal test guest's layout (busybox, the init script, the
//! directories the script mounts on, a console device node).
//!
//! The `cpio` crate writes the headers: it is small, has no dependencies
//! and supports everything an initramfs needs (device numbers included),
//! and the format is old enough that a writer does not go stale. Entries are
//! kept reproducible (owner root, time 0, inodes numbered in order), so the
//! same inputs always give the same bytes.

use super::modules::Module;
use anyhow::{ensure, Context, Result};
use cpio::NewcBuilder;
use std::io::Write;

const DIRECTORY: u32 = 0o040000;
const REGULAR: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;
const CHAR_DEVICE: u32 = 0o020000;

/// An archive being built in memory. Parents must be added before what
/// they contain, as the kernel unpacks entries in order.
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    pub fn new() -> Archive {
        // Inode 0 reads as "no inode" to some tools; start at 1.
        Archive { bytes: Vec::new(), next_inode: 1 }
    }

    /// A directory, `rwxr-xr-x`.
    pub fn dir(&mut self, path: &str) -> Result<()> {
        self.entry(path, DIRECTORY | 0o755, 2, (0, 0), &[])
    }

    /// A regular file with permission bits `mode` (e.g. 0o755).
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.entry(path, REGULAR | mode, 1, (0, 0), data)
    }

    /// A symbolic link; newc stores the target as the entry's contents.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.entry(path, SYMLINK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node, readable and writable by root only.
    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) -> Result<()> {
        self.entry(path, CHAR_DEVICE | 0o600, 1, (major, minor), &[])
    }

    /// The archive, closed with newc's trailer entry.
    pub fn finish(self) -> Result<Vec<u8>> {
        cpio::newc::trailer(self.bytes).context("cannot write the cpio trailer")
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        links: u32,
        (major, minor): (u32, u32),
        data: &[u8],
    ) -> Result<()> {
        ensure!(
            !path.is_empty() && !path.starts_with('/'),
            "archive path {path:?} must be relative to the root"
        );
        let size = u32::try_from(data.len())
            .with_context(|| format!("{path} is too large for a cpio archive"))?;
        let mut writer = NewcBuilder::new(path)
            .ino(self.next_inode)
            .mode(mode)
            .nlink(links)
            .rdev_major(major)
            .rdev_minor(minor)
            .write(std::mem::take(&mut self.bytes), size);
        // The writer pads the entry only once all `size` bytes are in; a
        // whole-slice write guarantees that.
        writer.write_all(data).with_context(|| format!("cannot add {path} to the cpio archive"))?;
        self.bytes = writer.finish()?;
        self.next_inode += 1;
        Ok(())
    }
}

/// Directories the personal guest's init uses: mount points, the places
/// `busybox --install -s` puts applet links, and a home for root.
const DIRECTORIES: &[&str] = &[
    "bin",
    "dev",
    "etc",
    "lib",
    "lib/modules",
    "mnt",
    "proc",
    "root",
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/sbin",
];

/// The personal test guest: `busybox` (static, arm64) as `/bin/busybox`
/// with `/bin/sh` linked to it (the interpreter of `/init`), `init` as
/// `/init`, and `/dev/console` (5,1) so the kernel can give init a console
/// before devtmpfs is mounted over `/dev`. `modules` go to
/// `/lib/modules/<name>.ko`, and their names, in the order given (each
/// after its dependencies), to `/lib/modules/order`, which `/init` loads.
pub fn personal(busybox: &[u8], init: &[u8], modules: &[Module]) -> Result<Vec<u8>> {
    let mut archive = Archive::new();
    for dir in DIRECTORIES {
        archive.dir(dir)?;
    }
    let mut order = String::new();
    for module in modules {
        archive.file(&format!("lib/modules/{}.ko", module.name), 0o644, &module.object)?;
        order.push_str(&module.name);
        order.push('\n');
    }
    archive.file("lib/modules/order", 0o644, order.as_bytes())?;
    archive.file("bin/busybox", 0o755, busybox)?;
    archive.symlink("bin/sh", "busybox")?;
    archive.char_device("dev/console", 5, 1)?;
    archive.file("init", 0o755, init)?;
    archive.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry as read back from the raw bytes, independently of the
    /// `cpio` crate.
    #[derive(Debug)]
    struct Parsed {
        name: String,
        inode: u32,
        mode: u32,
        links: u32,
        mtime: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// newc: "070701", thirteen 8-digit hex fields, the name with its NUL,
    /// padding to 4 bytes, the data, padding to 4 bytes.
    fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let pad = |n: usize| (4 - n % 4) % 4;
        let mut entries = Vec::new();
        loop {
            assert_eq!(&bytes[..6], b"070701", "newc magic");
            let field = |i: usize| {
                let text = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(text, 16).unwrap()
            };
            let (size, name_size) = (field(6) as usize, field(11) as usize);
            let name = &bytes[110..110 + name_size];
            assert_eq!(name.last(), Some(&0), "names end in NUL");
            let data_start = 110 + name_size + pad(110 + name_size);
            let entry = Parsed {
                name: String::from_utf8(name[..name_size - 1].to_vec()).unwrap(),
                inode: field(0),
                mode: field(1),
                links: field(4),
                mtime: field(5),
                rdev: (field(9), field(10)),
                data: bytes[data_start..data_start + size].to_vec(),
            };
            bytes = &bytes[data_start + size + pad(size)..];
            if entry.name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return entries;
            }
            entries.push(entry);
        }
    }

    #[test]
    fn entries_read_back_as_written() {
        let mut archive = Archive::new();
        archive.dir("dev").unwrap();
        archive.char_device("dev/console", 5, 1).unwrap();
        archive.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        archive.symlink("sh", "busybox").unwrap();
        let bytes = archive.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "sh"]);
        let [dir, console, init, link] = &entries[..] else { unreachable!() };
        assert_eq!((dir.mode, dir.links), (0o040755, 2));
        assert_eq!((console.mode, console.rdev), (0o020600, (5, 1)));
        assert_eq!((init.mode, init.data.as_slice()), (0o100755, &b"#!/bin/sh\n"[..]));
        assert_eq!((link.mode, link.data.as_slice()), (0o120777, &b"busybox"[..]));
        let inodes: Vec<_> = entries.iter().map(|e| e.inode).collect();
        assert_eq!(inodes, [1, 2, 3, 4]);
        assert!(entries.iter().all(|e| e.mtime == 0));
    }

    #[test]
    fn odd_sizes_stay_aligned() {
        for size in 0..9 {
            let mut archive = Archive::new();
            let data = vec![0xa5; size];
            archive.file("abc", 0o644, &data).unwrap();
            archive.file("abcd", 0o644, &data).unwrap();
            let entries = parse(&archive.finish().unwrap());
            assert!(entries.iter().all(|e| e.data == data));
        }
    }

    #[test]
    fn refuses_absolute_paths() {
        assert!(Archive::new().dir("/bin").is_err());
    }

    #[test]
    fn personal_guest_layout() {
        let modules = [
            Module { name: "crc16".into(), object: b"a".to_vec() },
            Module { name: "ext4".into(), object: b"b".to_vec() },
        ];
        let bytes = personal(b"\x7fELF...", b"#!/bin/sh\necho hi\n", &modules).unwrap();
        let entries = parse(&bytes);
        let find = |name: &str| {
            entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} missing"))
        };
        for dir in ["proc", "sys", "dev", "tmp", "bin", "sbin", "usr/bin", "usr/sbin", "etc"] {
            assert_eq!(find(dir).mode, 0o040755, "{dir}");
        }
        assert_eq!(find("bin/busybox").data, b"\x7fELF...");
        assert_eq!(find("bin/sh").data, b"busybox");
        assert_eq!(find("dev/console").rdev, (5, 1));
        assert_eq!(find("init").mode, 0o100755);
        assert_eq!(find("lib/modules/ext4.ko").data, b"b");
        assert_eq!(find("lib/modules/order").data, b"crc16\next4\n");
        // Parents come first: every entry's directory is listed before it.
        for (i, entry) in entries.iter().enumerate() {
            if let Some((parent, _)) = entry.name.rsplit_once('/') {
                assert!(entries[..i].iter().any(|e| e.name == parent), "{}", entry.name);
            }
        }
        assert_eq!(bytes, personal(b"\x7fELF...", b"#!/bin/sh\necho hi\n", &modules).unwrap());
    }
}
