//! Where a guest's boot images go in its RAM, following the arm64 Linux boot
//! protocol: the kernel `Image` at a 2 MiB-aligned base plus its
//! `text_offset`, the initramfs and the device tree above it, nothing
//! overlapping and everything inside RAM.

use core::fmt;

const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const IMAGE_MAGIC_OFFSET: usize = 0x38;
const TWO_MIB: u64 = 2 << 20;
const PAGE: u64 = 4096;
/// Linux wants the device tree within one 2 MiB block, 8-byte aligned.
pub const MAX_DEVICE_TREE: u64 = TWO_MIB;

/// What a kernel's arm64 `Image` header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Where the image goes, from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (`.bss` included).
    pub image_size: u64,
}

/// Why a guest cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The kernel file is not an arm64 `Image`.
    NotAnImage,
    /// The images do not fit in the guest's RAM.
    TooBig { needed: u64, ram: u64 },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnImage => {
                write!(f, "the kernel is not an arm64 Image (no \"ARM\\x64\" magic)")
            }
            Self::TooBig { needed, ram } => write!(
                f,
                "kernel, initrd and device tree need {} KiB but the VM has {} KiB of RAM",
                needed / 1024,
                ram / 1024
            ),
        }
    }
}

impl ImageHeader {
    /// Reads the header of `kernel`.
    pub fn parse(kernel: &[u8]) -> Result<Self, LoadError> {
        if kernel.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) != Some(IMAGE_MAGIC) {
            return Err(LoadError::NotAnImage);
        }
        let word = |at: usize| u64::from_le_bytes(kernel[at..at + 8].try_into().expect("8 bytes"));
        let (text_offset, image_size) = (word(8), word(16));
        // An image_size of zero marks a pre-3.17 kernel, which always used 0x80000.
        Ok(if image_size == 0 {
            ImageHeader { text_offset: 0x8_0000, image_size: kernel.len() as u64 }
        } else {
            ImageHeader { text_offset, image_size: image_size.max(kernel.len() as u64) }
        })
    }
}

/// Offsets from the start of guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    pub kernel: u64,
    pub initrd: Option<u64>,
    pub device_tree: u64,
}

/// Places a kernel with `header`, an initrd of `initrd_size` bytes (if any)
/// and a device tree of up to [`MAX_DEVICE_TREE`] in `ram_size` bytes.
/// The kernel goes at the bottom; the device tree in the last 2 MiB block;
/// the initrd just below the device tree, page aligned, so the kernel's
/// early allocations between the two have room.
pub fn plan(
    header: ImageHeader,
    initrd_size: Option<u64>,
    ram_size: u64,
) -> Result<LoadPlan, LoadError> {
    let kernel = header.text_offset;
    let kernel_end = kernel.saturating_add(header.image_size).next_multiple_of(TWO_MIB);
    let too_big = |needed: u64| LoadError::TooBig { needed, ram: ram_size };
    let device_tree =
        ram_size.checked_sub(MAX_DEVICE_TREE).ok_or(too_big(kernel_end + MAX_DEVICE_TREE))?;
    let initrd = match initrd_size {
        Some(size) => {
            let start =
                device_tree.checked_sub(size.next_multiple_of(PAGE)).map(|s| s & !(PAGE - 1));
            match start {
                Some(start) if start >= kernel_end => Some(start),
                _ => return Err(too_big(kernel_end + size + MAX_DEVICE_TREE)),
            }
        }
        None => None,
    };
    if kernel_end > device_tree {
        return Err(too_big(kernel_end + MAX_DEVICE_TREE));
    }
    Ok(LoadPlan { kernel, initrd, device_tree })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn image(text_offset: u64, image_size: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&image_size.to_le_bytes());
        bytes[0x38..0x3c].copy_from_slice(IMAGE_MAGIC);
        bytes
    }

    #[test]
    fn reads_the_header_of_a_modern_kernel() {
        let header = ImageHeader::parse(&image(0, 40 * MIB)).unwrap();
        assert_eq!(header, ImageHeader { text_offset: 0, image_size: 40 * MIB });
    }

    #[test]
    fn old_kernels_get_the_historic_offset() {
        let header = ImageHeader::parse(&image(0, 0)).unwrap();
        assert_eq!(header.text_offset, 0x8_0000);
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(ImageHeader::parse(&[0u8; 64]), Err(LoadError::NotAnImage));
        assert_eq!(ImageHeader::parse(b"short"), Err(LoadError::NotAnImage));
    }

    #[test]
    fn places_kernel_initrd_and_device_tree_without_overlap() {
        let header = ImageHeader { text_offset: 0, image_size: 40 * MIB };
        let plan = plan(header, Some(3 * MIB + 5), 256 * MIB).unwrap();
        assert_eq!(plan.kernel, 0);
        assert_eq!(plan.device_tree, 254 * MIB);
        let initrd = plan.initrd.unwrap();
        assert_eq!(initrd % PAGE, 0);
        assert!(initrd + 3 * MIB + 5 <= plan.device_tree);
        assert!(initrd >= 40 * MIB);
    }

    #[test]
    fn says_when_it_does_not_fit() {
        let header = ImageHeader { text_offset: 0, image_size: 40 * MIB };
        assert!(matches!(plan(header, Some(30 * MIB), 64 * MIB), Err(LoadError::TooBig { .. })));
        assert!(matches!(plan(header, None, 32 * MIB), Err(LoadError::TooBig { .. })));
        assert!(matches!(plan(header, None, MIB), Err(LoadError::TooBig { .. })));
        assert!(plan(header, Some(10 * MIB), 64 * MIB).is_ok());
    }
}
