//! The device tree a guest boots with: Duet's virtual platform (see
//! [`layout`]) written out as a flattened device tree blob, shaped like the
//! one QEMU `virt` gives its guests, so a kernel that boots there boots here.
//!
//! This module owns which nodes and properties the guest sees; the addresses
//! and interrupt numbers all come from [`layout`]. The blob is built on the
//! heap with the `vm-fdt` writer and copied into guest RAM by the caller.

use crate::vm::layout;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use vm_fdt::{FdtWriter, FdtWriterNode};

/// The interrupt controller the guest is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// A GICv2 (`arm,cortex-a15-gic`): distributor and CPU interface.
    V2,
    /// A GICv3 (`arm,gic-v3`): distributor and one redistributor per vCPU.
    V3,
}

/// An initial RAM disk already placed in guest RAM, as guest-physical
/// addresses; `end` is exclusive (Linux reads `linux,initrd-end` that way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initrd {
    pub start: u64,
    pub end: u64,
}

/// What varies from one guest to another.
#[derive(Clone, Copy, Debug)]
pub struct GuestConfig<'a> {
    /// Bytes of RAM at [`layout::RAM_BASE`].
    pub ram_size: u64,
    /// vCPU `i` has MPIDR [`layout::vcpu_mpidr`]`(i)`.
    pub vcpus: usize,
    pub gic: GicVersion,
    /// The kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    pub initrd: Option<Initrd>,
    /// The virtio-mmio slots that have a device behind them, each below
    /// [`layout::VIRTIO_SLOTS`]; any order, no repeats.
    pub virtio_slots: &'a [u32],
}

/// Why no device tree could be written for a configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum DeviceTreeError {
    /// A guest needs at least one vCPU.
    NoVcpus,
    /// More vCPUs than Duet (or a GICv2, which has 8 CPU interfaces) allows.
    TooManyVcpus { requested: usize, max: usize },
    /// No RAM, or RAM that runs past the end of the address space.
    BadRamSize(u64),
    /// The initrd is empty, reversed, or not inside guest RAM.
    BadInitrd(Initrd),
    /// A virtio-mmio slot at or beyond [`layout::VIRTIO_SLOTS`].
    NoSuchVirtioSlot(u32),
    /// The same virtio-mmio slot listed twice.
    DuplicateVirtioSlot(u32),
    /// The command line holds a NUL byte, which a device tree string cannot.
    BadBootargs,
    /// The FDT writer refused (a bug in this module, not in the config).
    Writer(vm_fdt::Error),
}

impl From<vm_fdt::Error> for DeviceTreeError {
    fn from(error: vm_fdt::Error) -> Self {
        DeviceTreeError::Writer(error)
    }
}

impl fmt::Display for DeviceTreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => write!(f, "a guest needs at least one vCPU"),
            Self::TooManyVcpus { requested, max } => {
                write!(f, "{requested} vCPUs requested, at most {max} possible")
            }
            Self::BadRamSize(size) => write!(f, "guest RAM of {size:#x} bytes cannot be placed"),
            Self::BadInitrd(i) => {
                write!(f, "initrd {:#x}..{:#x} is empty or outside guest RAM", i.start, i.end)
            }
            Self::NoSuchVirtioSlot(n) => write!(
                f,
                "virtio-mmio slot {n} does not exist (there are {})",
                layout::VIRTIO_SLOTS
            ),
            Self::DuplicateVirtioSlot(n) => write!(f, "virtio-mmio slot {n} is listed twice"),
            Self::BadBootargs => write!(f, "the command line contains a NUL byte"),
            Self::Writer(e) => write!(f, "device tree writer failed: {e}"),
        }
    }
}

/// The `model` property of the root node.
pub const MODEL: &str = "Duet virtual platform";
/// Root compatibles: QEMU's, so kernels treat the board as `virt`, and Duet's.
const ROOT_COMPATIBLE: [&str; 2] = ["linux,dummy-virt", "duet,virt"];

/// Phandles of the nodes others point at.
const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;

/// The PL011's clock as QEMU describes it; Linux's AMBA bus needs `apb_pclk`
/// to probe the device at all.
const UART_CLOCK_HZ: u32 = 24_000_000;

/// A GICv2 has this many CPU interfaces, and its PPI specifiers a CPU mask
/// of this many bits.
const GICV2_MAX_CPUS: usize = 8;

/// Size of one virtio-mmio register window.
const VIRTIO_MMIO_SIZE: u64 = 0x200;

/// The GIC binding's three-cell interrupt specifier: type, number, flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const FIRST_PPI_INTID: u32 = 16;
const FIRST_SPI_INTID: u32 = 32;
const IRQ_EDGE_RISING: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
/// GICv2 PPI specifiers carry a mask of the CPUs the PPI is wired to here.
const GICV2_PPI_CPU_MASK_SHIFT: u32 = 8;

/// MPIDR bits that name a CPU in a one-cell `cpu` node `reg`: Aff2..Aff0.
/// (Aff3 would need a second cell; no vCPU of [`layout`] uses it, which a
/// test checks.)
const MPIDR_AFF2_TO_AFF0_MASK: u64 = 0xff_ffff;

/// Writes the device tree for `config`.
pub fn write(config: &GuestConfig) -> Result<Vec<u8>, DeviceTreeError> {
    let slots = check(config)?;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string_list("compatible", strings(&ROOT_COMPATIBLE))?;
    fdt.property_string("model", MODEL)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    write_chosen(&mut fdt, config)?;
    write_aliases(&mut fdt)?;
    write_memory(&mut fdt, config.ram_size)?;
    write_cpus(&mut fdt, config.vcpus)?;
    write_psci(&mut fdt)?;
    write_gic(&mut fdt, config)?;
    write_timer(&mut fdt, config)?;
    write_clock(&mut fdt)?;
    write_uart(&mut fdt)?;
    for slot in slots {
        write_virtio(&mut fdt, slot)?;
    }

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// Validates `config`; returns its virtio slots in ascending order, so that
/// the guest enumerates devices in slot order.
fn check(config: &GuestConfig) -> Result<Vec<u32>, DeviceTreeError> {
    check_vcpus(config)?;
    let ram_end = layout::RAM_BASE
        .checked_add(config.ram_size)
        .filter(|_| config.ram_size != 0)
        .ok_or(DeviceTreeError::BadRamSize(config.ram_size))?;
    if let Some(initrd) = config.initrd {
        let inside = layout::RAM_BASE <= initrd.start && initrd.end <= ram_end;
        if !inside || initrd.start >= initrd.end {
            return Err(DeviceTreeError::BadInitrd(initrd));
        }
    }
    if config.bootargs.contains('\0') {
        return Err(DeviceTreeError::BadBootargs);
    }
    sorted_slots(config.virtio_slots)
}

fn check_vcpus(config: &GuestConfig) -> Result<(), DeviceTreeError> {
    let max = match config.gic {
        GicVersion::V2 => layout::MAX_VCPUS.min(GICV2_MAX_CPUS),
        GicVersion::V3 => layout::MAX_VCPUS,
    };
    match config.vcpus {
        0 => Err(DeviceTreeError::NoVcpus),
        n if n > max => Err(DeviceTreeError::TooManyVcpus { requested: n, max }),
        _ => Ok(()),
    }
}

fn sorted_slots(slots: &[u32]) -> Result<Vec<u32>, DeviceTreeError> {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[0] == pair[1] {
            return Err(DeviceTreeError::DuplicateVirtioSlot(pair[0]));
        }
    }
    match sorted.last() {
        Some(&last) if last >= layout::VIRTIO_SLOTS => Err(DeviceTreeError::NoSuchVirtioSlot(last)),
        _ => Ok(sorted),
    }
}

fn write_chosen(fdt: &mut FdtWriter, config: &GuestConfig) -> Result<(), DeviceTreeError> {
    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", config.bootargs)?;
    fdt.property_string("stdout-path", &uart_path())?;
    if let Some(initrd) = config.initrd {
        fdt.property_u64("linux,initrd-start", initrd.start)?;
        fdt.property_u64("linux,initrd-end", initrd.end)?;
    }
    Ok(fdt.end_node(chosen)?)
}

fn write_aliases(fdt: &mut FdtWriter) -> Result<(), DeviceTreeError> {
    let aliases = fdt.begin_node("aliases")?;
    fdt.property_string("serial0", &uart_path())?;
    Ok(fdt.end_node(aliases)?)
}

fn write_memory(fdt: &mut FdtWriter, ram_size: u64) -> Result<(), DeviceTreeError> {
    let memory = begin_device(fdt, "memory", layout::RAM_BASE)?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[layout::RAM_BASE, ram_size])?;
    Ok(fdt.end_node(memory)?)
}

fn write_cpus(fdt: &mut FdtWriter, vcpus: usize) -> Result<(), DeviceTreeError> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..vcpus {
        let id = cpu_reg(layout::vcpu_mpidr(index));
        let cpu = begin_device(fdt, "cpu", u64::from(id))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_string("enable-method", "psci")?;
        fdt.property_u32("reg", id)?;
        fdt.end_node(cpu)?;
    }
    Ok(fdt.end_node(cpus)?)
}

/// The `reg` of a CPU node: MPIDR's affinity fields, nothing else.
fn cpu_reg(mpidr: u64) -> u32 {
    (mpidr & MPIDR_AFF2_TO_AFF0_MASK) as u32
}

fn write_psci(fdt: &mut FdtWriter) -> Result<(), DeviceTreeError> {
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list("compatible", strings(&["arm,psci-1.0", "arm,psci-0.2"]))?;
    fdt.property_string("method", "hvc")?;
    Ok(fdt.end_node(psci)?)
}

fn write_gic(fdt: &mut FdtWriter, config: &GuestConfig) -> Result<(), DeviceTreeError> {
    let gic = begin_device(fdt, "intc", layout::GICD_BASE)?;
    match config.gic {
        GicVersion::V2 => {
            fdt.property_string("compatible", "arm,cortex-a15-gic")?;
            fdt.property_array_u64(
                "reg",
                &[layout::GICD_BASE, layout::GICD_SIZE, layout::GICC_BASE, layout::GICC_SIZE],
            )?;
        }
        GicVersion::V3 => {
            let redistributors = config.vcpus as u64 * layout::GICR_STRIDE;
            fdt.property_string("compatible", "arm,gic-v3")?;
            fdt.property_array_u64(
                "reg",
                &[layout::GICD_BASE, layout::GICD_SIZE, layout::GICR_BASE, redistributors],
            )?;
            fdt.property_u32("#redistributor-regions", 1)?;
        }
    }
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    // No child nodes (no ITS, no v2m): an `interrupt-map` pointing here would
    // carry no address cells, which the binding wants stated.
    fdt.property_u32("#address-cells", 0)?;
    let maintenance = ppi(config, layout::GIC_MAINTENANCE_INTID);
    fdt.property_array_u32("interrupts", &maintenance)?;
    fdt.property_phandle(GIC_PHANDLE)?;
    Ok(fdt.end_node(gic)?)
}

fn write_timer(fdt: &mut FdtWriter, config: &GuestConfig) -> Result<(), DeviceTreeError> {
    // The order the binding fixes: secure physical, non-secure physical,
    // virtual, hypervisor physical.
    let interrupts: Vec<u32> = [
        layout::TIMER_SECURE_PHYS_INTID,
        layout::TIMER_PHYS_INTID,
        layout::TIMER_VIRT_INTID,
        layout::TIMER_HYP_INTID,
    ]
    .iter()
    .flat_map(|&intid| ppi(config, intid))
    .collect();
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_array_u32("interrupts", &interrupts)?;
    fdt.property_null("always-on")?;
    Ok(fdt.end_node(timer)?)
}

fn write_clock(fdt: &mut FdtWriter) -> Result<(), DeviceTreeError> {
    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLOCK_PHANDLE)?;
    Ok(fdt.end_node(clock)?)
}

fn write_uart(fdt: &mut FdtWriter) -> Result<(), DeviceTreeError> {
    let uart = begin_device(fdt, "pl011", layout::UART_BASE)?;
    fdt.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    fdt.property_array_u64("reg", &[layout::UART_BASE, layout::UART_SIZE])?;
    fdt.property_array_u32("interrupts", &spi(layout::UART_INTID, IRQ_LEVEL_HIGH))?;
    fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    fdt.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    Ok(fdt.end_node(uart)?)
}

fn write_virtio(fdt: &mut FdtWriter, slot: u32) -> Result<(), DeviceTreeError> {
    let base = layout::VIRTIO_BASE + u64::from(slot) * layout::VIRTIO_STRIDE;
    let intid = layout::VIRTIO_FIRST_INTID + slot;
    let node = begin_device(fdt, "virtio_mmio", base)?;
    fdt.property_string("compatible", "virtio,mmio")?;
    fdt.property_array_u64("reg", &[base, VIRTIO_MMIO_SIZE])?;
    // Edge-triggered, as QEMU `virt` declares them: each new notification
    // is one rising edge the vGIC latches as pending.
    fdt.property_array_u32("interrupts", &spi(intid, IRQ_EDGE_RISING))?;
    fdt.property_null("dma-coherent")?;
    Ok(fdt.end_node(node)?)
}

/// Opens `name@address`, the unit address in hex as the spec wants it.
fn begin_device(
    fdt: &mut FdtWriter,
    name: &str,
    address: u64,
) -> Result<FdtWriterNode, DeviceTreeError> {
    Ok(fdt.begin_node(&format!("{name}@{address:x}"))?)
}

/// The console's path, for `stdout-path` and the `serial0` alias.
fn uart_path() -> String {
    format!("/pl011@{:x}", layout::UART_BASE)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A level-high PPI specifier; on GICv2 the flags also name the CPUs that
/// have this PPI (all of the guest's).
fn ppi(config: &GuestConfig, intid: u32) -> [u32; 3] {
    let cpu_mask = match config.gic {
        GicVersion::V2 => ((1u32 << config.vcpus) - 1) << GICV2_PPI_CPU_MASK_SHIFT,
        GicVersion::V3 => 0,
    };
    [GIC_PPI, intid - FIRST_PPI_INTID, IRQ_LEVEL_HIGH | cpu_mask]
}

fn spi(intid: u32, flags: u32) -> [u32; 3] {
    [GIC_SPI, intid - FIRST_SPI_INTID, flags]
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdt::node::FdtNode;
    use fdt::Fdt;

    const MIB: u64 = 1 << 20;

    fn config(gic: GicVersion) -> GuestConfig<'static> {
        GuestConfig {
            ram_size: 256 * MIB,
            vcpus: 2,
            gic,
            bootargs: "console=ttyAMA0 earlycon",
            initrd: None,
            virtio_slots: &[],
        }
    }

    fn cells(node: &FdtNode, name: &str) -> Vec<u32> {
        let value = node.property(name).expect(name).value;
        value.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect()
    }

    fn string(node: &FdtNode, name: &str) -> String {
        node.property(name).and_then(|p| p.as_str()).expect(name).to_string()
    }

    fn compatibles<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
        node.compatible().expect("compatible").all().collect()
    }

    fn regs(node: &FdtNode) -> Vec<(u64, u64)> {
        node.reg()
            .expect("reg")
            .map(|r| (r.starting_address as u64, r.size.unwrap_or(0) as u64))
            .collect()
    }

    fn node<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> FdtNode<'b, 'a> {
        fdt.find_node(path).unwrap_or_else(|| panic!("{path} missing"))
    }

    #[test]
    fn root_memory_chosen_and_aliases() {
        let blob = write(&config(GicVersion::V3)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let root = node(&fdt, "/");
        assert_eq!(compatibles(&root), ["linux,dummy-virt", "duet,virt"]);
        assert_eq!(string(&root, "model"), MODEL);
        assert_eq!(cells(&root, "#address-cells"), [2]);
        assert_eq!(cells(&root, "#size-cells"), [2]);
        assert_eq!(cells(&root, "interrupt-parent"), [GIC_PHANDLE]);

        let memory = node(&fdt, "/memory@40000000");
        assert_eq!(string(&memory, "device_type"), "memory");
        assert_eq!(regs(&memory), [(layout::RAM_BASE, 256 * MIB)]);

        assert_eq!(fdt.chosen().bootargs(), Some("console=ttyAMA0 earlycon"));
        let stdout = fdt.chosen().stdout().expect("stdout-path resolves");
        assert_eq!(stdout.name, "pl011@9000000");
        assert!(node(&fdt, "/chosen").property("linux,initrd-start").is_none());
        let aliases = fdt.aliases().expect("aliases");
        assert_eq!(aliases.resolve("serial0"), Some("/pl011@9000000"));
    }

    #[test]
    fn cpus_use_psci_and_their_mpidr() {
        let blob = write(&GuestConfig { vcpus: 4, ..config(GicVersion::V3) }).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let cpus = node(&fdt, "/cpus");
        assert_eq!(cells(&cpus, "#address-cells"), [1]);
        assert_eq!(cells(&cpus, "#size-cells"), [0]);
        let list: Vec<_> = cpus.children().collect();
        assert_eq!(list.len(), 4);
        for (i, cpu) in list.iter().enumerate() {
            assert_eq!(cpu.name, format!("cpu@{i}"));
            assert_eq!(cells(cpu, "reg"), [layout::vcpu_mpidr(i) as u32]);
            assert_eq!(string(cpu, "device_type"), "cpu");
            assert_eq!(string(cpu, "enable-method"), "psci");
            assert_eq!(compatibles(cpu), ["arm,armv8"]);
        }
    }

    #[test]
    fn every_vcpu_mpidr_fits_one_cell() {
        // Aff3 (MPIDR bits 39:32) would need `#address-cells = <2>` in /cpus.
        for index in 0..layout::MAX_VCPUS {
            let mpidr = layout::vcpu_mpidr(index);
            assert_eq!(mpidr >> 32, 0, "vCPU {index} uses Aff3");
            assert_eq!(u64::from(cpu_reg(mpidr)), mpidr & 0xff_ffff);
        }
    }

    #[test]
    fn psci_is_reached_over_hvc() {
        let blob = write(&config(GicVersion::V3)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let psci = node(&fdt, "/psci");
        assert_eq!(compatibles(&psci), ["arm,psci-1.0", "arm,psci-0.2"]);
        assert_eq!(string(&psci, "method"), "hvc");
    }

    #[test]
    fn gicv3_has_one_redistributor_per_vcpu() {
        let blob = write(&GuestConfig { vcpus: 3, ..config(GicVersion::V3) }).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let gic = node(&fdt, "/intc@8000000");
        assert_eq!(compatibles(&gic), ["arm,gic-v3"]);
        assert_eq!(
            regs(&gic),
            [(layout::GICD_BASE, layout::GICD_SIZE), (layout::GICR_BASE, 3 * layout::GICR_STRIDE)]
        );
        assert_eq!(cells(&gic, "#redistributor-regions"), [1]);
        assert_eq!(cells(&gic, "#interrupt-cells"), [3]);
        assert_eq!(cells(&gic, "#address-cells"), [0]);
        assert!(gic.property("interrupt-controller").is_some());
        assert_eq!(cells(&gic, "interrupts"), [GIC_PPI, 9, IRQ_LEVEL_HIGH]);
        assert_eq!(cells(&gic, "phandle"), [GIC_PHANDLE]);
        assert_eq!(fdt.find_phandle(GIC_PHANDLE).unwrap().name, gic.name);

        let timer = node(&fdt, "/timer");
        assert_eq!(compatibles(&timer), ["arm,armv8-timer"]);
        assert!(timer.property("always-on").is_some());
        #[rustfmt::skip]
        assert_eq!(cells(&timer, "interrupts"), [
            GIC_PPI, 13, IRQ_LEVEL_HIGH,
            GIC_PPI, 14, IRQ_LEVEL_HIGH,
            GIC_PPI, 11, IRQ_LEVEL_HIGH,
            GIC_PPI, 10, IRQ_LEVEL_HIGH,
        ]);
    }

    #[test]
    fn gicv2_has_a_cpu_interface_and_cpu_masks_in_ppis() {
        let blob = write(&config(GicVersion::V2)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let gic = node(&fdt, "/intc@8000000");
        assert_eq!(compatibles(&gic), ["arm,cortex-a15-gic"]);
        assert_eq!(
            regs(&gic),
            [(layout::GICD_BASE, layout::GICD_SIZE), (layout::GICC_BASE, layout::GICC_SIZE)]
        );
        assert!(gic.property("#redistributor-regions").is_none());
        // Two vCPUs: CPU mask 0b11 in bits 15:8 of the flags, as QEMU writes.
        let flags = 0x0300 | IRQ_LEVEL_HIGH;
        assert_eq!(cells(&gic, "interrupts"), [GIC_PPI, 9, flags]);
        let timer = node(&fdt, "/timer");
        #[rustfmt::skip]
        assert_eq!(cells(&timer, "interrupts"), [
            GIC_PPI, 13, flags, GIC_PPI, 14, flags, GIC_PPI, 11, flags, GIC_PPI, 10, flags,
        ]);
    }

    #[test]
    fn gicv2_takes_at_most_eight_vcpus() {
        let result = write(&GuestConfig { vcpus: 8, ..config(GicVersion::V2) });
        let blob = result.unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let flags = cells(&node(&fdt, "/timer"), "interrupts")[2];
        assert_eq!(flags, 0xff00 | IRQ_LEVEL_HIGH);
    }

    #[test]
    fn pl011_is_an_amba_device_with_its_clock() {
        let blob = write(&config(GicVersion::V3)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let uart = node(&fdt, "/pl011@9000000");
        assert_eq!(compatibles(&uart), ["arm,pl011", "arm,primecell"]);
        assert_eq!(regs(&uart), [(layout::UART_BASE, layout::UART_SIZE)]);
        assert_eq!(cells(&uart, "interrupts"), [GIC_SPI, 1, IRQ_LEVEL_HIGH]);
        assert_eq!(cells(&uart, "clocks"), [CLOCK_PHANDLE, CLOCK_PHANDLE]);
        let names: Vec<_> =
            uart.property("clock-names").unwrap().value.split(|&b| b == 0).collect();
        assert_eq!(names, [&b"uartclk"[..], b"apb_pclk", b""]);

        let clock = fdt.find_phandle(CLOCK_PHANDLE).expect("clock phandle");
        assert_eq!(clock.name, "apb-pclk");
        assert_eq!(compatibles(&clock), ["fixed-clock"]);
        assert_eq!(cells(&clock, "clock-frequency"), [24_000_000]);
        assert_eq!(cells(&clock, "#clock-cells"), [0]);
    }

    #[test]
    fn initrd_goes_to_chosen() {
        let initrd =
            Initrd { start: layout::RAM_BASE + 128 * MIB, end: layout::RAM_BASE + 130 * MIB + 17 };
        let blob = write(&GuestConfig { initrd: Some(initrd), ..config(GicVersion::V2) }).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let chosen = node(&fdt, "/chosen");
        let start = cells(&chosen, "linux,initrd-start");
        let end = cells(&chosen, "linux,initrd-end");
        assert_eq!((u64::from(start[0]) << 32) | u64::from(start[1]), initrd.start);
        assert_eq!((u64::from(end[0]) << 32) | u64::from(end[1]), initrd.end);
    }

    #[test]
    fn virtio_slots_in_slot_order() {
        let blob =
            write(&GuestConfig { virtio_slots: &[31, 0, 2], ..config(GicVersion::V3) }).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let devices: Vec<_> =
            fdt.all_nodes().filter(|n| n.name.starts_with("virtio_mmio@")).collect();
        let names: Vec<_> = devices.iter().map(|n| n.name).collect();
        assert_eq!(names, ["virtio_mmio@a000000", "virtio_mmio@a000400", "virtio_mmio@a003e00"]);
        for (device, slot) in devices.iter().zip([0u32, 2, 31]) {
            let base = layout::VIRTIO_BASE + u64::from(slot) * layout::VIRTIO_STRIDE;
            assert_eq!(compatibles(device), ["virtio,mmio"]);
            assert_eq!(regs(device), [(base, 0x200)]);
            assert_eq!(cells(device, "interrupts"), [GIC_SPI, 16 + slot, IRQ_EDGE_RISING]);
            assert!(device.property("dma-coherent").is_some());
        }
    }

    #[test]
    fn no_virtio_nodes_without_slots() {
        let blob = write(&config(GicVersion::V2)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert!(fdt.find_compatible(&["virtio,mmio"]).is_none());
    }

    #[test]
    fn duet_reads_back_what_it_writes() {
        // The guest's tree through the same reader Duet uses for the board's.
        let blob: &'static [u8] =
            write(&GuestConfig { vcpus: 3, ..config(GicVersion::V3) }).unwrap().leak();
        let platform = crate::platform::Platform::parse(blob).unwrap();
        assert_eq!(platform.model, MODEL);
        assert_eq!(platform.cpus().len(), 3);
        assert_eq!(platform.psci, Some(crate::platform::Conduit::Hvc));
        assert_eq!(
            platform.uart,
            Some(crate::mm::regions::Region::new(layout::UART_BASE, layout::UART_SIZE))
        );
        assert_eq!(platform.memory.total(), 256 * MIB);
    }

    #[test]
    fn rejects_bad_configurations() {
        let base = config(GicVersion::V3);
        let cases = [
            (GuestConfig { vcpus: 0, ..base }, DeviceTreeError::NoVcpus),
            (
                GuestConfig { vcpus: layout::MAX_VCPUS + 1, ..base },
                DeviceTreeError::TooManyVcpus {
                    requested: layout::MAX_VCPUS + 1,
                    max: layout::MAX_VCPUS,
                },
            ),
            (GuestConfig { ram_size: 0, ..base }, DeviceTreeError::BadRamSize(0)),
            (GuestConfig { ram_size: u64::MAX, ..base }, DeviceTreeError::BadRamSize(u64::MAX)),
            (GuestConfig { bootargs: "a\0b", ..base }, DeviceTreeError::BadBootargs),
            (GuestConfig { virtio_slots: &[1, 32], ..base }, DeviceTreeError::NoSuchVirtioSlot(32)),
            (
                GuestConfig { virtio_slots: &[3, 1, 3], ..base },
                DeviceTreeError::DuplicateVirtioSlot(3),
            ),
        ];
        for (config, error) in cases {
            assert_eq!(write(&config), Err(error));
        }
    }

    #[test]
    fn rejects_an_initrd_outside_ram_or_empty() {
        let ram_end = layout::RAM_BASE + 256 * MIB;
        let bad = [
            Initrd { start: layout::RAM_BASE - 1, end: layout::RAM_BASE + MIB },
            Initrd { start: ram_end - MIB, end: ram_end + 1 },
            Initrd { start: layout::RAM_BASE + MIB, end: layout::RAM_BASE + MIB },
            Initrd { start: layout::RAM_BASE + 2 * MIB, end: layout::RAM_BASE + MIB },
        ];
        for initrd in bad {
            let result = write(&GuestConfig { initrd: Some(initrd), ..config(GicVersion::V3) });
            assert_eq!(result, Err(DeviceTreeError::BadInitrd(initrd)));
        }
        let whole_ram = Initrd { start: layout::RAM_BASE, end: ram_end };
        assert!(write(&GuestConfig { initrd: Some(whole_ram), ..config(GicVersion::V3) }).is_ok());
    }

    #[test]
    fn errors_read_as_sentences() {
        let text = DeviceTreeError::NoSuchVirtioSlot(40).to_string();
        assert_eq!(text, "virtio-mmio slot 40 does not exist (there are 32)");
    }
}
