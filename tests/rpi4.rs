//! Duet on the Raspberry Pi 4, as QEMU's `raspi4b` models it: entered at
//! EL2 at 0x80000 with Debian's bcm2711-rpi-4-b.dtb, secondary CPUs started
//! from their spin tables, the GIC-400 virtualized for guests; the Debian
//! kernel boots as a guest with 2 vCPUs on the virtual GICv2, answers on its
//! console and powers off, and Duet then powers the board off through the
//! BCM2835 watchdog (QEMU exits).

use duet_tests::{Machine, BOOT_TIMEOUT};
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

/// What Duet says about the board before any VM starts.
const PI_BANNER: &[&str] = &[
    "Duet 0.1.0 -- a hypervisor for phones, at EL2",
    "  board   Raspberry Pi 4 Model B",
    "  cpus    4 in the device tree, boot cpu MPIDR 0x0",
    "  image   ",
    "KiB at 0x80000",
    "  gic     GICv2, distributor 0xff841000, cpu interface 0xff842000, virtualization yes",
    "  uart    PL011 at 0xfe201000",
    "  psci    none",
    "all 4 cpus online at EL2",
];

#[test]
fn debian_linux_boots_on_the_raspberry_pi_4_with_two_vcpus() {
    let mut run = Machine::xtask(&["run", "--board", "rpi4"]);
    run.expect("all 4 cpus online at EL2", BOOT_TIMEOUT);
    run.require(PI_BANNER);
    for cpu in 1..4 {
        run.require(&[&format!("cpu{cpu} INFO  cpu{cpu} online at EL2 (MPIDR {cpu:#x})")]);
    }
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.require(&[
        "duet: vm personal (Personal): 2 vcpus, 256 MiB",
        "[personal] duet-guest: cpus online: 2",
    ]);
    let output = run.shell("grep arch_timer /proc/interrupts", PROMPT, COMMAND);
    let counts = timer_counts(&output);
    if !output.contains("GIC-0") || counts.len() != 2 || counts.contains(&0) {
        run.fail(&format!("timer interrupts per CPU: {counts:?} in {output:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND * 2);
}

/// The per-CPU counts of the line of /proc/interrupts that names arch_timer.
fn timer_counts(output: &str) -> Vec<u64> {
    let Some(line) = output.lines().find(|l| l.contains("arch_timer") && l.contains(':')) else {
        return Vec::new();
    };
    let after_colon = line.split_once(':').map(|(_, rest)| rest).unwrap_or("");
    after_colon.split_whitespace().map_while(|w| w.parse().ok()).collect()
}

/// `cargo xtask image --board rpi4`: the card has one bootable FAT32
/// partition with the firmware, the board's tree, Duet as kernel8.img (the
/// very image `cargo xtask run` boots, padded to the memory it takes), the
/// persona package and config.txt;
/// and what is on the card boots under QEMU raspi4b as `cargo xtask run
/// --board rpi4` does, Linux guest and power-off included.
#[test]
fn the_sd_card_image_holds_the_pi_boot_files_and_its_kernel8_boots() {
    let dir = xtask::target_dir().join("test-images");
    std::fs::create_dir_all(&dir).expect("create target/test-images");
    let card = dir.join("rpi4.img");
    let _ = std::fs::remove_file(&card);
    let mut make = Machine::xtask(&["image", "--board", "rpi4", "--out", card.to_str().unwrap()]);
    let exit = make.wait(BOOT_TIMEOUT * 5);
    if !exit.success() {
        make.fail(&format!("`cargo xtask image` exited with {exit}"));
    }
    let bytes = std::fs::read(&card).expect("the image was written");
    let contents = xtask::sdcard::read(&bytes).expect("the image reads back");
    assert_eq!(contents.partitions.len(), 1, "{:?}", contents.partitions);
    let (kind, first, sectors, bootable) = contents.partitions[0];
    assert_eq!((kind, first, bootable), (xtask::sdcard::FAT32_LBA, 2048, true));
    assert_eq!((u64::from(first) + u64::from(sectors)) * 512, bytes.len() as u64);
    assert_eq!(contents.fat_type, "Fat32");
    let file = |name: &str| -> &[u8] {
        let found = contents.files.iter().find(|(n, _)| n == name);
        &found.unwrap_or_else(|| panic!("no {name} on the card")).1
    };
    let firmware = xtask::guest::raspi_firmware().expect("the firmware was fetched");
    for name in duet_boards::rpi4::FIRMWARE_FILES {
        assert_eq!(file(name), std::fs::read(firmware.join(name)).unwrap(), "{name}");
    }
    // kernel8.img is Duet's image, padded with zeros to the memory it takes.
    let kernel = std::fs::read(duet_tests::image(duet_tests::Variant::Release)).unwrap();
    let on_card = file("kernel8.img");
    assert!(on_card.len() > kernel.len() && on_card[..kernel.len()] == kernel[..]);
    assert!(on_card[kernel.len()..].iter().all(|&b| b == 0));
    let image_size = u64::from_le_bytes(kernel[16..24].try_into().unwrap());
    assert_eq!(on_card.len() as u64, image_size);
    let board = duet_boards::by_name("rpi4").unwrap();
    let dtb = xtask::qemu::board_dtb(board).unwrap().unwrap();
    assert!(file("bcm2711-rpi-4-b.dtb") == std::fs::read(&dtb).unwrap());
    let config = String::from_utf8(file("config.txt").to_vec()).unwrap();
    for line in ["arm_64bit=1", "enable_uart=1", "kernel=kernel8.img"] {
        assert!(config.lines().any(|l| l == line), "config.txt lacks {line:?}:\n{config}");
    }
    assert!(config.contains("initramfs duet-personas.pkg followkernel"));

    // Boot what is on the card, as the firmware would load it.
    let unpacked = dir.join("rpi4-card");
    std::fs::create_dir_all(&unpacked).unwrap();
    for name in ["kernel8.img", "duet-personas.pkg", "bcm2711-rpi-4-b.dtb"] {
        std::fs::write(unpacked.join(name), file(name)).unwrap();
    }
    let options = duet_tests::Options {
        package: Some(unpacked.join("duet-personas.pkg")),
        dtb: Some(unpacked.join("bcm2711-rpi-4-b.dtb")),
        ..Default::default()
    };
    let mut run = Machine::boot_image(board, &unpacked.join("kernel8.img"), &options);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run.require(PI_BANNER);
    run.require(&["[personal] duet-guest: cpus online: 2"]);
    run.power_off_personal_then_corporate(COMMAND * 2);
}
