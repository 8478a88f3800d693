//! The GICv3 front end of the virtual GIC: what its distributor adds to the
//! shared one in [`super::dist`] (GICD_IROUTER<n>, the CTLR and TYPER bits),
//! the redistributor registers a guest reaches through MMIO, the SGI
//! register it writes (ICC_SGI1R_EL1, trapped to Duet), and the
//! ICH_LR<n>_EL2 encoding.
//!
//! No interrupt state lives here: every access becomes a call on the model
//! ([`Vgic`]). The guest sees a GIC with one security state (GICD_CTLR.DS
//! reads 1), affinity routing always on, no LPIs, and every interrupt in
//! Group 1. SGIs and PPIs are configured only through the redistributors;
//! their words in the distributor read as zero.
//!
//! Access sizes follow the architecture: 32-bit accesses everywhere, bytes
//! only to the priority and target bytes, 64-bit only to GICD_IROUTER<n> and
//! GICR_TYPER (which also take 32-bit halves). Anything else is refused with
//! an [`MmioError`] so that Duet can inject an abort; offsets with no
//! register read as zero and ignore writes.

use super::bank::{check_access, BankReg, Width};
use super::dist::{FrontEnd, IIDR};
use super::{ListRegisterFormat, LrBits, LrEntry, LrState, Vgic, VgicError};
use crate::vm::device_tree::GicVersion;
use crate::vm::layout;
use crate::vm::mmio::{MmioDevice, MmioError, Size};

/// Distributor register offsets, from `layout::GICD_BASE`, beyond those
/// both versions share.
mod gicd {
    pub const IROUTER: u64 = 0x6000;
    pub const IROUTER_END: u64 = 0x8000;
    pub const PIDR2: u64 = 0xffe8;
}

/// Redistributor RD_base register offsets, from the start of a vCPU's frame.
mod gicr {
    pub const CTLR: u64 = 0x0000;
    pub const IIDR: u64 = 0x0004;
    pub const TYPER: u64 = 0x0008;
    pub const TYPER_HIGH: u64 = 0x000c;
    pub const WAKER: u64 = 0x0014;
    pub const PIDR2: u64 = 0xffe8;
    /// SGI_base follows RD_base, 64 KiB in.
    pub const SGI_FRAME: u64 = 0x1_0000;
}

// GICD_CTLR.
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;
// GICD_TYPER.
const TYPER_IDBITS_SHIFT: u32 = 19;
/// INTIDs have 10 bits (the field holds bits - 1).
const TYPER_IDBITS: u32 = 9;
/// PIDR2.ArchRev [7:4] = 3: GICv3.
const PIDR2_GICV3: u32 = 0x3 << 4;
// GICD_IROUTER<n>: Aff3 [39:32], IRM [31], Aff2.Aff1.Aff0 [23:0].
const IROUTER_IRM: u64 = 1 << 31;
const AFFINITY_MASK: u64 = 0xff_00ff_ffff;
const IROUTER_MASK: u64 = AFFINITY_MASK | IROUTER_IRM;
// GICR_TYPER.
const GICR_TYPER_AFFINITY_SHIFT: u32 = 32;
const GICR_TYPER_PROCESSOR_SHIFT: u32 = 8;
const GICR_TYPER_LAST: u64 = 1 << 4;
// GICR_WAKER.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_ICFGR0: SGIs are edge-triggered (bit 1 of each 2-bit field).
const ICFGR_ALL_EDGE: u32 = 0xaaaa_aaaa;
const LOW_HALF: u64 = 0xffff_ffff;

/// The affinity fields of an MPIDR, where GICD_IROUTER keeps them too.
fn mpidr_affinity(mpidr: u64) -> u64 {
    mpidr & AFFINITY_MASK
}

/// Affinity level `level` (0..=3) of an MPIDR value.
fn affinity_level(mpidr: u64, level: u32) -> u8 {
    let shift = if level == 3 { 32 } else { 8 * level };
    (mpidr >> shift) as u8
}

/// The vCPU a GICD_IROUTER value names: "any" (IRM) picks vCPU 0, an
/// affinity matching no vCPU routes nowhere.
fn router_target(raw: u64, vcpus: usize) -> Option<usize> {
    if raw & IROUTER_IRM != 0 {
        return Some(0);
    }
    (0..vcpus).find(|&vcpu| mpidr_affinity(layout::vcpu_mpidr(vcpu)) == raw & AFFINITY_MASK)
}

/// A distributor register only GICv3 has: GICD_IROUTER<n> for INTID
/// `intid`; `high` for the upper 32-bit half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Router {
    intid: u32,
    high: bool,
}

/// What the GICv3 distributor adds to the shared one.
pub(super) struct Gicv3;

impl FrontEnd for Gicv3 {
    type Reg = Router;
    const PIDR2_OFFSET: u64 = gicd::PIDR2;
    const PIDR2: u32 = PIDR2_GICV3;
    const CTLR_ENABLE: u32 = CTLR_ENABLE_GRP1;
    const CTLR_FIXED: u32 = CTLR_ARE | CTLR_DS;

    fn typer(_vcpus: usize) -> u32 {
        TYPER_IDBITS << TYPER_IDBITS_SHIFT
    }

    fn decode(offset: u64) -> Option<Router> {
        (gicd::IROUTER..gicd::IROUTER_END)
            .contains(&offset)
            .then(|| Router { intid: ((offset - gicd::IROUTER) / 8) as u32, high: offset % 8 == 4 })
    }

    /// SGIs and PPIs live in the redistributors.
    fn bank(reg: BankReg) -> BankReg {
        if reg.is_private() {
            reg.ignored()
        } else {
            reg
        }
    }

    fn width(_: Router) -> Width {
        Width::Double
    }

    fn read(vgic: &Vgic, _vcpu: usize, Router { intid, high }: Router, size: Size) -> u64 {
        let raw = vgic.route(intid);
        match (size, high) {
            (8, _) => raw,
            (_, true) => raw >> 32,
            (_, false) => raw & LOW_HALF,
        }
    }

    fn write(
        vgic: &mut Vgic,
        actor: usize,
        Router { intid, high }: Router,
        size: Size,
        value: u64,
    ) {
        let old = vgic.route(intid);
        let raw = match (size, high) {
            (8, _) => value,
            (_, true) => (old & LOW_HALF) | value << 32,
            (_, false) => (old & !LOW_HALF) | (value & LOW_HALF),
        } & IROUTER_MASK;
        let target = router_target(raw, vgic.vcpu_count());
        vgic.set_route(actor, intid, raw, target);
    }
}

/// A register of a redistributor's RD_base frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RdReg {
    Iidr,
    /// GICR_TYPER; `high` for the upper 32-bit half.
    Typer {
        high: bool,
    },
    Waker,
    Pidr2,
    /// GICR_CTLR (no LPIs to enable, RWP 0) and everything unimplemented.
    RazWi,
}

impl RdReg {
    fn decode(offset: u64) -> Self {
        match offset {
            gicr::IIDR => RdReg::Iidr,
            gicr::TYPER => RdReg::Typer { high: false },
            gicr::TYPER_HIGH => RdReg::Typer { high: true },
            gicr::WAKER => RdReg::Waker,
            gicr::PIDR2 => RdReg::Pidr2,
            gicr::CTLR => RdReg::RazWi,
            _ => RdReg::RazWi,
        }
    }

    fn width(self) -> Width {
        match self {
            RdReg::Typer { high: false } => Width::Double,
            _ => Width::Word,
        }
    }
}

/// Where in the redistributor region an access lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RedistReg {
    Rd(RdReg),
    Sgi(BankReg),
}

/// All of a VM's GICv3 redistributors: one 128 KiB frame per vCPU from
/// `layout::GICR_BASE`, vCPU n's at `n * layout::GICR_STRIDE`. Any vCPU may
/// access any frame; the frame, not the accessor, says whose SGIs and PPIs
/// are meant.
pub struct GicRedistributors<'a> {
    vgic: &'a mut Vgic,
}

impl<'a> GicRedistributors<'a> {
    pub fn new(vgic: &'a mut Vgic) -> Self {
        Self { vgic }
    }

    /// The vCPU whose frame holds `offset`, and the register there.
    fn decode(&self, offset: u64, size: Size) -> Result<(usize, RedistReg), MmioError> {
        check_access(offset, size)?;
        let frame = offset / layout::GICR_STRIDE;
        // A GICv2 guest has no redistributors.
        if frame >= self.vgic.vcpu_count() as u64 || self.vgic.front_end() != GicVersion::V3 {
            return Err(MmioError::NoRegister { offset });
        }
        let within = offset % layout::GICR_STRIDE;
        let reg = if within < gicr::SGI_FRAME {
            RedistReg::Rd(RdReg::decode(within))
        } else {
            RedistReg::Sgi(Self::decode_sgi(within - gicr::SGI_FRAME))
        };
        let width = match reg {
            RedistReg::Rd(reg) => reg.width(),
            RedistReg::Sgi(reg) => reg.width(),
        };
        width.check(offset, size)?;
        Ok((frame as usize, reg))
    }

    /// SGI_base implements the first word of each bank: INTIDs 0..32.
    fn decode_sgi(offset: u64) -> BankReg {
        match BankReg::decode(offset) {
            Some(reg) if reg.is_private() => reg,
            Some(reg) => reg.ignored(),
            None => BankReg::Ignored(Width::Word),
        }
    }

    fn typer(&self, vcpu: usize) -> u64 {
        let mpidr = layout::vcpu_mpidr(vcpu);
        let affinity = (0..4)
            .rev()
            .fold(0u64, |value, level| value << 8 | u64::from(affinity_level(mpidr, level)));
        let last = if vcpu + 1 == self.vgic.vcpu_count() { GICR_TYPER_LAST } else { 0 };
        affinity << GICR_TYPER_AFFINITY_SHIFT | (vcpu as u64) << GICR_TYPER_PROCESSOR_SHIFT | last
    }

    fn waker(&self, vcpu: usize) -> u32 {
        if self.vgic.asleep(vcpu) {
            WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
        } else {
            0
        }
    }

    fn read_rd(&self, vcpu: usize, reg: RdReg, size: Size) -> u64 {
        match reg {
            RdReg::Iidr => u64::from(IIDR),
            RdReg::Typer { high: true } => self.typer(vcpu) >> 32,
            RdReg::Typer { high: false } if size == 4 => self.typer(vcpu) & LOW_HALF,
            RdReg::Typer { high: false } => self.typer(vcpu),
            RdReg::Waker => u64::from(self.waker(vcpu)),
            RdReg::Pidr2 => u64::from(PIDR2_GICV3),
            RdReg::RazWi => 0,
        }
    }

    /// ICFGR0 says SGIs are edge-triggered, whatever is written.
    fn read_sgi(&self, vcpu: usize, reg: BankReg, size: Size) -> u64 {
        match reg {
            BankReg::Config { first: 0 } => u64::from(ICFGR_ALL_EDGE),
            _ => self.vgic.bank_read(vcpu, reg, size),
        }
    }
}

impl MmioDevice for GicRedistributors<'_> {
    fn read(&mut self, _vcpu: usize, offset: u64, size: Size) -> Result<u64, MmioError> {
        Ok(match self.decode(offset, size)? {
            (frame, RedistReg::Rd(reg)) => self.read_rd(frame, reg, size),
            (frame, RedistReg::Sgi(reg)) => self.read_sgi(frame, reg, size),
        })
    }

    fn write(&mut self, vcpu: usize, offset: u64, size: Size, value: u64) -> Result<(), MmioError> {
        match self.decode(offset, size)? {
            (frame, RedistReg::Rd(RdReg::Waker)) => {
                self.vgic.set_asleep(frame, value as u32 & WAKER_PROCESSOR_SLEEP != 0);
            }
            (_, RedistReg::Rd(_)) => {}
            (frame, RedistReg::Sgi(reg)) => self.vgic.bank_write(vcpu, frame, reg, size, value),
        }
        Ok(())
    }
}

/// Who an ICC_SGI1R_EL1 write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTargets {
    /// IRM = 1: every vCPU but the sender.
    Others,
    /// IRM = 0: the vCPUs with affinity Aff3.Aff2.Aff1 whose Aff0 is
    /// `range * 16 + n` for each bit n set in `list`.
    List { aff3: u8, aff2: u8, aff1: u8, range: u8, list: u16 },
}

/// A decoded write to ICC_SGI1R_EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiRequest {
    pub intid: u32,
    pub targets: SgiTargets,
}

// ICC_SGI1R_EL1 fields.
const SGI1R_INTID_SHIFT: u32 = 24;
const SGI1R_AFF1_SHIFT: u32 = 16;
const SGI1R_AFF2_SHIFT: u32 = 32;
const SGI1R_IRM: u64 = 1 << 40;
const SGI1R_RS_SHIFT: u32 = 44;
const SGI1R_AFF3_SHIFT: u32 = 48;
const SGI1R_TARGET_LIST: u64 = 0xffff;
/// Aff0 values per range selector step.
const SGI_RANGE_SIZE: u8 = 16;

impl SgiRequest {
    pub fn decode(value: u64) -> Self {
        let byte = |shift: u32| (value >> shift) as u8;
        let targets = if value & SGI1R_IRM != 0 {
            SgiTargets::Others
        } else {
            SgiTargets::List {
                aff3: byte(SGI1R_AFF3_SHIFT),
                aff2: byte(SGI1R_AFF2_SHIFT),
                aff1: byte(SGI1R_AFF1_SHIFT),
                range: byte(SGI1R_RS_SHIFT) & 0xf,
                list: (value & SGI1R_TARGET_LIST) as u16,
            }
        };
        Self { intid: u32::from(byte(SGI1R_INTID_SHIFT) & 0xf), targets }
    }

    /// The vCPUs targeted (bit n = vCPU n) in a VM of `vcpus` vCPUs.
    pub fn target_mask(&self, vcpus: usize, sender: usize) -> u32 {
        (0..vcpus.min(32))
            .filter(|&vcpu| self.targets(vcpu, sender))
            .fold(0, |mask, vcpu| mask | 1 << vcpu)
    }

    fn targets(&self, vcpu: usize, sender: usize) -> bool {
        let mpidr = layout::vcpu_mpidr(vcpu);
        match self.targets {
            SgiTargets::Others => vcpu != sender,
            SgiTargets::List { aff3, aff2, aff1, range, list } => {
                let aff0 = affinity_level(mpidr, 0);
                let cluster =
                    [aff1, aff2, aff3] == [1, 2, 3].map(|level| affinity_level(mpidr, level));
                cluster
                    && aff0 / SGI_RANGE_SIZE == range
                    && list & (1 << (aff0 % SGI_RANGE_SIZE)) != 0
            }
        }
    }
}

/// The ICH_LR<n>_EL2 format (for virtual interrupts, HW = 0).
pub struct IchLr;

// ICH_LR<n>_EL2 fields.
const LR_GROUP1: u64 = 1 << 60;
const LR_PRIORITY_SHIFT: u32 = 48;
const LR_VINTID: u64 = 0xffff_ffff;
/// Pending [62], active [63]; with HW = 0, bit 41 asks for an EOI
/// maintenance interrupt.
const LR_BITS: LrBits = LrBits { pending: 1 << 62, active: 1 << 63, eoi: 1 << 41 };

impl IchLr {
    pub fn encode(entry: LrEntry) -> u64 {
        let priority = u64::from(entry.priority) << LR_PRIORITY_SHIFT;
        LR_GROUP1 | priority | u64::from(entry.intid) | LR_BITS.of(&entry)
    }

    pub fn decode(lr: u64) -> LrEntry {
        LrEntry {
            intid: (lr & LR_VINTID) as u32,
            priority: (lr >> LR_PRIORITY_SHIFT) as u8,
            state: LR_BITS.state(lr),
            eoi_maintenance: lr & LR_BITS.eoi != 0,
        }
    }
}

impl ListRegisterFormat for IchLr {
    type Word = u64;
    const EMPTY: u64 = 0;

    fn encode(entry: LrEntry) -> u64 {
        IchLr::encode(entry)
    }

    fn state(lr: u64) -> LrState {
        LR_BITS.state(lr)
    }
}

/// The GICv3 face of the model.
impl Vgic {
    /// Sends the SGIs a guest's write of `icc_sgi1r` to ICC_SGI1R_EL1 asks
    /// for, from vCPU `sender`. Targets the VM lacks are ignored.
    pub fn send_sgi(&mut self, sender: usize, icc_sgi1r: u64) -> Result<(), VgicError> {
        if sender >= self.vcpu_count() {
            return Err(VgicError::NoSuchVcpu { vcpu: sender });
        }
        let request = SgiRequest::decode(icc_sgi1r);
        let targets = request.target_mask(self.vcpu_count(), sender);
        self.signal_sgi(sender, request.intid, targets);
        Ok(())
    }

    /// The redistributors, for one MMIO access.
    pub fn redistributors(&mut self) -> GicRedistributors<'_> {
        GicRedistributors::new(self)
    }
}
