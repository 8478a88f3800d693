//! Packages written by duet-pack and read back by the hypervisor's own
//! reader (`duet::personas`): every field survives the trip, and each kind
//! of damage is refused with its own error, never a panic.

mod common;

use common::{fake_kernel, two_vm_setup, Scratch};
use duet::personas::{
    format, BlobKind, Net, PackageError, Parent, PersonaPackage, Problem, ResetPolicy, Role,
    TreeError,
};
use duet_pack::{write_package, Manifest, VmManifest};
use std::ops::Range;

/// The package of [`common::TWO_VMS`]. Its layout, with a table under
/// 4 KiB: blob@0, personal's kernel, at 0x1000 (5000 bytes), blob@1, its
/// initrd, at 0x3000 (9000 bytes), blob@2, corporate's kernel, at 0x6000
/// (70000 bytes), 0x18000 in all.
fn two_vm_package() -> Vec<u8> {
    let (_dir, path) = two_vm_setup();
    write_package(&Manifest::load(&path).unwrap()).unwrap()
}

/// The reader wants bytes that live for ever, as a loaded package does.
fn parse(bytes: Vec<u8>) -> Result<PersonaPackage, PackageError> {
    PersonaPackage::parse(Box::leak(bytes.into_boxed_slice()))
}

fn parse_err(bytes: Vec<u8>) -> PackageError {
    parse(bytes).expect_err("the package is refused")
}

/// Where the value of `property` of the node at `path` sits in `package`.
fn value_range(package: &[u8], path: &str, property: &str) -> Range<usize> {
    let fdt = fdt::Fdt::new(package).expect("a device tree");
    let node = fdt.find_node(path).expect("the node");
    let value = node.property(property).expect("the property").value;
    let start = value.as_ptr() as usize - package.as_ptr() as usize;
    start..start + value.len()
}

/// Overwrites a property's value with one of the same length.
fn patch(package: &mut [u8], path: &str, property: &str, value: &[u8]) {
    let range = value_range(package, path, property);
    assert_eq!(range.len(), value.len(), "patch {path} {property}");
    package[range].copy_from_slice(value);
}

/// Sets blob `index`'s `extent`.
fn patch_extent(package: &mut [u8], index: usize, offset: u64, size: u64) {
    let cells: Vec<u8> = [offset, size].iter().flat_map(|c| c.to_be_bytes()).collect();
    patch(package, &format!("/blob@{index}"), format::prop::EXTENT, &cells);
}

/// Points a VM's `kernel` or `initrd` at blob `blob`.
fn patch_reference(package: &mut [u8], vm: usize, property: &str, blob: u32) {
    patch(package, &format!("/vm@{vm}"), property, &blob.to_be_bytes());
}

/// Renames a node in place (the new name as long as the old).
fn rename_node(package: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let needle = [from.as_bytes(), b"\0"].concat();
    let at = package.windows(needle.len()).position(|w| w == needle).expect("the node's name");
    package[at..at + from.len()].copy_from_slice(to.as_bytes());
}

/// Renames a property everywhere by rewriting its name in the strings
/// block, which is how a property goes missing without moving anything.
fn rename_property(package: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let word = |at: usize| u32::from_be_bytes(package[at..at + 4].try_into().unwrap()) as usize;
    let (start, size) = (word(12), word(32));
    let strings = &package[start..start + size];
    let needle = [from.as_bytes(), b"\0"].concat();
    let at = strings
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the name is in the strings block");
    package[start + at..start + at + from.len()].copy_from_slice(to.as_bytes());
}

/// Gives `property` of the node at `path` the name `as_name`, which another
/// property of the tree already has, by pointing its name offset at that
/// name in the strings block: nothing moves, and a node can so carry one
/// name twice.
fn alias_property(package: &mut [u8], path: &str, property: &str, as_name: &str) {
    let word = |at: usize| u32::from_be_bytes(package[at..at + 4].try_into().unwrap()) as usize;
    let (start, size) = (word(12), word(32));
    let strings = &package[start..start + size];
    let needle = [as_name.as_bytes(), b"\0"].concat();
    let at = (0..strings.len())
        .find(|&at| strings[at..].starts_with(&needle) && (at == 0 || strings[at - 1] == 0))
        .expect("the name is in the strings block");
    // A property is <token, length, name offset, value>.
    let name_offset = value_range(package, path, property).start - 4;
    package[name_offset..name_offset + 4].copy_from_slice(&(at as u32).to_be_bytes());
}

fn blob_error(index: usize, property: &'static str, problem: Problem) -> PackageError {
    PackageError::Blob { index, property, problem }
}

fn vm_error(
    index: usize,
    name: Option<&'static str>,
    property: &'static str,
    problem: Problem,
) -> PackageError {
    PackageError::Vm { index, name, property, problem }
}

#[test]
fn every_field_survives_the_round_trip() {
    let (dir, path) = two_vm_setup();
    let bytes = write_package(&Manifest::load(&path).unwrap()).unwrap();
    let package = parse(bytes).unwrap();
    let vms = package.vms();
    assert_eq!(vms.len(), 2);

    let personal = &vms[0];
    assert_eq!(personal.name, "personal");
    assert_eq!(personal.role, Role::Personal);
    assert_eq!(personal.memory_mib, 256);
    assert_eq!(personal.vcpus, 2);
    assert_eq!(personal.cmdline, "console=ttyAMA0 quiet");
    assert_eq!(personal.on_reset, ResetPolicy::Restart);
    assert_eq!(personal.restart_limit, 3);
    assert_eq!(personal.kernel, std::fs::read(dir.path().join("Image")).unwrap());
    assert_eq!(personal.initrd.unwrap(), std::fs::read(dir.path().join("initramfs.cpio")).unwrap());

    let corporate = &vms[1];
    assert_eq!(corporate.name, "corporate");
    assert_eq!(corporate.role, Role::Corporate);
    assert_eq!(corporate.memory_mib, 128);
    assert_eq!(corporate.vcpus, 1);
    assert_eq!(corporate.cmdline, "");
    assert_eq!(corporate.on_reset, ResetPolicy::StayOff);
    assert_eq!(corporate.restart_limit, format::DEFAULT_RESTART_LIMIT);
    assert_eq!(corporate.kernel, std::fs::read(dir.path().join("mail/Image")).unwrap());
    assert_eq!(corporate.initrd, None);
    // Old manifests: no disk, no NIC, VMs kept apart.
    assert_eq!((personal.disk_mib, personal.net), (None, None));
    assert!(!package.vms_may_talk());
}

#[test]
fn disks_nics_and_the_talk_flag_survive_the_round_trip() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 1));
    let path = dir.write(
        "net.toml",
        b"[network]\nvms_may_talk = true\n\n\
          [[vm]]\nname = \"a\"\nrole = \"personal\"\nkernel = \"Image\"\nmemory_mib = 64\n\
          vcpus = 1\ndisk_mib = 32\nnic = true\nuplink = true\n\n\
          [[vm]]\nname = \"b\"\nrole = \"corporate\"\nkernel = \"Image\"\nmemory_mib = 64\n\
          vcpus = 1\nnic = true\n",
    );
    let package = parse(write_package(&Manifest::load(&path).unwrap()).unwrap()).unwrap();
    assert!(package.vms_may_talk());
    let vms = package.vms();
    assert_eq!((vms[0].disk_mib, vms[0].net), (Some(32), Some(Net::Uplink)));
    assert_eq!((vms[1].disk_mib, vms[1].net), (None, Some(Net::Local)));
}

#[test]
fn colours_and_the_lock_time_survive_the_round_trip() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 1));
    let path = dir.write(
        "screen.toml",
        b"[screen]\nlock_after_idle_seconds = 0\n\n\
          [[vm]]\nname = \"a\"\nrole = \"personal\"\nkernel = \"Image\"\nmemory_mib = 64\n\
          vcpus = 1\ncolour = \"#00aa55\"\n\n\
          [[vm]]\nname = \"b\"\nrole = \"corporate\"\nkernel = \"Image\"\nmemory_mib = 64\n\
          vcpus = 1\n",
    );
    let good = write_package(&Manifest::load(&path).unwrap()).unwrap();
    let package = parse(good.clone()).unwrap();
    assert_eq!(package.lock_after_idle_seconds(), 0);
    assert_eq!(package.vms()[0].colour, 0x00aa55);
    assert_eq!(package.vms()[1].colour, duet::personas::screen::CORPORATE_COLOUR);
    let mut bytes = good.clone();
    patch(&mut bytes, "/vm@0", "colour", &0x0100_0000u32.to_be_bytes());
    assert_eq!(
        parse_err(bytes).to_string(),
        "vm@0 (\"a\"): colour: must be 0..=16777215, not 16777216"
    );
    let mut bytes = good;
    patch(&mut bytes, "/", "duet,lock-after-idle-seconds", &86_401u32.to_be_bytes());
    assert_eq!(
        parse_err(bytes).to_string(),
        "root: duet,lock-after-idle-seconds: must be 0..=86400, not 86401"
    );
}

#[test]
fn a_manifest_without_screen_settings_packs_the_defaults() {
    let (_dir, path) = two_vm_setup();
    let mut bytes = write_package(&Manifest::load(&path).unwrap()).unwrap();
    // The manifest names neither: the defaults are written.
    let package = parse(bytes.clone()).unwrap();
    assert_eq!(package.lock_after_idle_seconds(), 60);
    assert_eq!(package.vms()[0].colour, duet::personas::screen::PERSONAL_COLOUR);
    // A misspelt property is refused, not ignored.
    rename_property(&mut bytes, "colour", "colouR");
    assert_eq!(parse_err(bytes).to_string(), "vm@0 (\"personal\"): colouR: unknown property");
}

#[test]
fn bad_disk_and_network_properties_are_refused() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 1));
    let path = dir.write(
        "net.toml",
        b"[[vm]]\nname = \"a\"\nrole = \"personal\"\nkernel = \"Image\"\nmemory_mib = 64\n\
          vcpus = 1\ndisk_mib = 32\nnic = true\n",
    );
    let good = write_package(&Manifest::load(&path).unwrap()).unwrap();
    let mut bytes = good.clone();
    patch(&mut bytes, "/vm@0", "disk-mib", &0u32.to_be_bytes());
    assert_eq!(parse_err(bytes).to_string(), "vm@0 (\"a\"): disk-mib: must be 1..=1048576, not 0");
    let mut bytes = good.clone();
    patch(&mut bytes, "/vm@0", "net", b"lokal\0");
    assert_eq!(
        parse_err(bytes).to_string(),
        "vm@0 (\"a\"): net: unknown network \"lokal\" (expected \"local\" or \"uplink\")"
    );
}

#[test]
fn images_start_on_4_kib_boundaries_after_the_padded_table() {
    let bytes = two_vm_package();
    assert_eq!(bytes.len(), 0x18000);
    let package = parse(bytes).unwrap();
    let base = package.bytes().as_ptr() as usize;
    let offset = |image: &[u8]| image.as_ptr() as usize - base;
    let vms = package.vms();
    assert!(package.table_size() <= 0x1000);
    assert_eq!(offset(vms[0].kernel), 0x1000);
    assert_eq!(offset(vms[0].initrd.unwrap()), 0x3000);
    assert_eq!(offset(vms[1].kernel), 0x6000);
    // The padding is zeros.
    let all = package.bytes();
    assert!(all[package.table_size()..0x1000].iter().all(|&b| b == 0));
    assert!(all[0x1000 + 5000..0x3000].iter().all(|&b| b == 0));
    assert!(all[0x6000 + 70_000..].iter().all(|&b| b == 0));
}

#[test]
fn extra_loaded_bytes_after_the_package_are_ignored() {
    let mut bytes = two_vm_package();
    bytes.resize(bytes.len() + 12_345, 0xee);
    let package = parse(bytes).unwrap();
    assert_eq!(package.bytes().len(), 0x18000);
}

#[test]
fn a_truncated_package_is_refused() {
    let mut bytes = two_vm_package();
    bytes.truncate(0x18000 - 1);
    let error = parse_err(bytes);
    assert_eq!(error, PackageError::Truncated { declared: 0x18000, loaded: 0x17fff });
    assert_eq!(
        error.to_string(),
        "the package is 0x18000 bytes but only 0x17fff were loaded (truncated?)"
    );
}

#[test]
fn a_flipped_magic_is_refused() {
    let mut bytes = two_vm_package();
    bytes[0] ^= 0xff;
    let error = parse_err(bytes);
    assert_eq!(error, PackageError::Tree(TreeError::BadMagic { found: 0x2f0d_feed }));
    assert_eq!(
        error.to_string(),
        "the persona table is not a valid device tree: bad magic 0x2f0dfeed (a device tree \
         starts with 0xd00dfeed)"
    );
}

#[test]
fn an_image_past_the_end_is_refused() {
    let mut bytes = two_vm_package();
    patch_extent(&mut bytes, 2, 0x18000, 70_000);
    let error = parse_err(bytes);
    assert_eq!(
        error,
        blob_error(2, "extent", Problem::PastEnd { offset: 0x18000, size: 70_000, end: 0x18000 })
    );
    assert_eq!(
        error.to_string(),
        "blob@2: extent: offset 0x18000 + size 0x11170 runs past the package end (0x18000)"
    );
}

#[test]
fn image_offsets_are_aligned_outside_the_table_and_do_not_overflow() {
    let cases = [
        (0x1001, 16, Problem::Unaligned { offset: 0x1001 }),
        (0, 16, Problem::InTable { offset: 0, table_end: 0x1000 }),
        (u64::MAX - 0xfff, 0x2000, Problem::Overflow { offset: u64::MAX - 0xfff, size: 0x2000 }),
        (0x3000, 0, Problem::Empty),
    ];
    for (offset, size, problem) in cases {
        let mut bytes = two_vm_package();
        patch_extent(&mut bytes, 1, offset, size);
        assert_eq!(parse_err(bytes), blob_error(1, "extent", problem));
    }
    let mut bytes = two_vm_package();
    patch_extent(&mut bytes, 1, 0, 16);
    assert_eq!(
        parse_err(bytes).to_string(),
        "blob@1: extent: offset 0x0 lies inside the persona table (which ends at 0x1000)"
    );
}

#[test]
fn a_removed_property_is_missing() {
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "vcpus", "vcpuz");
    let error = parse_err(bytes);
    assert_eq!(error, vm_error(0, Some("personal"), "vcpus", Problem::Missing));
    assert_eq!(error.to_string(), "vm@0 (\"personal\"): vcpus: missing");
}

#[test]
fn the_reset_policy_and_restart_limit_are_required() {
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "on-reset", "on-resex");
    let error = parse_err(bytes);
    assert_eq!(error, vm_error(0, Some("personal"), "on-reset", Problem::Missing));
    assert_eq!(error.to_string(), "vm@0 (\"personal\"): on-reset: missing");
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "restart-limit", "restart-limix");
    assert_eq!(parse_err(bytes).to_string(), "vm@0 (\"personal\"): restart-limit: missing");
}

#[test]
fn a_repeated_property_is_refused() {
    let mut bytes = two_vm_package();
    alias_property(&mut bytes, "/vm@1", format::prop::RESTART_LIMIT, format::prop::ON_RESET);
    let error = parse_err(bytes);
    assert_eq!(error, vm_error(1, Some("corporate"), "on-reset", Problem::Repeated));
    assert_eq!(error.to_string(), "vm@1 (\"corporate\"): on-reset: appears more than once");
    let mut bytes = two_vm_package();
    alias_property(&mut bytes, "/vm@0", format::prop::ON_RESET, format::prop::ROLE);
    assert_eq!(parse_err(bytes).to_string(), "vm@0 (\"personal\"): role: appears more than once");
}

#[test]
fn reset_policies_are_restart_or_stay_off() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@1", format::prop::ON_RESET, b"stay_off\0");
    let error = parse_err(bytes);
    let problem = Problem::BadResetPolicy("stay_off");
    assert_eq!(error, vm_error(1, Some("corporate"), "on-reset", problem));
    assert_eq!(
        error.to_string(),
        "vm@1 (\"corporate\"): on-reset: unknown policy \"stay_off\" (expected \"restart\" or \
         \"stay-off\")"
    );
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@0", format::prop::ON_RESET, b"restar\0\0");
    assert_eq!(parse_err(bytes), vm_error(0, Some("personal"), "on-reset", Problem::NotAString));
}

#[test]
fn the_restart_limit_is_at_most_100() {
    for (limit, ok) in [(0u32, true), (100, true), (101, false), (u32::MAX, false)] {
        let mut bytes = two_vm_package();
        patch(&mut bytes, "/vm@0", format::prop::RESTART_LIMIT, &limit.to_be_bytes());
        match parse(bytes) {
            Ok(package) => {
                assert!(ok, "restart limit {limit} accepted");
                assert_eq!(package.vms()[0].restart_limit, limit);
            }
            Err(error) => {
                assert!(!ok, "restart limit {limit} refused: {error}");
                let problem = Problem::OutOfRange { value: limit.into(), min: 0, max: 100 };
                assert_eq!(error, vm_error(0, Some("personal"), "restart-limit", problem));
                assert_eq!(
                    error.to_string(),
                    format!("vm@0 (\"personal\"): restart-limit: must be 0..=100, not {limit}")
                );
            }
        }
    }
}

#[test]
fn a_missing_name_leaves_the_vm_unnamed() {
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "vm-name", "vm-nomo");
    assert_eq!(parse_err(bytes).to_string(), "vm@0: vm-name: missing");
}

#[test]
fn an_unknown_property_is_refused() {
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "initrd", "initrx");
    assert_eq!(parse_err(bytes).to_string(), "vm@0 (\"personal\"): initrx: unknown property");
}

#[test]
fn vcpus_must_be_one_to_max() {
    for (vcpus, max) in [(0u32, 8u64), (9, 8)] {
        let mut bytes = two_vm_package();
        patch(&mut bytes, "/vm@1", format::prop::VCPUS, &vcpus.to_be_bytes());
        let error = parse_err(bytes);
        let problem = Problem::OutOfRange { value: vcpus.into(), min: 1, max };
        assert_eq!(error, vm_error(1, Some("corporate"), "vcpus", problem));
        assert_eq!(
            error.to_string(),
            format!("vm@1 (\"corporate\"): vcpus: must be 1..=8, not {vcpus}")
        );
    }
}

#[test]
fn memory_must_be_whole_2_mib_blocks() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@0", format::prop::MEMORY_MIB, &257u32.to_be_bytes());
    assert_eq!(
        parse_err(bytes).to_string(),
        "vm@0 (\"personal\"): memory-mib: must be a positive multiple of 2, not 257"
    );
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@0", format::prop::MEMORY_MIB, &0u32.to_be_bytes());
    assert!(matches!(
        parse_err(bytes),
        PackageError::Vm {
            property: "memory-mib",
            problem: Problem::NotMultiple { value: 0, of: 2 },
            ..
        }
    ));
}

#[test]
fn another_format_version_is_refused() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/", format::prop::FORMAT_VERSION, &3u32.to_be_bytes());
    let error = parse_err(bytes);
    assert_eq!(error, PackageError::Version { found: 3 });
    assert_eq!(error.to_string(), "format version 3 is not supported (this Duet reads version 2)");
    // Version 1, before the blob table, is refused too, with a way out.
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/", format::prop::FORMAT_VERSION, &1u32.to_be_bytes());
    assert_eq!(
        parse_err(bytes).to_string(),
        "format version 1 is not supported (this Duet reads version 2); rebuild the package \
         with this Duet's duet-pack"
    );
}

#[test]
fn another_compatible_is_not_a_package() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/", format::prop::COMPATIBLE, b"duet,persona-packagf\0");
    assert_eq!(parse_err(bytes), PackageError::NotAPackage);
}

#[test]
fn a_package_size_smaller_than_the_table_is_refused() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/", format::prop::PACKAGE_SIZE, &16u64.to_be_bytes());
    let error = parse_err(bytes);
    assert!(
        matches!(
            error,
            PackageError::Root {
                property: "duet,package-size",
                problem: Problem::OutOfRange { value: 16, .. }
            }
        ),
        "{error}"
    );
}

#[test]
fn a_kernel_without_the_image_magic_is_refused() {
    let mut bytes = two_vm_package();
    bytes[0x6000 + format::IMAGE_MAGIC_OFFSET] = b'X';
    assert_eq!(
        parse_err(bytes).to_string(),
        "blob@2: extent: is not an arm64 Linux Image (no \"ARM\\x64\" magic at offset 0x38)"
    );
}

#[test]
fn bad_names_and_roles_are_refused() {
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@0", format::prop::NAME, b"Personal\0");
    assert_eq!(
        parse_err(bytes).to_string(),
        "vm@0: vm-name: \"Personal\" is not 1 to 32 characters of a-z, 0-9 and -"
    );
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@1", format::prop::ROLE, b"executive\0");
    assert_eq!(
        parse_err(bytes).to_string(),
        "vm@1 (\"corporate\"): role: unknown role \"executive\" (expected \"personal\" or \
         \"corporate\")"
    );
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/vm@1", format::prop::CMDLINE, b"\x01");
    assert_eq!(parse_err(bytes), vm_error(1, Some("corporate"), "cmdline", Problem::NotAString));
}

#[test]
fn two_vms_with_one_name_are_refused() {
    let mut bytes = two_vm_package();
    // "personal" and "corporate" differ in length; make vm@1 "personal"
    // by shortening its string in place (a NUL, then padding).
    let range = value_range(&bytes, "/vm@1", format::prop::NAME);
    let mut name = b"personal\0\0".to_vec();
    name.truncate(range.len());
    bytes[range.clone()].copy_from_slice(&name);
    let error = parse_err(bytes);
    // Two NULs at the end are not one string: the reader says so first.
    assert_eq!(error, vm_error(1, None, "vm-name", Problem::NotAString));

    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 3));
    let text = "[[vm]]\nname = \"home\"\nrole = \"personal\"\nkernel = \"Image\"\nmemory_mib = 2\n\
                vcpus = 1\n[[vm]]\nname = \"work\"\nrole = \"corporate\"\nkernel = \"Image\"\n\
                memory_mib = 2\nvcpus = 1\n";
    let mut bytes = write_package(&Manifest::parse(text, dir.path()).unwrap()).unwrap();
    patch(&mut bytes, "/vm@1", format::prop::NAME, b"home\0");
    let error = parse_err(bytes);
    assert_eq!(error, vm_error(1, Some("home"), "vm-name", Problem::SameName { other: 0 }));
    assert_eq!(error.to_string(), "vm@1 (\"home\"): vm-name: vm@0 has the same name");
}

/// A manifest of `count` VMs built directly, skipping the manifest's own
/// count check, to see the reader's.
fn unchecked_manifest(dir: &Scratch, count: usize) -> Manifest {
    let kernel = dir.write("Image", &fake_kernel(4096, 4));
    let vm = |index: usize| VmManifest {
        name: format!("vm{index}"),
        role: Role::Corporate,
        kernel: kernel.clone(),
        initrd: None,
        cmdline: String::new(),
        memory_mib: 2,
        vcpus: 1,
        on_reset: ResetPolicy::Restart,
        restart_limit: format::DEFAULT_RESTART_LIMIT,
        power: Default::default(),
        disk_mib: None,
        net: None,
        colour: 0,
    };
    Manifest {
        origin: "unchecked".into(),
        vms: (0..count).map(vm).collect(),
        foreground: 0,
        vms_may_talk: false,
        lock_after_idle_seconds: 60,
    }
}

#[test]
fn the_reader_wants_one_to_eight_vms() {
    let dir = Scratch::new();
    let none = write_package(&unchecked_manifest(&dir, 0)).unwrap();
    assert_eq!(parse_err(none), PackageError::NoVms);
    let eight = write_package(&unchecked_manifest(&dir, 8)).unwrap();
    assert_eq!(parse(eight).unwrap().vms().len(), 8);
    let nine = write_package(&unchecked_manifest(&dir, 9)).unwrap();
    assert_eq!(parse_err(nine), PackageError::TooManyVms);
}

#[test]
fn no_damage_to_the_table_makes_the_reader_panic() {
    // Every byte of the table, set to values that are tokens, lengths and
    // offsets in disguise, then every truncation: each gives Ok or Err.
    // The copies are leaked (the reader wants 'static bytes); a few MiB.
    let (_dir, path) = two_vm_setup();
    let mut manifest = Manifest::load(&path).unwrap();
    // Small images keep the leaked copies small.
    manifest.vms.truncate(1);
    manifest.vms[0].initrd = None;
    let dir = Scratch::new();
    manifest.vms[0].kernel = dir.write("Image", &fake_kernel(64, 5));
    let good = write_package(&manifest).unwrap();
    let table_size = parse(good.clone()).unwrap().table_size();
    let mut accepted = 0;
    for at in 0..table_size {
        for value in [0x00, 0x01, 0x02, 0x03, 0x09, 0x10, 0x7f, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[at] = value;
            accepted += usize::from(parse(bytes).is_ok());
        }
    }
    for len in 0..=table_size + 8 {
        assert!(parse(good[..len].to_vec()).is_err());
    }
    // Then a few bytes at once, at places and values from a fixed-seed
    // generator, so runs are repeatable.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    for _ in 0..2000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next(4) {
            bytes[next(table_size)] = next(256) as u8;
        }
        let _ = parse(bytes);
    }
    // Padding bytes of strings and unused header fields may change freely;
    // most changes must be caught.
    assert!(accepted < table_size * 9 / 4, "{accepted} damaged tables accepted");
}

/// Two VMs alike but for their names, with kernels `a/Image` and `b/Image`
/// and initrds `a/initrd` and `b/initrd`, of the given contents.
fn two_alike(dir: &Scratch, kernels: [&[u8]; 2], initrds: [&[u8]; 2]) -> Vec<u8> {
    let mut text = String::new();
    for (index, name) in ["a", "b"].into_iter().enumerate() {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        dir.write(&format!("{name}/Image"), kernels[index]);
        dir.write(&format!("{name}/initrd"), initrds[index]);
        text += &format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"personal\"\nkernel = \"{name}/Image\"\n\
             initrd = \"{name}/initrd\"\nmemory_mib = 64\nvcpus = 1\n"
        );
    }
    write_package(&Manifest::parse(&text, dir.path()).unwrap()).unwrap()
}

/// `len` rounded up to the package's alignment.
fn aligned(len: usize) -> usize {
    len.next_multiple_of(format::ALIGN as usize)
}

#[test]
fn identical_images_are_stored_once_and_both_vms_read_them() {
    let dir = Scratch::new();
    let kernel = fake_kernel(70_000, 7);
    let initrd = vec![0x3c; 9000];
    let shared = two_alike(&dir, [&kernel, &kernel], [&initrd, &initrd]);
    // The same kernel, one byte different for b: both kernels are stored.
    let mut other = kernel.clone();
    other[69_999] ^= 1;
    let separate = two_alike(&dir, [&kernel, &other], [&initrd, &initrd]);
    // Storing the kernel once saves exactly its padded size.
    assert_eq!(separate.len() - shared.len(), aligned(kernel.len()));

    let package = parse(shared).unwrap();
    let kinds: Vec<_> = package.blobs().iter().map(|blob| blob.kind).collect();
    assert_eq!(kinds, [BlobKind::Kernel, BlobKind::Initrd]);
    let [a, b] = package.vms() else { panic!("two VMs") };
    // The very same bytes of the package, and the bytes the files hold.
    assert_eq!(a.kernel.as_ptr(), b.kernel.as_ptr());
    assert_eq!(a.initrd.unwrap().as_ptr(), b.initrd.unwrap().as_ptr());
    assert_eq!((a.kernel, b.kernel), (&kernel[..], &kernel[..]));
    assert_eq!((a.initrd.unwrap(), b.initrd.unwrap()), (&initrd[..], &initrd[..]));

    let package = parse(separate).unwrap();
    assert_eq!(package.blobs().len(), 3);
    let [a, b] = package.vms() else { panic!("two VMs") };
    assert_eq!((a.kernel, b.kernel), (&kernel[..], &other[..]));
    assert_eq!(a.initrd.unwrap().as_ptr(), b.initrd.unwrap().as_ptr());
}

#[test]
fn different_images_of_the_same_size_are_all_stored() {
    let dir = Scratch::new();
    let (k1, k2) = (fake_kernel(8192, 1), fake_kernel(8192, 2));
    let (i1, i2) = (vec![1u8; 4096], vec![2u8; 4096]);
    let package = parse(two_alike(&dir, [&k1, &k2], [&i1, &i2])).unwrap();
    assert_eq!(package.blobs().len(), 4);
    let [a, b] = package.vms() else { panic!("two VMs") };
    assert_eq!((a.kernel, b.kernel), (&k1[..], &k2[..]));
    assert_eq!((a.initrd.unwrap(), b.initrd.unwrap()), (&i1[..], &i2[..]));
}

#[test]
fn a_kernel_and_an_initrd_with_the_same_bytes_are_two_blobs() {
    // A kernel never shares a blob with an initrd, so every blob has one
    // kind and a VM's kernel can never be an initrd.
    let dir = Scratch::new();
    let image = fake_kernel(8192, 3);
    let package = parse(two_alike(&dir, [&image, &image], [&image, &image])).unwrap();
    let kinds: Vec<_> = package.blobs().iter().map(|blob| blob.kind).collect();
    assert_eq!(kinds, [BlobKind::Kernel, BlobKind::Initrd]);
}

#[test]
fn a_reference_to_a_missing_blob_is_refused() {
    let mut bytes = two_vm_package();
    patch_reference(&mut bytes, 1, format::prop::KERNEL, 3);
    let error = parse_err(bytes);
    let problem = Problem::NoSuchBlob { index: 3, count: 3 };
    assert_eq!(error, vm_error(1, Some("corporate"), "kernel", problem));
    assert_eq!(
        error.to_string(),
        "vm@1 (\"corporate\"): kernel: blob@3 does not exist (the package has 3 blobs)"
    );
    let mut bytes = two_vm_package();
    patch_reference(&mut bytes, 0, format::prop::INITRD, u32::MAX);
    let problem = Problem::NoSuchBlob { index: u32::MAX, count: 3 };
    assert_eq!(parse_err(bytes), vm_error(0, Some("personal"), "initrd", problem));
}

#[test]
fn a_reference_to_a_blob_of_the_other_kind_is_refused() {
    let mut bytes = two_vm_package();
    patch_reference(&mut bytes, 1, format::prop::KERNEL, 1);
    let error = parse_err(bytes);
    let problem =
        Problem::WrongKind { index: 1, found: BlobKind::Initrd, expected: BlobKind::Kernel };
    assert_eq!(error, vm_error(1, Some("corporate"), "kernel", problem));
    assert_eq!(
        error.to_string(),
        "vm@1 (\"corporate\"): kernel: blob@1 is of kind initrd, not kernel"
    );
    let mut bytes = two_vm_package();
    patch_reference(&mut bytes, 0, format::prop::INITRD, 2);
    let problem =
        Problem::WrongKind { index: 2, found: BlobKind::Kernel, expected: BlobKind::Initrd };
    assert_eq!(parse_err(bytes), vm_error(0, Some("personal"), "initrd", problem));
    // A blob's kind must be one the reader knows.
    let mut bytes = two_vm_package();
    patch(&mut bytes, "/blob@1", format::prop::KIND, b"initrc\0");
    assert_eq!(
        parse_err(bytes).to_string(),
        "blob@1: kind: unknown kind \"initrc\" (expected \"kernel\" or \"initrd\")"
    );
}

#[test]
fn overlapping_blobs_are_refused() {
    // blob@1 moved onto blob@0 (5000 bytes at 0x1000), then onto its own
    // start, then blob@2 into blob@1 (9000 bytes at 0x3000).
    for (blob, offset, previous_end) in [(1, 0x1000, 0x1000 + 5000), (2, 0x4000, 0x3000 + 9000)] {
        let mut bytes = two_vm_package();
        let size = if blob == 1 { 9000 } else { 70_000 };
        patch_extent(&mut bytes, blob, offset, size);
        let problem = Problem::Overlap { offset, previous: blob - 1, previous_end };
        assert_eq!(parse_err(bytes), blob_error(blob, "extent", problem));
    }
    // Blobs are in index order: one before the blob before it overlaps too.
    let mut bytes = two_vm_package();
    patch_extent(&mut bytes, 2, 0x2000, 4096);
    let error = parse_err(bytes);
    assert_eq!(
        error.to_string(),
        "blob@2: extent: offset 0x2000 lies before the end of blob@1 (0x5328); blobs lie in \
         index order and do not overlap"
    );
}

#[test]
fn a_blob_no_vm_uses_is_refused() {
    // corporate boots personal's kernel: blob@2 is left over.
    let mut bytes = two_vm_package();
    patch_reference(&mut bytes, 1, format::prop::KERNEL, 0);
    let error = parse_err(bytes);
    assert_eq!(error, PackageError::UnusedBlob { index: 2 });
    assert_eq!(error.to_string(), "blob@2 is no VM's image");
}

#[test]
fn blob_nodes_come_first_and_in_order() {
    let mut bytes = two_vm_package();
    rename_node(&mut bytes, "blob@1", "blob@3");
    let error = parse_err(bytes);
    assert_eq!(error, PackageError::UnexpectedNode { name: "blob@3", parent: Parent::Root });
    assert_eq!(
        error.to_string(),
        "unexpected node \"blob@3\" (the nodes are blob@0, blob@1, ... then vm@0, vm@1, ..., \
         each in order)"
    );
    let mut bytes = two_vm_package();
    rename_property(&mut bytes, "extent", "extant");
    assert_eq!(parse_err(bytes), blob_error(0, "extent", Problem::Missing));
}

#[test]
fn the_reader_wants_at_most_16_blobs() {
    // Nine VMs with a kernel and an initrd each, all different: 18 blobs,
    // refused at the 17th, before the VMs are counted.
    let dir = Scratch::new();
    let mut manifest = unchecked_manifest(&dir, 9);
    for (index, vm) in manifest.vms.iter_mut().enumerate() {
        vm.kernel = dir.write(&format!("Image{index}"), &fake_kernel(64, index as u8));
        vm.initrd = Some(dir.write(&format!("initrd{index}"), &[index as u8; 16]));
    }
    assert_eq!(parse_err(write_package(&manifest).unwrap()), PackageError::TooManyBlobs);
    manifest.vms.truncate(8);
    let package = parse(write_package(&manifest).unwrap()).unwrap();
    assert_eq!(package.blobs().len(), format::MAX_BLOBS);
}
