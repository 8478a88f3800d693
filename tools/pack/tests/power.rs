//! The power settings of a manifest (`[vm.power]`, top-level `foreground`):
//! defaults, every bad value and its message, and the trip through the
//! package to the hypervisor's reader, which checks them again.

mod common;

use common::{fake_kernel, two_vm_setup, Scratch, TWO_VMS};
use duet::personas::power::PowerSpec;
use duet::personas::{PackageError, PersonaPackage, Problem};
use duet_pack::{write_package, Manifest};
use std::ops::Range;

/// [`TWO_VMS`] with `top` before it and `corporate_power` as corporate's
/// `[vm.power]` table, written next to the images of [`two_vm_setup`].
fn load(top: &str, corporate_power: &str) -> Result<Manifest, String> {
    load_keeping_images(top, corporate_power).1
}

/// As [`load`], with the directory of images kept for packing.
fn load_keeping_images(top: &str, corporate_power: &str) -> (Scratch, Result<Manifest, String>) {
    let (dir, _) = two_vm_setup();
    let text = format!("{top}\n{TWO_VMS}\n[vm.power]\n{corporate_power}\n");
    let path = dir.write("power.toml", text.as_bytes());
    let manifest = Manifest::load(&path).map_err(|e| e.problem.to_string());
    (dir, manifest)
}

fn parse(bytes: Vec<u8>) -> Result<PersonaPackage, PackageError> {
    PersonaPackage::parse(Box::leak(bytes.into_boxed_slice()))
}

/// Where the value of `property` of the node at `path` sits in `package`.
fn value_range(package: &[u8], path: &str, property: &str) -> Range<usize> {
    let fdt = fdt::Fdt::new(package).expect("a device tree");
    let node = fdt.find_node(path).expect("the node");
    let value = node.property(property).expect("the property").value;
    let start = value.as_ptr() as usize - package.as_ptr() as usize;
    start..start + value.len()
}

fn patch_cell(package: &mut [u8], path: &str, property: &str, value: u32) {
    let range = value_range(package, path, property);
    package[range].copy_from_slice(&value.to_be_bytes());
}

const CORPORATE_POWER: &str = "priority = 2\nbackground_cpu_percent = 10\n\
                               background_timer_slack_ms = 50\nbackground_may_use_idle = true\n\
                               screen_off_timer_slack_ms = 500";

#[test]
fn settings_are_read_and_defaults_fill_the_rest() {
    let manifest = load("foreground = \"corporate\"", CORPORATE_POWER).unwrap();
    assert_eq!(manifest.foreground, 1);
    assert_eq!(manifest.vms[0].power, PowerSpec::DEFAULT, "personal names no [vm.power]");
    let expected = PowerSpec {
        priority: 2,
        background_cpu_percent: 10,
        background_timer_slack_ms: 50,
        background_may_use_idle: true,
        screen_off_timer_slack_ms: 500,
    };
    assert_eq!(manifest.vms[1].power, expected);

    let partial = load("", "background_cpu_percent = 5").unwrap();
    assert_eq!(partial.foreground, 0, "the first VM by default");
    let power = partial.vms[1].power;
    assert_eq!(power, PowerSpec { background_cpu_percent: 5, ..PowerSpec::DEFAULT });
}

#[test]
fn an_old_manifest_is_unthrottled() {
    let (_dir, path) = two_vm_setup();
    let manifest = Manifest::load(&path).unwrap();
    assert_eq!(manifest.foreground, 0);
    assert!(manifest.vms.iter().all(|vm| vm.power == PowerSpec::DEFAULT));
    assert_eq!(PowerSpec::DEFAULT.background_cpu_percent, 100);
    assert_eq!(PowerSpec::DEFAULT.background_timer_slack_ms, 0);
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("priority = 16", "vm \"corporate\": priority: must be 0..=15, not 16"),
        (
            "background_cpu_percent = 0",
            "vm \"corporate\": background_cpu_percent: must be 1..=100, not 0",
        ),
        (
            "background_cpu_percent = 101",
            "vm \"corporate\": background_cpu_percent: must be 1..=100, not 101",
        ),
        (
            "background_timer_slack_ms = 1001",
            "vm \"corporate\": background_timer_slack_ms: must be 0..=1000, not 1001",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(load("", line).unwrap_err(), expected, "{line}");
    }
    let unknown = load("", "background_cpu = 10").unwrap_err();
    assert!(unknown.contains("unknown field `background_cpu`"), "{unknown}");
    let wrong_type = load("", "background_may_use_idle = 1").unwrap_err();
    assert!(wrong_type.contains("background_may_use_idle"), "{wrong_type}");
    let negative = load("", "background_cpu_percent = -5").unwrap_err();
    assert!(negative.contains("background_cpu_percent"), "{negative}");
}

#[test]
fn the_foreground_must_name_a_vm() {
    assert_eq!(
        load("foreground = \"work\"", "").unwrap_err(),
        "foreground: no VM is named \"work\""
    );
}

#[test]
fn settings_survive_the_package() {
    let (_dir, manifest) = load_keeping_images("foreground = \"corporate\"", CORPORATE_POWER);
    let manifest = manifest.unwrap();
    let package = parse(write_package(&manifest).unwrap()).unwrap();
    assert_eq!(package.foreground(), 1);
    assert_eq!(package.vms()[0].power, PowerSpec::DEFAULT);
    assert_eq!(package.vms()[1].power, manifest.vms[1].power);
}

#[test]
fn the_reader_checks_the_settings_again() {
    let (_dir, manifest) = load_keeping_images("", CORPORATE_POWER);
    let manifest = manifest.unwrap();
    let good = write_package(&manifest).unwrap();

    let mut bytes = good.clone();
    patch_cell(&mut bytes, "/vm@1", "background-cpu-percent", 0);
    let error = parse(bytes).unwrap_err();
    assert_eq!(
        error.to_string(),
        "vm@1 (\"corporate\"): background-cpu-percent: must be 1..=100, not 0"
    );

    let mut bytes = good.clone();
    patch_cell(&mut bytes, "/vm@0", "background-may-use-idle", 2);
    assert!(matches!(
        parse(bytes).unwrap_err(),
        PackageError::Vm {
            property: "background-may-use-idle",
            problem: Problem::OutOfRange { .. },
            ..
        }
    ));

    let mut bytes = good.clone();
    patch_cell(&mut bytes, "/", "duet,foreground-vm", 2);
    assert_eq!(
        parse(bytes).unwrap_err().to_string(),
        "root: duet,foreground-vm: must be 0..=1, not 2"
    );
}

#[test]
fn a_package_without_power_properties_reads_with_defaults() {
    // A package as duet-pack wrote it before the power settings existed
    // (but in today's format: the reader refuses version 1).
    let mut kernel = fake_kernel(4096, 3);
    kernel.resize(4096, 0);
    let table = |size: u64| {
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_string("compatible", "duet,persona-package").unwrap();
        fdt.property_u32("duet,format-version", 2).unwrap();
        fdt.property_u64("duet,package-size", size).unwrap();
        let blob = fdt.begin_node("blob@0").unwrap();
        fdt.property_string("kind", "kernel").unwrap();
        fdt.property_array_u64("extent", &[4096, 4096]).unwrap();
        fdt.end_node(blob).unwrap();
        let vm = fdt.begin_node("vm@0").unwrap();
        fdt.property_string("vm-name", "old").unwrap();
        fdt.property_string("role", "personal").unwrap();
        fdt.property_u32("memory-mib", 2).unwrap();
        fdt.property_u32("vcpus", 1).unwrap();
        fdt.property_string("cmdline", "").unwrap();
        fdt.property_string("on-reset", "restart").unwrap();
        fdt.property_u32("restart-limit", 5).unwrap();
        fdt.property_u32("kernel", 0).unwrap();
        fdt.end_node(vm).unwrap();
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    };
    let mut bytes = table(8192);
    assert!(bytes.len() <= 4096);
    bytes.resize(4096, 0);
    bytes.extend_from_slice(&kernel);
    let package = parse(bytes).unwrap();
    assert_eq!(package.vms()[0].power, PowerSpec::DEFAULT);
    assert_eq!(package.foreground(), 0);
}
