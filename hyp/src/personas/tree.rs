//! A strict check of a flattened device tree's structure, done before the
//! `fdt` crate sees the blob.
//!
//! `fdt` trusts its input: on a damaged blob it indexes out of bounds or
//! unwraps, and a panic at EL2 halts the phone. A persona package comes from
//! storage that an attacker may have written, so its table is walked here
//! first, with every read checked. A blob that passes cannot make `fdt`
//! panic: the header's blocks lie inside the blob, every token is whole,
//! names are NUL-terminated UTF-8 inside their blocks, nodes nest properly
//! and not deeply, properties come before child nodes, and there are no NOP
//! tokens (`fdt` skips them in some places and not in others).

use core::fmt;

const HEADER_LEN: usize = 40;
const MAGIC: u32 = 0xd00d_feed;
/// `size_dt_struct`, which `fdt` relies on, arrived in version 17.
const MIN_VERSION: u32 = 17;
/// The last version whose layout this check knows.
const MAX_LAST_COMPATIBLE: u32 = 17;
/// Deeper than any tree Duet reads; `fdt` itself breaks past 63.
const MAX_DEPTH: usize = 16;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;
const NOP: u32 = 4;

/// Which block of the blob the header points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    MemoryReservations,
    Structure,
    Strings,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MemoryReservations => "memory reservation block",
            Self::Structure => "structure block",
            Self::Strings => "strings block",
        })
    }
}

/// Why a blob is not a well-formed device tree. Offsets `at` count from the
/// start of the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    TooShort { len: usize },
    BadMagic { found: u32 },
    TotalSize { total: u32, available: usize },
    Version { version: u32, last_compatible: u32 },
    BlockOutside { block: Block, offset: u32, size: u32, total: u32 },
    Misaligned { block: Block, offset: u32 },
    Truncated { at: usize },
    UnexpectedToken { at: usize, token: u32 },
    NodeName { at: usize },
    RootName,
    PropertyName { at: usize, name_offset: u32 },
    TooDeep { at: usize },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(f, "{len} bytes are too few for a device tree header ({HEADER_LEN})")
            }
            Self::BadMagic { found } => {
                write!(f, "bad magic {found:#010x} (a device tree starts with {MAGIC:#010x})")
            }
            Self::TotalSize { total, available } => write!(
                f,
                "the header's total size {total:#x} does not fit the {available:#x} bytes given"
            ),
            Self::Version { version, last_compatible } => write!(
                f,
                "device tree version {version} (compatible back to {last_compatible}) is not \
                 readable; need {MIN_VERSION}"
            ),
            Self::BlockOutside { block, offset, size, total } => write!(
                f,
                "the {block} ({offset:#x} + {size:#x}) lies outside the tree ({total:#x} bytes)"
            ),
            Self::Misaligned { block, offset } => {
                write!(f, "the {block} at {offset:#x} is misaligned")
            }
            Self::Truncated { at } => {
                write!(f, "the structure block ends inside a token at {at:#x}")
            }
            Self::UnexpectedToken { at, token } => {
                write!(f, "unexpected token {token:#x} at {at:#x} in the structure block")
            }
            Self::NodeName { at } => {
                write!(f, "the node name at {at:#x} is not NUL-terminated UTF-8")
            }
            Self::RootName => write!(f, "the root node has a name"),
            Self::PropertyName { at, name_offset } => write!(
                f,
                "the property at {at:#x} names no valid string (name offset {name_offset:#x})"
            ),
            Self::TooDeep { at } => {
                write!(f, "nodes nest deeper than {MAX_DEPTH} levels at {at:#x}")
            }
        }
    }
}

impl core::error::Error for TreeError {}

/// Checks the device tree at the start of `blob` and returns its total size
/// (the header's `totalsize`), which is at most `blob.len()`.
pub fn check(blob: &[u8]) -> Result<usize, TreeError> {
    check_with(blob, Nops::Refused)
}

/// Makes the board's device tree readable by `fdt`: firmware (and QEMU)
/// edit it in place with libfdt, and deleting a property or a node leaves
/// NOP tokens, some of which make `fdt` panic. Checks the tree as [`check`]
/// does but allowing NOPs, then squeezes them out of the structure block in
/// place (the block gets shorter; the other blocks stay where they are).
/// Returns the total size. A tree that fails the check is left unchanged.
pub fn strip_nops(blob: &mut [u8]) -> Result<usize, TreeError> {
    let total = check_with(blob, Nops::Allowed)?;
    let header = Header::read(blob)?;
    let start = header.off_struct as usize;
    let end = start + header.size_struct as usize;
    let (mut read, mut write) = (start, start);
    while read < end {
        let token = be_u32(blob, read).ok_or(TreeError::Truncated { at: read - start })?;
        let len = match token {
            BEGIN_NODE => {
                let name = node_name(&blob[start..end], read + 4 - start, read - start)?;
                4 + padded(name.len() + 1)
            }
            PROP => {
                let value = be_u32(blob, read + 4).ok_or(TreeError::Truncated { at: read })?;
                12 + padded(value as usize)
            }
            _ => 4,
        };
        if token != NOP {
            blob.copy_within(read..read + len, write);
            write += len;
        }
        read += len;
        if token == END {
            break;
        }
    }
    let size = (write - start) as u32;
    blob[9 * 4..10 * 4].copy_from_slice(&size.to_be_bytes());
    Ok(total)
}

/// Whether NOP tokens may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nops {
    Refused,
    Allowed,
}

fn check_with(blob: &[u8], nops: Nops) -> Result<usize, TreeError> {
    let header = Header::read(blob)?;
    let total = header.total as usize;
    let tree = blob
        .get(..total)
        .ok_or(TreeError::TotalSize { total: header.total, available: blob.len() })?;
    let structure = header.block(tree, Block::Structure)?;
    let strings = header.block(tree, Block::Strings)?;
    header.block(tree, Block::MemoryReservations)?;
    walk(structure, strings, nops)?;
    Ok(total)
}

/// The header fields the check needs.
struct Header {
    total: u32,
    off_struct: u32,
    off_strings: u32,
    off_reservations: u32,
    size_strings: u32,
    size_struct: u32,
}

impl Header {
    fn read(blob: &[u8]) -> Result<Self, TreeError> {
        if blob.len() < HEADER_LEN {
            return Err(TreeError::TooShort { len: blob.len() });
        }
        // Ten big-endian words; the length was just checked.
        let word = |index: usize| be_u32(blob, index * 4).unwrap_or(0);
        if word(0) != MAGIC {
            return Err(TreeError::BadMagic { found: word(0) });
        }
        let (version, last_compatible) = (word(5), word(6));
        if version < MIN_VERSION || last_compatible > MAX_LAST_COMPATIBLE {
            return Err(TreeError::Version { version, last_compatible });
        }
        let total = word(1);
        if (total as usize) < HEADER_LEN || total as usize > blob.len() {
            return Err(TreeError::TotalSize { total, available: blob.len() });
        }
        Ok(Header {
            total,
            off_struct: word(2),
            off_strings: word(3),
            off_reservations: word(4),
            size_strings: word(8),
            size_struct: word(9),
        })
    }

    /// The bytes of one block, checked to lie inside the tree after the
    /// header and to be aligned as the specification asks.
    fn block<'a>(&self, tree: &'a [u8], block: Block) -> Result<&'a [u8], TreeError> {
        let (offset, size, align) = match block {
            // The map has no size field; at least its terminating entry.
            Block::MemoryReservations => (self.off_reservations, 16, 8),
            Block::Structure => (self.off_struct, self.size_struct, 4),
            Block::Strings => (self.off_strings, self.size_strings, 1),
        };
        if offset % align != 0 {
            return Err(TreeError::Misaligned { block, offset });
        }
        let outside = TreeError::BlockOutside { block, offset, size, total: self.total };
        let start = offset as usize;
        if start < HEADER_LEN {
            return Err(outside);
        }
        let end = start.checked_add(size as usize).ok_or(outside)?;
        tree.get(start..end).ok_or(outside)
    }
}

/// Walks the structure block token by token.
fn walk(structure: &[u8], strings: &[u8], nops: Nops) -> Result<(), TreeError> {
    let mut at = 0;
    let mut depth = 0;
    let mut seen_root = false;
    // True once a child node has ended: its parent may then hold no more
    // properties (`fdt` stops looking for them at the first child).
    let mut after_child = false;
    loop {
        let token = be_u32(structure, at).ok_or(TreeError::Truncated { at })?;
        let body = at + 4;
        match token {
            BEGIN_NODE if depth > 0 || !seen_root => {
                let name = node_name(structure, body, at)?;
                if depth == 0 && !name.is_empty() {
                    return Err(TreeError::RootName);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TreeError::TooDeep { at });
                }
                seen_root = true;
                after_child = false;
                at = body + padded(name.len() + 1);
            }
            PROP if depth > 0 && !after_child => {
                at = property(structure, strings, body, at)?;
            }
            END_NODE if depth > 0 => {
                depth -= 1;
                after_child = true;
                at = body;
            }
            END if depth == 0 && seen_root => return Ok(()),
            NOP if depth > 0 && nops == Nops::Allowed => at = body,
            _ => return Err(TreeError::UnexpectedToken { at, token }),
        }
    }
}

/// The name of the node whose name starts at `body`.
fn node_name(structure: &[u8], body: usize, at: usize) -> Result<&str, TreeError> {
    let rest = structure.get(body..).ok_or(TreeError::Truncated { at })?;
    c_string(rest).ok_or(TreeError::NodeName { at })
}

/// Checks the property whose length and name offset start at `body`;
/// returns where the next token starts.
fn property(structure: &[u8], strings: &[u8], body: usize, at: usize) -> Result<usize, TreeError> {
    let truncated = TreeError::Truncated { at };
    let len = be_u32(structure, body).ok_or(truncated)? as usize;
    let name_offset = be_u32(structure, body + 4).ok_or(truncated)?;
    let value = body + 8;
    let value_end = value.checked_add(len).ok_or(truncated)?;
    if value_end > structure.len() {
        return Err(truncated);
    }
    let name = strings.get(name_offset as usize..).and_then(c_string);
    if name.is_none() {
        return Err(TreeError::PropertyName { at, name_offset });
    }
    Ok(value + padded(len))
}

/// The NUL-terminated UTF-8 string at the start of `bytes`.
fn c_string(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&bytes[..end]).ok()
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// `len` rounded up to whole 4-byte words, as tokens are padded.
fn padded(len: usize) -> usize {
    len.next_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GICV3: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv3.dtb");

    #[test]
    fn accepts_qemus_device_tree() {
        assert_eq!(check(GICV3), Ok(GICV3.len()));
    }

    #[test]
    fn rejects_short_and_foreign_blobs() {
        assert_eq!(check(&[]), Err(TreeError::TooShort { len: 0 }));
        assert_eq!(check(&[0xff; 64]), Err(TreeError::BadMagic { found: 0xffff_ffff }));
    }

    #[test]
    fn rejects_a_truncated_tree() {
        let cut = &GICV3[..GICV3.len() - 1];
        assert!(matches!(check(cut), Err(TreeError::TotalSize { .. })));
    }

    #[test]
    fn survives_every_single_byte_change_of_a_real_tree() {
        // Not a proof, but it walks every check on real data: whatever a
        // byte becomes, the answer is Ok or an error, never a panic.
        let mut blob = GICV3.to_vec();
        for at in (0..blob.len()).step_by(3) {
            let keep = blob[at];
            for value in [0x00, 0x01, 0x03, 0x09, 0x7f, 0xff] {
                blob[at] = value;
                let _ = check(&blob);
            }
            blob[at] = keep;
        }
    }
}
