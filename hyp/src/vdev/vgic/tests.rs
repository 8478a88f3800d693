//! Tests of the interrupt model through its GICv3 front end, driven the way
//! a Linux guest and the hypervisor drive it. Register offsets are spelled
//! out again here from the GICv3 specification, so a wrong constant in the
//! front end shows up as a failing test rather than agreeing with itself.

use super::dist::IIDR;
use super::v3::{IchLr, SgiRequest, SgiTargets};
use super::*;
use crate::vm::mmio::{MmioDevice, MmioError, Size};

// Distributor.
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_TYPER2: u64 = 0x000c;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_ISPENDR: u64 = 0x0200;
const GICD_ICPENDR: u64 = 0x0280;
const GICD_ISACTIVER: u64 = 0x0300;
const GICD_ICACTIVER: u64 = 0x0380;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IGRPMODR: u64 = 0x0d00;
const GICD_NSACR: u64 = 0x0e00;
const GICD_IROUTER: u64 = 0x6000;
const GICD_PIDR2: u64 = 0xffe8;
const CTLR_ENABLE_G1: u64 = 1 << 1;
const CTLR_ARE: u64 = 1 << 4;
const CTLR_DS: u64 = 1 << 6;
const IROUTER_IRM: u64 = 1 << 31;
// Redistributor, from the start of a vCPU's frame.
const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_PIDR2: u64 = 0xffe8;
const SGI_BASE: u64 = 0x1_0000;
const GICR_ISENABLER0: u64 = SGI_BASE + 0x0100;
const GICR_ISPENDR0: u64 = SGI_BASE + 0x0200;
const GICR_ISACTIVER0: u64 = SGI_BASE + 0x0300;
const GICR_IPRIORITYR: u64 = SGI_BASE + 0x0400;
const GICR_ICFGR0: u64 = SGI_BASE + 0x0c00;
const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;
const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const WAKER_PROCESSOR_SLEEP: u64 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;
// ICH_LR<n>_EL2.
const LR_PENDING: u64 = 1 << 62;
const LR_ACTIVE: u64 = 1 << 63;
const LR_GROUP1: u64 = 1 << 60;
const LR_EOI: u64 = 1 << 41;
// ICC_SGI1R_EL1.
const SGI1R_IRM: u64 = 1 << 40;

/// QEMU's virt board has four list registers.
const LRS: usize = 4;
const UART_SPI: u32 = layout::UART_INTID;
const VTIMER: u32 = layout::TIMER_VIRT_INTID;

fn gicd_read(gic: &mut Vgic, vcpu: usize, offset: u64) -> u64 {
    gic.distributor().read(vcpu, offset, 4).unwrap()
}

fn gicd_write(gic: &mut Vgic, vcpu: usize, offset: u64, value: u64) {
    gic.distributor().write(vcpu, offset, 4, value).unwrap()
}

fn frame(vcpu: usize) -> u64 {
    vcpu as u64 * layout::GICR_STRIDE
}

fn gicr_read(gic: &mut Vgic, frame_of: usize, offset: u64) -> u64 {
    gic.redistributors().read(frame_of, frame(frame_of) + offset, 4).unwrap()
}

fn gicr_write(gic: &mut Vgic, frame_of: usize, offset: u64, value: u64) {
    gic.redistributors().write(frame_of, frame(frame_of) + offset, 4, value).unwrap()
}

/// The bit of `intid` in a 1-bit-per-interrupt bank, and the word's offset.
fn bit(base: u64, intid: u32) -> (u64, u64) {
    (base + u64::from(intid / 32) * 4, 1 << (intid % 32))
}

fn spi_is(gic: &mut Vgic, base: u64, intid: u32) -> bool {
    let (offset, mask) = bit(base, intid);
    gicd_read(gic, 0, offset) & mask != 0
}

fn set_spi(gic: &mut Vgic, vcpu: usize, base: u64, intid: u32) {
    let (offset, mask) = bit(base, intid);
    gicd_write(gic, vcpu, offset, mask);
}

fn set_spi_priority(gic: &mut Vgic, intid: u32, priority: u8) {
    let offset = GICD_IPRIORITYR + u64::from(intid);
    gic.distributor().write(0, offset, 1, u64::from(priority)).unwrap();
}

fn route_spi(gic: &mut Vgic, intid: u32, mpidr: u64) {
    let offset = GICD_IROUTER + 8 * u64::from(intid);
    gic.distributor().write(0, offset, 8, mpidr).unwrap();
}

/// An SPI, enabled and routed to `vcpu`, with the distributor enabled.
fn enabled_spi(gic: &mut Vgic, intid: u32, vcpu: usize) {
    gicd_write(gic, 0, GICD_CTLR, CTLR_ENABLE_G1 | CTLR_ARE);
    route_spi(gic, intid, layout::vcpu_mpidr(vcpu));
    set_spi(gic, 0, GICD_ISENABLER, intid);
}

/// Enables SGI or PPI `intid` of `vcpu` through its redistributor.
fn enable_private(gic: &mut Vgic, vcpu: usize, intid: u32) {
    gicr_write(gic, vcpu, GICR_ISENABLER0, 1 << intid);
}

fn fill(gic: &mut Vgic, vcpu: usize) -> ([u64; LRS], Fill) {
    let mut lrs = [0; LRS];
    let fill = gic.fill_list_registers(vcpu, &mut lrs);
    (lrs, fill)
}

fn listed(lrs: &[u64]) -> Vec<u32> {
    lrs.iter().filter(|&&lr| lr != 0).map(|&lr| IchLr::decode(lr).intid).collect()
}

/// What the hardware does when the guest acknowledges a pending LR.
fn acknowledge(lr: u64) -> u64 {
    assert!(lr & LR_PENDING != 0, "acknowledging {lr:#x}, not pending");
    (lr & !LR_PENDING) | LR_ACTIVE
}

/// What the hardware does when the guest EOIs an active LR.
fn eoi(lr: u64) -> u64 {
    assert!(lr & LR_ACTIVE != 0, "EOI of {lr:#x}, not active");
    lr & !LR_ACTIVE
}

fn state_bits(lr: u64) -> u64 {
    lr & (LR_PENDING | LR_ACTIVE)
}

#[test]
fn new_checks_the_vcpu_count() {
    assert_eq!(Vgic::new(0).unwrap_err(), VgicError::BadVcpuCount { count: 0 });
    assert!(Vgic::new(layout::MAX_VCPUS).is_ok());
    assert!(Vgic::new(layout::MAX_VCPUS + 1).is_err());
}

#[test]
fn identification_registers() {
    let mut gic = Vgic::new(2).unwrap();
    let typer = gicd_read(&mut gic, 0, GICD_TYPER);
    assert_eq!(typer & 0x1f, u64::from(INTID_LIMIT / 32 - 1), "ITLinesNumber");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits: 10 INTID bits");
    assert_eq!(typer & (1 << 17 | 1 << 16 | 1 << 10), 0, "no LPIs, no MBIS, one security state");
    assert_eq!((typer >> 5) & 7, 0, "CPUNumber");
    assert_eq!(gicd_read(&mut gic, 0, GICD_TYPER2), 0);
    assert_eq!(gicd_read(&mut gic, 0, GICD_IIDR), u64::from(IIDR));
    assert_eq!((gicd_read(&mut gic, 0, GICD_PIDR2) >> 4) & 0xf, 3);
    assert_eq!((gicr_read(&mut gic, 1, GICR_PIDR2) >> 4) & 0xf, 3);
    assert_eq!(gicr_read(&mut gic, 1, GICR_IIDR), u64::from(IIDR));
}

#[test]
fn distributor_ctlr() {
    let mut gic = Vgic::new(1).unwrap();
    assert_eq!(gicd_read(&mut gic, 0, GICD_CTLR), CTLR_ARE | CTLR_DS);
    // Linux writes ARE_NS | EnableGrp1A | EnableGrp1.
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ARE | CTLR_ENABLE_G1 | 1);
    assert_eq!(
        gicd_read(&mut gic, 0, GICD_CTLR),
        CTLR_ARE | CTLR_DS | CTLR_ENABLE_G1,
        "RWP reads 0"
    );
    gicd_write(&mut gic, 0, GICD_CTLR, 0);
    assert_eq!(gicd_read(&mut gic, 0, GICD_CTLR), CTLR_ARE | CTLR_DS, "ARE and DS stay set");
}

#[test]
fn linux_bring_up_delivers_an_spi_to_vcpu_1() {
    let mut gic = Vgic::new(2).unwrap();
    // Distributor: off, then every SPI Group 1, level, priority 0xa0,
    // inactive and disabled, as Linux's gic_dist_init does.
    gicd_write(&mut gic, 0, GICD_CTLR, 0);
    for word in 1..INTID_LIMIT / 32 {
        let offset = u64::from(word) * 4;
        gicd_write(&mut gic, 0, GICD_IGROUPR + offset, 0xffff_ffff);
        assert_eq!(gicd_read(&mut gic, 0, GICD_IGROUPR + offset), 0xffff_ffff);
        gicd_write(&mut gic, 0, GICD_ICACTIVER + offset, 0xffff_ffff);
        gicd_write(&mut gic, 0, GICD_ICENABLER + offset, 0xffff_ffff);
    }
    for intid in (SPI_BASE..INTID_LIMIT).step_by(4) {
        gicd_write(&mut gic, 0, GICD_IPRIORITYR + u64::from(intid), 0xa0a0_a0a0);
    }
    for field in (SPI_BASE..INTID_LIMIT).step_by(16) {
        gicd_write(&mut gic, 0, GICD_ICFGR + u64::from(field / 4), 0);
    }
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ARE | CTLR_ENABLE_G1 | 1);
    // vCPU 1 wakes its redistributor.
    let waker = gicr_read(&mut gic, 1, GICR_WAKER);
    gicr_write(&mut gic, 1, GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
    assert_eq!(gicr_read(&mut gic, 1, GICR_WAKER) & WAKER_CHILDREN_ASLEEP, 0);
    // The UART's SPI: edge, routed to vCPU 1, enabled.
    let (cfg, field) = (GICD_ICFGR + u64::from(UART_SPI / 16) * 4, UART_SPI % 16);
    gicd_write(&mut gic, 0, cfg, 2 << (2 * field));
    route_spi(&mut gic, UART_SPI, layout::vcpu_mpidr(1));
    set_spi(&mut gic, 0, GICD_ISENABLER, UART_SPI);
    assert_eq!(gic.take_kicks(), 0);

    gic.raise(UART_SPI, 0).unwrap();
    assert_eq!(gic.take_kicks(), 1 << 1, "vCPU 1 must be kicked");
    assert!(gic.has_deliverable(1) && !gic.has_deliverable(0));
    assert_eq!(fill(&mut gic, 0).1, Fill { used: 0, more: false });
    let (mut lrs, filled) = fill(&mut gic, 1);
    assert_eq!(filled, Fill { used: 1, more: false });
    assert_eq!(lrs[0], LR_PENDING | LR_GROUP1 | 0xa0 << 48 | u64::from(UART_SPI));
    assert_eq!(&lrs[1..], &[0; LRS - 1]);

    // The guest acknowledges and EOIs: the LR empties.
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(1, &lrs);
    assert!(!spi_is(&mut gic, GICD_ISPENDR, UART_SPI));
    assert!(!spi_is(&mut gic, GICD_ISACTIVER, UART_SPI));
    assert_eq!(fill(&mut gic, 1).1.used, 0);
    assert!(!gic.has_deliverable(1));
}

#[test]
fn level_spi_stays_pending_while_its_line_is_high() {
    let mut gic = Vgic::new(1).unwrap();
    enabled_spi(&mut gic, UART_SPI, 0);
    gic.set_level(UART_SPI, 0, true).unwrap();
    let (mut lrs, _) = fill(&mut gic, 0);
    assert_eq!(state_bits(lrs[0]), LR_PENDING);
    assert!(lrs[0] & LR_EOI != 0, "level interrupts ask for an EOI maintenance interrupt");

    // Acknowledged, line still high: listed active only, never pending and
    // active, so that the line is sampled again after the EOI.
    lrs[0] = acknowledge(lrs[0]);
    gic.sync_from_list_registers(0, &lrs);
    assert!(spi_is(&mut gic, GICD_ISPENDR, UART_SPI) && spi_is(&mut gic, GICD_ISACTIVER, UART_SPI));
    let (mut lrs, _) = fill(&mut gic, 0);
    assert_eq!(state_bits(lrs[0]), LR_ACTIVE);

    // EOI with the line still high: pending again.
    lrs[0] = eoi(lrs[0]);
    gic.sync_from_list_registers(0, &lrs);
    let (lrs, _) = fill(&mut gic, 0);
    assert_eq!(state_bits(lrs[0]), LR_PENDING);

    // The line drops before the guest took it: gone, without a spurious
    // interrupt, and clearing ICPENDR cannot make a high line not pending.
    gic.set_level(UART_SPI, 0, false).unwrap();
    gic.sync_from_list_registers(0, &lrs);
    assert_eq!(fill(&mut gic, 0).1.used, 0);
    gic.set_level(UART_SPI, 0, true).unwrap();
    set_spi(&mut gic, 0, GICD_ICPENDR, UART_SPI);
    assert!(spi_is(&mut gic, GICD_ISPENDR, UART_SPI));
}

#[test]
fn edge_ppi_raised_while_active_goes_pending_and_active() {
    let mut gic = Vgic::new(2).unwrap();
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ENABLE_G1);
    enable_private(&mut gic, 1, VTIMER);
    gicr_write(&mut gic, 1, GICR_ICFGR1, 2 << (2 * (VTIMER - 16)));
    gic.raise(VTIMER, 1).unwrap();
    let (mut lrs, _) = fill(&mut gic, 1);
    assert_eq!(listed(&lrs), [VTIMER]);
    assert_eq!(lrs[0] & LR_EOI, 0, "edge interrupts need no EOI maintenance");
    lrs[0] = acknowledge(lrs[0]);

    // Raised again while the guest handles it.
    gic.take_kicks();
    gic.raise(VTIMER, 1).unwrap();
    assert_eq!(gic.take_kicks(), 1 << 1, "the vCPU holding it must exit");
    gic.sync_from_list_registers(1, &lrs);
    let (mut lrs, _) = fill(&mut gic, 1);
    assert_eq!(state_bits(lrs[0]), LR_PENDING | LR_ACTIVE);

    // EOI leaves it pending (the hardware's doing), then it is taken again.
    lrs[0] &= !LR_ACTIVE;
    gic.sync_from_list_registers(1, &lrs);
    let (lrs, _) = fill(&mut gic, 1);
    assert_eq!(state_bits(lrs[0]), LR_PENDING);
    // vCPU 0's timer PPI is another interrupt altogether.
    assert_eq!(gicr_read(&mut gic, 0, GICR_ISPENDR0), 0);
}

#[test]
fn a_pending_interrupt_not_taken_is_not_lost() {
    let mut gic = Vgic::new(1).unwrap();
    enabled_spi(&mut gic, 40, 0);
    gic.raise(40, 0).unwrap();
    let (lrs, _) = fill(&mut gic, 0);
    // The guest did not get to it: the LR comes back unchanged.
    gic.sync_from_list_registers(0, &lrs);
    assert!(spi_is(&mut gic, GICD_ISPENDR, 40));
    // Nor when the caller refills without a sync.
    let (first, _) = fill(&mut gic, 0);
    let (second, _) = fill(&mut gic, 0);
    assert_eq!(first, second);
}

#[test]
fn an_edge_raised_while_listed_is_not_lost() {
    let mut gic = Vgic::new(1).unwrap();
    enabled_spi(&mut gic, 40, 0);
    gicd_write(&mut gic, 0, GICD_ICFGR + 8, 2 << (2 * (40 - 32)));
    gic.raise(40, 0).unwrap();
    let (mut lrs, _) = fill(&mut gic, 0);
    // A second edge arrives while the vCPU runs; then the guest takes and
    // finishes the first.
    gic.raise(40, 0).unwrap();
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(0, &lrs);
    let (mut lrs, _) = fill(&mut gic, 0);
    assert_eq!(state_bits(lrs[0]), LR_PENDING, "the second edge is owed");
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(0, &lrs);
    assert!(!gic.has_deliverable(0));
    // Two edges before the guest looks are one interrupt, as on hardware.
    gic.raise(40, 0).unwrap();
    let (lrs, _) = fill(&mut gic, 0);
    gic.raise(40, 0).unwrap();
    gic.sync_from_list_registers(0, &lrs);
    let (mut lrs, filled) = fill(&mut gic, 0);
    assert_eq!(filled.used, 1);
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(0, &lrs);
    assert!(!gic.has_deliverable(0));
}

#[test]
fn deactivation_by_another_vcpu_wins_over_the_list_register() {
    let mut gic = Vgic::new(2).unwrap();
    enabled_spi(&mut gic, 40, 1);
    gic.raise(40, 0).unwrap();
    let (mut lrs, _) = fill(&mut gic, 1);
    lrs[0] = acknowledge(lrs[0]);
    gic.take_kicks();
    // vCPU 0 clears the active state while vCPU 1 still runs.
    set_spi(&mut gic, 0, GICD_ICACTIVER, 40);
    assert_eq!(gic.take_kicks(), 1 << 1);
    gic.sync_from_list_registers(1, &lrs);
    assert!(!spi_is(&mut gic, GICD_ISACTIVER, 40));
    // ... and setting it works the same way.
    gic.raise(40, 0).unwrap();
    let (lrs, _) = fill(&mut gic, 1);
    set_spi(&mut gic, 0, GICD_ISACTIVER, 40);
    gic.sync_from_list_registers(1, &lrs);
    assert!(spi_is(&mut gic, GICD_ISACTIVER, 40));
}

#[test]
fn sgi_broadcast_reaches_everyone_but_the_sender() {
    let mut gic = Vgic::new(4).unwrap();
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ENABLE_G1);
    for vcpu in 0..4 {
        enable_private(&mut gic, vcpu, 3);
    }
    gic.take_kicks();
    gic.send_sgi(1, SGI1R_IRM | 3 << 24).unwrap();
    assert_eq!(gic.take_kicks(), 0b1101);
    for vcpu in 0..4 {
        let pending = gicr_read(&mut gic, vcpu, GICR_ISPENDR0);
        assert_eq!(pending, if vcpu == 1 { 0 } else { 1 << 3 }, "vCPU {vcpu}");
    }
    let (lrs, _) = fill(&mut gic, 2);
    assert_eq!(lrs[0], LR_PENDING | LR_GROUP1 | 3);
}

#[test]
fn sgi_target_list_matches_all_affinity_levels() {
    let mut gic = Vgic::new(4).unwrap();
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ENABLE_G1);
    for vcpu in 0..4 {
        enable_private(&mut gic, vcpu, 5);
    }
    let sgi = 5 << 24;
    // Aff1 = 1: a cluster this VM lacks, whatever the list says.
    gic.send_sgi(0, sgi | 1 << 16 | 0b1111).unwrap();
    // Range selector 1: Aff0 16..31, which no vCPU has.
    gic.send_sgi(0, sgi | 1 << 44 | 0b1111).unwrap();
    // Aff2 and Aff3 must match too.
    gic.send_sgi(0, sgi | 1 << 32 | 0b1111).unwrap();
    gic.send_sgi(0, sgi | 1 << 48 | 0b1111).unwrap();
    assert_eq!(gic.take_kicks(), 0);
    assert!((0..4).all(|vcpu| !gic.has_deliverable(vcpu)));

    // Aff1 = 0, list {0, 2, 3} from vCPU 0: it may target itself.
    gic.send_sgi(0, sgi | 0b1101).unwrap();
    assert_eq!(gic.take_kicks(), 0b1100, "the sender is not kicked");
    let pending: Vec<bool> = (0..4).map(|vcpu| gic.has_deliverable(vcpu)).collect();
    assert_eq!(pending, [true, false, true, true]);
}

#[test]
fn sgi1r_decoding() {
    let value = 7 << 24 | 0x12 << 16 | 0x34 << 32 | 0x3 << 44 | 0x56 << 48 | 0xbeef;
    let request = SgiRequest::decode(value);
    assert_eq!(request.intid, 7);
    let list = SgiTargets::List { aff3: 0x56, aff2: 0x34, aff1: 0x12, range: 3, list: 0xbeef };
    assert_eq!(request.targets, list);
    assert_eq!(SgiRequest::decode(SGI1R_IRM | 0xffff).targets, SgiTargets::Others);
    assert_eq!(gic_send_sgi_error(), VgicError::NoSuchVcpu { vcpu: 2 });
}

fn gic_send_sgi_error() -> VgicError {
    Vgic::new(2).unwrap().send_sgi(2, SGI1R_IRM).unwrap_err()
}

#[test]
fn more_interrupts_than_list_registers_go_by_priority() {
    let mut gic = Vgic::new(1).unwrap();
    let priorities = [(40, 0x80), (41, 0x20), (42, 0x60), (43, 0x20), (44, 0x00), (45, 0xf0)];
    for (intid, priority) in priorities {
        enabled_spi(&mut gic, intid, 0);
        set_spi_priority(&mut gic, intid, priority);
        gic.raise(intid, 0).unwrap();
    }
    let (lrs, filled) = fill(&mut gic, 0);
    assert_eq!(filled, Fill { used: LRS, more: true });
    assert_eq!(listed(&lrs), [44, 41, 43, 42]);
    let priority: Vec<u8> = lrs.iter().map(|&lr| IchLr::decode(lr).priority).collect();
    assert_eq!(priority, [0x00, 0x20, 0x20, 0x60]);

    // The guest takes 44 and is still in its handler: 44 keeps its LR even
    // though it is the least urgent left; the other two follow.
    let mut lrs = lrs;
    lrs[0] = acknowledge(lrs[0]);
    set_spi_priority(&mut gic, 44, 0xf8);
    gic.sync_from_list_registers(0, &lrs);
    let (lrs, filled) = fill(&mut gic, 0);
    assert_eq!(listed(&lrs), [44, 41, 43, 42]);
    assert_eq!(state_bits(lrs[0]), LR_ACTIVE);
    assert!(filled.more);

    // A caller with more list registers than the model uses gets zeros.
    let mut wide = [u64::MAX; MAX_LIST_REGISTERS + 4];
    gic.sync_from_list_registers(0, &lrs);
    let filled = gic.fill_list_registers(0, &mut wide);
    assert_eq!(filled, Fill { used: 6, more: false });
    assert!(wide[6..].iter().all(|&lr| lr == 0));
}

#[test]
fn disabled_interrupts_and_distributor_deliver_nothing() {
    let mut gic = Vgic::new(1).unwrap();
    route_spi(&mut gic, 40, 0);
    gic.raise(40, 0).unwrap();
    gic.raise(VTIMER, 0).unwrap();
    // Pending but disabled, distributor off.
    assert!(!gic.has_deliverable(0));
    assert_eq!(fill(&mut gic, 0).1, Fill::default());
    // Enabled, distributor still off.
    set_spi(&mut gic, 0, GICD_ISENABLER, 40);
    enable_private(&mut gic, 0, VTIMER);
    assert!(!gic.has_deliverable(0));
    assert_eq!(fill(&mut gic, 0).1.used, 0);
    // Distributor on: both arrive.
    gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ENABLE_G1);
    assert!(gic.has_deliverable(0));
    assert_eq!(fill(&mut gic, 0).1.used, 2);
    // Disabling one through ICENABLER takes it out again; still pending.
    gic.sync_from_list_registers(0, &[0; 0]);
    set_spi(&mut gic, 0, GICD_ICENABLER, 40);
    let (lrs, _) = fill(&mut gic, 0);
    assert_eq!(listed(&lrs), [VTIMER]);
    assert!(spi_is(&mut gic, GICD_ISPENDR, 40));
}

#[test]
fn kicks_name_the_vcpus_that_must_look() {
    let mut gic = Vgic::new(4).unwrap();
    enabled_spi(&mut gic, 40, 2);
    enable_private(&mut gic, 3, VTIMER);
    assert_eq!(gic.take_kicks(), 0, "nothing pending yet");

    gic.raise(40, 0).unwrap();
    gic.raise(VTIMER, 3).unwrap();
    assert_eq!(gic.take_kicks(), 1 << 2 | 1 << 3);
    assert_eq!(gic.take_kicks(), 0, "taking clears them");

    // A pending but disabled SPI kicks no one until enabled; enabling it
    // from vCPU 0 kicks its target, vCPU 1, not vCPU 0.
    route_spi(&mut gic, 41, layout::vcpu_mpidr(1));
    set_spi(&mut gic, 0, GICD_ISPENDR, 41);
    assert_eq!(gic.take_kicks(), 0);
    set_spi(&mut gic, 0, GICD_ISENABLER, 41);
    assert_eq!(gic.take_kicks(), 1 << 1);
    // vCPU 1 setting pending its own SPI does not kick itself.
    set_spi(&mut gic, 1, GICD_ICPENDR, 41);
    set_spi(&mut gic, 1, GICD_ISPENDR, 41);
    assert_eq!(gic.take_kicks(), 0);

    // Re-routing 40 to vCPU 1 while vCPU 2 holds it in an LR: vCPU 2 must
    // exit; once it has, vCPU 1 gets it.
    let (lrs, _) = fill(&mut gic, 2);
    assert_eq!(listed(&lrs), [40]);
    route_spi(&mut gic, 40, layout::vcpu_mpidr(1));
    assert_eq!(gic.take_kicks(), 1 << 2);
    assert_eq!(listed(&fill(&mut gic, 1).0), [41], "not in two LRs at once");
    gic.sync_from_list_registers(1, &[0; 0]);
    gic.sync_from_list_registers(2, &lrs);
    assert_eq!(gic.take_kicks(), 1 << 1);
    assert_eq!(listed(&fill(&mut gic, 1).0), [40, 41]);
}

#[test]
fn guest_writes_win_over_a_list_register_of_another_vcpu() {
    let mut gic = Vgic::new(2).unwrap();
    enabled_spi(&mut gic, 40, 1);
    gic.raise(40, 0).unwrap();
    let (lrs, _) = fill(&mut gic, 1);
    gic.take_kicks();
    // vCPU 0 clears it while vCPU 1 runs with it pending in an LR.
    set_spi(&mut gic, 0, GICD_ICPENDR, 40);
    assert_eq!(gic.take_kicks(), 1 << 1);
    gic.sync_from_list_registers(1, &lrs);
    assert!(!spi_is(&mut gic, GICD_ISPENDR, 40));
    assert_eq!(fill(&mut gic, 1).1.used, 0);
}

#[test]
fn spi_active_on_one_vcpu_stays_there() {
    let mut gic = Vgic::new(2).unwrap();
    enabled_spi(&mut gic, 40, 0);
    gicd_write(&mut gic, 0, GICD_ICFGR + 8, 2 << (2 * (40 - 32)));
    gic.raise(40, 0).unwrap();
    let (mut lrs, _) = fill(&mut gic, 0);
    lrs[0] = acknowledge(lrs[0]);
    gic.sync_from_list_registers(0, &lrs);
    // Routed away and raised again while active on vCPU 0: its EOI will
    // come from vCPU 0, so it stays there, pending and active.
    route_spi(&mut gic, 40, layout::vcpu_mpidr(1));
    gic.raise(40, 0).unwrap();
    assert_eq!(fill(&mut gic, 1).1.used, 0);
    let (mut lrs, _) = fill(&mut gic, 0);
    assert_eq!(state_bits(lrs[0]), LR_PENDING | LR_ACTIVE);
    // After the EOI the pending half goes where it is routed now.
    lrs[0] &= !LR_PENDING & !LR_ACTIVE;
    gic.take_kicks();
    gic.sync_from_list_registers(0, &lrs);
    assert_eq!(gic.take_kicks(), 0, "consumed: nothing left to deliver");
}

#[test]
fn redistributor_typer_and_waker_per_frame() {
    let mut gic = Vgic::new(3).unwrap();
    for vcpu in 0..3 {
        let typer = gic.redistributors().read(0, frame(vcpu) + GICR_TYPER, 8).unwrap();
        let last = if vcpu == 2 { 1 << 4 } else { 0 };
        let expected = layout::vcpu_mpidr(vcpu) << 32 | (vcpu as u64) << 8 | last;
        assert_eq!(typer, expected, "frame {vcpu}");
        let low = gic.redistributors().read(0, frame(vcpu) + GICR_TYPER, 4).unwrap();
        let high = gic.redistributors().read(0, frame(vcpu) + GICR_TYPER + 4, 4).unwrap();
        assert_eq!(high << 32 | low, typer);
        assert_eq!(gicr_read(&mut gic, vcpu, GICR_CTLR), 0);
        let asleep = WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP;
        assert_eq!(gicr_read(&mut gic, vcpu, GICR_WAKER), asleep);
    }
    // vCPU 0 wakes vCPU 1's redistributor: the frame decides, not the accessor.
    gic.redistributors().write(0, frame(1) + GICR_WAKER, 4, 0).unwrap();
    assert_eq!(gicr_read(&mut gic, 1, GICR_WAKER), 0);
    assert_ne!(gicr_read(&mut gic, 0, GICR_WAKER), 0);
    gicr_write(&mut gic, 1, GICR_WAKER, WAKER_PROCESSOR_SLEEP);
    assert_eq!(gicr_read(&mut gic, 1, GICR_WAKER), WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP);
    // No fourth frame.
    let beyond = frame(3) + GICR_TYPER;
    assert_eq!(
        gic.redistributors().read(0, beyond, 8),
        Err(MmioError::NoRegister { offset: beyond })
    );
    assert!(gic.redistributors().write(0, frame(3), 4, 0).is_err());
}

#[test]
fn redistributor_banks_belong_to_their_frame() {
    let mut gic = Vgic::new(2).unwrap();
    // vCPU 0 enables and pends PPI 20 in vCPU 1's frame.
    gic.redistributors().write(0, frame(1) + GICR_ISENABLER0, 4, 1 << 20).unwrap();
    gic.redistributors().write(0, frame(1) + GICR_ISPENDR0, 4, 1 << 20).unwrap();
    assert_eq!(gicr_read(&mut gic, 1, GICR_ISENABLER0), 1 << 20);
    assert_eq!(gicr_read(&mut gic, 0, GICR_ISENABLER0), 0);
    assert_eq!(gicr_read(&mut gic, 1, GICR_ISACTIVER0), 0);
    assert_eq!(gicr_read(&mut gic, 1, GICR_IGROUPR0), 0xffff_ffff);
    // SGIs are edge whatever is written; PPIs take their configuration.
    gicr_write(&mut gic, 1, GICR_ICFGR0, 0);
    assert_eq!(gicr_read(&mut gic, 1, GICR_ICFGR0), 0xaaaa_aaaa);
    gicr_write(&mut gic, 1, GICR_ICFGR1, 0x8000_0002);
    assert_eq!(gicr_read(&mut gic, 1, GICR_ICFGR1), 0x8000_0002);
    assert_eq!(gicr_read(&mut gic, 0, GICR_ICFGR1), 0);
    // The distributor's words for INTIDs 0..32 read as zero and ignore writes.
    gicd_write(&mut gic, 1, GICD_ISENABLER, 0xffff_ffff);
    assert_eq!(gicd_read(&mut gic, 1, GICD_ISENABLER), 0);
    assert_eq!(gicr_read(&mut gic, 1, GICR_ISENABLER0), 1 << 20);
    assert_eq!(gicd_read(&mut gic, 1, GICD_IGROUPR), 0);
    assert_eq!(gicd_read(&mut gic, 1, GICD_ICFGR + 4), 0);
    // Words past the first in the SGI frame are reserved.
    assert_eq!(gicr_read(&mut gic, 1, GICR_ISENABLER0 + 4), 0);
}

#[test]
fn irouter_round_trip() {
    let mut gic = Vgic::new(4).unwrap();
    let offset = GICD_IROUTER + 8 * 50;
    let mut gicd = gic.distributor();
    gicd.write(0, offset, 8, u64::MAX).unwrap();
    assert_eq!(gicd.read(0, offset, 8).unwrap(), 0xff_80ff_ffff, "only Aff3..0 and IRM stick");
    gicd.write(0, offset, 4, 0x0001_0203).unwrap();
    gicd.write(0, offset + 4, 4, 0x04).unwrap();
    assert_eq!(gicd.read(0, offset, 8).unwrap(), 0x04_0001_0203);
    assert_eq!(gicd.read(0, offset, 4).unwrap(), 0x0001_0203);
    assert_eq!(gicd.read(0, offset + 4, 4).unwrap(), 0x04);
    // IROUTER of an SGI/PPI or of an SPI beyond SPI_COUNT: RAZ/WI.
    gicd.write(0, GICD_IROUTER + 8 * 31, 8, 3).unwrap();
    assert_eq!(gicd.read(0, GICD_IROUTER + 8 * 31, 8).unwrap(), 0);
    let beyond = GICD_IROUTER + 8 * u64::from(INTID_LIMIT);
    gicd.write(0, beyond, 8, 3).unwrap();
    assert_eq!(gicd.read(0, beyond, 8).unwrap(), 0);

    // Routing follows: vCPU 3 by affinity; IRM picks vCPU 0; an affinity no
    // vCPU has routes nowhere.
    enabled_spi(&mut gic, 50, 3);
    gic.raise(50, 0).unwrap();
    assert!(gic.has_deliverable(3));
    route_spi(&mut gic, 50, IROUTER_IRM);
    assert!(gic.has_deliverable(0) && !gic.has_deliverable(3));
    route_spi(&mut gic, 50, 1 << 8);
    assert!((0..4).all(|vcpu| !gic.has_deliverable(vcpu)));
}

#[test]
fn priority_bytes_and_words() {
    let mut gic = Vgic::new(2).unwrap();
    let mut gicd = gic.distributor();
    // SPI 35 is byte 3 of the word at IPRIORITYR + 32.
    gicd.write(0, GICD_IPRIORITYR + 35, 1, 0xa5).unwrap();
    assert_eq!(gicd.read(0, GICD_IPRIORITYR + 35, 1).unwrap(), 0xa0, "five priority bits");
    assert_eq!(gicd.read(0, GICD_IPRIORITYR + 32, 4).unwrap(), 0xa000_0000);
    gicd.write(0, GICD_IPRIORITYR + 32, 4, 0x1020_3040).unwrap();
    assert_eq!(gicd.read(0, GICD_IPRIORITYR + 33, 1).unwrap(), 0x30);
    // The distributor's bytes for INTIDs 0..32 are RAZ/WI.
    gicd.write(0, GICD_IPRIORITYR + 27, 1, 0x80).unwrap();
    assert_eq!(gicd.read(0, GICD_IPRIORITYR + 27, 1).unwrap(), 0);
    // The redistributor's are the real ones, per frame.
    let mut gicr = gic.redistributors();
    gicr.write(0, frame(1) + GICR_IPRIORITYR + 27, 1, 0x80).unwrap();
    assert_eq!(gicr.read(0, frame(1) + GICR_IPRIORITYR + 24, 4).unwrap(), 0x8000_0000);
    assert_eq!(gicr.read(0, frame(0) + GICR_IPRIORITYR + 24, 4).unwrap(), 0);
    // Bytes past the private ones in the SGI frame are reserved.
    gicr.write(0, frame(1) + GICR_IPRIORITYR + 40, 1, 0x80).unwrap();
    assert_eq!(gicr.read(0, frame(1) + GICR_IPRIORITYR + 40, 1).unwrap(), 0);
}

#[test]
fn wrong_sizes_and_alignment_are_refused() {
    let mut gic = Vgic::new(2).unwrap();
    let mut gicd = gic.distributor();
    let bad = |offset, size| Some(MmioError::BadSize { offset, size });
    let unaligned = |offset, size| Some(MmioError::Unaligned { offset, size });
    assert_eq!(gicd.read(0, GICD_CTLR, 2).err(), bad(GICD_CTLR, 2));
    assert_eq!(gicd.read(0, GICD_IPRIORITYR + 32, 2).err(), bad(GICD_IPRIORITYR + 32, 2));
    assert_eq!(gicd.read(0, GICD_CTLR, 8).err(), bad(GICD_CTLR, 8));
    assert_eq!(gicd.read(0, GICD_ISENABLER + 4, 1).err(), bad(GICD_ISENABLER + 4, 1));
    assert_eq!(gicd.write(0, GICD_TYPER, 3, 0).err(), bad(GICD_TYPER, 3));
    assert_eq!(gicd.write(0, GICD_ISENABLER + 1, 4, 0).err(), unaligned(GICD_ISENABLER + 1, 4));
    assert_eq!(gicd.read(0, GICD_IROUTER + 4, 8).err(), unaligned(GICD_IROUTER + 4, 8));
    // Unknown offsets are quiet for words, refused for other sizes.
    assert_eq!(gicd.read(0, GICD_IGRPMODR + 4, 4), Ok(0));
    assert_eq!(gicd.read(0, GICD_NSACR + 8, 4), Ok(0));
    assert_eq!(gicd.read(0, 0x5000, 4), Ok(0));
    assert_eq!(gicd.read(0, 0x5000, 8).err(), bad(0x5000, 8));
    assert_eq!(
        gicd.read(0, layout::GICD_SIZE, 4),
        Err(MmioError::NoRegister { offset: layout::GICD_SIZE })
    );
    let mut gicr = gic.redistributors();
    let waker = frame(1) + GICR_WAKER;
    assert_eq!(gicr.read(0, waker, 8).err(), unaligned(waker, 8));
    assert_eq!(gicr.read(0, frame(1) + GICR_CTLR, 8).err(), bad(frame(1) + GICR_CTLR, 8));
    assert_eq!(
        gicr.read(0, frame(1) + GICR_ISENABLER0, 1).err(),
        bad(frame(1) + GICR_ISENABLER0, 1)
    );
    assert_eq!(
        gicr.read(0, frame(1) + GICR_TYPER + 4, 8).err(),
        unaligned(frame(1) + GICR_TYPER + 4, 8)
    );
}

#[test]
fn model_api_rejects_bad_requests() {
    let mut gic = Vgic::new(2).unwrap();
    assert_eq!(gic.set_level(3, 0, true), Err(VgicError::NotALine { intid: 3 }));
    assert_eq!(gic.set_level(VTIMER, 2, true), Err(VgicError::NoSuchVcpu { vcpu: 2 }));
    assert_eq!(gic.raise(INTID_LIMIT, 0), Err(VgicError::NoSuchInterrupt { intid: INTID_LIMIT }));
    assert_eq!(gic.raise(u32::MAX, 0), Err(VgicError::NoSuchInterrupt { intid: u32::MAX }));
    // SPIs ignore the vCPU argument.
    assert_eq!(gic.set_level(UART_SPI, 99, true), Ok(()));
    assert_eq!(fill(&mut gic, 5).1, Fill::default());
    assert!(!gic.has_deliverable(5));
}

#[test]
fn edge_spi_latches_on_a_rising_line() {
    let mut gic = Vgic::new(1).unwrap();
    enabled_spi(&mut gic, 40, 0);
    gicd_write(&mut gic, 0, GICD_ICFGR + 8, 2 << (2 * (40 - 32)));
    gic.set_level(40, 0, true).unwrap();
    gic.set_level(40, 0, false).unwrap();
    assert!(spi_is(&mut gic, GICD_ISPENDR, 40), "the edge was latched");
    let (mut lrs, _) = fill(&mut gic, 0);
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(0, &lrs);
    assert!(!gic.has_deliverable(0));
    // A line held high does not re-trigger an edge interrupt.
    gic.set_level(40, 0, true).unwrap();
    gic.set_level(40, 0, true).unwrap();
    let (mut lrs, _) = fill(&mut gic, 0);
    lrs[0] = eoi(acknowledge(lrs[0]));
    gic.sync_from_list_registers(0, &lrs);
    assert!(!gic.has_deliverable(0));
}

#[test]
fn list_register_encoding_round_trips() {
    let entry = LrEntry {
        intid: 1019,
        priority: 0xf8,
        state: LrState { pending: true, active: true },
        eoi_maintenance: true,
    };
    let lr = IchLr::encode(entry);
    assert_eq!(lr, LR_PENDING | LR_ACTIVE | LR_GROUP1 | LR_EOI | 0xf8 << 48 | 1019);
    assert_eq!(IchLr::decode(lr), entry);
    assert_eq!(lr & (1 << 61), 0, "HW = 0: a purely virtual interrupt");
}

/// A tiny deterministic PRNG (xorshift64*), so the hammer is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }

    /// An offset below `span`, mostly near one of the `hot` registers, now
    /// and then anywhere at all, just past the end, or unaligned.
    fn offset(&mut self, span: u64, hot: &[u64]) -> u64 {
        match self.below(8) {
            0 => self.next(),
            1 => span + self.below(0x1000),
            2 => self.below(span),
            _ => ((self.pick(hot) + self.below(0x100)) % span) & !self.pick(&[0, 3, 7]),
        }
    }
}

#[test]
fn random_hammering_never_panics() {
    const SIZES: [Size; 8] = [0, 1, 2, 3, 4, 8, 16, 255];
    const GICD_HOT: [u64; 4] = [GICD_CTLR, GICD_ISENABLER, GICD_IPRIORITYR, GICD_IROUTER];
    const GICR_HOT: [u64; 3] = [GICR_CTLR, GICR_ISENABLER0, GICR_IPRIORITYR];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for vcpus in [1, 3, layout::MAX_VCPUS] {
        let mut gic = Vgic::new(vcpus).unwrap();
        let mut lrs = [[0u64; MAX_LIST_REGISTERS + 2]; layout::MAX_VCPUS];
        let redist_span = vcpus as u64 * layout::GICR_STRIDE;
        for _ in 0..100_000 {
            let vcpu = rng.below(vcpus as u64 + 2) as usize;
            let size = rng.pick(&SIZES);
            let value = rng.next();
            let intid = rng.below(u64::from(INTID_LIMIT) + 40) as u32;
            let gicd_offset = rng.offset(layout::GICD_SIZE, &GICD_HOT);
            let frame_base = frame(rng.below(vcpus as u64) as usize);
            let gicr_offset = frame_base + rng.offset(redist_span, &GICR_HOT);
            match rng.below(10) {
                0 => {
                    let _ = gic.distributor().read(vcpu, gicd_offset, size);
                }
                1 => {
                    let _ = gic.distributor().write(vcpu, gicd_offset, size, value);
                }
                2 => {
                    let _ = gic.redistributors().read(vcpu, gicr_offset, size);
                }
                3 => {
                    let _ = gic.redistributors().write(vcpu, gicr_offset, size, value);
                }
                4 => {
                    let _ = gic.raise(intid, vcpu);
                }
                5 => {
                    let _ = gic.set_level(intid, vcpu, value & 1 != 0);
                }
                6 => {
                    let _ = gic.send_sgi(vcpu, value);
                }
                7 => {
                    let count = rng.below(lrs[0].len() as u64 + 1) as usize;
                    let fill =
                        gic.fill_list_registers(vcpu, &mut lrs[vcpu % layout::MAX_VCPUS][..count]);
                    assert!(fill.used <= count);
                }
                8 => {
                    // The guest does something (or something impossible) to the LRs.
                    let slot = &mut lrs[vcpu % layout::MAX_VCPUS];
                    let index = rng.below(slot.len() as u64) as usize;
                    slot[index] = if value & 1 == 0 { slot[index] & !LR_PENDING } else { value };
                    let count = rng.below(slot.len() as u64 + 1) as usize;
                    gic.sync_from_list_registers(vcpu, &slot[..count]);
                }
                _ => {
                    let kicks = gic.take_kicks();
                    assert_eq!(kicks >> vcpus, 0, "kick for a vCPU that does not exist");
                    let _ = gic.has_deliverable(vcpu);
                }
            }
        }
        assert_no_spi_listed_twice(&mut gic);
    }
}

/// Fills every vCPU's list registers in turn (each fill takes back only
/// that vCPU's own): no SPI may end up in two vCPUs' list registers.
fn assert_no_spi_listed_twice(gic: &mut Vgic) {
    let mut seen = [false; INTID_LIMIT as usize];
    for vcpu in 0..gic.vcpu_count() {
        let mut lrs = [0; MAX_LIST_REGISTERS];
        gic.fill_list_registers(vcpu, &mut lrs);
        for intid in listed(&lrs).into_iter().filter(|&intid| intid >= SPI_BASE) {
            assert!(!seen[intid as usize], "SPI {intid} listed twice");
            seen[intid as usize] = true;
        }
    }
}

/// Each way an interrupt becomes pending or active, after a fill that found
/// nothing (which clears the hints of idle interrupts), still lists it.
#[test]
fn whatever_makes_an_interrupt_pending_after_an_empty_fill_lists_it() {
    let fresh = || {
        let mut gic = Vgic::new(2).unwrap();
        gicd_write(&mut gic, 0, GICD_CTLR, CTLR_ARE | CTLR_ENABLE_G1 | 1);
        enabled_spi(&mut gic, UART_SPI, 0);
        enable_private(&mut gic, 0, VTIMER);
        enable_private(&mut gic, 0, 1);
        for _ in 0..2 {
            assert_eq!(fill(&mut gic, 0).1.used, 0);
        }
        gic
    };
    let listed_after = |change: &dyn Fn(&mut Vgic), intid: u32| {
        let mut gic = fresh();
        change(&mut gic);
        assert_eq!(listed(&fill(&mut gic, 0).0), [intid], "INTID {intid}");
    };
    listed_after(&|gic| gic.raise(VTIMER, 0).unwrap(), VTIMER);
    listed_after(&|gic| gic.set_level(UART_SPI, 0, true).unwrap(), UART_SPI);
    listed_after(&|gic| gic.signal_sgi(1, 1, 1 << 0), 1);
    listed_after(&|gic| set_spi(gic, 0, GICD_ISPENDR, UART_SPI), UART_SPI);
    listed_after(&|gic| set_spi(gic, 0, GICD_ISACTIVER, UART_SPI), UART_SPI);
    listed_after(&|gic| gicr_write(gic, 0, GICR_ISPENDR0, 1 << VTIMER), VTIMER);
    listed_after(&|gic| gicr_write(gic, 0, GICR_ISACTIVER0, 1 << VTIMER), VTIMER);
}
