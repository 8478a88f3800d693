//! The board as its device tree describes it: RAM, CPUs, the interrupt
//! controller, the console UART, the timer and how to reach firmware.
//!
//! Duet learns the board here and nowhere else. Parsing needs no heap, so it
//! runs first thing at boot; the result is plain data the rest of Duet reads.

mod energy;

use crate::mm::regions::{Region, RegionSet, TooManyRegions};
use crate::personas::tree::{self, TreeError};
use crate::sched::energy::CpuPower;
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
pub const VIRTIO_ID_GPU: u32 = 16;
pub const VIRTIO_ID_INPUT: u32 = 18;

/// The most input devices Duet drives (a touch panel and a keyboard, with
/// room for a second of either).
pub const MAX_INPUTS: usize = 4;

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
    /// The blob's structure is broken (checked before `fdt` reads it, since
    /// `fdt` can panic on a damaged tree).
    Structure(TreeError),
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
            Self::Structure(e) => write!(f, "the device tree is damaged: {e}"),
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
    /// Each CPU's energy model, in the order of `cpus`.
    cpu_power: [CpuPower; MAX_CPUS],
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
    /// The BCM2835-family power-management watchdog (Raspberry Pi), the
    /// way to power off a board without PSCI.
    pub bcm2835_watchdog: Option<Region>,
    /// The BCM2711's GPIO block (Raspberry Pi 4), where Duet puts its
    /// console UART on the header pins.
    pub bcm2711_gpio: Option<Region>,
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
        tree::check(blob).map_err(PlatformError::Structure)?;
        let fdt = Fdt::new(blob).map_err(PlatformError::Malformed)?;
        let mut platform = Platform {
            model: fdt.root().model(),
            memory: RegionSet::new(),
            reserved: RegionSet::new(),
            cpus: [Cpu { mpidr: 0, enable_method: EnableMethod::Unsupported }; MAX_CPUS],
            cpu_power: [CpuPower::default(); MAX_CPUS],
            cpu_count: 0,
            cpus_ignored: 0,
            gic: find_gic(&fdt),
            uart: find_uart(&fdt).map(|(region, _)| region),
            uart_intid: find_uart(&fdt).and_then(|(_, intid)| intid),
            initrd: find_initrd(&fdt),
            psci: find_psci(&fdt),
            bcm2835_watchdog: find(&fdt, &|n| compatible(n, &["brcm,bcm2835-pm-wdt"]))
                .and_then(|(node, bus)| bus.regions(&node).next()),
            bcm2711_gpio: find(&fdt, &|n| compatible(n, &["brcm,bcm2711-gpio"]))
                .and_then(|(node, bus)| bus.regions(&node).next()),
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

    /// The energy model of the CPU with affinity `mpidr` (the defaults for
    /// a CPU the device tree does not list).
    pub fn cpu_power(&self, mpidr: u64) -> CpuPower {
        let index = self.cpus().iter().position(|cpu| cpu.mpidr == mpidr);
        index.map(|i| self.cpu_power[i]).unwrap_or_default()
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

    /// The input devices Duet drives: up to [`MAX_INPUTS`], in the order of
    /// QEMU's command line (highest slot first, see [`Self::virtio_device`]).
    pub fn virtio_inputs(&self) -> impl Iterator<Item = VirtioSlot> + '_ {
        let inputs = self.virtio.iter().flatten().rev();
        inputs.filter(|slot| slot.device_id == VIRTIO_ID_INPUT).copied().take(MAX_INPUTS)
    }

    /// The slots of the devices Duet drives: one block, one network and
    /// one display device, and the input devices.
    pub fn driven_virtio(&self) -> impl Iterator<Item = VirtioSlot> + '_ {
        let one_each = [VIRTIO_ID_BLOCK, VIRTIO_ID_NET, VIRTIO_ID_GPU].into_iter();
        one_each.filter_map(|id| self.virtio_device(id)).chain(self.virtio_inputs())
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
            self.cpu_power[self.cpu_count] = energy::cpu_power(fdt, &node);
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

/// The deepest nesting the search for devices follows.
const MAX_BUS_DEPTH: usize = 6;
/// Address windows kept per bus (`ranges` entries).
const MAX_WINDOWS: usize = 8;

/// One `ranges` window of a bus: child addresses `child..child + size` are
/// the parent's `parent..`.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    child: u64,
    parent: u64,
    size: u64,
}

/// How a bus maps its children's addresses into its parent's.
#[derive(Clone, Copy, Debug, Default)]
struct BusLevel {
    /// No `ranges`, or an empty one: addresses pass through.
    identity: bool,
    windows: [Window; MAX_WINDOWS],
    count: usize,
}

/// The buses above a node, outermost first: how its `reg` addresses become
/// CPU physical addresses (the Raspberry Pi puts its devices under a `soc`
/// bus whose addresses are not the CPU's).
#[derive(Clone, Copy, Debug, Default)]
struct Bus {
    levels: [BusLevel; MAX_BUS_DEPTH],
    depth: usize,
}

impl Bus {
    fn entered(&self, bus: &FdtNode<'_, 'static>, parent_address_cells: usize) -> Self {
        let mut next = *self;
        if next.depth < MAX_BUS_DEPTH {
            next.levels[next.depth] = bus_level(bus, parent_address_cells);
            next.depth += 1;
        }
        next
    }

    /// A child address as the CPU sees it; None if a bus does not map it.
    fn translate(&self, mut address: u64) -> Option<u64> {
        for level in self.levels[..self.depth].iter().rev() {
            if level.identity {
                continue;
            }
            let window = level.windows[..level.count]
                .iter()
                .find(|w| address >= w.child && address - w.child < w.size)?;
            address = window.parent + (address - window.child);
        }
        Some(address)
    }

    /// A node's `reg` entries, translated; entries no bus maps are dropped.
    fn regions(&self, node: &FdtNode<'_, 'static>) -> impl Iterator<Item = Region> + 'static {
        let bus = *self;
        node.reg().into_iter().flatten().filter_map(move |r| {
            let start = bus.translate(r.starting_address as u64)?;
            Some(Region::new(start, r.size.unwrap_or(0) as u64))
        })
    }
}

/// The `ranges` of `bus`, read with its own address and size cells for the
/// child side and `parent_address_cells` for the parent side.
fn bus_level(bus: &FdtNode<'_, 'static>, parent_address_cells: usize) -> BusLevel {
    let mut level = BusLevel::default();
    let Some(ranges) = bus.property("ranges") else {
        level.identity = true;
        return level;
    };
    let cells = bus.cell_sizes();
    let (child, parent, size) = (cells.address_cells, parent_address_cells, cells.size_cells);
    let entry = (child + parent + size) * 4;
    if ranges.value.is_empty() || entry == 0 || child > 2 || parent > 2 || size > 2 {
        level.identity = ranges.value.is_empty();
        return level;
    }
    for chunk in ranges.value.chunks_exact(entry).take(MAX_WINDOWS) {
        let (c, rest) = chunk.split_at(child * 4);
        let (p, s) = rest.split_at(parent * 4);
        level.windows[level.count] =
            Window { child: be_number(c), parent: be_number(p), size: be_number(s) };
        level.count += 1;
    }
    level
}

fn compatible(node: &FdtNode<'_, '_>, wanted: &[&str]) -> bool {
    node.compatible().is_some_and(|c| c.all().any(|s| wanted.contains(&s)))
}

/// The first node (depth first) for which `wanted` holds, with the buses
/// above it.
fn find<'b>(
    fdt: &'b Fdt<'static>,
    wanted: &dyn Fn(&FdtNode<'_, 'static>) -> bool,
) -> Option<(FdtNode<'b, 'static>, Bus)> {
    let root = fdt.find_node("/")?;
    search(root, Bus::default(), wanted, 0)
}

fn search<'b>(
    node: FdtNode<'b, 'static>,
    bus: Bus,
    wanted: &dyn Fn(&FdtNode<'_, 'static>) -> bool,
    depth: usize,
) -> Option<(FdtNode<'b, 'static>, Bus)> {
    let address_cells = node.cell_sizes().address_cells;
    for child in node.children() {
        if wanted(&child) {
            return Some((child, bus));
        }
        if depth + 1 < MAX_BUS_DEPTH {
            let inner = bus.entered(&child, address_cells);
            if let Some(found) = search(child, inner, wanted, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

fn find_gic(fdt: &Fdt<'static>) -> Option<Gic> {
    if let Some((node, bus)) = find(fdt, &|n| compatible(n, &["arm,gic-v3"])) {
        let mut regs = bus.regions(&node);
        return Some(Gic::V3 { distributor: regs.next()?, redistributors: regs.next()? });
    }
    let v2 = ["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic", "arm,cortex-a9-gic"];
    let (node, bus) = find(fdt, &|n| compatible(n, &v2))?;
    let mut regs = bus.regions(&node);
    Some(Gic::V2 {
        distributor: regs.next()?,
        cpu_interface: regs.next()?,
        hypervisor: regs.next(),
        virtual_cpu: regs.next(),
    })
}

/// The console PL011 and its interrupt: `/chosen/stdout-path` if that is a
/// PL011, else the first PL011.
fn find_uart(fdt: &Fdt<'static>) -> Option<(Region, Option<u32>)> {
    let is_pl011 = |node: &FdtNode<'_, '_>| compatible(node, &["arm,pl011"]);
    let stdout = fdt.chosen().stdout().filter(is_pl011);
    let stdout_reg = stdout.and_then(|n| n.reg()?.next()).map(|r| r.starting_address);
    let is_stdout = |node: &FdtNode<'_, 'static>| {
        is_pl011(node)
            && node.reg().and_then(|mut r| r.next()).map(|r| r.starting_address) == stdout_reg
    };
    let (node, bus) =
        stdout_reg.and_then(|_| find(fdt, &is_stdout)).or_else(|| find(fdt, &|n| is_pl011(n)))?;
    let region = bus.regions(&node).next()?;
    Some((region, first_interrupt(&node)))
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

/// The `virtio,mmio` nodes, in device tree order. QEMU `virt` puts them at
/// the root, so their addresses need no bus translation.
fn find_virtio(fdt: &Fdt<'static>) -> [Option<VirtioSlot>; MAX_VIRTIO_SLOTS] {
    let mut slots = [None; MAX_VIRTIO_SLOTS];
    let is_virtio = |node: &FdtNode<'_, '_>| {
        node.compatible().is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
    };
    let found = fdt.all_nodes().filter(is_virtio).filter_map(|node| {
        let region = Bus::default().regions(&node).next().filter(|r| r.size() > 0)?;
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
        // A screen, a touch panel and a keyboard, then the disk and NIC.
        for (slot, id) in p.virtio.iter_mut().flatten().rev().zip([16, 18, 18, 2, 1, 18]) {
            slot.device_id = id;
        }
        let driven: Vec<_> = p.driven_virtio().map(|s| (s.region.start, s.device_id)).collect();
        assert_eq!(
            driven,
            [
                (0x0a00_3800, 2),
                (0x0a00_3600, 1),
                (0x0a00_3e00, 16),
                (0x0a00_3c00, 18),
                (0x0a00_3a00, 18),
                (0x0a00_3400, 18)
            ]
        );
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
        assert!(matches!(
            Platform::parse(junk),
            Err(PlatformError::Structure(TreeError::BadMagic { found: 0 }))
        ));
        let mut cut = include_bytes!("../testdata/qemu-raspi4b.dtb").to_vec();
        cut[0x48..0x4c].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
        let cut: &'static [u8] = cut.leak();
        let error = Platform::parse(cut).unwrap_err();
        assert!(matches!(error, PlatformError::Structure(TreeError::UnexpectedToken { .. })));
        assert!(error.to_string().starts_with("the device tree is damaged: unexpected token"));
    }

    /// QEMU raspi4b's tree: Debian's bcm2711-rpi-4-b.dtb as QEMU passes it
    /// on (`-dtb`, memory filled in, its /chosen added). The devices sit on
    /// the `soc` bus, whose addresses the CPU sees elsewhere.
    #[test]
    fn reads_the_raspberry_pi_4_through_its_bus_ranges() {
        let mut blob = include_bytes!("../testdata/qemu-raspi4b.dtb").to_vec();
        // QEMU leaves NOP tokens where it took out nodes: refused as they
        // are (`fdt` would panic), read once squeezed out.
        let error = Platform::parse(blob.clone().leak()).unwrap_err();
        assert!(matches!(
            error,
            PlatformError::Structure(TreeError::UnexpectedToken { token: 4, .. })
        ));
        assert_eq!(tree::strip_nops(&mut blob), Ok(blob.len()));
        let p = load(blob.leak());
        assert_eq!(p.model, "Raspberry Pi 4 Model B");
        assert_eq!(p.memory.iter().collect::<Vec<_>>(), [Region::new(0, 0x3c00_0000)]);
        assert!(p.reserved.iter().any(|r| r == Region::new(0, 0x1000)), "the spin tables");
        assert_eq!(p.cpus().len(), 4);
        assert_eq!(
            p.cpus()[2],
            Cpu { mpidr: 2, enable_method: EnableMethod::SpinTable { release_address: 0xe8 } }
        );
        assert_eq!(
            p.gic,
            Some(Gic::V2 {
                distributor: Region::new(0xff84_1000, 0x1000),
                cpu_interface: Region::new(0xff84_2000, 0x2000),
                hypervisor: Some(Region::new(0xff84_4000, 0x2000)),
                virtual_cpu: Some(Region::new(0xff84_6000, 0x2000)),
            })
        );
        // stdout-path names the mini UART; the console is the PL011.
        assert_eq!(p.uart, Some(Region::new(0xfe20_1000, 0x200)));
        assert_eq!(p.uart_intid, Some(32 + 121));
        assert_eq!(p.psci, None);
        assert_eq!(p.bcm2835_watchdog, Some(Region::new(0xfe10_0000, 0x114)));
        assert_eq!(p.bcm2711_gpio, Some(Region::new(0xfe20_0000, 0xb4)));
    }

    /// Debian's Raspberry Pi 5 tree (no emulator runs it): the GIC-400 and
    /// the debug UART sit on a bus whose window starts above 4 GiB.
    #[test]
    fn reads_the_raspberry_pi_5_tree_through_its_40_bit_window() {
        let p = load(include_bytes!("../testdata/debian-bcm2712-rpi-5-b.dtb"));
        assert_eq!(p.model, "Raspberry Pi 5");
        assert_eq!(p.cpus()[1].enable_method, EnableMethod::Psci);
        assert_eq!(p.psci, Some(Conduit::Smc));
        assert_eq!(
            p.gic,
            Some(Gic::V2 {
                distributor: Region::new(0x10_7fff_9000, 0x1000),
                cpu_interface: Region::new(0x10_7fff_a000, 0x2000),
                hypervisor: Some(Region::new(0x10_7fff_c000, 0x2000)),
                virtual_cpu: Some(Region::new(0x10_7fff_e000, 0x2000)),
            })
        );
        // stdout-path names the debug UART, a PL011.
        assert_eq!(p.uart, Some(Region::new(0x10_7d00_1000, 0x200)));
        assert_eq!(p.bcm2835_watchdog, None);
        assert_eq!(p.bcm2711_gpio, None);
    }

    #[test]
    fn bus_ranges_translate_only_what_they_map() {
        let mut bus = Bus::default();
        bus.levels[0] = BusLevel { identity: true, ..BusLevel::default() };
        bus.levels[1].windows[0] = Window { child: 0x7e00_0000, parent: 0xfe00_0000, size: 0x100 };
        bus.levels[1].count = 1;
        bus.depth = 2;
        assert_eq!(bus.translate(0x7e00_0010), Some(0xfe00_0010));
        assert_eq!(bus.translate(0x7e00_0100), None);
        assert_eq!(Bus::default().translate(0x1234), Some(0x1234));
    }

    #[test]
    fn reads_big_endian_cells() {
        assert_eq!(be_number(&[0, 0, 0, 0, 0, 0, 0, 0xd8]), 0xd8);
        assert_eq!(be_number(&[0, 0, 0x10, 0]), 0x1000);
    }
}
