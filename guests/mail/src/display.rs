//! The guest's own display and keyboard, beside the console: the
//! virtio-gpu (slot 4 on Duet's platform) with one framebuffer at the size
//! it reports, on which the interface's pages are drawn (`duet_mail::draw`)
//! and flushed, and the virtio keyboard (slot 5), whose keys become the
//! console's bytes (`duet_mail::keys`). A page is drawn only when it
//! differs from the one shown: nothing is drawn while nothing changes, so
//! the guest stays asleep in WFI.

use crate::devices::{Hal, Transport};
use alloc::boxed::Box;
use core::ptr::NonNull;
use duet_mail::draw::{self, Canvas, Page};
use duet_mail::keys::Keyboard;
use virtio_drivers::device::gpu::VirtIOGpu;
use virtio_drivers::device::input::VirtIOInput;

/// evdev's absolute-axis event type: a touch screen has it, a keyboard not.
const EV_ABS: u8 = 0x03;

/// The display: the device and the framebuffer it scans out.
pub struct Display {
    gpu: VirtIOGpu<Hal, Transport>,
    /// The framebuffer, `width` x `height` B8G8R8X8 pixels; the crate's DMA
    /// buffer, which `gpu` owns.
    frame: NonNull<[u8]>,
    width: usize,
    height: usize,
    shown: Option<Page>,
}

impl Display {
    /// Sets up a framebuffer at the resolution the device reports and
    /// makes it the scanout.
    pub fn new(mut gpu: VirtIOGpu<Hal, Transport>) -> Result<Display, virtio_drivers::Error> {
        let (width, height) = gpu.resolution()?;
        let frame = NonNull::from(gpu.setup_framebuffer()?);
        Ok(Display { gpu, frame, width: width as usize, height: height as usize, shown: None })
    }

    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Draws `page` and flushes it, unless it is what the display shows.
    fn show(&mut self, page: Page) {
        if self.shown.as_ref() == Some(&page) {
            return;
        }
        // SAFETY: `frame` is the framebuffer `setup_framebuffer` returned:
        // the crate's DMA allocation, kept alive by `self.gpu` (which never
        // changes resolution, so never frees or moves it); `&mut self` makes
        // this the only reference to it while drawing. The device only
        // reads it, at the flush below.
        let bytes = unsafe { &mut *self.frame.as_ptr() };
        match Canvas::new(bytes, self.width, self.height) {
            Some(mut canvas) => draw::render(&page, &mut canvas),
            None => return,
        }
        match self.gpu.flush() {
            Ok(()) => self.shown = Some(page),
            Err(e) => say!("mail: display: flush failed: {e}"),
        }
    }
}

/// The display on `transport`. Not inlined, like [`keyboard`]: the
/// drivers' set-up temporaries stay out of `main`'s frame, under which
/// everything else runs.
#[inline(never)]
pub fn display(transport: Transport) -> Result<Box<Display>, virtio_drivers::Error> {
    Display::new(VirtIOGpu::new(transport)?).map(Box::new)
}

/// The input device on `transport` if it is a keyboard (not Duet's touch
/// screen, which has axes).
#[inline(never)]
pub fn keyboard(
    transport: Transport,
) -> Result<Option<Box<KeyboardDevice>>, virtio_drivers::Error> {
    let mut input = VirtIOInput::new(transport)?;
    let keyboard = input.ev_bits(EV_ABS).is_ok_and(|bits| bits.iter().all(|&b| b == 0));
    Ok(keyboard.then(|| Box::new((input, Keyboard::default()))))
}

/// A keyboard's driver and its modifiers.
pub type KeyboardDevice = (VirtIOInput<Hal, Transport>, Keyboard);

/// What of the display and keyboard the guest has. Boxed: the drivers'
/// structures are kilobytes (their queues' shadow descriptors), and the
/// panel lives in the frame under every other, the TLS handshake's deep
/// stack included, on a small stack.
#[derive(Default)]
pub struct Panel {
    pub display: Option<Box<Display>>,
    pub keyboard: Option<Box<KeyboardDevice>>,
}

impl Panel {
    /// Shows `page` on the display, if there is one.
    pub fn show(&mut self, page: Page) {
        if let Some(display) = self.display.as_mut() {
            display.show(page);
        }
    }

    /// The next key from the keyboard, if one is waiting. Its interrupt is
    /// acknowledged first, so an event that comes after the queue was
    /// found empty raises it again and wakes the next WFI.
    pub fn read_key(&mut self) -> Option<u8> {
        let (input, keyboard) = &mut **self.keyboard.as_mut()?;
        input.ack_interrupt();
        while let Some(event) = input.pop_pending_event() {
            if let Some(byte) = keyboard.event(event.event_type, event.code, event.value) {
                return Some(byte);
            }
        }
        None
    }
}
