//! The GICv2 front end of the virtual GIC: what its distributor adds to the
//! shared one in [`super::dist`] (GICD_ITARGETSR<n>, GICD_SGIR through which
//! the guest sends SGIs, the CTLR and TYPER bits) and the GICH_LR<n>
//! list-register encoding. The guest's CPU interface is
//! the hardware's virtual one (GICV, mapped into its stage 2), so it has no
//! emulation here.
//!
//! No interrupt state lives here: every access becomes a call on the model
//! ([`Vgic`]). The guest sees a GICv2 without security extensions, every
//! interrupt in Group 0 (GICD_IGROUPR reads as zero and ignores writes: a
//! Linux guest keeps Group 0 and enables only it), SGIs and PPIs banked per
//! accessing vCPU, and SPIs routed by GICD_ITARGETSR<n>. A target byte naming
//! several vCPUs routes to the lowest of them (the model delivers each SPI to
//! one vCPU; Linux always names one). SGIs carry no source CPU: an SGI sent
//! by several vCPUs at once is taken once, with source 0.
//!
//! Access sizes follow the architecture: 32-bit accesses everywhere, bytes
//! also to the priority, target and SGI pending bytes. Anything else is
//! refused with an [`MmioError`] so that Duet can inject an abort; offsets
//! with no register read as zero and ignore writes.

use super::bank::{offsets, BankReg, Width};
use super::dist::FrontEnd;
use super::{
    ListRegisterFormat, LrBits, LrEntry, LrState, Vgic, INTID_LIMIT, PRIVATE_COUNT, SGI_COUNT,
};
use crate::vm::mmio::Size;

/// Distributor register offsets, from `layout::GICD_BASE`, beyond those
/// both versions share.
mod gicd {
    pub const SGIR: u64 = 0x0f00;
    pub const CPENDSGIR: u64 = 0x0f10;
    pub const SPENDSGIR_END: u64 = 0x0f30;
    pub const PIDR2: u64 = 0x0fe8;
}

/// GICD_CTLR.Enable: forward interrupts to the CPU interfaces.
const CTLR_ENABLE: u32 = 1 << 0;
/// GICD_TYPER.CPUNumber [7:5]: CPU interfaces - 1.
const TYPER_CPUS_SHIFT: u32 = 5;
/// PIDR2.ArchRev [7:4] = 2: GICv2.
const PIDR2_GICV2: u32 = 0x2 << 4;
/// GICD_ICFGR0: SGIs are edge-triggered (bit 1 of each 2-bit field).
const ICFGR_ALL_EDGE: u32 = 0xaaaa_aaaa;
// GICD_SGIR fields.
const SGIR_FILTER_SHIFT: u32 = 24;
const SGIR_TARGETS_SHIFT: u32 = 16;
const SGIR_INTID: u32 = 0xf;

/// Who a GICD_SGIR write targets (its TargetListFilter field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgirTargets {
    /// 0b00: the CPU interfaces in the list (bit n = vCPU n).
    List(u8),
    /// 0b01: every vCPU but the sender.
    Others,
    /// 0b10: the sender only.
    Myself,
    /// 0b11: reserved; the write does nothing.
    Reserved,
}

/// A decoded write to GICD_SGIR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgirRequest {
    pub intid: u32,
    pub targets: SgirTargets,
}

impl SgirRequest {
    pub fn decode(value: u32) -> Self {
        let targets = match (value >> SGIR_FILTER_SHIFT) & 0b11 {
            0b00 => SgirTargets::List((value >> SGIR_TARGETS_SHIFT) as u8),
            0b01 => SgirTargets::Others,
            0b10 => SgirTargets::Myself,
            _ => SgirTargets::Reserved,
        };
        Self { intid: value & SGIR_INTID, targets }
    }

    /// The vCPUs targeted (bit n = vCPU n) in a VM of `vcpus` vCPUs.
    pub fn target_mask(&self, vcpus: usize, sender: usize) -> u32 {
        let all = cpu_mask(vcpus);
        match self.targets {
            SgirTargets::List(list) => u32::from(list) & all,
            SgirTargets::Others => all & !(1 << sender),
            SgirTargets::Myself => (1 << sender) & all,
            SgirTargets::Reserved => 0,
        }
    }
}

/// One bit per vCPU of a VM with `vcpus` vCPUs (at most 8 on GICv2).
fn cpu_mask(vcpus: usize) -> u32 {
    (1u32 << vcpus.min(8)) - 1
}

/// A distributor register only GICv2 has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gicv2Reg {
    /// GICD_ICFGR0: SGIs are edge-triggered, whatever is written.
    SgiConfig,
    /// GICD_ITARGETSR<n>, from byte `first` (one byte per INTID).
    Targets {
        first: u32,
    },
    Sgir,
    /// GICD_CPENDSGIR and GICD_SPENDSGIR: SGI sources are not kept.
    SgiSources,
}

/// What the GICv2 distributor adds to the shared one. Its SGI and PPI
/// registers are those of the vCPU that accesses them.
pub(super) struct Gicv2;

impl FrontEnd for Gicv2 {
    type Reg = Gicv2Reg;
    const PIDR2_OFFSET: u64 = gicd::PIDR2;
    const PIDR2: u32 = PIDR2_GICV2;
    const CTLR_ENABLE: u32 = CTLR_ENABLE;
    const CTLR_FIXED: u32 = 0;

    fn typer(vcpus: usize) -> u32 {
        (vcpus as u32 - 1) << TYPER_CPUS_SHIFT
    }

    fn decode(offset: u64) -> Option<Gicv2Reg> {
        Some(match offset {
            offsets::ICFGR => Gicv2Reg::SgiConfig,
            gicd::SGIR => Gicv2Reg::Sgir,
            gicd::CPENDSGIR..gicd::SPENDSGIR_END => Gicv2Reg::SgiSources,
            offsets::ITARGETSR..offsets::ICFGR => {
                Gicv2Reg::Targets { first: (offset - offsets::ITARGETSR) as u32 }
            }
            _ => return None,
        })
    }

    /// Every interrupt is Group 0.
    fn bank(reg: BankReg) -> BankReg {
        match reg {
            BankReg::Group { .. } => reg.ignored(),
            _ => reg,
        }
    }

    fn width(reg: Gicv2Reg) -> Width {
        match reg {
            Gicv2Reg::Targets { .. } | Gicv2Reg::SgiSources => Width::ByteOrWord,
            Gicv2Reg::SgiConfig | Gicv2Reg::Sgir => Width::Word,
        }
    }

    fn read(vgic: &Vgic, vcpu: usize, reg: Gicv2Reg, size: Size) -> u64 {
        match reg {
            Gicv2Reg::SgiConfig => u64::from(ICFGR_ALL_EDGE),
            Gicv2Reg::Targets { first } => read_targets(vgic, vcpu, first, size),
            Gicv2Reg::Sgir | Gicv2Reg::SgiSources => 0,
        }
    }

    fn write(vgic: &mut Vgic, vcpu: usize, reg: Gicv2Reg, size: Size, value: u64) {
        match reg {
            Gicv2Reg::Targets { first } => write_targets(vgic, vcpu, first, size, value),
            Gicv2Reg::Sgir => send_sgi(vgic, vcpu, value as u32),
            Gicv2Reg::SgiConfig | Gicv2Reg::SgiSources => {}
        }
    }
}

/// The target byte of `intid` as `vcpu` reads it: SGIs and PPIs name the
/// reader, SPIs their routing, unimplemented INTIDs nothing.
fn target_byte(vgic: &Vgic, vcpu: usize, intid: u32) -> u32 {
    if intid >= INTID_LIMIT {
        0
    } else if intid < PRIVATE_COUNT {
        1 << vcpu
    } else {
        vgic.route(intid) as u32 & 0xff
    }
}

fn read_targets(vgic: &Vgic, vcpu: usize, first: u32, size: Size) -> u64 {
    let word = (0..u32::from(size))
        .fold(0, |word, lane| word | target_byte(vgic, vcpu, first + lane) << (8 * lane));
    u64::from(word)
}

/// Routes each SPI of the access to the lowest vCPU its byte names; bits of
/// vCPUs the VM lacks read back as zero, as on hardware.
fn write_targets(vgic: &mut Vgic, actor: usize, first: u32, size: Size, value: u64) {
    let implemented = cpu_mask(vgic.vcpu_count());
    for lane in 0..u32::from(size) {
        let intid = first + lane;
        if !(PRIVATE_COUNT..INTID_LIMIT).contains(&intid) {
            continue;
        }
        let byte = (value >> (8 * lane)) as u32 & implemented;
        let target = (byte != 0).then(|| byte.trailing_zeros() as usize);
        vgic.set_route(actor, intid, u64::from(byte), target);
    }
}

fn send_sgi(vgic: &mut Vgic, sender: usize, value: u32) {
    let request = SgirRequest::decode(value);
    let targets = request.target_mask(vgic.vcpu_count(), sender);
    vgic.signal_sgi(sender, request.intid, targets);
}

/// The GICH_LR<n> format (for virtual interrupts, HW = 0), held in a u64 so
/// both front ends pass list registers around alike.
pub struct GichLr;

// GICH_LR<n> fields.
const LR_VIRTUAL_ID: u64 = 0x3ff;
/// Priority [27:23]: the top five bits of the 8-bit priority.
const LR_PRIORITY_SHIFT: u32 = 23 - 3;
const LR_PRIORITY: u64 = 0x1f << 23;
/// Pending [28], active [29]; with HW = 0, bit 19 of the PhysicalID field
/// asks for an EOI maintenance interrupt.
const LR_BITS: LrBits = LrBits { pending: 1 << 28, active: 1 << 29, eoi: 1 << 19 };

impl GichLr {
    pub fn encode(entry: LrEntry) -> u64 {
        let priority = (u64::from(entry.priority) << LR_PRIORITY_SHIFT) & LR_PRIORITY;
        priority | (u64::from(entry.intid) & LR_VIRTUAL_ID) | LR_BITS.of(&entry)
    }

    pub fn decode(lr: u64) -> LrEntry {
        LrEntry {
            intid: (lr & LR_VIRTUAL_ID) as u32,
            priority: ((lr & LR_PRIORITY) >> LR_PRIORITY_SHIFT) as u8,
            state: LR_BITS.state(lr),
            eoi_maintenance: lr & LR_BITS.eoi != 0,
        }
    }
}

impl ListRegisterFormat for GichLr {
    type Word = u64;
    const EMPTY: u64 = 0;

    fn encode(entry: LrEntry) -> u64 {
        GichLr::encode(entry)
    }

    fn state(lr: u64) -> LrState {
        LR_BITS.state(lr)
    }
}

// SGIs are INTIDs 0..16 on both versions; GICD_SGIR's INTID field has 4 bits.
const _: () = assert!(SGI_COUNT == 16);
