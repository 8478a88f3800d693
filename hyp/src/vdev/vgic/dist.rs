//! The distributor shell both GIC front ends share: the per-access handle on
//! the model, the access checks, the decoding of the registers both versions
//! have (GICD_CTLR, GICD_TYPER, GICD_IIDR, GICD_PIDR2 and the interrupt
//! banks) and the dispatch of a read or write to the VM's front end. What
//! differs between GICv2 and GICv3 (their own registers, how they see the
//! banks, the bits of CTLR and TYPER) comes from the version's [`FrontEnd`].

use super::bank::{check_access, BankReg, Width};
use super::v2::Gicv2;
use super::v3::Gicv3;
use super::{Vgic, INTID_LIMIT};
use crate::vm::device_tree::GicVersion;
use crate::vm::layout;
use crate::vm::mmio::{MmioDevice, MmioError, Size};

/// Offsets of the registers at the same place in both versions.
mod gicd {
    pub const CTLR: u64 = 0x0000;
    pub const TYPER: u64 = 0x0004;
    pub const IIDR: u64 = 0x0008;
}

/// GICD_IIDR and GICR_IIDR: ProductID [31:24] 0x44 ('D', for Duet), variant
/// and revision 0, and implementer [11:0] 0, which is no JEP106 code, so no
/// guest's errata table can mistake this GIC for real silicon.
pub(super) const IIDR: u32 = 0x44 << 24;

/// What one GIC version adds to the shared distributor.
pub(super) trait FrontEnd {
    /// A register only this version has.
    type Reg: Copy;
    /// GICD_PIDR2's offset.
    const PIDR2_OFFSET: u64;
    /// GICD_PIDR2's value (its ArchRev field names the version).
    const PIDR2: u32;
    /// The GICD_CTLR bit that enables forwarding to the CPU interfaces.
    const CTLR_ENABLE: u32;
    /// The GICD_CTLR bits that always read as one.
    const CTLR_FIXED: u32;

    /// GICD_TYPER's fields other than ITLinesNumber.
    fn typer(vcpus: usize) -> u32;
    /// The register of this version's own at `offset`, if any. Asked before
    /// the banks, so it may claim offsets inside them.
    fn decode(offset: u64) -> Option<Self::Reg>;
    /// What bank register `reg` is to this version's distributor.
    fn bank(reg: BankReg) -> BankReg;
    /// The access sizes `reg` takes.
    fn width(reg: Self::Reg) -> Width;
    fn read(vgic: &Vgic, vcpu: usize, reg: Self::Reg, size: Size) -> u64;
    fn write(vgic: &mut Vgic, vcpu: usize, reg: Self::Reg, size: Size, value: u64);
}

/// A distributor register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DistReg<R> {
    Ctlr,
    Typer,
    Iidr,
    Pidr2,
    Bank(BankReg),
    Own(R),
}

impl<R: Copy> DistReg<R> {
    /// The register at `offset` of the distributor of version `F`; offsets
    /// with none are ignored words.
    fn decode<F: FrontEnd<Reg = R>>(offset: u64) -> Self {
        match offset {
            gicd::CTLR => DistReg::Ctlr,
            gicd::TYPER => DistReg::Typer,
            gicd::IIDR => DistReg::Iidr,
            _ if offset == F::PIDR2_OFFSET => DistReg::Pidr2,
            _ => match (F::decode(offset), BankReg::decode(offset)) {
                (Some(reg), _) => DistReg::Own(reg),
                (None, Some(reg)) => DistReg::Bank(F::bank(reg)),
                (None, None) => DistReg::Bank(BankReg::Ignored(Width::Word)),
            },
        }
    }

    fn width<F: FrontEnd<Reg = R>>(self) -> Width {
        match self {
            DistReg::Bank(reg) => reg.width(),
            DistReg::Own(reg) => F::width(reg),
            _ => Width::Word,
        }
    }
}

/// The distributor of a VM, at `layout::GICD_BASE`, as its front end shows
/// it. Its SGI and PPI registers, where the version has them, are those of
/// the vCPU that accesses them.
pub struct Distributor<'a> {
    vgic: &'a mut Vgic,
}

impl<'a> Distributor<'a> {
    pub fn new(vgic: &'a mut Vgic) -> Self {
        Self { vgic }
    }
}

impl MmioDevice for Distributor<'_> {
    fn read(&mut self, vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
        match self.vgic.front_end() {
            GicVersion::V2 => read::<Gicv2>(self.vgic, vcpu, offset, size),
            GicVersion::V3 => read::<Gicv3>(self.vgic, vcpu, offset, size),
        }
    }

    fn write(&mut self, vcpu: usize, offset: u64, size: Size, value: u64) -> Result<(), MmioError> {
        match self.vgic.front_end() {
            GicVersion::V2 => write::<Gicv2>(self.vgic, vcpu, offset, size, value),
            GicVersion::V3 => write::<Gicv3>(self.vgic, vcpu, offset, size, value),
        }
    }
}

/// The register an access reaches, once its size and alignment are checked
/// against the register's.
fn decode<F: FrontEnd>(offset: u64, size: Size) -> Result<DistReg<F::Reg>, MmioError> {
    check_access(offset, size)?;
    if offset >= layout::GICD_SIZE {
        return Err(MmioError::NoRegister { offset });
    }
    let reg = DistReg::decode::<F>(offset);
    reg.width::<F>().check(offset, size)?;
    Ok(reg)
}

fn ctlr<F: FrontEnd>(vgic: &Vgic) -> u32 {
    let enabled = if vgic.distributor_enabled() { F::CTLR_ENABLE } else { 0 };
    F::CTLR_FIXED | enabled
}

fn typer<F: FrontEnd>(vgic: &Vgic) -> u32 {
    let lines = INTID_LIMIT / 32 - 1;
    F::typer(vgic.vcpu_count()) | lines
}

/// A read by `vcpu` of version `F`'s distributor.
fn read<F: FrontEnd>(vgic: &Vgic, vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
    Ok(match decode::<F>(offset, size)? {
        DistReg::Ctlr => u64::from(ctlr::<F>(vgic)),
        DistReg::Typer => u64::from(typer::<F>(vgic)),
        DistReg::Iidr => u64::from(IIDR),
        DistReg::Pidr2 => u64::from(F::PIDR2),
        DistReg::Bank(reg) => vgic.bank_read(vcpu, reg, size),
        DistReg::Own(reg) => F::read(vgic, vcpu, reg, size),
    })
}

/// A write by `vcpu` to version `F`'s distributor.
fn write<F: FrontEnd>(
    vgic: &mut Vgic,
    vcpu: usize,
    offset: u64,
    size: Size,
    value: u64,
) -> Result<(), MmioError> {
    match decode::<F>(offset, size)? {
        DistReg::Ctlr => {
            let enable = value as u32 & F::CTLR_ENABLE != 0;
            vgic.set_distributor_enabled(vcpu, enable);
        }
        DistReg::Bank(reg) => vgic.bank_write(vcpu, vcpu, reg, size, value),
        DistReg::Own(reg) => F::write(vgic, vcpu, reg, size, value),
        DistReg::Typer | DistReg::Iidr | DistReg::Pidr2 => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The shell alone, through a made-up version whose own register and
    //! fields differ from both real ones.

    use super::*;

    /// A version with PIDR2 at 0x0fe8, a byte-or-word register of its own
    /// over ISENABLER0 (0x100), and only the first bank word ignored.
    struct Fake;

    const OWN: u64 = 0x0100;
    const PIDR2: u64 = 0x0fe8;

    impl FrontEnd for Fake {
        type Reg = ();
        const PIDR2_OFFSET: u64 = PIDR2;
        const PIDR2: u32 = 0x9 << 4;
        const CTLR_ENABLE: u32 = 1 << 3;
        const CTLR_FIXED: u32 = 1 << 7;

        fn typer(vcpus: usize) -> u32 {
            (vcpus as u32) << 8
        }

        fn decode(offset: u64) -> Option<()> {
            (offset == OWN).then_some(())
        }

        fn bank(reg: BankReg) -> BankReg {
            if reg.first() == Some(0) {
                reg.ignored()
            } else {
                reg
            }
        }

        fn width(_: ()) -> Width {
            Width::ByteOrWord
        }

        fn read(_: &Vgic, vcpu: usize, _: (), size: Size) -> u64 {
            0x100 * vcpu as u64 + u64::from(size)
        }

        fn write(vgic: &mut Vgic, vcpu: usize, _: (), _: Size, value: u64) {
            // Something visible: the write enables the distributor.
            vgic.set_distributor_enabled(vcpu, value != 0);
        }
    }

    fn gic() -> Vgic {
        Vgic::new(2).unwrap()
    }

    fn read(gic: &mut Vgic, vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
        super::read::<Fake>(gic, vcpu, offset, size)
    }

    fn write(gic: &mut Vgic, offset: u64, size: Size, value: u64) -> Result<(), MmioError> {
        super::write::<Fake>(gic, 0, offset, size, value)
    }

    #[test]
    fn shared_registers_take_the_versions_bits() {
        let mut gic = gic();
        assert_eq!(read(&mut gic, 0, 0x0, 4), Ok(1 << 7));
        write(&mut gic, 0x0, 4, 1 << 3).unwrap();
        assert_eq!(read(&mut gic, 0, 0x0, 4), Ok(1 << 7 | 1 << 3));
        write(&mut gic, 0x0, 4, 1 << 7).unwrap();
        assert_eq!(read(&mut gic, 0, 0x0, 4), Ok(1 << 7), "only the enable bit is written");
        let lines = u64::from(INTID_LIMIT / 32 - 1);
        assert_eq!(read(&mut gic, 0, 0x4, 4), Ok(2 << 8 | lines));
        assert_eq!(read(&mut gic, 0, 0x8, 4), Ok(u64::from(IIDR)));
        assert_eq!(read(&mut gic, 0, PIDR2, 4), Ok(0x90));
        // Read-only registers ignore writes.
        write(&mut gic, 0x4, 4, 0).unwrap();
        write(&mut gic, PIDR2, 4, 0).unwrap();
        assert_eq!(read(&mut gic, 0, 0x4, 4), Ok(2 << 8 | lines));
        assert_eq!(read(&mut gic, 0, PIDR2, 4), Ok(0x90));
    }

    #[test]
    fn the_versions_own_registers_come_before_the_banks() {
        let mut gic = gic();
        assert_eq!(read(&mut gic, 1, OWN, 1), Ok(0x101));
        assert_eq!(read(&mut gic, 0, OWN, 4), Ok(0x004));
        write(&mut gic, OWN, 1, 1).unwrap();
        assert_eq!(read(&mut gic, 0, 0x0, 4), Ok(1 << 7 | 1 << 3));
        // Its width, not the bank's (ISENABLER takes words only).
        assert_eq!(read(&mut gic, 0, OWN, 8), Err(MmioError::BadSize { offset: OWN, size: 8 }));
    }

    #[test]
    fn banks_go_through_the_version() {
        let mut gic = gic();
        // ISENABLER1 is a real bank register: SPIs 32..64.
        write(&mut gic, 0x104, 4, 0b101).unwrap();
        assert_eq!(read(&mut gic, 0, 0x104, 4), Ok(0b101));
        // ICENABLER0 covers INTID 0, which Fake ignores.
        write(&mut gic, 0x180, 4, 0).unwrap();
        assert_eq!(read(&mut gic, 0, 0x180, 4), Ok(0));
        assert_eq!(read(&mut gic, 0, 0x184, 4), Ok(0b101));
    }

    #[test]
    fn offsets_with_no_register_are_ignored_words() {
        let mut gic = gic();
        assert_eq!(read(&mut gic, 0, 0x0040, 4), Ok(0));
        write(&mut gic, 0x0040, 4, u64::MAX).unwrap();
        assert_eq!(read(&mut gic, 0, 0x0040, 4), Ok(0));
        assert_eq!(read(&mut gic, 0, 0x0040, 1), Err(MmioError::BadSize { offset: 0x40, size: 1 }));
    }

    #[test]
    fn bad_accesses_are_refused_before_decoding() {
        let mut gic = gic();
        assert_eq!(read(&mut gic, 0, 0x0, 2), Err(MmioError::BadSize { offset: 0, size: 2 }));
        assert_eq!(read(&mut gic, 0, 0x2, 4), Err(MmioError::Unaligned { offset: 2, size: 4 }));
        // Priority bytes take bytes, but not 64-bit accesses.
        assert_eq!(read(&mut gic, 0, 0x420, 8), Err(MmioError::BadSize { offset: 0x420, size: 8 }));
        let end = layout::GICD_SIZE;
        assert_eq!(read(&mut gic, 0, end, 4), Err(MmioError::NoRegister { offset: end }));
        assert_eq!(write(&mut gic, end, 4, 0), Err(MmioError::NoRegister { offset: end }));
    }
}
