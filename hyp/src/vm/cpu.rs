//! One physical CPU taking turns between the vCPUs placed on it: switching
//! their state in and out, running one until it exits, and sleeping when
//! none can run, with the EL2 timer set for the earliest deadline of the
//! waiting ones (no periodic tick). Bare metal only.

use super::instance::{Power, Vm};
use super::layout;
use super::run::{self, After, Cpus};
use super::vcpu::{GuestRegs, PSTATE_EL1H_MASKED};
use crate::arch::aarch64::context::SavedState;
use crate::arch::aarch64::{cpu, gic, guest, timer};
use crate::sched::{earliest, next_runnable};
use crate::MAX_CPUS;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// How long a vCPU runs before another that waits for this CPU gets it.
const SLICE_MS: u64 = 10;

/// Per CPU: times it slept with nothing to run.
static IDLE_SLEEPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: interrupts from Duet's own (EL2) timer.
static TIMER_INTERRUPTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Idle sleeps and Duet timer interrupts of CPU `cpu`.
pub fn cpu_counters(cpu: usize) -> (u64, u64) {
    (IDLE_SLEEPS[cpu].load(Ordering::Relaxed), TIMER_INTERRUPTS[cpu].load(Ordering::Relaxed))
}

/// Duet's EL2 timer fired: it has done its job (waking this CPU).
pub fn hypervisor_timer_fired() {
    timer::disarm();
    TIMER_INTERRUPTS[cpu::id()].fetch_add(1, Ordering::Relaxed);
}

/// A vCPU placed on this CPU.
struct Slot<'a> {
    vm: &'a Vm,
    index: usize,
    regs: GuestRegs,
    /// Its hardware state while another vCPU is loaded.
    saved: SavedState,
    /// It waits for an interrupt (WFI).
    waiting: bool,
}

/// Runs the vCPUs `placed` on this CPU, for ever.
pub fn run_cpu(placed: Vec<(&Vm, usize)>, cpus: &impl Cpus) -> ! {
    guest::configure();
    let lrs = gic::list_register_count().min(16);
    let mut slots: Vec<Slot> = placed
        .into_iter()
        .map(|(vm, index)| Slot {
            vm,
            index,
            regs: GuestRegs::default(),
            saved: SavedState::at_reset(layout::vcpu_mpidr(index)),
            waiting: false,
        })
        .collect();
    let mut loaded: Option<usize> = None;
    let mut last = slots.len().saturating_sub(1);
    loop {
        let now = cpu::counter();
        let Some(next) =
            next_runnable(slots.len(), last, |i| runnable(&slots[i], loaded == Some(i), now))
        else {
            idle(&slots, loaded, cpus);
            continue;
        };
        last = next;
        if loaded != Some(next) {
            switch(&mut slots, loaded, next);
            loaded = Some(next);
        }
        let contended = (0..slots.len()).any(|i| i != next && runnable(&slots[i], false, now));
        run_slot(&mut slots, next, contended, lrs, cpus);
    }
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

/// Runs the loaded vCPU of `slots[i]` until an exit, and handles it.
fn run_slot(slots: &mut [Slot], i: usize, contended: bool, lrs: usize, cpus: &impl Cpus) {
    let deadlines = slots.iter().enumerate().filter(|(j, s)| *j != i && s.waiting);
    let wake = earliest(deadlines.map(|(_, s)| s.saved.timer_deadline()));
    let slice_end = contended.then(|| cpu::counter() + cpu::counter_frequency() * SLICE_MS / 1000);
    timer::arm_at(earliest([wake, slice_end]));

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
    run::load_list_registers(vm, index, lrs);
    vm.in_guest[index].store(true, Ordering::Release);
    let entered = cpu::counter();
    // SAFETY: this CPU holds this vCPU's state (switched in above) and its
    // VM's stage-2 map; `regs` is the vCPU's register block.
    let exit = unsafe { guest::enter(&mut slot.regs) };
    vm.counters.add_guest_ticks(cpu::counter().wrapping_sub(entered));
    vm.in_guest[index].store(false, Ordering::Release);
    run::save_list_registers(vm, index, lrs);
    match run::handle_exit(vm, index, &mut slot.regs, &exit, cpus) {
        After::Continue | After::Yield => {}
        After::Wait => slot.waiting = true,
    }
}

/// Nothing can run: sleep until an interrupt, with Duet's timer set for
/// the earliest deadline among the waiting vCPUs that are not loaded (the
/// loaded one's own timer interrupts this CPU directly).
fn idle(slots: &[Slot], loaded: Option<usize>, cpus: &impl Cpus) {
    let deadlines = slots.iter().enumerate().filter(|(i, s)| Some(*i) != loaded && s.waiting);
    timer::arm_at(earliest(deadlines.map(|(_, s)| s.saved.timer_deadline())));
    IDLE_SLEEPS[cpu::id()].fetch_add(1, Ordering::Relaxed);
    cpu::wait_for_interrupt();
    let current = loaded.map(|i| (slots[i].vm, slots[i].index));
    run::take_interrupts(current, cpus);
}
