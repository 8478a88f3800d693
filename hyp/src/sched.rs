//! Which physical CPU runs which vCPU.
//!
//! Today each vCPU gets a physical CPU of its own, chosen once at boot, so
//! a vCPU's FP, EL1 and timer state never leave that CPU's registers. A CPU
//! whose vCPU waits for an interrupt sleeps (WFI) until one arrives; a CPU
//! with no vCPU sleeps for good. Sharing CPUs between vCPUs (more vCPUs than
//! CPUs, and the power policy) builds on this placement.

use crate::MAX_CPUS;
use core::fmt;

/// The SGI one CPU sends another to make it look at its vCPU again.
pub const KICK_SGI: u32 = 0;

/// A vCPU: which VM, which of its vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuId {
    pub vm: usize,
    pub vcpu: usize,
}

/// The vCPU each physical CPU runs, by Duet's CPU index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub cpus: [Option<VcpuId>; MAX_CPUS],
}

/// The VMs ask for more vCPUs than the board has CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyVcpus {
    pub vcpus: usize,
    pub cpus: usize,
}

impl fmt::Display for TooManyVcpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the VMs have {} vCPUs in all but only {} CPUs are online; each vCPU needs a CPU of its own",
            self.vcpus, self.cpus
        )
    }
}

impl Placement {
    /// Places the vCPUs of VMs with `vcpu_counts` on `cpus` online CPUs, in
    /// order: VM 0's vCPUs first, starting at CPU 0.
    pub fn new(vcpu_counts: &[usize], cpus: usize) -> Result<Self, TooManyVcpus> {
        let vcpus: usize = vcpu_counts.iter().sum();
        let cpus = cpus.min(MAX_CPUS);
        if vcpus > cpus {
            return Err(TooManyVcpus { vcpus, cpus });
        }
        let mut placement = Placement { cpus: [None; MAX_CPUS] };
        let all = vcpu_counts
            .iter()
            .enumerate()
            .flat_map(|(vm, &n)| (0..n).map(move |vcpu| VcpuId { vm, vcpu }));
        for (slot, id) in placement.cpus.iter_mut().zip(all) {
            *slot = Some(id);
        }
        Ok(placement)
    }

    /// The CPU that runs `id`.
    pub fn cpu_of(&self, id: VcpuId) -> Option<usize> {
        self.cpus.iter().position(|slot| *slot == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_vms_in_order_one_vcpu_per_cpu() {
        let p = Placement::new(&[2, 1], 4).unwrap();
        assert_eq!(p.cpus[0], Some(VcpuId { vm: 0, vcpu: 0 }));
        assert_eq!(p.cpus[1], Some(VcpuId { vm: 0, vcpu: 1 }));
        assert_eq!(p.cpus[2], Some(VcpuId { vm: 1, vcpu: 0 }));
        assert_eq!(p.cpus[3], None);
        assert_eq!(p.cpu_of(VcpuId { vm: 1, vcpu: 0 }), Some(2));
        assert_eq!(p.cpu_of(VcpuId { vm: 1, vcpu: 1 }), None);
    }

    #[test]
    fn refuses_more_vcpus_than_cpus() {
        let err = Placement::new(&[2, 2], 3).unwrap_err();
        assert_eq!(err, TooManyVcpus { vcpus: 4, cpus: 3 });
        assert!(err.to_string().contains("4 vCPUs in all but only 3 CPUs"));
    }
}
