//! Where each vCPU runs now: the placement every CPU follows (chosen by
//! `sched::Placement` at boot and again on each scene change) and its
//! generation, which a CPU compares at each turn to notice a new one. The
//! moving of a vCPU's state between CPUs is `vm::cpu`'s. Bare metal only.

use super::instance::Vm;
use super::layout::MAX_VCPUS;
use crate::personas::format::MAX_VMS;
use crate::sched::{Placement, VcpuId, VmNeed};
use crate::{print, println, smp};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::RwLock;

static CURRENT: RwLock<Option<Placement>> = RwLock::new(None);
/// Bumped after each new placement is stored.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Each vCPU's CPU by VM and vCPU, as in [`CURRENT`]: every kick reads it,
/// so it is a table of atomics rather than the lock. Every placement
/// places every vCPU, so each entry is only ever overwritten.
static CPU_OF: [[AtomicUsize; MAX_VCPUS]; MAX_VMS] =
    [const { [const { AtomicUsize::new(NOWHERE) }; MAX_VCPUS] }; MAX_VMS];
const NOWHERE: usize = usize::MAX;

/// Makes `placement` the one every CPU follows from its next turn.
pub fn set(placement: Placement) {
    let mut current = CURRENT.write();
    for (cpu, queue) in placement.queues.iter().enumerate() {
        for id in queue.iter().filter(|id| id.vm < MAX_VMS && id.vcpu < MAX_VCPUS) {
            CPU_OF[id.vm][id.vcpu].store(cpu, Ordering::Release);
        }
    }
    *current = Some(placement);
    drop(current);
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The placement's generation: read it before the placement, so that a
/// newer one is noticed at the next turn.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// The vCPUs CPU `cpu` runs now.
pub fn queue(cpu: usize) -> Vec<VcpuId> {
    CURRENT.read().as_ref().map(|p| p.queue(cpu).to_vec()).unwrap_or_default()
}

/// The CPU that runs `id` now.
pub fn cpu_of(id: VcpuId) -> Option<usize> {
    let cpu = CPU_OF.get(id.vm)?.get(id.vcpu)?.load(Ordering::Acquire);
    (cpu != NOWHERE).then_some(cpu)
}

/// Whether any placement is set (the VMs are placed).
pub fn is_set() -> bool {
    CURRENT.read().is_some()
}

/// What placing `vms` needs: their vCPU counts and background budgets.
pub fn needs(vms: &[Vm]) -> Vec<VmNeed> {
    vms.iter()
        .map(|vm| VmNeed {
            vcpus: vm.vcpu_count(),
            percent: vm.spec().power.background_cpu_percent,
        })
        .collect()
}

/// The capacity of each online CPU (`capacity-dmips-mhz`; 1024 without an
/// energy model).
pub fn capacities() -> Vec<u32> {
    (0..smp::online())
        .map(|c| {
            let power = crate::boot::platform().map(|p| p.cpu_power(smp::mpidr_of(c)));
            power.map(|p| p.capacity).unwrap_or(1024)
        })
        .collect()
}

/// Prints `duet: placement: cpu0 a/0 b/0, cpu1 -, ...`: each CPU's vCPUs.
pub fn print(vms: &[Vm]) {
    print!("duet: placement:");
    for cpu in 0..smp::online() {
        print!("{} cpu{cpu}", if cpu == 0 { "" } else { "," });
        print_queue(vms, cpu, " -");
    }
    println!();
}

/// Prints ` vm/vcpu` for each vCPU of CPU `cpu`, or `none` if it has none.
pub fn print_queue(vms: &[Vm], cpu: usize, none: &str) {
    let queue = queue(cpu);
    for id in &queue {
        print!(" {}/{}", vms[id.vm].name, id.vcpu);
    }
    if queue.is_empty() {
        print!("{none}");
    }
}
