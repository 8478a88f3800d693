//! A small reader for the flattened device tree the probe boots with: the
//! header, a walk over the structure block, and a property looked up by
//! path. It is all the probe needs to learn its command line
//! (`/chosen/bootargs`) and its RAM (`/memory`).
//!
//! Duet writes the tree, so it is trusted; the reader is careful anyway:
//! every offset is checked against the blob, and a malformed tree is an
//! error, never a panic or a read out of bounds.

/// `FDT_MAGIC`, big-endian, as every flattened device tree starts.
const MAGIC: u32 = 0xd00d_feed;
/// The header's size in bytes (version 17).
const HEADER_SIZE: usize = 40;
/// The largest tree the probe accepts; Duet's loader allows 2 MiB.
pub const MAX_SIZE: usize = 2 << 20;

/// Structure block tokens.
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// Why a blob could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Shorter than its header, or than the size the header gives.
    Truncated,
    /// The magic number is wrong: not a device tree.
    BadMagic,
    /// The header's total size is beyond [`MAX_SIZE`].
    TooBig,
    /// A block or a token runs outside the blob.
    OutOfBounds,
    /// A name that is not NUL-terminated UTF-8.
    BadName,
    /// An unknown token, or nodes that do not nest.
    BadStructure,
}

/// Reads the big-endian word at `offset`, if it is inside `bytes`.
fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// The total size a tree's header claims, from its first 8 bytes: how many
/// bytes to take before calling [`DeviceTree::parse`].
pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
    if be32(header, 0).ok_or(FdtError::Truncated)? != MAGIC {
        return Err(FdtError::BadMagic);
    }
    let size = be32(header, 4).ok_or(FdtError::Truncated)? as usize;
    if size > MAX_SIZE {
        return Err(FdtError::TooBig);
    }
    if size < HEADER_SIZE {
        return Err(FdtError::Truncated);
    }
    Ok(size)
}

/// A checked device tree blob.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTree<'a> {
    structure: &'a [u8],
    strings: &'a [u8],
}

/// One step of the walk over the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Begin(&'a str),
    End,
    Property { name: &'a str, value: &'a [u8] },
}

impl<'a> DeviceTree<'a> {
    /// Checks the header of `blob` and finds its blocks.
    pub fn parse(blob: &'a [u8]) -> Result<Self, FdtError> {
        let size = total_size(blob)?;
        let blob = blob.get(..size).ok_or(FdtError::Truncated)?;
        let word = |n: usize| be32(blob, n * 4).ok_or(FdtError::Truncated);
        let block = |offset: u32, len: u32| {
            let start = offset as usize;
            let end = start.checked_add(len as usize).ok_or(FdtError::OutOfBounds)?;
            blob.get(start..end).ok_or(FdtError::OutOfBounds)
        };
        // Header words: magic, totalsize, off_dt_struct, off_dt_strings,
        // off_mem_rsvmap, version, last_comp_version, boot_cpuid_phys,
        // size_dt_strings, size_dt_struct.
        let structure = block(word(2)?, word(9)?)?;
        let strings = block(word(3)?, word(8)?)?;
        Ok(DeviceTree { structure, strings })
    }

    /// The value of property `name` of the node at `path` (node names
    /// below the root; a name without `@` also matches `name@address`).
    pub fn property(&self, path: &[&str], name: &str) -> Result<Option<&'a [u8]>, FdtError> {
        // `depth` counts open nodes (the root is 1); the first `matched` of
        // them lie on `path` (the root always does).
        let (mut depth, mut matched) = (0usize, 0usize);
        let mut offset = 0;
        while let Some((token, next)) = self.token(offset)? {
            offset = next;
            match token {
                Token::Begin(node) => {
                    depth += 1;
                    let on_path = depth == 1
                        || (depth == matched + 1
                            && path.get(matched - 1).is_some_and(|want| node_is(node, want)));
                    if on_path {
                        matched = depth;
                    }
                }
                Token::End => {
                    if depth == 0 {
                        return Err(FdtError::BadStructure);
                    }
                    if depth == matched {
                        matched -= 1;
                    }
                    depth -= 1;
                }
                Token::Property { name: found, value } => {
                    if depth == matched && matched == path.len() + 1 && found == name {
                        return Ok(Some(value));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The token at `offset` in the structure block and the offset after
    /// it; `None` at `FDT_END`.
    fn token(&self, mut offset: usize) -> Result<Option<(Token<'a>, usize)>, FdtError> {
        loop {
            let kind = be32(self.structure, offset).ok_or(FdtError::OutOfBounds)?;
            offset += 4;
            match kind {
                NOP => continue,
                END => return Ok(None),
                END_NODE => return Ok(Some((Token::End, offset))),
                BEGIN_NODE => {
                    let name = c_string(self.structure, offset)?;
                    let next = align4(offset + name.len() + 1);
                    return Ok(Some((Token::Begin(name), next)));
                }
                PROP => {
                    let len = be32(self.structure, offset).ok_or(FdtError::OutOfBounds)?;
                    let name_offset =
                        be32(self.structure, offset + 4).ok_or(FdtError::OutOfBounds)?;
                    let start = offset + 8;
                    let end = start.checked_add(len as usize).ok_or(FdtError::OutOfBounds)?;
                    let value = self.structure.get(start..end).ok_or(FdtError::OutOfBounds)?;
                    let name = c_string(self.strings, name_offset as usize)?;
                    return Ok(Some((Token::Property { name, value }, align4(end))));
                }
                _ => return Err(FdtError::BadStructure),
            }
        }
    }
}

/// Whether node name `node` is `want`, or `want` with a unit address.
fn node_is(node: &str, want: &str) -> bool {
    node == want || node.strip_prefix(want).is_some_and(|rest| rest.starts_with('@'))
}

/// The NUL-terminated UTF-8 string at `offset`.
fn c_string(bytes: &[u8], offset: usize) -> Result<&str, FdtError> {
    let tail = bytes.get(offset..).ok_or(FdtError::OutOfBounds)?;
    let len = tail.iter().position(|&b| b == 0).ok_or(FdtError::BadName)?;
    core::str::from_utf8(&tail[..len]).map_err(|_| FdtError::BadName)
}

fn align4(offset: usize) -> usize {
    (offset + 3) & !3
}

/// A string property's value without its terminating NUL.
pub fn as_str(value: &[u8]) -> Option<&str> {
    let text = value.strip_suffix(&[0])?;
    core::str::from_utf8(text).ok()
}

/// The number in `cells` 32-bit big-endian cells at the start of `value`.
pub fn as_number(value: &[u8], cells: usize) -> Option<u64> {
    if cells == 0 || cells > 2 || value.len() < cells * 4 {
        return None;
    }
    (0..cells).try_fold(0u64, |acc, n| Some(acc << 32 | u64::from(be32(value, n * 4)?)))
}

/// RAM as the tree's `/memory` node gives it (its first range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub base: u64,
    pub size: u64,
}

/// What the probe reads from its device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// `/chosen/bootargs`, empty if absent.
    pub bootargs: &'a str,
    pub memory: Memory,
}

/// Why the boot information is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    Tree(FdtError),
    /// No `/memory` node with a `reg` property.
    NoMemory,
    /// `#address-cells`, `#size-cells`, `reg` or `bootargs` is malformed.
    BadProperty(&'static str),
}

impl From<FdtError> for BootInfoError {
    fn from(error: FdtError) -> Self {
        BootInfoError::Tree(error)
    }
}

/// Reads the command line and the RAM range from `tree`.
pub fn boot_info<'a>(tree: &DeviceTree<'a>) -> Result<BootInfo<'a>, BootInfoError> {
    // The device tree specification's defaults: two address cells, one size cell.
    let cells = |name: &'static str, default: usize| -> Result<usize, BootInfoError> {
        match tree.property(&[], name)? {
            None => Ok(default),
            Some(value) => {
                as_number(value, 1).map(|n| n as usize).ok_or(BootInfoError::BadProperty(name))
            }
        }
    };
    let address_cells = cells("#address-cells", 2)?;
    let size_cells = cells("#size-cells", 1)?;
    let reg = tree.property(&["memory"], "reg")?.ok_or(BootInfoError::NoMemory)?;
    let base = as_number(reg, address_cells).ok_or(BootInfoError::BadProperty("reg"))?;
    let size = reg
        .get(address_cells * 4..)
        .and_then(|rest| as_number(rest, size_cells))
        .ok_or(BootInfoError::BadProperty("reg"))?;
    let bootargs = match tree.property(&["chosen"], "bootargs")? {
        None => "",
        Some(value) => as_str(value).ok_or(BootInfoError::BadProperty("bootargs"))?,
    };
    Ok(BootInfo { bootargs, memory: Memory { base, size } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet::vm::device_tree::{self, GicVersion, GuestConfig};
    use std::vec::Vec;

    /// The tree Duet writes for a guest with `bootargs` and `ram_size`.
    fn duet_tree(bootargs: &str, ram_size: u64) -> Vec<u8> {
        let config = GuestConfig {
            ram_size,
            vcpus: 2,
            gic: GicVersion::V3,
            bootargs,
            initrd: None,
            virtio_slots: &[3],
        };
        device_tree::write(&config).expect("Duet writes the tree")
    }

    #[test]
    fn reads_bootargs_and_memory_from_the_tree_duet_writes() {
        let blob = duet_tree("probe.mode=attack console=ttyAMA0", 64 << 20);
        assert_eq!(total_size(&blob[..8]), Ok(blob.len()));
        let tree = DeviceTree::parse(&blob).unwrap();
        let info = boot_info(&tree).unwrap();
        assert_eq!(info.bootargs, "probe.mode=attack console=ttyAMA0");
        assert_eq!(info.memory, Memory { base: 0x4000_0000, size: 64 << 20 });
    }

    #[test]
    fn finds_nodes_by_name_with_or_without_unit_address() {
        let blob = duet_tree("", 2 << 20);
        let tree = DeviceTree::parse(&blob).unwrap();
        let compatible = tree.property(&["pl011"], "compatible").unwrap().unwrap();
        assert!(compatible.starts_with(b"arm,pl011\0"));
        assert_eq!(tree.property(&["memory"], "device_type").unwrap(), Some(&b"memory\0"[..]));
        // A property of a child does not answer for its parent, nor the reverse.
        assert_eq!(tree.property(&["cpus"], "enable-method").unwrap(), None);
        assert!(tree.property(&["cpus", "cpu"], "enable-method").unwrap().is_some());
        assert_eq!(tree.property(&["cpus", "cpu"], "#address-cells").unwrap(), None);
        assert_eq!(tree.property(&["nothing"], "reg").unwrap(), None);
        assert_eq!(boot_info(&tree).unwrap().bootargs, "");
    }

    #[test]
    fn refuses_what_is_not_a_tree() {
        assert_eq!(total_size(&[0; 8]), Err(FdtError::BadMagic));
        assert_eq!(total_size(&[0xd0, 0x0d]), Err(FdtError::Truncated));
        let mut huge = 0xd00d_feed_u32.to_be_bytes().to_vec();
        huge.extend_from_slice(&(64u32 << 20).to_be_bytes());
        assert_eq!(total_size(&huge), Err(FdtError::TooBig));
        let blob = duet_tree("x", 2 << 20);
        assert_eq!(DeviceTree::parse(&blob[..blob.len() - 1]).err(), Some(FdtError::Truncated));
    }

    #[test]
    fn damaged_trees_are_errors_not_panics() {
        let blob = duet_tree("probe.mode=hunt", 64 << 20);
        // Every single-byte corruption, at every offset.
        for offset in 0..blob.len() {
            for value in [0x00, 0x03, 0x7f, 0xff] {
                let mut damaged = blob.clone();
                damaged[offset] = value;
                if let Ok(tree) = DeviceTree::parse(&damaged) {
                    let _ = boot_info(&tree);
                }
            }
        }
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(as_number(&[0, 0, 0, 1, 0, 0, 0, 2], 2), Some(1 << 32 | 2));
        assert_eq!(as_number(&[0, 0, 0, 7], 1), Some(7));
        assert_eq!(as_number(&[0, 0, 0], 1), None);
        assert_eq!(as_number(&[0; 12], 3), None);
        assert_eq!(as_str(b"abc\0"), Some("abc"));
        assert_eq!(as_str(b"abc"), None);
    }
}
