//! What each persona costs in energy, estimated from the CPUs' energy model
//! (`capacity-dmips-mhz`, `dynamic-power-coefficient` and the OPP table of
//! the device tree, or documented defaults) and what Duet measured: each
//! VM's guest time on each CPU and each CPU's time asleep. Also which idle
//! state a CPU should sleep in for an expected idle period. Plain Rust:
//! `platform` fills the model, `vm::cpu` feeds the [`Meter`], and the
//! console and power-off print [`Report`]s. See docs/power.md.
//!
//! The estimate for persona `v`, per CPU `c`:
//! `guest(v, c) * active(c)` for its own running time, plus its share of
//! the CPU's other time: Duet's own work there (busy but not in a guest,
//! at `active(c)`) and the time asleep (at `idle(c)`). The share is its
//! vCPUs' part of the vCPUs placed on `c`; a CPU with none is shared by
//! all VMs by vCPU count. The shares add up to one, so the personas'
//! figures add up to the whole machine's.

use crate::personas::format::MAX_VMS;
use crate::MAX_CPUS;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// The most idle states read per CPU.
pub const MAX_IDLE_STATES: usize = 4;

/// A CPU's active power when the device tree gives no way to compute it:
/// a mid-range phone core at its top frequency.
pub const DEFAULT_ACTIVE_UW: u64 = 500_000;
/// A CPU's power asleep in WFI (clock-gated) when nothing says otherwise.
pub const DEFAULT_WFI_UW: u64 = 25_000;
/// The capacity of the largest CPU, as `capacity-dmips-mhz` is normalised.
pub const FULL_CAPACITY: u32 = 1024;

/// One idle state of a CPU (`cpu-idle-states`), deeper ones later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleState {
    pub entry_latency_us: u32,
    pub exit_latency_us: u32,
    pub min_residency_us: u32,
    /// The PSCI `CPU_SUSPEND` power state that enters it.
    pub psci_suspend_param: u32,
}

impl IdleState {
    /// Whether it is a standby (retention) state, which PSCI `CPU_SUSPEND`
    /// returns from like WFI (StateType, bit 16 of the original
    /// `power_state` format, clear), rather than a power-down state.
    pub fn is_standby(&self) -> bool {
        self.psci_suspend_param & (1 << 16) == 0
    }
}

/// One CPU's energy model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPower {
    /// `capacity-dmips-mhz`, or [`FULL_CAPACITY`].
    pub capacity: u32,
    /// Power while running, in microwatts.
    pub active_uw: u64,
    /// Power asleep in WFI, in microwatts.
    pub idle_uw: u64,
    /// Whether `active_uw` came from the device tree's energy model.
    pub from_device_tree: bool,
    idle_states: [IdleState; MAX_IDLE_STATES],
    idle_state_count: usize,
}

impl Default for CpuPower {
    fn default() -> Self {
        CpuPower {
            capacity: FULL_CAPACITY,
            active_uw: DEFAULT_ACTIVE_UW,
            idle_uw: DEFAULT_WFI_UW,
            from_device_tree: false,
            idle_states: [IdleState::default(); MAX_IDLE_STATES],
            idle_state_count: 0,
        }
    }
}

impl CpuPower {
    /// The model from what a CPU node says: `capacity-dmips-mhz`,
    /// `dynamic-power-coefficient` (µW/MHz/V²) and the highest operating
    /// point (Hz, µV). Active power is the coefficient's at the highest
    /// operating point (Duet does not change frequencies, and firmware
    /// leaves a phone's CPUs at their top one or lets them boost); without
    /// both, the default scaled by capacity.
    pub fn from_properties(
        capacity: Option<u32>,
        coefficient: Option<u32>,
        top_opp: Option<(u64, u64)>,
    ) -> CpuPower {
        let capacity = capacity.filter(|&c| c > 0).unwrap_or(FULL_CAPACITY);
        let computed = coefficient.zip(top_opp).map(|(c, (hz, uv))| dynamic_power_uw(c, hz, uv));
        let active_uw = computed
            .filter(|&uw| uw > 0)
            .unwrap_or(DEFAULT_ACTIVE_UW * u64::from(capacity) / u64::from(FULL_CAPACITY));
        CpuPower {
            capacity,
            active_uw,
            // WFI keeps the core powered: its leakage scales with its size.
            idle_uw: DEFAULT_WFI_UW * u64::from(capacity) / u64::from(FULL_CAPACITY),
            from_device_tree: computed.is_some_and(|uw| uw > 0),
            ..CpuPower::default()
        }
    }

    /// Adds an idle state (in the device tree's order, shallow to deep);
    /// past [`MAX_IDLE_STATES`] they are dropped.
    pub fn add_idle_state(&mut self, state: IdleState) {
        if self.idle_state_count < MAX_IDLE_STATES {
            self.idle_states[self.idle_state_count] = state;
            self.idle_state_count += 1;
        }
    }

    pub fn idle_states(&self) -> &[IdleState] {
        &self.idle_states[..self.idle_state_count]
    }

    /// How many of the idle states, from the shallowest, Duet can enter:
    /// the standby ones before the first power-down state.
    pub fn standby_states(&self) -> &[IdleState] {
        let states = self.idle_states();
        let count = states.iter().take_while(|s| s.is_standby()).count();
        &states[..count]
    }
}

/// Dynamic power in microwatts: coefficient (µW/MHz/V²) × MHz × V², as
/// Linux's energy model computes it from the same properties.
pub fn dynamic_power_uw(coefficient: u32, hz: u64, microvolts: u64) -> u64 {
    let millivolts = u128::from(microvolts / 1000);
    let mhz = u128::from(hz / 1_000_000);
    (u128::from(coefficient) * mhz * millivolts * millivolts / 1_000_000) as u64
}

/// The deepest of `states` worth entering for an idle period of
/// `expected_us` (unknown: `None`, as long as it takes): its minimum
/// residency fits and its exit latency stays within `max_exit_latency_us`.
/// `None` means plain WFI.
pub fn choose_idle_state(
    states: &[IdleState],
    expected_us: Option<u64>,
    max_exit_latency_us: u32,
) -> Option<usize> {
    states.iter().enumerate().rev().find_map(|(i, s)| {
        let fits = expected_us.is_none_or(|us| u64::from(s.min_residency_us) <= us);
        (fits && s.exit_latency_us <= max_exit_latency_us).then_some(i)
    })
}

/// What a CPU with nothing to run does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Sleep in the deepest of the first `states` of its idle states that
    /// fits (standby ones only while it has vCPUs, whose state lives in its
    /// registers), waking by `until` at the latest to look again.
    Sleep { states: usize, until: Option<u64> },
    /// Turn itself off (PSCI `CPU_OFF`): it has had no vCPU for long.
    TurnOff,
}

/// How a CPU with the energy model `power` rests at `now`: with vCPUs
/// placed (`unused_since` `None`), in its standby states; without any
/// since `unused_since`, in any of its states, power-down ones too, and
/// after `off_after` ticks of that off, if it `may_turn_off`.
pub fn rest(
    power: &CpuPower,
    unused_since: Option<u64>,
    now: u64,
    off_after: u64,
    may_turn_off: bool,
) -> Rest {
    let Some(since) = unused_since else {
        return Rest::Sleep { states: power.standby_states().len(), until: None };
    };
    let off_at = since.saturating_add(off_after);
    if may_turn_off && now >= off_at {
        return Rest::TurnOff;
    }
    Rest::Sleep { states: power.idle_states().len(), until: may_turn_off.then_some(off_at) }
}

/// What Duet measures as it runs, per CPU and per VM, in counter ticks.
pub struct Meter {
    /// Guest time of VM `v` on CPU `c`.
    guest: [[AtomicU64; MAX_CPUS]; MAX_VMS],
    /// Time CPU `c` slept with nothing to run, ended sleeps only.
    idle: [AtomicU64; MAX_CPUS],
    /// When CPU `c` went to sleep, while it sleeps (else 0), so that a
    /// reading counts a sleep still going on.
    asleep_since: [AtomicU64; MAX_CPUS],
}

impl Meter {
    pub const fn new() -> Meter {
        Meter {
            guest: [const { [const { AtomicU64::new(0) }; MAX_CPUS] }; MAX_VMS],
            idle: [const { AtomicU64::new(0) }; MAX_CPUS],
            asleep_since: [const { AtomicU64::new(0) }; MAX_CPUS],
        }
    }

    pub fn add_guest(&self, vm: usize, cpu: usize, ticks: u64) {
        self.guest[vm % MAX_VMS][cpu % MAX_CPUS].fetch_add(ticks, Ordering::Relaxed);
    }

    /// CPU `cpu` goes to sleep at `now`.
    pub fn sleep(&self, cpu: usize, now: u64) {
        self.asleep_since[cpu % MAX_CPUS].store(now.max(1), Ordering::Relaxed);
    }

    /// CPU `cpu` woke at `now`.
    pub fn wake(&self, cpu: usize, now: u64) {
        let since = self.asleep_since[cpu % MAX_CPUS].swap(0, Ordering::Relaxed);
        if since != 0 {
            self.idle[cpu % MAX_CPUS].fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        }
    }

    pub fn guest(&self, vm: usize, cpu: usize) -> u64 {
        self.guest[vm % MAX_VMS][cpu % MAX_CPUS].load(Ordering::Relaxed)
    }

    /// CPU `cpu`'s time asleep up to `now`.
    pub fn idle(&self, cpu: usize, now: u64) -> u64 {
        let since = self.asleep_since[cpu % MAX_CPUS].load(Ordering::Relaxed);
        let ongoing = if since == 0 { 0 } else { now.saturating_sub(since) };
        self.idle[cpu % MAX_CPUS].load(Ordering::Relaxed) + ongoing
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

/// What this boot's CPUs measure.
pub static METER: Meter = Meter::new();

/// One CPU as the accounting sees it.
#[derive(Clone, Copy, Debug)]
pub struct CpuAccount {
    pub power: CpuPower,
    /// Ticks it has been up (since the VMs started).
    pub elapsed: u64,
    /// Ticks of that it slept; for a CPU with no vCPU, all of it.
    pub idle: u64,
    /// Its placed vCPUs per VM.
    pub vcpus: [u32; MAX_VMS],
}

/// Energy per VM in microjoules, from the measured `cpus` and `guest(v, c)`
/// ticks at `frequency`. The VMs' figures add up to the machine's (up to
/// one microjoule of rounding per VM and CPU).
pub fn attribute(
    cpus: &[CpuAccount],
    vms: usize,
    guest: impl Fn(usize, usize) -> u64,
    frequency: u64,
) -> [u64; MAX_VMS] {
    let vms = vms.min(MAX_VMS);
    let uj = |ticks: u64, uw: u64| {
        (u128::from(ticks) * u128::from(uw) / u128::from(frequency.max(1))) as u64
    };
    let mut all_vcpus = [0u64; MAX_VMS];
    for cpu in cpus {
        for (v, total) in all_vcpus.iter_mut().enumerate().take(vms) {
            *total += u64::from(cpu.vcpus[v]);
        }
    }
    let mut energy = [0u64; MAX_VMS];
    for (c, cpu) in cpus.iter().enumerate() {
        let busy = cpu.elapsed.saturating_sub(cpu.idle);
        let guests: u64 = (0..vms).map(|v| guest(v, c)).sum();
        let shared =
            uj(busy.saturating_sub(guests), cpu.power.active_uw) + uj(cpu.idle, cpu.power.idle_uw);
        let placed: u64 = cpu.vcpus[..vms].iter().map(|&n| u64::from(n)).sum();
        let (weights, total) = if placed > 0 {
            (core::array::from_fn::<u64, MAX_VMS, _>(|v| u64::from(cpu.vcpus[v])), placed)
        } else {
            (all_vcpus, all_vcpus.iter().sum::<u64>())
        };
        for v in 0..vms {
            energy[v] += uj(guest(v, c), cpu.power.active_uw);
            if total > 0 {
                energy[v] +=
                    (u128::from(shared) * u128::from(weights[v]) / u128::from(total)) as u64;
            }
        }
    }
    energy
}

/// The whole machine's energy in microjoules, counted per CPU (for checks).
pub fn machine_energy(cpus: &[CpuAccount], frequency: u64) -> u64 {
    let uj = |ticks: u64, uw: u64| {
        (u128::from(ticks) * u128::from(uw) / u128::from(frequency.max(1))) as u64
    };
    cpus.iter()
        .map(|c| {
            uj(c.elapsed.saturating_sub(c.idle), c.power.active_uw) + uj(c.idle, c.power.idle_uw)
        })
        .sum()
}

/// One persona's line: `duet: energy persona=NAME cpu_ms=N wakeups=N
/// energy_mj=N.NNN` (the name `total` for the sum).
pub struct Report<'a> {
    pub persona: &'a str,
    pub cpu_ms: u64,
    pub wakeups: u64,
    pub energy_uj: u64,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duet: energy persona={} cpu_ms={} wakeups={} energy_mj={}.{:03}",
            self.persona,
            self.cpu_ms,
            self.wakeups,
            self.energy_uj / 1000,
            self.energy_uj % 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000;

    fn account(power: CpuPower, elapsed: u64, idle: u64, vcpus: &[u32]) -> CpuAccount {
        let mut placed = [0; MAX_VMS];
        placed[..vcpus.len()].copy_from_slice(vcpus);
        CpuAccount { power, elapsed, idle, vcpus: placed }
    }

    #[test]
    fn a_cpu_without_vcpus_sleeps_deeper_and_then_turns_off() {
        let mut cpu = CpuPower::default();
        let standby = IdleState { psci_suspend_param: 0x1, ..IdleState::default() };
        let power_down = IdleState { psci_suspend_param: 0x1_0000, ..IdleState::default() };
        cpu.add_idle_state(standby);
        cpu.add_idle_state(power_down);
        // With vCPUs: standby states only, no deadline of its own.
        assert_eq!(rest(&cpu, None, 5_000, 1_000, true), Rest::Sleep { states: 1, until: None });
        // Unused since 4000: power-down states too, until it is due off.
        assert_eq!(
            rest(&cpu, Some(4_000), 4_500, 1_000, true),
            Rest::Sleep { states: 2, until: Some(5_000) }
        );
        assert_eq!(rest(&cpu, Some(4_000), 5_000, 1_000, true), Rest::TurnOff);
        // A CPU that may not turn off (the boot CPU) just sleeps deeply.
        assert_eq!(
            rest(&cpu, Some(4_000), 90_000, 1_000, false),
            Rest::Sleep { states: 2, until: None }
        );
    }

    #[test]
    fn dynamic_power_follows_linux() {
        // 2.0 GHz at 1.0 V with a coefficient of 400 µW/MHz/V²: 800 mW.
        assert_eq!(dynamic_power_uw(400, 2_000_000_000, 1_000_000), 800_000);
        // 1.0 GHz at 0.8 V with 100: 64 mW.
        assert_eq!(dynamic_power_uw(100, 1_000_000_000, 800_000), 64_000);
    }

    #[test]
    fn the_model_uses_the_device_tree_or_defaults() {
        let big =
            CpuPower::from_properties(Some(1024), Some(400), Some((2_000_000_000, 1_000_000)));
        assert_eq!((big.active_uw, big.from_device_tree), (800_000, true));
        let none = CpuPower::from_properties(None, None, None);
        assert_eq!(none, CpuPower::default());
        assert_eq!(none.active_uw, DEFAULT_ACTIVE_UW);
        // Capacity alone scales the default.
        let little = CpuPower::from_properties(Some(512), None, None);
        assert_eq!((little.active_uw, little.idle_uw), (250_000, 12_500));
        assert!(!little.from_device_tree);
        // A coefficient without operating points cannot give a power.
        assert_eq!(CpuPower::from_properties(None, Some(400), None).active_uw, DEFAULT_ACTIVE_UW);
    }

    #[test]
    fn idle_state_choice_fits_residency_and_latency() {
        let states = [
            IdleState {
                entry_latency_us: 40,
                exit_latency_us: 100,
                min_residency_us: 150,
                psci_suspend_param: 0x1,
            },
            IdleState {
                entry_latency_us: 500,
                exit_latency_us: 1500,
                min_residency_us: 5000,
                psci_suspend_param: 0x1_0000,
            },
        ];
        assert_eq!(choose_idle_state(&states, Some(100), u32::MAX), None, "WFI");
        assert_eq!(choose_idle_state(&states, Some(200), u32::MAX), Some(0));
        assert_eq!(choose_idle_state(&states, Some(10_000), u32::MAX), Some(1));
        assert_eq!(choose_idle_state(&states, None, u32::MAX), Some(1), "no deadline: deepest");
        assert_eq!(choose_idle_state(&states, Some(10_000), 1000), Some(0), "latency bound");
        assert_eq!(choose_idle_state(&[], None, u32::MAX), None);
    }

    #[test]
    fn only_standby_states_are_entered() {
        let mut cpu = CpuPower::default();
        let standby = IdleState { psci_suspend_param: 0x1, ..IdleState::default() };
        let power_down = IdleState { psci_suspend_param: 0x1_0000, ..IdleState::default() };
        cpu.add_idle_state(standby);
        cpu.add_idle_state(power_down);
        cpu.add_idle_state(standby);
        assert!(standby.is_standby() && !power_down.is_standby());
        assert_eq!(cpu.standby_states(), [standby]);
    }

    #[test]
    fn idle_states_beyond_the_limit_are_dropped() {
        let mut cpu = CpuPower::default();
        for i in 0..6 {
            cpu.add_idle_state(IdleState { min_residency_us: i, ..IdleState::default() });
        }
        assert_eq!(cpu.idle_states().len(), MAX_IDLE_STATES);
    }

    #[test]
    fn busy_and_idle_time_are_priced() {
        let p = CpuPower::default();
        // One CPU, one VM: 1 s up, 0.25 s asleep, 0.5 s in the guest.
        let cpus = [account(p, HZ, HZ / 4, &[1])];
        let energy = attribute(&cpus, 1, |_, _| HZ / 2, HZ);
        // 0.75 s at 500 mW + 0.25 s at 25 mW.
        assert_eq!(energy[0], 375_000 + 6_250);
        assert_eq!(energy[0], machine_energy(&cpus, HZ));
    }

    #[test]
    fn personas_add_up_to_the_machine() {
        let big =
            CpuPower::from_properties(Some(1024), Some(400), Some((2_000_000_000, 1_000_000)));
        let little =
            CpuPower::from_properties(Some(446), Some(100), Some((1_000_000_000, 800_000)));
        // CPU 0 shared by VM 0 and VM 1, CPU 1 with VM 0, CPU 2 with none.
        let cpus = [
            account(big, 10 * HZ, 2 * HZ, &[1, 1]),
            account(little, 10 * HZ, 9 * HZ, &[1, 0]),
            account(little, 10 * HZ, 10 * HZ, &[0, 0]),
        ];
        let guest = |v: usize, c: usize| [[5 * HZ, HZ / 2, 0], [2 * HZ, 0, 0]][v][c];
        let energy = attribute(&cpus, 2, guest, HZ);
        let sum: u64 = energy.iter().sum();
        let whole = machine_energy(&cpus, HZ);
        assert!(whole - sum <= 6, "{sum} vs {whole}");
        // VM 0 ran longer, on the big CPU: it costs more.
        assert!(energy[0] > energy[1]);
        assert_eq!(energy[2..], [0; MAX_VMS - 2]);
    }

    #[test]
    fn more_running_costs_more() {
        let p = CpuPower::default();
        let cost = |guest_ms: u64| {
            let cpus = [account(p, HZ, HZ - guest_ms * 1000, &[1, 1])];
            attribute(&cpus, 2, |v, _| if v == 1 { guest_ms * 1000 } else { 0 }, HZ)[1]
        };
        assert!(cost(100) > cost(50));
        assert!(cost(50) > cost(10));
    }

    #[test]
    fn the_meter_counts() {
        let meter = Meter::new();
        meter.add_guest(1, 2, 30);
        meter.add_guest(1, 2, 12);
        meter.sleep(3, 100);
        assert_eq!(meter.idle(3, 104), 4, "a sleep going on counts");
        meter.wake(3, 107);
        assert_eq!((meter.guest(1, 2), meter.guest(0, 2), meter.idle(3, 200)), (42, 0, 7));
        meter.wake(3, 300);
        assert_eq!(meter.idle(3, 400), 7, "waking twice counts once");
    }

    #[test]
    fn report_lines_are_machine_readable() {
        let line = Report { persona: "personal", cpu_ms: 1234, wakeups: 56, energy_uj: 7_008_009 };
        assert_eq!(
            line.to_string(),
            "duet: energy persona=personal cpu_ms=1234 wakeups=56 energy_mj=7008.009"
        );
    }
}
