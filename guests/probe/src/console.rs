//! The probe's console: the PL011 of the virtual platform, written a byte
//! at a time (Duet's emulated UART never makes a writer wait), and the
//! `say!` macro that prints one line.

use core::fmt::{self, Write};
use duet_probe::platform::virt::UART_BASE;

/// Register offsets of the PL011.
pub const DR: u64 = 0x000;
pub const FR: u64 = 0x018;
pub const CR: u64 = 0x030;
/// FR.RXFE: the receive FIFO is empty.
pub const FR_RXFE: u32 = 1 << 4;

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            write_register(DR, u32::from(byte));
        }
        Ok(())
    }
}

pub fn write_register(offset: u64, value: u32) {
    // SAFETY: a register of the virtual platform's UART, which is mapped as
    // device memory (or the MMU is off); writing it has no memory effects.
    unsafe { core::ptr::write_volatile((UART_BASE + offset) as *mut u32, value) };
}

pub fn read_register(offset: u64) -> u32 {
    // SAFETY: as in `write_register`; reading DR only takes a received byte.
    unsafe { core::ptr::read_volatile((UART_BASE + offset) as *const u32) }
}

/// A received byte, if one is waiting.
pub fn read_byte() -> Option<u8> {
    (read_register(FR) & FR_RXFE == 0).then(|| read_register(DR) as u8)
}

/// Prints one line on the console.
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
