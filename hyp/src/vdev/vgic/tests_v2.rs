//! Tests of the interrupt model through its GICv2 front end, driven the way
//! a Linux guest (drivers/irqchip/irq-gic.c) and the hypervisor drive it.
//! Register offsets and list-register bits are spelled out again from the
//! GICv2 specification, so a wrong constant in the front end fails here.

use super::v2::{GichLr, SgirRequest, SgirTargets};
use super::*;
use crate::vm::mmio::{MmioDevice, MmioError};

const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_ISPENDR: u64 = 0x200;
const GICD_ISACTIVER: u64 = 0x300;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICD_SGIR: u64 = 0xf00;
const GICD_PIDR2: u64 = 0xfe8;
// GICH_LR<n>.
const LR_EOI: u64 = 1 << 19;
const LR_PENDING: u64 = 1 << 28;
const LR_ACTIVE: u64 = 1 << 29;
const LR_GROUP1: u64 = 1 << 30;
const LR_HW: u64 = 1 << 31;

/// The GIC-400 of the Raspberry Pi 4 (and QEMU's GICv2) has four.
const LRS: usize = 4;
const UART_SPI: u32 = layout::UART_INTID;
const SGI_IPI: u32 = 1;

fn v2(vcpus: usize) -> Vgic {
    Vgic::with_front_end(vcpus, GicVersion::V2).unwrap()
}

fn read(gic: &mut Vgic, vcpu: usize, offset: u64) -> u64 {
    gic.distributor().read(vcpu, offset, 4).unwrap()
}

fn write(gic: &mut Vgic, vcpu: usize, offset: u64, value: u64) {
    gic.distributor().write(vcpu, offset, 4, value).unwrap()
}

fn fill(gic: &mut Vgic, vcpu: usize) -> [u64; LRS] {
    let mut lrs = [0; LRS];
    gic.fill_list_registers(vcpu, &mut lrs);
    lrs
}

/// Linux's gic_dist_init and gic_cpu_init on a 2-vCPU VM: everything
/// disabled, SPIs level, priority 0xa0, targeted at CPU 0; then enabled.
fn linux_bring_up(gic: &mut Vgic) {
    write(gic, 0, GICD_CTLR, 0);
    let mask = (0..8).map(|i| read(gic, 0, GICD_ITARGETSR + i * 4)).fold(0, |a, w| a | w) & 0xff;
    assert_eq!(mask, 1, "vCPU 0 finds its CPU interface mask");
    for intid in (SPI_BASE..INTID_LIMIT).step_by(16) {
        write(gic, 0, GICD_ICFGR + u64::from(intid / 4), 0);
    }
    for intid in (SPI_BASE..INTID_LIMIT).step_by(4) {
        write(gic, 0, GICD_ITARGETSR + u64::from(intid), 0x0101_0101 * mask);
        write(gic, 0, GICD_IPRIORITYR + u64::from(intid), 0xa0a0_a0a0);
    }
    for word in 1..INTID_LIMIT / 32 {
        write(gic, 0, GICD_ICENABLER + u64::from(word) * 4, u64::from(u32::MAX));
    }
    write(gic, 0, GICD_CTLR, 1);
    for vcpu in 0..gic.vcpu_count() {
        for intid in (0..PRIVATE_COUNT).step_by(4) {
            write(gic, vcpu, GICD_IPRIORITYR + u64::from(intid), 0xa0a0_a0a0);
        }
        write(gic, vcpu, GICD_ISENABLER, 0xffff);
    }
    assert_eq!(gic.take_kicks(), 0);
}

#[test]
fn identification_registers() {
    let mut gic = v2(2);
    let typer = read(&mut gic, 0, GICD_TYPER);
    assert_eq!(typer & 0x1f, u64::from(INTID_LIMIT / 32 - 1), "ITLinesNumber");
    assert_eq!((typer >> 5) & 7, 1, "CPUNumber: 2 CPU interfaces");
    assert_eq!(typer & 1 << 10, 0, "no security extensions");
    assert_eq!((read(&mut gic, 0, GICD_PIDR2) >> 4) & 0xf, 2, "ArchRev: GICv2");
    assert_eq!(read(&mut gic, 0, GICD_CTLR), 0);
    write(&mut gic, 0, GICD_CTLR, 1);
    assert_eq!(read(&mut gic, 0, GICD_CTLR), 1);
}

#[test]
fn every_interrupt_is_group_0() {
    let mut gic = v2(1);
    write(&mut gic, 0, GICD_IGROUPR + 4, u64::from(u32::MAX));
    assert_eq!(read(&mut gic, 0, GICD_IGROUPR + 4), 0);
    write(&mut gic, 0, GICD_CTLR, 1);
    write(&mut gic, 0, GICD_ISENABLER + 4, 1 << (UART_SPI - 32));
    gic.raise(UART_SPI, 0).unwrap();
    let lr = fill(&mut gic, 0)[0];
    assert_eq!(lr & (LR_GROUP1 | LR_HW), 0, "Group 0, purely virtual: {lr:#x}");
}

#[test]
fn private_targets_name_the_reader_and_are_read_only() {
    let mut gic = v2(4);
    for vcpu in 0..4 {
        assert_eq!(read(&mut gic, vcpu, GICD_ITARGETSR), 0x0101_0101 << vcpu);
        assert_eq!(read(&mut gic, vcpu, GICD_ITARGETSR + 28), 0x0101_0101 << vcpu);
    }
    write(&mut gic, 0, GICD_ITARGETSR, 0x0808_0808);
    assert_eq!(read(&mut gic, 0, GICD_ITARGETSR), 0x0101_0101);
    // SPIs start out targeted at vCPU 0, where the model routes them.
    assert_eq!(read(&mut gic, 0, GICD_ITARGETSR + u64::from(SPI_BASE)), 0x0101_0101);
    // Past the implemented INTIDs: nothing.
    assert_eq!(read(&mut gic, 0, GICD_ITARGETSR + u64::from(INTID_LIMIT)), 0);
}

#[test]
fn linux_bring_up_delivers_an_spi_to_vcpu_1_through_its_target_byte() {
    let mut gic = v2(2);
    linux_bring_up(&mut gic);
    let target = GICD_ITARGETSR + u64::from(UART_SPI);
    gic.distributor().write(0, target, 1, 0b10).unwrap();
    assert_eq!(gic.distributor().read(0, target, 1).unwrap(), 0b10);
    write(&mut gic, 0, GICD_ISENABLER + 4, 1 << (UART_SPI - 32));
    gic.set_level(UART_SPI, 0, true).unwrap();
    assert_eq!(gic.take_kicks(), 1 << 1);
    assert_eq!(fill(&mut gic, 0), [0; LRS]);
    let mut lrs = fill(&mut gic, 1);
    assert_eq!(lrs[0], LR_PENDING | LR_EOI | (0xa0 >> 3) << 23 | u64::from(UART_SPI));
    assert_eq!(GichLr::decode(lrs[0]).priority, 0xa0);
    // The guest acknowledges (pending -> active) while the line stays high.
    lrs[0] = (lrs[0] & !LR_PENDING) | LR_ACTIVE;
    gic.sync_from_list_registers(1, &lrs);
    assert_eq!(read(&mut gic, 0, GICD_ISACTIVER + 4) >> (UART_SPI - 32) & 1, 1);
    // Line drops, guest EOIs: nothing is left.
    gic.set_level(UART_SPI, 0, false).unwrap();
    let mut lrs = fill(&mut gic, 1);
    assert_eq!(lrs[0] & (LR_PENDING | LR_ACTIVE), LR_ACTIVE);
    lrs[0] &= !LR_ACTIVE;
    gic.sync_from_list_registers(1, &lrs);
    assert_eq!(fill(&mut gic, 1), [0; LRS]);
    assert_eq!(read(&mut gic, 0, GICD_ISPENDR + 4), 0);
}

#[test]
fn a_target_byte_naming_several_vcpus_routes_to_the_lowest_one_the_vm_has() {
    let mut gic = v2(2);
    linux_bring_up(&mut gic);
    let target = GICD_ITARGETSR + u64::from(UART_SPI);
    // vCPUs 1 and 3; the VM has no vCPU 3, so its bit reads back as zero.
    gic.distributor().write(0, target, 1, 0b1010).unwrap();
    assert_eq!(gic.distributor().read(0, target, 1).unwrap(), 0b10);
    write(&mut gic, 0, GICD_ISENABLER + 4, 1 << (UART_SPI - 32));
    gic.raise(UART_SPI, 0).unwrap();
    assert!(gic.has_deliverable(1) && !gic.has_deliverable(0));
    // No target at all: the SPI goes nowhere.
    gic.distributor().write(0, target, 1, 0).unwrap();
    assert!(!gic.has_deliverable(0) && !gic.has_deliverable(1));
}

#[test]
fn sgir_sends_to_a_list_to_the_others_and_to_oneself() {
    let mut gic = v2(3);
    linux_bring_up(&mut gic);
    // List: vCPUs 1 and 2, from vCPU 0.
    write(&mut gic, 0, GICD_SGIR, 0b110 << 16 | u64::from(SGI_IPI));
    assert_eq!(gic.take_kicks(), 0b110);
    assert!(!gic.has_deliverable(0) && gic.has_deliverable(1) && gic.has_deliverable(2));
    let lrs = fill(&mut gic, 2);
    assert_eq!(lrs[0], LR_PENDING | (0xa0 >> 3) << 23 | u64::from(SGI_IPI), "edge: no EOI bit");

    let mut gic = v2(3);
    linux_bring_up(&mut gic);
    write(&mut gic, 1, GICD_SGIR, 1 << 24 | u64::from(SGI_IPI));
    assert_eq!(gic.take_kicks(), 0b101, "everyone but the sender");

    let mut gic = v2(3);
    linux_bring_up(&mut gic);
    write(&mut gic, 2, GICD_SGIR, 2 << 24 | u64::from(SGI_IPI));
    assert_eq!(gic.take_kicks(), 0, "the sender is not kicked by its own write");
    assert!(gic.has_deliverable(2) && !gic.has_deliverable(0));

    let mut gic = v2(3);
    linux_bring_up(&mut gic);
    write(&mut gic, 0, GICD_SGIR, 3 << 24 | 0xff << 16 | u64::from(SGI_IPI));
    assert!((0..3).all(|vcpu| !gic.has_deliverable(vcpu)), "reserved filter: nothing");
    assert_eq!(read(&mut gic, 0, GICD_SGIR), 0, "GICD_SGIR is write-only");
}

#[test]
fn sgir_decoding() {
    assert_eq!(
        SgirRequest::decode(0x00ff_0003),
        SgirRequest { intid: 3, targets: SgirTargets::List(0xff) }
    );
    let others = SgirRequest::decode(0x0100_000f);
    assert_eq!(others, SgirRequest { intid: 15, targets: SgirTargets::Others });
    assert_eq!(others.target_mask(4, 2), 0b1011);
    assert_eq!(SgirRequest::decode(0x0200_0000).target_mask(4, 2), 0b0100);
    assert_eq!(SgirRequest::decode(0x00f0_0000).target_mask(2, 0), 0, "no such vCPUs");
}

#[test]
fn sgi_and_ppi_banks_belong_to_the_accessing_vcpu() {
    let mut gic = v2(2);
    write(&mut gic, 1, GICD_ISENABLER, 1 << layout::TIMER_VIRT_INTID);
    assert_eq!(read(&mut gic, 1, GICD_ISENABLER), 1 << layout::TIMER_VIRT_INTID);
    assert_eq!(read(&mut gic, 0, GICD_ISENABLER), 0);
    gic.distributor().write(1, GICD_IPRIORITYR + u64::from(SGI_IPI), 1, 0x40).unwrap();
    assert_eq!(gic.distributor().read(1, GICD_IPRIORITYR + u64::from(SGI_IPI), 1).unwrap(), 0x40);
    assert_eq!(gic.distributor().read(0, GICD_IPRIORITYR + u64::from(SGI_IPI), 1).unwrap(), 0);
    // SGIs are edge-triggered whatever is written.
    write(&mut gic, 0, GICD_ICFGR, 0);
    assert_eq!(read(&mut gic, 0, GICD_ICFGR), 0xaaaa_aaaa);
}

#[test]
fn a_gicv2_guest_has_no_redistributors() {
    let mut gic = v2(2);
    assert_eq!(gic.redistributors().read(0, 0x14, 4), Err(MmioError::NoRegister { offset: 0x14 }));
}

#[test]
fn wrong_sizes_and_alignment_are_refused() {
    let mut gic = v2(1);
    let mut d = gic.distributor();
    assert_eq!(d.read(0, GICD_CTLR, 1), Err(MmioError::BadSize { offset: GICD_CTLR, size: 1 }));
    assert_eq!(d.read(0, GICD_TYPER, 8), Err(MmioError::Unaligned { offset: GICD_TYPER, size: 8 }));
    assert_eq!(d.read(0, 0x800, 8), Err(MmioError::BadSize { offset: 0x800, size: 8 }));
    assert_eq!(d.write(0, GICD_SGIR, 1, 0), Err(MmioError::BadSize { offset: GICD_SGIR, size: 1 }));
    assert_eq!(d.read(0, 0x2_0000, 4), Err(MmioError::NoRegister { offset: 0x2_0000 }));
    assert!(d.read(0, GICD_ITARGETSR + 33, 1).is_ok());
}

#[test]
fn gich_lr_encoding_round_trips() {
    let entry = LrEntry {
        intid: 1019,
        priority: 0xf8,
        state: LrState { pending: true, active: true },
        eoi_maintenance: true,
    };
    let lr = GichLr::encode(entry);
    assert_eq!(lr, LR_EOI | LR_PENDING | LR_ACTIVE | 0x1f << 23 | 1019);
    assert_eq!(GichLr::decode(lr), entry);
    assert_eq!(GichLr::encode(LrEntry { priority: 0x07, ..entry }) & 0x1f << 23, 0);
}
