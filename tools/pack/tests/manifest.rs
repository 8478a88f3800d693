//! The persona manifest: what it accepts, and the message for each mistake.

mod common;

use common::{fake_kernel, two_vm_setup, Scratch, TWO_VMS};
use duet::personas::{ResetPolicy, Role};
use duet_pack::manifest::{
    memory_for_vms, Manifest, ManifestError, Problem, VmProblem, DEFAULT_BOARD_MEMORY_MIB,
};
use std::path::{Path, PathBuf};

/// One VM whose table is `keys`; its kernel `Image` exists in `dir`.
fn one_vm(dir: &Scratch, keys: &str) -> PathBuf {
    dir.write("Image", &fake_kernel(4096, 0));
    dir.write("personas.toml", format!("[[vm]]\n{keys}").as_bytes())
}

const GOOD_KEYS: &str = "name = \"corporate\"\nrole = \"corporate\"\nkernel = \"Image\"\n\
                         memory_mib = 64\nvcpus = 1\n";

/// The keys of [`GOOD_KEYS`] with one line replaced or added.
fn keys_with(key: &str, line: &str) -> String {
    let mut keys: Vec<&str> =
        GOOD_KEYS.lines().filter(|l| !l.starts_with(&format!("{key} "))).collect();
    keys.push(line);
    keys.join("\n")
}

fn load_error(dir: &Scratch, keys: &str) -> ManifestError {
    Manifest::load(&one_vm(dir, keys)).expect_err("the manifest is refused")
}

/// The message without the file name in front.
fn message(error: &ManifestError) -> String {
    error.problem.to_string()
}

#[test]
fn loads_a_good_manifest() {
    let (dir, path) = two_vm_setup();
    let manifest = Manifest::load(&path).unwrap();
    assert_eq!(manifest.origin, path);
    assert_eq!(manifest.vms.len(), 2);
    let personal = &manifest.vms[0];
    assert_eq!(personal.name, "personal");
    assert_eq!(personal.role, Role::Personal);
    assert_eq!(personal.kernel, dir.path().join("Image"));
    assert_eq!(personal.initrd, Some(dir.path().join("initramfs.cpio")));
    assert_eq!(personal.cmdline, "console=ttyAMA0 quiet");
    assert_eq!((personal.memory_mib, personal.vcpus), (256, 2));
    assert_eq!((personal.on_reset, personal.restart_limit), (ResetPolicy::Restart, 3));
    let corporate = &manifest.vms[1];
    assert_eq!(corporate.role, Role::Corporate);
    assert_eq!(corporate.kernel, dir.path().join("mail/Image"));
    assert_eq!(corporate.initrd, None);
    assert_eq!(corporate.cmdline, "");
    assert_eq!((corporate.on_reset, corporate.restart_limit), (ResetPolicy::StayOff, 5));
    assert_eq!(manifest.total_memory_mib(), 384);
    assert_eq!(personal.to_string(), "personal (personal, 2 vCPUs, 256 MiB)");
    assert_eq!(corporate.to_string(), "corporate (corporate, 1 vCPU, 128 MiB)");
}

#[test]
fn parse_takes_paths_from_the_base_directory() {
    let (dir, _) = two_vm_setup();
    let manifest = Manifest::parse(TWO_VMS, dir.path()).unwrap();
    assert_eq!(manifest.origin, Path::new("manifest"));
    assert_eq!(manifest.vms[1].kernel, dir.path().join("mail/Image"));
}

#[test]
fn names_the_file_and_keeps_tomls_position_for_an_unknown_key() {
    let dir = Scratch::new();
    let path = one_vm(&dir, &keys_with("memory_mib", "memry_mib = 64"));
    let error = Manifest::load(&path).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{}: TOML parse error at line 6, column 1", path.display())),
        "{text}"
    );
    assert!(text.contains("unknown field `memry_mib`"), "{text}");
}

#[test]
fn a_missing_key_is_named() {
    let dir = Scratch::new();
    let keys = GOOD_KEYS.replace("vcpus = 1\n", "");
    let text = message(&load_error(&dir, &keys));
    assert!(text.contains("missing field `vcpus`"), "{text}");
}

#[test]
fn a_missing_kernel_is_named_with_its_whole_path() {
    let dir = Scratch::new();
    let path = one_vm(&dir, &keys_with("kernel", "kernel = \"boot/Image\""));
    let error = Manifest::load(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: vm \"corporate\": kernel: file not found: {}",
            path.display(),
            dir.path().join("boot/Image").display()
        )
    );
    assert!(matches!(
        error.problem,
        Problem::Vm { key: "kernel", problem: VmProblem::NotFound(_), .. }
    ));
}

#[test]
fn a_kernel_that_is_not_an_arm64_image_is_refused() {
    let dir = Scratch::new();
    let path = one_vm(&dir, &keys_with("kernel", "kernel = \"vmlinux\""));
    let vmlinux = dir.write("vmlinux", b"\x7fELF and the rest of an ELF file, but no Image header");
    assert_eq!(
        Manifest::load(&path).unwrap_err().to_string(),
        format!(
            "{}: vm \"corporate\": kernel: {} is not an arm64 Linux Image (no \"ARM\\x64\" \
             magic at offset 0x38)",
            path.display(),
            vmlinux.display()
        )
    );
}

#[test]
fn vcpus_must_be_one_to_eight() {
    let dir = Scratch::new();
    for (vcpus, ok) in [(0, false), (1, true), (8, true), (9, false)] {
        let keys = keys_with("vcpus", &format!("vcpus = {vcpus}"));
        let result = Manifest::load(&one_vm(&dir, &keys));
        match result {
            Ok(_) => assert!(ok, "{vcpus} vCPUs accepted"),
            Err(error) => {
                assert!(!ok, "{vcpus} vCPUs refused: {error}");
                assert_eq!(
                    message(&error),
                    format!("vm \"corporate\": vcpus: must be 1..=8, not {vcpus}")
                );
            }
        }
    }
}

#[test]
fn memory_is_a_positive_multiple_of_two_mib() {
    let dir = Scratch::new();
    for mib in [0, 3] {
        let keys = keys_with("memory_mib", &format!("memory_mib = {mib}"));
        assert_eq!(
            message(&load_error(&dir, &keys)),
            format!("vm \"corporate\": memory_mib: must be a positive multiple of 2, not {mib}")
        );
    }
    let negative = message(&load_error(&dir, &keys_with("memory_mib", "memory_mib = -2")));
    assert!(negative.contains("memory_mib"), "{negative}");
}

#[test]
fn names_are_checked() {
    let dir = Scratch::new();
    for bad in ["", "Personal", "mail_2", &"a".repeat(33)] {
        let keys = keys_with("name", &format!("name = {bad:?}"));
        assert_eq!(
            message(&load_error(&dir, &keys)),
            format!("vm {bad:?}: name: must be 1 to 32 characters of a-z, 0-9 and -")
        );
    }
}

#[test]
fn names_are_unique() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 0));
    let text = format!("[[vm]]\n{GOOD_KEYS}\n[[vm]]\n{GOOD_KEYS}");
    let path = dir.write("personas.toml", text.as_bytes());
    assert_eq!(
        message(&Manifest::load(&path).unwrap_err()),
        "vm \"corporate\": name: another VM has the same name"
    );
}

#[test]
fn roles_are_personal_or_corporate() {
    let dir = Scratch::new();
    let keys = keys_with("role", "role = \"boss\"");
    assert_eq!(
        message(&load_error(&dir, &keys)),
        "vm \"corporate\": role: unknown role \"boss\" (expected \"personal\" or \"corporate\")"
    );
}

#[test]
fn a_vm_restarts_by_default() {
    let dir = Scratch::new();
    let manifest = Manifest::load(&one_vm(&dir, GOOD_KEYS)).unwrap();
    assert_eq!(manifest.vms[0].on_reset, ResetPolicy::Restart);
    assert_eq!(manifest.vms[0].restart_limit, 5);
}

#[test]
fn reset_policies_are_restart_or_stay_off() {
    let dir = Scratch::new();
    for (value, policy) in [("restart", ResetPolicy::Restart), ("stay-off", ResetPolicy::StayOff)] {
        let keys = keys_with("on_reset", &format!("on_reset = {value:?}"));
        let manifest = Manifest::load(&one_vm(&dir, &keys)).unwrap();
        assert_eq!(manifest.vms[0].on_reset, policy);
    }
    for bad in ["reboot", "Restart", "stay_off", ""] {
        let keys = keys_with("on_reset", &format!("on_reset = {bad:?}"));
        let error = load_error(&dir, &keys);
        assert_eq!(
            message(&error),
            format!(
                "vm \"corporate\": on_reset: unknown policy {bad:?} (expected \"restart\" or \
                 \"stay-off\")"
            )
        );
        assert!(matches!(
            error.problem,
            Problem::Vm { key: "on_reset", problem: VmProblem::BadResetPolicy(_), .. }
        ));
    }
    let not_a_string = message(&load_error(&dir, &keys_with("on_reset", "on_reset = true")));
    assert!(not_a_string.contains("on_reset = true"), "{not_a_string}");
    assert!(not_a_string.contains("expected a string"), "{not_a_string}");
}

#[test]
fn the_restart_limit_is_0_to_100() {
    let dir = Scratch::new();
    for (limit, ok) in [(0, true), (1, true), (100, true), (101, false), (4_000_000_000, false)] {
        let keys = keys_with("restart_limit", &format!("restart_limit = {limit}"));
        match Manifest::load(&one_vm(&dir, &keys)) {
            Ok(manifest) => {
                assert!(ok, "restart limit {limit} accepted");
                assert_eq!(manifest.vms[0].restart_limit, limit);
            }
            Err(error) => {
                assert!(!ok, "restart limit {limit} refused: {error}");
                assert_eq!(
                    message(&error),
                    format!("vm \"corporate\": restart_limit: must be 0..=100, not {limit}")
                );
            }
        }
    }
    let negative = message(&load_error(&dir, &keys_with("restart_limit", "restart_limit = -1")));
    assert!(negative.contains("restart_limit = -1"), "{negative}");
}

#[test]
fn command_lines_are_short_printable_ascii() {
    let dir = Scratch::new();
    let long = keys_with("cmdline", &format!("cmdline = \"{}\"", "x".repeat(1025)));
    assert_eq!(
        message(&load_error(&dir, &long)),
        "vm \"corporate\": cmdline: is 1025 bytes, more than 1024"
    );
    let newline = keys_with("cmdline", "cmdline = \"quiet\\nsplash\"");
    assert_eq!(
        message(&load_error(&dir, &newline)),
        "vm \"corporate\": cmdline: byte 5 is not printable ASCII"
    );
}

#[test]
fn an_initrd_must_exist_and_hold_something() {
    let dir = Scratch::new();
    let missing = keys_with("initrd", "initrd = \"initrd.cpio\"");
    let error = load_error(&dir, &missing);
    assert!(matches!(
        error.problem,
        Problem::Vm { key: "initrd", problem: VmProblem::NotFound(_), .. }
    ));
    let empty = dir.write("initrd.cpio", b"");
    assert_eq!(
        message(&load_error(&dir, &missing)),
        format!("vm \"corporate\": initrd: {} is empty", empty.display())
    );
}

#[test]
fn there_is_at_least_one_vm_and_at_most_eight() {
    let dir = Scratch::new();
    let none = dir.write("none.toml", b"# nothing yet\n");
    assert_eq!(
        Manifest::load(&none).unwrap_err().to_string(),
        format!("{}: no VMs: add a [[vm]] table", none.display())
    );
    dir.write("Image", &fake_kernel(4096, 0));
    let nine: String = (0..9)
        .map(|i| {
            format!(
                "[[vm]]\n{}\n",
                GOOD_KEYS.replace("corporate\"\nrole", &format!("vm{i}\"\nrole"))
            )
        })
        .collect();
    let path = dir.write("nine.toml", nine.as_bytes());
    assert_eq!(message(&Manifest::load(&path).unwrap_err()), "9 VMs, at most 8 are allowed");
}

#[test]
fn an_unreadable_manifest_is_named() {
    let dir = Scratch::new();
    let path = dir.path().join("absent.toml");
    let text = Manifest::load(&path).unwrap_err().to_string();
    assert!(text.starts_with(&format!("{}: cannot read the manifest: ", path.display())), "{text}");
}

#[test]
fn the_vms_must_fit_the_board() {
    let (_dir, path) = two_vm_setup();
    let mut manifest = Manifest::load(&path).unwrap();
    manifest.vms[0].memory_mib = 2048;
    manifest.vms[1].memory_mib = 1024;
    let error = manifest.validate(memory_for_vms(2048, 0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: memory: the VMs ask for 3072 MiB but the board has 1984 MiB for VMs",
            path.display()
        )
    );
    manifest.vms[0].memory_mib = 960;
    assert!(manifest.validate(1984).is_ok());
}

#[test]
fn duet_and_the_package_take_their_share_of_the_board() {
    assert_eq!(memory_for_vms(2048, 0), 1984);
    assert_eq!(memory_for_vms(2048, 1), 1983);
    assert_eq!(memory_for_vms(2048, 3 << 20), 1981);
    assert_eq!(memory_for_vms(32, 0), 0);
}

#[test]
fn the_default_board_memory_is_qemu_virts() {
    assert_eq!(DEFAULT_BOARD_MEMORY_MIB, 2 * 1024);
}

#[test]
fn the_default_manifest_is_well_formed() {
    // Its images are fetched at run time, so they may be absent here; any
    // other complaint is a mistake in the template.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/default.toml");
    match Manifest::load(&path) {
        Ok(manifest) => assert_eq!(manifest.vms[0].name, "personal"),
        Err(ManifestError {
            problem: Problem::Vm { vm, key, problem: VmProblem::NotFound(_) },
            ..
        }) => assert_eq!((vm.as_str(), key), ("personal", "kernel")),
        Err(error) => panic!("guests/default.toml: {error}"),
    }
}

#[test]
fn disks_and_nics_are_optional_and_checked() {
    let dir = Scratch::new();
    let manifest = Manifest::load(&one_vm(&dir, GOOD_KEYS)).unwrap();
    assert_eq!((manifest.vms[0].disk_mib, manifest.vms[0].net), (None, None));
    assert!(!manifest.vms_may_talk);

    let keys = format!("{GOOD_KEYS}disk_mib = 64\nnic = true\nuplink = true\n");
    let manifest = Manifest::load(&one_vm(&dir, &keys)).unwrap();
    assert_eq!(manifest.vms[0].disk_mib, Some(64));
    assert_eq!(manifest.vms[0].net, Some(duet::personas::Net::Uplink));

    let error = load_error(&dir, &keys_with("disk_mib", "disk_mib = 0"));
    assert_eq!(message(&error), "vm \"corporate\": disk_mib: must be 1..=1048576, not 0");
    let error = load_error(&dir, &keys_with("uplink", "uplink = true"));
    assert_eq!(message(&error), "vm \"corporate\": uplink: uplink = true needs nic = true");
    let error = load_error(&dir, &keys_with("nic", "nic = \"yes\""));
    assert!(message(&error).contains("invalid type"), "{}", message(&error));
}

#[test]
fn colours_are_rgb_and_default_by_role() {
    let dir = Scratch::new();
    let manifest = Manifest::load(&one_vm(&dir, GOOD_KEYS)).unwrap();
    assert_eq!(manifest.vms[0].colour, duet::personas::screen::CORPORATE_COLOUR);
    assert_eq!(manifest.lock_after_idle_seconds, 60);
    let keys = format!("{GOOD_KEYS}colour = \"#A0b1C2\"\n");
    assert_eq!(Manifest::load(&one_vm(&dir, &keys)).unwrap().vms[0].colour, 0xa0b1c2);
    let error = load_error(&dir, &keys_with("colour", "colour = \"orange\""));
    assert_eq!(
        message(&error),
        "vm \"corporate\": colour: \"orange\" must be \"#rrggbb\" (six hexadecimal digits)"
    );
}

#[test]
fn the_screen_table_says_when_to_lock() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 0));
    let text = format!("[screen]\nlock_after_idle_seconds = 0\n\n[[vm]]\n{GOOD_KEYS}");
    let manifest = Manifest::load(&dir.write("p.toml", text.as_bytes())).unwrap();
    assert_eq!(manifest.lock_after_idle_seconds, 0);
    let text = format!("[screen]\nlock_after_idle_seconds = 86401\n\n[[vm]]\n{GOOD_KEYS}");
    let error = Manifest::load(&dir.write("p.toml", text.as_bytes())).unwrap_err();
    assert_eq!(message(&error), "screen: lock_after_idle_seconds: must be 0..=86400, not 86401");
    let text = format!("[screen]\nlock_after = 5\n\n[[vm]]\n{GOOD_KEYS}");
    let error = Manifest::load(&dir.write("p.toml", text.as_bytes())).unwrap_err();
    assert!(message(&error).contains("unknown field `lock_after`"), "{}", message(&error));
}

#[test]
fn the_network_table_says_whether_vms_may_talk() {
    let dir = Scratch::new();
    dir.write("Image", &fake_kernel(4096, 0));
    let text = format!("[network]\nvms_may_talk = true\n\n[[vm]]\n{GOOD_KEYS}");
    let manifest = Manifest::load(&dir.write("p.toml", text.as_bytes())).unwrap();
    assert!(manifest.vms_may_talk);
    let text = format!("[network]\nvms_may_chat = true\n\n[[vm]]\n{GOOD_KEYS}");
    let error = Manifest::load(&dir.write("p.toml", text.as_bytes())).unwrap_err();
    assert!(message(&error).contains("unknown field `vms_may_chat`"), "{}", message(&error));
}
