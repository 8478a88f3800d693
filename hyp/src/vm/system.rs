//! The VMs of this boot, built from the persona package, and the loop every
//! physical CPU runs once Duet is up: run the vCPU placed on it, or sleep.
//! Bare metal only.

use super::device_tree::GicVersion;
use super::instance::{GuestGic, Vm};
use super::run::{self, Cpus};
use crate::arch::aarch64::{cpu, gic, mmu};
use crate::mm::regions::Region;
use crate::personas::PersonaPackage;
use crate::sched::{Placement, VcpuId, KICK_SGI};
use crate::vm::console_mux::Input;
use crate::{boot, console, machine, println, smp, status};
use alloc::vec::Vec;
use spin::Once;

static VMS: Once<Vec<Vm>> = Once::new();
static PLACEMENT: Once<Placement> = Once::new();

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
    let placement = match Placement::new(&counts, smp::online()) {
        Ok(placement) => placement,
        Err(e) => halt(format_args!("{e}")),
    };
    console::set_vm_count(vms.len());
    VMS.call_once(|| vms);
    PLACEMENT.call_once(|| placement);
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
/// with none, sleep.
pub fn cpu_loop(me: usize) -> ! {
    loop {
        if let (Some(placement), Some(vms)) = (PLACEMENT.get(), VMS.get()) {
            let placed: Vec<(&Vm, usize)> =
                placement.queue(me).iter().map(|id| (&vms[id.vm], id.vcpu)).collect();
            if !placed.is_empty() {
                super::cpu::run_cpu(placed, &SystemCpus { me });
            }
        }
        cpu::wait_for_interrupt();
        while let Some(intid) = gic::acknowledge() {
            // The NIC's interrupt comes to the boot CPU even when it has no
            // vCPU left: frames from the network still reach running VMs.
            if Some(intid) == crate::drivers::virtio_net::intid() {
                crate::drivers::virtio_net::interrupt();
                SystemCpus { me }.frames_waiting();
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
                Input::Nothing => {}
            }
        }
        console::set_input_interrupt(true);
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

/// Prints every VM's counters, each CPU's idle sleeps and interrupts from
/// Duet's own timer, and how much of Duet's heap is in use.
pub fn print_counters() {
    let Some(vms) = VMS.get() else { return };
    let frequency = cpu::counter_frequency();
    for vm in vms {
        println!("duet: {}", vm.counters.report(vm.name, frequency));
    }
    for cpu in 0..smp::online() {
        let (sleeps, timer) = super::cpu::cpu_counters(cpu);
        println!("duet: cpu{cpu}: idle sleeps {sleeps}, Duet timer interrupts {timer}");
    }
    if let Some(network) = crate::net::NETWORK.get() {
        let (drops, forwarded, uplink_errors) = network.counters();
        println!(
            "duet: switch: {forwarded} frames forwarded; dropped: {} forbidden, {} queue full, \
             {} spoofed, {} malformed; {uplink_errors} uplink send errors",
            drops.forbidden, drops.queue_full, drops.spoofed, drops.malformed
        );
    }
    let (used, total) = crate::mm::heap::usage();
    println!("duet: heap {} KiB in use of {} KiB", used / 1024, total / 1024);
}
