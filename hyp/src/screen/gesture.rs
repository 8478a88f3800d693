//! Taps and swipes, recognised by Duet itself from the touch screen's raw
//! evdev events, so that the lock screen never depends on a guest.
//!
//! Input: multitouch protocol B (`ABS_MT_SLOT`, `ABS_MT_TRACKING_ID`,
//! `ABS_MT_POSITION_X/Y`, as QEMU's `virtio-multitouch-device` and phone
//! touch panels send) or single touch (`BTN_TOUCH` or `BTN_LEFT` with
//! `ABS_X/Y`, as QEMU's `virtio-tablet-device` sends). Once a device has
//! sent any `ABS_MT_*` event its single-touch emulation is ignored. Events
//! take effect at `SYN_REPORT`, which ends a frame; the time of a frame is
//! the time given with its `SYN_REPORT`.
//!
//! Raw positions are scaled from the device's axis range (by default the
//! screen's own pixels; see [`Recognizer::with_axis_max`]) to screen pixels,
//! and clamped to the screen: a finger that runs off an edge is where it
//! left.
//!
//! The rules, with `short` the shorter side of the screen:
//! - A gesture is one finger, from touch-down to lift-off. If a second
//!   finger touches at any time, nothing is recognised until every finger
//!   has lifted (palms and pinches are not gestures).
//! - **Swipe**: it moved at least `short / 5` along the axis it moved most
//!   on, within [`SWIPE_MAX_US`]; its direction is that axis's. A swipe that
//!   leaves the screen counts: it ends at the edge where it left.
//! - **Tap**: it stayed within `short / 40` of where it touched, and lifted
//!   within [`TAP_MAX_US`]; it is reported where it touched.
//! - Anything else (a slow drag, a short wiggle, a long press) is nothing.
//! - `SYN_DROPPED` (the device lost events) cancels like a second finger.

use crate::vdev::virtio::input::{
    InputEvent, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_SLOT, ABS_MT_TRACKING_ID, ABS_X,
    ABS_Y, BTN_TOUCH, EV_ABS, EV_KEY, EV_SYN, SYN_REPORT,
};

/// `EV_KEY` code: a tablet driven by a mouse sends its left button.
const BTN_LEFT: u16 = 0x110;
/// `EV_SYN` code: the device's buffer overran and events were lost.
const SYN_DROPPED: u16 = 3;

/// The longest a swipe may take, touch-down to lift-off, in microseconds.
/// Longer is a drag, not a flick.
pub const SWIPE_MAX_US: u64 = 1_000_000;
/// The longest a tap may be held, in microseconds.
pub const TAP_MAX_US: u64 = 500_000;
/// A swipe moves at least the screen's shorter side over this.
const SWIPE_MIN_DIVISOR: u32 = 5;
/// A tap stays within the screen's shorter side over this.
const TAP_SLOP_DIVISOR: u32 = 40;
/// Touch slots tracked one by one; contacts in higher slots share one more.
const SLOTS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Left,
    Right,
}

/// What one finger did, in screen pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gesture {
    Tap { x: u32, y: u32 },
    Swipe { from: (u32, u32), to: (u32, u32), direction: Direction },
}

/// One contact as the device reports it: raw positions, kept across
/// contacts because a device sends only what changed.
#[derive(Clone, Copy, Debug, Default)]
struct Touch {
    down: bool,
    x: Option<u32>,
    y: Option<u32>,
}

impl Touch {
    fn position(&self) -> Option<(u32, u32)> {
        Some((self.x?, self.y?))
    }
}

/// The finger being followed, in screen pixels.
#[derive(Clone, Copy, Debug)]
struct Contact {
    slot: usize,
    from: (u32, u32),
    to: (u32, u32),
    since_us: u64,
}

/// Turns a touch device's raw events into gestures.
#[derive(Clone, Debug)]
pub struct Recognizer {
    width: u32,
    height: u32,
    x_max: u32,
    y_max: u32,
    multitouch: bool,
    slot: usize,
    /// Protocol B slots; the last one stands for every slot beyond.
    slots: [Touch; SLOTS + 1],
    single: Touch,
    contact: Option<Contact>,
    /// A second finger (or lost events) spoiled the gesture: wait until no
    /// finger is down.
    spoiled: bool,
}

impl Recognizer {
    /// A recognizer for a `width` x `height` pixel screen whose touch
    /// device reports positions in pixels.
    pub fn new(width: u32, height: u32) -> Self {
        Recognizer {
            width: width.max(1),
            height: height.max(1),
            x_max: width.saturating_sub(1),
            y_max: height.saturating_sub(1),
            multitouch: false,
            slot: 0,
            slots: [Touch::default(); SLOTS + 1],
            single: Touch::default(),
            contact: None,
            spoiled: false,
        }
    }

    /// The same, for a device whose axes run from 0 to `x_max` and `y_max`
    /// (its `ABS_INFO` maxima; QEMU's are 0x7fff).
    pub fn with_axis_max(mut self, x_max: u32, y_max: u32) -> Self {
        self.x_max = x_max;
        self.y_max = y_max;
        self
    }

    /// Forgets any gesture in progress (e.g. when the lock screen appears
    /// under a finger); it is not recognised when that finger lifts.
    pub fn reset(&mut self) {
        self.contact = None;
        self.spoiled = self.fingers_down() > 0;
    }

    /// Whether a finger is on the screen (as of the last frame).
    pub fn touching(&self) -> bool {
        self.fingers_down() > 0
    }

    /// Takes one event, received at `now_us`; returns the gesture it ends.
    pub fn feed(&mut self, event: InputEvent, now_us: u64) -> Option<Gesture> {
        match (event.kind, event.code) {
            (EV_SYN, SYN_REPORT) => return self.end_frame(now_us),
            (EV_SYN, SYN_DROPPED) => {
                self.contact = None;
                self.spoiled = true;
            }
            (EV_KEY, BTN_TOUCH | BTN_LEFT) => self.single.down = event.value != 0,
            (EV_ABS, ABS_X) => self.single.x = Some(event.value),
            (EV_ABS, ABS_Y) => self.single.y = Some(event.value),
            (EV_ABS, ABS_MT_SLOT) => {
                self.multitouch = true;
                self.slot = (event.value as usize).min(SLOTS);
            }
            (EV_ABS, ABS_MT_TRACKING_ID) => {
                self.multitouch = true;
                // -1 (as u32) lifts the slot's contact; any other ID is one.
                self.slots[self.slot].down = (event.value as i32) >= 0;
            }
            (EV_ABS, ABS_MT_POSITION_X) => {
                self.multitouch = true;
                self.slots[self.slot].x = Some(event.value);
            }
            (EV_ABS, ABS_MT_POSITION_Y) => {
                self.multitouch = true;
                self.slots[self.slot].y = Some(event.value);
            }
            _ => {}
        }
        None
    }

    fn fingers_down(&self) -> usize {
        if self.multitouch {
            self.slots.iter().filter(|t| t.down).count()
        } else {
            usize::from(self.single.down)
        }
    }

    /// The touch in `slot` (the single touch on a single-touch device).
    fn touch(&self, slot: usize) -> Touch {
        if self.multitouch {
            self.slots[slot]
        } else {
            self.single
        }
    }

    fn end_frame(&mut self, now_us: u64) -> Option<Gesture> {
        let down = self.fingers_down();
        if self.spoiled {
            self.spoiled = down > 0;
            return None;
        }
        if down > 1 {
            self.contact = None;
            self.spoiled = true;
            return None;
        }
        let Some(mut contact) = self.contact else {
            self.contact = self.first_contact(now_us);
            return None;
        };
        let touch = self.touch(contact.slot);
        if let Some(raw) = touch.position() {
            contact.to = self.to_pixels(raw);
        }
        if touch.down {
            self.contact = Some(contact);
            return None;
        }
        self.contact = None;
        self.classify(contact, now_us.saturating_sub(contact.since_us))
    }

    /// The contact that starts in this frame, if one finger is down and
    /// its position is known.
    fn first_contact(&self, now_us: u64) -> Option<Contact> {
        let slot = if self.multitouch { self.slots.iter().position(|t| t.down)? } else { 0 };
        let touch = self.touch(slot);
        if !touch.down {
            return None;
        }
        let at = self.to_pixels(touch.position()?);
        Some(Contact { slot, from: at, to: at, since_us: now_us })
    }

    fn classify(&self, contact: Contact, held_us: u64) -> Option<Gesture> {
        let short = self.width.min(self.height);
        let dx = i64::from(contact.to.0) - i64::from(contact.from.0);
        let dy = i64::from(contact.to.1) - i64::from(contact.from.1);
        let moved = dx.abs().max(dy.abs());
        if moved >= i64::from(short / SWIPE_MIN_DIVISOR) && held_us <= SWIPE_MAX_US {
            let direction = match (dy.abs() >= dx.abs(), dy < 0, dx < 0) {
                (true, true, _) => Direction::Up,
                (true, false, _) => Direction::Down,
                (false, _, true) => Direction::Left,
                (false, _, false) => Direction::Right,
            };
            return Some(Gesture::Swipe { from: contact.from, to: contact.to, direction });
        }
        if moved <= i64::from(short / TAP_SLOP_DIVISOR) && held_us <= TAP_MAX_US {
            let (x, y) = contact.from;
            return Some(Gesture::Tap { x, y });
        }
        None
    }

    /// A raw position in screen pixels, clamped to the screen; a negative
    /// raw value (two's complement) is off the top or left edge.
    fn to_pixels(&self, (x, y): (u32, u32)) -> (u32, u32) {
        (scale(x, self.x_max, self.width), scale(y, self.y_max, self.height))
    }
}

/// `raw` on an axis running 0..=`max`, as a pixel of `size`.
fn scale(raw: u32, max: u32, size: u32) -> u32 {
    let raw = (raw as i32).max(0) as u32;
    if max == 0 {
        return 0;
    }
    let raw = u64::from(raw.min(max));
    (raw * u64::from(size - 1) / u64::from(max)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const W: u32 = 720;
    const H: u32 = 1280;

    /// One recorded event by its evtest-style name.
    fn event(name: &str, value: i64) -> InputEvent {
        let (kind, code) = match name {
            "SLOT" => (EV_ABS, ABS_MT_SLOT),
            "ID" => (EV_ABS, ABS_MT_TRACKING_ID),
            "MT_X" => (EV_ABS, ABS_MT_POSITION_X),
            "MT_Y" => (EV_ABS, ABS_MT_POSITION_Y),
            "X" => (EV_ABS, ABS_X),
            "Y" => (EV_ABS, ABS_Y),
            "TOUCH" => (EV_KEY, BTN_TOUCH),
            "LEFT" => (EV_KEY, BTN_LEFT),
            "DROPPED" => (EV_SYN, SYN_DROPPED),
            "MSC" => (4, 5),
            other => panic!("no event {other}"),
        };
        InputEvent { kind, code, value: value as i32 as u32 }
    }

    /// Replays a recording: one frame per line, `MS: NAME VALUE ...`, each
    /// ended by a SYN_REPORT at MS milliseconds. Returns every gesture.
    fn replay(recognizer: &mut Recognizer, recording: &str) -> Vec<Gesture> {
        let mut gestures = Vec::new();
        for line in recording.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (ms, rest) = line.split_once(':').expect("MS: events");
            let now_us = ms.trim().parse::<u64>().unwrap() * 1000;
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.chunks(2) {
                let e = event(pair[0], pair[1].parse().unwrap());
                assert_eq!(recognizer.feed(e, now_us), None, "only SYN_REPORT ends a gesture");
            }
            let syn = InputEvent { kind: EV_SYN, code: SYN_REPORT, value: 0 };
            gestures.extend(recognizer.feed(syn, now_us));
        }
        gestures
    }

    fn phone() -> Recognizer {
        Recognizer::new(W, H)
    }

    /// What QEMU's virtio-multitouch-device sends (axes 0..=0x7fff) when
    /// `input-send-event` moves one finger in slot 0 through `points`
    /// (in pixels), `step_ms` apart.
    fn qemu_finger(points: &[(u32, u32)], step_ms: u64) -> alloc::string::String {
        use core::fmt::Write;
        let raw = |p: u32, size: u32| p * 0x7fff / (size - 1);
        let mut text = alloc::string::String::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            let (x, y) = (raw(x, W), raw(y, H));
            let _ = writeln!(
                text,
                "{}: SLOT 0 ID 7 TOUCH 1 MT_X {x} MT_Y {y}",
                1000 + i as u64 * step_ms
            );
        }
        let _ = writeln!(text, "{}: SLOT 0 ID -1 TOUCH 0", 1000 + points.len() as u64 * step_ms);
        text
    }

    fn up(from: (u32, u32), to: (u32, u32)) -> Gesture {
        Gesture::Swipe { from, to, direction: Direction::Up }
    }

    /// A real recording: what a Linux guest read from QEMU 10's
    /// virtio-multitouch-device (`od -An -v -tx1 /dev/input/event0`, 24-byte
    /// `struct input_event`s with their timestamps) while QMP moved one
    /// finger from (1000, 2000) to (1000, 9000) on QEMU's 0..0x7fff axes.
    /// Linux dropped the repeated values (the slot, the unchanged X).
    const RECORDED_QEMU_SWIPE: &str = "
        85 21 15 6b 00 00 00 00 cc 38 04 00 00 00 00 00 03 00 39 00 01 00 00 00
        85 21 15 6b 00 00 00 00 cc 38 04 00 00 00 00 00 01 00 4a 01 01 00 00 00
        85 21 15 6b 00 00 00 00 cc 38 04 00 00 00 00 00 03 00 35 00 e8 03 00 00
        85 21 15 6b 00 00 00 00 cc 38 04 00 00 00 00 00 03 00 36 00 d0 07 00 00
        85 21 15 6b 00 00 00 00 cc 38 04 00 00 00 00 00 00 00 00 00 00 00 00 00
        85 21 15 6b 00 00 00 00 62 8a 04 00 00 00 00 00 03 00 36 00 28 23 00 00
        85 21 15 6b 00 00 00 00 62 8a 04 00 00 00 00 00 00 00 00 00 00 00 00 00
        85 21 15 6b 00 00 00 00 de dd 04 00 00 00 00 00 03 00 39 00 ff ff ff ff
        85 21 15 6b 00 00 00 00 de dd 04 00 00 00 00 00 01 00 4a 01 00 00 00 00
        85 21 15 6b 00 00 00 00 de dd 04 00 00 00 00 00 00 00 00 00 00 00 00 00";

    #[test]
    fn a_recorded_qemu_swipe() {
        let bytes: Vec<u8> = RECORDED_QEMU_SWIPE
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        let mut recognizer = phone().with_axis_max(0x7fff, 0x7fff);
        let mut gestures = Vec::new();
        for e in bytes.chunks_exact(24) {
            let field = |at: usize| u64::from_le_bytes(e[at..at + 8].try_into().unwrap());
            let now_us = field(0) * 1_000_000 + field(8);
            let event = InputEvent {
                kind: u16::from_le_bytes([e[16], e[17]]),
                code: u16::from_le_bytes([e[18], e[19]]),
                value: u32::from_le_bytes([e[20], e[21], e[22], e[23]]),
            };
            gestures.extend(recognizer.feed(event, now_us));
        }
        // 7000 of 32767 down a 1280-row screen: 273 rows, in 42 ms.
        let from = (1000 * 719 / 0x7fff, 2000 * 1279 / 0x7fff);
        let to = (from.0, 9000 * 1279 / 0x7fff);
        assert_eq!(gestures, [Gesture::Swipe { from, to, direction: Direction::Down }]);
    }

    #[test]
    fn a_multitouch_tap() {
        let gestures = replay(
            &mut phone(),
            "0: SLOT 0 ID 1 MT_X 100 MT_Y 900
             40: MT_X 103
             80: ID -1",
        );
        assert_eq!(gestures, [Gesture::Tap { x: 100, y: 900 }]);
    }

    #[test]
    fn a_quick_swipe_up_from_the_bottom() {
        let gestures = replay(
            &mut phone(),
            "0: SLOT 0 ID 3 MT_X 200 MT_Y 1270
             30: MT_Y 1100
             60: MT_X 210 MT_Y 900
             90: MT_Y 700
             120: ID -1",
        );
        assert_eq!(gestures, [up((200, 1270), (210, 700))]);
    }

    #[test]
    fn swipes_in_each_direction() {
        let cases = [
            ("MT_Y 1200", Direction::Down),
            ("MT_X 100", Direction::Left),
            ("MT_X 650", Direction::Right),
            ("MT_Y 100", Direction::Up),
        ];
        let mut recognizer = phone();
        for (i, (moved, direction)) in cases.iter().enumerate() {
            let t = i * 1000;
            let recording = alloc::format!(
                "{t}: ID {i} MT_X 360 MT_Y 640\n{}: {moved}\n{}: ID -1",
                t + 50,
                t + 100
            );
            match replay(&mut recognizer, &recording)[..] {
                [Gesture::Swipe { direction: d, .. }] => assert_eq!(d, *direction, "{moved}"),
                ref other => panic!("{moved}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_short_swipe_is_nothing() {
        // 140 pixels: more than a tap's slop, less than a fifth of 720.
        let gestures = replay(
            &mut phone(),
            "0: ID 1 MT_X 360 MT_Y 900
             50: MT_Y 830
             100: MT_Y 760
             150: ID -1",
        );
        assert_eq!(gestures, []);
        // 144 pixels is just enough.
        let gestures = replay(&mut phone(), "0: ID 1 MT_X 360 MT_Y 900\n50: MT_Y 756\n90: ID -1");
        assert_eq!(gestures, [up((360, 900), (360, 756))]);
    }

    #[test]
    fn a_slow_swipe_is_a_drag_not_a_gesture() {
        let slow = "0: ID 1 MT_X 360 MT_Y 1200
                    500: MT_Y 900
                    1000: MT_Y 600
                    1100: ID -1";
        assert_eq!(replay(&mut phone(), slow), []);
        let just_in_time = "0: ID 1 MT_X 360 MT_Y 1200\n500: MT_Y 600\n1000: ID -1";
        assert_eq!(replay(&mut phone(), just_in_time), [up((360, 1200), (360, 600))]);
    }

    #[test]
    fn a_long_press_is_not_a_tap() {
        assert_eq!(replay(&mut phone(), "0: ID 1 MT_X 10 MT_Y 10\n600: ID -1"), []);
        assert_eq!(replay(&mut phone(), "0: ID 2 MT_X 10 MT_Y 10\n500: ID -1").len(), 1);
    }

    #[test]
    fn a_second_finger_cancels_until_every_finger_lifts() {
        let mut recognizer = phone();
        let noisy = "0: SLOT 0 ID 1 MT_X 200 MT_Y 1200
                     30: MT_Y 1000
                     40: SLOT 1 ID 2 MT_X 500 MT_Y 1100
                     60: SLOT 1 ID -1
                     70: SLOT 0 MT_Y 700
                     100: ID -1";
        assert_eq!(replay(&mut recognizer, noisy), []);
        // The first finger lifting while the second stays is nothing either.
        let rest = "200: SLOT 0 ID 3 MT_X 200 MT_Y 1200
                    210: SLOT 1 ID 4 MT_X 500 MT_Y 1200
                    250: SLOT 0 MT_Y 600
                    260: SLOT 0 ID -1
                    300: SLOT 1 MT_Y 500
                    330: SLOT 1 ID -1";
        assert_eq!(replay(&mut recognizer, rest), []);
        // Afterwards a clean swipe is recognised again.
        let clean = "1000: SLOT 0 ID 5 MT_X 200 MT_Y 1200\n1050: MT_Y 600\n1100: ID -1";
        assert_eq!(replay(&mut recognizer, clean), [up((200, 1200), (200, 600))]);
    }

    #[test]
    fn two_fingers_touching_in_one_frame_are_nothing() {
        let pinch = "0: SLOT 0 ID 1 MT_X 300 MT_Y 600 SLOT 1 ID 2 MT_X 400 MT_Y 600
                     50: SLOT 0 MT_X 100 SLOT 1 MT_X 600
                     100: SLOT 0 ID -1 SLOT 1 ID -1";
        assert_eq!(replay(&mut phone(), pinch), []);
    }

    #[test]
    fn a_swipe_that_leaves_the_screen_counts_and_ends_at_the_edge() {
        // Off the top: the panel reports negative rows before the contact ends.
        let off_top = "0: ID 1 MT_X 360 MT_Y 900
                       40: MT_Y 300
                       80: MT_Y -40
                       90: ID -1";
        assert_eq!(replay(&mut phone(), off_top), [up((360, 900), (360, 0))]);
        // Off the right edge of a QEMU-scaled device: past its maximum.
        let mut qemu = phone().with_axis_max(0x7fff, 0x7fff);
        let off_right = "0: ID 1 MT_X 16383 MT_Y 16383\n40: MT_X 40000\n80: ID -1";
        let gestures = replay(&mut qemu, off_right);
        assert_eq!(
            gestures,
            [Gesture::Swipe { from: (359, 639), to: (719, 639), direction: Direction::Right }]
        );
    }

    #[test]
    fn qemus_multitouch_stream_is_scaled_to_pixels() {
        let mut recognizer = phone().with_axis_max(0x7fff, 0x7fff);
        let swipe = qemu_finger(&[(180, 1200), (180, 1000), (182, 800), (185, 600)], 20);
        let gestures = replay(&mut recognizer, &swipe);
        let [Gesture::Swipe { from, to, direction: Direction::Up }] = gestures[..] else {
            panic!("{gestures:?}");
        };
        // Within a pixel of where the finger went, after the round trip
        // through QEMU's 15-bit axes.
        assert!(from.0.abs_diff(180) <= 1 && from.1.abs_diff(1200) <= 1, "{from:?}");
        assert!(to.0.abs_diff(185) <= 1 && to.1.abs_diff(600) <= 1, "{to:?}");
        let tap =
            qemu_finger(&[(500, 300)], 20).replace("1000:", "5000:").replace("1020:", "5020:");
        match replay(&mut recognizer, &tap)[..] {
            [Gesture::Tap { x, y }] => assert!(x.abs_diff(500) <= 1 && y.abs_diff(300) <= 1),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn positions_carry_over_to_the_next_contact() {
        // A device sends only what changed: the second touch repeats no X.
        let mut recognizer = phone();
        let recording = "0: ID 1 MT_X 100 MT_Y 200
                         50: ID -1
                         2000: ID 2 MT_Y 1200
                         2050: MT_Y 500
                         2100: ID -1";
        assert_eq!(
            replay(&mut recognizer, recording),
            [Gesture::Tap { x: 100, y: 200 }, up((100, 1200), (100, 500))]
        );
    }

    #[test]
    fn tablet_single_touch_streams() {
        // virtio-tablet-device: BTN_TOUCH (or a mouse's BTN_LEFT) with ABS_X/Y.
        let mut tablet = phone().with_axis_max(0x7fff, 0x7fff);
        let recording = "0: X 16383 Y 8191 TOUCH 1
                         60: TOUCH 0
                         1000: X 30000 Y 16383 LEFT 1
                         1040: X 20000
                         1080: X 10000
                         1100: LEFT 0
                         3000: MSC 1 X 3000 Y 32000 TOUCH 1
                         3030: Y 20000
                         3060: Y 12000 TOUCH 0";
        let gestures = replay(&mut tablet, recording);
        assert_eq!(gestures.len(), 3, "{gestures:?}");
        assert_eq!(gestures[0], Gesture::Tap { x: 359, y: 319 });
        assert!(matches!(gestures[1], Gesture::Swipe { direction: Direction::Left, .. }));
        // The lift-off frame's own position counts.
        let Gesture::Swipe { to, direction: Direction::Up, .. } = gestures[2] else {
            panic!("{:?}", gestures[2]);
        };
        assert_eq!(to.1, 12000 * 1279 / 0x7fff);
    }

    #[test]
    fn a_multitouch_device_s_single_touch_emulation_is_ignored() {
        // Linux touch panels send both; BTN_TOUCH stays down across fingers.
        let recording = "0: SLOT 0 ID 1 MT_X 100 MT_Y 1200 TOUCH 1 X 100 Y 1200
                         30: SLOT 1 ID 2 MT_X 600 MT_Y 1200
                         60: SLOT 1 ID -1
                         90: SLOT 0 MT_Y 500 Y 500
                         120: SLOT 0 ID -1 TOUCH 0";
        assert_eq!(replay(&mut phone(), recording), []);
    }

    #[test]
    fn lost_events_cancel_the_gesture() {
        let mut recognizer = phone();
        let recording = "0: ID 1 MT_X 100 MT_Y 1200
                         30: DROPPED 0
                         60: MT_Y 500
                         90: ID -1
                         1000: ID 2 MT_Y 1200
                         1050: MT_Y 500
                         1090: ID -1";
        assert_eq!(replay(&mut recognizer, recording), [up((100, 1200), (100, 500))]);
    }

    #[test]
    fn reset_drops_the_finger_on_the_screen() {
        let mut recognizer = phone();
        assert_eq!(replay(&mut recognizer, "0: ID 1 MT_X 100 MT_Y 1200\n30: MT_Y 900"), []);
        assert!(recognizer.touching());
        recognizer.reset();
        assert_eq!(replay(&mut recognizer, "60: MT_Y 500\n90: ID -1"), []);
        assert!(!recognizer.touching());
        assert_eq!(replay(&mut recognizer, "200: ID 2 MT_X 5 MT_Y 5\n220: ID -1").len(), 1);
    }

    #[test]
    fn slots_beyond_the_tracked_ones_still_count_as_fingers() {
        let recording = "0: SLOT 0 ID 1 MT_X 100 MT_Y 1200
                         30: SLOT 4000 ID 9 MT_X 5 MT_Y 5
                         60: SLOT 0 MT_Y 500
                         90: ID -1
                         100: SLOT 4000 ID -1";
        assert_eq!(replay(&mut phone(), recording), []);
    }

    #[test]
    fn a_touch_without_a_position_waits_for_one() {
        let recording = "0: ID 1
                         20: MT_X 100 MT_Y 1200
                         60: MT_Y 600
                         90: ID -1";
        assert_eq!(replay(&mut phone(), recording), [up((100, 1200), (100, 600))]);
    }
}
