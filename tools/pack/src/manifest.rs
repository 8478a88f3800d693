//! The persona manifest: the TOML file in which a developer names the VMs a
//! Duet build runs. This module owns its schema and every check that can be
//! made on the host before packing, each failing with an error that names
//! the file, the VM, the key and the problem.
//!
//! ```toml
//! [[vm]]
//! name = "personal"          # a-z, 0-9 and -, 1 to 32 characters, unique
//! role = "personal"          # "personal" or "corporate"
//! kernel = "Image"           # an arm64 Linux Image, relative to this file
//! initrd = "initramfs.cpio"  # optional, relative to this file
//! cmdline = "console=ttyAMA0 quiet"  # optional, printable ASCII, <= 1024 bytes
//! memory_mib = 256           # a positive multiple of 2
//! vcpus = 2                  # 1 to 8
//! on_reset = "restart"       # optional, "restart" (default) or "stay-off"
//! restart_limit = 5          # optional, default 5: restarts in a row, 0 to 100
//! disk_mib = 64              # optional: a disk, the partition named like the VM
//! nic = true                 # optional, default false: a NIC on Duet's switch
//! uplink = true              # optional, default false: the NIC reaches the physical network
//! colour = "#1e6fd9"         # optional: its trusted indicator; default blue (personal), orange (corporate)
//!
//! [network]                  # optional
//! vms_may_talk = false       # default false: VMs' NICs cannot reach each other
//!
//! [screen]                   # optional
//! lock_after_idle_seconds = 60  # default 60, 0 = never, at most 86400
//!
//! [vm.power]                 # optional, every key optional (docs/persona-package.md)
//! priority = 0               # 0 to 15
//! background_cpu_percent = 10     # 1 to 100, default 100
//! background_timer_slack_ms = 50  # 0 to 1000, default 0
//! background_may_use_idle = false # default false
//! screen_off_timer_slack_ms = 1000 # 0 to 1000, default 0: with the screen off, if longer
//! ```
//!
//! A top-level `foreground = "name"` (before the first `[[vm]]`) names the
//! VM in the foreground at boot (the persona the lock screen unlocks into
//! first); by default the first.
//!
//! The rules come from [`duet::personas::format`], the same ones the
//! hypervisor applies when it reads the package.

use duet::personas::format::{self, CmdlineError};
use duet::personas::power::{self, PowerSpec};
use duet::personas::screen::{self, Colour, ColourError};
use duet::personas::{Net, ResetPolicy, Role};
use serde::Deserialize;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// RAM Duet keeps for itself whatever the manifest says: its 32 MiB heap,
/// its image, stacks and page tables, with room to spare.
pub const DUET_RESERVED_MIB: u64 = 64;

/// RAM of the default board (QEMU virt as `cargo xtask run` starts it).
pub const DEFAULT_BOARD_MEMORY_MIB: u64 = duet_boards::default_board().qemu.memory_mib as u64;

/// A checked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Where it came from, as errors name it.
    pub origin: PathBuf,
    pub vms: Vec<VmManifest>,
    /// The index of the VM in the foreground at boot.
    pub foreground: usize,
    /// Whether the VMs' NICs may reach each other.
    pub vms_may_talk: bool,
    /// Seconds without input before the screen locks; 0: never.
    pub lock_after_idle_seconds: u32,
}

/// One VM of a checked manifest. Paths are resolved against the manifest's
/// directory; the kernel was seen to carry the arm64 `Image` magic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmManifest {
    pub name: String,
    pub role: Role,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub on_reset: ResetPolicy,
    pub restart_limit: u32,
    /// Its `[vm.power]` settings, defaults filled in.
    pub power: PowerSpec,
    /// The VM's disk size; `None`: no disk.
    pub disk_mib: Option<u32>,
    /// The VM's NIC; `None`: no NIC.
    pub net: Option<Net>,
    /// Its colour (`0x00RRGGBB`), its role's when the manifest names none.
    pub colour: Colour,
}

/// A manifest that cannot be used: which file, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", origin.display())]
pub struct ManifestError {
    pub origin: PathBuf,
    pub problem: Problem,
}

/// What is wrong with a manifest.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read the manifest: {0}")]
    Read(#[source] io::Error),
    /// TOML syntax, a missing or unknown key, a wrong type: the `toml`
    /// crate's own message, which gives line and column.
    #[error("{0}")]
    Syntax(String),
    #[error("no VMs: add a [[vm]] table")]
    NoVms,
    #[error("{count} VMs, at most {} are allowed", format::MAX_VMS)]
    TooManyVms { count: usize },
    #[error("vm {vm:?}: {key}: {problem}")]
    Vm { vm: String, key: &'static str, problem: VmProblem },
    #[error("screen: lock_after_idle_seconds: must be 0..={max}, not {0}", max = screen::MAX_LOCK_AFTER_IDLE_SECONDS)]
    LockAfterIdle(u32),
    #[error("foreground: no VM is named {0:?}")]
    Foreground(String),
    #[error("memory: the VMs ask for {asked} MiB but the board has {available} MiB for VMs")]
    Memory { asked: u64, available: u64 },
}

/// What is wrong with one key of one VM.
#[derive(Debug, thiserror::Error)]
pub enum VmProblem {
    #[error("must be 1 to {} characters of a-z, 0-9 and -", format::MAX_NAME_LEN)]
    BadName,
    #[error("another VM has the same name")]
    DuplicateName,
    #[error(
        "unknown role {0:?} (expected {personal:?} or {corporate:?})",
        personal = format::ROLE_PERSONAL,
        corporate = format::ROLE_CORPORATE
    )]
    BadRole(String),
    #[error(
        "unknown policy {0:?} (expected {restart:?} or {stay_off:?})",
        restart = format::ON_RESET_RESTART,
        stay_off = format::ON_RESET_STAY_OFF
    )]
    BadResetPolicy(String),
    #[error("{0}")]
    Cmdline(CmdlineError),
    #[error("must be {min}..={max}, not {value}")]
    OutOfRange { value: u32, min: u32, max: u32 },
    #[error("{0}")]
    Power(power::OutOfRange),
    #[error("must be a positive multiple of {granule}, not {0}", granule = format::MEMORY_GRANULE_MIB)]
    Memory(u32),
    #[error("{0:?} {1}")]
    Colour(String, ColourError),
    #[error("uplink = true needs nic = true")]
    UplinkWithoutNic,
    #[error("file not found: {}", .0.display())]
    NotFound(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
    #[error(
        "{} is not an arm64 Linux Image (no \"ARM\\x64\" magic at offset {:#x})",
        .0.display(),
        format::IMAGE_MAGIC_OFFSET
    )]
    NotAnImage(PathBuf),
}

/// The manifest as TOML spells it, before any check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    foreground: Option<String>,
    #[serde(default)]
    vm: Vec<RawVm>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    screen: RawScreen,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScreen {
    lock_after_idle_seconds: u32,
}

impl Default for RawScreen {
    fn default() -> Self {
        RawScreen { lock_after_idle_seconds: screen::DEFAULT_LOCK_AFTER_IDLE_SECONDS }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    vms_may_talk: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    name: String,
    role: String,
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    #[serde(default)]
    cmdline: String,
    memory_mib: u32,
    vcpus: u32,
    on_reset: Option<String>,
    #[serde(default = "default_restart_limit")]
    restart_limit: u32,
    disk_mib: Option<u32>,
    #[serde(default)]
    nic: bool,
    #[serde(default)]
    uplink: bool,
    #[serde(default)]
    power: RawPower,
    colour: Option<String>,
}

/// A `[vm.power]` table; every key optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPower {
    priority: Option<u32>,
    background_cpu_percent: Option<u32>,
    background_timer_slack_ms: Option<u32>,
    background_may_use_idle: Option<bool>,
    screen_off_timer_slack_ms: Option<u32>,
}

impl RawPower {
    /// The settings, checked, in [`power::Key::ALL`] order.
    fn check(&self) -> Result<PowerSpec, (&'static str, VmProblem)> {
        let values = [
            self.priority,
            self.background_cpu_percent,
            self.background_timer_slack_ms,
            self.background_may_use_idle.map(u32::from),
            self.screen_off_timer_slack_ms,
        ];
        let mut spec = PowerSpec::DEFAULT;
        for (key, value) in power::Key::ALL.into_iter().zip(values) {
            if let Some(value) = value {
                let value =
                    key.check(value).map_err(|e| (key.manifest_key(), VmProblem::Power(e)))?;
                key.set(&mut spec, value);
            }
        }
        Ok(spec)
    }
}

fn default_restart_limit() -> u32 {
    format::DEFAULT_RESTART_LIMIT
}

impl Manifest {
    /// Reads and checks the manifest at `path`; relative image paths are
    /// taken from the manifest's directory.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let fail = |problem| ManifestError { origin: path.to_path_buf(), problem };
        let text = std::fs::read_to_string(path).map_err(|e| fail(Problem::Read(e)))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // An absolute base, so messages about images give whole paths.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self::from_text(&text, path, &dir)
    }

    /// Checks manifest text; relative image paths are taken from
    /// `base_dir`. Errors name the origin "manifest".
    pub fn parse(text: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
        Self::from_text(text, Path::new("manifest"), base_dir)
    }

    fn from_text(text: &str, origin: &Path, base_dir: &Path) -> Result<Manifest, ManifestError> {
        let fail = |problem| ManifestError { origin: origin.to_path_buf(), problem };
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| fail(Problem::Syntax(e.to_string())))?;
        check_count(raw.vm.len()).map_err(fail)?;
        let mut vms: Vec<VmManifest> = Vec::with_capacity(raw.vm.len());
        for raw_vm in raw.vm {
            let vm = VmManifest::check(raw_vm, base_dir).map_err(fail)?;
            if vms.iter().any(|other| other.name == vm.name) {
                return Err(fail(vm_problem(&vm.name, "name", VmProblem::DuplicateName)));
            }
            vms.push(vm);
        }
        let foreground = match raw.foreground {
            None => 0,
            Some(name) => match vms.iter().position(|vm| vm.name == name) {
                Some(index) => index,
                None => return Err(fail(Problem::Foreground(name))),
            },
        };
        let vms_may_talk = raw.network.vms_may_talk;
        let lock_after_idle_seconds = raw.screen.lock_after_idle_seconds;
        if lock_after_idle_seconds > screen::MAX_LOCK_AFTER_IDLE_SECONDS {
            return Err(fail(Problem::LockAfterIdle(lock_after_idle_seconds)));
        }
        Ok(Manifest {
            origin: origin.to_path_buf(),
            vms,
            foreground,
            vms_may_talk,
            lock_after_idle_seconds,
        })
    }

    /// Checks that the VMs fit in `available_memory_mib`, the RAM the board
    /// leaves for VMs (see [`memory_for_vms`]).
    pub fn validate(&self, available_memory_mib: u64) -> Result<(), ManifestError> {
        let asked = self.total_memory_mib();
        if asked > available_memory_mib {
            return Err(ManifestError {
                origin: self.origin.clone(),
                problem: Problem::Memory { asked, available: available_memory_mib },
            });
        }
        Ok(())
    }

    /// The memory all VMs ask for.
    pub fn total_memory_mib(&self) -> u64 {
        self.vms.iter().map(|vm| u64::from(vm.memory_mib)).sum()
    }
}

/// The RAM a board of `board_memory_mib` leaves for VMs once Duet has its
/// share and the package (which stays in RAM) is loaded.
pub fn memory_for_vms(board_memory_mib: u64, package_bytes: u64) -> u64 {
    let package_mib = package_bytes.div_ceil(1 << 20);
    board_memory_mib.saturating_sub(DUET_RESERVED_MIB).saturating_sub(package_mib)
}

fn check_count(count: usize) -> Result<(), Problem> {
    match count {
        0 => Err(Problem::NoVms),
        n if n > format::MAX_VMS => Err(Problem::TooManyVms { count }),
        _ => Ok(()),
    }
}

fn vm_problem(vm: &str, key: &'static str, problem: VmProblem) -> Problem {
    Problem::Vm { vm: vm.to_owned(), key, problem }
}

impl VmManifest {
    /// Checks one `[[vm]]` table, key by key, in the order a reader expects.
    fn check(raw: RawVm, base_dir: &Path) -> Result<VmManifest, Problem> {
        let name = raw.name;
        let fail = |key, problem| vm_problem(&name, key, problem);
        if !format::is_valid_name(&name) {
            return Err(fail("name", VmProblem::BadName));
        }
        let role = Role::from_name(&raw.role)
            .ok_or_else(|| fail("role", VmProblem::BadRole(raw.role.clone())))?;
        check_memory(raw.memory_mib).map_err(|p| fail("memory_mib", p))?;
        check_vcpus(raw.vcpus).map_err(|p| fail("vcpus", p))?;
        format::check_cmdline(&raw.cmdline).map_err(|e| fail("cmdline", VmProblem::Cmdline(e)))?;
        let on_reset = match raw.on_reset {
            None => ResetPolicy::default(),
            Some(policy) => ResetPolicy::from_name(&policy)
                .ok_or_else(|| fail("on_reset", VmProblem::BadResetPolicy(policy)))?,
        };
        check_restart_limit(raw.restart_limit).map_err(|p| fail("restart_limit", p))?;
        let power = raw.power.check().map_err(|(key, p)| fail(key, p))?;
        if let Some(mib) = raw.disk_mib {
            check_disk(mib).map_err(|p| fail("disk_mib", p))?;
        }
        let net = match (raw.nic, raw.uplink) {
            (false, true) => return Err(fail("uplink", VmProblem::UplinkWithoutNic)),
            (false, false) => None,
            (true, false) => Some(Net::Local),
            (true, true) => Some(Net::Uplink),
        };
        let colour = match raw.colour {
            None => screen::default_colour(role),
            Some(text) => screen::parse_colour(&text)
                .map_err(|e| fail("colour", VmProblem::Colour(text.clone(), e)))?,
        };
        let kernel = base_dir.join(&raw.kernel);
        check_kernel_file(&kernel).map_err(|p| fail("kernel", p))?;
        let initrd = raw.initrd.map(|path| base_dir.join(path));
        if let Some(initrd) = &initrd {
            check_initrd_file(initrd).map_err(|p| fail("initrd", p))?;
        }
        Ok(VmManifest {
            role,
            kernel,
            initrd,
            cmdline: raw.cmdline,
            memory_mib: raw.memory_mib,
            vcpus: raw.vcpus,
            on_reset,
            restart_limit: raw.restart_limit,
            power,
            disk_mib: raw.disk_mib,
            net,
            colour,
            name,
        })
    }
}

fn check_memory(mib: u32) -> Result<(), VmProblem> {
    if mib == 0 || !mib.is_multiple_of(format::MEMORY_GRANULE_MIB) {
        return Err(VmProblem::Memory(mib));
    }
    Ok(())
}

fn check_vcpus(vcpus: u32) -> Result<(), VmProblem> {
    if !(1..=format::MAX_VCPUS).contains(&vcpus) {
        return Err(VmProblem::OutOfRange { value: vcpus, min: 1, max: format::MAX_VCPUS });
    }
    Ok(())
}

fn check_restart_limit(limit: u32) -> Result<(), VmProblem> {
    if limit > format::MAX_RESTART_LIMIT {
        return Err(VmProblem::OutOfRange { value: limit, min: 0, max: format::MAX_RESTART_LIMIT });
    }
    Ok(())
}

fn check_disk(mib: u32) -> Result<(), VmProblem> {
    if !(1..=format::MAX_DISK_MIB).contains(&mib) {
        return Err(VmProblem::OutOfRange { value: mib, min: 1, max: format::MAX_DISK_MIB });
    }
    Ok(())
}

/// The kernel exists and starts like an arm64 `Image`. Only its header is
/// read; the packer reads the rest.
fn check_kernel_file(path: &Path) -> Result<(), VmProblem> {
    let mut header = Vec::with_capacity(64);
    open(path)?.take(64).read_to_end(&mut header).map_err(|source| unreadable(path, source))?;
    check_kernel_bytes(path, &header)
}

/// The check on a kernel's bytes, shared with the packer.
pub(crate) fn check_kernel_bytes(path: &Path, bytes: &[u8]) -> Result<(), VmProblem> {
    if bytes.is_empty() {
        return Err(VmProblem::Empty(path.to_path_buf()));
    }
    if !format::is_arm64_image(bytes) {
        return Err(VmProblem::NotAnImage(path.to_path_buf()));
    }
    Ok(())
}

/// The initrd exists, is a file and is not empty.
fn check_initrd_file(path: &Path) -> Result<(), VmProblem> {
    let metadata = open(path)?.metadata().map_err(|source| unreadable(path, source))?;
    if !metadata.is_file() {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(unreadable(path, source));
    }
    if metadata.len() == 0 {
        return Err(VmProblem::Empty(path.to_path_buf()));
    }
    Ok(())
}

fn open(path: &Path) -> Result<File, VmProblem> {
    File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => VmProblem::NotFound(path.to_path_buf()),
        _ => unreadable(path, source),
    })
}

fn unreadable(path: &Path, source: io::Error) -> VmProblem {
    VmProblem::Unreadable { path: path.to_path_buf(), source }
}

impl fmt::Display for VmManifest {
    /// One line for humans: `personal (personal, 2 vCPUs, 256 MiB)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.vcpus == 1 { "" } else { "s" };
        write!(
            f,
            "{} ({}, {} vCPU{plural}, {} MiB)",
            self.name, self.role, self.vcpus, self.memory_mib
        )
    }
}
