//! Starting the other CPUs and keeping track of which are online.

use crate::arch::aarch64::{cache, cpu, entry, exceptions, psci};
use crate::platform::{EnableMethod, Platform};
use crate::MAX_CPUS;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use log::{info, warn};

/// How long the boot CPU waits for the others to report in.
const REPORT_TIMEOUT_MS: u64 = 2000;

/// MPIDR affinity of each CPU by Duet's index; index 0 is the boot CPU.
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// CPUs that have reported in, the boot CPU included.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// The MPIDR affinity of the CPU with Duet's index `cpu`.
pub fn mpidr_of(cpu: usize) -> u64 {
    MPIDR[cpu].load(Ordering::Acquire)
}

/// A CPU Duet runs on.
const POWER_ON: u8 = 0;
/// A CPU Duet turned off (`CPU_OFF`), or is about to.
const POWER_OFF: u8 = 1;
/// A CPU in a power-down sleep (`CPU_SUSPEND`): a wakeup may restart it
/// at the secondary entry, or the call returns.
const POWER_DOWN: u8 = 2;
static POWER: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(POWER_ON) }; MAX_CPUS];
/// Times each CPU was turned off.
static OFFS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Ticks each CPU spent off, ended periods only; and since when it is off.
static OFF_TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static OFF_SINCE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// How long a CPU that `power_on` finds still turning itself off may take.
const OFF_TIMEOUT_MS: u64 = 100;

/// Whether CPU `cpu` is off (or turning itself off).
pub fn is_off(cpu: usize) -> bool {
    POWER[cpu].load(Ordering::SeqCst) == POWER_OFF
}

/// Times CPU `cpu` was turned off, and its ticks off up to `now`.
pub fn off_counters(cpu: usize, now: u64) -> (u64, u64) {
    let since = OFF_SINCE[cpu].load(Ordering::Relaxed);
    let ongoing = if is_off(cpu) && since != 0 { now.saturating_sub(since) } else { 0 };
    (OFFS[cpu].load(Ordering::Relaxed), OFF_TICKS[cpu].load(Ordering::Relaxed) + ongoing)
}

/// Turns this CPU off with PSCI `CPU_OFF`, unless `still_unused` says
/// otherwise once it is marked off: whoever gives it work afterwards sees
/// the mark and starts it again ([`power_on`]), and work given before is
/// seen here (both sides write, then read the other's word, in SeqCst
/// order). Returns if it stays on or the firmware refused; a restarted CPU
/// comes back through [`secondary_main`] into the CPU loop.
pub fn power_off_this_cpu(still_unused: impl Fn() -> bool) {
    let Some(conduit) = crate::machine::psci() else { return };
    let me = cpu::id();
    POWER[me].store(POWER_OFF, Ordering::SeqCst);
    if !still_unused() {
        POWER[me].store(POWER_ON, Ordering::SeqCst);
        return;
    }
    OFF_SINCE[me].store(cpu::counter().max(1), Ordering::Relaxed);
    OFFS[me].fetch_add(1, Ordering::Relaxed);
    let error = psci::cpu_off(conduit);
    POWER[me].store(POWER_ON, Ordering::SeqCst);
    warn!("cpu{me}: PSCI CPU_OFF failed: {error:?}; it stays on");
}

/// Starts CPU `cpu` again if Duet turned it off; call after giving it work
/// (see [`power_off_this_cpu`]).
pub fn power_on(cpu: usize) {
    let Some(conduit) = crate::machine::psci() else { return };
    let deadline = cpu::counter() + cpu::counter_frequency() * OFF_TIMEOUT_MS / 1000;
    while is_off(cpu) {
        match psci::cpu_on(conduit, mpidr_of(cpu), entry::secondary_entry_address(), cpu as u64) {
            // It may not have reached CPU_OFF yet: wait until it has.
            Err(psci::Error::AlreadyOn | psci::Error::OnPending) if cpu::counter() < deadline => {
                core::hint::spin_loop()
            }
            Ok(()) | Err(psci::Error::OnPending) => return,
            Err(e) => {
                warn!("cpu{cpu}: PSCI CPU_ON to restart it failed: {e:?}");
                return;
            }
        }
    }
}

/// Sleeps this CPU in the power-down state `power_state`: returns when it
/// wakes, or, if its state was lost, it starts again at the secondary
/// entry and goes back into the CPU loop ([`secondary_main`]).
pub fn power_down_sleep(power_state: u32) -> Result<(), psci::Error> {
    let Some(conduit) = crate::machine::psci() else { return Err(psci::Error::NotSupported) };
    let me = cpu::id();
    POWER[me].store(POWER_DOWN, Ordering::SeqCst);
    let result = psci::cpu_suspend_power_down(
        conduit,
        power_state,
        entry::secondary_entry_address(),
        me as u64,
    );
    POWER[me].store(POWER_ON, Ordering::SeqCst);
    result
}

/// Starts every CPU of the device tree that has a way to be started, and
/// waits for each to report in.
pub fn start_secondaries(platform: &Platform) {
    let boot = cpu::mpidr();
    MPIDR[0].store(boot, Ordering::Relaxed);
    let mut started = 1;
    for cpu in platform.cpus().iter().filter(|c| c.mpidr != boot) {
        let index = started;
        let result = match (cpu.enable_method, platform.psci) {
            (EnableMethod::Psci, Some(conduit)) => {
                MPIDR[index].store(cpu.mpidr, Ordering::Release);
                psci::cpu_on(conduit, cpu.mpidr, entry::secondary_entry_address(), index as u64)
                    .map_err(|e| warn!("cpu MPIDR {:#x}: PSCI CPU_ON failed: {e:?}", cpu.mpidr))
            }
            (EnableMethod::SpinTable { release_address }, _) => {
                MPIDR[index].store(cpu.mpidr, Ordering::Release);
                release_from_spin_table(release_address, index)
            }
            (method, _) => {
                warn!("cpu MPIDR {:#x}: cannot start it ({method:?}); it stays off", cpu.mpidr);
                Err(())
            }
        };
        if result.is_ok() {
            started += 1;
        }
    }
    if platform.cpus_ignored > 0 {
        warn!("{} cpus beyond the first {MAX_CPUS} stay off", platform.cpus_ignored);
    }
    wait_for(started);
}

/// Starts the CPU waiting on the spin table at `release_address` (in RAM
/// Duet maps), as Duet's CPU `index`, and waits for it to report in, so
/// that the next one can be given its own index.
fn release_from_spin_table(release_address: u64, index: usize) -> Result<(), ()> {
    // SAFETY: only the boot CPU writes this, before releasing the CPU that
    // reads it, one CPU at a time.
    unsafe { entry::SPIN_TABLE_INDEX = index as u64 };
    let slot = (&raw const entry::SPIN_TABLE_INDEX) as usize;
    // The released CPU reads with its MMU and caches off: clean to memory.
    cache::clean_range(slot, slot + 8);
    let release = release_address as usize;
    // SAFETY: the device tree names this as the CPU's release address, and
    // Duet's map has its page as RAM (`el2_map::plan`); the CPU only reads it.
    unsafe { core::ptr::write_volatile(release as *mut u64, entry::spin_table_entry_address()) };
    cache::clean_range(release, release + 8);
    // SAFETY: wakes CPUs waiting in WFE; no memory effects.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack, preserves_flags)) };
    let before = online();
    let deadline = cpu::counter() + cpu::counter_frequency() * REPORT_TIMEOUT_MS / 1000;
    while online() == before && cpu::counter() < deadline {
        core::hint::spin_loop();
    }
    if online() == before {
        warn!("cpu at spin table {release_address:#x} did not start");
        return Err(());
    }
    Ok(())
}

fn wait_for(expected: usize) {
    let deadline = cpu::counter() + cpu::counter_frequency() * REPORT_TIMEOUT_MS / 1000;
    while online() < expected && cpu::counter() < deadline {
        core::hint::spin_loop();
    }
    let online = online();
    if online < expected {
        warn!("only {online} of {expected} cpus reported in within {REPORT_TIMEOUT_MS} ms");
    } else {
        info!("all {online} cpus online at EL2");
    }
}

/// A secondary CPU arrives here from the entry code, MMU on, on its stacks;
/// so does a CPU Duet restarts after `CPU_OFF` or a power-down sleep that
/// lost its state (any CPU, the boot CPU too).
pub extern "C" fn secondary_main(index: usize) -> ! {
    cpu::set_id(index);
    if POWER[index].load(Ordering::SeqCst) != POWER_ON {
        resume(index);
    }
    exceptions::install();
    crate::boot::init_interrupts_on_this_cpu();
    info!("cpu{index} online at EL{} (MPIDR {:#x})", cpu::current_el(), cpu::mpidr());
    ONLINE.fetch_add(1, Ordering::AcqRel);
    #[cfg(feature = "fault-injection")]
    crate::fault::commit_if_armed();
    crate::vm::system::cpu_loop(index)
}

/// A CPU Duet turned off or powered down, started again: its EL2 state
/// (vectors, interrupts) rebuilt as at its first start, it goes back into
/// the CPU loop, which takes the vCPUs the placement gives it.
fn resume(index: usize) -> ! {
    exceptions::install();
    crate::boot::init_interrupts_on_this_cpu();
    let now = cpu::counter();
    if POWER[index].load(Ordering::SeqCst) == POWER_OFF {
        let since = OFF_SINCE[index].load(Ordering::Relaxed);
        OFF_TICKS[index].fetch_add(now.saturating_sub(since), Ordering::Relaxed);
    }
    POWER[index].store(POWER_ON, Ordering::SeqCst);
    crate::sched::energy::METER.wake(index, now);
    crate::vm::system::cpu_loop(index)
}
