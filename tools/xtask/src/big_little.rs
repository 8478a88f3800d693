//! A device tree for QEMU `virt` that describes big.LITTLE CPUs with an
//! energy model, as a phone SoC's does: QEMU's own tree (dumped with
//! `-machine dumpdtb`) rewritten so that CPUs 2 and 3 are big and 0 and 1
//! little (`capacity-dmips-mhz`, `dynamic-power-coefficient`, an OPP table
//! per class), each with a standby and a power-down idle state. QEMU's
//! CPUs are all alike; Duet only reads the tree. Used by the power tests
//! and `cargo xtask bench --power`.

use crate::deps;
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// QEMU's own device tree for the default board with `smp` CPUs, rewritten
/// with an energy model: CPUs 2 and 3 big, 0 and 1 little (capacity,
/// dynamic-power coefficient, an OPP table per class), every CPU with one
/// standby idle state (PSCI power state 0x1: QEMU's PSCI takes it as WFI)
/// and one power-down state (0x10000).
pub fn device_tree(smp: u32) -> Result<PathBuf> {
    deps::ensure_qemu()?;
    let board = duet_boards::default_board();
    let dir = crate::target_dir().join("big-little");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dumped = dir.join(format!("qemu-virt-{smp}-dumped.dtb"));
    let status = Command::new(deps::QEMU)
        .args(["-machine", &format!("{},dumpdtb={}", board.qemu.machine, dumped.display())])
        .args(["-cpu", board.qemu.cpu, "-m", &format!("{}M", board.qemu.memory_mib)])
        .args(["-smp", &smp.to_string(), "-nographic"])
        .status()
        .context("cannot run QEMU to dump its device tree")?;
    anyhow::ensure!(status.success(), "QEMU could not dump its device tree: {status}");
    let bytes =
        std::fs::read(&dumped).with_context(|| format!("cannot read {}", dumped.display()))?;
    let edited = dir.join(format!("qemu-virt-{smp}-energy.dtb"));
    crate::write_whole(&edited, &with_energy_model(&bytes)?)?;
    Ok(edited)
}

/// Whether CPU `cpu` of [`device_tree`]'s machine is a big one.
pub fn is_big(cpu: usize) -> bool {
    cpu >= 2
}

/// Phandles for the added nodes, above any QEMU uses.
const IDLE_PHANDLE: u32 = 0xd000;
const POWER_DOWN_PHANDLE: u32 = 0xd003;
const OPP_BIG: u32 = 0xd001;
const OPP_LITTLE: u32 = 0xd002;

fn with_energy_model(dtb: &[u8]) -> Result<Vec<u8>> {
    let fdt = fdt::Fdt::new(dtb).map_err(|e| anyhow!("QEMU's device tree: {e:?}"))?;
    let root = fdt.find_node("/").context("QEMU's device tree has no root node")?;
    let mut out = vm_fdt::FdtWriter::new()?;
    copy_node(&root, Path::new("/"), &mut out)?;
    Ok(out.finish()?)
}

fn copy_node(node: &fdt::node::FdtNode, path: &Path, out: &mut vm_fdt::FdtWriter) -> Result<()> {
    let name = if path == Path::new("/") { "" } else { node.name };
    let handle = out.begin_node(name)?;
    for property in node.properties() {
        out.property(property.name, property.value)?;
    }
    let parent = path.parent().map(|p| p.to_string_lossy().into_owned());
    if parent.as_deref() == Some("/cpus") && node.name.starts_with("cpu@") {
        let index: u32 = node.name["cpu@".len()..].parse().unwrap_or(0);
        let big = is_big(index as usize);
        out.property_u32("capacity-dmips-mhz", if big { 1024 } else { 446 })?;
        out.property_u32("dynamic-power-coefficient", if big { 400 } else { 100 })?;
        out.property_u32("operating-points-v2", if big { OPP_BIG } else { OPP_LITTLE })?;
        out.property_array_u32("cpu-idle-states", &[IDLE_PHANDLE, POWER_DOWN_PHANDLE])?;
    }
    // QEMU writes the memory and PSCI nodes itself, turning any in the
    // tree into NOP tokens, which the `fdt` crate Duet reads the board with
    // does not get past (it then misses `/chosen`): leave them out.
    let rewritten = |name: &str| name.starts_with("memory") || name == "psci";
    for child in node.children().filter(|c| !rewritten(c.name)) {
        copy_node(&child, &path.join(child.name), out)?;
    }
    if path == Path::new("/cpus") {
        let states = out.begin_node("idle-states")?;
        out.property_string("entry-method", "psci")?;
        let state = out.begin_node("cpu-retention")?;
        out.property_string("compatible", "arm,idle-state")?;
        out.property_u32("entry-latency-us", 20)?;
        out.property_u32("exit-latency-us", 40)?;
        out.property_u32("min-residency-us", 100)?;
        out.property_u32("arm,psci-suspend-param", 0x1)?;
        out.property_u32("phandle", IDLE_PHANDLE)?;
        out.end_node(state)?;
        // A power-down state (StateType bit 16): QEMU's PSCI takes it as
        // WFI and returns, as a firmware may that picks a shallower state.
        let state = out.begin_node("cpu-sleep")?;
        out.property_string("compatible", "arm,idle-state")?;
        out.property_null("local-timer-stop")?;
        out.property_u32("entry-latency-us", 100)?;
        out.property_u32("exit-latency-us", 250)?;
        out.property_u32("min-residency-us", 2000)?;
        out.property_u32("arm,psci-suspend-param", 0x1_0000)?;
        out.property_u32("phandle", POWER_DOWN_PHANDLE)?;
        out.end_node(state)?;
        out.end_node(states)?;
    }
    if path == Path::new("/") {
        for (name, phandle, hz, uv) in [
            ("opp-table-big", OPP_BIG, 2_000_000_000u64, 1_000_000u32),
            ("opp-table-little", OPP_LITTLE, 1_000_000_000, 800_000),
        ] {
            let table = out.begin_node(name)?;
            out.property_string("compatible", "operating-points-v2")?;
            out.property_u32("phandle", phandle)?;
            let opp = out.begin_node(&format!("opp-{hz}"))?;
            out.property_u64("opp-hz", hz)?;
            out.property_u32("opp-microvolt", uv)?;
            out.end_node(opp)?;
            out.end_node(table)?;
        }
    }
    out.end_node(handle)?;
    Ok(())
}
