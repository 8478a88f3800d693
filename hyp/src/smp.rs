//! Starting the other CPUs and keeping track of which are online.

use crate::arch::aarch64::{cache, cpu, entry, exceptions, psci};
use crate::platform::{EnableMethod, Platform};
use crate::MAX_CPUS;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// A secondary CPU arrives here from the entry code, MMU on, on its stacks.
pub extern "C" fn secondary_main(index: usize) -> ! {
    cpu::set_id(index);
    exceptions::install();
    crate::boot::init_interrupts_on_this_cpu();
    info!("cpu{index} online at EL{} (MPIDR {:#x})", cpu::current_el(), cpu::mpidr());
    ONLINE.fetch_add(1, Ordering::AcqRel);
    #[cfg(feature = "fault-injection")]
    crate::fault::commit_if_armed();
    crate::vm::system::cpu_loop(index)
}
