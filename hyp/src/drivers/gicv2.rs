//! The physical GICv2 (the GIC-400 of the Raspberry Pi 4, QEMU's GICv2 on
//! `virt`), as far as Duet needs it: the distributor, to route Duet's own few
//! interrupts (the kick SGI, the timer and maintenance PPIs, the SPIs of the
//! devices Duet drives: console UART, NIC, touch panel, keyboard) and send
//! SGIs; the CPU interface, to take them; and the virtual interface control
//! (GICH), whose list registers present virtual interrupts to the guest
//! that runs on this CPU. All MMIO, per CPU banked where the architecture
//! banks it. Everything else stays disabled.
//!
//! Interrupt groups are left as firmware set them: a GIC without security
//! extensions (QEMU virt) keeps Group 0; with them (the Pi's GIC-400, where
//! firmware, or QEMU standing in for it, makes every interrupt Group 1
//! non-secure), Duet's non-secure accesses see Group 1 only. Enabling both
//! groups covers both.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::MAX_CPUS;

register_structs! {
    /// GICD: only the registers Duet uses.
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x800 => itargetsr: [ReadWrite<u8>; 1024]),
        (0xc00 => _reserved2),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => _reserved3),
        (0x1000 => @END),
    }
}

register_structs! {
    /// GICC: the CPU interface, banked per CPU.
    CpuInterface {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => _reserved0),
        (0x1000 => @END),
    }
}

register_structs! {
    /// GICH: the virtual interface control, banked per CPU.
    HypervisorInterface {
        (0x000 => hcr: ReadWrite<u32>),
        (0x004 => vtr: ReadOnly<u32>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved1),
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// GICD_CTLR and GICC_CTLR: enable Group 0 and Group 1 (in the non-secure
/// view of a GIC with security extensions, bit 0 is Group 1).
const CTLR_ENABLE_BOTH_GROUPS: u32 = 0b11;
const GICH_HCR_EN: u32 = 1 << 0;
const GICH_HCR_UIE: u32 = 1 << 1;
const IAR_INTID: u32 = 0x3ff;
/// INTIDs from 1020 up are special (spurious and friends).
const FIRST_SPECIAL_INTID: u32 = 1020;
const SGI_COUNT: u32 = 16;
/// The priority Duet gives its interrupts (all alike: Duet masks at EL2).
const PRIORITY: u8 = 0xa0;

/// Each CPU's interface mask (bit n = CPU interface n), by Duet's CPU index:
/// what GICD_ITARGETSR and GICD_SGIR name CPUs by.
static CPU_MASKS: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
/// Each CPU's last acknowledged GICC_IAR value: an SGI's EOI must carry
/// the source CPU the acknowledge returned with it.
static LAST_IAR: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// The physical GICv2 with its virtualization extensions.
pub struct Gicv2 {
    distributor: usize,
    cpu_interface: usize,
    hypervisor: usize,
}

// SAFETY: the registers are reached only through single-register accesses;
// the banked ones (CPU interface, GICH, private distributor words) are each
// CPU's own.
unsafe impl Sync for Gicv2 {}
unsafe impl Send for Gicv2 {}

impl Gicv2 {
    /// # Safety
    /// The addresses must be the GIC's distributor, CPU interface and
    /// virtual interface control frames, mapped as device memory, and
    /// nothing else may drive the GIC.
    pub unsafe fn new(distributor: usize, cpu_interface: usize, hypervisor: usize) -> Self {
        Self { distributor, cpu_interface, hypervisor }
    }

    fn gicd(&self) -> &Distributor {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.distributor as *const Distributor) }
    }

    fn gicc(&self) -> &CpuInterface {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.cpu_interface as *const CpuInterface) }
    }

    fn gich(&self) -> &HypervisorInterface {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.hypervisor as *const HypervisorInterface) }
    }

    /// Enables the distributor with every SPI disabled.
    pub fn init_distributor(&self) {
        let gicd = self.gicd();
        gicd.ctlr.set(0);
        let lines = ((gicd.typer.get() & 0x1f) as usize + 1) * 32;
        for word in 1..lines / 32 {
            gicd.icenabler[word].set(u32::MAX);
        }
        gicd.ctlr.set(CTLR_ENABLE_BOTH_GROUPS);
    }

    /// Sets up the calling CPU (Duet's index `cpu`): learns its interface
    /// mask, disables its SGIs and PPIs, opens its CPU interface to every
    /// priority, and enables its virtual interface for guests.
    pub fn init_cpu(&self, cpu: usize) {
        let gicd = self.gicd();
        // GICD_ITARGETSR0..7 are banked: each byte reads as the reader's mask.
        CPU_MASKS[cpu].store(gicd.itargetsr[0].get(), Ordering::Release);
        gicd.icenabler[0].set(u32::MAX);
        for priority in &gicd.ipriorityr[..32] {
            priority.set(PRIORITY);
        }
        let gicc = self.gicc();
        gicc.pmr.set(0xff);
        gicc.bpr.set(0);
        gicc.ctlr.set(CTLR_ENABLE_BOTH_GROUPS);
        let gich = self.gich();
        gich.vmcr.set(0);
        gich.apr.set(0);
        for lr in &gich.lr[..self.list_register_count()] {
            lr.set(0);
        }
        gich.hcr.set(GICH_HCR_EN);
    }

    /// Enables SGI or PPI `intid` on the calling CPU.
    pub fn enable_private(&self, intid: u32) {
        self.gicd().isenabler[0].set(1 << (intid % 32));
    }

    /// Routes SPI `intid` to CPU `cpu` (Duet's index) and enables it.
    pub fn enable_shared(&self, intid: u32, cpu: usize) {
        let gicd = self.gicd();
        let Some(target) = gicd.itargetsr.get(intid as usize) else { return };
        target.set(CPU_MASKS[cpu].load(Ordering::Acquire));
        gicd.ipriorityr[intid as usize].set(PRIORITY);
        gicd.isenabler[intid as usize / 32].set(1 << (intid % 32));
    }

    /// Takes the highest-priority pending interrupt of CPU `cpu`, if any.
    pub fn acknowledge(&self, cpu: usize) -> Option<u32> {
        let iar = self.gicc().iar.get();
        let intid = iar & IAR_INTID;
        LAST_IAR[cpu].store(iar, Ordering::Relaxed);
        (intid < FIRST_SPECIAL_INTID).then_some(intid)
    }

    /// Ends (and deactivates) `intid`, acknowledged last on CPU `cpu`.
    pub fn end_of_interrupt(&self, cpu: usize, intid: u32) {
        let last = LAST_IAR[cpu].load(Ordering::Relaxed);
        let value = if intid < SGI_COUNT && last & IAR_INTID == intid { last } else { intid };
        self.gicc().eoir.set(value);
    }

    /// Sends SGI `intid` to CPU `cpu` (Duet's index).
    pub fn send_sgi(&self, intid: u32, cpu: usize) {
        let mask = u32::from(CPU_MASKS[cpu].load(Ordering::Acquire));
        self.gicd().sgir.set(mask << 16 | (intid & 0xf));
    }

    /// List registers this GIC implements (GICH_VTR.ListRegs + 1).
    pub fn list_register_count(&self) -> usize {
        (self.gich().vtr.get() & 0x3f) as usize + 1
    }

    pub fn read_list_register(&self, n: usize) -> u32 {
        self.gich().lr.get(n).map_or(0, |lr| lr.get())
    }

    pub fn write_list_register(&self, n: usize, value: u32) {
        if let Some(lr) = self.gich().lr.get(n) {
            lr.set(value);
        }
    }

    /// Asks for a maintenance interrupt when the list registers run (nearly)
    /// empty.
    pub fn set_underflow_interrupt(&self, on: bool) {
        self.gich().hcr.set(if on { GICH_HCR_EN | GICH_HCR_UIE } else { GICH_HCR_EN });
    }

    /// The guest's CPU interface state: GICH_VMCR and GICH_APR.
    pub fn virtual_cpu_state(&self) -> (u32, u32) {
        (self.gich().vmcr.get(), self.gich().apr.get())
    }

    pub fn set_virtual_cpu_state(&self, vmcr: u32, apr: u32) {
        self.gich().vmcr.set(vmcr);
        self.gich().apr.set(apr);
    }
}
