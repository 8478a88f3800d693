//! virtio-input (device ID 18) in two flavours: a keyboard (key codes 1
//! to 255) and a multitouch screen of the VM's virtual display size
//! (slots 0 to 9, positions in pixels, INPUT_PROP_DIRECT). Duet pushes
//! evdev events into the buffers the driver posts on the event queue
//! ([`deliver`]: a batch goes in whole or not at all); the status queue
//! (LEDs) is accepted and ignored.
//!
//! The configuration space answers the driver's `select`/`subsel`
//! questions (name, IDs, property bits, event bits per type, axis ranges)
//! as the virtio specification lays out; those two bytes are its only
//! writable fields.

use super::mmio::{ConfigSpace, Device, Env};
use super::queue::QueueError;

pub const EVENT_QUEUE: usize = 0;
pub const STATUS_QUEUE: usize = 1;

/// evdev event types and codes (Linux `input-event-codes.h`).
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_ABS: u16 = 0x03;
pub const SYN_REPORT: u16 = 0;
pub const BTN_TOUCH: u16 = 0x14a;
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const ABS_MT_SLOT: u16 = 0x2f;
pub const ABS_MT_POSITION_X: u16 = 0x35;
pub const ABS_MT_POSITION_Y: u16 = 0x36;
pub const ABS_MT_TRACKING_ID: u16 = 0x39;
pub const INPUT_PROP_DIRECT: u16 = 0x01;

/// Touch slots (fingers) the touchscreen tracks.
pub const TOUCH_SLOTS: u32 = 10;
/// The highest key code the keyboard has.
pub const MAX_KEY: u16 = 255;

/// One evdev event as virtio-input carries it. `value` is the raw 32-bit
/// field (a tracking ID of -1 is `u32::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: u32,
}

impl InputEvent {
    /// `virtio_input_event`: le16 type, le16 code, le32 value.
    pub fn to_bytes(self) -> [u8; EVENT_BYTES] {
        let mut bytes = [0u8; EVENT_BYTES];
        bytes[0..2].copy_from_slice(&self.kind.to_le_bytes());
        bytes[2..4].copy_from_slice(&self.code.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.value.to_le_bytes());
        bytes
    }
}

pub const EVENT_BYTES: usize = 8;

/// `select` values of the configuration space.
mod select {
    pub const ID_NAME: u8 = 0x01;
    pub const ID_DEVIDS: u8 = 0x03;
    pub const PROP_BITS: u8 = 0x10;
    pub const EV_BITS: u8 = 0x11;
    pub const ABS_INFO: u8 = 0x12;
}

/// Offset of the answer (`u`) in the configuration space, and its size.
const ANSWER: usize = 8;
const ANSWER_BYTES: usize = 128;

/// `BUS_VIRTUAL`, and the vendor Duet's input devices report ("DU").
const BUS_VIRTUAL: u16 = 0x06;
const VENDOR: u16 = 0x4455;

/// Which input device this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Keyboard,
    /// A touchscreen over a display of `width` x `height` pixels.
    Touch {
        width: u32,
        height: u32,
    },
}

pub struct Input {
    flavour: Flavour,
    select: u8,
    subsel: u8,
}

impl Input {
    pub fn new(flavour: Flavour) -> Self {
        Input { flavour, select: 0, subsel: 0 }
    }

    fn name(&self) -> &'static str {
        match self.flavour {
            Flavour::Keyboard => "Duet keyboard",
            Flavour::Touch { .. } => "Duet touchscreen",
        }
    }

    /// Fills `answer` for the current select/subsel; its size.
    fn answer(&self, answer: &mut [u8]) -> usize {
        let touch = matches!(self.flavour, Flavour::Touch { .. });
        match (self.select, self.subsel) {
            (select::ID_NAME, 0) => {
                let name = self.name().as_bytes();
                answer[..name.len()].copy_from_slice(name);
                name.len()
            }
            (select::ID_DEVIDS, 0) => {
                let product: u16 = if touch { 2 } else { 1 };
                for (i, value) in [BUS_VIRTUAL, VENDOR, product, 1].iter().enumerate() {
                    answer[2 * i..2 * i + 2].copy_from_slice(&value.to_le_bytes());
                }
                8
            }
            (select::PROP_BITS, 0) if touch => bitmap(answer, &[INPUT_PROP_DIRECT]),
            (select::EV_BITS, subsel) => self.event_bits(u16::from(subsel), answer),
            (select::ABS_INFO, axis) => match self.axis(u16::from(axis)) {
                Some((min, max)) => {
                    answer[0..4].copy_from_slice(&min.to_le_bytes());
                    answer[4..8].copy_from_slice(&max.to_le_bytes());
                    // fuzz, flat and resolution stay 0.
                    20
                }
                None => 0,
            },
            _ => 0,
        }
    }

    /// The codes of event type `kind` the device sends, as a bitmap.
    fn event_bits(&self, kind: u16, answer: &mut [u8]) -> usize {
        match (self.flavour, kind) {
            (Flavour::Keyboard, EV_KEY) => {
                for key in 1..=MAX_KEY {
                    answer[usize::from(key / 8)] |= 1 << (key % 8);
                }
                usize::from(MAX_KEY / 8) + 1
            }
            (Flavour::Touch { .. }, EV_KEY) => bitmap(answer, &[BTN_TOUCH]),
            (Flavour::Touch { .. }, EV_ABS) => bitmap(
                answer,
                &[
                    ABS_X,
                    ABS_Y,
                    ABS_MT_SLOT,
                    ABS_MT_POSITION_X,
                    ABS_MT_POSITION_Y,
                    ABS_MT_TRACKING_ID,
                ],
            ),
            _ => 0,
        }
    }

    /// The range of touch axis `axis`.
    fn axis(&self, axis: u16) -> Option<(u32, u32)> {
        let Flavour::Touch { width, height } = self.flavour else { return None };
        match axis {
            ABS_X | ABS_MT_POSITION_X => Some((0, width.saturating_sub(1))),
            ABS_Y | ABS_MT_POSITION_Y => Some((0, height.saturating_sub(1))),
            ABS_MT_SLOT => Some((0, TOUCH_SLOTS - 1)),
            ABS_MT_TRACKING_ID => Some((0, u32::from(u16::MAX))),
            _ => None,
        }
    }
}

/// Sets bits `codes` in `answer`; the bytes up to the highest one.
fn bitmap(answer: &mut [u8], codes: &[u16]) -> usize {
    let mut size = 0;
    for &code in codes {
        let byte = usize::from(code / 8);
        answer[byte] |= 1 << (code % 8);
        size = size.max(byte + 1);
    }
    size
}

/// Puts `events` into the event queue's posted buffers, one event a
/// buffer, all of them or none: false if the driver has posted fewer
/// buffers than there are events.
pub fn deliver(env: &mut Env, events: &[InputEvent]) -> Result<bool, QueueError> {
    let available = env.queues[EVENT_QUEUE].available(env.memory)?;
    if usize::from(available) < events.len() {
        return Ok(false);
    }
    for event in events {
        let Some(chain) = env.pop(EVENT_QUEUE)? else { return Ok(false) };
        let written = chain.write_at(env.memory, 0, &event.to_bytes());
        if written < EVENT_BYTES {
            env.reject(format_args!("an event buffer of {written} bytes; an event is lost"));
        }
        env.push(EVENT_QUEUE, &chain, written as u32)?;
    }
    Ok(true)
}

impl Device for Input {
    fn name(&self) -> &'static str {
        "input"
    }

    fn id(&self) -> u32 {
        18
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        2
    }

    /// select, subsel, size, reserved[5], then the answer.
    fn config(&self, out: &mut ConfigSpace) -> usize {
        out[0] = self.select;
        out[1] = self.subsel;
        let size = self.answer(&mut out[ANSWER..ANSWER + ANSWER_BYTES]);
        out[2] = size as u8;
        ANSWER + ANSWER_BYTES
    }

    fn write_config(&mut self, offset: usize, bytes: &[u8]) -> bool {
        if offset + bytes.len() > 2 {
            return false;
        }
        for (at, &byte) in (offset..).zip(bytes) {
            match at {
                0 => self.select = byte,
                _ => self.subsel = byte,
            }
        }
        true
    }

    /// Event buffers wait for events ([`deliver`]); status buffers are
    /// returned unread.
    fn service(&mut self, queue: usize, env: &mut Env) -> Result<(), QueueError> {
        if queue == STATUS_QUEUE {
            while let Some(chain) = env.pop(queue)? {
                env.push(queue, &chain, 0)?;
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.select = 0;
        self.subsel = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdev::virtio::guest_memory::TestRam;
    use crate::vdev::virtio::mmio::testing::{bring_up, notify};
    use crate::vdev::virtio::mmio::{Transport, VIRTIO_F_VERSION_1};
    use crate::vdev::virtio::queue::driver::TestDriver;
    use crate::vdev::virtio::queue::VIRTQ_DESC_F_WRITE as W;
    use crate::vm::mmio::MmioDevice;
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    const BASE: u64 = 0x4000_0000;
    const BUFFERS: u64 = BASE + 0x1_0000;
    const TOUCH: Flavour = Flavour::Touch { width: 720, height: 1232 };

    fn setup(flavour: Flavour) -> (TestRam, Transport, TestDriver, TestDriver) {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let mut transport = Transport::new(Box::new(Input::new(flavour)), ram.memory(), "t");
        let events = TestDriver::new(BASE, 16);
        let status = TestDriver::new(BASE + 0x1000, 16);
        bring_up(&mut transport, VIRTIO_F_VERSION_1, &[&events, &status]);
        (ram, transport, events, status)
    }

    /// Asks the configuration space as Linux does: select and subsel
    /// written byte by byte, then size and answer read byte by byte.
    fn ask(transport: &mut Transport, select: u8, subsel: u8) -> Vec<u8> {
        transport.write(0, 0x100, 1, u64::from(select)).unwrap();
        transport.write(0, 0x101, 1, u64::from(subsel)).unwrap();
        let size = transport.read(0, 0x102, 1).unwrap();
        (0..size).map(|i| transport.read(0, 0x108 + i, 1).unwrap() as u8).collect()
    }

    fn bit(bitmap: &[u8], code: u16) -> bool {
        bitmap.get(usize::from(code / 8)).is_some_and(|b| b & (1 << (code % 8)) != 0)
    }

    #[test]
    fn the_keyboard_describes_itself() {
        let (_ram, mut t, ..) = setup(Flavour::Keyboard);
        assert_eq!(t.read(0, 0x008, 4), Ok(18));
        assert_eq!(ask(&mut t, select::ID_NAME, 0), b"Duet keyboard");
        assert_eq!(ask(&mut t, select::ID_DEVIDS, 0), [6, 0, 0x55, 0x44, 1, 0, 1, 0]);
        let keys = ask(&mut t, select::EV_BITS, EV_KEY as u8);
        assert_eq!(keys.len(), 32);
        assert!(!bit(&keys, 0) && bit(&keys, 1) && bit(&keys, 28) && bit(&keys, 255));
        assert!(ask(&mut t, select::EV_BITS, EV_ABS as u8).is_empty());
        assert!(ask(&mut t, select::EV_BITS, 0x14).is_empty(), "no EV_REP");
        assert!(ask(&mut t, select::PROP_BITS, 0).is_empty());
        assert!(ask(&mut t, select::ABS_INFO, ABS_X as u8).is_empty());
        assert!(ask(&mut t, 0x7f, 0).is_empty(), "unknown select");
    }

    #[test]
    fn the_touchscreen_describes_itself() {
        let (_ram, mut t, ..) = setup(TOUCH);
        assert_eq!(ask(&mut t, select::ID_NAME, 0), b"Duet touchscreen");
        assert_eq!(ask(&mut t, select::PROP_BITS, 0), [1 << INPUT_PROP_DIRECT]);
        let keys = ask(&mut t, select::EV_BITS, EV_KEY as u8);
        assert_eq!(keys.len(), 42);
        assert!(bit(&keys, BTN_TOUCH) && !bit(&keys, 1));
        let axes = ask(&mut t, select::EV_BITS, EV_ABS as u8);
        for axis in [ABS_X, ABS_Y, ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y] {
            assert!(bit(&axes, axis), "axis {axis:#x}");
        }
        assert!(bit(&axes, ABS_MT_TRACKING_ID) && !bit(&axes, 0x30));
        let range = |t: &mut Transport, axis: u16| {
            let info = ask(t, select::ABS_INFO, axis as u8);
            assert_eq!(info.len(), 20);
            let word = |at: usize| u32::from_le_bytes(info[at..at + 4].try_into().unwrap());
            (word(0), word(4))
        };
        assert_eq!(range(&mut t, ABS_MT_POSITION_X), (0, 719));
        assert_eq!(range(&mut t, ABS_Y), (0, 1231));
        assert_eq!(range(&mut t, ABS_MT_SLOT), (0, 9));
        assert_eq!(range(&mut t, ABS_MT_TRACKING_ID), (0, 65535));
        assert!(ask(&mut t, select::ABS_INFO, 0x30).is_empty());
        // Only select and subsel are writable.
        t.write(0, 0x102, 1, 9).unwrap();
        assert_eq!(t.read(0, 0x102, 1), Ok(0));
    }

    #[test]
    fn events_go_into_posted_buffers_whole_batches_only() {
        let (mut ram, mut t, mut events, _) = setup(TOUCH);
        let memory = ram.memory();
        let batch = [
            InputEvent { kind: EV_ABS, code: ABS_MT_TRACKING_ID, value: u32::MAX },
            InputEvent { kind: EV_KEY, code: BTN_TOUCH, value: 0 },
            InputEvent { kind: EV_SYN, code: SYN_REPORT, value: 0 },
        ];
        for i in 0..2 {
            events.descriptor(&memory, i, BUFFERS + 8 * u64::from(i), 8, W, 0);
            events.offer(&memory, i);
        }
        notify(&mut t, 0);
        assert_eq!(events.used(&memory, 0).0, 0, "buffers wait for events");
        let put = |t: &mut Transport| t.deliver(EVENT_QUEUE, |env| deliver(env, &batch));
        assert!(!put(&mut t), "two buffers for three events");
        assert_eq!(events.used(&memory, 0).0, 0);
        assert!(!t.take_interrupt());
        events.descriptor(&memory, 2, BUFFERS + 16, 8, W, 0);
        events.offer(&memory, 2);
        assert!(put(&mut t));
        assert!(t.take_interrupt());
        assert_eq!(events.used(&memory, 2), (3, 2, 8));
        let mut got = [0u8; 24];
        memory.read(BUFFERS, &mut got).unwrap();
        assert_eq!(&got[..8], &[3, 0, 0x39, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&got[8..16], &[1, 0, 0x4a, 1, 0, 0, 0, 0]);
        assert_eq!(&got[16..], &[0; 8]);
    }

    #[test]
    fn nothing_is_delivered_before_the_driver_is_up() {
        let mut ram = TestRam::new(BASE, 0x2_0000);
        let mut t = Transport::new(Box::new(Input::new(Flavour::Keyboard)), ram.memory(), "t");
        let event = InputEvent { kind: EV_KEY, code: 30, value: 1 };
        assert!(!t.deliver(EVENT_QUEUE, |env| deliver(env, &[event])));
    }

    #[test]
    fn a_bad_event_buffer_drops_the_events_and_needs_a_reset() {
        let (mut ram, mut t, mut events, _) = setup(Flavour::Keyboard);
        let memory = ram.memory();
        events.descriptor(&memory, 0, BASE + 0x2_0000, 8, W, 0);
        events.offer(&memory, 0);
        let event = InputEvent { kind: EV_KEY, code: 30, value: 1 };
        assert!(!t.deliver(EVENT_QUEUE, |env| deliver(env, &[event])));
        assert_ne!(t.status() & 64, 0, "DEVICE_NEEDS_RESET");
        assert!(!t.deliver(EVENT_QUEUE, |env| deliver(env, &[event])));
    }

    #[test]
    fn status_buffers_are_returned_unread() {
        let (mut ram, mut t, _, mut status) = setup(Flavour::Keyboard);
        let memory = ram.memory();
        memory.write(BUFFERS, &[0x11, 0, 0, 0, 1, 0, 0, 0]).unwrap();
        status.descriptor(&memory, 0, BUFFERS, 8, 0, 0);
        status.offer(&memory, 0);
        notify(&mut t, 1);
        assert_eq!(status.used(&memory, 0), (1, 0, 0));
    }
}
