//! The VMs of this boot, built from the persona package, and the loop every
//! physical CPU runs once Duet is up: run the vCPU placed on it, or sleep.
//! Bare metal only.

use super::device_tree::GicVersion;
use super::instance::{GuestGic, Vm};
use super::run::{self, Cpus};
use crate::arch::aarch64::{cpu, gic, mmu};
use crate::mm::regions::Region;
use crate::personas::format::MAX_VMS;
use crate::personas::PersonaPackage;
use crate::sched::energy::{self, CpuAccount, Report, METER};
use crate::sched::power::Scene;
use crate::sched::{Placement, VcpuId, KICK_SGI};
use crate::vm::console_mux::Input;
use crate::{boot, console, machine, print, println, smp, status};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use spin::Once;

static VMS: Once<Vec<Vm>> = Once::new();
static PLACEMENT: Once<Placement> = Once::new();
/// The counter when the VMs were placed: energy is counted from then.
static STARTED_AT: Once<u64> = Once::new();

/// Builds the VMs the persona package describes and places their vCPUs;
/// returns whether there is anything to run. Errors stop Duet with a message
/// that names the problem.
pub fn start(package: Option<Region>) -> bool {
    let Some(package) = package else {
        println!("duet: no persona package was loaded (QEMU: -initrd FILE); no VMs to run");
        return false;
    };
    // SAFETY: the bootloader loaded the package there; Duet keeps that memory
    // out of the free set and never writes it.
    let bytes =
        unsafe { core::slice::from_raw_parts(package.start as *const u8, package.size() as usize) };
    let package = match PersonaPackage::parse(bytes) {
        Ok(package) => package,
        Err(e) => halt(format_args!("the persona package is unusable: {e}")),
    };
    super::backends::start(&package);
    let mut vms = Vec::new();
    for (index, spec) in package.vms().iter().enumerate() {
        let mib = u64::from(spec.memory_mib);
        let Some(ram) = boot::FREE_RAM.lock().allocate(mib << 20, 2 << 20) else {
            halt(format_args!("vm {}: no {mib} MiB of free RAM left", spec.name));
        };
        let gic = match (gic::guest_version(), gic::virtual_cpu_interface()) {
            (GicVersion::V2, Some(gicv)) => GuestGic::V2 { virtual_cpu: gicv },
            _ => GuestGic::V3,
        };
        match Vm::build(index, spec, ram, mmu::physical_address_bits(), gic) {
            Ok(vm) => {
                println!(
                    "duet: vm {} ({:?}): {} vcpus, {mib} MiB at {ram:?}, command line {:?}",
                    vm.name, spec.role, spec.vcpus, spec.cmdline
                );
                vms.push(vm);
            }
            Err(e) => halt(format_args!("vm {}: {e}", spec.name)),
        }
    }
    let counts: Vec<usize> = vms.iter().map(Vm::vcpu_count).collect();
    // Foreground vCPUs on the biggest CPUs, background ones on the smallest.
    let capacities: Vec<u32> = (0..smp::online())
        .map(|c| boot::platform().map(|p| p.cpu_power(smp::mpidr_of(c)).capacity).unwrap_or(1024))
        .collect();
    let placement = match Placement::by_capacity(&counts, package.foreground(), &capacities) {
        Ok(placement) => placement,
        Err(e) => halt(format_args!("{e}")),
    };
    console::set_vm_count(vms.len());
    crate::sched::power::SCENE.set(Scene { foreground: package.foreground(), screen_on: true });
    println!("duet: vm {} is in the foreground", vms[package.foreground()].name);
    let vms = VMS.call_once(|| vms);
    PLACEMENT.call_once(|| placement);
    STARTED_AT.call_once(cpu::counter);
    print_energy_model();
    // With a screen, the lock screen shows from now on.
    super::screen::boot(vms, &SystemCpus { me: cpu::id() });
    for other in 1..smp::online() {
        gic::send_sgi(KICK_SGI, other);
    }
    true
}

fn halt(reason: core::fmt::Arguments) -> ! {
    println!("{} {reason}", status::HALTED);
    machine::stop()
}

/// What every CPU does once Duet is up: run the vCPUs placed on it, or,
/// with none, sleep (in its deepest standby idle state).
pub fn cpu_loop(me: usize) -> ! {
    loop {
        if let (Some(placement), Some(vms)) = (PLACEMENT.get(), VMS.get()) {
            let placed: Vec<(&Vm, usize)> =
                placement.queue(me).iter().map(|id| (&vms[id.vm], id.vcpu)).collect();
            if !placed.is_empty() {
                super::cpu::run_cpu(placed, &SystemCpus { me });
            }
        }
        // The screen's idle timeout is the boot CPU's, vCPUs or not.
        crate::arch::aarch64::timer::arm_at(super::screen::deadline());
        super::cpu::sleep_unplaced();
        while let Some(intid) = gic::acknowledge() {
            if intid == super::layout::TIMER_HYP_INTID {
                super::cpu::hypervisor_timer_fired();
                SystemCpus { me }.screen_tick();
            }
            // The NIC's interrupt comes to the boot CPU even when it has no
            // vCPU left: frames from the network still reach running VMs.
            if Some(intid) == crate::drivers::virtio_net::intid() {
                crate::drivers::virtio_net::interrupt();
                SystemCpus { me }.frames_waiting();
            }
            // So do the touch panel's and the keyboard's.
            if super::screen::owns_interrupt(intid) {
                SystemCpus { me }.screen_input(intid);
            }
            gic::end_of_interrupt(intid);
        }
    }
}

struct SystemCpus {
    me: usize,
}

impl Cpus for SystemCpus {
    fn kick(&self, vm: &Vm, vcpu: usize) {
        let placement = PLACEMENT.get().expect("placed before running");
        match placement.cpu_of(VcpuId { vm: vm.index, vcpu }) {
            Some(cpu) if cpu != self.me => gic::send_sgi(KICK_SGI, cpu),
            _ => {}
        }
    }

    fn vm_stopped(&self, _vm: &Vm) {
        let vms = VMS.get().expect("VMs exist while one runs");
        if vms.iter().all(|vm| !vm.is_running()) {
            print_counters();
            machine::power_off(format_args!("every VM has powered off"));
        }
    }

    fn console_input(&self) {
        let Some(vms) = VMS.get() else { return };
        loop {
            let focus = &vms[console::focus()];
            if !focus.uart.lock().has_input_room() {
                // Leave the rest in the UART until the guest reads.
                console::set_input_interrupt(false);
                return;
            }
            let Some(byte) = console::read_byte() else { break };
            match console::interpret(byte) {
                Input::ToVm { vm, byte } => {
                    let target = &vms[vm];
                    let mut uart = target.uart.lock();
                    uart.push_input(byte);
                    let level = uart.interrupt_level();
                    drop(uart);
                    run::set_uart_line(target, level, self);
                }
                Input::FocusMoved { vm } => {
                    println!("duet: console input now goes to vm {}", vms[vm].name);
                    console::show_focused_line();
                }
                Input::ShowCounters => print_counters(),
                Input::ToggleScreen => {
                    if !super::screen::toggle(vms, self) {
                        toggle_screen();
                    }
                }
                Input::Nothing => {}
            }
        }
        console::set_input_interrupt(true);
    }

    fn screen_input(&self, intid: u32) {
        let Some(vms) = VMS.get() else { return };
        super::screen::input_interrupt(intid, vms, self);
    }

    fn screen_tick(&self) {
        let Some(vms) = VMS.get() else { return };
        super::screen::tick(vms, self);
    }

    fn frames_waiting(&self) {
        let (Some(network), Some(vms)) = (crate::net::NETWORK.get(), VMS.get()) else { return };
        let pending = network.take_pending();
        for (index, vm) in vms.iter().enumerate() {
            if pending & (1 << index) != 0 && vm.is_running() {
                super::virtio::deliver_received_frames(vm, self);
            }
        }
    }
}

/// Without a screen Duet drives: turns the screen off (every persona in
/// the background) or on again. With one, the console key locks and
/// unlocks it instead (`vm::screen::toggle`).
fn toggle_screen() {
    let scene = crate::sched::power::SCENE.load();
    change_scene(Scene { screen_on: !scene.screen_on, ..scene });
}

/// Sets the scene (which persona is in the foreground, whether the screen
/// is on), says so on the console, and makes every CPU look at its vCPUs
/// again under it. Console keys, the lock screen and persona switches all
/// come through here.
pub fn change_scene(scene: Scene) {
    crate::sched::power::SCENE.set(scene);
    let Some(vms) = VMS.get() else { return };
    if scene.screen_on {
        println!("duet: screen on: vm {} is in the foreground", vms[scene.foreground].name);
    } else {
        println!("duet: screen off: every VM is in the background");
    }
    for other in (0..smp::online()).filter(|&c| c != cpu::id()) {
        gic::send_sgi(KICK_SGI, other);
    }
}

/// Prints every VM's counters, each CPU's idle sleeps and interrupts from
/// Duet's own timer, each VM's energy line, and how much of Duet's heap is
/// in use.
pub fn print_counters() {
    let Some(vms) = VMS.get() else { return };
    let frequency = cpu::counter_frequency();
    let uptime_ms = cpu::counter() * 1000 / frequency.max(1);
    println!("duet: uptime {}.{:03} s", uptime_ms / 1000, uptime_ms % 1000);
    for vm in vms {
        println!("duet: {}", vm.counters.report(vm.name, frequency));
    }
    // Lines of their own: readers parse the lines above to their end.
    for vm in vms {
        println!("duet: vm {}: display flushes {}", vm.name, vm.counters.display_flushes());
    }
    for cpu in 0..smp::online() {
        let (sleeps, timer) = super::cpu::cpu_counters(cpu);
        println!("duet: cpu{cpu}: idle sleeps {sleeps}, Duet timer interrupts {timer}");
        let states = super::cpu::idle_state_counters(cpu);
        if states.iter().any(|&n| n > 0) {
            print!("duet: cpu{cpu}: idle-state sleeps");
            for (i, n) in states.iter().enumerate() {
                print!(" state{i} {n}");
            }
            println!();
        }
    }
    if let Some(network) = crate::net::NETWORK.get() {
        let (drops, forwarded, uplink_errors) = network.counters();
        println!(
            "duet: switch: {forwarded} frames forwarded; dropped: {} forbidden, {} queue full, \
             {} spoofed, {} malformed; {uplink_errors} uplink send errors",
            drops.forbidden, drops.queue_full, drops.spoofed, drops.malformed
        );
    }
    super::screen::print_counters();
    print_energy();
    // The heap line comes last: readers (xtask bench) take it as the end.
    let (used, total) = crate::mm::heap::usage();
    println!("duet: heap {} KiB in use of {} KiB", used / 1024, total / 1024);
}

/// Says what each CPU's energy model is and where it came from.
fn print_energy_model() {
    let Some(platform) = boot::platform() else { return };
    for c in 0..smp::online() {
        let power = platform.cpu_power(smp::mpidr_of(c));
        let states = power.standby_states().len();
        print!(
            "duet: cpu{c}: capacity {}, active {} mW ({}), {states} standby idle state{}, runs",
            power.capacity,
            power.active_uw / 1000,
            if power.from_device_tree { "device tree" } else { "default" },
            if states == 1 { "" } else { "s" },
        );
        let placed = PLACEMENT.get().map(|p| p.queue(c)).unwrap_or_default();
        let vms = VMS.get().map(Vec::as_slice).unwrap_or_default();
        for id in placed {
            print!(" {}/{}", vms[id.vm].name, id.vcpu);
        }
        println!("{}", if placed.is_empty() { " nothing" } else { "" });
    }
}

/// Prints one machine-readable line per VM with its CPU time, wakeups and
/// estimated energy since the VMs started (`sched::energy`), and a `total`
/// line that is their sum.
pub fn print_energy() {
    let (Some(vms), Some(placement), Some(&started)) =
        (VMS.get(), PLACEMENT.get(), STARTED_AT.get())
    else {
        return;
    };
    let frequency = cpu::counter_frequency();
    let now = cpu::counter();
    let elapsed = now.wrapping_sub(started);
    let platform = crate::boot::platform();
    let accounts: Vec<CpuAccount> = (0..smp::online())
        .map(|c| {
            let mut vcpus = [0u32; MAX_VMS];
            for id in placement.queue(c) {
                vcpus[id.vm] += 1;
            }
            let idle = if placement.queue(c).is_empty() { elapsed } else { METER.idle(c, now) };
            let power = platform.map(|p| p.cpu_power(smp::mpidr_of(c))).unwrap_or_default();
            CpuAccount { power, elapsed, idle: idle.min(elapsed), vcpus }
        })
        .collect();
    let energy = energy::attribute(&accounts, vms.len(), |v, c| METER.guest(v, c), frequency);
    let mut total = Report { persona: "total", cpu_ms: 0, wakeups: 0, energy_uj: 0 };
    for (vm, &energy_uj) in vms.iter().zip(&energy) {
        let ticks = vm.counters.guest_ticks.load(Ordering::Relaxed);
        let cpu_ms = ticks.saturating_mul(1000) / frequency.max(1);
        let wakeups = vm.counters.wakeups.load(Ordering::Relaxed);
        println!("{}", Report { persona: vm.name, cpu_ms, wakeups, energy_uj });
        total.cpu_ms += cpu_ms;
        total.wakeups += wakeups;
        total.energy_uj += energy_uj;
    }
    println!("{total}");
}
