//! The virtio devices Duet serves, seen from an unmodified Debian Linux
//! guest (the default persona pair of `cargo xtask run`): the virtio
//! console (`/dev/hvc0`) reaches Duet's console tagged with the VM, also
//! after the VM restarts, and virtio-rng is the guest's hardware RNG and
//! gives bytes; virtio-gpu is its framebuffer, of the display's size, and
//! filling it makes flushes Duet counts; keyboard and touchscreen are its
//! input devices; and a probe guest
//! that abuses its virtio devices every way it knows is refused each time,
//! logged, while Linux beside it goes on using its own.

use duet_tests::Machine;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";

#[test]
fn linux_uses_the_virtio_console_and_entropy_device() {
    let mut run = Machine::xtask(&["run"]);
    run.expect("[corporate] duet-guest: init ran", LINUX_BOOT);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);

    // The transport found both devices: console (ID 3) and entropy (ID 4).
    let ids = run.shell("cat /sys/bus/virtio/devices/*/device", PROMPT, COMMAND);
    if !(ids.contains("0x0003") && ids.contains("0x0004")) {
        run.fail(&format!("virtio device IDs in the guest: {ids:?}"));
    }

    // A line written to the virtio console shows up tagged with the VM. The
    // shell's echo of the command shows `$((6 * 7))`, never the `42`.
    let mark = run.mark();
    run.shell("echo virtio-console-$((6 * 7)) > /dev/hvc0", PROMPT, COMMAND);
    run.expect_since(mark, "[personal] virtio-console-42\n", COMMAND);

    // virtio-rng is the hardware RNG, and it gives 64 bytes, not all alike.
    let current = run.shell("cat /sys/class/misc/hw_random/rng_current", PROMPT, COMMAND);
    if !current.contains("virtio_rng") {
        run.fail(&format!("the guest's current hardware RNG is {current:?}"));
    }
    let dump =
        run.shell("dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -An -tx1 -v", PROMPT, COMMAND);
    let bytes: Vec<&str> = dump
        .split_whitespace()
        .filter(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    if bytes.len() != 64 || bytes.iter().all(|b| *b == bytes[0]) {
        run.fail(&format!("64 bytes from /dev/hwrng came out as {dump:?}"));
    }

    // A restart resets the devices: the new kernel sets them up afresh.
    let mark = run.mark();
    run.send("reboot -f\n");
    run.expect_since(mark, "duet: vm personal is restarting", COMMAND);
    run.expect_since(mark, &format!("[personal] {PROMPT}"), LINUX_BOOT);
    let mark = run.mark();
    run.shell("echo after-restart-$((6 * 7)) > /dev/hvc0", PROMPT, COMMAND);
    run.expect_since(mark, "[personal] after-restart-42\n", COMMAND);

    run.power_off_personal_then_corporate(COMMAND * 2);
}

/// The display flushes Duet counted for VM `vm` in a counters dump.
fn display_flushes(counters: &str, vm: &str) -> Option<u64> {
    let prefix = format!("duet: vm {vm}: display flushes ");
    let line = counters.lines().find(|l| l.starts_with(&prefix))?;
    line.strip_prefix(&prefix)?.trim().parse().ok()
}

/// Asks Duet for its counters; VM `vm`'s display flushes.
fn flushes_now(run: &mut Machine, vm: &str) -> u64 {
    let mark = run.mark();
    run.send("\x1ds");
    let counters = run.expect_since(mark, "duet: heap", COMMAND);
    match display_flushes(&counters, vm) {
        Some(flushes) => flushes,
        None => run.fail(&format!("no display flushes for vm {vm} in {counters:?}")),
    }
}

#[test]
fn linux_gets_a_virtual_display_and_input_devices() {
    let mut run = Machine::xtask(&["run"]);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);

    // Debian's virtio-gpu driver made a framebuffer of the display's size.
    let size = run.shell("cat /sys/class/graphics/fb0/virtual_size", PROMPT, COMMAND);
    if !size.contains("720,1232") {
        run.fail(&format!("the framebuffer's size is {size:?}"));
    }
    // The keyboard and the touchscreen are input devices with event nodes.
    let names = run.shell("grep Name /proc/bus/input/devices", PROMPT, COMMAND);
    for name in ["N: Name=\"Duet keyboard\"", "N: Name=\"Duet touchscreen\""] {
        if !names.contains(name) {
            run.fail(&format!("no {name} among the input devices: {names:?}"));
        }
    }
    let nodes = run.shell("ls /dev/input", PROMPT, COMMAND);
    if !(nodes.contains("event0") && nodes.contains("event1")) {
        run.fail(&format!("/dev/input holds {nodes:?}"));
    }

    // Filling the framebuffer (3.4 MiB of 0x40) makes the guest flush its
    // scanout, and Duet counts the flushes.
    let before = flushes_now(&mut run, "personal");
    let fill = "dd if=/dev/zero bs=4096 count=866 | tr '\\000' @ > /dev/fb0";
    let output = run.shell(fill, PROMPT, COMMAND);
    if !output.contains("866+0 records out") {
        run.fail(&format!("filling /dev/fb0 said {output:?}"));
    }
    run.shell("sleep 1", PROMPT, COMMAND);
    let after = flushes_now(&mut run, "personal");
    eprintln!(
        "display flushes of the personal VM: {before} before filling /dev/fb0, {after} after"
    );
    if after <= before {
        run.fail(&format!("display flushes went from {before} to {after}"));
    }
    run.forbid("virtio-gpu: command");

    run.power_off_personal_then_corporate(COMMAND * 2);
}

/// The probe's abuses (`guests/probe/src/virtio.rs`), each of which must
/// be rejected by every device.
const ABUSES: [&str; 20] = [
    "descriptor-loop",
    "self-loop",
    "address-outside-ram",
    "buffer-crossing-ram-end",
    "oversized-length",
    "next-outside-table",
    "readable-after-writable",
    "head-outside-table",
    "avail-index-runaway",
    "indirect-not-negotiated",
    "indirect-bad-length",
    "indirect-with-next",
    "indirect-nested",
    "indirect-table-outside-ram",
    "driver-ok-before-features-ok",
    "legacy-driver",
    "features-changed-after-features-ok",
    "queue-size-not-power-of-two",
    "queue-ring-outside-ram",
    "queue-ring-misaligned",
];

/// The probe's well-formed but wrong display commands, with the error
/// response each must get (`guests/probe/src/virtio.rs`, module `gpu`).
const GPU_ABUSES: [(&str, &str); 5] = [
    ("gpu-backing-outside-ram", "0x1205"),
    ("gpu-resource-too-large", "0x1205"),
    ("gpu-rectangle-outside-resource", "0x1205"),
    ("gpu-unknown-resource", "0x1203"),
    ("gpu-too-many-resources", "0x1201"),
];

#[test]
fn a_guest_abusing_its_virtio_devices_is_refused_and_linux_beside_it_goes_on() {
    let manifest = duet_tests::manifest(
        "virtio-abuse",
        &format!(
            "{}\n{}disk_mib = 8\nnic = true\n",
            linux_vm("personal"),
            probe_vm("abuser", "probe.mode=virtio")
        ),
    );
    let path = manifest.to_str().expect("UTF-8 path");
    let mut run = Machine::xtask(&["run", "--manifest", path]);
    let console = run.expect("duet: vm abuser powered off", LINUX_BOOT);
    let lines: Vec<&str> =
        console.lines().filter_map(|l| l.strip_prefix("[abuser] probe: virtio ")).collect();
    for device in ["console", "rng", "blk", "net", "gpu", "keyboard", "touch"] {
        for abuse in ABUSES {
            let line = format!("{device} {abuse}: rejected");
            if !lines.contains(&line.as_str()) {
                run.fail(&format!("no {line:?} among the probe's lines {lines:#?}"));
            }
        }
    }
    for (abuse, response) in GPU_ABUSES {
        let line = format!("gpu {abuse}: rejected ({response})");
        if !lines.contains(&line.as_str()) {
            run.fail(&format!("no {line:?} among the probe's lines {lines:#?}"));
        }
    }
    run.require(&[
        "[abuser] probe: virtio done: 7 devices, 20 abuses each, 5 more for the gpu, 0 not rejected",
        "[abuser] probe: virtio rng good-request: served (16 bytes)",
        "[abuser] probe: virtio console good-request: served (0 bytes)",
        // A read of the disk's first sector: 512 bytes and the status byte.
        "[abuser] probe: virtio blk good-request: served (513 bytes)",
        "[abuser] probe: virtio net good-request: served",
        // GET_DISPLAY_INFO: the header and 16 scanouts of 24 bytes.
        "[abuser] probe: virtio gpu good-request: served (408 bytes)",
        "[abuser] probe: virtio keyboard good-request: served (0 bytes)",
        "[abuser] probe: virtio touch good-request: served (0 bytes)",
        "[abuser] probe: hvc line\n",
        // Duet says what it refused.
        "vm abuser: virtio-rng: queue 0: the chain loops back to descriptor 0; the device needs a reset",
        "vm abuser: virtio-console: DRIVER_OK set before FEATURES_OK; the device needs a reset",
        "vm abuser: virtio-rng: driver did not accept VIRTIO_F_VERSION_1 (legacy); refused",
        "vm abuser: virtio-gpu: command 0x106 refused: backing entry 0 (1024 bytes at ",
        "vm abuser: virtio-gpu: command 0x101 refused: a 4097x16 resource (1 to 4096 pixels a side)",
        "vm abuser: virtio-gpu: command 0x104 refused: rectangle 16x16 at (8, 8) is not inside the 16x16 resource",
        "vm abuser: virtio-gpu: command 0x103 refused: there is no resource 77",
        "vm abuser: virtio-gpu: command 0x104 refused: there is no resource 78",
        "vm abuser: virtio-gpu: command 0x101 refused: more than 16 resources",
    ]);
    run.forbid("HALTED");

    // Linux beside it still has working virtio devices and a console.
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    let mark = run.mark();
    run.shell("echo still-$((40 + 2)) > /dev/hvc0", PROMPT, COMMAND);
    run.expect_since(mark, "[personal] still-42\n", COMMAND);
    let bytes = run.shell("dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c", PROMPT, COMMAND);
    if !bytes.contains("[personal] 16\n") {
        run.fail(&format!("16 bytes from /dev/hwrng came out as {bytes:?}"));
    }
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND * 2);
    run.require(&["duet: vm personal powered off"]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// The default personal Linux VM, with the kernel and initramfs xtask
/// fetches or builds.
fn linux_vm(name: &str) -> String {
    if let Err(e) = xtask::guest::default_manifest() {
        panic!("cannot get the Linux guest: {e:#}");
    }
    let guests = xtask::guest::guests_dir();
    format!(
        "[[vm]]\nname = {name:?}\nrole = \"personal\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 256\nvcpus = 2\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
    )
}

/// A probe VM (corporate role) with `cmdline`.
fn probe_vm(name: &str, cmdline: &str) -> String {
    format!(
        "[[vm]]\nname = {name:?}\nrole = \"corporate\"\nkernel = {:?}\ncmdline = {cmdline:?}\n\
         memory_mib = 64\nvcpus = 1\n",
        duet_tests::probe_image()
    )
}
