//! The guest's console. Lines go to the virtio console (slot 0) once it is
//! up, and to the PL011 before that (and from the panic handler, which must
//! not depend on the virtio queue being in a good state). `say!` prints one
//! line. Duet tags both with the VM's name.

use crate::devices::{Hal, Transport};
use core::fmt::{self, Write};
use spin::Mutex;
use virtio_drivers::device::console::VirtIOConsole;

/// The virtual platform's PL011 data register.
const UART_DR: usize = 0x0900_0000;
/// Its flag register's offset, and the "receive FIFO empty" flag.
const UART_FR: usize = 0x18;
const FR_RXFE: u32 = 1 << 4;
/// The interrupt mask register, and its receive and receive-timeout bits.
const UART_IMSC: usize = 0x38;
const IMSC_RX: u32 = 1 << 4;
const IMSC_RT: u32 = 1 << 6;

static VIRTIO: Mutex<Option<VirtIOConsole<Hal, Transport>>> = Mutex::new(None);

/// From now on, lines go to `console`.
pub fn use_virtio(console: VirtIOConsole<Hal, Transport>) {
    *VIRTIO.lock() = Some(console);
}

/// Prints one line on whichever console is up.
pub fn line(args: fmt::Arguments) {
    let mut virtio = VIRTIO.lock();
    match virtio.as_mut() {
        Some(console) => {
            let _ = Virtio(console).write_fmt(args);
            let _ = Virtio(console).write_str("\n");
        }
        None => early(args),
    }
}

/// The virtio console as `fmt::Write`, skipping empty pieces: the driver
/// refuses (panics on) a buffer of no bytes, and formatting makes them.
struct Virtio<'a>(&'a mut VirtIOConsole<Hal, Transport>);

impl Write for Virtio<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.is_empty() {
            return Ok(());
        }
        self.0.write_str(s)
    }
}

/// Prints `text` as it is (no line end added), on whichever console is up.
pub fn write(text: &str) {
    let mut virtio = VIRTIO.lock();
    let _ = match virtio.as_mut() {
        Some(console) => Virtio(console).write_str(text),
        None => Pl011.write_str(text),
    };
}

/// Keys typed but not yet taken: the UART's FIFO holds only 32 bytes, so
/// while the guest is busy (a sync) [`pump`] moves them here.
static KEYS: Mutex<Keys> = Mutex::new(Keys { bytes: [0; KEY_BUFFER], start: 0, len: 0 });
const KEY_BUFFER: usize = 4096;

struct Keys {
    bytes: [u8; KEY_BUFFER],
    start: usize,
    len: usize,
}

/// Has the PL011 interrupt when bytes arrive (RX and receive timeout), so
/// that a guest waiting in WFI wakes for a key.
pub fn enable_key_interrupt() {
    // SAFETY: UARTIMSC of the PL011, mapped as device memory; it only
    // selects which of the UART's conditions raise its interrupt line.
    unsafe { core::ptr::write_volatile((UART_DR + UART_IMSC) as *mut u32, IMSC_RX | IMSC_RT) };
}

/// The next byte in the PL011's receive FIFO.
fn uart_byte() -> Option<u8> {
    // SAFETY: the PL011's flag register, then (when its receive FIFO is
    // not empty) its data register, mapped as device memory; reading DR
    // takes the received byte and has no other effect.
    unsafe {
        let flags = core::ptr::read_volatile((UART_DR + UART_FR) as *const u32);
        (flags & FR_RXFE == 0).then(|| core::ptr::read_volatile(UART_DR as *const u32) as u8)
    }
}

/// Moves what the UART received into the key buffer (beyond its 4 KiB,
/// keys are dropped), emptying the FIFO so its interrupt line falls.
pub fn pump() {
    let mut keys = KEYS.lock();
    while let Some(byte) = uart_byte() {
        if keys.len < KEY_BUFFER {
            let at = (keys.start + keys.len) % KEY_BUFFER;
            keys.bytes[at] = byte;
            keys.len += 1;
        }
    }
}

/// A key typed on the console, if one is waiting. Duet's virtio console
/// takes no input: typed bytes reach the guest's PL011.
pub fn read_key() -> Option<u8> {
    pump();
    let mut keys = KEYS.lock();
    if keys.len == 0 {
        return None;
    }
    let byte = keys.bytes[keys.start];
    keys.start = (keys.start + 1) % KEY_BUFFER;
    keys.len -= 1;
    Some(byte)
}

/// Prints one line on the PL011.
pub fn early(args: fmt::Arguments) {
    let _ = Pl011.write_fmt(args);
    let _ = Pl011.write_str("\n");
}

struct Pl011;

impl Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: the data register of the virtual platform's UART,
            // mapped as device memory; a write sends one byte and has no
            // memory effects (Duet's UART never makes a writer wait).
            unsafe { core::ptr::write_volatile(UART_DR as *mut u32, u32::from(byte)) };
        }
        Ok(())
    }
}

/// Prints one line.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
