//! Duet's console: `print!`/`println!` over the board's UART, the logger
//! behind the `log` macros, and the guests' console lines, multiplexed by
//! `vm::console_mux` (tags, input focus). Lines from different CPUs never mix.

use crate::arch::aarch64::cpu;
use crate::drivers::pl011::Pl011;
use crate::vm::console_mux::{ConsoleMux, Input};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::{Mutex, Once};

static UART: Once<Pl011> = Once::new();
/// The console lock, and the multiplexer's state it protects.
static LOCK: Mutex<ConsoleMux> = Mutex::new(ConsoleMux::new(0));
/// The counter value when Duet started, for log timestamps.
static START: Once<u64> = Once::new();

/// Starts the console on the PL011 at `base`.
///
/// # Safety
/// `base` must be a PL011 that nothing else drives, mapped as device memory
/// (or reachable with the MMU off) at this address for as long as Duet runs.
pub unsafe fn init(base: usize) {
    START.call_once(cpu::counter);
    // SAFETY: the caller's contract.
    UART.call_once(|| unsafe { Pl011::new(base) });
}

/// Sets the console UART's line, on boards whose firmware leaves it unset.
pub fn set_line(clock_hz: u32, baud: u32) {
    if let Some(uart) = UART.get() {
        uart.set_line(clock_hz, baud);
    }
}

struct Writer<'a>(&'a Pl011);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn print(args: fmt::Arguments) {
    let Some(uart) = UART.get() else { return };
    let mut mux = LOCK.lock();
    mux.duet_output(&mut |bytes| bytes.iter().for_each(|&b| uart.write_byte(b)));
    let _ = Writer(uart).write_fmt(args);
}

/// Shares the console between `vms` VMs; the first gets the input focus.
pub fn set_vm_count(vms: usize) {
    *LOCK.lock() = ConsoleMux::new(vms);
}

/// Prints what VM number `vm`, called `name`, wrote to its console.
pub fn guest_output(vm: usize, name: &str, bytes: &[u8]) {
    let Some(uart) = UART.get() else { return };
    let mut mux = LOCK.lock();
    mux.guest_output(vm, name, bytes, &mut |out| out.iter().for_each(|&b| uart.write_byte(b)));
}

/// Shows the unfinished line (the prompt) of the VM that just got the focus.
pub fn show_focused_line() {
    let Some(uart) = UART.get() else { return };
    let mut mux = LOCK.lock();
    mux.show_focused_line(&mut |out| out.iter().for_each(|&b| uart.write_byte(b)));
}

/// The VM that typed input goes to.
pub fn focus() -> usize {
    LOCK.lock().focus()
}

/// Reads what one typed byte means.
pub fn interpret(byte: u8) -> Input {
    LOCK.lock().input(byte)
}

/// Prints even when the console lock is held forever (by a CPU that
/// crashed while printing): waits a little for it, then writes anyway.
pub fn print_emergency(args: fmt::Arguments) {
    let Some(uart) = UART.get() else { return };
    let mut guard = None;
    for _ in 0..1_000_000 {
        if let Some(g) = LOCK.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    let _ = Writer(uart).write_fmt(args);
    uart.flush();
    drop(guard);
}

/// A received byte, if one is waiting.
pub fn read_byte() -> Option<u8> {
    UART.get()?.read_byte()
}

static INPUT_INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Makes typed bytes raise the console UART's interrupt, or stops them.
pub fn set_input_interrupt(enabled: bool) {
    if let Some(uart) = UART.get() {
        uart.set_receive_interrupt(enabled);
        INPUT_INTERRUPT.store(enabled, Ordering::Relaxed);
    }
}

/// Whether typed bytes raise an interrupt.
pub fn input_interrupt_enabled() -> bool {
    INPUT_INTERRUPT.load(Ordering::Relaxed)
}

/// Microseconds since Duet started.
pub fn uptime_micros() -> u64 {
    let start = START.get().copied().unwrap_or(0);
    let frequency = cpu::counter_frequency().max(1);
    ((cpu::counter() - start) as u128 * 1_000_000 / frequency as u128) as u64
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // The virtio-drivers crate narrates device set-up at info level;
        // Duet's own lines say what was found, so only its warnings show.
        let max = if metadata.target().starts_with("virtio_drivers") {
            log::max_level().min(log::LevelFilter::Warn)
        } else {
            log::max_level()
        };
        metadata.level() <= max
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = uptime_micros();
        crate::println!(
            "[{:>4}.{:06}] cpu{} {:<5} {}",
            micros / 1_000_000,
            micros % 1_000_000,
            cpu::id(),
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes the `log` macros to the console, at `level` and above.
pub fn init_logger(level: log::LevelFilter) {
    // Only fails if a logger is set already, which is harmless.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
