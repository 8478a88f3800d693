//! A VM's disk is a partition of the physical disk Duet drives: Debian's
//! Linux mounts the ext4 file system `cargo xtask` put there, writes a file
//! and syncs (a flush, down to the image file), powers off; a second boot
//! of Duet on the same image reads the same bytes back.

use duet_tests::{manifest, Machine};
use std::path::PathBuf;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
const PROMPT: &str = "/ # ";

/// One Linux VM with a 32 MiB disk.
fn disk_manifest() -> PathBuf {
    disk_manifest_named("storage")
}

/// The same, written as `name.toml` (its disk image is `name.img`).
fn disk_manifest_named(name: &str) -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let text = format!(
        "[[vm]]\nname = \"personal\"\nrole = \"personal\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 256\nvcpus = 1\ndisk_mib = 32\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
    );
    manifest(name, &text)
}

fn boot(args: &[&str]) -> Machine {
    let mut run = Machine::xtask(args);
    run.expect("  virtio  blk at ", LINUX_BOOT);
    run.expect("duet: vm personal: disk is partition \"personal\", 32 MiB", LINUX_BOOT);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run
}

/// The sha256 of `/mnt/data` as the guest computes it.
fn checksum(run: &mut Machine) -> String {
    let output = run.shell("sha256sum /mnt/data", PROMPT, COMMAND);
    let line = output.lines().find(|l| l.contains("/mnt/data")).unwrap_or("");
    let sum = line.trim_start_matches("[personal] ").split_whitespace().next().unwrap_or("");
    if sum.len() != 64 {
        run.fail(&format!("no checksum in {output:?}"));
    }
    sum.to_string()
}

fn mount(run: &mut Machine) {
    let output = run.shell(
        "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mounted-ok",
        PROMPT,
        COMMAND,
    );
    if !output.contains("mounted-ok") {
        run.fail(&format!("cannot mount /dev/vda: {output:?}"));
    }
}

fn power_off(run: &mut Machine) {
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND);
    run.require(&["duet: powering off: every VM has powered off"]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

#[test]
fn a_synced_file_survives_a_power_off_and_a_second_boot() {
    let path = disk_manifest();
    let path = path.to_str().unwrap();

    let mut first = boot(&["run", "--manifest", path, "--new-disk"]);
    mount(&mut first);
    first.shell("dd if=/dev/urandom of=/mnt/data bs=1024 count=256 2>/dev/null", PROMPT, COMMAND);
    let written = checksum(&mut first);
    // sync makes ext4 write and flush: VIRTIO_BLK_T_FLUSH through Duet to the image.
    first.shell("sync", PROMPT, COMMAND);
    power_off(&mut first);

    let mut second = boot(&["run", "--manifest", path]);
    second.require(&["(kept; --new-disk makes a new one)"]);
    mount(&mut second);
    let read = checksum(&mut second);
    if read != written {
        second.fail(&format!("wrote {written}, read back {read}"));
    }
    power_off(&mut second);
}

#[test]
fn a_damaged_partition_table_leaves_the_vm_without_a_disk_and_running() {
    let path = disk_manifest_named("storage-damaged");
    let checked = duet_pack::Manifest::load(&path).expect("the manifest loads");
    let image = xtask::disk::ensure(&checked, true).expect("make the image").expect("a disk");
    // One byte of the GPT header (its disk GUID, sector 1) changes: the CRC fails.
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[512 + 60] ^= 0xff;
    std::fs::write(&image, bytes).unwrap();

    let mut run = Machine::xtask(&["run", "--manifest", path.to_str().unwrap()]);
    run.expect("duet: disk: the GPT header's CRC32 does not match; no VM gets a disk", LINUX_BOOT);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    let output = run.shell("ls /sys/block", PROMPT, COMMAND);
    if output.contains("vda") {
        run.fail(&format!("the guest has a disk after all: {output:?}"));
    }
    power_off(&mut run);
}
