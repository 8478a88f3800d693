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
        if offset % format::ALIGN != 0 {
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
    use super::*;

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
