//! `cargo xtask image --board rpi4 --out FILE`: a flashable SD-card image
//! for the Raspberry Pi 4. An MBR with one FAT32 partition (type 0x0c,
//! from 1 MiB) holding what the Pi's boot firmware needs to start Duet:
//!
//! - `start4.elf`, `fixup4.dat`: the firmware, from Debian's `raspi-firmware`;
//! - `bcm2711-rpi-4-b.dtb`: the board's device tree, from Debian's kernel;
//! - `kernel8.img`: Duet's flat image, the same file `cargo xtask run` boots,
//!   padded with zeros to the memory it takes (its header's `image_size`:
//!   `.bss` and stacks follow the file), so that the package the firmware
//!   loads right after it lies clear of that memory whether or not the
//!   firmware reads the header;
//! - `duet-personas.pkg`: the persona package, which `config.txt` has the
//!   firmware load as the initramfs right after the kernel, so that it
//!   reaches Duet as the device tree's initrd, exactly as QEMU's `-initrd`;
//! - `config.txt`: 64-bit kernel, the UART on, those file names.
//!
//! Reading an image back ([`read`]) is here too, for the tests.

use anyhow::{bail, ensure, Context, Result};
use duet_boards::{rpi4, Board};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SECTOR: u64 = 512;
/// The partition starts 1 MiB in, as SD cards' erase blocks like.
const PARTITION_START: u64 = 1 << 20;
/// FAT32 needs at least 65525 clusters: 64 MiB of 512-byte clusters has
/// twice that.
const MIN_PARTITION: u64 = 64 << 20;
const CLUSTER: u32 = 512;
/// MBR partition type: FAT32 with LBA addressing.
pub const FAT32_LBA: u8 = 0x0c;
const LABEL: [u8; 11] = *b"DUET-BOOT  ";
pub const CONFIG_FILE: &str = "config.txt";

/// The inputs of an SD-card image.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// Duet's flat image (`kernel8.img`).
    pub kernel: PathBuf,
    /// The persona package.
    pub package: PathBuf,
    /// The board's device tree.
    pub dtb: PathBuf,
    /// The directory with the firmware files.
    pub firmware: PathBuf,
}

/// `config.txt` for the Pi 4.
pub fn config_txt() -> String {
    format!(
        "# Duet, a hypervisor for phones, on the Raspberry Pi 4.\n\
         # Written by `cargo xtask image --board rpi4`; see docs/boards/rpi4.md.\n\
         [pi4]\n\
         # Start the 64-bit image below at EL2, device tree in x0.\n\
         arm_64bit=1\n\
         kernel={kernel}\n\
         device_tree={dtb}\n\
         # Duet's persona package, loaded after the kernel and passed as the initrd.\n\
         initramfs {package} followkernel\n\
         # The serial console on GPIO 14 (TX) and 15 (RX), 115200 baud.\n\
         enable_uart=1\n\
         uart_2ndstage=1\n\
         [all]\n",
        kernel = rpi4::KERNEL_FILE,
        dtb = rpi4::DTB_FILE,
        package = rpi4::PACKAGE_FILE,
    )
}

/// Builds Duet and the persona package of `manifest` (the default
/// personas if None), fetches the firmware, and writes the SD-card image
/// for `board` to `out`: all of `cargo xtask image`.
pub fn make(board: &Board, manifest: Option<PathBuf>, out: &Path) -> Result<()> {
    if board.name != rpi4::BOARD.name {
        bail!("no SD-card image for board {:?}; only {:?} has one", board.name, rpi4::BOARD.name);
    }
    let kernel = crate::image::build(crate::image::Variant::Release)?.binary;
    let manifest = match manifest {
        Some(manifest) => manifest,
        None => crate::guest::default_manifest()?,
    };
    let package = crate::personas::package(&manifest, board)?;
    let dtb = crate::qemu::board_dtb(board)?.context("the board names no device tree")?;
    let firmware = crate::guest::raspi_firmware()?;
    write(board, &Inputs { kernel, package, dtb, firmware }, out)
}

/// Writes the SD-card image for `board` from `inputs` to `out`.
pub fn write(board: &Board, inputs: &Inputs, out: &Path) -> Result<()> {
    if board.name != rpi4::BOARD.name {
        bail!("no SD-card image for board {:?}; only {:?} has one", board.name, rpi4::BOARD.name);
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in rpi4::FIRMWARE_FILES {
        files.push((name.to_string(), read_file(&inputs.firmware.join(name))?));
    }
    files.push((rpi4::DTB_FILE.into(), read_file(&inputs.dtb)?));
    let kernel = padded_to_image_size(read_file(&inputs.kernel)?)?;
    files.push((rpi4::KERNEL_FILE.into(), kernel));
    files.push((rpi4::PACKAGE_FILE.into(), read_file(&inputs.package)?));
    files.push((CONFIG_FILE.into(), config_txt().into_bytes()));
    let image = build(&files)?;
    crate::write_whole(out, &image)
}

/// Where an arm64 `Image` header keeps the image's size in memory (a
/// little-endian u64), and the header's magic.
const IMAGE_SIZE_OFFSET: usize = 16;
const IMAGE_MAGIC_OFFSET: usize = 56;
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// `image` with zeros appended up to the size its arm64 header says it
/// takes in memory.
pub fn padded_to_image_size(mut image: Vec<u8>) -> Result<Vec<u8>> {
    let magic = image.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4);
    ensure!(magic == Some(IMAGE_MAGIC), "the kernel is not an arm64 Image (no magic)");
    let size = &image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8];
    let size = u64::from_le_bytes(size.try_into().expect("8 bytes")) as usize;
    ensure!(size <= 64 << 20, "the kernel says it takes {size} bytes, more than 64 MiB");
    if size > image.len() {
        image.resize(size, 0);
    }
    Ok(image)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The whole disk: MBR, then the FAT32 partition holding `files`.
pub fn build(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let content: u64 = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();
    // Room for the FATs (4 bytes per 512-byte cluster, twice) and slack.
    let partition = round_up((content + content / 32 + (16 << 20)).max(MIN_PARTITION), 1 << 20);
    let fat = fat_partition(partition, files)?;
    let mut disk = Cursor::new(vec![0u8; (PARTITION_START + partition) as usize]);
    let mut mbr = mbrman::MBR::new_from(&mut disk, SECTOR as u32, *b"Duet")
        .context("cannot make the partition table")?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: FAT32_LBA,
        last_chs: mbrman::CHS::empty(),
        starting_lba: (PARTITION_START / SECTOR) as u32,
        sectors: (partition / SECTOR) as u32,
    };
    mbr.write_into(&mut disk).context("cannot write the partition table")?;
    disk.seek(SeekFrom::Start(PARTITION_START))?;
    disk.write_all(&fat)?;
    Ok(disk.into_inner())
}

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// A FAT32 file system of `size` bytes with `files` in its root directory.
fn fat_partition(size: u64, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut volume = Cursor::new(vec![0u8; size as usize]);
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_cluster(CLUSTER)
        .volume_label(LABEL);
    fatfs::format_volume(&mut volume, options).context("cannot format the FAT32 partition")?;
    volume.seek(SeekFrom::Start(0))?;
    {
        let fs = fatfs::FileSystem::new(&mut volume, fatfs::FsOptions::new())
            .context("cannot open the new FAT32 partition")?;
        let root = fs.root_dir();
        for (name, bytes) in files {
            let mut file =
                root.create_file(name).with_context(|| format!("cannot create {name}"))?;
            file.truncate()?;
            file.write_all(bytes).with_context(|| format!("cannot write {name}"))?;
        }
    }
    Ok(volume.into_inner())
}

/// What an SD-card image holds, read back.
#[derive(Clone, Debug)]
pub struct Contents {
    /// The used partition entries: (type, first sector, sectors, bootable).
    pub partitions: Vec<(u8, u32, u32, bool)>,
    /// The FAT type of the first partition.
    pub fat_type: String,
    pub volume_label: String,
    /// The root directory's files and their bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Reads the partition table of `image` and the files of its first partition.
pub fn read(image: &[u8]) -> Result<Contents> {
    let mut disk = Cursor::new(image);
    let mbr = mbrman::MBR::read_from(&mut disk, SECTOR as u32).context("no partition table")?;
    let partitions: Vec<_> = mbr
        .iter()
        .filter(|(_, entry)| entry.is_used())
        .map(|(_, e)| (e.sys, e.starting_lba, e.sectors, e.boot == mbrman::BOOT_ACTIVE))
        .collect();
    let &(_, start, sectors, _) = partitions.first().context("no partition")?;
    let start = start as usize * SECTOR as usize;
    let end = start + sectors as usize * SECTOR as usize;
    ensure!(end <= image.len(), "the partition runs past the end of the image");
    let mut volume = Cursor::new(image[start..end].to_vec());
    let fs = fatfs::FileSystem::new(&mut volume, fatfs::FsOptions::new())
        .context("the partition is not a FAT file system")?;
    let fat_type = format!("{:?}", fs.fat_type());
    let volume_label = fs.volume_label().trim_end().to_string();
    let mut files = Vec::new();
    for entry in fs.root_dir().iter() {
        let entry = entry?;
        if entry.is_file() {
            let mut bytes = Vec::new();
            entry.to_file().read_to_end(&mut bytes)?;
            files.push((entry.file_name(), bytes));
        }
    }
    Ok(Contents { partitions, fat_type, volume_label, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_reads_back_with_its_partition_and_files() {
        let files = vec![
            ("config.txt".to_string(), config_txt().into_bytes()),
            ("kernel8.img".to_string(), (0..100_000u32).map(|i| i as u8).collect()),
        ];
        let image = build(&files).unwrap();
        assert_eq!(image.len() as u64, PARTITION_START + MIN_PARTITION);
        assert_eq!(&image[510..512], &[0x55, 0xaa], "MBR signature");
        let contents = read(&image).unwrap();
        assert_eq!(contents.partitions, [(FAT32_LBA, 2048, (MIN_PARTITION / 512) as u32, true)]);
        assert_eq!(contents.fat_type, "Fat32");
        assert_eq!(contents.volume_label, "DUET-BOOT");
        assert_eq!(contents.files, files);
    }

    #[test]
    fn the_kernel_is_padded_to_the_memory_it_takes() {
        let mut image = vec![0xaa; 100];
        image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&4096u64.to_le_bytes());
        image[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(IMAGE_MAGIC);
        let padded = padded_to_image_size(image.clone()).unwrap();
        assert_eq!(padded.len(), 4096);
        assert_eq!(&padded[..100], &image[..]);
        assert!(padded[100..].iter().all(|&b| b == 0));
        // Already as big as it says: unchanged.
        assert_eq!(padded_to_image_size(padded.clone()).unwrap(), padded);
        assert!(padded_to_image_size(vec![0; 64]).is_err(), "no magic");
    }

    #[test]
    fn config_names_the_files_on_the_card() {
        let config = config_txt();
        for line in [
            "arm_64bit=1",
            "enable_uart=1",
            "kernel=kernel8.img",
            "device_tree=bcm2711-rpi-4-b.dtb",
            "initramfs duet-personas.pkg followkernel",
        ] {
            assert!(config.lines().any(|l| l == line), "{line:?} missing from\n{config}");
        }
    }

    #[test]
    fn only_the_pi_4_has_an_image() {
        let inputs = Inputs {
            kernel: "k".into(),
            package: "p".into(),
            dtb: "d".into(),
            firmware: "f".into(),
        };
        let error = write(duet_boards::default_board(), &inputs, Path::new("/nonexistent"));
        assert!(error.unwrap_err().to_string().contains("no SD-card image for board \"virt\""));
    }
}
