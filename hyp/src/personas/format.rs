//! The persona package format, named once: the property names, limits and
//! rules that the host packer (`duet-pack`) writes and the hypervisor reads.
//! Both sides take every name and number from here, so they cannot drift.
//!
//! The layout itself is described in [`crate::personas`] and in
//! `docs/persona-package.md`.

use core::fmt;

/// The format version this Duet writes and reads (`duet,format-version`).
///
/// Version 2 keeps the images in a blob table (`blob@<index>` nodes) that
/// VMs name by index, so that VMs with identical images share one copy.
/// Version 1 had each VM's `kernel` and `initrd` give an `<offset size>`
/// of their own; Duet no longer reads it (rebuild the package).
pub const VERSION: u32 = 2;

/// The root node's `compatible` string.
pub const COMPATIBLE: &str = "duet,persona-package";

/// The persona table is padded to this boundary and every image starts on
/// one, so Duet can map images into a VM without copying them first.
pub const ALIGN: u64 = 4096;

/// The most VMs one package may describe.
pub const MAX_VMS: usize = 8;

/// The most blobs one package may hold: a kernel and an initrd for each VM
/// when no two VMs share one.
pub const MAX_BLOBS: usize = 2 * MAX_VMS;

/// The most vCPUs one VM may ask for.
pub const MAX_VCPUS: u32 = crate::vm::layout::MAX_VCPUS as u32;

/// VM memory comes in whole 2 MiB blocks, the size stage 2 maps in one entry.
pub const MEMORY_GRANULE_MIB: u32 = 2;

/// The longest VM name, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// The longest kernel command line, in bytes.
pub const MAX_CMDLINE_LEN: usize = 1024;

/// The most restarts in a row a VM's `restart-limit` may allow.
pub const MAX_RESTART_LIMIT: u32 = 100;

/// A manifest's `restart_limit` when it names none. The package always
/// carries the number.
pub const DEFAULT_RESTART_LIMIT: u32 = 5;

/// The largest disk a VM may ask for, in MiB (1 TiB).
pub const MAX_DISK_MIB: u32 = 1 << 20;

/// VM nodes are named `vm@0`, `vm@1`, ... in order.
pub const VM_NODE_PREFIX: &str = "vm@";

/// Blob nodes are named `blob@0`, `blob@1`, ... in order, before the VMs.
pub const BLOB_NODE_PREFIX: &str = "blob@";

/// Property names.
pub mod prop {
    // On the root node.
    pub const COMPATIBLE: &str = "compatible";
    pub const FORMAT_VERSION: &str = "duet,format-version";
    pub const PACKAGE_SIZE: &str = "duet,package-size";
    /// Optional, one cell: 1 lets the VMs' NICs reach each other.
    pub const VMS_MAY_TALK: &str = "duet,vms-may-talk";
    // On each VM node.
    /// Not `name`: device trees reserve that for the node's own name, and
    /// `dtc` refuses a tree where the two differ.
    pub const NAME: &str = "vm-name";
    pub const ROLE: &str = "role";
    pub const MEMORY_MIB: &str = "memory-mib";
    pub const VCPUS: &str = "vcpus";
    pub const CMDLINE: &str = "cmdline";
    pub const ON_RESET: &str = "on-reset";
    pub const RESTART_LIMIT: &str = "restart-limit";
    /// One cell: the index of the VM's kernel blob.
    pub const KERNEL: &str = "kernel";
    /// Optional, one cell: the index of the VM's initrd blob.
    pub const INITRD: &str = "initrd";
    /// Optional, one cell: the VM's disk, the partition named like the VM.
    pub const DISK_MIB: &str = "disk-mib";
    /// Optional, a string: the VM's NIC, [`super::NET_LOCAL`] or
    /// [`super::NET_UPLINK`]; absent, the VM has none.
    pub const NET: &str = "net";

    // On each blob node.
    /// A string, what the blob is: [`super::KIND_KERNEL`] or
    /// [`super::KIND_INITRD`].
    pub const KIND: &str = "kind";
    /// `<offset-hi offset-lo size-hi size-lo>`: where the blob's bytes lie,
    /// counted from the start of the package.
    pub const EXTENT: &str = "extent";

    /// Every property a root node may carry.
    pub const ROOT: &[&str] = &[COMPATIBLE, FORMAT_VERSION, PACKAGE_SIZE, VMS_MAY_TALK];
    /// Every property a VM node may carry.
    pub const VM: &[&str] = &[
        NAME,
        ROLE,
        MEMORY_MIB,
        VCPUS,
        CMDLINE,
        ON_RESET,
        RESTART_LIMIT,
        KERNEL,
        INITRD,
        DISK_MIB,
        NET,
    ];
    /// Every property a blob node may carry.
    pub const BLOB: &[&str] = &[KIND, EXTENT];
}

/// The values of a blob's `kind` property.
pub const KIND_KERNEL: &str = "kernel";
pub const KIND_INITRD: &str = "initrd";

/// The values of the `role` property.
pub const ROLE_PERSONAL: &str = "personal";
pub const ROLE_CORPORATE: &str = "corporate";

/// The values of the `on-reset` property (and the manifest's `on_reset`).
pub const ON_RESET_RESTART: &str = "restart";
pub const ON_RESET_STAY_OFF: &str = "stay-off";

/// The values of the `net` property: a NIC on the switch only, or one
/// that also reaches the uplink (the physical network).
pub const NET_LOCAL: &str = "local";
pub const NET_UPLINK: &str = "uplink";

/// Where an arm64 Linux `Image` keeps its magic number, and the number.
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";

/// Whether `name` may name a VM: 1 to [`MAX_NAME_LEN`] bytes of `a-z`,
/// `0-9` and `-`, so it is safe in file names, logs and device trees alike.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `bytes` start like an arm64 Linux `Image` (the magic in its header).
pub fn is_arm64_image(bytes: &[u8]) -> bool {
    let end = IMAGE_MAGIC_OFFSET + IMAGE_MAGIC.len();
    bytes.get(IMAGE_MAGIC_OFFSET..end) == Some(&IMAGE_MAGIC[..])
}

/// What is wrong with a kernel command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    TooLong {
        len: usize,
    },
    /// The byte at this index is not printable ASCII (a guest's device tree
    /// carries the line, and Linux expects plain ASCII there).
    NotPrintable {
        at: usize,
    },
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(f, "is {len} bytes, more than {MAX_CMDLINE_LEN}"),
            Self::NotPrintable { at } => write!(f, "byte {at} is not printable ASCII"),
        }
    }
}

impl core::error::Error for CmdlineError {}

/// Checks a kernel command line: at most [`MAX_CMDLINE_LEN`] bytes of
/// printable ASCII. An empty line is fine.
pub fn check_cmdline(cmdline: &str) -> Result<(), CmdlineError> {
    if cmdline.len() > MAX_CMDLINE_LEN {
        return Err(CmdlineError::TooLong { len: cmdline.len() });
    }
    match cmdline.bytes().position(|b| !(b' '..=b'~').contains(&b)) {
        Some(at) => Err(CmdlineError::NotPrintable { at }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("personal"));
        assert!(is_valid_name("mail-2"));
        assert!(is_valid_name(&"a".repeat(MAX_NAME_LEN)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(MAX_NAME_LEN + 1)));
        assert!(!is_valid_name("Personal"));
        assert!(!is_valid_name("mail_2"));
        assert!(!is_valid_name("mail 2"));
    }

    #[test]
    fn image_magic() {
        let mut image = [0u8; 64];
        assert!(!is_arm64_image(&image));
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert!(is_arm64_image(&image));
        assert!(!is_arm64_image(&image[..0x3b]));
    }

    #[test]
    fn cmdlines() {
        assert_eq!(check_cmdline(""), Ok(()));
        assert_eq!(check_cmdline("console=ttyAMA0 quiet"), Ok(()));
        assert_eq!(check_cmdline("quiet\n"), Err(CmdlineError::NotPrintable { at: 5 }));
        let long = "x".repeat(MAX_CMDLINE_LEN + 1);
        assert_eq!(check_cmdline(&long), Err(CmdlineError::TooLong { len: 1025 }));
    }
}
