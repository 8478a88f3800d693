//! The BCM2711's GPIO function select, for one job: putting the PL011
//! (UART0), Duet's console, on the 40-pin header's GPIO 14 (TX) and 15 (RX).
//!
//! The Raspberry Pi 4's firmware gives those pins to the mini UART and
//! wires the PL011 to the Bluetooth chip (GPIO 30 to 33) unless an overlay
//! says otherwise; Linux then moves pins as the device tree's pinctrl nodes
//! say. Duet reads no pinctrl, so it moves the two pins itself, and takes
//! the PL011 off the Bluetooth pins so that two pins never drive its input.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    Gpio {
        /// GPFSEL0..5: three bits per pin, ten pins per register.
        (0x00 => fsel: [ReadWrite<u32>; 6]),
        (0x18 => _reserved0),
        /// GPIO_PUP_PDN_CNTRL_REG0..3: two bits per pin, sixteen per register.
        (0xe4 => pull: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

const FUNCTION_INPUT: u32 = 0b000;
const FUNCTION_ALT0: u32 = 0b100;
const PULL_NONE: u32 = 0b00;
const PULL_UP: u32 = 0b01;
/// UART0 on the header: TXD0 and RXD0 are ALT0 of GPIO 14 and 15.
const HEADER_TX: usize = 14;
const HEADER_RX: usize = 15;
/// UART0 on the Bluetooth pins (the firmware's default): GPIO 32 and 33.
const BLUETOOTH_TX: usize = 32;
const BLUETOOTH_RX: usize = 33;

/// Routes UART0 to GPIO 14/15 (RX pulled up, as an idle line is high).
///
/// # Safety
/// `base` must be the BCM2711 GPIO block, reachable as device memory (or
/// with the MMU off), and nothing else may be changing pin functions.
pub unsafe fn route_uart0_to_header(base: usize) {
    // SAFETY: the caller's contract.
    let gpio = unsafe { &*(base as *const Gpio) };
    for pin in [BLUETOOTH_TX, BLUETOOTH_RX] {
        set_function(gpio, pin, FUNCTION_INPUT);
    }
    set_pull(gpio, HEADER_TX, PULL_NONE);
    set_pull(gpio, HEADER_RX, PULL_UP);
    for pin in [HEADER_TX, HEADER_RX] {
        set_function(gpio, pin, FUNCTION_ALT0);
    }
}

fn set_function(gpio: &Gpio, pin: usize, function: u32) {
    let (register, shift) = (&gpio.fsel[pin / 10], (pin % 10) * 3);
    register.set(register.get() & !(0b111 << shift) | function << shift);
}

fn set_pull(gpio: &Gpio, pin: usize, pull: u32) {
    let (register, shift) = (&gpio.pull[pin / 16], (pin % 16) * 2);
    register.set(register.get() & !(0b11 << shift) | pull << shift);
}
