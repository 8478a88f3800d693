//! Which physical CPU runs which vCPU, and in what order.
//!
//! Each vCPU is placed on one CPU and stays there until the scene changes,
//! so its state is saved and restored only when that CPU switches between
//! its own vCPUs. vCPUs are spread round-robin over the CPUs, or by
//! capacity on CPUs of different sizes (the foreground persona on the big
//! ones); with more vCPUs than CPUs, some CPUs take turns between several.
//! With the screen off, [`Placement::for_scene`] packs the vCPUs onto as
//! few CPUs as their budgets need, so the others can sleep deeply. The power policy
//! is [`power`]'s, the energy accounting [`energy`]'s. A CPU runs a vCPU that can run,
//! taking them in turn (a time slice ends a turn only while another vCPU
//! waits for the CPU); with nothing to run it sleeps until the earliest
//! timer deadline of its waiting vCPUs or an interrupt: Duet has no tick.

pub mod energy;
pub mod power;

use crate::MAX_CPUS;
use alloc::vec::Vec;
use core::fmt;

/// The SGI one CPU sends another to make it look at its vCPU again.
pub const KICK_SGI: u32 = 0;

/// A vCPU: which VM, which of its vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuId {
    pub vm: usize,
    pub vcpu: usize,
}

/// The vCPUs each physical CPU runs, by Duet's CPU index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub queues: Vec<Vec<VcpuId>>,
}

/// What placing one VM's vCPUs needs to know: how many, and what share of
/// a CPU each may use in the background (`background_cpu_percent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmNeed {
    pub vcpus: usize,
    pub percent: u32,
}

/// The VMs have no vCPU at all, or there is no CPU to run them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NothingToPlace;

impl fmt::Display for NothingToPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no vCPU or no CPU to run it on")
    }
}

impl Placement {
    /// Places the vCPUs of VMs with `vcpu_counts` on `cpus` online CPUs,
    /// round-robin in order: VM 0's vCPUs first, starting at CPU 0, so that
    /// a VM's vCPUs land on different CPUs where there are enough.
    pub fn new(vcpu_counts: &[usize], cpus: usize) -> Result<Self, NothingToPlace> {
        let cpus = cpus.min(MAX_CPUS);
        if cpus == 0 || vcpu_counts.iter().sum::<usize>() == 0 {
            return Err(NothingToPlace);
        }
        let mut queues = vec_of(cpus);
        let all = vcpu_counts
            .iter()
            .enumerate()
            .flat_map(|(vm, &n)| (0..n).map(move |vcpu| VcpuId { vm, vcpu }));
        for (i, id) in all.enumerate() {
            queues[i % cpus].push(id);
        }
        Ok(Placement { queues })
    }

    /// Places the vCPUs of VMs with `vcpu_counts` on CPUs of `capacities`
    /// (`capacity-dmips-mhz`, by Duet's CPU index), heterogeneous CPUs in
    /// mind: the `foreground` VM's vCPUs go to the biggest CPUs, the other
    /// VMs' (in the background) to the smallest of those left, each vCPU on
    /// a CPU of its own while there are enough. With equal capacities this
    /// is [`Placement::new`]'s order.
    pub fn by_capacity(
        vcpu_counts: &[usize],
        foreground: usize,
        capacities: &[u32],
    ) -> Result<Self, NothingToPlace> {
        let cpus = capacities.len().min(MAX_CPUS);
        if cpus == 0 || vcpu_counts.iter().sum::<usize>() == 0 {
            return Err(NothingToPlace);
        }
        let mut biggest_first: Vec<usize> = (0..cpus).collect();
        biggest_first.sort_by_key(|&c| core::cmp::Reverse(capacities[c]));
        let mut smallest_first: Vec<usize> = (0..cpus).collect();
        smallest_first.sort_by_key(|&c| capacities[c]);
        let mut queues = vec_of(cpus);
        let mut used = alloc::vec![false; cpus];
        let order = core::iter::once(foreground)
            .chain((0..vcpu_counts.len()).filter(|&vm| vm != foreground));
        for vm in order.filter(|&vm| vm < vcpu_counts.len()) {
            let preferred = if vm == foreground { &biggest_first } else { &smallest_first };
            for vcpu in 0..vcpu_counts[vm] {
                if used.iter().all(|&u| u) {
                    used.iter_mut().for_each(|u| *u = false);
                }
                let cpu = *preferred.iter().find(|&&c| !used[c]).expect("a CPU is free");
                used[cpu] = true;
                queues[cpu].push(VcpuId { vm, vcpu });
            }
        }
        // Within a CPU, VMs in index order, as `new` has them.
        for queue in &mut queues {
            queue.sort_by_key(|id| (id.vm, id.vcpu));
        }
        Ok(Placement { queues })
    }

    /// Where the vCPUs of VMs with `needs` go in `scene` on CPUs of
    /// `capacities`: with the screen on, [`Placement::by_capacity`] with
    /// the scene's foreground VM; with it off (every VM in the
    /// background), packed onto as few of the smallest CPUs as their
    /// budgets need (a vCPU with `percent` of each window takes that share
    /// of a CPU): first fit, largest share first, the rest of the CPUs
    /// left without vCPUs.
    pub fn for_scene(
        needs: &[VmNeed],
        scene: power::Scene,
        capacities: &[u32],
    ) -> Result<Self, NothingToPlace> {
        let counts: Vec<usize> = needs.iter().map(|n| n.vcpus).collect();
        if scene.screen_on {
            return Self::by_capacity(&counts, scene.foreground, capacities);
        }
        let cpus = capacities.len().min(MAX_CPUS);
        if cpus == 0 || counts.iter().sum::<usize>() == 0 {
            return Err(NothingToPlace);
        }
        let mut smallest_first: Vec<usize> = (0..cpus).collect();
        smallest_first.sort_by_key(|&c| capacities[c]);
        let mut vcpus: Vec<(u32, VcpuId)> = needs
            .iter()
            .enumerate()
            .flat_map(|(vm, n)| {
                let share = n.percent.clamp(1, 100);
                (0..n.vcpus).map(move |vcpu| (share, VcpuId { vm, vcpu }))
            })
            .collect();
        // Largest share first; equal shares in VM and vCPU order.
        vcpus.sort_by_key(|&(share, id)| (core::cmp::Reverse(share), id.vm, id.vcpu));
        let total: u32 = vcpus.iter().map(|&(share, _)| share).sum();
        let mut open = (total.div_ceil(100) as usize).clamp(1, cpus);
        let mut load = alloc::vec![0u32; cpus];
        let mut queues = vec_of(cpus);
        for (share, id) in vcpus {
            let fits = (0..open).find(|&k| load[k] + share <= 100);
            let k = match fits {
                Some(k) => k,
                None if open < cpus => {
                    open += 1;
                    open - 1
                }
                // Every CPU is full: the least loaded takes it.
                None => (0..cpus).min_by_key(|&k| load[k]).expect("a CPU"),
            };
            load[k] += share;
            queues[smallest_first[k]].push(id);
        }
        for queue in &mut queues {
            queue.sort_by_key(|id| (id.vm, id.vcpu));
        }
        Ok(Placement { queues })
    }

    /// The CPUs that have at least one vCPU.
    pub fn used_cpus(&self) -> usize {
        self.queues.iter().filter(|q| !q.is_empty()).count()
    }

    /// The CPU that runs `id`.
    pub fn cpu_of(&self, id: VcpuId) -> Option<usize> {
        self.queues.iter().position(|queue| queue.contains(&id))
    }

    /// The vCPUs of CPU `cpu`.
    pub fn queue(&self, cpu: usize) -> &[VcpuId] {
        self.queues.get(cpu).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn vec_of(cpus: usize) -> Vec<Vec<VcpuId>> {
    (0..cpus).map(|_| Vec::new()).collect()
}

/// The next vCPU (by position in a CPU's queue of `len`) to run after the
/// one at `last`, among those `runnable` says can run: round-robin.
pub fn next_runnable(len: usize, last: usize, runnable: impl Fn(usize) -> bool) -> Option<usize> {
    (1..=len).map(|step| (last + step) % len).find(|&i| runnable(i))
}

/// The earliest of some optional deadlines.
pub fn earliest(deadlines: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(vm: usize, vcpu: usize) -> VcpuId {
        VcpuId { vm, vcpu }
    }

    #[test]
    fn one_vcpu_per_cpu_when_there_are_enough() {
        let p = Placement::new(&[2, 1], 4).unwrap();
        assert_eq!(p.queue(0), [id(0, 0)]);
        assert_eq!(p.queue(1), [id(0, 1)]);
        assert_eq!(p.queue(2), [id(1, 0)]);
        assert!(p.queue(3).is_empty());
        assert_eq!(p.cpu_of(id(1, 0)), Some(2));
        assert_eq!(p.cpu_of(id(1, 1)), None);
    }

    #[test]
    fn more_vcpus_than_cpus_share_round_robin() {
        // Three vCPUs on two CPUs: the personal VM's two vCPUs on different CPUs.
        let p = Placement::new(&[2, 1], 2).unwrap();
        assert_eq!(p.queue(0), [id(0, 0), id(1, 0)]);
        assert_eq!(p.queue(1), [id(0, 1)]);
    }

    #[test]
    fn equal_capacities_place_as_round_robin_does() {
        for (counts, cpus) in [(&[2, 1][..], 4), (&[2, 1], 2), (&[1, 1, 1], 4), (&[2, 2], 3)] {
            let by_capacity = Placement::by_capacity(counts, 0, &vec![1024; cpus]).unwrap();
            assert_eq!(by_capacity, Placement::new(counts, cpus).unwrap(), "{counts:?} on {cpus}");
        }
    }

    #[test]
    fn the_foreground_goes_big_and_the_background_little() {
        // CPUs 0 and 1 little, 2 and 3 big.
        let capacities = [446, 446, 1024, 1024];
        let p = Placement::by_capacity(&[2, 1], 0, &capacities).unwrap();
        assert_eq!(p.cpu_of(id(0, 0)), Some(2));
        assert_eq!(p.cpu_of(id(0, 1)), Some(3));
        assert_eq!(p.cpu_of(id(1, 0)), Some(0));
        // The other way round when the corporate VM is in the foreground.
        let p = Placement::by_capacity(&[2, 1], 1, &capacities).unwrap();
        assert_eq!(p.cpu_of(id(1, 0)), Some(2));
        assert_eq!((p.cpu_of(id(0, 0)), p.cpu_of(id(0, 1))), (Some(0), Some(1)));
        // More vCPUs than CPUs: they share, the background on little ones.
        let p = Placement::by_capacity(&[2, 2], 0, &[1024, 446]).unwrap();
        assert_eq!(p.queue(0), [id(0, 0), id(1, 1)]);
        assert_eq!(p.queue(1), [id(0, 1), id(1, 0)]);
        assert_eq!(Placement::by_capacity(&[1], 0, &[]), Err(NothingToPlace));
    }

    fn need(vcpus: usize, percent: u32) -> VmNeed {
        VmNeed { vcpus, percent }
    }

    const LITTLE_BIG: [u32; 4] = [446, 446, 1024, 1024];

    #[test]
    fn with_the_screen_on_the_scene_places_by_capacity() {
        let needs = [need(2, 100), need(1, 20)];
        for foreground in [0, 1] {
            let scene = power::Scene { foreground, screen_on: true };
            assert_eq!(
                Placement::for_scene(&needs, scene, &LITTLE_BIG),
                Placement::by_capacity(&[2, 1], foreground, &LITTLE_BIG)
            );
        }
    }

    #[test]
    fn the_foreground_moves_to_the_big_cpus_with_the_scene() {
        let needs = [need(2, 100), need(1, 20)];
        let personal = power::Scene { foreground: 0, screen_on: true };
        let corporate = power::Scene { foreground: 1, ..personal };
        let before = Placement::for_scene(&needs, personal, &LITTLE_BIG).unwrap();
        let after = Placement::for_scene(&needs, corporate, &LITTLE_BIG).unwrap();
        assert_eq!(before.cpu_of(id(1, 0)), Some(0), "background on a little CPU");
        assert_eq!(after.cpu_of(id(1, 0)), Some(2), "foreground on a big CPU");
        assert_eq!((after.cpu_of(id(0, 0)), after.cpu_of(id(0, 1))), (Some(0), Some(1)));
    }

    #[test]
    fn screen_off_packs_small_budgets_onto_one_little_cpu() {
        let off = power::Scene { foreground: 0, screen_on: false };
        // 2 x 30% + 25% = 85%: one CPU, the smallest.
        let p = Placement::for_scene(&[need(2, 30), need(1, 25)], off, &LITTLE_BIG).unwrap();
        assert_eq!(p.queue(0), [id(0, 0), id(0, 1), id(1, 0)]);
        assert_eq!(p.used_cpus(), 1);
        // The smallest CPU wherever it is.
        let p = Placement::for_scene(&[need(1, 10), need(1, 10)], off, &[1024, 446]).unwrap();
        assert_eq!(p.queue(1), [id(0, 0), id(1, 0)]);
    }

    #[test]
    fn screen_off_uses_as_many_cpus_as_the_budgets_add_up_to() {
        let off = power::Scene { foreground: 0, screen_on: false };
        // 100% + 100% + 25%: three CPUs, little ones first.
        let p = Placement::for_scene(&[need(2, 100), need(1, 25)], off, &LITTLE_BIG).unwrap();
        assert_eq!(p.used_cpus(), 3);
        assert_eq!(p.queue(0), [id(0, 0)]);
        assert_eq!(p.queue(1), [id(0, 1)]);
        assert_eq!(p.queue(2), [id(1, 0)]);
        assert!(p.queue(3).is_empty());
        // 60% x 3 = 180%, but no two fit on one CPU: first fit opens a third.
        let p = Placement::for_scene(&[need(3, 60)], off, &LITTLE_BIG).unwrap();
        assert_eq!(p.used_cpus(), 3);
        // More than the machine has: every CPU, shared.
        let p = Placement::for_scene(&[need(3, 100)], off, &[1024, 1024]).unwrap();
        assert_eq!(p.queue(0), [id(0, 0), id(0, 2)]);
        assert_eq!(p.queue(1), [id(0, 1)]);
    }

    #[test]
    fn packing_places_every_vcpu_once() {
        let off = power::Scene { foreground: 0, screen_on: false };
        for needs in
            [[need(2, 100), need(1, 25)], [need(4, 10), need(3, 50)], [need(1, 0), need(0, 5)]]
        {
            for cpus in 1..=4 {
                let p = Placement::for_scene(&needs, off, &LITTLE_BIG[..cpus]).unwrap();
                let placed: usize = p.queues.iter().map(Vec::len).sum();
                assert_eq!(placed, needs.iter().map(|n| n.vcpus).sum::<usize>());
                for (vm, n) in needs.iter().enumerate() {
                    for vcpu in 0..n.vcpus {
                        assert!(p.cpu_of(id(vm, vcpu)).is_some());
                    }
                }
            }
        }
        assert_eq!(Placement::for_scene(&[need(0, 5)], off, &LITTLE_BIG), Err(NothingToPlace));
    }

    #[test]
    fn nothing_to_place_is_an_error() {
        assert_eq!(Placement::new(&[], 4), Err(NothingToPlace));
        assert_eq!(Placement::new(&[1], 0), Err(NothingToPlace));
    }

    #[test]
    fn round_robin_skips_what_cannot_run() {
        assert_eq!(next_runnable(3, 0, |_| true), Some(1));
        assert_eq!(next_runnable(3, 2, |_| true), Some(0));
        assert_eq!(next_runnable(3, 0, |i| i == 0), Some(0), "the same one again");
        assert_eq!(next_runnable(3, 1, |_| false), None);
        assert_eq!(next_runnable(1, 0, |_| true), Some(0));
    }

    #[test]
    fn earliest_deadline_ignores_the_unarmed() {
        assert_eq!(earliest([None, Some(30), Some(10), None]), Some(10));
        assert_eq!(earliest([None, None]), None);
    }
}
