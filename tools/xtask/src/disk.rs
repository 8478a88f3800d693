//! The physical disk image QEMU gives Duet: one GPT partition per VM with
//! `disk_mib` in the persona manifest, named like the VM and formatted
//! ext4 (the host's `mkfs.ext4`, at the partition's offset). An image that
//! exists is kept, so what guests wrote survives between runs; only
//! `--new-disk` replaces it.

use crate::deps;
use anyhow::{bail, ensure, Context, Result};
use duet::disk::gpt::{self, Partition};
use duet::vdev::virtio::backend::{BackendError, BlockStore, SECTOR_SIZE};
use duet_pack::Manifest;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB_SECTORS: u64 = (1 << 20) / SECTOR_SIZE as u64;

/// Where the disk image of `manifest` lives: `target/disk/<stem>.img`.
pub fn image_path(manifest: &Manifest) -> PathBuf {
    let stem = manifest.origin.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    crate::target_dir().join("disk").join(format!("{stem}.img"))
}

/// The partitions `manifest` asks for, in manifest order, and the disk's
/// size in sectors; None when no VM has a disk.
pub fn plan(manifest: &Manifest) -> Option<(u64, Vec<Partition>)> {
    let wanted: Vec<(&str, u64)> = manifest
        .vms
        .iter()
        .filter_map(|vm| Some((vm.name.as_str(), u64::from(vm.disk_mib?) * MIB_SECTORS)))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let sectors = wanted.iter().map(|(_, s)| s.next_multiple_of(gpt::ALIGN_SECTORS)).sum::<u64>()
        + gpt::OVERHEAD_SECTORS;
    let partitions = gpt::layout(sectors, &wanted)?;
    Some((sectors, partitions))
}

/// The disk image for `manifest`, made if it does not exist or `fresh`
/// asks for a new one; None when no VM has a disk.
pub fn ensure(manifest: &Manifest, fresh: bool) -> Result<Option<PathBuf>> {
    let Some((sectors, partitions)) = plan(manifest) else { return Ok(None) };
    let path = image_path(manifest);
    if path.exists() && !fresh {
        check_existing(&path, &partitions);
        eprintln!("xtask: disk {} (kept; --new-disk makes a new one)", path.display());
        return Ok(Some(path));
    }
    create(&path, sectors, &partitions)?;
    eprintln!("xtask: disk {}: new, {} partitions, ext4", path.display(), partitions.len());
    Ok(Some(path))
}

/// Warns when a kept image lacks a partition the manifest now wants; Duet
/// will say the same at boot and leave that VM without a disk.
fn check_existing(path: &Path, wanted: &[Partition]) {
    let found = FileDisk::open(path)
        .map_err(|e| e.to_string())
        .and_then(|mut disk| gpt::read(&mut disk).map_err(|e| e.to_string()));
    match found {
        Ok(found) => {
            for partition in wanted {
                let fits = found
                    .iter()
                    .any(|p| p.name == partition.name && p.sectors >= partition.sectors);
                if !fits {
                    eprintln!(
                        "xtask: warning: {} has no partition {:?} of {} MiB (--new-disk makes one)",
                        path.display(),
                        partition.name,
                        partition.sectors / MIB_SECTORS
                    );
                }
            }
        }
        Err(e) => eprintln!("xtask: warning: {}: {e} (--new-disk makes a new one)", path.display()),
    }
}

/// Writes a new image: sparse file, GPT, ext4 in each partition; built
/// beside the target and renamed, so a failure leaves no half image.
fn create(path: &Path, sectors: u64, partitions: &[Partition]) -> Result<()> {
    let mkfs = mkfs_ext4()?;
    let dir = path.parent().context("disk image path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let partial = path.with_extension("img.partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    file.set_len(sectors * SECTOR_SIZE as u64)?;
    let mut disk = FileDisk { file };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    for (lba, bytes) in gpt::write(sectors, partitions, seed) {
        disk.write(lba, &bytes).map_err(|e| anyhow::anyhow!("writing the partition table: {e}"))?;
    }
    disk.file.sync_all()?;
    drop(disk);
    for partition in partitions {
        let offset = partition.first * SECTOR_SIZE as u64;
        let kib = partition.sectors * SECTOR_SIZE as u64 / 1024;
        let status = Command::new(&mkfs)
            .args(["-q", "-F", "-L", &partition.name])
            .arg("-E")
            .arg(format!("offset={offset}"))
            .arg(&partial)
            .arg(format!("{kib}k"))
            .status()
            .with_context(|| format!("cannot run {}", mkfs.display()))?;
        ensure!(status.success(), "mkfs.ext4 for partition {:?} failed ({status})", partition.name);
    }
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok(())
}

/// The host's `mkfs.ext4`, installed from Debian's e2fsprogs when missing
/// and possible.
fn mkfs_ext4() -> Result<PathBuf> {
    let find = || {
        ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    if deps::can_install_debian_packages() {
        deps::apt(&["install", "-y", "e2fsprogs"])?;
        if let Some(path) = find() {
            return Ok(path);
        }
    }
    bail!("mkfs.ext4 is missing; install it with: sudo apt-get install e2fsprogs")
}

/// A disk image file as a [`BlockStore`], so Duet's own GPT code reads and
/// writes it.
pub struct FileDisk {
    file: File,
}

impl FileDisk {
    pub fn open(path: &Path) -> std::io::Result<FileDisk> {
        Ok(FileDisk { file: OpenOptions::new().read(true).write(true).open(path)? })
    }
}

impl BlockStore for FileDisk {
    fn sectors(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len() / SECTOR_SIZE as u64)
    }

    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        self.file
            .seek(SeekFrom::Start(sector * SECTOR_SIZE as u64))
            .map_err(|_| BackendError::Device)?;
        self.file.read_exact(buffer).map_err(|_| BackendError::Device)
    }

    fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BackendError> {
        self.file
            .seek(SeekFrom::Start(sector * SECTOR_SIZE as u64))
            .map_err(|_| BackendError::Device)?;
        self.file.write_all(buffer).map_err(|_| BackendError::Device)
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.file.sync_data().map_err(|_| BackendError::Device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, disks: &[Option<u32>]) -> Manifest {
        std::fs::create_dir_all(dir).unwrap();
        let mut kernel = vec![0u8; 4096];
        kernel[0x38..0x3c].copy_from_slice(b"ARM\x64");
        std::fs::write(dir.join("Image"), kernel).unwrap();
        let mut text = String::new();
        for (i, disk) in disks.iter().enumerate() {
            text += &format!(
                "[[vm]]\nname = \"vm{i}\"\nrole = \"personal\"\nkernel = \"Image\"\nmemory_mib = 64\nvcpus = 1\n"
            );
            if let Some(mib) = disk {
                text += &format!("disk_mib = {mib}\n");
            }
        }
        let path = dir.join("disk-test.toml");
        std::fs::write(&path, text).unwrap();
        Manifest::load(&path).unwrap()
    }

    #[test]
    fn plans_a_partition_per_vm_with_a_disk() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-plan-{}", std::process::id()));
        assert!(plan(&manifest(&dir, &[None, None])).is_none());
        let (sectors, partitions) = plan(&manifest(&dir, &[Some(8), None, Some(3)])).unwrap();
        assert_eq!(sectors, (8 + 3 + 2) * MIB_SECTORS);
        let names: Vec<_> = partitions.iter().map(|p| (p.name.as_str(), p.sectors)).collect();
        assert_eq!(names, [("vm0", 8 * MIB_SECTORS), ("vm2", 3 * MIB_SECTORS)]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn makes_an_image_duet_reads_with_ext4_in_each_partition() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-make-{}", std::process::id()));
        let (sectors, partitions) = plan(&manifest(&dir, &[Some(4), Some(6)])).unwrap();
        let path = dir.join("made.img");
        create(&path, sectors, &partitions).unwrap();
        let mut disk = FileDisk::open(&path).unwrap();
        assert_eq!(gpt::read(&mut disk).unwrap(), partitions);
        // ext4's superblock magic 0xef53 at byte 1024 + 0x38 of each partition.
        for partition in &partitions {
            let mut sector = [0u8; SECTOR_SIZE];
            disk.read(partition.first + 2, &mut sector).unwrap();
            assert_eq!(&sector[0x38..0x3a], &[0x53, 0xef], "{}", partition.name);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
