//! The board as its device tree describes it: RAM, CPUs, the interrupt
//! controller, the console UART, the timer and how to reach firmware.
//!
//! Duet learns the board here and nowhere else. Parsing needs no heap, so it
//! runs first thing at boot; the result is plain data the rest of Duet reads.

use crate::mm::regions::{Region, RegionSet, TooManyRegions};
use crate::MAX_CPUS;
use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;

/// How Duet reaches PSCI firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Smc,
    Hvc,
}

impl fmt::Display for Conduit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conduit::Smc => "SMC",
            Conduit::Hvc => "HVC",
        })
    }
}

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    Psci,
    SpinTable {
        release_address: u64,
    },
    /// No method, or one Duet does not know: the CPU stays off.
    Unsupported,
}

/// One CPU of the device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The affinity fields of MPIDR_EL1, as in the node's `reg`.
    pub mpidr: u64,
    pub enable_method: EnableMethod,
}

/// The physical interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    V2 {
        distributor: Region,
        cpu_interface: Region,
        /// The virtual interface control (GICH) and virtual CPU interface
        /// (GICV), present when the GIC has the virtualization extensions.
        hypervisor: Option<Region>,
        virtual_cpu: Option<Region>,
    },
    V3 {
        distributor: Region,
        redistributors: Region,
    },
}

impl Gic {
    pub fn version(&self) -> u8 {
        match self {
            Gic::V2 { .. } => 2,
            Gic::V3 { .. } => 3,
        }
    }

    pub fn distributor(&self) -> Region {
        match *self {
            Gic::V2 { distributor, .. } | Gic::V3 { distributor, .. } => distributor,
        }
    }
}

/// The most virtio-mmio slots Duet records (QEMU `virt` has 32).
pub const MAX_VIRTIO_SLOTS: usize = 32;

/// A virtio device kind Duet drives on the board (virtio device IDs).
pub const VIRTIO_ID_NET: u32 = 1;
pub const VIRTIO_ID_BLOCK: u32 = 2;

/// One virtio-mmio node of the device tree: a slot where a device may sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioSlot {
    pub region: Region,
    /// Its interrupt, as a GIC INTID.
    pub intid: Option<u32>,
    /// The device ID its registers report (0: no device), once probed.
    pub device_id: u32,
}

/// Why the device tree cannot be used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlatformError {
    /// Not a valid flattened device tree.
    Malformed(fdt::FdtError),
    NoMemory,
    NoCpus,
    TooManyRegions,
}

impl From<TooManyRegions> for PlatformError {
    fn from(_: TooManyRegions) -> Self {
        PlatformError::TooManyRegions
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "the device tree is malformed: {e}"),
            Self::NoMemory => write!(f, "the device tree describes no memory"),
            Self::NoCpus => write!(f, "the device tree describes no CPUs"),
            Self::TooManyRegions => write!(f, "the device tree has too many memory regions"),
        }
    }
}

/// What Duet knows about the board.
#[derive(Clone, Debug)]
pub struct Platform {
    pub model: &'static str,
    /// RAM, as the `memory` nodes give it.
    pub memory: RegionSet<8>,
    /// RAM that firmware keeps (`/memreserve/` and `/reserved-memory`).
    pub reserved: RegionSet<16>,
    cpus: [Cpu; MAX_CPUS],
    cpu_count: usize,
    /// CPUs in the device tree beyond [`MAX_CPUS`], which Duet leaves off.
    pub cpus_ignored: usize,
    pub gic: Option<Gic>,
    /// The console: a PL011, from `/chosen/stdout-path` or the first PL011.
    pub uart: Option<Region>,
    /// The console UART's interrupt, as a GIC INTID.
    pub uart_intid: Option<u32>,
    /// What the bootloader loaded as the "initrd": Duet's persona package.
    pub initrd: Option<Region>,
    pub psci: Option<Conduit>,
    pub bootargs: &'static str,
    /// The virtio-mmio slots, in device tree order.
    pub virtio: [Option<VirtioSlot>; MAX_VIRTIO_SLOTS],
    /// The whole device tree blob.
    pub blob: Region,
}

impl Platform {
    /// Reads the device tree at `blob`, which must stay valid and unchanged
    /// for as long as Duet runs (it is never handed to a guest writable).
    pub fn parse(blob: &'static [u8]) -> Result<Self, PlatformError> {
        let fdt = Fdt::new(blob).map_err(PlatformError::Malformed)?;
        let mut platform = Platform {
            model: fdt.root().model(),
            memory: RegionSet::new(),
            reserved: RegionSet::new(),
            cpus: [Cpu { mpidr: 0, enable_method: EnableMethod::Unsupported }; MAX_CPUS],
            cpu_count: 0,
            cpus_ignored: 0,
            gic: find_gic(&fdt),
            uart: find_uart(&fdt).map(|(region, _)| region),
            uart_intid: find_uart(&fdt).and_then(|(_, intid)| intid),
            initrd: find_initrd(&fdt),
            psci: find_psci(&fdt),
            bootargs: fdt.chosen().bootargs().unwrap_or(""),
            virtio: find_virtio(&fdt),
            blob: Region::new(blob.as_ptr() as u64, fdt.total_size() as u64),
        };
        platform.read_memory(&fdt)?;
        platform.read_cpus(&fdt);
        if platform.cpu_count == 0 {
            return Err(PlatformError::NoCpus);
        }
        Ok(platform)
    }

    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus[..self.cpu_count]
    }

    /// The slot of the device with virtio device ID `id` that Duet drives,
    /// once the slots are probed: of several, the last in device tree
    /// order. QEMU `virt` lists its slots lowest address first and puts the
    /// first `-device virtio-*-device` of its command line in the highest
    /// slot, so that is the one.
    pub fn virtio_device(&self, id: u32) -> Option<VirtioSlot> {
        self.virtio.iter().flatten().rev().find(|slot| slot.device_id == id).copied()
    }

    /// The slots of the devices Duet drives (one block, one network device).
    pub fn driven_virtio(&self) -> impl Iterator<Item = VirtioSlot> + '_ {
        [VIRTIO_ID_BLOCK, VIRTIO_ID_NET].into_iter().filter_map(|id| self.virtio_device(id))
    }

    /// The value of `key=value` on the boot command line, if present.
    pub fn boot_option(&self, key: &str) -> Option<&'static str> {
        self.bootargs
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    fn read_memory(&mut self, fdt: &Fdt<'static>) -> Result<(), PlatformError> {
        for node in fdt.all_nodes().filter(is_memory_node) {
            for reg in node.reg().into_iter().flatten() {
                let size = reg.size.unwrap_or(0) as u64;
                self.memory.insert(Region::new(reg.starting_address as u64, size))?;
            }
        }
        if self.memory.total() == 0 {
            return Err(PlatformError::NoMemory);
        }
        for reservation in fdt.memory_reservations() {
            let region = Region::new(reservation.address() as u64, reservation.size() as u64);
            self.reserved.insert(region)?;
        }
        if let Some(reserved) = fdt.find_node("/reserved-memory") {
            for child in reserved.children() {
                for reg in child.reg().into_iter().flatten() {
                    let size = reg.size.unwrap_or(0) as u64;
                    self.reserved.insert(Region::new(reg.starting_address as u64, size))?;
                }
            }
        }
        Ok(())
    }

    fn read_cpus(&mut self, fdt: &Fdt<'static>) {
        let Some(cpus) = fdt.find_node("/cpus") else {
            return;
        };
        for node in cpus.children().filter(|n| n.name.starts_with("cpu@")) {
            let Some(mpidr) = node.reg().and_then(|mut r| r.next()) else {
                continue;
            };
            if self.cpu_count == MAX_CPUS {
                self.cpus_ignored += 1;
                continue;
            }
            self.cpus[self.cpu_count] =
                Cpu { mpidr: mpidr.starting_address as u64, enable_method: enable_method(&node) };
            self.cpu_count += 1;
        }
    }
}

fn is_memory_node(node: &FdtNode<'_, '_>) -> bool {
    let device_type = node.property("device_type").and_then(|p| p.as_str());
    device_type == Some("memory") || node.name == "memory" || node.name.starts_with("memory@")
}

fn enable_method(node: &FdtNode<'_, '_>) -> EnableMethod {
    match node.property("enable-method").and_then(|p| p.as_str()) {
        Some("psci") => EnableMethod::Psci,
        Some("spin-table") => match node.property("cpu-release-addr") {
            Some(p) => EnableMethod::SpinTable { release_address: be_number(p.value) },
            None => EnableMethod::Unsupported,
        },
        _ => EnableMethod::Unsupported,
    }
}

/// A big-endian number of one or two cells.
fn be_number(bytes: &[u8]) -> u64 {
    bytes.iter().take(8).fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

fn regions(node: &FdtNode<'_, 'static>) -> impl Iterator<Item = Region> + 'static {
    let regs = node.reg();
    regs.into_iter()
        .flatten()
        .map(|r| Region::new(r.starting_address as u64, r.size.unwrap_or(0) as u64))
}

fn find_gic(fdt: &Fdt<'static>) -> Option<Gic> {
    if let Some(node) = fdt.find_compatible(&["arm,gic-v3"]) {
        let mut regs = regions(&node);
        return Some(Gic::V3 { distributor: regs.next()?, redistributors: regs.next()? });
    }
    let node = fdt.find_compatible(&[
        "arm,gic-400",
        "arm,cortex-a15-gic",
        "arm,cortex-a7-gic",
        "arm,cortex-a9-gic",
    ])?;
    let mut regs = regions(&node);
    Some(Gic::V2 {
        distributor: regs.next()?,
        cpu_interface: regs.next()?,
        hypervisor: regs.next(),
        virtual_cpu: regs.next(),
    })
}

/// The console PL011 and its interrupt.
fn find_uart(fdt: &Fdt<'static>) -> Option<(Region, Option<u32>)> {
    let is_pl011 = |node: &FdtNode<'_, '_>| {
        node.compatible().is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
    };
    let node =
        fdt.chosen().stdout().filter(is_pl011).or_else(|| fdt.find_compatible(&["arm,pl011"]))?;
    Some((regions(&node).next()?, first_interrupt(&node)))
}

/// The first interrupt of a node whose parent is a GIC (three cells: type,
/// number, flags), as an INTID.
fn first_interrupt(node: &FdtNode<'_, 'static>) -> Option<u32> {
    let cells = node.property("interrupts")?.value;
    let cell = |i: usize| Some(u32::from_be_bytes(cells.get(i * 4..i * 4 + 4)?.try_into().ok()?));
    match cell(0)? {
        0 => Some(32 + cell(1)?),
        1 => Some(16 + cell(1)?),
        _ => None,
    }
}

/// The `virtio,mmio` nodes, in device tree order.
fn find_virtio(fdt: &Fdt<'static>) -> [Option<VirtioSlot>; MAX_VIRTIO_SLOTS] {
    let mut slots = [None; MAX_VIRTIO_SLOTS];
    let is_virtio = |node: &FdtNode<'_, '_>| {
        node.compatible().is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
    };
    let found = fdt.all_nodes().filter(is_virtio).filter_map(|node| {
        let region = regions(&node).next().filter(|r| r.size() > 0)?;
        Some(VirtioSlot { region, intid: first_interrupt(&node), device_id: 0 })
    });
    for (slot, found) in slots.iter_mut().zip(found) {
        *slot = Some(found);
    }
    slots
}

/// `/chosen/linux,initrd-start` and `-end`.
fn find_initrd(fdt: &Fdt<'static>) -> Option<Region> {
    let chosen = fdt.find_node("/chosen")?;
    let start = be_number(chosen.property("linux,initrd-start")?.value);
    let end = be_number(chosen.property("linux,initrd-end")?.value);
    (end > start).then_some(Region { start, end })
}

fn find_psci(fdt: &Fdt<'static>) -> Option<Conduit> {
    let node = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])?;
    match node.property("method")?.as_str()? {
        "smc" => Some(Conduit::Smc),
        "hvc" => Some(Conduit::Hvc),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &'static [u8]) -> Platform {
        Platform::parse(bytes).expect("fixture parses")
    }

    #[test]
    fn reads_qemu_virt_with_gicv3() {
        let p = load(include_bytes!("../testdata/qemu-virt-gicv3.dtb"));
        assert_eq!(p.model, "linux,dummy-virt");
        assert_eq!(p.memory.iter().collect::<Vec<_>>(), [Region::new(0x4000_0000, 2 << 30)]);
        assert_eq!(p.cpus().len(), 4);
        assert_eq!(p.cpus()[3], Cpu { mpidr: 3, enable_method: EnableMethod::Psci });
        assert_eq!(
            p.gic,
            Some(Gic::V3 {
                distributor: Region::new(0x0800_0000, 0x1_0000),
                redistributors: Region::new(0x080a_0000, 0xf6_0000),
            })
        );
        assert_eq!(p.uart, Some(Region::new(0x0900_0000, 0x1000)));
        assert_eq!(p.uart_intid, Some(33));
        assert_eq!(p.initrd, None);
        assert_eq!(p.psci, Some(Conduit::Smc));
        assert_eq!(p.boot_option("duet.fault"), Some("data-abort@2"));
        assert_eq!(p.boot_option("duet"), None);
        assert_eq!(p.boot_option("console"), Some("ttyAMA0"));
    }

    #[test]
    fn finds_the_virtio_mmio_slots_and_the_driven_devices() {
        let mut p = load(include_bytes!("../testdata/qemu-virt-gicv3.dtb"));
        let slots: Vec<_> = p.virtio.iter().flatten().collect();
        assert_eq!(slots.len(), 32);
        let top = Region::new(0x0a00_3e00, 0x200);
        assert!(slots.iter().any(|s| s.region == top && s.intid == Some(32 + 47)));
        assert!(slots.iter().all(|s| s.device_id == 0));
        assert_eq!(p.driven_virtio().count(), 0);
        // After probing: two disks and a NIC, from the top slot down, as
        // QEMU places three `-device`s; Duet drives the first disk given.
        for (slot, id) in p.virtio.iter_mut().flatten().rev().zip([2, 2, 1]) {
            slot.device_id = id;
        }
        let driven: Vec<_> = p.driven_virtio().map(|s| (s.region.start, s.device_id)).collect();
        assert_eq!(driven, [(0x0a00_3e00, 2), (0x0a00_3a00, 1)]);
    }

    #[test]
    fn reads_qemu_virt_with_gicv2_and_its_virtualization_interface() {
        let p = load(include_bytes!("../testdata/qemu-virt-gicv2.dtb"));
        assert_eq!(p.cpus().len(), 2);
        assert_eq!(
            p.gic,
            Some(Gic::V2 {
                distributor: Region::new(0x0800_0000, 0x1_0000),
                cpu_interface: Region::new(0x0801_0000, 0x1_0000),
                hypervisor: Some(Region::new(0x0803_0000, 0x1_0000)),
                virtual_cpu: Some(Region::new(0x0804_0000, 0x1_0000)),
            })
        );
        assert_eq!(p.gic.unwrap().version(), 2);
    }

    #[test]
    fn rejects_what_is_not_a_device_tree() {
        let junk: &'static [u8] = &[0u8; 64];
        assert!(matches!(Platform::parse(junk), Err(PlatformError::Malformed(_))));
    }

    #[test]
    fn reads_big_endian_cells() {
        assert_eq!(be_number(&[0, 0, 0, 0, 0, 0, 0, 0xd8]), 0xd8);
        assert_eq!(be_number(&[0, 0, 0x10, 0]), 0x1000);
    }
}
