//! The measurements. Each times many iterations of one operation with the
//! virtual counter (read after an ISB) and prints one figure line:
//!
//! - `hvc_null`: SMCCC PSCI_VERSION through the PSCI conduit;
//! - `mmio_gicd_typer`, `mmio_virtio_magic`: a 32-bit read of GICD_TYPER,
//!   and of the first virtio-mmio transport's MagicValue;
//! - `ipi_one_way`, `ipi_round_trip`: CPU 0 sends an SGI to CPU 1 and waits
//!   in WFI; CPU 1's handler notes the counter at its vector and sends an
//!   SGI back. One way is CPU 1's vector entry minus the send; the round
//!   trip ends at CPU 0's vector entry;
//! - `timer_busy`, `timer_wfi`: the virtual timer armed 1 ms ahead, CPU 0
//!   spinning or in WFI; the handler's vector entry minus the deadline.

use crate::{arch, entry, gic};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use duet_bench_guest::figure::{Figure, DONE};
use duet_bench_guest::platform::{Conduit, Gic, Platform, Uart};

const CALL_ITERATIONS: u64 = 2000;
const MMIO_ITERATIONS: u64 = 2000;
const IPI_ITERATIONS: u64 = 200;
const TIMER_ITERATIONS: u64 = 100;
/// SGIs: CPU 0 pings CPU 1, which answers with a pong.
const SGI_PING: u32 = 1;
const SGI_PONG: u32 = 2;
/// virtio-mmio's MagicValue, "virt" in little endian.
const VIRTIO_MAGIC: u32 = 0x7472_6976;

/// What the interrupt handler records, for the CPU waiting on it.
static TIMER_INTID: AtomicU64 = AtomicU64::new(27);
static TIMER_COUNT: AtomicU64 = AtomicU64::new(0);
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU64 = AtomicU64::new(0);
static PONG_AT: AtomicU64 = AtomicU64::new(0);
static PING_AT: AtomicU64 = AtomicU64::new(0);
static SECONDARY_READY: AtomicBool = AtomicBool::new(false);
static CPU0_MPIDR: AtomicU64 = AtomicU64::new(0);

/// CPU 0: every figure, then power off.
pub fn run(platform: &Platform) -> ! {
    let version = arch::smccc(arch::PSCI_VERSION, [0; 3]);
    say!(
        "bench: platform counter_hz={} gic={} uart={} conduit={} cpus={} virtio_mmio={} psci={}.{}",
        arch::counter_hz(),
        platform.gic_name(),
        match platform.uart {
            Uart::Pl011 { .. } => "pl011",
            Uart::Ns16550 { .. } => "ns16550",
        },
        match platform.conduit {
            Conduit::Hvc => "hvc",
            Conduit::Smc => "smc",
        },
        platform.cpu_count,
        if platform.virtio_mmio.is_some() { "yes" } else { "no" },
        version >> 16,
        version & 0xffff,
    );
    TIMER_INTID.store(u64::from(platform.timer_intid), Ordering::SeqCst);
    CPU0_MPIDR.store(arch::mpidr(), Ordering::SeqCst);
    say!(
        "{}",
        timed("hvc_null", CALL_ITERATIONS, || {
            arch::smccc(arch::PSCI_VERSION, [0; 3]);
        })
    );
    let gic = platform.gic.and_then(|gic| {
        gic::remember(gic);
        gic::init_distributor(gic);
        match gic::init_cpu(gic, 0, &[SGI_PONG, platform.timer_intid]) {
            Ok(()) => Some(gic),
            Err(why) => {
                say!("bench: the GIC is unusable: {why}");
                None
            }
        }
    });
    match gic {
        Some(gic) => mmio("mmio_gicd_typer", gic::distributor(gic) + gic::GICD_TYPER, None),
        None => say!("bench: mmio_gicd_typer absent (no usable GIC)"),
    }
    match platform.virtio_mmio {
        Some(base) => mmio("mmio_virtio_magic", base, Some(VIRTIO_MAGIC)),
        None => say!("bench: mmio_virtio_magic absent (no virtio-mmio node in the device tree)"),
    }
    match (gic, platform.cpu_count) {
        (Some(gic), 2..) => ipi(gic, platform),
        _ => {
            say!("bench: ipi_one_way absent (needs a GIC and two CPUs)");
            say!("bench: ipi_round_trip absent (needs a GIC and two CPUs)");
        }
    }
    if gic.is_some() {
        timer("timer_busy", false);
        timer("timer_wfi", true);
    } else {
        say!("bench: timer_busy absent (no usable GIC)");
        say!("bench: timer_wfi absent (no usable GIC)");
    }
    say!("{DONE}");
    arch::power_off()
}

/// `iterations` of `operation`, timed as a whole.
fn timed(name: &'static str, iterations: u64, mut operation: impl FnMut()) -> Figure<'static> {
    let start = arch::counter();
    for _ in 0..iterations {
        operation();
    }
    Figure { name, total_ticks: arch::counter() - start, iterations }
}

/// Reads of the register at `address`, if a first read works (and gives
/// `expect`, where given).
fn mmio(name: &'static str, address: u64, expect: Option<u32>) {
    match crate::vectors::probe_read32(address) {
        None => return say!("bench: {name} absent (reading {address:#x} faults)"),
        Some(value) if expect.is_some_and(|e| e != value) => {
            return say!("bench: {name} absent ({address:#x} reads {value:#x})")
        }
        Some(_) => {}
    }
    say!(
        "{}",
        timed(name, MMIO_ITERATIONS, || {
            // SAFETY: a device register the first read showed is there; the
            // MMU is off, so the read is a device access.
            unsafe { core::ptr::read_volatile(address as *const u32) };
        })
    );
}

/// Waits (in WFI, IRQs masked so that no wakeup is missed) until `done`,
/// taking each interrupt as it comes.
fn wait_for(done: impl Fn() -> bool) {
    arch::irqs_off();
    while !done() {
        arch::wfi();
        arch::irqs_on();
        arch::irqs_off();
    }
}

fn ipi(gic: Gic, platform: &Platform) {
    let target = platform.cpus[1];
    let status = arch::cpu_on(target, entry::secondary_entry());
    let start = arch::counter();
    let patience = arch::counter_hz();
    while status == 0 && !SECONDARY_READY.load(Ordering::SeqCst) {
        if arch::counter() - start > patience {
            break;
        }
    }
    if !SECONDARY_READY.load(Ordering::SeqCst) {
        say!("bench: ipi_one_way absent (CPU_ON {target:#x} returned {status}; no CPU 1)");
        return say!("bench: ipi_round_trip absent (no CPU 1)");
    }
    let (mut one_way, mut round_trip) = (0, 0);
    for _ in 0..IPI_ITERATIONS {
        let before = PONGS.load(Ordering::SeqCst);
        let sent = arch::counter();
        gic::send_sgi(gic, SGI_PING, 1, target);
        wait_for(|| PONGS.load(Ordering::SeqCst) != before);
        one_way += PING_AT.load(Ordering::SeqCst) - sent;
        round_trip += PONG_AT.load(Ordering::SeqCst) - sent;
    }
    say!("{}", Figure { name: "ipi_one_way", total_ticks: one_way, iterations: IPI_ITERATIONS });
    say!(
        "{}",
        Figure { name: "ipi_round_trip", total_ticks: round_trip, iterations: IPI_ITERATIONS }
    );
}

fn timer(name: &'static str, sleep: bool) {
    let ahead = (arch::counter_hz() / 1000).max(100);
    let mut late = 0;
    for _ in 0..TIMER_ITERATIONS {
        let before = TIMER_COUNT.load(Ordering::SeqCst);
        let deadline = arch::counter() + ahead;
        arch::timer_fire_at(deadline);
        let fired = || TIMER_COUNT.load(Ordering::SeqCst) != before;
        if sleep {
            wait_for(fired);
        } else {
            arch::irqs_on();
            while !fired() {}
            arch::irqs_off();
        }
        late += TIMER_AT.load(Ordering::SeqCst).saturating_sub(deadline);
    }
    say!("{}", Figure { name, total_ticks: late, iterations: TIMER_ITERATIONS });
}

/// CPU 1: answers each ping with a pong, for ever (CPU 0 powers off).
pub fn secondary() -> ! {
    let Some(gic) = gic::remembered() else {
        loop {
            arch::wfi()
        }
    };
    if gic::init_cpu(gic, 1, &[SGI_PING]).is_ok() {
        SECONDARY_READY.store(true, Ordering::SeqCst);
    }
    arch::irqs_on();
    loop {
        arch::wfi();
    }
}

/// Called from the IRQ vector with the counter read there: one interrupt
/// acknowledged, recorded, ended.
pub fn interrupt(counter: u64) {
    let Some(gic) = gic::remembered() else { return };
    let (intid, raw) = gic::acknowledge(gic);
    if intid >= gic::SPURIOUS {
        return;
    }
    match intid {
        SGI_PING => {
            PING_AT.store(counter, Ordering::SeqCst);
            gic::send_sgi(gic, SGI_PONG, 0, CPU0_MPIDR.load(Ordering::SeqCst));
        }
        SGI_PONG => {
            PONG_AT.store(counter, Ordering::SeqCst);
            PONGS.store(PONGS.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        }
        intid if u64::from(intid) == TIMER_INTID.load(Ordering::SeqCst) => {
            // Off, which lowers the (level) interrupt before it is ended.
            arch::timer_off();
            TIMER_AT.store(counter, Ordering::SeqCst);
            TIMER_COUNT.store(TIMER_COUNT.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        }
        _ => {}
    }
    gic::end(gic, raw);
}
