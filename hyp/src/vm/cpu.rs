//! One physical CPU taking turns between the vCPUs placed on it: switching
//! their state in and out, running one until it exits, and sleeping when
//! none can run, with the EL2 timer set for the earliest deadline of the
//! waiting ones (no periodic tick). The power policy (`sched::power`)
//! decides who may run: a background vCPU past its budget waits for the
//! next window, and background timer deadlines are delayed within their
//! slack so wakeups line up. Bare metal only.
//!
//! The policy is decided per turn, not per exit: a turn runs one vCPU
//! through as many exits as return straight to it (a hypercall, an MMIO
//! access) and ends when it blocks, an interrupt comes (Duet's timer for a
//! slice, budget or deadline; a kick; a device), or this CPU's own exit
//! handling made one of its vCPUs runnable or changed the scene. The end
//! of a turn is not the end of the vCPU's time slice: it keeps the CPU
//! until it blocks, its slice ends, a higher-ranked vCPU can run, or (if
//! it is in the background and took an idle CPU) a foreground one can
//! (`sched::power::next_slice`).
//!
//! Which vCPUs a CPU runs follows `vm::placement`: at each turn a CPU whose
//! placement changed hands over the vCPUs it no longer runs (their saved
//! state, virtual timer and GIC interface included; their list registers
//! are in the vGIC model after every exit) through [`MOVING`], and takes
//! the ones it now runs. A vCPU is there only between turns, so it never
//! runs on two CPUs, and the CPU that hands one over kicks its new CPU.

use super::instance::{Power, Vm};
use super::layout;
use super::placement;
use super::run::{self, After, Cpus};
use super::vcpu::{GuestRegs, PSTATE_EL1H_MASKED};
use crate::arch::aarch64::context::SavedState;
use crate::arch::aarch64::{cpu, gic, guest, psci, timer};
use crate::personas::power::PowerSpec;
use crate::sched::energy::{CpuPower, IdleState, Rest, MAX_IDLE_STATES};
use crate::sched::power::{
    self, coalesced_wake, Budget, Clock, Deadline, Scene, Slice, State, Verdict, Want,
};
use crate::sched::{earliest, energy, VcpuId, KICK_SGI};
use crate::{print, println, smp, MAX_CPUS};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How long a vCPU runs before another that waits for this CPU gets it.
const SLICE_MS: u64 = 10;

/// How long a CPU (not the boot CPU, which takes the console's and the
/// NIC's interrupts) goes without vCPUs before it turns itself off.
const OFF_AFTER_MS: u64 = 500;

/// Per CPU: times it slept with nothing to run.
static IDLE_SLEEPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: interrupts from Duet's own (EL2) timer.
static TIMER_INTERRUPTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Per CPU: sleeps in each of the device tree's idle states (else WFI).
static IDLE_STATE_SLEEPS: [[AtomicU64; MAX_IDLE_STATES]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; MAX_IDLE_STATES] }; MAX_CPUS];

/// Per CPU: something this CPU did while handling an exit (a kick of one
/// of its own vCPUs, a scene change) asks it to choose again before it
/// re-enters the guest. Other CPUs say so with the kick SGI instead.
static LOOK_AGAIN: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Makes this CPU choose its vCPU again before it next enters a guest.
pub fn look_again() {
    LOOK_AGAIN[cpu::id()].store(true, Ordering::Relaxed);
}

/// Per CPU: ticks asleep in each of the device tree's idle states.
static IDLE_STATE_TICKS: [[AtomicU64; MAX_IDLE_STATES]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; MAX_IDLE_STATES] }; MAX_CPUS];

/// Prints `duet: cpuN: residency off=P% state0=P% ... offs=N elapsed_ms=T
/// off_ms=T state0_ms=T ...`: the share of the `elapsed` ticks up to `now`
/// CPU `cpu` spent off and in each of its idle states, how often it was
/// turned off, and the same times in milliseconds (for differences).
pub fn print_residency(cpu: usize, elapsed: u64, now: u64, clock: Clock) {
    let (offs, off) = smp::off_counters(cpu, now);
    let states = MODELS[cpu].get().map(|m| m.idle_states().len()).unwrap_or(0);
    let ticks: Vec<u64> =
        IDLE_STATE_TICKS[cpu].iter().take(states).map(|t| t.load(Ordering::Relaxed)).collect();
    let per_mille = |ticks: u64| {
        let p = u128::from(ticks) * 1000 / u128::from(elapsed.max(1));
        (p / 10, p % 10)
    };
    let (whole, tenth) = per_mille(off);
    print!("duet: cpu{cpu}: residency off={whole}.{tenth}%");
    for (i, &t) in ticks.iter().enumerate() {
        let (whole, tenth) = per_mille(t);
        print!(" state{i}={whole}.{tenth}%");
    }
    print!(" offs={offs} elapsed_ms={} off_ms={}", clock.millis(elapsed), clock.millis(off));
    for (i, &t) in ticks.iter().enumerate() {
        print!(" state{i}_ms={}", clock.millis(t));
    }
    println!();
}

/// Sleeps of CPU `cpu` in each of its idle states.
pub fn idle_state_counters(cpu: usize) -> [u64; MAX_IDLE_STATES] {
    core::array::from_fn(|i| IDLE_STATE_SLEEPS[cpu][i].load(Ordering::Relaxed))
}

/// Idle sleeps and Duet timer interrupts of CPU `cpu`.
pub fn cpu_counters(cpu: usize) -> (u64, u64) {
    (IDLE_SLEEPS[cpu].load(Ordering::Relaxed), TIMER_INTERRUPTS[cpu].load(Ordering::Relaxed))
}

/// Duet's EL2 timer fired: it has done its job (waking this CPU).
pub fn hypervisor_timer_fired() {
    timer::disarm();
    TIMER_INTERRUPTS[cpu::id()].fetch_add(1, Ordering::Relaxed);
}

/// vCPUs between two CPUs: handed over by the one that ran them, not yet
/// taken by the one that runs them next (at boot, every vCPU).
static MOVING: spin::Mutex<Vec<Slot>> = spin::Mutex::new(Vec::new());
/// Per CPU: a vCPU was handed over to it.
static INCOMING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Puts every vCPU of `vms`, at reset, where the CPUs take them from once
/// a placement is set.
pub fn hand_out(vms: &'static [Vm]) {
    let mut moving = MOVING.lock();
    for vm in vms {
        moving.extend((0..vm.vcpu_count()).map(|index| Slot::new(vm, index)));
    }
}

/// A vCPU placed on this CPU.
struct Slot {
    vm: &'static Vm,
    index: usize,
    regs: GuestRegs,
    /// Its hardware state while another vCPU is loaded.
    saved: SavedState,
    /// It waits for an interrupt (WFI).
    waiting: bool,
    /// Its VM's power settings.
    power: PowerSpec,
    /// Its use of the current budget window.
    budget: Budget,
}

impl Slot {
    fn new(vm: &'static Vm, index: usize) -> Slot {
        Slot {
            vm,
            index,
            regs: GuestRegs::default(),
            saved: SavedState::at_reset(layout::vcpu_mpidr(index)),
            waiting: false,
            power: vm.spec().power,
            budget: Budget::default(),
        }
    }

    fn id(&self) -> VcpuId {
        VcpuId { vm: self.vm.index, vcpu: self.index }
    }
}

/// Runs the vCPUs the placement gives this CPU, for ever.
pub fn run_cpu(cpus: &impl Cpus) -> ! {
    guest::configure();
    let me = cpu::id();
    let mut lr_values = [0u64; 16];
    let lrs = &mut lr_values[..gic::list_register_count().min(16)];
    run::clear_list_registers(lrs.len());
    let mut slots: Vec<Slot> = Vec::new();
    let mut followed = None;
    let clock = Clock { frequency: cpu::counter_frequency() };
    let model = power_model_of_this_cpu();
    let mut loaded: Option<usize> = None;
    let mut slice: Option<Slice> = None;
    let mut unused_since = None;
    loop {
        LOOK_AGAIN[me].store(false, Ordering::Relaxed);
        let generation = placement::generation();
        if followed != Some(generation) || INCOMING[me].swap(false, Ordering::SeqCst) {
            follow_placement(&mut slots, &mut loaded, me);
            followed = Some(generation);
            slice = None;
            unused_since = match (slots.is_empty(), unused_since) {
                (false, _) => None,
                (true, None) => Some(cpu::counter()),
                (true, since) => since,
            };
        }
        let now = cpu::counter();
        let turn = Turn::decide(&slots, loaded, now, clock);
        let want = |i| turn.want(&slots, i);
        let Some(chosen) = power::next_slice(slots.len(), slice, now, clock.ticks(SLICE_MS), want)
        else {
            match unused_since {
                Some(since) => rest_unused(model, since, clock, generation, cpus),
                None => idle(&slots, loaded, &turn, model.standby_states(), cpus),
            }
            continue;
        };
        slice = Some(chosen);
        let next = chosen.slot;
        if loaded != Some(next) {
            switch(&mut slots, loaded, next);
            loaded = Some(next);
        }
        let contended = (0..slots.len()).any(|i| i != next && turn.rank(&slots, i).is_some());
        let budget_end = turn.budget_end(&slots[next], next);
        let slice_end = contended.then_some(chosen.ends);
        run_slot(&mut slots, next, slice_end, budget_end, &turn, lrs, cpus);
    }
}

/// Makes `slots` what the placement gives CPU `me`: hands over the vCPUs
/// it no longer runs (kicking their new CPUs) and takes the ones handed to
/// it. The placement is read under [`MOVING`]'s lock, so a vCPU handed
/// over goes to the CPU the newest placement names, or is found there by
/// the CPU a later placement names (which is kicked after it is set).
fn follow_placement(slots: &mut Vec<Slot>, loaded: &mut Option<usize>, me: usize) {
    let mut moving = MOVING.lock();
    let mine = placement::queue(me);
    let leaving = slots.iter().any(|s| !mine.contains(&s.id()));
    let arriving = moving.iter().any(|s| mine.contains(&s.id()));
    if !leaving && !arriving {
        return;
    }
    // The loaded vCPU's state goes back into its slot; the next turn loads
    // whichever runs.
    if let Some(i) = loaded.take() {
        slots[i].saved.save();
        // Nothing of it may fire here any more.
        guest::mask_virtual_timer();
    }
    let mut handed_to = [false; MAX_CPUS];
    let mut i = 0;
    while i < slots.len() {
        if mine.contains(&slots[i].id()) {
            i += 1;
            continue;
        }
        let slot = slots.swap_remove(i);
        if let Some(to) = placement::cpu_of(slot.id()) {
            INCOMING[to].store(true, Ordering::SeqCst);
            handed_to[to] = to != me;
        }
        moving.push(slot);
    }
    let mut j = 0;
    while j < moving.len() {
        if mine.contains(&moving[j].id()) {
            slots.push(moving.swap_remove(j));
        } else {
            j += 1;
        }
    }
    drop(moving);
    slots.sort_by_key(|s| (s.vm.index, s.index));
    if slots.is_empty() {
        // Nothing allocated stays behind if this CPU is turned off.
        slots.shrink_to_fit();
    }
    for to in (0..MAX_CPUS).filter(|&c| handed_to[c]) {
        smp::power_on(to);
        gic::send_sgi(KICK_SGI, to);
    }
}

/// A CPU with no vCPU since `since` rests (`sched::energy::rest`): sleeps
/// in its deepest idle state that fits, power-down ones included, and
/// after [`OFF_AFTER_MS`] turns itself off, unless the placement changed
/// since `followed` or a vCPU was handed to it.
fn rest_unused(model: &CpuPower, since: u64, clock: Clock, followed: u64, cpus: &impl Cpus) {
    let me = cpu::id();
    let now = cpu::counter();
    let may_turn_off = me != 0;
    match energy::rest(model, Some(since), now, clock.ticks(OFF_AFTER_MS), may_turn_off) {
        Rest::TurnOff => {
            timer::arm_at(None);
            energy::METER.sleep(me, now);
            smp::power_off_this_cpu(|| {
                placement::generation() == followed && !INCOMING[me].load(Ordering::SeqCst)
            });
            // Still on: work came while it was about to turn off.
            energy::METER.wake(me, cpu::counter());
        }
        Rest::Sleep { states, until } => {
            timer::arm_at(until);
            IDLE_SLEEPS[me].fetch_add(1, Ordering::Relaxed);
            energy::METER.sleep(me, now);
            let expected = until.map(|at| clock.micros(at.saturating_sub(now)));
            sleep(&model.idle_states()[..states], expected);
            energy::METER.wake(me, cpu::counter());
            run::take_interrupts(None, cpus);
        }
    }
}

/// What the power policy says about this CPU's vCPUs at one moment.
struct Turn {
    now: u64,
    clock: Clock,
    scene: Scene,
    /// Which slots could run now, budgets aside (bit per slot).
    wants: u64,
    /// Which slots are held to their budget now.
    budgeted: u64,
}

impl Turn {
    fn decide(slots: &[Slot], loaded: Option<usize>, now: u64, clock: Clock) -> Turn {
        let scene = power::SCENE.load();
        let wants = (0..slots.len())
            .filter(|&i| runnable(&slots[i], loaded == Some(i), now))
            .fold(0u64, |bits, i| bits | 1 << i);
        let foreground_wants = (0..slots.len())
            .any(|i| wants & 1 << i != 0 && scene.state(slots[i].vm.index) == State::Foreground);
        let budgeted = (0..slots.len())
            .filter(|&i| scene.budget_applies(slots[i].vm.index, &slots[i].power, foreground_wants))
            .fold(0u64, |bits, i| bits | 1 << i);
        Turn { now, clock, scene, wants, budgeted }
    }

    fn verdict(&self, slot: &Slot, i: usize) -> Option<Verdict> {
        (self.budgeted & 1 << i != 0)
            .then(|| slot.budget.verdict(self.now, slot.power.background_cpu_percent, self.clock))
    }

    /// The slot's rank if it may run now: its VM's priority.
    fn rank(&self, slots: &[Slot], i: usize) -> Option<u32> {
        let slot = &slots[i];
        let spent = matches!(self.verdict(slot, i), Some(Verdict::WaitUntil(_)));
        (self.wants & 1 << i != 0 && !spent).then_some(slot.power.priority)
    }

    /// The slot's rank and state if it may run now.
    fn want(&self, slots: &[Slot], i: usize) -> Option<Want> {
        let foreground = self.scene.state(slots[i].vm.index) == State::Foreground;
        self.rank(slots, i).map(|rank| Want { rank, foreground })
    }

    /// When the slot's budget runs out, if it is held to one.
    fn budget_end(&self, slot: &Slot, i: usize) -> Option<u64> {
        match self.verdict(slot, i) {
            Some(Verdict::RunUntil(until)) => Some(until),
            _ => None,
        }
    }

    /// When this CPU must look again at its vCPUs other than `running`: the
    /// waiting (not yet runnable) ones' timer deadlines (background ones
    /// within their slack) and the next window of those that wait for their budget. A vCPU
    /// that is off, or whose VM stopped, keeps its last timer, which no
    /// longer wakes it: counting that deadline, once past, would arm Duet's
    /// timer in the past at every turn and starve the other vCPUs.
    fn wake(&self, slots: &[Slot], running: Option<usize>, loaded: Option<usize>) -> Option<u64> {
        // One already runnable waits for the slice's end, not its timer.
        let timers = slots.iter().enumerate().filter(|&(i, s)| {
            let waits = s.waiting && self.wants & 1 << i == 0;
            Some(i) != running && Some(i) != loaded && waits && timer_can_wake(s)
        });
        let timers = timers.filter_map(|(_, s)| {
            let slack = self.scene.timer_slack(s.vm.index, &s.power, self.clock);
            s.saved.timer_deadline().map(|at| Deadline { at, slack })
        });
        let refills = slots.iter().enumerate().filter(|(i, _)| Some(*i) != running);
        let refills = refills.filter_map(|(i, s)| match self.verdict(s, i) {
            Some(Verdict::WaitUntil(at)) if self.wants & 1 << i != 0 => {
                Some(Deadline { at, slack: 0 })
            }
            _ => None,
        });
        coalesced_wake(timers.chain(refills))
    }
}

/// Whether a waiting slot's timer can still wake its vCPU: its VM runs and
/// the vCPU is on.
fn timer_can_wake(slot: &Slot) -> bool {
    slot.vm.is_running() && matches!(*slot.vm.power[slot.index].lock(), Power::On)
}

/// Whether a slot's vCPU can run now. A waiting vCPU wakes for an
/// interrupt it can take, or (when not loaded) for its timer's deadline.
fn runnable(slot: &Slot, loaded: bool, now: u64) -> bool {
    if !slot.vm.is_running() {
        return false;
    }
    match *slot.vm.power[slot.index].lock() {
        Power::Off => return false,
        // A (re)start ends whatever the vCPU was waiting for.
        Power::Starting { .. } => return true,
        Power::On => {}
    }
    if !slot.waiting {
        return true;
    }
    let timer_due = !loaded && slot.saved.timer_deadline().is_some_and(|at| at <= now);
    timer_due || slot.vm.vgic.lock().has_deliverable(slot.index)
}

/// Saves the loaded vCPU's hardware state and loads `next`'s.
fn switch(slots: &mut [Slot], loaded: Option<usize>, next: usize) {
    let previous_vm = loaded.map(|old| {
        slots[old].saved.save();
        slots[old].vm.index
    });
    let slot = &slots[next];
    slot.saved.load();
    if previous_vm != Some(slot.vm.index) {
        let geometry = slot.vm.stage2_geometry;
        let vtcr = guest::vtcr(geometry.input_bits, geometry.root_level);
        guest::install_stage2(vtcr, slot.vm.stage2_root, slot.vm.vmid);
    }
}

/// Runs the loaded vCPU of `slots[i]` for one turn: until an exit that
/// is not a trap returning straight to it (see the module's comment), each
/// exit handled. Duet's timer wakes the CPU for the other vCPUs'
/// deadlines, the end of the time slice (only while another vCPU wants
/// this CPU) and the end of this vCPU's budget, whichever comes first.
fn run_slot(
    slots: &mut [Slot],
    i: usize,
    slice_end: Option<u64>,
    budget_end: Option<u64>,
    turn: &Turn,
    lrs: &mut [u64],
    cpus: &impl Cpus,
) {
    let wake = turn.wake(slots, Some(i), Some(i));
    timer::arm_at(earliest([wake, slice_end, budget_end, super::screen::deadline()]));

    let slot = &mut slots[i];
    let (vm, index) = (slot.vm, slot.index);
    if slot.waiting {
        slot.waiting = false;
        vm.counters.wakeup();
    }
    if let Power::Starting { entry, context } = *vm.power[index].lock() {
        guest::reset_el1(layout::vcpu_mpidr(index));
        gic::reset_virtual_cpu_interface();
        slot.regs = GuestRegs { pc: entry, pstate: PSTATE_EL1H_MASKED, ..GuestRegs::default() };
        slot.regs.x[0] = context;
    }
    {
        let mut power = vm.power[index].lock();
        if matches!(*power, Power::Starting { .. }) {
            *power = Power::On;
        }
    }
    let me = cpu::id();
    let entered = cpu::counter();
    let after = loop {
        let used = run::load_list_registers(vm, index, lrs);
        vm.in_guest[index].store(true, Ordering::Release);
        // SAFETY: this CPU holds this vCPU's state (switched in above) and
        // its VM's stage-2 map; `regs` is the vCPU's register block.
        let exit = unsafe { guest::enter(&mut slot.regs) };
        vm.in_guest[index].store(false, Ordering::Release);
        run::save_list_registers(vm, index, &mut lrs[..used]);
        let after = run::handle_exit(vm, index, &mut slot.regs, &exit, cpus);
        let same_turn = after == After::Continue
            && exit.kind == guest::ExitKind::Synchronous
            && !LOOK_AGAIN[me].load(Ordering::Relaxed)
            && vm.is_running();
        if !same_turn {
            break after;
        }
    };
    // The turn's time, exits handled for it included, is the vCPU's.
    let exited = cpu::counter();
    vm.counters.add_guest_ticks(exited.wrapping_sub(entered));
    energy::METER.add_guest(vm.index, me, exited.wrapping_sub(entered));
    slot.budget.charge(entered, exited, slot.power.background_cpu_percent, turn.clock);
    if after == After::Wait {
        slot.waiting = true;
    }
}

/// Nothing can run: sleep until an interrupt, with Duet's timer set for
/// the coalesced deadlines of the waiting vCPUs and the next window of
/// those waiting for their budget. The loaded vCPU's own timer interrupts
/// this CPU directly, unless it is in the background with a timer slack:
/// then its timer is held back and joins the coalesced deadlines.
fn idle(
    slots: &[Slot],
    loaded: Option<usize>,
    turn: &Turn,
    idle_states: &[IdleState],
    cpus: &impl Cpus,
) {
    let held = loaded.and_then(|i| {
        let slot = &slots[i];
        let slack = turn.scene.timer_slack(slot.vm.index, &slot.power, turn.clock);
        let held = (slack > 0).then(timer::hold_virtual_timer).flatten()?;
        if held.deadline <= turn.now {
            // Already due: let it interrupt now.
            timer::release_virtual_timer(held);
            return None;
        }
        Some((held, slack))
    });
    let own = held.map(|(held, slack)| Deadline { at: held.deadline, slack });
    let wake = earliest([
        turn.wake(slots, None, loaded),
        own.and_then(|d| coalesced_wake([d])),
        super::screen::deadline(),
    ]);
    timer::arm_at(wake);
    // The loaded vCPU's timer, if not held, also ends the sleep.
    let loaded_timer = if held.is_none() { timer::virtual_timer_deadline() } else { None };
    let until = earliest([wake, loaded.and(loaded_timer)]);
    IDLE_SLEEPS[cpu::id()].fetch_add(1, Ordering::Relaxed);
    energy::METER.sleep(cpu::id(), cpu::counter());
    sleep(idle_states, until.map(|at| turn.clock.micros(at.saturating_sub(turn.now))));
    energy::METER.wake(cpu::id(), cpu::counter());
    let current = loaded.map(|i| (slots[i].vm, slots[i].index));
    if let (Some((held, _)), Some((vm, index))) = (held, current) {
        if held.deadline <= cpu::counter() {
            // Due: deliver it as a fired timer is delivered (masked until
            // the guest re-arms it), without waiting for the hardware.
            // Cannot fail: a PPI on this VM's own vCPU.
            let _ = vm.vgic.lock().raise(layout::TIMER_VIRT_INTID, index);
        } else {
            timer::release_virtual_timer(held);
        }
    }
    run::take_interrupts(current, cpus);
}

/// Sleeps until an interrupt: in the deepest of `idle_states` (this CPU's,
/// from the shallowest) whose minimum residency fits the `expected_us`
/// idle period (no wake time: as long as it takes), else in WFI. A
/// power-down state (only passed for a CPU without vCPUs) may not return:
/// its wakeup restarts the CPU into the CPU loop (`smp::resume`).
fn sleep(idle_states: &[IdleState], expected_us: Option<u64>) {
    let conduit = crate::machine::psci();
    let chosen = conduit.and(energy::choose_idle_state(idle_states, expected_us, u32::MAX));
    match (conduit, chosen) {
        (Some(conduit), Some(state)) => {
            let me = cpu::id();
            IDLE_STATE_SLEEPS[me][state].fetch_add(1, Ordering::Relaxed);
            let param = idle_states[state].psci_suspend_param;
            let before = cpu::counter();
            let result = if idle_states[state].is_standby() {
                psci::cpu_suspend_standby(conduit, param)
            } else {
                smp::power_down_sleep(param)
            };
            if result.is_err() {
                // Refused (the state is not what the tree says): plain WFI.
                cpu::wait_for_interrupt();
            }
            if placement::is_set() {
                // Residency counts from when the VMs were placed.
                let slept = cpu::counter().saturating_sub(before);
                IDLE_STATE_TICKS[me][state].fetch_add(slept, Ordering::Relaxed);
            }
        }
        _ => cpu::wait_for_interrupt(),
    }
}

/// Sleeps on a CPU before the VMs are placed: as deeply as its standby
/// states allow.
pub fn sleep_unplaced() {
    sleep(power_model_of_this_cpu().standby_states(), None);
}

/// Each CPU's energy model, read once.
static MODELS: [spin::Once<CpuPower>; MAX_CPUS] = [const { spin::Once::new() }; MAX_CPUS];

/// This CPU's energy model and idle states from the device tree (no idle
/// states on QEMU virt unless a tree with them is given).
fn power_model_of_this_cpu() -> &'static CpuPower {
    MODELS[cpu::id()].call_once(|| {
        crate::boot::platform().map(|p| p.cpu_power(cpu::mpidr())).unwrap_or_default()
    })
}
