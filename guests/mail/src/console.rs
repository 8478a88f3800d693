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
            let _ = console.write_fmt(args);
            let _ = console.write_str("\n");
        }
        None => early(args),
    }
}

/// Prints `text` as it is (no line end added), on whichever console is up.
pub fn write(text: &str) {
    let mut virtio = VIRTIO.lock();
    let _ = match virtio.as_mut() {
        Some(console) => console.write_str(text),
        None => Pl011.write_str(text),
    };
}

/// A key typed on the console, if one is waiting. Duet's virtio console
/// takes no input: typed bytes reach the guest's PL011.
pub fn read_key() -> Option<u8> {
    // SAFETY: the PL011's flag register, then (when its receive FIFO is
    // not empty) its data register, mapped as device memory; reading DR
    // takes the received byte and has no other effect.
    unsafe {
        let flags = core::ptr::read_volatile((UART_DR + UART_FR) as *const u32);
        (flags & FR_RXFE == 0).then(|| core::ptr::read_volatile(UART_DR as *const u32) as u8)
    }
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
