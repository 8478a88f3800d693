//! The `duet-pack` command as a developer runs it.

mod common;

use common::two_vm_setup;
use std::process::{Command, Output};

fn duet_pack(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet-pack")).args(args).output().expect("run duet-pack")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn build_writes_a_package_duet_accepts() {
    let (dir, manifest) = two_vm_setup();
    let out = dir.path().join("personas.pkg");
    let output =
        duet_pack(&["build".as_ref(), manifest.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("vm@0: personal (personal, 2 vCPUs, 256 MiB)"), "{stdout}");
    assert!(stdout.contains("vm@1: corporate (corporate, 1 vCPU, 128 MiB)"), "{stdout}");
    assert!(stdout.contains("images: 3, stored as 3 blobs"), "{stdout}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 0x18000);
    let package = duet::personas::PersonaPackage::parse(Box::leak(bytes.into_boxed_slice()));
    assert_eq!(package.unwrap().vms().len(), 2);
}

#[test]
fn check_reports_the_board_being_too_small() {
    let (_dir, manifest) = two_vm_setup();
    let output = duet_pack(&[
        "check".as_ref(),
        manifest.as_os_str(),
        "--board-memory-mib".as_ref(),
        "256".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "duet-pack: error: {}: memory: the VMs ask for 384 MiB but the board has 191 MiB \
             for VMs\n",
            manifest.display()
        )
    );
}

#[test]
fn check_accepts_a_good_manifest() {
    let (_dir, manifest) = two_vm_setup();
    let output = duet_pack(&["check".as_ref(), manifest.as_os_str()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).ends_with(": ok\n"));
}
