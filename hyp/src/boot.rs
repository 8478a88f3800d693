//! The boot CPU's way from the entry code to a running hypervisor: read the
//! device tree, start the console, build and enable Duet's own map, set up
//! the heap, say what was found, start the other CPUs.

use crate::arch::aarch64::{cache, cpu, entry, exceptions, gic, mmu};
use crate::drivers::gicv2::Gicv2;
use crate::drivers::gicv3::Gicv3;
use crate::mm::el2_map::{self, ImageLayout};
use crate::mm::pagetable::{Geometry, MapError, PageTable, Stage};
use crate::mm::regions::{Region, RegionSet, TooManyRegions};
use crate::mm::{heap, TablePool};
use crate::platform::{Gic, Platform};
use crate::sched::KICK_SGI;
use crate::vm::layout;
use crate::{console, machine, println, smp, status, MAX_CPUS};
use spin::{Mutex, Once};

/// Bytes of RAM set aside for Duet's heap.
const HEAP_SIZE: u64 = 32 << 20;
const MIB: u64 = 1 << 20;

/// Tables for Duet's own map, built before the heap exists.
static BOOT_TABLES: Mutex<TablePool<64>> = Mutex::new(TablePool::new());
/// Duet's own map, kept for later changes (mapping devices as drivers start).
static EL2_MAP: Once<Mutex<PageTable>> = Once::new();
/// What the device tree says.
static PLATFORM: Once<Platform> = Once::new();
/// RAM nobody uses yet: where VM memory will come from.
pub static FREE_RAM: Mutex<RegionSet<32>> = Mutex::new(RegionSet::new());

/// Why boot could not go on.
enum BootError {
    Map(MapError),
    TooManyRegions,
    NoRoomForHeap,
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootError::Map(e) => write!(f, "Duet's own map: {e}"),
            BootError::TooManyRegions => write!(f, "too many holes in RAM to track"),
            BootError::NoRoomForHeap => {
                write!(f, "no {} MiB of free RAM for the heap", HEAP_SIZE / MIB)
            }
        }
    }
}

impl From<MapError> for BootError {
    fn from(e: MapError) -> Self {
        BootError::Map(e)
    }
}

impl From<TooManyRegions> for BootError {
    fn from(_: TooManyRegions) -> Self {
        BootError::TooManyRegions
    }
}

/// The boot CPU arrives here from the entry code: at EL2, MMU off, on its
/// own stacks, with the device tree at `dtb`.
pub extern "C" fn primary_main(dtb: usize, _image_base: usize) -> ! {
    cpu::set_id(0);
    exceptions::install();
    let Some(mut platform) = read_platform(dtb) else { cpu::park() };
    // Before the MMU is on, so that Duet's map holds only the devices it drives.
    crate::drivers::virtio::probe(&mut platform);
    let platform = PLATFORM.call_once(|| platform);
    if let Some(conduit) = platform.psci {
        machine::set_psci(conduit);
    }
    if let Err(e) = start_memory(platform) {
        halt(format_args!("cannot set up memory: {e}"));
    }
    if let Some(watchdog) = platform.bcm2835_watchdog {
        machine::set_bcm2835_watchdog(watchdog.start as usize);
    }
    console::init_logger(log_level(platform));
    print_banner(platform);
    init_interrupts(platform);
    crate::drivers::virtio::start(platform);
    #[cfg(feature = "fault-injection")]
    crate::fault::arm(platform);
    smp::start_secondaries(platform);
    #[cfg(feature = "fault-injection")]
    crate::fault::commit_if_armed();
    if crate::vm::system::start(platform.initrd) {
        crate::vm::system::cpu_loop(0)
    }
    machine::power_off(format_args!("nothing left to run"))
}

/// The physical GICv3, when the board has one (a GICv2 lives in `gic`).
static GIC: Once<Gicv3> = Once::new();
/// The physical GICv2, when the board has one.
static GICV2: Once<&'static Gicv2> = Once::new();

/// The board, once read.
pub fn platform() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// The console UART's interrupt, if Duet takes it.
pub fn console_intid() -> Option<u32> {
    PLATFORM.get()?.uart_intid
}

/// Why the board's GIC cannot give guests interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicProblem {
    NoGic,
    /// A GICv2 whose device tree node lacks the GICH and GICV frames: no
    /// virtualization extensions (or QEMU's `virtualization=off`).
    NoVirtualizationInterface,
}

impl core::fmt::Display for GicProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoGic => write!(f, "the device tree describes no GIC Duet knows"),
            Self::NoVirtualizationInterface => write!(
                f,
                "the GICv2 has no virtualization interface (its device tree node names no \
                 GICH and GICV frames): guests cannot be given interrupts"
            ),
        }
    }
}

/// Brings up the GIC distributor and this (the boot) CPU's interfaces, and
/// routes console input to this CPU. A GIC that cannot virtualize stops
/// Duet with a message saying so.
fn init_interrupts(platform: &Platform) {
    match platform.gic {
        Some(Gic::V3 { distributor, redistributors }) => {
            // SAFETY: the device tree names these as the GIC; Duet's map has
            // them as device memory; nothing else drives the GIC.
            let gic = unsafe {
                Gicv3::new(
                    distributor.start as usize,
                    redistributors.start as usize,
                    redistributors.size() as usize,
                )
            };
            GIC.call_once(|| gic).init_distributor();
        }
        Some(Gic::V2 {
            distributor,
            cpu_interface,
            hypervisor: Some(hypervisor),
            virtual_cpu: Some(virtual_cpu),
        }) => {
            // SAFETY: as above; the GICV frame stays unmapped at EL2, for guests.
            let gic = unsafe {
                Gicv2::new(
                    distributor.start as usize,
                    cpu_interface.start as usize,
                    hypervisor.start as usize,
                )
            };
            let gic = gic::use_gicv2(gic, virtual_cpu.start);
            gic.init_distributor();
            GICV2.call_once(|| gic);
        }
        Some(Gic::V2 { .. }) => halt(format_args!("{}", GicProblem::NoVirtualizationInterface)),
        None => halt(format_args!("{}", GicProblem::NoGic)),
    }
    init_interrupts_on_this_cpu();
    if let Some(intid) = platform.uart_intid {
        enable_device_interrupt(intid);
        console::set_input_interrupt(true);
    }
}

/// Routes a device's interrupt (an SPI) to this CPU and enables it, on
/// whichever GIC the board has (the console UART, the uplink NIC, the
/// touch panel and the keyboard all come through here).
pub fn enable_device_interrupt(intid: u32) {
    if let Some(gic) = GIC.get() {
        gic.enable_shared(intid, cpu::mpidr());
    } else if let Some(gic) = GICV2.get() {
        gic.enable_shared(intid, cpu::id());
    }
}

/// Wakes this CPU's redistributor and CPU interface and enables the
/// interrupts every CPU takes: the kick SGI, the GIC maintenance interrupt
/// and the guest's virtual timer.
pub fn init_interrupts_on_this_cpu() {
    let private = [
        KICK_SGI,
        layout::GIC_MAINTENANCE_INTID,
        layout::TIMER_VIRT_INTID,
        layout::TIMER_HYP_INTID,
    ];
    if let Some(gic) = GICV2.get() {
        cpu::route_interrupts_to_el2();
        gic.init_cpu(cpu::id());
        for intid in private {
            gic.enable_private(intid);
        }
        return;
    }
    let Some(gic) = GIC.get() else { return };
    cpu::route_interrupts_to_el2();
    if let Err(e) = gic.init_redistributor(cpu::mpidr()) {
        log::warn!("no GIC redistributor for MPIDR {:#x}", e.mpidr);
        return;
    }
    crate::arch::aarch64::gic::init_cpu_interface();
    for intid in private {
        gic.enable_private(cpu::mpidr(), intid);
    }
}

/// Reads the device tree and starts the console on its UART. Without a
/// device tree or a UART there is no way to say anything, so the caller parks.
fn read_platform(dtb: usize) -> Option<Platform> {
    let blob = device_tree_blob(dtb)?;
    let platform = Platform::parse(blob).ok()?;
    let uart = platform.uart?;
    if let Some(gpio) = platform.bcm2711_gpio {
        // SAFETY: the device tree names the block; the MMU is off, so its
        // physical address reaches it; nothing else runs yet.
        unsafe { crate::drivers::bcm2711_gpio::route_uart0_to_header(gpio.start as usize) };
    }
    // SAFETY: the UART is the board's console, which only Duet drives; with
    // the MMU off it is reachable at its physical address, and Duet's map
    // keeps it there.
    unsafe { console::init(uart.start as usize) };
    if platform.bcm2711_gpio.is_some() {
        // The Pi 4's firmware sets up only the UART it considers primary
        // (the mini UART) and clocks the PL011 at 48 MHz.
        console::set_line(BCM2711_UART_CLOCK_HZ, CONSOLE_BAUD);
    }
    Some(platform)
}

/// The Raspberry Pi 4's PL011 clock (the firmware's `init_uart_clock`).
const BCM2711_UART_CLOCK_HZ: u32 = 48_000_000;
const CONSOLE_BAUD: u32 = 115_200;

/// The device tree at `address`, sized by its header, with the NOP tokens
/// firmware edits leave squeezed out (see `tree::strip_nops`).
fn device_tree_blob(address: usize) -> Option<&'static [u8]> {
    if address == 0 || !address.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the boot protocol puts a device tree at `address` and nothing
    // else uses it; the header's first two words are magic and total size.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, 8) };
    if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return None;
    }
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // SAFETY: as above, for the size the header states. The tree is Duet's
    // from now on; this is the only writer, before anything reads it.
    let blob = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, size) };
    crate::personas::tree::strip_nops(blob).ok()?;
    Some(blob)
}

/// Builds Duet's map, turns the MMU on and sets up the heap.
fn start_memory(platform: &Platform) -> Result<(), BootError> {
    let layout = image_layout();
    let mut tables = BOOT_TABLES.lock();
    let mut map = PageTable::new(Stage::El2, Geometry::stage1(mmu::VA_BITS), 48, &mut *tables)?;
    el2_map::plan::<BootError>(platform, &layout, |region, attrs| {
        Ok(map.map(&mut *tables, region.start, region.start, region.size(), attrs)?)
    })?;
    drop(tables);
    let config = mmu::config(map.root_address());
    // Everything so far was written with the caches off. Drop any stale
    // cached copies of the image (tables, .bss, stacks) before the MMU and
    // caches come on, or they would shadow what is in memory.
    let image = layout.image();
    cache::invalidate_range(image.start as usize, image.end as usize);
    // SAFETY: the map covers the image, stacks, device tree and UART with the
    // attributes their use needs (checked by the el2_map tests).
    unsafe { mmu::enable(&config) };
    // SAFETY: secondaries are not running yet; they read this with their
    // MMU off, so it is cleaned to memory below.
    unsafe { entry::SECONDARY_MMU = config };
    let secondary_config = (&raw const entry::SECONDARY_MMU) as usize;
    cache::clean_range(secondary_config, secondary_config + size_of::<mmu::MmuConfig>());
    EL2_MAP.call_once(|| Mutex::new(map));
    start_heap(platform, image)
}

fn start_heap(platform: &Platform, image: Region) -> Result<(), BootError> {
    let mut free = FREE_RAM.lock();
    for region in platform.memory.iter() {
        free.insert(region)?;
    }
    free.remove(image.align_out(2 * MIB))?;
    free.remove(platform.blob.align_out(2 * MIB))?;
    if let Some(package) = platform.initrd {
        free.remove(package.align_out(2 * MIB))?;
    }
    for reserved in platform.reserved.iter() {
        free.remove(reserved)?;
    }
    let heap = free.allocate(HEAP_SIZE, 2 * MIB).ok_or(BootError::NoRoomForHeap)?;
    // SAFETY: the region is RAM, mapped read-write by Duet's map, and was just
    // taken out of the free set, so nothing else will use it.
    unsafe { heap::init(heap) };
    Ok(())
}

/// The running image's sections, from the linker script's symbols.
fn image_layout() -> ImageLayout {
    extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __image_end: u8;
    }
    let address = |symbol: *const u8| symbol as u64;
    let (start, text_end, rodata_end, end) = (
        address(&raw const __image_start),
        address(&raw const __text_end),
        address(&raw const __rodata_end),
        address(&raw const __image_end),
    );
    let mut guard_pages = [0; 2 * MAX_CPUS];
    for (slot, guard) in guard_pages.iter_mut().zip(entry::stack_guards()) {
        *slot = guard as u64;
    }
    ImageLayout {
        text: Region { start, end: text_end },
        rodata: Region { start: text_end, end: rodata_end },
        data: Region { start: rodata_end, end },
        guard_pages,
    }
}

fn log_level(platform: &Platform) -> log::LevelFilter {
    match platform.boot_option("duet.log") {
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    }
}

fn print_banner(platform: &Platform) {
    let image = image_layout().image();
    let (heap_used, heap_total) = heap::usage();
    println!("Duet {} -- a hypervisor for phones, at EL2", env!("CARGO_PKG_VERSION"));
    println!("  board   {}", platform.model);
    println!(
        "  cpus    {} in the device tree, boot cpu MPIDR {:#x}",
        platform.cpus().len(),
        cpu::mpidr()
    );
    for region in platform.memory.iter() {
        println!("  memory  {} MiB at {region:?}", region.size() / MIB);
    }
    println!(
        "  image   {} KiB at {:#x}, heap {} MiB ({} KiB used)",
        image.size() / 1024,
        image.start,
        heap_total as u64 / MIB,
        heap_used / 1024
    );
    match platform.gic {
        Some(Gic::V3 { distributor, redistributors }) => println!(
            "  gic     GICv3, distributor {:#x}, redistributors {:#x}",
            distributor.start, redistributors.start
        ),
        Some(Gic::V2 { distributor, cpu_interface, hypervisor, .. }) => println!(
            "  gic     GICv2, distributor {:#x}, cpu interface {:#x}, virtualization {}",
            distributor.start,
            cpu_interface.start,
            if hypervisor.is_some() { "yes" } else { "no" }
        ),
        None => println!("  gic     none found"),
    }
    if let Some(uart) = platform.uart {
        println!("  uart    PL011 at {:#x}", uart.start);
    }
    println!("  timer   {} Hz", cpu::counter_frequency());
    match platform.psci {
        Some(conduit) => match crate::arch::aarch64::psci::version(conduit) {
            Ok((major, minor)) => println!("  psci    {major}.{minor} over {conduit}"),
            Err(e) => println!("  psci    over {conduit}, version unknown ({e:?})"),
        },
        None => println!("  psci    none"),
    }
}

/// Stops after saying why.
fn halt(reason: core::fmt::Arguments) -> ! {
    console::print_emergency(format_args!("{} {reason}\n", status::HALTED));
    machine::stop()
}

/// The entry code lands here when the CPU did not start at EL2. Duet
/// cannot work there; it says so and powers off, with the MMU still off.
pub extern "C" fn wrong_el_main(dtb: usize, el: u64) -> ! {
    let Some(platform) = read_platform(dtb) else { cpu::park() };
    println!(
        "{} not started at EL2 (running at EL{el}): Duet needs the bootloader to enter it at EL2 \
         (on QEMU: -machine virtualization=on)",
        status::HALTED
    );
    if let Some(conduit) = platform.psci {
        crate::arch::aarch64::psci::system_off(conduit);
    }
    if let Some(watchdog) = platform.bcm2835_watchdog {
        // SAFETY: the device tree names the PM block; with the MMU off its
        // physical address reaches it.
        unsafe { crate::drivers::bcm2835_pm::power_off(watchdog.start as usize) };
    }
    cpu::park()
}
