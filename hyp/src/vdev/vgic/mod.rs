//! The virtual GIC's interrupt model: one [`Vgic`] per VM, shared by every
//! GIC front end (GICv3 in [`v3`], GICv2 in [`v2`]; the register banks
//! both share in [`bank`], their shared distributor shell in [`dist`]).
//!
//! It owns the state of each virtual interrupt (enable, pending latch, level
//! line, active, priority, trigger, routing), decides which interrupts each
//! vCPU should see, reports which vCPUs must be kicked, and moves interrupts
//! in and out of the hardware's list registers. It knows no register layout:
//! front ends turn MMIO and trapped system-register accesses into calls here,
//! and the arch layer copies list-register values to and from the hardware.
//!
//! List registers follow one simple policy. On every guest exit the caller
//! folds all of the vCPU's list registers back ([`Vgic::sync_lrs`]); on every
//! entry it refills them from the model ([`Vgic::fill_lrs`]). In between, an
//! interrupt sitting in a list register is *listed*: the list register, not
//! the model, holds its pending and active state, and the model only records
//! what happens to it meanwhile (a new edge, a guest write from another vCPU)
//! so that nothing is lost when the list register comes back.
//!
//! Every interrupt is Group 1; the guest's CPU interface is the hardware's
//! virtual one, so acknowledge, EOI and priority masking never reach Duet.

mod bank;
mod dist;
pub mod v2;
pub mod v3;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v2;

use core::fmt;

pub use dist::Distributor;

use crate::vm::device_tree::GicVersion;
use crate::vm::layout;

/// SGIs are INTIDs 0..16, per vCPU.
pub const SGI_COUNT: u32 = 16;
/// SGIs and PPIs together: INTIDs 0..32, banked per vCPU.
pub const PRIVATE_COUNT: u32 = 32;
/// The first SPI.
pub const SPI_BASE: u32 = PRIVATE_COUNT;
/// One past the last INTID the model implements.
pub const INTID_LIMIT: u32 = SPI_BASE + layout::SPI_COUNT;
/// The most list registers any GIC has (ICH_LR0..15_EL2).
pub const MAX_LIST_REGISTERS: usize = 16;
/// Priority bits kept: the virtual CPU interface implements at least five,
/// so the model never orders interrupts by bits the hardware would ignore.
pub const PRIORITY_MASK: u8 = 0xf8;

const PRIVATE: usize = PRIVATE_COUNT as usize;
const SPIS: usize = layout::SPI_COUNT as usize;
const INTIDS: usize = INTID_LIMIT as usize;

// Kicks are a u32 bitmask, front ends count interrupts in 32-bit words.
const _: () = assert!(layout::MAX_VCPUS <= 32);
const _: () = assert!(layout::SPI_COUNT.is_multiple_of(32));

/// Why the model refused a request from the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// A VM needs between 1 and `layout::MAX_VCPUS` vCPUs.
    BadVcpuCount { count: usize },
    /// The vCPU index is not one of this VM's.
    NoSuchVcpu { vcpu: usize },
    /// The INTID is not implemented.
    NoSuchInterrupt { intid: u32 },
    /// SGIs have no input line; they are sent with `send_sgi`.
    NotALine { intid: u32 },
}

impl fmt::Display for VgicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadVcpuCount { count } => {
                write!(f, "{count} vCPUs is not between 1 and {}", layout::MAX_VCPUS)
            }
            Self::NoSuchVcpu { vcpu } => write!(f, "no vCPU {vcpu}"),
            Self::NoSuchInterrupt { intid } => write!(f, "no interrupt {intid}"),
            Self::NotALine { intid } => write!(f, "interrupt {intid} is an SGI and has no line"),
        }
    }
}

/// What [`Vgic::fill_lrs`] put in the list registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fill {
    /// List registers used, from the first; the rest were zeroed.
    pub used: usize,
    /// More interrupts wait for this vCPU than fitted: the caller should ask
    /// for the underflow maintenance interrupt (ICH_HCR_EL2.UIE) so it gets
    /// an exit, and a refill, once the guest has drained the list registers.
    pub more: bool,
}

/// One list register's content, independent of its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LrEntry {
    pub intid: u32,
    pub priority: u8,
    pub state: LrState,
    /// Ask for a maintenance interrupt when the guest EOIs it. Set for
    /// level-sensitive interrupts, whose line must be looked at again then.
    pub eoi_maintenance: bool,
}

/// The state bits of a list register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LrState {
    pub pending: bool,
    pub active: bool,
}

/// How one GIC version encodes a list register. The model picks what goes
/// in; the format only packs and unpacks bits.
pub trait ListRegisterFormat {
    /// One list register's raw value.
    type Word: Copy;
    /// An unused list register.
    const EMPTY: Self::Word;
    fn encode(entry: LrEntry) -> Self::Word;
    /// The state the guest left in a list register.
    fn state(word: Self::Word) -> LrState;
}

/// Where a 64-bit list-register format keeps its state and maintenance
/// bits, the same meaning on GICv2 and GICv3 at different places.
pub struct LrBits {
    pub pending: u64,
    pub active: u64,
    /// Asks for an EOI maintenance interrupt.
    pub eoi: u64,
}

impl LrBits {
    /// The bits of `entry`'s state and maintenance request.
    pub fn of(&self, entry: &LrEntry) -> u64 {
        let bit = |set: bool, bit: u64| if set { bit } else { 0 };
        bit(entry.state.pending, self.pending)
            | bit(entry.state.active, self.active)
            | bit(entry.eoi_maintenance, self.eoi)
    }

    /// The state kept in `lr`.
    pub fn state(&self, lr: u64) -> LrState {
        LrState { pending: lr & self.pending != 0, active: lr & self.active != 0 }
    }
}

/// One 1-bit-per-interrupt property, as the set/clear register banks of
/// every GIC version expose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Enabled,
    Pending,
    Active,
}

/// The state of one interrupt.
#[derive(Clone, Copy, Debug)]
struct Irq {
    enabled: bool,
    /// Pending set by an edge, `raise`, an SGI or a guest write; cleared when
    /// the guest acknowledges. Level-sensitive interrupts are also pending
    /// while their line is high.
    latch: bool,
    line: bool,
    active: bool,
    edge: bool,
    priority: u8,
    /// SPIs: the vCPU it is active on, where its EOI will come from.
    active_on: u8,
    /// The vCPU whose list registers hold it, between a fill and its sync.
    listed_on: Option<u8>,
    /// While listed, the guest cleared its pending state through the
    /// distributor: the list register's pending state must not come back.
    pending_cleared: bool,
    /// While listed, the guest wrote its active state: that write wins over
    /// the list register's.
    active_written: bool,
}

impl Irq {
    const fn reset(edge: bool) -> Self {
        Self {
            enabled: false,
            latch: false,
            line: false,
            active: false,
            edge,
            priority: 0,
            active_on: 0,
            listed_on: None,
            pending_cleared: false,
            active_written: false,
        }
    }

    fn pending(&self) -> bool {
        self.latch || (!self.edge && self.line)
    }

    fn get(&self, field: Field) -> bool {
        match field {
            Field::Enabled => self.enabled,
            Field::Pending => self.pending(),
            Field::Active => self.active,
        }
    }
}

/// Where a SPI goes, as its front end's routing register says.
#[derive(Clone, Copy, Debug, Default)]
struct Route {
    /// The routing register as the guest wrote it, kept for reading back.
    raw: u64,
    /// The vCPU it names, if any.
    target: Option<u8>,
}

/// What one list register of a vCPU holds since the last fill.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    intid: u16,
    /// The state written; assumed unchanged if the caller does not return it.
    wrote: LrState,
    /// The pending latch moved into the list register with it.
    latch_moved: bool,
}

/// Per-vCPU state: its banked interrupts and its list registers.
#[derive(Clone, Copy, Debug)]
struct VcpuState {
    private: [Irq; PRIVATE],
    slots: [Slot; MAX_LIST_REGISTERS],
    listed: usize,
    /// The redistributor's power state (GICR_WAKER.ProcessorSleep on v3).
    asleep: bool,
    /// Bit n: private interrupt n may be pending or active (see `hint`).
    hint: u32,
}

impl VcpuState {
    fn reset(index: usize) -> Self {
        let mut private = [Irq::reset(false); PRIVATE];
        for (intid, irq) in private.iter_mut().enumerate() {
            irq.edge = (intid as u32) < SGI_COUNT; // SGIs are always edge
            irq.active_on = index as u8;
        }
        let slots = [Slot::default(); MAX_LIST_REGISTERS];
        Self { private, slots, listed: 0, asleep: true, hint: 0 }
    }
}

/// The virtual GIC of one VM.
#[derive(Clone, Debug)]
pub struct Vgic {
    /// The front end the guest sees.
    front_end: GicVersion,
    vcpus: usize,
    /// Group 1 forwarding enabled in the distributor.
    enabled: bool,
    cpus: [VcpuState; layout::MAX_VCPUS],
    spis: [Irq; SPIS],
    routes: [Route; SPIS],
    kicks: u32,
    /// Bit n of word w: SPI 64 * w + n may be pending or active.
    ///
    /// The hints let every guest entry skip the interrupts that are surely
    /// idle. The rule: an interrupt that is pending or active has its bit
    /// set. Every change to an interrupt's state goes through `irq_mut` or
    /// `signal_sgi`, which set the bit; only `any_pending_or_active` clears
    /// bits, of interrupts it finds idle.
    spi_hint: [u64; SPIS.div_ceil(64)],
}

// Private interrupts' hints fit one u32.
const _: () = assert!(PRIVATE <= 32);

impl Vgic {
    /// A GIC in its reset state for a VM with `vcpus` vCPUs: everything
    /// disabled, inactive and not pending, priorities 0, SPIs level-sensitive
    /// and routed to vCPU 0.
    pub fn new(vcpus: usize) -> Result<Self, VgicError> {
        Self::with_front_end(vcpus, GicVersion::V3)
    }

    /// The same, seen by the guest through the `front_end` version's
    /// registers. On GICv2 the SPIs' target registers start out naming
    /// vCPU 0, where the model routes them.
    pub fn with_front_end(vcpus: usize, front_end: GicVersion) -> Result<Self, VgicError> {
        if vcpus == 0 || vcpus > layout::MAX_VCPUS {
            return Err(VgicError::BadVcpuCount { count: vcpus });
        }
        let mut cpus = [VcpuState::reset(0); layout::MAX_VCPUS];
        for (index, cpu) in cpus.iter_mut().enumerate() {
            *cpu = VcpuState::reset(index);
        }
        let raw = match front_end {
            GicVersion::V2 => 1,
            GicVersion::V3 => 0,
        };
        let route = Route { raw, target: Some(0) };
        Ok(Self {
            front_end,
            vcpus,
            enabled: false,
            cpus,
            spis: [Irq::reset(false); SPIS],
            routes: [route; SPIS],
            kicks: 0,
            spi_hint: [0; SPIS.div_ceil(64)],
        })
    }

    /// The number of vCPUs.
    pub fn vcpu_count(&self) -> usize {
        self.vcpus
    }

    /// The GIC version the guest sees.
    pub fn front_end(&self) -> GicVersion {
        self.front_end
    }

    /// [`Vgic::fill_lrs`] in the hardware's list-register format for this
    /// front end (ICH_LR<n>_EL2 for v3, GICH_LR<n> for v2, widened to u64).
    pub fn fill_list_registers(&mut self, vcpu: usize, lrs: &mut [u64]) -> Fill {
        match self.front_end {
            GicVersion::V3 => self.fill_lrs::<v3::IchLr>(vcpu, lrs),
            GicVersion::V2 => self.fill_lrs::<v2::GichLr>(vcpu, lrs),
        }
    }

    /// [`Vgic::sync_lrs`] in the format of [`Vgic::fill_list_registers`].
    pub fn sync_from_list_registers(&mut self, vcpu: usize, lrs: &[u64]) {
        match self.front_end {
            GicVersion::V3 => self.sync_lrs::<v3::IchLr>(vcpu, lrs),
            GicVersion::V2 => self.sync_lrs::<v2::GichLr>(vcpu, lrs),
        }
    }

    /// The distributor of this front end, for one MMIO access.
    pub fn distributor(&mut self) -> Distributor<'_> {
        Distributor::new(self)
    }

    /// Drives the input line of PPI `intid` of vCPU `vcpu`, or of SPI
    /// `intid` (then `vcpu` is ignored). A level-sensitive interrupt is
    /// pending while the line is high; an edge-triggered one latches pending
    /// on a rising edge.
    pub fn set_level(&mut self, intid: u32, vcpu: usize, level: bool) -> Result<(), VgicError> {
        if intid < SGI_COUNT {
            return Err(VgicError::NotALine { intid });
        }
        let bank = self.bank_for(intid, vcpu)?;
        let irq = self.irq_mut(bank, intid).ok_or(VgicError::NoSuchInterrupt { intid })?;
        if irq.edge && level && !irq.line {
            irq.latch = true;
        }
        irq.line = level;
        self.changed(bank, intid, None);
        Ok(())
    }

    /// Makes `intid` pending once, whatever its trigger, as an edge would:
    /// on vCPU `vcpu` for SGIs and PPIs (the virtual timer's PPI comes this
    /// way), or wherever it is routed for SPIs (`vcpu` ignored).
    pub fn raise(&mut self, intid: u32, vcpu: usize) -> Result<(), VgicError> {
        let bank = self.bank_for(intid, vcpu)?;
        let irq = self.irq_mut(bank, intid).ok_or(VgicError::NoSuchInterrupt { intid })?;
        irq.latch = true;
        self.changed(bank, intid, None);
        Ok(())
    }

    /// Returns, and forgets, the vCPUs that must look at their interrupts
    /// again (bit n = vCPU n): a running one must exit so that its list
    /// registers are refilled, a waiting one must wake. Changes made by a
    /// vCPU's own MMIO access or SGI never kick that vCPU; `raise` and
    /// `set_level` do not know who calls them and may name the caller.
    pub fn take_kicks(&mut self) -> u32 {
        core::mem::take(&mut self.kicks)
    }

    /// True if an interrupt could be signalled to `vcpu` now: pending,
    /// enabled, not active, forwarded by the distributor and routed there.
    /// The guest's priority mask (ICH_VMCR_EL2.VPMR) is the caller's to check
    /// against [`Self::highest_deliverable_priority`] if it cares.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        self.highest_deliverable_priority(vcpu).is_some()
    }

    /// The priority of the most urgent interrupt [`Self::has_deliverable`]
    /// would find (lower is more urgent).
    pub fn highest_deliverable_priority(&self, vcpu: usize) -> Option<u8> {
        if vcpu >= self.vcpus {
            return None;
        }
        // Only a pending interrupt is deliverable, and those are hinted.
        self.hinted(vcpu)
            .filter(|&intid| self.deliverable_to(vcpu, intid) == Some(vcpu))
            .filter_map(|intid| self.irq(vcpu, intid).map(|irq| irq.priority))
            .min()
    }

    /// Fills `lrs` for `vcpu`, about to enter the guest, with the
    /// interrupts it should see, most urgent first: active ones (their EOI
    /// must find them), then pending ones by priority, then by INTID. Unused
    /// list registers are zeroed; at most [`MAX_LIST_REGISTERS`] are used.
    /// A fill not preceded by a sync assumes the guest did not run.
    pub fn fill_lrs<F: ListRegisterFormat>(&mut self, vcpu: usize, lrs: &mut [F::Word]) -> Fill {
        lrs.fill(F::EMPTY);
        if vcpu >= self.vcpus {
            return Fill::default();
        }
        self.unlist_as_written(vcpu);
        // Every guest entry fills, and usually nothing waits: see that with
        // one cheap pass before building and sorting the candidates.
        if !self.any_pending_or_active(vcpu) {
            return Fill::default();
        }
        let mut candidates = [(0u32, 0u32); INTIDS];
        let mut count = 0;
        // Only pending or active interrupts are candidates, and just now
        // `any_pending_or_active` left exactly those hinted.
        for intid in self.hinted(vcpu) {
            if let Some(key) = self.lr_candidate(vcpu, intid) {
                candidates[count] = (key, intid);
                count += 1;
            }
        }
        let candidates = &mut candidates[..count];
        candidates.sort_unstable();
        let capacity = lrs.len().min(MAX_LIST_REGISTERS);
        for (lr, &(_, intid)) in lrs.iter_mut().zip(candidates.iter()).take(capacity) {
            *lr = F::encode(self.list(vcpu, intid));
        }
        Fill { used: count.min(capacity), more: count > capacity }
    }

    /// Folds back the list registers of `vcpu`, which has just left the
    /// guest: `lrs` must be what the hardware holds now, in the order
    /// [`Self::fill_lrs`] wrote them. A list register the guest emptied was
    /// acknowledged and EOI'd. Only the state bits are read: which interrupt
    /// each register holds is remembered from the fill. Registers missing
    /// from `lrs` count as unchanged.
    pub fn sync_lrs<F: ListRegisterFormat>(&mut self, vcpu: usize, lrs: &[F::Word]) {
        if vcpu >= self.vcpus {
            return;
        }
        let listed = self.cpus[vcpu].listed;
        for index in 0..listed {
            let slot = self.cpus[vcpu].slots[index];
            let state = lrs.get(index).map_or(slot.wrote, |&word| F::state(word));
            self.unlist(vcpu, slot, state);
        }
        self.cpus[vcpu].listed = 0;
        for index in 0..listed {
            let intid = u32::from(self.cpus[vcpu].slots[index].intid);
            self.kick_if_deliverable(vcpu, intid, Some(vcpu));
        }
    }

    /// Sets pending for SGI `intid` on every vCPU in `targets` (bit n =
    /// vCPU n; bits for vCPUs the VM lacks are ignored), sent by `sender`.
    pub fn signal_sgi(&mut self, sender: usize, intid: u32, targets: u32) {
        if intid >= SGI_COUNT {
            return;
        }
        for vcpu in (0..self.vcpus).filter(|&vcpu| targets & (1 << vcpu) != 0) {
            self.cpus[vcpu].private[intid as usize].latch = true;
            self.cpus[vcpu].hint |= 1 << intid;
            self.changed(vcpu, intid, Some(sender));
        }
    }
}

/// Lookups. `bank` names the vCPU whose SGIs and PPIs are meant; it is
/// ignored for SPIs.
impl Vgic {
    fn irq(&self, bank: usize, intid: u32) -> Option<&Irq> {
        if intid < SPI_BASE {
            self.cpus[..self.vcpus].get(bank)?.private.get(intid as usize)
        } else {
            self.spis.get((intid - SPI_BASE) as usize)
        }
    }

    /// The interrupt, to change: its hint bit is set (see `spi_hint`).
    fn irq_mut(&mut self, bank: usize, intid: u32) -> Option<&mut Irq> {
        if intid < SPI_BASE {
            let cpu = self.cpus[..self.vcpus].get_mut(bank)?;
            let irq = cpu.private.get_mut(intid as usize)?;
            cpu.hint |= 1 << intid;
            Some(irq)
        } else {
            let spi = (intid - SPI_BASE) as usize;
            let irq = self.spis.get_mut(spi)?;
            self.spi_hint[spi / 64] |= 1 << (spi % 64);
            Some(irq)
        }
    }

    /// Checks the vCPU named for a private interrupt; SPIs need none.
    fn bank_for(&self, intid: u32, vcpu: usize) -> Result<usize, VgicError> {
        if intid >= INTID_LIMIT {
            Err(VgicError::NoSuchInterrupt { intid })
        } else if intid < SPI_BASE && vcpu >= self.vcpus {
            Err(VgicError::NoSuchVcpu { vcpu })
        } else {
            Ok(vcpu)
        }
    }

    /// The vCPU an interrupt belongs to now: its own vCPU for SGIs and PPIs;
    /// for SPIs the vCPU it is active on, else the routed one.
    fn home(&self, bank: usize, intid: u32) -> Option<usize> {
        let irq = self.irq(bank, intid)?;
        if intid < SPI_BASE || irq.active {
            return Some(usize::from(irq.active_on));
        }
        self.routes[(intid - SPI_BASE) as usize].target.map(usize::from)
    }

    /// The vCPU the interrupt could be signalled to right now, if any.
    fn deliverable_to(&self, bank: usize, intid: u32) -> Option<usize> {
        let irq = self.irq(bank, intid)?;
        let signalled = self.enabled && irq.enabled && irq.pending() && !irq.active;
        if signalled && irq.listed_on.is_none() {
            self.home(bank, intid)
        } else {
            None
        }
    }
}

/// Kicks.
impl Vgic {
    fn kick(&mut self, vcpu: usize, actor: Option<usize>) {
        if Some(vcpu) != actor && vcpu < self.vcpus {
            self.kicks |= 1 << vcpu;
        }
    }

    fn kick_if_deliverable(&mut self, bank: usize, intid: u32, actor: Option<usize>) {
        if let Some(vcpu) = self.deliverable_to(bank, intid) {
            self.kick(vcpu, actor);
        }
    }

    /// After any change to an interrupt: a vCPU holding it in a list
    /// register must exit to fold the change in, and a vCPU that can now
    /// take it must look.
    fn changed(&mut self, bank: usize, intid: u32, actor: Option<usize>) {
        if let Some(owner) = self.irq(bank, intid).and_then(|irq| irq.listed_on) {
            self.kick(usize::from(owner), actor);
        }
        self.kick_if_deliverable(bank, intid, actor);
    }
}

/// List registers.
impl Vgic {
    /// The sort key of `intid` if it belongs in `vcpu`'s list registers.
    fn lr_candidate(&self, vcpu: usize, intid: u32) -> Option<u32> {
        let state = self.lr_state(vcpu, intid)?;
        let irq = self.irq(vcpu, intid)?;
        let urgency = if state.active { 0 } else { 1 << 8 };
        Some(urgency | u32::from(irq.priority))
    }

    /// What `vcpu`'s list register would say about `intid`, if it gets one.
    fn lr_state(&self, vcpu: usize, intid: u32) -> Option<LrState> {
        let irq = self.irq(vcpu, intid)?;
        // Most interrupts are idle: rule them out before the routing
        // lookup, since every guest entry asks this of every INTID.
        if !(irq.active || irq.pending()) {
            return None;
        }
        if irq.listed_on.is_some() || self.home(vcpu, intid) != Some(vcpu) {
            return None;
        }
        // A level-sensitive interrupt is never listed pending and active:
        // after its EOI its line must be sampled again, which only an exit
        // (the EOI maintenance interrupt) gives.
        let may_pend = irq.edge || !irq.active;
        let pending = self.enabled && irq.enabled && irq.pending() && may_pend;
        let state = LrState { pending, active: irq.active };
        (state.pending || state.active).then_some(state)
    }

    /// Whether any interrupt `vcpu` could be given (its own SGIs and PPIs,
    /// and every SPI) is pending or active: a superset of what
    /// [`Self::lr_state`] lists.
    /// The INTIDs whose hint bit is set: `vcpu`'s private ones, then SPIs.
    /// Every pending or active interrupt `vcpu` could see is among them.
    fn hinted(&self, vcpu: usize) -> impl Iterator<Item = u32> + '_ {
        let private = set_bits(self.cpus[vcpu].hint.into()).map(|n| n as u32);
        let spis = self.spi_hint.iter().enumerate().flat_map(|(word, &hint)| {
            set_bits(hint).map(move |n| SPI_BASE + (64 * word + n) as u32)
        });
        private.chain(spis)
    }

    /// Only the interrupts whose hint bit is set are looked at; the bits
    /// of those found idle are cleared.
    fn any_pending_or_active(&mut self, vcpu: usize) -> bool {
        let busy = |irq: &Irq| irq.active || irq.pending();
        let cpu = &mut self.cpus[vcpu];
        cpu.hint = keep_busy(cpu.hint.into(), |n| busy(&cpu.private[n])) as u32;
        let mut any = cpu.hint != 0;
        for (word, hint) in self.spi_hint.iter_mut().enumerate() {
            *hint = keep_busy(*hint, |n| self.spis.get(64 * word + n).is_some_and(busy));
            any |= *hint != 0;
        }
        any
    }

    /// Moves `intid` into the next list register of `vcpu`.
    fn list(&mut self, vcpu: usize, intid: u32) -> LrEntry {
        let state = self.lr_state(vcpu, intid).unwrap_or_default();
        let cpu = &mut self.cpus[vcpu];
        let irq = if intid < SPI_BASE {
            &mut cpu.private[intid as usize]
        } else {
            &mut self.spis[(intid - SPI_BASE) as usize]
        };
        let latch_moved = state.pending && irq.latch;
        if state.pending {
            irq.latch = false;
        }
        irq.listed_on = Some(vcpu as u8);
        irq.pending_cleared = false;
        irq.active_written = false;
        cpu.slots[cpu.listed] = Slot { intid: intid as u16, wrote: state, latch_moved };
        cpu.listed += 1;
        LrEntry { intid, priority: irq.priority, state, eoi_maintenance: !irq.edge }
    }

    /// Takes one interrupt back from `vcpu`'s list register, which the guest
    /// left in `state`.
    fn unlist(&mut self, vcpu: usize, slot: Slot, state: LrState) {
        let intid = u32::from(slot.intid);
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return;
        };
        if !irq.active_written {
            irq.active = state.active;
            if state.active {
                irq.active_on = vcpu as u8;
            }
        }
        // Still pending: the guest has not acknowledged it, so the latch it
        // took along is still owed. New edges meanwhile are in the latch.
        if state.pending && slot.latch_moved && !irq.pending_cleared {
            irq.latch = true;
        }
        irq.listed_on = None;
        irq.pending_cleared = false;
        irq.active_written = false;
    }

    /// Takes back whatever is still listed on `vcpu` as if the guest had not
    /// touched it.
    fn unlist_as_written(&mut self, vcpu: usize) {
        let listed = self.cpus[vcpu].listed;
        for index in 0..listed {
            let slot = self.cpus[vcpu].slots[index];
            self.unlist(vcpu, slot, slot.wrote);
        }
        self.cpus[vcpu].listed = 0;
    }
}

/// The indexes of the bits set in `bits`, lowest first.
fn set_bits(mut bits: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        let n = bits.trailing_zeros() as usize;
        bits &= bits.checked_sub(1)?;
        Some(n)
    })
}

/// The bits of `hint` whose index `busy` says yes to.
fn keep_busy(hint: u64, busy: impl Fn(usize) -> bool) -> u64 {
    set_bits(hint).filter(|&n| busy(n)).fold(0, |kept, n| kept | 1 << n)
}

/// The guest-visible state, for the front ends' registers.
impl Vgic {
    fn distributor_enabled(&self) -> bool {
        self.enabled
    }

    fn set_distributor_enabled(&mut self, actor: usize, enabled: bool) {
        self.enabled = enabled;
        for vcpu in 0..self.vcpus {
            if self.cpus[vcpu].listed > 0 {
                self.kick(vcpu, Some(actor));
            }
        }
        for intid in 0..INTID_LIMIT {
            let banks = if intid < SPI_BASE { self.vcpus } else { 1 };
            for bank in 0..banks {
                self.kick_if_deliverable(bank, intid, Some(actor));
            }
        }
    }

    /// `field` of the 32 interrupts from `first` (a multiple of 32) as a
    /// word, bit n for `first + n`; unimplemented interrupts read as 0.
    fn read_bits(&self, bank: usize, first: u32, field: Field) -> u32 {
        (0..32)
            .filter(|&bit| {
                first
                    .checked_add(bit)
                    .and_then(|intid| self.irq(bank, intid))
                    .is_some_and(|irq| irq.get(field))
            })
            .fold(0, |word, bit| word | 1 << bit)
    }

    /// Sets `field` to `value` for each interrupt from `first` whose bit is
    /// set in `bits`, as a write to a set or a clear register does. `actor`
    /// is the vCPU writing.
    fn write_bits(
        &mut self,
        actor: usize,
        bank: usize,
        first: u32,
        field: Field,
        bits: u32,
        value: bool,
    ) {
        for bit in (0..32).filter(|bit| bits & (1 << bit) != 0) {
            if let Some(intid) = first.checked_add(bit) {
                self.set_field(actor, bank, intid, field, value);
            }
        }
    }

    fn set_field(&mut self, actor: usize, bank: usize, intid: u32, field: Field, value: bool) {
        let target = self.home(bank, intid).unwrap_or(0);
        let Some(irq) = self.irq_mut(bank, intid) else {
            return;
        };
        let listed = irq.listed_on.is_some();
        match field {
            Field::Enabled => irq.enabled = value,
            Field::Pending => {
                irq.latch = value;
                irq.pending_cleared |= listed && !value;
            }
            Field::Active => {
                // An SPI activated by a write is active where it would have
                // been delivered.
                if value && !irq.active && intid >= SPI_BASE {
                    irq.active_on = target as u8;
                }
                irq.active = value;
                irq.active_written |= listed;
            }
        }
        self.changed(bank, intid, Some(actor));
    }

    fn priority(&self, bank: usize, intid: u32) -> u8 {
        self.irq(bank, intid).map_or(0, |irq| irq.priority)
    }

    fn set_priority(&mut self, actor: usize, bank: usize, intid: u32, priority: u8) {
        if let Some(irq) = self.irq_mut(bank, intid) {
            irq.priority = priority & PRIORITY_MASK;
            self.changed(bank, intid, Some(actor));
        }
    }

    fn is_edge(&self, bank: usize, intid: u32) -> bool {
        self.irq(bank, intid).is_some_and(|irq| irq.edge)
    }

    /// Sets the trigger of a PPI or SPI; SGIs stay edge-triggered.
    fn set_edge(&mut self, actor: usize, bank: usize, intid: u32, edge: bool) {
        if intid < SGI_COUNT {
            return;
        }
        if let Some(irq) = self.irq_mut(bank, intid) {
            irq.edge = edge;
            self.changed(bank, intid, Some(actor));
        }
    }

    /// The routing register of SPI `intid` as last written (0 otherwise).
    fn route(&self, intid: u32) -> u64 {
        let index = intid.wrapping_sub(SPI_BASE) as usize;
        self.routes.get(index).map_or(0, |route| route.raw)
    }

    /// Routes SPI `intid` to `target`, remembering the register value `raw`
    /// that said so. A target outside the VM routes nowhere.
    fn set_route(&mut self, actor: usize, intid: u32, raw: u64, target: Option<usize>) {
        let target = target.filter(|&vcpu| vcpu < self.vcpus).map(|vcpu| vcpu as u8);
        let index = intid.wrapping_sub(SPI_BASE) as usize;
        if let Some(route) = self.routes.get_mut(index) {
            *route = Route { raw, target };
            self.changed(0, intid, Some(actor));
        }
    }

    fn asleep(&self, vcpu: usize) -> bool {
        self.cpus[..self.vcpus].get(vcpu).is_some_and(|cpu| cpu.asleep)
    }

    fn set_asleep(&mut self, vcpu: usize, asleep: bool) {
        if let Some(cpu) = self.cpus[..self.vcpus].get_mut(vcpu) {
            cpu.asleep = asleep;
        }
    }
}
