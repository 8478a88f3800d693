//! The package's blob table: the images (kernels and initrds) a package
//! holds, each stored once, as `blob@<index>` nodes that VMs name by index.
//! Two VMs with byte-identical images share one blob. This module owns the
//! blob types, the checks of the blob nodes and of the VMs' references to
//! them.
//!
//! A blob node carries `kind` (`"kernel"` or `"initrd"`) and `extent`
//! (`<offset-hi offset-lo size-hi size-lo>`). The blobs lie in index
//! order, each 4 KiB aligned, after the padded table and inside the
//! package, not empty and not overlapping; a kernel blob carries the
//! `Image` magic. A VM's `kernel` or `initrd` is one cell, the index of a
//! blob of that kind, and every blob is some VM's image.

use super::{format, range, required, string, PackageError, Parent, Problem};
use core::fmt;
use fdt::node::FdtNode;
use format::prop;

/// What a blob is, so that a VM's `kernel` cannot name an initrd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Kernel,
    Initrd,
}

impl BlobKind {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            format::KIND_KERNEL => Some(Self::Kernel),
            format::KIND_INITRD => Some(Self::Initrd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kernel => format::KIND_KERNEL,
            Self::Initrd => format::KIND_INITRD,
        }
    }
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One checked blob: its bytes are a slice of the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    pub kind: BlobKind,
    pub bytes: &'static [u8],
}

impl Blob {
    const UNUSED: Blob = Blob { kind: BlobKind::Kernel, bytes: &[] };
}

/// The blobs read so far, and which of them a VM has named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Blobs {
    list: [Blob; format::MAX_BLOBS],
    count: usize,
    used: [bool; format::MAX_BLOBS],
    /// Where the last blob ends: the next one may not start before.
    end: u64,
}

impl Blobs {
    pub(super) const EMPTY: Blobs = Blobs {
        list: [Blob::UNUSED; format::MAX_BLOBS],
        count: 0,
        used: [false; format::MAX_BLOBS],
        end: 0,
    };

    pub(super) fn as_slice(&self) -> &[Blob] {
        &self.list[..self.count]
    }

    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Reads the node of the next blob; its bytes must lie in `package`
    /// after `table_end` and after the blob before it.
    pub(super) fn add(
        &mut self,
        node: FdtNode<'_, 'static>,
        package: &'static [u8],
        table_end: u64,
    ) -> Result<(), PackageError> {
        let index = self.count;
        if index == format::MAX_BLOBS {
            return Err(PackageError::TooManyBlobs);
        }
        if let Some(child) = node.children().next() {
            let parent = Parent::Blob(index);
            return Err(PackageError::UnexpectedNode { name: child.name, parent });
        }
        let fail = |property, problem| PackageError::Blob { index, property, problem };
        let kind = required(node, prop::KIND)
            .and_then(kind)
            .map_err(|problem| fail(prop::KIND, problem))?;
        let (offset, size) = required(node, prop::EXTENT)
            .and_then(range)
            .map_err(|problem| fail(prop::EXTENT, problem))?;
        let bytes = self
            .extent(offset, size, package, table_end)
            .map_err(|problem| fail(prop::EXTENT, problem))?;
        if kind == BlobKind::Kernel && !format::is_arm64_image(bytes) {
            return Err(fail(prop::EXTENT, Problem::NotAnImage));
        }
        if let Some(name) = super::unknown_property(node, &[prop::BLOB]) {
            return Err(fail(name, Problem::Unknown));
        }
        self.list[index] = Blob { kind, bytes };
        self.count += 1;
        self.end = offset + size;
        Ok(())
    }

    /// The bytes `[offset, offset + size)` of `package`, checked: aligned,
    /// after the padded table, not empty, inside the package with no
    /// overflow, and not before the end of the previous blob.
    fn extent(
        &self,
        offset: u64,
        size: u64,
        package: &'static [u8],
        table_end: u64,
    ) -> Result<&'static [u8], Problem> {
        if !offset.is_multiple_of(format::ALIGN) {
            return Err(Problem::Unaligned { offset });
        }
        let end = offset.checked_add(size).ok_or(Problem::Overflow { offset, size })?;
        let package_end = package.len() as u64;
        let past_end = Problem::PastEnd { offset, size, end: package_end };
        if end > package_end {
            return Err(past_end);
        }
        if offset < table_end {
            return Err(Problem::InTable { offset, table_end });
        }
        if size == 0 {
            return Err(Problem::Empty);
        }
        if let Some(previous) = self.count.checked_sub(1) {
            if offset < self.end {
                return Err(Problem::Overlap { offset, previous, previous_end: self.end });
            }
        }
        let start = usize::try_from(offset).map_err(|_| past_end)?;
        let end = usize::try_from(end).map_err(|_| past_end)?;
        package.get(start..end).ok_or(past_end)
    }

    /// The blob a VM's `kernel` or `initrd` names (one cell, an index),
    /// which must be of kind `expected`; marks it used.
    pub(super) fn resolve(
        &mut self,
        value: &[u8],
        expected: BlobKind,
    ) -> Result<&'static [u8], Problem> {
        let index = super::cell(value)?;
        let count = self.count;
        let blob = usize::try_from(index)
            .ok()
            .and_then(|i| self.list[..count].get(i))
            .ok_or(Problem::NoSuchBlob { index, count })?;
        if blob.kind != expected {
            return Err(Problem::WrongKind { index, found: blob.kind, expected });
        }
        // A valid index below `count`, as `get` just showed.
        self.used[index as usize] = true;
        Ok(blob.bytes)
    }

    /// Every blob must be some VM's image: the packer writes no others, so
    /// an unused one means the table was altered.
    pub(super) fn check_all_used(&self) -> Result<(), PackageError> {
        match self.used[..self.count].iter().position(|&used| !used) {
            Some(index) => Err(PackageError::UnusedBlob { index }),
            None => Ok(()),
        }
    }
}

fn kind(value: &'static [u8]) -> Result<BlobKind, Problem> {
    let name = string(value)?;
    BlobKind::from_name(name).ok_or(Problem::BadKind(name))
}

#[cfg(test)]
mod tests {
    use super::super::{Parent, PersonaPackage};
    use super::*;
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::vec::Vec;

    /// A blob to write: its kind, where it goes, its bytes.
    type BlobAt<'a> = (&'a str, u64, &'a [u8]);

    /// A package with the table in its first 4 KiB, these blobs at their
    /// offsets (overlapping ones overwrite each other) and one VM per
    /// `(kernel, initrd)` pair of blob indices.
    fn package_with(version: u32, blobs: &[BlobAt], vms: &[(u32, Option<u32>)]) -> Vec<u8> {
        let end = blobs.iter().map(|&(_, at, b)| at + b.len() as u64).max().unwrap_or(0);
        let size = end.next_multiple_of(format::ALIGN).max(format::ALIGN);
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_string(prop::COMPATIBLE, format::COMPATIBLE).unwrap();
        fdt.property_u32(prop::FORMAT_VERSION, version).unwrap();
        fdt.property_u64(prop::PACKAGE_SIZE, size).unwrap();
        for (index, &(kind, offset, bytes)) in blobs.iter().enumerate() {
            let node = fdt.begin_node(&format!("blob@{index}")).unwrap();
            fdt.property_string(prop::KIND, kind).unwrap();
            fdt.property_array_u64(prop::EXTENT, &[offset, bytes.len() as u64]).unwrap();
            fdt.end_node(node).unwrap();
        }
        for (index, &(kernel, initrd)) in vms.iter().enumerate() {
            let node = fdt.begin_node(&format!("vm@{index}")).unwrap();
            fdt.property_string(prop::NAME, &format!("vm{index}")).unwrap();
            fdt.property_string(prop::ROLE, format::ROLE_PERSONAL).unwrap();
            fdt.property_u32(prop::MEMORY_MIB, 2).unwrap();
            fdt.property_u32(prop::VCPUS, 1).unwrap();
            fdt.property_string(prop::CMDLINE, "").unwrap();
            fdt.property_string(prop::ON_RESET, format::ON_RESET_RESTART).unwrap();
            fdt.property_u32(prop::RESTART_LIMIT, 0).unwrap();
            fdt.property_u32(prop::KERNEL, kernel).unwrap();
            if let Some(initrd) = initrd {
                fdt.property_u32(prop::INITRD, initrd).unwrap();
            }
            fdt.end_node(node).unwrap();
        }
        fdt.end_node(root).unwrap();
        let mut package = fdt.finish().unwrap();
        assert!(package.len() <= format::ALIGN as usize, "the table fits 4 KiB");
        package.resize(size as usize, 0);
        for &(_, offset, bytes) in blobs {
            let at = offset as usize;
            package[at..at + bytes.len()].copy_from_slice(bytes);
        }
        package
    }

    fn parse(bytes: Vec<u8>) -> Result<PersonaPackage, PackageError> {
        PersonaPackage::parse(Box::leak(bytes.into_boxed_slice()))
    }

    fn kernel(seed: u8) -> Vec<u8> {
        let mut image = alloc::vec![seed; 3000];
        image[format::IMAGE_MAGIC_OFFSET..][..4].copy_from_slice(&format::IMAGE_MAGIC);
        image
    }

    fn vm_error(index: usize, property: &'static str, problem: Problem) -> PackageError {
        let name = Some(["vm0", "vm1", "vm2"][index]);
        PackageError::Vm { index, name, property, problem }
    }

    fn blob_error(index: usize, problem: Problem) -> PackageError {
        PackageError::Blob { index, property: prop::EXTENT, problem }
    }

    #[test]
    fn vms_naming_one_blob_read_the_same_bytes() {
        let (k, i) = (kernel(1), [7u8; 100]);
        let blobs = [("kernel", 0x1000, &k[..]), ("initrd", 0x2000, &i[..])];
        let package = parse(package_with(2, &blobs, &[(0, Some(1)), (0, Some(1))])).unwrap();
        assert_eq!(package.blobs().len(), 2);
        assert_eq!((package.blobs()[0].kind, package.blobs()[0].bytes), (BlobKind::Kernel, &k[..]));
        let [a, b] = package.vms() else { panic!("two VMs") };
        assert_eq!(a.kernel.as_ptr(), b.kernel.as_ptr());
        assert_eq!((a.kernel, a.initrd), (&k[..], Some(&i[..])));
        assert_eq!((b.kernel, b.initrd), (&k[..], Some(&i[..])));
        assert_eq!(package.bytes().len(), 0x3000);
    }

    #[test]
    fn identical_blobs_stored_twice_are_read_as_two() {
        // Sharing is the packer's saving, not a rule: the reader takes a
        // package that stores one image twice, each VM with its own copy.
        let k = kernel(2);
        let blobs = [("kernel", 0x1000, &k[..]), ("kernel", 0x2000, &k[..])];
        let package = parse(package_with(2, &blobs, &[(0, None), (1, None)])).unwrap();
        let [a, b] = package.vms() else { panic!("two VMs") };
        assert_eq!((a.kernel, b.kernel), (&k[..], &k[..]));
        assert_ne!(a.kernel.as_ptr(), b.kernel.as_ptr());
    }

    #[test]
    fn references_must_name_a_blob_of_their_kind() {
        let (k, i) = (kernel(3), [7u8; 100]);
        let blobs = [("kernel", 0x1000, &k[..]), ("initrd", 0x2000, &i[..])];
        let missing = Problem::NoSuchBlob { index: 2, count: 2 };
        let error = parse(package_with(2, &blobs, &[(0, Some(1)), (0, Some(2))])).unwrap_err();
        assert_eq!(error, vm_error(1, prop::INITRD, missing));
        assert_eq!(
            error.to_string(),
            "vm@1 (\"vm1\"): initrd: blob@2 does not exist (the package has 2 blobs)"
        );
        let wrong =
            Problem::WrongKind { index: 1, found: BlobKind::Initrd, expected: BlobKind::Kernel };
        let error = parse(package_with(2, &blobs, &[(1, None)])).unwrap_err();
        assert_eq!(error, vm_error(0, prop::KERNEL, wrong));
        assert_eq!(
            error.to_string(),
            "vm@0 (\"vm0\"): kernel: blob@1 is of kind initrd, not kernel"
        );
        let wrong =
            Problem::WrongKind { index: 0, found: BlobKind::Kernel, expected: BlobKind::Initrd };
        let error = parse(package_with(2, &blobs, &[(0, Some(0))])).unwrap_err();
        assert_eq!(error, vm_error(0, prop::INITRD, wrong));
        // No blobs at all: a VM's kernel names none.
        let none = Problem::NoSuchBlob { index: 0, count: 0 };
        assert_eq!(parse(package_with(2, &[], &[(0, None)])), Err(vm_error(0, prop::KERNEL, none)));
    }

    #[test]
    fn blobs_lie_in_order_without_overlap() {
        let (k, i) = (kernel(4), [7u8; 5000]);
        // blob@1 starts inside blob@0, on it, or before it.
        for offset in [0x1000, 0x2000] {
            let blobs = [("initrd", 0x1000, &i[..]), ("kernel", offset, &k[..])];
            let overlap = Problem::Overlap { offset, previous: 0, previous_end: 0x1000 + 5000 };
            let error = parse(package_with(2, &blobs, &[(1, Some(0))])).unwrap_err();
            assert_eq!(error, blob_error(1, overlap));
        }
        // blob@1 before blob@0 (and small, so the kernel keeps its magic).
        let blobs = [("kernel", 0x2000, &k[..]), ("initrd", 0x1000, &i[..100])];
        let overlap = Problem::Overlap { offset: 0x1000, previous: 0, previous_end: 0x2000 + 3000 };
        let error = parse(package_with(2, &blobs, &[(0, Some(1))])).unwrap_err();
        assert_eq!(error, blob_error(1, overlap));
        assert_eq!(
            error.to_string(),
            "blob@1: extent: offset 0x1000 lies before the end of blob@0 (0x2bb8); blobs lie in \
             index order and do not overlap"
        );
        // Right after the previous one's padding is fine.
        let blobs = [("initrd", 0x1000, &i[..]), ("kernel", 0x3000, &k[..])];
        assert!(parse(package_with(2, &blobs, &[(1, Some(0))])).is_ok());
    }

    #[test]
    fn blob_extents_are_checked_like_images() {
        let k = kernel(5);
        let cases = [
            (0x1800u64, Problem::Unaligned { offset: 0x1800 }),
            (0, Problem::InTable { offset: 0, table_end: 0x1000 }),
        ];
        for (offset, problem) in cases {
            let mut bytes = package_with(2, &[("kernel", 0x1000, &k)], &[(0, None)]);
            // Rewrite the extent's offset cell in place.
            let needle = [0x1000u64.to_be_bytes(), (k.len() as u64).to_be_bytes()].concat();
            let at = bytes.windows(16).position(|w| w == needle).unwrap();
            bytes[at..at + 8].copy_from_slice(&offset.to_be_bytes());
            assert_eq!(parse(bytes), Err(blob_error(0, problem)));
        }
        // A kernel blob carries the Image magic.
        let not_a_kernel = [0u8; 100];
        let error = parse(package_with(2, &[("kernel", 0x1000, &not_a_kernel)], &[(0, None)]));
        assert_eq!(error, Err(blob_error(0, Problem::NotAnImage)));
    }

    #[test]
    fn every_blob_is_some_vms_image() {
        let (k, i) = (kernel(6), [7u8; 100]);
        let blobs = [("kernel", 0x1000, &k[..]), ("initrd", 0x2000, &i[..])];
        let error = parse(package_with(2, &blobs, &[(0, None)])).unwrap_err();
        assert_eq!(error, PackageError::UnusedBlob { index: 1 });
    }

    #[test]
    fn version_1_is_refused_by_number() {
        let k = kernel(7);
        let error = parse(package_with(1, &[("kernel", 0x1000, &k)], &[(0, None)])).unwrap_err();
        assert_eq!(error, PackageError::Version { found: 1 });
        assert_eq!(
            error.to_string(),
            "format version 1 is not supported (this Duet reads version 2); rebuild the \
             package with this Duet's duet-pack"
        );
    }

    #[test]
    fn blob_nodes_have_no_children_and_come_before_the_vms() {
        let k = kernel(8);
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_string(prop::COMPATIBLE, format::COMPATIBLE).unwrap();
        fdt.property_u32(prop::FORMAT_VERSION, format::VERSION).unwrap();
        fdt.property_u64(prop::PACKAGE_SIZE, 0x2000).unwrap();
        let blob = fdt.begin_node("blob@0").unwrap();
        fdt.property_string(prop::KIND, "kernel").unwrap();
        fdt.property_array_u64(prop::EXTENT, &[0x1000, k.len() as u64]).unwrap();
        let child = fdt.begin_node("sha256").unwrap();
        fdt.end_node(child).unwrap();
        fdt.end_node(blob).unwrap();
        fdt.end_node(root).unwrap();
        let mut bytes = fdt.finish().unwrap();
        bytes.resize(0x1000, 0);
        bytes.extend_from_slice(&k);
        bytes.resize(0x2000, 0);
        let error = parse(bytes).unwrap_err();
        assert_eq!(error, PackageError::UnexpectedNode { name: "sha256", parent: Parent::Blob(0) });
        assert_eq!(error.to_string(), "blob@0: unexpected node \"sha256\"");
    }

    #[test]
    fn kinds_have_one_name_each() {
        for kind in [BlobKind::Kernel, BlobKind::Initrd] {
            assert_eq!(BlobKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(BlobKind::from_name("Kernel"), None);
        assert_eq!(kind(b"initrd\0"), Ok(BlobKind::Initrd));
        assert_eq!(kind(b"dtb\0"), Err(Problem::BadKind("dtb")));
        assert_eq!(kind(b"kernel"), Err(Problem::NotAString));
    }
}
