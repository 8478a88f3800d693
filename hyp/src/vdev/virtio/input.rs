//! The virtio-input event (virtio 1.2, 5.8.6: `virtio_input_event`) and the
//! evdev codes Duet reads from it, with the values of Linux's
//! `include/uapi/linux/input-event-codes.h`.

/// One input event as virtio-input carries it: an evdev type, code and
/// value (a negative value, e.g. a tracking ID of -1, is its two's
/// complement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: u32,
}

/// Event types.
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_ABS: u16 = 0x03;

/// `EV_SYN` code: the end of one frame of events.
pub const SYN_REPORT: u16 = 0;

/// `EV_KEY` code: a single-touch device is touched.
pub const BTN_TOUCH: u16 = 0x14a;

/// `EV_ABS` codes.
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const ABS_MT_SLOT: u16 = 0x2f;
pub const ABS_MT_POSITION_X: u16 = 0x35;
pub const ABS_MT_POSITION_Y: u16 = 0x36;
pub const ABS_MT_TRACKING_ID: u16 = 0x39;
