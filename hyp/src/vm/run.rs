//! A physical CPU running its vCPU: entering the guest, handling each exit,
//! and sleeping while the vCPU waits for an interrupt. Bare metal only.

use super::counters::ExitReason;
use super::instance::{Power, Vm};
use super::layout;
use super::mmio::{Access, MmioDevice, MmioError};
use super::psci;
use super::sysreg::{SysRegAccess, ICC_SGI1R_EL1};
use super::vcpu::{self, GuestFault, GuestRegs};
use crate::arch::aarch64::{gic, guest, idregs};
use crate::arch::esr::{Esr, ExceptionClass};
use crate::personas::ResetPolicy;
use crate::sched::KICK_SGI;
use crate::{console, println};
use core::sync::atomic::Ordering;
use log::warn;

/// Guest faults logged per VM before Duet stops logging them.
const FAULT_LOG_LIMIT: u32 = 32;

/// What the CPU running a vCPU needs to reach the others.
pub trait Cpus {
    /// Makes the CPU that runs vCPU `vcpu` of `vm` look at it again.
    fn kick(&self, vm: &Vm, vcpu: usize);
    /// Called when `vm` has powered off.
    fn vm_stopped(&self, vm: &Vm);
    /// Moves typed bytes to the VM with the console focus.
    fn console_input(&self);
    /// Tells the VMs whose switch ports have new frames.
    fn frames_waiting(&self);
    /// Routes what the screen's input device with interrupt `intid` has.
    fn screen_input(&self, intid: u32);
    /// Duet's timer fired: the screen's idle timeout may be due.
    fn screen_tick(&self);
}

/// What the CPU loop does after an exit has been handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Run the vCPU again.
    Continue,
    /// The vCPU waits for an interrupt (WFI, CPU_SUSPEND).
    Wait,
    /// Let the CPU loop choose again: the vCPU spins on a lock (WFE), or
    /// its power state changed (`CPU_OFF`, `CPU_ON`, a reset).
    Yield,
}

/// Handles one exit of vCPU `index` of `vm`.
pub fn handle_exit(
    vm: &Vm,
    index: usize,
    regs: &mut GuestRegs,
    exit: &guest::Exit,
    cpus: &impl Cpus,
) -> After {
    let after = match exit.kind {
        guest::ExitKind::Synchronous => handle_trap(vm, index, regs, exit, cpus),
        guest::ExitKind::Irq | guest::ExitKind::Fiq => {
            vm.counters.exit(ExitReason::Interrupt);
            take_interrupts(Some((vm, index)), cpus);
            After::Continue
        }
        guest::ExitKind::SError => {
            println!(
                "duet: vm {}: SError from vcpu {index} (ESR {:#x}); stopping the VM",
                vm.name, exit.esr
            );
            stop_vm(vm, cpus);
            After::Continue
        }
    };
    // A frame this guest sent may be waiting for another VM.
    if crate::net::NETWORK.get().is_some_and(|n| n.has_pending()) {
        cpus.frames_waiting();
    }
    after
}

/// Loads the list registers with what the vGIC has for this vCPU and
/// returns how many it used, from the first; `values` (as many as the
/// hardware has) is scratch space the fill overwrites, kept by the caller
/// so that no entry pays for zeroing it. The hardware's list registers
/// must all be empty (as [`save_list_registers`] and [`clear_list_registers`]
/// leave them): only the used ones are written.
pub fn load_list_registers(vm: &Vm, vcpu: usize, values: &mut [u64]) -> usize {
    let fill = vm.vgic.lock().fill_list_registers(vcpu, values);
    for (n, &value) in values[..fill.used].iter().enumerate() {
        gic::write_list_register(n, value);
    }
    gic::set_underflow_interrupt(fill.more);
    fill.used
}

/// Empties every list register (`count` of them): at a CPU's start, since
/// they reset to unknown values.
pub fn clear_list_registers(count: usize) {
    for n in 0..count {
        gic::write_list_register(n, 0);
    }
}

/// Folds the list registers back into the vGIC after an exit and empties
/// them; `values` holds the ones [`load_list_registers`] used (the others
/// stayed empty: the guest cannot fill a list register).
pub fn save_list_registers(vm: &Vm, vcpu: usize, values: &mut [u64]) {
    for (n, value) in values.iter_mut().enumerate() {
        *value = gic::read_list_register(n);
        // The state now lives in the model. Emptying the hardware's copy also
        // drops the maintenance interrupt (an EOI'd level interrupt keeps it
        // asserted until its list register is rewritten).
        gic::write_list_register(n, 0);
    }
    gic::set_underflow_interrupt(false);
    vm.vgic.lock().sync_from_list_registers(vcpu, values);
}

/// Most interrupts taken in one go, so that a stuck source cannot keep a
/// CPU from its vCPU for ever.
const INTERRUPT_BATCH: usize = 64;

/// Acknowledges and handles pending physical interrupts; `loaded` is the
/// vCPU whose state is in this CPU (its virtual timer is the one firing).
pub fn take_interrupts(loaded: Option<(&Vm, usize)>, cpus: &impl Cpus) {
    for _ in 0..INTERRUPT_BATCH {
        let Some(intid) = gic::acknowledge() else { break };
        match intid {
            KICK_SGI | layout::GIC_MAINTENANCE_INTID => {}
            layout::TIMER_HYP_INTID => {
                super::cpu::hypervisor_timer_fired();
                cpus.screen_tick();
            }
            layout::TIMER_VIRT_INTID => {
                // Level-triggered: mask it until the guest re-arms the timer,
                // and give the guest its virtual copy.
                guest::mask_virtual_timer();
                if let Some((vm, vcpu)) = loaded {
                    // Cannot fail: a PPI on this VM's own vCPU.
                    let _ = vm.vgic.lock().raise(layout::TIMER_VIRT_INTID, vcpu);
                }
            }
            other if Some(other) == crate::boot::console_intid() => cpus.console_input(),
            other if Some(other) == crate::drivers::virtio_net::intid() => {
                crate::drivers::virtio_net::interrupt();
                cpus.frames_waiting();
            }
            other if super::screen::owns_interrupt(other) => cpus.screen_input(other),
            other => warn!("unexpected physical interrupt {other}"),
        }
        gic::end_of_interrupt(intid);
    }
}

pub fn set_uart_line(vm: &Vm, level: bool, cpus: &impl Cpus) {
    let mut vgic = vm.vgic.lock();
    // Cannot fail: the UART's SPI exists in every VM.
    let _ = vgic.set_level(layout::UART_INTID, 0, level);
    let kicks = vgic.take_kicks();
    drop(vgic);
    kick_all(vm, kicks, cpus);
}

pub(super) fn kick_all(vm: &Vm, mask: u32, cpus: &(impl Cpus + ?Sized)) {
    for vcpu in (0..vm.vcpu_count()).filter(|v| mask & (1 << v) != 0) {
        cpus.kick(vm, vcpu);
    }
}

fn handle_trap(
    vm: &Vm,
    vcpu: usize,
    regs: &mut GuestRegs,
    exit: &guest::Exit,
    cpus: &impl Cpus,
) -> After {
    let esr = Esr(exit.esr);
    let wide = esr.is_32bit_instruction();
    vm.counters.exit(match esr.class() {
        ExceptionClass::Hvc64 | ExceptionClass::Smc64 => ExitReason::Call,
        ExceptionClass::DataAbortLowerEl => ExitReason::Mmio,
        ExceptionClass::SysRegister => ExitReason::SystemRegister,
        ExceptionClass::WfiWfe => ExitReason::Wait,
        _ => ExitReason::Fault,
    });
    match esr.class() {
        ExceptionClass::Hvc64 => smccc(vm, vcpu, regs, cpus),
        ExceptionClass::Smc64 => {
            // A trapped SMC returns to the SMC itself: step over it.
            regs.skip_instruction(wide);
            smccc(vm, vcpu, regs, cpus)
        }
        ExceptionClass::DataAbortLowerEl => {
            data_abort(vm, vcpu, regs, exit, cpus);
            After::Continue
        }
        ExceptionClass::InstructionAbortLowerEl => {
            let kind = GuestFault::InstructionAbort { address: exit.far };
            fault(vm, vcpu, regs, kind, wide, esr, &"executing where there is no memory");
            After::Continue
        }
        ExceptionClass::SysRegister => {
            system_register(vm, vcpu, regs, esr, cpus);
            After::Continue
        }
        ExceptionClass::WfiWfe => {
            regs.skip_instruction(wide);
            // ISS bit 0 tells WFE (1) from WFI (0).
            if esr.iss() & 1 != 0 {
                After::Yield
            } else {
                After::Wait
            }
        }
        _ => {
            let why = "an instruction Duet does not handle";
            fault(vm, vcpu, regs, GuestFault::Undefined, wide, esr, &why);
            After::Continue
        }
    }
}

fn smccc(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, cpus: &impl Cpus) -> After {
    let call = psci::Call::from_registers([regs.x[0], regs.x[1], regs.x[2], regs.x[3]]);
    match psci::handle(&call, &VmVcpus(vm)) {
        psci::Outcome::Return(value) => regs.x[0] = value,
        psci::Outcome::CpuOn { target, entry, context } => {
            regs.x[0] = cpu_on(vm, target, entry, context, cpus);
            return After::Yield;
        }
        psci::Outcome::CpuOff => {
            *vm.power[vcpu].lock() = Power::Off;
            return After::Yield;
        }
        psci::Outcome::CpuSuspend => {
            regs.x[0] = psci::SUCCESS;
            return After::Wait;
        }
        psci::Outcome::SystemOff => {
            println!("duet: vm {} powered off", vm.name);
            stop_vm(vm, cpus);
            return After::Yield;
        }
        psci::Outcome::SystemReset => {
            reset_vm(vm, vcpu, cpus);
            return After::Yield;
        }
    }
    After::Continue
}

/// Starts vCPU `target` at `entry`, if it is still off and `entry` is RAM.
fn cpu_on(vm: &Vm, target: usize, entry: u64, context: u64, cpus: &impl Cpus) -> u64 {
    use smccc::psci::Error;
    if !in_range(entry, layout::RAM_BASE, vm.ram.size()) {
        return psci::error_value(Error::InvalidAddress);
    }
    let mut power = vm.power[target].lock();
    match *power {
        Power::On => return psci::error_value(Error::AlreadyOn),
        Power::Starting { .. } => return psci::error_value(Error::OnPending),
        Power::Off => *power = Power::Starting { entry, context },
    }
    drop(power);
    cpus.kick(vm, target);
    psci::SUCCESS
}

/// Resets less than this many seconds after the VM started count as "in a
/// row" towards its restart limit; a longer run starts the count afresh.
const RESTARTS_IN_A_ROW_WINDOW_S: u64 = 60;

/// How long a reset or power-off waits for the other vCPUs to leave the guest.
const RESET_TIMEOUT_MS: u64 = 1000;

/// Restarts `vm` from its images, as a machine reset would: every vCPU
/// leaves the guest, RAM and devices start over, vCPU 0 boots again.
fn reset_vm(vm: &Vm, me: usize, cpus: &impl Cpus) {
    if vm.spec().on_reset == ResetPolicy::StayOff {
        println!("duet: vm {} reset itself; its policy is stay-off, so it stays off", vm.name);
        return stop_vm(vm, cpus);
    }
    let restarts = vm.count_restart(RESTARTS_IN_A_ROW_WINDOW_S);
    if restarts > vm.spec().restart_limit {
        println!(
            "duet: vm {} reset itself {restarts} times in a row (limit {}); it stays off",
            vm.name,
            vm.spec().restart_limit
        );
        return stop_vm(vm, cpus);
    }
    println!("duet: vm {} is restarting", vm.name);
    for vcpu in 0..vm.vcpu_count() {
        *vm.power[vcpu].lock() = Power::Off;
        cpus.kick(vm, vcpu);
    }
    if !vm.wait_out_of_guest(Some(me), RESET_TIMEOUT_MS) {
        println!("duet: vm {}: a vCPU did not stop for the reset; stopping the VM", vm.name);
        return stop_vm(vm, cpus);
    }
    match vm.load() {
        Ok(()) => cpus.kick(vm, 0),
        Err(e) => {
            println!("duet: vm {}: cannot restart: {e}; stopping it", vm.name);
            stop_vm(vm, cpus);
        }
    }
}

/// Stops every vCPU of `vm` and, once none is in the guest, wipes its RAM.
fn stop_vm(vm: &Vm, cpus: &impl Cpus) {
    if !vm.running.swap(false, Ordering::AcqRel) {
        return;
    }
    for vcpu in 0..vm.vcpu_count() {
        *vm.power[vcpu].lock() = Power::Off;
        cpus.kick(vm, vcpu);
    }
    if vm.wait_out_of_guest(None, RESET_TIMEOUT_MS) {
        vm.wipe();
    } else {
        println!("duet: vm {}: a vCPU did not leave the guest; its RAM is not wiped", vm.name);
    }
    cpus.vm_stopped(vm);
}

fn data_abort(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, exit: &guest::Exit, cpus: &impl Cpus) {
    let esr = Esr(exit.esr);
    let wide = esr.is_32bit_instruction();
    let address = exit.fault_ipa();
    let abort = esr.abort().expect("a data abort has an abort syndrome");
    let access = match Access::decode(abort, address) {
        Ok(access) => access,
        Err(e) => {
            return fault(
                vm,
                vcpu,
                regs,
                GuestFault::DataAbort { address: exit.far },
                wide,
                esr,
                &e,
            );
        }
    };
    match mmio(vm, vcpu, &access, regs, cpus) {
        Ok(()) => regs.skip_instruction(wide),
        Err(reason) => {
            fault(vm, vcpu, regs, GuestFault::DataAbort { address: exit.far }, wide, esr, &reason)
        }
    }
}

/// Performs an emulated MMIO access; the reason if it cannot be done.
fn mmio(
    vm: &Vm,
    vcpu: usize,
    access: &Access,
    regs: &mut GuestRegs,
    cpus: &impl Cpus,
) -> Result<(), &'static str> {
    let address = access.address;
    let value = access.store_value(regs.reg(access.register));
    let result = if in_range(address, layout::UART_BASE, layout::UART_SIZE) {
        let offset = address - layout::UART_BASE;
        let mut uart = vm.uart.lock();
        let result = perform(&mut *uart, vcpu, offset, access, value);
        let mut output = [0u8; 64];
        let mut written = 0;
        for byte in uart.take_output() {
            if written == output.len() {
                console::guest_output(vm.index, vm.name, &output);
                written = 0;
            }
            output[written] = byte;
            written += 1;
        }
        console::guest_output(vm.index, vm.name, &output[..written]);
        let room = uart.has_input_room();
        let level = uart.interrupt_level();
        drop(uart);
        set_uart_line(vm, level, cpus);
        // Input held back because this VM's receive FIFO was full can come now.
        if room && !console::input_interrupt_enabled() && console::focus() == vm.index {
            cpus.console_input();
        }
        result
    } else if in_range(address, layout::GICD_BASE, layout::GICD_SIZE) {
        let mut vgic = vm.vgic.lock();
        let result =
            perform(&mut vgic.distributor(), vcpu, address - layout::GICD_BASE, access, value);
        let kicks = vgic.take_kicks();
        drop(vgic);
        kick_all(vm, kicks, cpus);
        result
    } else if in_range(address, layout::GICR_BASE, layout::GICR_STRIDE * vm.vcpu_count() as u64) {
        let mut vgic = vm.vgic.lock();
        let result =
            perform(&mut vgic.redistributors(), vcpu, address - layout::GICR_BASE, access, value);
        let kicks = vgic.take_kicks();
        drop(vgic);
        kick_all(vm, kicks, cpus);
        result
    } else if in_range(
        address,
        layout::VIRTIO_BASE,
        layout::VIRTIO_STRIDE * u64::from(layout::VIRTIO_SLOTS),
    ) {
        super::virtio::access(vm, vcpu, access, value, cpus)
            .ok_or("a virtio slot with no device behind it")?
    } else {
        return Err("an address with neither memory nor a device");
    };
    match result {
        Ok(Some(loaded)) => {
            regs.set_reg(access.register, access.load_result(loaded));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            log_fault(vm, vcpu, format_args!("MMIO at {address:#x}: {e}"));
            Err("a device register access the device refuses")
        }
    }
}

pub(super) fn perform(
    device: &mut impl MmioDevice,
    vcpu: usize,
    offset: u64,
    access: &Access,
    value: u64,
) -> Result<Option<u64>, MmioError> {
    if access.write {
        device.write(vcpu, offset, access.size, value).map(|()| None)
    } else {
        device.read(vcpu, offset, access.size).map(Some)
    }
}

fn in_range(address: u64, base: u64, size: u64) -> bool {
    address >= base && address - base < size
}

fn system_register(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, esr: Esr, cpus: &impl Cpus) {
    let wide = esr.is_32bit_instruction();
    let access = SysRegAccess::decode(esr.iss());
    if access.register == ICC_SGI1R_EL1 && !access.read {
        let mut vgic = vm.vgic.lock();
        // A malformed request (no such target) is dropped, as hardware does.
        let _ = vgic.send_sgi(vcpu, regs.reg(access.rt));
        let kicks = vgic.take_kicks();
        drop(vgic);
        kick_all(vm, kicks, cpus);
        regs.skip_instruction(wide);
    } else if let Some((crm, op2)) = access.id_register() {
        let value = idregs::read(crm, op2).unwrap_or(0);
        regs.set_reg(access.rt, super::features::sanitise(crm, op2, value));
        regs.skip_instruction(wide);
    } else if access.is_debug() {
        // Self-hosted debug is not offered (the hardware is shared): the
        // registers read as zero and ignore writes, which is how Linux finds
        // a CPU with nothing to configure (it clears the OS lock at boot).
        if access.read {
            regs.set_reg(access.rt, 0);
        }
        regs.skip_instruction(wide);
    } else {
        fault(
            vm,
            vcpu,
            regs,
            GuestFault::Undefined,
            wide,
            esr,
            &"a system register Duet does not emulate",
        );
    }
}

/// Delivers `kind` to the guest (and logs why, within the VM's log budget).
fn fault(
    vm: &Vm,
    vcpu: usize,
    regs: &mut GuestRegs,
    kind: GuestFault,
    wide: bool,
    esr: Esr,
    why: &dyn core::fmt::Display,
) {
    log_fault(
        vm,
        vcpu,
        format_args!(
            "{why}: {} at pc {:#x} (ESR {:#x}); injecting {kind}",
            esr.class(),
            regs.pc,
            esr.0
        ),
    );
    let injected = vcpu::inject(regs, guest::guest_vbar(), kind, wide);
    guest::set_guest_exception_registers(
        injected.esr_el1,
        injected.far_el1,
        injected.elr_el1,
        injected.spsr_el1,
    );
    regs.pc = injected.pc;
    regs.pstate = injected.pstate;
}

fn log_fault(vm: &Vm, vcpu: usize, what: core::fmt::Arguments) {
    let logged = vm.faults_logged.fetch_add(1, Ordering::Relaxed);
    if logged < FAULT_LOG_LIMIT {
        warn!("vm {} vcpu {vcpu}: {what}", vm.name);
    } else if logged == FAULT_LOG_LIMIT {
        warn!("vm {}: more guest faults; no longer logging them", vm.name);
    }
}

/// The VM's vCPUs as PSCI asks about them.
struct VmVcpus<'a>(&'a Vm);

impl psci::VcpuStates for VmVcpus<'_> {
    fn count(&self) -> usize {
        self.0.vcpu_count()
    }

    fn power(&self, index: usize) -> psci::VcpuPower {
        match *self.0.power[index].lock() {
            Power::Off => psci::VcpuPower::Off,
            Power::Starting { .. } => psci::VcpuPower::OnPending,
            Power::On => psci::VcpuPower::On,
        }
    }
}
