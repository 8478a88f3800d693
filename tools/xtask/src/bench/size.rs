//! Duet's size: its ELF's sections sorted into text, read-only data, data,
//! bss and boot stacks, plus the flat image a bootloader loads.

use anyhow::{Context, Result};
use object::elf::{SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS};
use object::{Object, ObjectSection, SectionFlags};
use std::path::Path;

/// Bytes of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Size {
    pub text: u64,
    /// Read-only data, with the dynamic symbols and relocations Duet applies
    /// to itself at boot.
    pub rodata: u64,
    pub data: u64,
    pub bss: u64,
    /// The per-CPU boot stacks (uninitialised, like bss, but reserved apart).
    pub stacks: u64,
    /// The flat image file.
    pub image_file: u64,
}

impl Size {
    /// Memory the image takes once loaded: everything above.
    pub fn loaded(&self) -> u64 {
        self.text + self.rodata + self.data + self.bss + self.stacks
    }
}

/// The sizes of the hypervisor ELF `elf` and its flat image `binary`.
pub fn measure(elf: &Path, binary: &Path) -> Result<Size> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let mut size = of_elf(&data).with_context(|| format!("cannot read {}", elf.display()))?;
    size.image_file = std::fs::metadata(binary)
        .with_context(|| format!("cannot read {}", binary.display()))?
        .len();
    Ok(size)
}

fn of_elf(data: &[u8]) -> Result<Size> {
    let file = object::File::parse(data)?;
    let mut size = Size::default();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else { continue };
        let kind = section_kind(section.name().unwrap_or(""), sh_flags, section_type(&section));
        if let Some(slot) = kind.map(|kind| size.slot(kind)) {
            *slot += section.size();
        }
    }
    Ok(size)
}

fn section_type(section: &object::Section) -> u32 {
    match section.kind() {
        object::SectionKind::UninitializedData | object::SectionKind::UninitializedTls => {
            SHT_NOBITS
        }
        _ => 0,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Rodata,
    Data,
    Bss,
    Stacks,
}

impl Size {
    fn slot(&mut self, kind: Kind) -> &mut u64 {
        match kind {
            Kind::Text => &mut self.text,
            Kind::Rodata => &mut self.rodata,
            Kind::Data => &mut self.data,
            Kind::Bss => &mut self.bss,
            Kind::Stacks => &mut self.stacks,
        }
    }
}

/// Sorts a section by its flags; sections that are not loaded (debug
/// information, symbols) count for nothing.
fn section_kind(name: &str, flags: u64, sh_type: u32) -> Option<Kind> {
    let flags = flags as u32;
    if flags & SHF_ALLOC == 0 {
        return None;
    }
    Some(if flags & SHF_EXECINSTR != 0 {
        Kind::Text
    } else if flags & SHF_WRITE == 0 {
        Kind::Rodata
    } else if sh_type != SHT_NOBITS {
        Kind::Data
    } else if name == ".stacks" {
        Kind::Stacks
    } else {
        Kind::Bss
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_sorted_by_their_flags() {
        let alloc = SHF_ALLOC as u64;
        let exec = (SHF_ALLOC | SHF_EXECINSTR) as u64;
        let write = (SHF_ALLOC | SHF_WRITE) as u64;
        assert_eq!(section_kind(".text", exec, 1), Some(Kind::Text));
        assert_eq!(section_kind(".rela.dyn", alloc, 4), Some(Kind::Rodata));
        assert_eq!(section_kind(".got", write, 1), Some(Kind::Data));
        assert_eq!(section_kind(".bss", write, SHT_NOBITS), Some(Kind::Bss));
        assert_eq!(section_kind(".stacks", write, SHT_NOBITS), Some(Kind::Stacks));
        assert_eq!(section_kind(".debug_info", 0, 1), None);
    }

    #[test]
    fn this_test_binary_has_text_and_data() {
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let size = of_elf(&own).unwrap();
        assert!(size.text > 0 && size.rodata > 0 && size.data > 0, "{size:?}");
        assert_eq!(size.loaded(), size.text + size.rodata + size.data + size.bss + size.stacks);
    }
}
