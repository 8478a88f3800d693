//! The physical GICv3 distributor and redistributors, as far as Duet needs
//! them: route its own few interrupts (the kick SGI, the virtual timer and
//! maintenance PPIs, the SPIs of the devices Duet drives: console UART,
//! NIC, touch panel, keyboard) to Group 1 and enable them.
//! Everything else stays disabled: guests get virtual interrupts only.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_structs! {
    /// GICD: only the registers Duet uses.
    Distributor {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x0800 => _reserved2),
        (0x6000 => irouter: [ReadWrite<u64>; 1020]),
        (0x7fe0 => _reserved3),
        (0x8000 => @END),
    }
}

register_structs! {
    /// One redistributor: the RD frame, then the SGI frame at 64 KiB.
    Redistributor {
        (0x00000 => ctlr: ReadWrite<u32>),
        (0x00004 => _iidr),
        (0x00008 => typer: ReadOnly<u64>),
        (0x00010 => _statusr),
        (0x00014 => waker: ReadWrite<u32>),
        (0x00018 => _reserved0),
        (0x10080 => igroupr0: ReadWrite<u32>),
        (0x10084 => _reserved1),
        (0x10100 => isenabler0: ReadWrite<u32>),
        (0x10104 => _reserved2),
        (0x10180 => icenabler0: ReadWrite<u32>),
        (0x10184 => _reserved3),
        (0x10400 => ipriorityr: [ReadWrite<u8>; 32]),
        (0x10420 => _reserved4),
        (0x20000 => @END),
    }
}

const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_ENABLE_GROUP1: u32 = 1 << 1;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_VLPIS: u64 = 1 << 1;
const TYPER_LAST: u64 = 1 << 4;
/// The priority Duet gives its interrupts (all alike: Duet masks at EL2).
const PRIORITY: u8 = 0xa0;

/// The physical GICv3.
pub struct Gicv3 {
    distributor: usize,
    redistributors: usize,
    redistributors_end: usize,
}

// SAFETY: the registers are reached only through single-register accesses;
// per-CPU redistributor set-up touches only that CPU's frame.
unsafe impl Sync for Gicv3 {}
unsafe impl Send for Gicv3 {}

impl Gicv3 {
    /// # Safety
    /// The addresses must be the GIC's distributor and redistributor region,
    /// mapped as device memory, and nothing else may drive the GIC.
    pub unsafe fn new(
        distributor: usize,
        redistributors: usize,
        redistributors_size: usize,
    ) -> Self {
        Self {
            distributor,
            redistributors,
            redistributors_end: redistributors + redistributors_size,
        }
    }

    fn gicd(&self) -> &Distributor {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.distributor as *const Distributor) }
    }

    /// Enables the distributor with affinity routing, every SPI disabled.
    pub fn init_distributor(&self) {
        let gicd = self.gicd();
        gicd.ctlr.set(0);
        self.wait_for_distributor();
        let lines = ((gicd.typer.get() & 0x1f) as usize + 1) * 32;
        for word in 1..lines / 32 {
            gicd.icenabler[word].set(u32::MAX);
            gicd.igroupr[word].set(u32::MAX);
        }
        self.wait_for_distributor();
        gicd.ctlr.set(CTLR_ARE | CTLR_ENABLE_GROUP1);
        self.wait_for_distributor();
    }

    fn wait_for_distributor(&self) {
        while self.gicd().ctlr.get() & CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    }

    /// Wakes the redistributor of the CPU with affinity `mpidr` and puts
    /// its SGIs and PPIs in Group 1, all disabled.
    pub fn init_redistributor(&self, mpidr: u64) -> Result<(), NoRedistributor> {
        let gicr = self.redistributor(mpidr).ok_or(NoRedistributor { mpidr })?;
        gicr.waker.set(gicr.waker.get() & !WAKER_PROCESSOR_SLEEP);
        while gicr.waker.get() & WAKER_CHILDREN_ASLEEP != 0 {
            core::hint::spin_loop();
        }
        gicr.icenabler0.set(u32::MAX);
        gicr.igroupr0.set(u32::MAX);
        for priority in &gicr.ipriorityr {
            priority.set(PRIORITY);
        }
        Ok(())
    }

    /// Enables SGI or PPI `intid` on the CPU with affinity `mpidr`.
    pub fn enable_private(&self, mpidr: u64, intid: u32) {
        if let Some(gicr) = self.redistributor(mpidr) {
            gicr.isenabler0.set(1 << (intid % 32));
        }
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    pub fn enable_shared(&self, intid: u32, mpidr: u64) {
        let gicd = self.gicd();
        let Some(router) = gicd.irouter.get(intid as usize) else { return };
        let affinity = mpidr & 0xff_00ff_ffff;
        router.set(affinity);
        gicd.ipriorityr[intid as usize].set(PRIORITY);
        gicd.isenabler[intid as usize / 32].set(1 << (intid % 32));
    }

    /// The redistributor whose affinity is `mpidr`.
    fn redistributor(&self, mpidr: u64) -> Option<&Redistributor> {
        let wanted = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24;
        let mut frame = self.redistributors;
        while frame + core::mem::size_of::<Redistributor>() <= self.redistributors_end {
            // SAFETY: `frame` lies in the redistributor region (`new`'s contract).
            let gicr = unsafe { &*(frame as *const Redistributor) };
            let typer = gicr.typer.get();
            if typer >> 32 == wanted {
                return Some(gicr);
            }
            if typer & TYPER_LAST != 0 {
                return None;
            }
            frame += if typer & TYPER_VLPIS != 0 { 0x4_0000 } else { 0x2_0000 };
        }
        None
    }
}

/// No redistributor answers for a CPU.
#[derive(Clone, Copy, Debug)]
pub struct NoRedistributor {
    pub mpidr: u64,
}
