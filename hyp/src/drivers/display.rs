//! The board's screen and its input devices, as Duet's compositor and
//! router use them: one small interface, so that a phone SoC's display
//! controller and touch panel slot in beside QEMU's virtio devices
//! (`virtio_gpu`, `virtio_input`).

use crate::vdev::virtio::backend::Rect;
use crate::vdev::virtio::input::InputEvent;

/// A screen Duet draws on: a framebuffer in memory it writes, shown once
/// flushed.
pub trait Panel: Send {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// The pixels, rows packed, `width * height` of them, `0xAARRGGBB`.
    fn framebuffer(&mut self) -> &mut [u32];
    /// Shows what was drawn in `rect` (a panel may show more).
    fn flush(&mut self, rect: Rect);
}

/// What an input device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputRole {
    /// A touch panel (or a tablet) whose absolute axes run from 0 to these.
    Touch {
        x_max: u32,
        y_max: u32,
    },
    Keyboard,
}

/// An input device that yields evdev events (type, code, value).
pub trait InputSource: Send {
    fn role(&self) -> InputRole;
    /// Clears the device's interrupt.
    fn acknowledge(&mut self);
    /// The next event it has, if any.
    fn next_event(&mut self) -> Option<InputEvent>;
}
