//! The Arm PL011 UART: Duet's console on QEMU `virt` and Raspberry Pi boards.
//!
//! Duet keeps the line settings the firmware chose (QEMU needs none) and only
//! enables the transmitter and receiver, except where the board says the
//! firmware leaves the UART unset ([`Pl011::set_line`], the Raspberry Pi 4).

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    /// Data register: a received byte and its error flags.
    DR [
        DATA OFFSET(0) NUMBITS(8) [],
        ERRORS OFFSET(8) NUMBITS(4) []
    ],
    /// Flag register.
    FR [
        TXFE OFFSET(7) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Control register.
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// The PL011 register block.
    pub Registers {
        (0x000 => dr: ReadWrite<u32, DR::Register>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x024 => ibrd: ReadWrite<u32>),
        (0x028 => fbrd: ReadWrite<u32>),
        (0x02c => lcrh: ReadWrite<u32>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => ifls: ReadWrite<u32>),
        (0x038 => imsc: ReadWrite<u32>),
        (0x03c => ris: ReadOnly<u32>),
        (0x040 => mis: ReadOnly<u32>),
        (0x044 => icr: WriteOnly<u32>),
        (0x048 => @END),
    }
}

const IMSC_RX: u32 = 1 << 4;
const LCRH_WLEN_8: u32 = 0b11 << 5;
const LCRH_FEN: u32 = 1 << 4;

/// The PL011's baud divisor, clock / (16 * baud), as its integer part and
/// its fraction in 64ths, rounded to nearest.
pub fn baud_divisor(clock_hz: u32, baud: u32) -> (u32, u32) {
    let sixty_fourths = (u64::from(clock_hz) * 4 + u64::from(baud) / 2) / u64::from(baud);
    ((sixty_fourths / 64) as u32, (sixty_fourths % 64) as u32)
}
const IMSC_RX_TIMEOUT: u32 = 1 << 6;

/// A PL011 at a fixed, mapped address.
pub struct Pl011 {
    registers: *const Registers,
}

// SAFETY: the device is reached only through `&self` methods that each do
// single-register accesses; callers serialise whole lines with their own lock.
unsafe impl Send for Pl011 {}
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011's registers, mapped as device
    /// memory, and nothing else may drive this UART.
    pub unsafe fn new(base: usize) -> Self {
        let uart = Self { registers: base as *const Registers };
        uart.regs().cr.modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        uart
    }

    /// Sets 8N1 with FIFOs at `baud`, for a UART clocked at `clock_hz`.
    pub fn set_line(&self, clock_hz: u32, baud: u32) {
        let regs = self.regs();
        self.flush();
        regs.cr.modify(CR::UARTEN::CLEAR);
        let (integer, fraction) = baud_divisor(clock_hz, baud);
        regs.ibrd.set(integer);
        regs.fbrd.set(fraction);
        regs.lcrh.set(LCRH_WLEN_8 | LCRH_FEN);
        regs.cr.modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `new`'s contract: the pointer is a mapped PL011.
        unsafe { &*self.registers }
    }

    /// Sends one byte, waiting for room in the FIFO.
    pub fn write_byte(&self, byte: u8) {
        while self.regs().fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs().dr.write(DR::DATA.val(u32::from(byte)));
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs().fr.is_set(FR::RXFE) {
            return None;
        }
        Some(self.regs().dr.read(DR::DATA) as u8)
    }

    /// Interrupts, or not, when bytes arrive (receive and receive-timeout).
    pub fn set_receive_interrupt(&self, enabled: bool) {
        self.regs().imsc.set(if enabled { IMSC_RX | IMSC_RX_TIMEOUT } else { 0 });
    }

    /// Waits until everything sent has left the UART.
    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn baud_divisor_for_the_pi_4_console() {
        // 48 MHz / (16 * 115200) = 26.042: 26 and 3/64.
        assert_eq!(super::baud_divisor(48_000_000, 115_200), (26, 3));
        assert_eq!(super::baud_divisor(24_000_000, 115_200), (13, 1));
    }
}
