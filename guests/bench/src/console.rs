//! The console: the UART the device tree names (PL011 or ns16550), written
//! a byte at a time once its transmitter has room, and `say!`, which prints
//! one line. Only CPU 0 prints.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use duet_bench_guest::platform::Uart;

/// Which UART: 0 none yet, 1 PL011, 2 ns16550; then its layout.
static KIND: AtomicU64 = AtomicU64::new(0);
static BASE: AtomicU64 = AtomicU64::new(0);
static SHIFT: AtomicU64 = AtomicU64::new(0);
static WIDTH: AtomicU64 = AtomicU64::new(1);

/// PL011: data register, flag register and its TXFF (transmit FIFO full).
const PL011_DR: u64 = 0x00;
const PL011_FR: u64 = 0x18;
const PL011_FR_TXFF: u32 = 1 << 5;
/// ns16550: transmit holding register and line status (THRE: it is empty).
const NS16550_THR: u64 = 0;
const NS16550_LSR: u64 = 5;
const NS16550_LSR_THRE: u32 = 1 << 5;
/// Polls for room before writing anyway: a stuck UART must not hang the run.
const POLLS: u32 = 100_000;

pub fn init(uart: Uart) {
    match uart {
        Uart::Pl011 { base } => {
            BASE.store(base, Ordering::Relaxed);
            KIND.store(1, Ordering::Relaxed);
        }
        Uart::Ns16550 { base, shift, width } => {
            BASE.store(base, Ordering::Relaxed);
            SHIFT.store(u64::from(shift), Ordering::Relaxed);
            WIDTH.store(u64::from(width), Ordering::Relaxed);
            KIND.store(2, Ordering::Relaxed);
        }
    }
}

fn read(address: u64, width: u64) -> u32 {
    // SAFETY: a register of the UART the device tree describes; the MMU is
    // off, so the access is a device access with no memory effects.
    unsafe {
        match width {
            4 => core::ptr::read_volatile(address as *const u32),
            _ => u32::from(core::ptr::read_volatile(address as *const u8)),
        }
    }
}

fn write(address: u64, width: u64, value: u32) {
    // SAFETY: as in `read`.
    unsafe {
        match width {
            4 => core::ptr::write_volatile(address as *mut u32, value),
            _ => core::ptr::write_volatile(address as *mut u8, value as u8),
        }
    }
}

fn put(byte: u8) {
    let base = BASE.load(Ordering::Relaxed);
    match KIND.load(Ordering::Relaxed) {
        1 => {
            for _ in 0..POLLS {
                if read(base + PL011_FR, 4) & PL011_FR_TXFF == 0 {
                    break;
                }
            }
            write(base + PL011_DR, 4, u32::from(byte));
        }
        2 => {
            let (shift, width) = (SHIFT.load(Ordering::Relaxed), WIDTH.load(Ordering::Relaxed));
            for _ in 0..POLLS {
                if read(base + (NS16550_LSR << shift), width) & NS16550_LSR_THRE != 0 {
                    break;
                }
            }
            write(base + (NS16550_THR << shift), width, u32::from(byte));
        }
        _ => {}
    }
}

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put);
        Ok(())
    }
}

/// Prints one line on the console.
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
