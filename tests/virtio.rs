//! The virtio devices Duet serves, seen from an unmodified Debian Linux
//! guest (the default persona pair of `cargo xtask run`): the virtio
//! console (`/dev/hvc0`) reaches Duet's console tagged with the VM, and
//! virtio-rng is the guest's hardware RNG and gives bytes.

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

    run.power_off_personal_then_corporate(COMMAND * 2);
}
