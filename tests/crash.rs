//! Deliberate faults inside Duet end in a decoded crash report and a stopped
//! machine, never a hang. Uses the `fault-injection` build, where
//! `duet.fault=<kind>[@cpu]` on the boot command line commits the fault.

use duet_tests::{status, Ending, Machine, Options, Variant, BOOT_TIMEOUT};

/// Boots with `duet.fault=fault` and waits for the machine to stop, after
/// checking that Duet halted rather than powered off.
fn crash(fault: &str) -> Machine {
    let options = Options { append: Some(format!("duet.fault={fault}")), ..Options::default() };
    let mut machine = Machine::boot(Variant::FaultInjection, &options);
    machine.wait(BOOT_TIMEOUT);
    if Ending::of(&machine.console()) != Ending::Halted {
        machine.fail("Duet did not halt");
    }
    machine.forbid(status::POWER_OFF);
    machine
}

#[test]
fn data_abort_on_the_boot_cpu_is_decoded() {
    let mut machine = crash("data-abort");
    let far = format!("FAR_EL2  {:#018x}", duet::fault::UNMAPPED_ADDRESS);
    machine.require(&[
        "duet: HALTED: unexpected synchronous exception from EL2 using SP_EL0 on cpu 0",
        "exception: EC 0x25: data abort without a change in exception level",
        "(translation fault at level 0)",
        &far,
        "ELR_EL2  0x",
        "SPSR_EL2 0x",
        " x0  0x",
        " x30 0x",
        " sp  0x",
    ]);
}

#[test]
fn undefined_instruction_on_a_secondary_cpu_names_that_cpu() {
    let mut machine = crash("undefined@2");
    machine.require(&[
        "cpu2 online at EL2",
        "duet: HALTED: unexpected synchronous exception from EL2 using SP_EL0 on cpu 2",
        "exception: EC 0x00: unknown reason (undefined instruction)",
        "ESR_EL2  0x0000000002000000",
    ]);
}

#[test]
fn stack_overflow_hits_the_guard_page_and_is_reported() {
    let mut machine = crash("stack-overflow@1");
    machine.require(&[
        "on cpu 1",
        "data abort without a change in exception level",
        "the address is in a stack guard page: a stack overflowed",
    ]);
}

#[test]
fn panic_is_reported_with_its_message_and_cpu() {
    let mut machine = crash("panic@3");
    machine.require(&[
        "duet: HALTED: panic on cpu 3: panicked at",
        "deliberate panic (duet.fault=panic)",
    ]);
}
