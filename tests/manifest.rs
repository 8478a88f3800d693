//! A bad persona manifest stops `cargo xtask run` with an error that names
//! the key or file, before anything boots.

use duet_tests::{manifest, probe_image, Machine};
use std::time::Duration;

const CHECK: Duration = Duration::from_secs(120);

/// A good manifest for the probe guest, with `line` replaced or added.
fn probe_with(name: &str, change: impl FnOnce(String) -> String) -> String {
    let good = format!(
        "[[vm]]\nname = \"probe\"\nrole = \"corporate\"\nkernel = {:?}\nmemory_mib = 64\nvcpus = 1\n",
        probe_image()
    );
    let path = manifest(name, &change(good));
    path.to_str().expect("UTF-8 path").to_string()
}

/// Runs `cargo xtask run --manifest PATH` and checks it fails, says
/// `expected`, and never started QEMU.
fn refused(path: &str, expected: &[&str]) {
    let mut run = Machine::xtask(&["run", "--manifest", path]);
    let exit = run.wait(CHECK);
    run.require(expected);
    run.forbid("Duet 0.1.0");
    if exit.success() {
        run.fail("`cargo xtask run` succeeded with a bad manifest");
    }
}

#[test]
fn unknown_key_is_named() {
    let path = probe_with("unknown-key", |m| m.replace("memory_mib", "memry_mib"));
    refused(&path, &["unknown-key.toml", "unknown field `memry_mib`"]);
}

#[test]
fn missing_kernel_file_is_named() {
    let path = probe_with("missing-kernel", |m| {
        m.lines()
            .map(|l| if l.starts_with("kernel") { "kernel = \"no-such-Image\"" } else { l })
            .collect::<Vec<_>>()
            .join("\n")
    });
    refused(&path, &["vm \"probe\": kernel: file not found", "no-such-Image"]);
}

#[test]
fn too_much_memory_for_the_board_is_refused() {
    let path = probe_with("too-much-memory", |m| m.replace("memory_mib = 64", "memory_mib = 4096"));
    refused(&path, &["memory: the VMs ask for 4096 MiB but the board has"]);
}

#[test]
fn zero_vcpus_is_refused() {
    let path = probe_with("zero-vcpus", |m| m.replace("vcpus = 1", "vcpus = 0"));
    refused(&path, &["vm \"probe\": vcpus: must be 1..=8, not 0"]);
}

#[test]
fn unknown_reset_policy_is_refused() {
    let path = probe_with("bad-on-reset", |m| m + "on_reset = \"reboot\"\n");
    refused(&path, &["vm \"probe\": on_reset: unknown policy \"reboot\""]);
}
