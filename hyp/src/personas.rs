//! The persona package: which VMs to run and their images, as one file that
//! the bootloader loads next to Duet (QEMU `-initrd`; the device tree's
//! `/chosen/linux,initrd-start` and `linux,initrd-end` say where it is).
//! This module reads and checks it; `duet-pack` writes it on the host.
//!
//! # Layout
//!
//! ```text
//! offset 0      the persona table: a flattened device tree
//!               zero padding to the next 4 KiB boundary
//! 4 KiB * k     blob@0 (a kernel or an initrd), zero padding to 4 KiB
//! ...           more blobs, in index order, each on a 4 KiB boundary
//! ```
//!
//! The table's root node has `compatible = "duet,persona-package"`,
//! `duet,format-version = <2>` and `duet,package-size = <hi lo>` (the whole
//! package in bytes). Its children are first the blobs, `blob@<index>`,
//! each with `kind` and `extent` (see [`blobs`]): every image the package
//! holds, stored once however many VMs use it. Then one child
//! `vm@<index>` per VM, indices from 0 in order, each with `vm-name` and
//! `role` (strings), `memory-mib` and `vcpus` (one cell each), `cmdline` (a
//! string, maybe empty), `on-reset` (a string) and `restart-limit` (one
//! cell), `kernel` and, optionally, `initrd`, each one cell, the index of a
//! blob of that kind; and, each optional, the power settings
//! `priority`, `background-cpu-percent`, `background-timer-slack-ms`,
//! `background-may-use-idle` and `screen-off-timer-slack-ms` (one cell
//! each), and `colour` (one cell,
//! `0x00RRGGBB`; default by role). The root may name the VM in the
//! foreground at boot, `duet,foreground-vm = <index>` (default 0), and how
//! long the screen stays unlocked without input,
//! `duet,lock-after-idle-seconds` (one cell, default 60, 0 = never).
//! Names and limits live in [`format`] and [`power`].
//!
//! # Trust
//!
//! None. The package comes from storage an attacker may have written, so
//! [`PersonaPackage::parse`] checks everything it hands on: the tree's
//! structure (before the `fdt` crate sees it, see `tree`), every property's
//! presence, size and value, every blob's place inside the package and
//! every VM's reference to a blob.
//! It never panics, whatever the bytes.

pub mod blobs;
pub mod format;
pub mod power;
pub mod screen;
pub mod tree;

pub use blobs::{Blob, BlobKind};
pub use tree::{Block, TreeError};

use blobs::Blobs;
use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;
use format::prop;
use power::PowerSpec;

/// What a VM is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The user's own persona.
    Personal,
    /// The company's persona.
    Corporate,
}

impl Role {
    /// The role a manifest or package names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            format::ROLE_PERSONAL => Some(Self::Personal),
            format::ROLE_CORPORATE => Some(Self::Corporate),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Personal => format::ROLE_PERSONAL,
            Self::Corporate => format::ROLE_CORPORATE,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What Duet does with a VM whose guest resets itself or crashes. Either
/// way the other VMs run on undisturbed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResetPolicy {
    /// Boot the VM again, fresh from its images, up to the VM's
    /// [`VmSpec::restart_limit`] times in a row. A manifest's default.
    #[default]
    Restart,
    /// Leave the VM off.
    StayOff,
}

impl ResetPolicy {
    /// The policy a manifest or package names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            format::ON_RESET_RESTART => Some(Self::Restart),
            format::ON_RESET_STAY_OFF => Some(Self::StayOff),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Restart => format::ON_RESET_RESTART,
            Self::StayOff => format::ON_RESET_STAY_OFF,
        }
    }
}

impl fmt::Display for ResetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One VM as the package describes it, checked. The images are slices of
/// the package, which stays in memory for as long as Duet runs; VMs with
/// identical images get the same slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmSpec {
    pub name: &'static str,
    pub role: Role,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub cmdline: &'static str,
    /// What to do when the guest resets or crashes.
    pub on_reset: ResetPolicy,
    /// Under [`ResetPolicy::Restart`], how many restarts in a row Duet
    /// allows before it leaves the VM off, so a guest that reboots in a
    /// loop cannot keep a CPU busy for ever; 0 allows none. At most
    /// [`format::MAX_RESTART_LIMIT`].
    pub restart_limit: u32,
    /// An arm64 Linux `Image` (its magic checked).
    pub kernel: &'static [u8],
    pub initrd: Option<&'static [u8]>,
    /// How it is scheduled in the background, and its priority.
    pub power: PowerSpec,
    /// The VM's disk: the partition of the physical disk named like the
    /// VM, at least this many MiB. `None`: no disk.
    pub disk_mib: Option<u32>,
    /// The VM's NIC on Duet's switch. `None`: no NIC.
    pub net: Option<Net>,
    /// Its colour on the trusted indicator and the lock screen.
    pub colour: screen::Colour,
}

/// A VM's NIC: where its frames may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Only to other VMs, if the package lets VMs talk.
    Local,
    /// Also to the physical network.
    Uplink,
}

impl Net {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            format::NET_LOCAL => Some(Self::Local),
            format::NET_UPLINK => Some(Self::Uplink),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Local => format::NET_LOCAL,
            Self::Uplink => format::NET_UPLINK,
        }
    }
}

impl VmSpec {
    /// Fills the unused slots of [`PersonaPackage`]'s fixed list.
    const UNUSED: VmSpec = VmSpec {
        name: "",
        role: Role::Personal,
        memory_mib: 0,
        vcpus: 0,
        cmdline: "",
        on_reset: ResetPolicy::Restart,
        restart_limit: 0,
        kernel: &[],
        initrd: None,
        power: PowerSpec::DEFAULT,
        disk_mib: None,
        net: None,
        colour: 0,
    };
}

/// What is wrong with one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Repeated,
    /// The node may not carry a property of this name.
    Unknown,
    /// The value has the wrong number of bytes.
    Length {
        expected: usize,
        found: usize,
    },
    /// Not one NUL-terminated UTF-8 string.
    NotAString,
    BadName(&'static str),
    /// Another VM, at this index, has the same name.
    SameName {
        other: usize,
    },
    BadRole(&'static str),
    BadResetPolicy(&'static str),
    BadNet(&'static str),
    OutOfRange {
        value: u64,
        min: u64,
        max: u64,
    },
    NotMultiple {
        value: u64,
        of: u64,
    },
    Cmdline(format::CmdlineError),
    Unaligned {
        offset: u64,
    },
    Overflow {
        offset: u64,
        size: u64,
    },
    PastEnd {
        offset: u64,
        size: u64,
        end: u64,
    },
    /// The image would start inside the persona table (which, padded,
    /// ends at `table_end`).
    InTable {
        offset: u64,
        table_end: u64,
    },
    Empty,
    NotAnImage,
    /// The blob would start before the end of the blob before it.
    Overlap {
        offset: u64,
        previous: usize,
        previous_end: u64,
    },
    BadKind(&'static str),
    /// A VM names a blob the package does not have.
    NoSuchBlob {
        index: u32,
        count: usize,
    },
    /// A VM names a blob of another kind (its `kernel` an initrd, say).
    WrongKind {
        index: u32,
        found: BlobKind,
        expected: BlobKind,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Missing => write!(f, "missing"),
            Self::Repeated => write!(f, "appears more than once"),
            Self::Unknown => write!(f, "unknown property"),
            Self::Length { expected, found } => {
                write!(f, "must be {expected} bytes, not {found}")
            }
            Self::NotAString => write!(f, "is not one NUL-terminated UTF-8 string"),
            Self::BadName(name) => write!(
                f,
                "{name:?} is not 1 to {} characters of a-z, 0-9 and -",
                format::MAX_NAME_LEN
            ),
            Self::SameName { other } => write!(f, "vm@{other} has the same name"),
            Self::BadRole(role) => write!(
                f,
                "unknown role {role:?} (expected {:?} or {:?})",
                format::ROLE_PERSONAL,
                format::ROLE_CORPORATE
            ),
            Self::BadResetPolicy(policy) => write!(
                f,
                "unknown policy {policy:?} (expected {:?} or {:?})",
                format::ON_RESET_RESTART,
                format::ON_RESET_STAY_OFF
            ),
            Self::BadNet(net) => write!(
                f,
                "unknown network {net:?} (expected {:?} or {:?})",
                format::NET_LOCAL,
                format::NET_UPLINK
            ),
            Self::OutOfRange { value, min, max } => {
                write!(f, "must be {min}..={max}, not {value}")
            }
            Self::NotMultiple { value, of } => {
                write!(f, "must be a positive multiple of {of}, not {value}")
            }
            Self::Cmdline(error) => write!(f, "{error}"),
            Self::Unaligned { offset } => {
                write!(f, "offset {offset:#x} is not a multiple of {:#x}", format::ALIGN)
            }
            Self::Overflow { offset, size } => {
                write!(f, "offset {offset:#x} + size {size:#x} overflows")
            }
            Self::PastEnd { offset, size, end } => write!(
                f,
                "offset {offset:#x} + size {size:#x} runs past the package end ({end:#x})"
            ),
            Self::InTable { offset, table_end } => write!(
                f,
                "offset {offset:#x} lies inside the persona table (which ends at {table_end:#x})"
            ),
            Self::Empty => write!(f, "is empty"),
            Self::NotAnImage => write!(
                f,
                "is not an arm64 Linux Image (no \"ARM\\x64\" magic at offset {:#x})",
                format::IMAGE_MAGIC_OFFSET
            ),
            Self::Overlap { offset, previous, previous_end } => write!(
                f,
                "offset {offset:#x} lies before the end of blob@{previous} ({previous_end:#x}); \
                 blobs lie in index order and do not overlap"
            ),
            Self::BadKind(kind) => write!(
                f,
                "unknown kind {kind:?} (expected {:?} or {:?})",
                format::KIND_KERNEL,
                format::KIND_INITRD
            ),
            Self::NoSuchBlob { index, count } => {
                write!(f, "blob@{index} does not exist (the package has {count} blobs)")
            }
            Self::WrongKind { index, found, expected } => {
                write!(f, "blob@{index} is of kind {found}, not {expected}")
            }
        }
    }
}

/// Where an unexpected node sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    Root,
    Vm(usize),
    Blob(usize),
}

/// Why a package was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageError {
    /// The persona table is not a well-formed device tree.
    Tree(TreeError),
    /// The table's root is not a persona package's.
    NotAPackage,
    /// A format version this Duet does not read.
    Version {
        found: u32,
    },
    /// The package says it is longer than the bytes that were loaded.
    Truncated {
        declared: u64,
        loaded: u64,
    },
    /// A property of the root node.
    Root {
        property: &'static str,
        problem: Problem,
    },
    /// A node that is not the next `blob@<index>` or `vm@<index>`, or any
    /// node inside a blob or a VM.
    UnexpectedNode {
        name: &'static str,
        parent: Parent,
    },
    NoVms,
    TooManyVms,
    TooManyBlobs,
    /// A property of blob `index`.
    Blob {
        index: usize,
        property: &'static str,
        problem: Problem,
    },
    /// No VM names this blob.
    UnusedBlob {
        index: usize,
    },
    /// A property of VM `index`; `name` once the VM's name has been checked.
    Vm {
        index: usize,
        name: Option<&'static str>,
        property: &'static str,
        problem: Problem,
    },
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Tree(error) => write!(f, "the persona table is not a valid device tree: {error}"),
            Self::NotAPackage => write!(
                f,
                "not a persona package (the root is not compatible with {:?})",
                format::COMPATIBLE
            ),
            Self::Version { found } => {
                write!(
                    f,
                    "format version {found} is not supported (this Duet reads version {})",
                    format::VERSION
                )?;
                if found < format::VERSION {
                    write!(f, "; rebuild the package with this Duet's duet-pack")?;
                }
                Ok(())
            }
            Self::Truncated { declared, loaded } => write!(
                f,
                "the package is {declared:#x} bytes but only {loaded:#x} were loaded (truncated?)"
            ),
            Self::Root { property, problem } => write!(f, "root: {property}: {problem}"),
            Self::UnexpectedNode { name, parent: Parent::Root } => write!(
                f,
                "unexpected node {name:?} (the nodes are blob@0, blob@1, ... then vm@0, vm@1, \
                 ..., each in order)"
            ),
            Self::UnexpectedNode { name, parent: Parent::Vm(index) } => {
                write!(f, "vm@{index}: unexpected node {name:?}")
            }
            Self::UnexpectedNode { name, parent: Parent::Blob(index) } => {
                write!(f, "blob@{index}: unexpected node {name:?}")
            }
            Self::NoVms => write!(f, "the package describes no VMs"),
            Self::TooManyVms => {
                write!(f, "the package describes more than {} VMs", format::MAX_VMS)
            }
            Self::TooManyBlobs => {
                write!(f, "the package holds more than {} blobs", format::MAX_BLOBS)
            }
            Self::Blob { index, property, problem } => {
                write!(f, "blob@{index}: {property}: {problem}")
            }
            Self::UnusedBlob { index } => write!(f, "blob@{index} is no VM's image"),
            Self::Vm { index, name, property, problem } => {
                write!(f, "vm@{index}")?;
                if let Some(name) = name {
                    write!(f, " ({name:?})")?;
                }
                write!(f, ": {property}: {problem}")
            }
        }
    }
}

impl core::error::Error for PackageError {}

/// A checked persona package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonaPackage {
    bytes: &'static [u8],
    table_size: usize,
    blobs: Blobs,
    vms: [VmSpec; format::MAX_VMS],
    vm_count: usize,
    /// The VM in the foreground at boot.
    foreground: usize,
    vms_may_talk: bool,
    /// Seconds without input before the screen locks; 0: never.
    lock_after_idle_seconds: u32,
}

impl PersonaPackage {
    /// Reads and checks the package at the start of `bytes` (a bootloader
    /// may hand over more bytes than the package holds).
    pub fn parse(bytes: &'static [u8]) -> Result<Self, PackageError> {
        let table_size = tree::check(bytes).map_err(PackageError::Tree)?;
        let table = bytes.get(..table_size).unwrap_or_default();
        // `tree::check` guarantees what `Fdt::new` checks, so this error is
        // only a second line of defence.
        let fdt = Fdt::new(table).map_err(|_| PackageError::NotAPackage)?;
        let root = fdt.find_node("/").ok_or(PackageError::NotAPackage)?;
        check_root_identity(root)?;
        let size = package_size(root, bytes.len(), table_size)?;
        let mut package = PersonaPackage {
            bytes: bytes.get(..size).unwrap_or_default(),
            table_size,
            blobs: Blobs::EMPTY,
            vms: [VmSpec::UNUSED; format::MAX_VMS],
            vm_count: 0,
            foreground: 0,
            vms_may_talk: vms_may_talk(root)?,
            lock_after_idle_seconds: lock_after_idle_seconds(root)?,
        };
        for node in root.children() {
            package.add_node(node)?;
        }
        if package.vm_count == 0 {
            return Err(PackageError::NoVms);
        }
        package.blobs.check_all_used()?;
        package.foreground = foreground_vm(root, package.vm_count)?;
        Ok(package)
    }

    /// The VMs, in package order.
    pub fn vms(&self) -> &[VmSpec] {
        &self.vms[..self.vm_count]
    }

    /// The index of the VM in the foreground at boot.
    pub fn foreground(&self) -> usize {
        self.foreground
    }

    /// Seconds without input before the screen locks (0: never).
    pub fn lock_after_idle_seconds(&self) -> u32 {
        self.lock_after_idle_seconds
    }

    /// Whether the VMs' NICs may reach each other (`duet,vms-may-talk`).
    pub fn vms_may_talk(&self) -> bool {
        self.vms_may_talk
    }

    /// The blobs, in package order: every image the package holds, once.
    pub fn blobs(&self) -> &[Blob] {
        self.blobs.as_slice()
    }

    /// The whole package (exactly `duet,package-size` bytes).
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// The persona table's size in bytes, before padding.
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// Reads the root's next child: a blob while no VM has come yet, else
    /// a VM.
    fn add_node(&mut self, node: FdtNode<'_, 'static>) -> Result<(), PackageError> {
        let blob = self.blobs.count();
        if self.vm_count == 0 && is_node_name(node.name, format::BLOB_NODE_PREFIX, blob) {
            let table_end = self.table_end();
            return self.blobs.add(node, self.bytes, table_end);
        }
        self.add_vm(node)
    }

    fn add_vm(&mut self, node: FdtNode<'_, 'static>) -> Result<(), PackageError> {
        let index = self.vm_count;
        if !is_node_name(node.name, format::VM_NODE_PREFIX, index) {
            return Err(PackageError::UnexpectedNode { name: node.name, parent: Parent::Root });
        }
        if index == format::MAX_VMS {
            return Err(PackageError::TooManyVms);
        }
        if let Some(child) = node.children().next() {
            let parent = Parent::Vm(index);
            return Err(PackageError::UnexpectedNode { name: child.name, parent });
        }
        let mut reader = VmReader { node, index, name: None, blobs: &mut self.blobs };
        let spec = reader.read()?;
        if let Some(other) = self.vms[..index].iter().position(|vm| vm.name == spec.name) {
            return Err(reader.error(prop::NAME, Problem::SameName { other }));
        }
        self.vms[index] = spec;
        self.vm_count += 1;
        Ok(())
    }

    /// Where images may start: the table, padded to [`format::ALIGN`].
    fn table_end(&self) -> u64 {
        (self.table_size as u64).next_multiple_of(format::ALIGN)
    }
}

/// Whether `name` is `<prefix><index>` (`vm@3`, `blob@0`), the index
/// written without leading zeros.
fn is_node_name(name: &str, prefix: &str, index: usize) -> bool {
    let Some(digits) = name.strip_prefix(prefix) else {
        return false;
    };
    let canonical = digits == "0" || !digits.starts_with('0');
    canonical && digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse() == Ok(index)
}

fn check_root_identity(root: FdtNode<'_, 'static>) -> Result<(), PackageError> {
    let root_error = |property, problem| PackageError::Root { property, problem };
    let compatible = required(root, prop::COMPATIBLE).and_then(string);
    match compatible {
        Ok(format::COMPATIBLE) => {}
        _ => return Err(PackageError::NotAPackage),
    }
    let version = required(root, prop::FORMAT_VERSION)
        .and_then(cell)
        .map_err(|problem| root_error(prop::FORMAT_VERSION, problem))?;
    if version != format::VERSION {
        return Err(PackageError::Version { found: version });
    }
    let known = [power::prop::FOREGROUND_VM, screen::prop::LOCK_AFTER_IDLE_SECONDS];
    match unknown_property(root, &[prop::ROOT, &known]) {
        Some(name) => Err(root_error(name, Problem::Unknown)),
        None => Ok(()),
    }
}

/// The optional `duet,foreground-vm`: a VM index below `vm_count`.
fn foreground_vm(root: FdtNode<'_, 'static>, vm_count: usize) -> Result<usize, PackageError> {
    let property = power::prop::FOREGROUND_VM;
    let root_error = |problem| PackageError::Root { property, problem };
    let Some(value) = optional(root, property).map_err(root_error)? else {
        return Ok(0);
    };
    let index = cell(value).map_err(root_error)?;
    if index as usize >= vm_count {
        let max = vm_count as u64 - 1;
        return Err(root_error(Problem::OutOfRange { value: index.into(), min: 0, max }));
    }
    Ok(index as usize)
}

/// The optional `duet,lock-after-idle-seconds`: one cell in range.
fn lock_after_idle_seconds(root: FdtNode<'_, 'static>) -> Result<u32, PackageError> {
    let property = screen::prop::LOCK_AFTER_IDLE_SECONDS;
    let root_error = |problem| PackageError::Root { property, problem };
    let Some(value) = optional(root, property).map_err(root_error)? else {
        return Ok(screen::DEFAULT_LOCK_AFTER_IDLE_SECONDS);
    };
    let seconds = cell(value).map_err(root_error)?;
    let max = screen::MAX_LOCK_AFTER_IDLE_SECONDS;
    if seconds > max {
        return Err(root_error(Problem::OutOfRange {
            value: seconds.into(),
            min: 0,
            max: max.into(),
        }));
    }
    Ok(seconds)
}

/// `duet,vms-may-talk`: absent or 0 is no, 1 is yes.
fn vms_may_talk(root: FdtNode<'_, 'static>) -> Result<bool, PackageError> {
    let root_error = |problem| PackageError::Root { property: prop::VMS_MAY_TALK, problem };
    match optional(root, prop::VMS_MAY_TALK).map_err(root_error)? {
        None => Ok(false),
        Some(value) => flag(value).map_err(root_error),
    }
}

/// One cell, 0 or 1.
fn flag(value: &[u8]) -> Result<bool, Problem> {
    match cell(value)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(Problem::OutOfRange { value: other.into(), min: 0, max: 1 }),
    }
}

/// The declared package size, checked against what was loaded.
fn package_size(
    root: FdtNode<'_, 'static>,
    loaded: usize,
    table_size: usize,
) -> Result<usize, PackageError> {
    let root_error = |problem| PackageError::Root { property: prop::PACKAGE_SIZE, problem };
    let declared = required(root, prop::PACKAGE_SIZE).and_then(two_cells).map_err(root_error)?;
    let (loaded, table_size) = (loaded as u64, table_size as u64);
    if declared > loaded {
        return Err(PackageError::Truncated { declared, loaded });
    }
    if declared < table_size {
        let problem = Problem::OutOfRange { value: declared, min: table_size, max: loaded };
        return Err(root_error(problem));
    }
    // At most `loaded`, which came from a usize.
    usize::try_from(declared)
        .map_err(|_| root_error(Problem::Overflow { offset: 0, size: declared }))
}

/// Reads the properties of one `vm@<index>` node.
struct VmReader<'b> {
    node: FdtNode<'b, 'static>,
    index: usize,
    /// Set once checked, so later errors can name the VM.
    name: Option<&'static str>,
    /// The blobs its images come from.
    blobs: &'b mut Blobs,
}

impl VmReader<'_> {
    /// Reads the properties in a fixed order, the name first so that later
    /// errors can name the VM, and unknown properties last, so that a
    /// misspelt property reads as the missing one.
    fn read(&mut self) -> Result<VmSpec, PackageError> {
        let name = self.get(prop::NAME, string)?;
        if !format::is_valid_name(name) {
            return Err(self.error(prop::NAME, Problem::BadName(name)));
        }
        self.name = Some(name);
        let role = self.get(prop::ROLE, role)?;
        let spec = VmSpec {
            name,
            role,
            memory_mib: self.get(prop::MEMORY_MIB, memory_mib)?,
            vcpus: self.get(prop::VCPUS, vcpus)?,
            cmdline: self.get(prop::CMDLINE, cmdline)?,
            on_reset: self.get(prop::ON_RESET, on_reset)?,
            restart_limit: self.get(prop::RESTART_LIMIT, restart_limit)?,
            kernel: self.kernel()?,
            initrd: self.initrd()?,
            power: self.power()?,
            disk_mib: self.optional(prop::DISK_MIB, disk_mib)?,
            net: self.optional(prop::NET, net)?,
            colour: self
                .optional(screen::prop::COLOUR, colour)?
                .unwrap_or(screen::default_colour(role)),
        };
        let known = [screen::prop::COLOUR];
        match unknown_property(self.node, &[prop::VM, power::prop::VM, &known]) {
            Some(unknown) => Err(self.error(unknown, Problem::Unknown)),
            None => Ok(spec),
        }
    }

    /// The power settings: each property optional, one cell in range.
    fn power(&self) -> Result<PowerSpec, PackageError> {
        let mut spec = PowerSpec::DEFAULT;
        for key in power::Key::ALL {
            let property = key.property();
            let fail = |problem| self.error(property, problem);
            if let Some(value) = optional(self.node, property).map_err(fail)? {
                let value = cell(value).map_err(fail)?;
                let value = key.check(value).map_err(|e| {
                    fail(Problem::OutOfRange {
                        value: e.value.into(),
                        min: e.min.into(),
                        max: e.max.into(),
                    })
                })?;
                key.set(&mut spec, value);
            }
        }
        Ok(spec)
    }

    /// The kernel blob (its `Image` magic checked with the blob).
    fn kernel(&mut self) -> Result<&'static [u8], PackageError> {
        let value = required(self.node, prop::KERNEL).map_err(|p| self.error(prop::KERNEL, p))?;
        let image = self.blobs.resolve(value, BlobKind::Kernel);
        image.map_err(|p| self.error(prop::KERNEL, p))
    }

    fn initrd(&mut self) -> Result<Option<&'static [u8]>, PackageError> {
        let value = optional(self.node, prop::INITRD).map_err(|p| self.error(prop::INITRD, p))?;
        let image = value.map(|v| self.blobs.resolve(v, BlobKind::Initrd)).transpose();
        image.map_err(|p| self.error(prop::INITRD, p))
    }

    /// An optional property, decoded.
    fn optional<T>(
        &self,
        property: &'static str,
        decode: impl FnOnce(&'static [u8]) -> Result<T, Problem>,
    ) -> Result<Option<T>, PackageError> {
        optional(self.node, property)
            .and_then(|value| value.map(decode).transpose())
            .map_err(|problem| self.error(property, problem))
    }

    /// A required property, decoded.
    fn get<T>(
        &self,
        property: &'static str,
        decode: impl FnOnce(&'static [u8]) -> Result<T, Problem>,
    ) -> Result<T, PackageError> {
        required(self.node, property)
            .and_then(decode)
            .map_err(|problem| self.error(property, problem))
    }

    fn error(&self, property: &'static str, problem: Problem) -> PackageError {
        PackageError::Vm { index: self.index, name: self.name, property, problem }
    }
}

/// The value of a property that may be absent but not repeated.
fn optional(node: FdtNode<'_, 'static>, name: &str) -> Result<Option<&'static [u8]>, Problem> {
    let mut found = None;
    for property in node.properties().filter(|p| p.name == name) {
        if found.is_some() {
            return Err(Problem::Repeated);
        }
        found = Some(property.value);
    }
    Ok(found)
}

fn required(node: FdtNode<'_, 'static>, name: &str) -> Result<&'static [u8], Problem> {
    optional(node, name)?.ok_or(Problem::Missing)
}

/// The first property of `node` whose name is in none of the `known` lists.
fn unknown_property(node: FdtNode<'_, 'static>, known: &[&[&str]]) -> Option<&'static str> {
    node.properties().map(|p| p.name).find(|name| !known.iter().any(|list| list.contains(name)))
}

fn string(value: &'static [u8]) -> Result<&'static str, Problem> {
    match value.split_last() {
        Some((0, text)) if !text.contains(&0) => {
            core::str::from_utf8(text).map_err(|_| Problem::NotAString)
        }
        _ => Err(Problem::NotAString),
    }
}

fn cell(value: &[u8]) -> Result<u32, Problem> {
    let bytes: [u8; 4] =
        value.try_into().map_err(|_| Problem::Length { expected: 4, found: value.len() })?;
    Ok(u32::from_be_bytes(bytes))
}

fn two_cells(value: &[u8]) -> Result<u64, Problem> {
    let bytes: [u8; 8] =
        value.try_into().map_err(|_| Problem::Length { expected: 8, found: value.len() })?;
    Ok(u64::from_be_bytes(bytes))
}

/// `<offset-hi offset-lo size-hi size-lo>`.
fn range(value: &[u8]) -> Result<(u64, u64), Problem> {
    if value.len() != 16 {
        return Err(Problem::Length { expected: 16, found: value.len() });
    }
    let (offset, size) = value.split_at(8);
    Ok((two_cells(offset)?, two_cells(size)?))
}

fn role(value: &'static [u8]) -> Result<Role, Problem> {
    let name = string(value)?;
    Role::from_name(name).ok_or(Problem::BadRole(name))
}

fn memory_mib(value: &[u8]) -> Result<u32, Problem> {
    let mib = cell(value)?;
    let granule = format::MEMORY_GRANULE_MIB;
    if mib == 0 || !mib.is_multiple_of(granule) {
        let (value, of) = (mib.into(), granule.into());
        return Err(Problem::NotMultiple { value, of });
    }
    Ok(mib)
}

fn vcpus(value: &[u8]) -> Result<u32, Problem> {
    let vcpus = cell(value)?;
    if !(1..=format::MAX_VCPUS).contains(&vcpus) {
        let max = format::MAX_VCPUS.into();
        return Err(Problem::OutOfRange { value: vcpus.into(), min: 1, max });
    }
    Ok(vcpus)
}

fn on_reset(value: &'static [u8]) -> Result<ResetPolicy, Problem> {
    let name = string(value)?;
    ResetPolicy::from_name(name).ok_or(Problem::BadResetPolicy(name))
}

fn restart_limit(value: &[u8]) -> Result<u32, Problem> {
    let limit = cell(value)?;
    if limit > format::MAX_RESTART_LIMIT {
        let max = format::MAX_RESTART_LIMIT.into();
        return Err(Problem::OutOfRange { value: limit.into(), min: 0, max });
    }
    Ok(limit)
}

fn disk_mib(value: &[u8]) -> Result<u32, Problem> {
    let mib = cell(value)?;
    if !(1..=format::MAX_DISK_MIB).contains(&mib) {
        let max = format::MAX_DISK_MIB.into();
        return Err(Problem::OutOfRange { value: mib.into(), min: 1, max });
    }
    Ok(mib)
}

/// One cell, `0x00RRGGBB`.
fn colour(value: &[u8]) -> Result<screen::Colour, Problem> {
    let colour = cell(value)?;
    if colour > 0x00ff_ffff {
        return Err(Problem::OutOfRange { value: colour.into(), min: 0, max: 0x00ff_ffff });
    }
    Ok(colour)
}

fn net(value: &'static [u8]) -> Result<Net, Problem> {
    let name = string(value)?;
    Net::from_name(name).ok_or(Problem::BadNet(name))
}

fn cmdline(value: &'static [u8]) -> Result<&'static str, Problem> {
    let line = string(value)?;
    format::check_cmdline(line).map_err(Problem::Cmdline)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_an_empty_slice() {
        let error = PersonaPackage::parse(&[]).unwrap_err();
        assert_eq!(error, PackageError::Tree(TreeError::TooShort { len: 0 }));
        assert_eq!(
            error.to_string(),
            "the persona table is not a valid device tree: 0 bytes are too few for a device \
             tree header (40)"
        );
    }

    #[test]
    fn rejects_junk() {
        static JUNK: [u8; 4096] = [0x5a; 4096];
        assert_eq!(
            PersonaPackage::parse(&JUNK),
            Err(PackageError::Tree(TreeError::BadMagic { found: 0x5a5a_5a5a }))
        );
    }

    #[test]
    fn rejects_a_device_tree_that_is_not_a_package() {
        let board = include_bytes!("../testdata/qemu-virt-gicv3.dtb");
        assert_eq!(PersonaPackage::parse(board), Err(PackageError::NotAPackage));
    }

    #[test]
    fn vm_node_names_are_canonical() {
        let vm = |name, index| is_node_name(name, format::VM_NODE_PREFIX, index);
        assert!(vm("vm@0", 0));
        assert!(vm("vm@7", 7));
        assert!(!vm("vm@1", 0));
        assert!(!vm("vm@01", 1));
        assert!(!vm("vm@+1", 1));
        assert!(!vm("vm", 0));
        assert!(!vm("cpu@0", 0));
        assert!(!vm("blob@0", 0));
        assert!(is_node_name("blob@15", format::BLOB_NODE_PREFIX, 15));
    }

    #[test]
    fn strings_and_cells_decode_strictly() {
        assert_eq!(string(b"personal\0"), Ok("personal"));
        assert_eq!(string(b"\0"), Ok(""));
        assert_eq!(string(b"personal"), Err(Problem::NotAString));
        assert_eq!(string(b"a\0b\0"), Err(Problem::NotAString));
        assert_eq!(string(b""), Err(Problem::NotAString));
        assert_eq!(cell(&[0, 0, 1, 0]), Ok(256));
        assert_eq!(cell(&[0; 8]), Err(Problem::Length { expected: 4, found: 8 }));
        assert_eq!(range(&[0; 15]), Err(Problem::Length { expected: 16, found: 15 }));
        assert_eq!(vcpus(&[0; 4]), Err(Problem::OutOfRange { value: 0, min: 1, max: 8 }));
        assert_eq!(memory_mib(&[0, 0, 0, 3]), Err(Problem::NotMultiple { value: 3, of: 2 }));
        assert_eq!(role(b"boss\0"), Err(Problem::BadRole("boss")));
        assert_eq!(on_reset(b"restart\0"), Ok(ResetPolicy::Restart));
        assert_eq!(on_reset(b"stay-off\0"), Ok(ResetPolicy::StayOff));
        assert_eq!(on_reset(b"stay_off\0"), Err(Problem::BadResetPolicy("stay_off")));
        assert_eq!(on_reset(b"restart"), Err(Problem::NotAString));
        assert_eq!(restart_limit(&[0; 4]), Ok(0));
        assert_eq!(restart_limit(&[0, 0, 0, 100]), Ok(100));
        let too_many = Problem::OutOfRange { value: 101, min: 0, max: 100 };
        assert_eq!(restart_limit(&[0, 0, 0, 101]), Err(too_many));
        assert_eq!(restart_limit(&[0, 0, 0, 0, 5]), Err(Problem::Length { expected: 4, found: 5 }));
    }

    #[test]
    fn disks_networks_and_the_talk_flag_decode_strictly() {
        assert_eq!(disk_mib(&[0, 0, 0, 64]), Ok(64));
        assert_eq!(disk_mib(&[0; 4]), Err(Problem::OutOfRange { value: 0, min: 1, max: 1 << 20 }));
        let huge = (format::MAX_DISK_MIB + 1).to_be_bytes();
        assert!(matches!(disk_mib(&huge), Err(Problem::OutOfRange { .. })));
        assert_eq!(net(b"uplink\0"), Ok(Net::Uplink));
        assert_eq!(net(b"local\0"), Ok(Net::Local));
        assert_eq!(net(b"wifi\0"), Err(Problem::BadNet("wifi")));
        assert_eq!(
            Problem::BadNet("wifi").to_string(),
            "unknown network \"wifi\" (expected \"local\" or \"uplink\")"
        );
        assert_eq!(colour(&[0, 0x1e, 0x6f, 0xd9]), Ok(0x1e6fd9));
        let too_big = Problem::OutOfRange { value: 0x0100_0000, min: 0, max: 0xff_ffff };
        assert_eq!(colour(&[1, 0, 0, 0]), Err(too_big));
        assert_eq!(flag(&[0, 0, 0, 1]), Ok(true));
        assert_eq!(flag(&[0; 4]), Ok(false));
        assert_eq!(flag(&[0, 0, 0, 2]), Err(Problem::OutOfRange { value: 2, min: 0, max: 1 }));
        for n in [Net::Local, Net::Uplink] {
            assert_eq!(Net::from_name(n.name()), Some(n));
        }
    }

    #[test]
    fn reset_policies_have_one_name_each() {
        for policy in [ResetPolicy::Restart, ResetPolicy::StayOff] {
            assert_eq!(ResetPolicy::from_name(policy.name()), Some(policy));
        }
        assert_eq!(ResetPolicy::Restart.to_string(), "restart");
        assert_eq!(ResetPolicy::StayOff.to_string(), "stay-off");
        assert_eq!(ResetPolicy::from_name("Restart"), None);
        assert_eq!(ResetPolicy::default(), ResetPolicy::Restart);
    }
}
