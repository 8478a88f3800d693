//! What the bench guest learns from the device tree it boots with: its
//! console UART (PL011 or ns16550), its interrupt controller (GICv2 or
//! GICv3), its CPUs, the first virtio-mmio transport and how PSCI is called.
//! Only standard bindings are read, so any hypervisor (or QEMU alone) that
//! describes its machine the usual way will do.

use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;

/// The most CPUs the guest keeps track of (it uses two).
pub const MAX_CPUS: usize = 8;

/// The console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uart {
    Pl011 {
        base: u64,
    },
    /// Registers `1 << shift` bytes apart, each `width` bytes wide (1 or 4).
    Ns16550 {
        base: u64,
        shift: u32,
        width: u32,
    },
}

/// The interrupt controller's register frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    V2 { distributor: u64, cpu_interface: u64 },
    V3 { distributor: u64, redistributors: u64 },
}

/// How PSCI (and any SMCCC call) is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

/// Everything the guest needs from its device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub uart: Uart,
    pub gic: Option<Gic>,
    pub conduit: Conduit,
    /// The `reg` (MPIDR affinity) of each CPU node, in tree order.
    pub cpus: [u64; MAX_CPUS],
    pub cpu_count: usize,
    /// The first virtio-mmio transport's registers, if there is one.
    pub virtio_mmio: Option<u64>,
    /// The virtual timer's interrupt (INTID): the third of the timer node's
    /// `interrupts`, a PPI; 27 (PPI 11) where the tree does not say.
    pub timer_intid: u32,
}

/// Why the device tree is not enough to run the benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The blob is not a device tree.
    NotADeviceTree,
    /// No PL011 or ns16550 (neither `stdout-path` nor any compatible node).
    NoUart,
    /// No `/psci` node with `method` "hvc" or "smc".
    NoPsci,
    /// A node the guest uses has no usable `reg`.
    BadReg(&'static str),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            PlatformError::NotADeviceTree => write!(f, "not a flattened device tree"),
            PlatformError::NoUart => write!(f, "no PL011 or ns16550 UART"),
            PlatformError::NoPsci => write!(f, "no PSCI node with method hvc or smc"),
            PlatformError::BadReg(what) => write!(f, "the {what} node has no usable reg"),
        }
    }
}

const PL011: &[&str] = &["arm,pl011"];
const NS16550: &[&str] = &["ns16550a", "ns16550", "snps,dw-apb-uart"];
const GIC_V2: &[&str] = &["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"];
const GIC_V3: &[&str] = &["arm,gic-v3"];
const VIRTIO_MMIO: &[&str] = &["virtio,mmio"];

impl Platform {
    /// Reads the device tree in `blob`.
    pub fn from_blob(blob: &[u8]) -> Result<Platform, PlatformError> {
        let tree = Fdt::new(blob).map_err(|_| PlatformError::NotADeviceTree)?;
        let (cpus, cpu_count) = cpus(&tree);
        Ok(Platform {
            uart: uart(&tree)?,
            gic: gic(&tree)?,
            conduit: conduit(&tree)?,
            cpus,
            cpu_count,
            virtio_mmio: match tree.find_compatible(VIRTIO_MMIO) {
                Some(node) => Some(regs::<1>(node, "virtio-mmio")?[0]),
                None => None,
            },
            timer_intid: timer_intid(&tree),
        })
    }

    /// The name of the GIC version, for the platform line.
    pub fn gic_name(&self) -> &'static str {
        match self.gic {
            Some(Gic::V2 { .. }) => "v2",
            Some(Gic::V3 { .. }) => "v3",
            None => "none",
        }
    }
}

/// The first `N` addresses of `node`'s `reg`.
fn regs<const N: usize>(node: FdtNode, what: &'static str) -> Result<[u64; N], PlatformError> {
    let mut out = [0; N];
    let mut regions = node.reg().ok_or(PlatformError::BadReg(what))?;
    for slot in &mut out {
        *slot = regions.next().ok_or(PlatformError::BadReg(what))?.starting_address as u64;
    }
    Ok(out)
}

fn has_compatible(node: &FdtNode, list: &[&str]) -> bool {
    node.compatible().is_some_and(|c| c.all().any(|name| list.contains(&name)))
}

/// The UART `stdout-path` names (without its `:options`), else the first
/// PL011, else the first ns16550.
fn uart(tree: &Fdt) -> Result<Uart, PlatformError> {
    let stdout = tree
        .find_node("/chosen")
        .and_then(|chosen| chosen.property("stdout-path"))
        .and_then(|p| p.as_str())
        .map(|path| path.split(':').next().unwrap_or(path))
        .and_then(|path| {
            tree.find_node(path).or_else(|| tree.aliases().and_then(|a| a.resolve_node(path)))
        })
        .filter(|node| has_compatible(node, PL011) || has_compatible(node, NS16550));
    let node = stdout
        .or_else(|| tree.find_compatible(PL011))
        .or_else(|| tree.find_compatible(NS16550))
        .ok_or(PlatformError::NoUart)?;
    let [base] = regs::<1>(node, "UART")?;
    if has_compatible(&node, PL011) {
        return Ok(Uart::Pl011 { base });
    }
    let cell = |name| node.property(name).and_then(|p| p.as_usize()).map(|v| v as u32);
    Ok(Uart::Ns16550 {
        base,
        shift: cell("reg-shift").unwrap_or(0),
        width: cell("reg-io-width").unwrap_or(1),
    })
}

fn gic(tree: &Fdt) -> Result<Option<Gic>, PlatformError> {
    if let Some(node) = tree.find_compatible(GIC_V3) {
        let [distributor, redistributors] = regs::<2>(node, "GICv3")?;
        return Ok(Some(Gic::V3 { distributor, redistributors }));
    }
    if let Some(node) = tree.find_compatible(GIC_V2) {
        let [distributor, cpu_interface] = regs::<2>(node, "GICv2")?;
        return Ok(Some(Gic::V2 { distributor, cpu_interface }));
    }
    Ok(None)
}

fn conduit(tree: &Fdt) -> Result<Conduit, PlatformError> {
    let method =
        tree.find_node("/psci").and_then(|n| n.property("method")).and_then(|p| p.as_str());
    match method {
        Some("hvc") => Ok(Conduit::Hvc),
        Some("smc") => Ok(Conduit::Smc),
        _ => Err(PlatformError::NoPsci),
    }
}

/// The architected timer's interrupts are (secure, non-secure, virtual,
/// hypervisor), three cells each: type (1 = PPI), number, flags.
fn timer_intid(tree: &Fdt) -> u32 {
    const PPI_BASE: u32 = 16;
    tree.find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])
        .and_then(|node| node.property("interrupts"))
        .and_then(|p| p.value.get(2 * 12 + 4..2 * 12 + 8))
        .map(|cell| PPI_BASE + u32::from_be_bytes(cell.try_into().unwrap()))
        .unwrap_or(PPI_BASE + 11)
}

/// Each CPU node's `reg`: one or two cells, as `/cpus` says.
fn cpus(tree: &Fdt) -> ([u64; MAX_CPUS], usize) {
    let mut ids = [0; MAX_CPUS];
    let mut count = 0;
    let Some(parent) = tree.find_node("/cpus") else { return (ids, 0) };
    let cells = parent.property("#address-cells").and_then(|p| p.as_usize()).unwrap_or(1);
    let nodes = parent.children().filter(|c| c.name.split('@').next() == Some("cpu"));
    for node in nodes {
        let Some(reg) = node.property("reg") else { continue };
        let id = match (cells, reg.value.len()) {
            (1, 4..) => u64::from(u32::from_be_bytes(reg.value[..4].try_into().unwrap())),
            (2, 8..) => u64::from_be_bytes(reg.value[..8].try_into().unwrap()),
            _ => continue,
        };
        if count < MAX_CPUS {
            ids[count] = id;
            count += 1;
        }
    }
    (ids, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    struct Spec {
        gic_v3: bool,
        ns16550: bool,
        virtio: bool,
        method: &'static str,
        cpus: u32,
    }

    /// A tree shaped like QEMU virt's (or Duet's) with what `spec` asks for.
    fn tree(spec: &Spec) -> Vec<u8> {
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        let chosen = fdt.begin_node("chosen").unwrap();
        let uart_name = if spec.ns16550 { "/serial@10000000" } else { "/pl011@9000000" };
        fdt.property_string("stdout-path", &format!("{uart_name}:115200n8")).unwrap();
        fdt.end_node(chosen).unwrap();
        let cpus = fdt.begin_node("cpus").unwrap();
        fdt.property_u32("#address-cells", 1).unwrap();
        fdt.property_u32("#size-cells", 0).unwrap();
        for n in 0..spec.cpus {
            let cpu = fdt.begin_node(&format!("cpu@{n}")).unwrap();
            fdt.property_u32("reg", n).unwrap();
            fdt.end_node(cpu).unwrap();
        }
        fdt.end_node(cpus).unwrap();
        let psci = fdt.begin_node("psci").unwrap();
        fdt.property_string("method", spec.method).unwrap();
        fdt.end_node(psci).unwrap();
        // A decoy PL011 that is not the console, then the console.
        let other = fdt.begin_node("pl011@9040000").unwrap();
        fdt.property_string("compatible", "arm,pl011").unwrap();
        fdt.property_array_u64("reg", &[0x904_0000, 0x1000]).unwrap();
        fdt.end_node(other).unwrap();
        let uart = fdt.begin_node(&uart_name[1..]).unwrap();
        if spec.ns16550 {
            fdt.property_string("compatible", "ns16550a").unwrap();
            fdt.property_array_u64("reg", &[0x1000_0000, 0x100]).unwrap();
            fdt.property_u32("reg-shift", 2).unwrap();
            fdt.property_u32("reg-io-width", 4).unwrap();
        } else {
            fdt.property_string_list(
                "compatible",
                vec!["arm,pl011".into(), "arm,primecell".into()],
            )
            .unwrap();
            fdt.property_array_u64("reg", &[0x900_0000, 0x1000]).unwrap();
        }
        fdt.end_node(uart).unwrap();
        let gic = fdt.begin_node("intc@8000000").unwrap();
        if spec.gic_v3 {
            fdt.property_string("compatible", "arm,gic-v3").unwrap();
            fdt.property_array_u64("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0xf6_0000]).unwrap();
        } else {
            fdt.property_string("compatible", "arm,cortex-a15-gic").unwrap();
            fdt.property_array_u64("reg", &[0x800_0000, 0x1_0000, 0x801_0000, 0x1_0000]).unwrap();
        }
        fdt.end_node(gic).unwrap();
        if spec.gic_v3 {
            let timer = fdt.begin_node("timer").unwrap();
            fdt.property_string("compatible", "arm,armv8-timer").unwrap();
            fdt.property_array_u32("interrupts", &[1, 13, 4, 1, 14, 4, 1, 12, 4, 1, 10, 4])
                .unwrap();
            fdt.end_node(timer).unwrap();
        }
        if spec.virtio {
            for address in [0xa00_3e00u64, 0xa00_3c00] {
                let node = fdt.begin_node(&format!("virtio_mmio@{address:x}")).unwrap();
                fdt.property_string("compatible", "virtio,mmio").unwrap();
                fdt.property_array_u64("reg", &[address, 0x200]).unwrap();
                fdt.end_node(node).unwrap();
            }
        }
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    #[test]
    fn qemu_virt_with_gicv3_and_virtio() {
        let spec = Spec { gic_v3: true, ns16550: false, virtio: true, method: "hvc", cpus: 2 };
        let platform = Platform::from_blob(&tree(&spec)).unwrap();
        assert_eq!(platform.uart, Uart::Pl011 { base: 0x900_0000 });
        assert_eq!(
            platform.gic,
            Some(Gic::V3 { distributor: 0x800_0000, redistributors: 0x80a_0000 })
        );
        assert_eq!(platform.conduit, Conduit::Hvc);
        assert_eq!(&platform.cpus[..platform.cpu_count], &[0, 1]);
        assert_eq!(platform.virtio_mmio, Some(0xa00_3e00));
        assert_eq!(platform.gic_name(), "v3");
        assert_eq!(platform.timer_intid, 28);
    }

    #[test]
    fn gicv2_ns16550_smc_one_cpu_no_virtio() {
        let spec = Spec { gic_v3: false, ns16550: true, virtio: false, method: "smc", cpus: 1 };
        let platform = Platform::from_blob(&tree(&spec)).unwrap();
        assert_eq!(platform.uart, Uart::Ns16550 { base: 0x1000_0000, shift: 2, width: 4 });
        assert_eq!(
            platform.gic,
            Some(Gic::V2 { distributor: 0x800_0000, cpu_interface: 0x801_0000 })
        );
        assert_eq!(platform.conduit, Conduit::Smc);
        assert_eq!(platform.cpu_count, 1);
        assert_eq!(platform.virtio_mmio, None);
        // No timer node: the architected virtual timer's PPI.
        assert_eq!(platform.timer_intid, 27);
    }

    #[test]
    fn what_is_missing_is_named() {
        let spec = Spec { gic_v3: true, ns16550: false, virtio: false, method: "none", cpus: 1 };
        assert_eq!(Platform::from_blob(&tree(&spec)), Err(PlatformError::NoPsci));
        assert_eq!(Platform::from_blob(&[0u8; 64]), Err(PlatformError::NotADeviceTree));
        assert_eq!(PlatformError::NoUart.to_string(), "no PL011 or ns16550 UART");
    }
}
