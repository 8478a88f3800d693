//! The CPUs' energy model from the device tree: per CPU node,
//! `capacity-dmips-mhz`, `dynamic-power-coefficient`, the highest operating
//! point of its `operating-points-v2` table (`opp-hz`, `opp-microvolt`) and
//! its `cpu-idle-states` (`entry-latency-us`, `exit-latency-us`,
//! `min-residency-us`, `arm,psci-suspend-param`). What is absent or
//! malformed falls back to the defaults of `sched::energy`. No heap.

use super::be_number;
use crate::sched::energy::{CpuPower, IdleState};
use fdt::node::FdtNode;
use fdt::Fdt;

/// The energy model of the CPU `node`.
pub fn cpu_power(fdt: &Fdt<'static>, node: &FdtNode<'_, 'static>) -> CpuPower {
    let cell = |name: &str| {
        node.property(name).filter(|p| p.value.len() == 4).map(|p| be_number(p.value) as u32)
    };
    let top_opp = cell("operating-points-v2").and_then(|phandle| top_opp(fdt, phandle));
    let mut power = CpuPower::from_properties(
        cell("capacity-dmips-mhz"),
        cell("dynamic-power-coefficient"),
        top_opp,
    );
    if let Some(states) = node.property("cpu-idle-states") {
        for phandle in states.value.chunks_exact(4).map(|c| be_number(c) as u32) {
            if let Some(state) = fdt.find_phandle(phandle).and_then(|n| idle_state(&n)) {
                power.add_idle_state(state);
            }
        }
    }
    power
}

/// The highest `(opp-hz, opp-microvolt)` of the OPP table `phandle`.
fn top_opp(fdt: &Fdt<'static>, phandle: u32) -> Option<(u64, u64)> {
    let table = fdt.find_phandle(phandle)?;
    table
        .children()
        .filter_map(|opp| {
            let hz = opp.property("opp-hz").filter(|p| matches!(p.value.len(), 4 | 8))?;
            // One cell, or <target min max>: the target is the first.
            let uv = opp.property("opp-microvolt").filter(|p| p.value.len() >= 4)?;
            Some((be_number(hz.value), be_number(&uv.value[..4])))
        })
        .max_by_key(|&(hz, _)| hz)
}

fn idle_state(node: &FdtNode<'_, 'static>) -> Option<IdleState> {
    let cell = |name: &str| {
        node.property(name).filter(|p| p.value.len() == 4).map(|p| be_number(p.value) as u32)
    };
    Some(IdleState {
        entry_latency_us: cell("entry-latency-us")?,
        exit_latency_us: cell("exit-latency-us")?,
        min_residency_us: cell("min-residency-us")?,
        psci_suspend_param: cell("arm,psci-suspend-param")?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Platform;
    use crate::sched::energy::{IdleState, DEFAULT_ACTIVE_UW};
    use vm_fdt::FdtWriter;

    /// Four CPUs: two big (cpu@0, cpu@1), two little, each class with its
    /// OPP table; the little ones with two idle states, cpu@1 with none of
    /// the energy properties at all.
    fn big_little() -> &'static [u8] {
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        fdt.property_string("model", "big.LITTLE test board").unwrap();
        fdt.property_string("compatible", "duet,test-board").unwrap();
        let chosen = fdt.begin_node("chosen").unwrap();
        fdt.property_string("bootargs", "").unwrap();
        fdt.end_node(chosen).unwrap();
        let memory = fdt.begin_node("memory@40000000").unwrap();
        fdt.property_string("device_type", "memory").unwrap();
        fdt.property_array_u64("reg", &[0x4000_0000, 0x8000_0000]).unwrap();
        fdt.end_node(memory).unwrap();
        let cpus = fdt.begin_node("cpus").unwrap();
        fdt.property_u32("#address-cells", 1).unwrap();
        fdt.property_u32("#size-cells", 0).unwrap();
        let idle = fdt.begin_node("idle-states").unwrap();
        for (name, phandle, values) in [
            ("cpu-sleep", 10, [40, 100, 150, 0x1]),
            ("cluster-sleep", 11, [500, 1500, 5000, 0x100_0000]),
        ] {
            let state = fdt.begin_node(name).unwrap();
            fdt.property_u32("phandle", phandle).unwrap();
            fdt.property_u32("entry-latency-us", values[0]).unwrap();
            fdt.property_u32("exit-latency-us", values[1]).unwrap();
            fdt.property_u32("min-residency-us", values[2]).unwrap();
            fdt.property_u32("arm,psci-suspend-param", values[3]).unwrap();
            fdt.end_node(state).unwrap();
        }
        fdt.end_node(idle).unwrap();
        for cpu in 0..4u32 {
            let node = fdt.begin_node(&format!("cpu@{cpu}")).unwrap();
            fdt.property_string("device_type", "cpu").unwrap();
            fdt.property_u32("reg", cpu).unwrap();
            fdt.property_string("enable-method", "psci").unwrap();
            match cpu {
                0 => {
                    fdt.property_u32("capacity-dmips-mhz", 1024).unwrap();
                    fdt.property_u32("dynamic-power-coefficient", 400).unwrap();
                    fdt.property_u32("operating-points-v2", 20).unwrap();
                }
                1 => {}
                _ => {
                    fdt.property_u32("capacity-dmips-mhz", 446).unwrap();
                    fdt.property_u32("dynamic-power-coefficient", 100).unwrap();
                    fdt.property_u32("operating-points-v2", 21).unwrap();
                    fdt.property_array_u32("cpu-idle-states", &[10, 11]).unwrap();
                }
            }
            fdt.end_node(node).unwrap();
        }
        fdt.end_node(cpus).unwrap();
        for (name, phandle, opps) in [
            ("opp-table-big", 20, [(1_000_000_000u64, 800_000u32), (2_000_000_000, 1_000_000)]),
            ("opp-table-little", 21, [(500_000_000, 700_000), (1_000_000_000, 800_000)]),
        ] {
            let table = fdt.begin_node(name).unwrap();
            fdt.property_string("compatible", "operating-points-v2").unwrap();
            fdt.property_u32("phandle", phandle).unwrap();
            for (hz, uv) in opps {
                let opp = fdt.begin_node(&format!("opp-{hz}")).unwrap();
                fdt.property_u64("opp-hz", hz).unwrap();
                fdt.property_array_u32("opp-microvolt", &[uv, uv - 50_000, uv + 50_000]).unwrap();
                fdt.end_node(opp).unwrap();
            }
            fdt.end_node(table).unwrap();
        }
        fdt.end_node(root).unwrap();
        Box::leak(fdt.finish().unwrap().into_boxed_slice())
    }

    #[test]
    fn reads_a_big_little_energy_model() {
        let platform = Platform::parse(big_little()).unwrap();
        assert_eq!(platform.cpus().len(), 4);
        let big = platform.cpu_power(0);
        assert_eq!((big.capacity, big.active_uw, big.from_device_tree), (1024, 800_000, true));
        assert!(big.idle_states().is_empty());
        let plain = platform.cpu_power(1);
        assert_eq!((plain.active_uw, plain.from_device_tree), (DEFAULT_ACTIVE_UW, false));
        let little = platform.cpu_power(3);
        assert_eq!((little.capacity, little.active_uw), (446, 64_000));
        assert!(little.active_uw < big.active_uw);
        assert_eq!(
            little.idle_states(),
            [
                IdleState {
                    entry_latency_us: 40,
                    exit_latency_us: 100,
                    min_residency_us: 150,
                    psci_suspend_param: 1
                },
                IdleState {
                    entry_latency_us: 500,
                    exit_latency_us: 1500,
                    min_residency_us: 5000,
                    psci_suspend_param: 0x100_0000
                },
            ]
        );
    }

    #[test]
    fn qemu_virt_has_no_energy_model_and_gets_the_defaults() {
        let platform =
            Platform::parse(include_bytes!("../../testdata/qemu-virt-gicv3.dtb")).unwrap();
        for cpu in 0..4 {
            let power = platform.cpu_power(cpu as u64);
            assert_eq!(power, crate::sched::energy::CpuPower::default());
        }
        assert_eq!(platform.cpu_power(99), crate::sched::energy::CpuPower::default());
    }
}
