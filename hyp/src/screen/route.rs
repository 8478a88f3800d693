//! Where each event of the phone's touch panel and keyboard goes: to the
//! lock screen (gestures, keys) and to no guest while locked; to the
//! persona in front only while unlocked, touch moved below the strip and
//! scaled to its display, keys released where they were pressed when a
//! switch or lock comes between press and release.
//!
//! The router decides and the caller acts: it returns [`Out`]s (deliver
//! these events to that persona, lock, unlock into a persona), so all of
//! it runs on the host.

use super::gesture::Recognizer;
use super::held_keys::HeldKeys;
use super::layout::{persona_areas, Area, STRIP_HEIGHT};
use super::lock::{Action, LockScreen, KEY_ENTER, KEY_POWER};
use crate::vdev::virtio::input::{
    InputEvent, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_SLOT, ABS_MT_TRACKING_ID, ABS_X,
    ABS_Y, BTN_TOUCH, EV_ABS, EV_KEY, EV_SYN, SYN_REPORT,
};
use alloc::vec::Vec;

/// `BTN_LEFT`: what a tablet (a single-touch pointer) sends for contact.
const BTN_LEFT: u16 = 0x110;
/// A tracking ID of -1: the contact in this slot lifted.
const LIFTED: u32 = u32::MAX;
/// Multi-touch slots followed one by one; higher ones share the last.
const SLOTS: usize = 10;

/// A persona's virtual input device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Keyboard,
    Touch,
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// Give `events` (ending with `SYN_REPORT`) to `persona`'s `device`.
    Deliver { persona: usize, device: Device, events: Vec<InputEvent> },
    /// Show the lock screen; no persona is in front.
    Lock,
    /// Bring `persona` to the front.
    Unlock { persona: usize },
}

/// One touch contact as the persona in front sees it.
#[derive(Clone, Copy, Debug, Default)]
struct Contact {
    /// Down, as the persona was told.
    delivered: bool,
    /// Down, but kept from the persona (it began in the strip, or before
    /// the persona came to the front): its events go nowhere until it lifts.
    withheld: bool,
}

/// The routing state for one screen and its personas.
pub struct Router {
    width: u32,
    height: u32,
    x_max: u32,
    y_max: u32,
    areas: Vec<Area>,
    recognizer: Recognizer,
    lock: LockScreen,
    held: HeldKeys,
    /// The persona in front, while unlocked.
    front: Option<usize>,
    slot: usize,
    slots: [Contact; SLOTS + 1],
    single: Contact,
    touch_frame: Vec<InputEvent>,
    key_frame: Vec<InputEvent>,
}

impl Router {
    /// A locked `width` x `height` screen over `personas` personas whose
    /// touch axes run from 0 to `x_max` and `y_max`; `boot` is the persona
    /// the lock screen unlocks into by default; `lock_after_idle_us`, if
    /// any, locks after that long without input.
    pub fn new(
        (width, height): (u32, u32),
        (x_max, y_max): (u32, u32),
        personas: usize,
        boot: usize,
        lock_after_idle_us: Option<u64>,
    ) -> Self {
        Router {
            width,
            height,
            x_max: x_max.max(1),
            y_max: y_max.max(1),
            areas: persona_areas(width, height, personas),
            recognizer: Recognizer::new(width, height).with_axis_max(x_max, y_max),
            lock: LockScreen::new(personas, boot, lock_after_idle_us),
            held: HeldKeys::new(),
            front: None,
            slot: 0,
            slots: [Contact::default(); SLOTS + 1],
            single: Contact::default(),
            touch_frame: Vec::new(),
            key_frame: Vec::new(),
        }
    }

    /// The lock screen's cards, in screen pixels.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The persona in front, if unlocked.
    pub fn front(&self) -> Option<usize> {
        self.front
    }

    /// The persona the keyboard's Enter would unlock into.
    pub fn selected(&self) -> usize {
        self.lock.selected()
    }

    /// When [`Router::tick`] next has something to do.
    pub fn next_deadline_us(&self) -> Option<u64> {
        self.lock.next_deadline_us()
    }

    /// Locks now (the power key of a board without a keyboard, a test).
    pub fn lock(&mut self) -> Vec<Out> {
        let action = self.lock.lock();
        self.act(action)
    }

    /// The console's screen key: locks if unlocked, else unlocks into the
    /// persona the keyboard has selected (the one used last, unless the
    /// arrows moved it).
    pub fn toggle(&mut self, now_us: u64) -> Vec<Out> {
        if self.front.is_some() {
            return self.lock();
        }
        // Enter, pressed and released, on the lock screen's state machine.
        let _ = self.lock.on_key(KEY_ENTER, true, now_us);
        let action = self.lock.on_key(KEY_ENTER, false, now_us);
        self.act(action)
    }

    /// The passing of time: the idle timeout.
    pub fn tick(&mut self, now_us: u64) -> Vec<Out> {
        let action = self.lock.tick(now_us);
        self.act(action)
    }

    /// An event of the keyboard, at `now_us`.
    pub fn key(&mut self, event: InputEvent, now_us: u64) -> Vec<Out> {
        let mut out = self.tick(now_us);
        if event.kind == EV_SYN {
            if event.code == SYN_REPORT && !self.key_frame.is_empty() {
                let mut events = core::mem::take(&mut self.key_frame);
                events.push(event);
                if let Some(persona) = self.front {
                    out.push(Out::Deliver { persona, device: Device::Keyboard, events });
                }
            }
            return out;
        }
        if event.kind != EV_KEY {
            return out;
        }
        let pressed = event.value != 0;
        let action = self.lock.on_key(event.code, pressed, now_us);
        if event.code != KEY_POWER {
            match (self.front, pressed) {
                // A press (or repeat) in front: that persona's.
                (Some(persona), true) => {
                    self.held.press(persona, event.code);
                    self.key_frame.push(event);
                }
                // A release goes where its press went, or nowhere.
                (_, false) => {
                    if self.held.release(event.code) == self.front && self.front.is_some() {
                        self.key_frame.push(event);
                    }
                }
                (None, true) => {}
            }
        }
        out.extend(self.act(action));
        out
    }

    /// An event of the touch panel, at `now_us`.
    pub fn touch(&mut self, event: InputEvent, now_us: u64) -> Vec<Out> {
        let mut out = self.tick(now_us);
        let gesture = self.recognizer.feed(event, now_us);
        if event.kind == EV_SYN && event.code == SYN_REPORT {
            let frame = core::mem::take(&mut self.touch_frame);
            if let Some(persona) = self.front {
                let events = self.translate(&frame);
                if !events.is_empty() {
                    out.push(Out::Deliver { persona, device: Device::Touch, events });
                }
            } else {
                self.note_contacts(&frame);
            }
        } else {
            self.touch_frame.push(event);
        }
        if let Some(gesture) = gesture {
            let action = self.lock.on_gesture(gesture, &self.areas, now_us);
            out.extend(self.act(action));
        } else {
            self.lock.activity(now_us);
        }
        out
    }

    fn act(&mut self, action: Action) -> Vec<Out> {
        match action {
            Action::None => Vec::new(),
            Action::Lock => {
                let mut out = self.let_go();
                self.front = None;
                self.recognizer.reset();
                out.push(Out::Lock);
                out
            }
            Action::Unlock { persona } => {
                let mut out = self.let_go();
                self.front = Some(persona);
                // The fingers down now did the unlocking: not the persona's.
                self.withhold_all();
                out.push(Out::Unlock { persona });
                out
            }
        }
    }

    /// Releases every key and lifts every contact the persona in front
    /// was given, so nothing stays stuck in it.
    fn let_go(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        for (persona, code) in self.held.take_all() {
            let events = alloc::vec![key(code, 0), syn()];
            out.push(Out::Deliver { persona, device: Device::Keyboard, events });
        }
        self.key_frame.clear();
        let mut lifts = Vec::new();
        for (slot, contact) in self.slots.iter_mut().enumerate() {
            if core::mem::take(&mut contact.delivered) {
                lifts.push(abs(ABS_MT_SLOT, slot as u32));
                lifts.push(abs(ABS_MT_TRACKING_ID, LIFTED));
            }
        }
        if core::mem::take(&mut self.single.delivered) {
            lifts.push(key(BTN_TOUCH, 0));
        }
        if let (Some(persona), false) = (self.front, lifts.is_empty()) {
            lifts.push(syn());
            out.push(Out::Deliver { persona, device: Device::Touch, events: lifts });
        }
        self.touch_frame.clear();
        out
    }

    /// Marks every contact down now as withheld (those that began while
    /// locked already are, see `note_contacts`).
    fn withhold_all(&mut self) {
        for contact in self.slots.iter_mut().chain([&mut self.single]) {
            contact.withheld = contact.withheld || contact.delivered;
            contact.delivered = false;
        }
    }

    /// Follows contacts while no persona is in front (they stay withheld).
    fn note_contacts(&mut self, frame: &[InputEvent]) {
        for event in frame {
            match (event.kind, event.code) {
                (EV_ABS, ABS_MT_SLOT) => self.slot = (event.value as usize).min(SLOTS),
                (EV_ABS, ABS_MT_TRACKING_ID) => {
                    self.slots[self.slot].withheld = event.value != LIFTED;
                }
                (EV_KEY, BTN_TOUCH | BTN_LEFT) => self.single.withheld = event.value != 0,
                _ => {}
            }
        }
    }

    /// The events of one touch frame as the persona in front gets them.
    fn translate(&mut self, frame: &[InputEvent]) -> Vec<InputEvent> {
        let mut events = Vec::new();
        for (i, event) in frame.iter().enumerate() {
            match (event.kind, event.code) {
                (EV_ABS, ABS_MT_SLOT) => {
                    self.slot = (event.value as usize).min(SLOTS);
                    events.push(*event);
                }
                (EV_ABS, ABS_MT_TRACKING_ID) => {
                    let in_strip =
                        starts_in_strip(frame, i, ABS_MT_POSITION_Y, self.y_max, self.height);
                    let contact = &mut self.slots[self.slot];
                    if event.value == LIFTED {
                        contact.withheld = false;
                        if core::mem::take(&mut contact.delivered) {
                            events.push(*event);
                        }
                    } else if in_strip {
                        contact.withheld = true;
                    } else if !contact.withheld {
                        contact.delivered = true;
                        events.push(*event);
                    }
                }
                (EV_KEY, BTN_TOUCH | BTN_LEFT) => {
                    let in_strip = starts_in_strip(frame, i, ABS_Y, self.y_max, self.height);
                    let contact = &mut self.single;
                    if event.value == 0 {
                        contact.withheld = false;
                        if core::mem::take(&mut contact.delivered) {
                            events.push(key(BTN_TOUCH, 0));
                        }
                    } else if in_strip {
                        contact.withheld = true;
                    } else if !contact.withheld {
                        contact.delivered = true;
                        events.push(key(BTN_TOUCH, 1));
                    }
                }
                (EV_ABS, ABS_MT_POSITION_X | ABS_MT_POSITION_Y)
                    if !self.slots[self.slot].withheld =>
                {
                    events.extend(self.position(*event));
                }
                (EV_ABS, ABS_X | ABS_Y) if !self.single.withheld => {
                    events.extend(self.position(*event));
                }
                _ => {}
            }
        }
        if events.iter().any(|e| e.kind != EV_ABS || e.code != ABS_MT_SLOT) {
            events.push(syn());
        } else {
            events.clear();
        }
        events
    }

    /// A position in the persona's display pixels; none in the strip.
    fn position(&self, event: InputEvent) -> Option<InputEvent> {
        match event.code {
            ABS_X | ABS_MT_POSITION_X => {
                let x = scale(event.value, self.x_max, self.width);
                Some(InputEvent { value: x, ..event })
            }
            _ => {
                let y = scale(event.value, self.y_max, self.height);
                let y = y.checked_sub(STRIP_HEIGHT)?;
                Some(InputEvent { value: y, ..event })
            }
        }
    }
}

/// Whether the contact that begins at `frame[at]` has its first `axis`
/// position (later in the frame, before another slot) in the strip.
fn starts_in_strip(frame: &[InputEvent], at: usize, axis: u16, y_max: u32, height: u32) -> bool {
    let rest = frame[at + 1..].iter();
    let rest = rest.take_while(|e| !(e.kind == EV_ABS && e.code == ABS_MT_SLOT));
    let y = rest.filter(|e| e.kind == EV_ABS && e.code == axis).map(|e| e.value).next();
    y.is_some_and(|y| scale(y, y_max, height) < STRIP_HEIGHT)
}

/// `value` of an axis running 0..=`max`, in pixels 0..`pixels`.
fn scale(value: u32, max: u32, pixels: u32) -> u32 {
    let scaled = u64::from(value.min(max)) * u64::from(pixels) / (u64::from(max) + 1);
    scaled as u32
}

fn key(code: u16, value: u32) -> InputEvent {
    InputEvent { kind: EV_KEY, code, value }
}

fn abs(code: u16, value: u32) -> InputEvent {
    InputEvent { kind: EV_ABS, code, value }
}

fn syn() -> InputEvent {
    InputEvent { kind: EV_SYN, code: SYN_REPORT, value: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::lock::KEY_1;
    use alloc::vec;

    const MAX: u32 = 0x7fff;
    const KEY_A: u16 = 30;
    const KEY_2: u16 = KEY_1 + 1;

    fn router() -> Router {
        Router::new((720, 1280), (MAX, MAX), 2, 0, Some(60_000_000))
    }

    /// The raw axis value of screen pixel `p` of `pixels`.
    fn raw(p: u32, pixels: u32) -> u32 {
        ((u64::from(p) * (u64::from(MAX) + 1)).div_ceil(u64::from(pixels))) as u32
    }

    fn type_key(router: &mut Router, code: u16, now: u64) -> Vec<Out> {
        let mut out = router.key(key(code, 1), now);
        out.extend(router.key(syn(), now));
        out.extend(router.key(key(code, 0), now + 1000));
        out.extend(router.key(syn(), now + 1000));
        out
    }

    fn delivered(out: &[Out]) -> Vec<(usize, Device, Vec<InputEvent>)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Deliver { persona, device, events } => {
                    Some((*persona, *device, events.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// One finger in slot 0 at screen pixel (x, y): down, or moved.
    fn finger(router: &mut Router, x: u32, y: u32, begin: bool, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        out.extend(router.touch(abs(ABS_MT_SLOT, 0), now));
        if begin {
            out.extend(router.touch(abs(ABS_MT_TRACKING_ID, 7), now));
        }
        out.extend(router.touch(abs(ABS_MT_POSITION_X, raw(x, 720)), now));
        out.extend(router.touch(abs(ABS_MT_POSITION_Y, raw(y, 1280)), now));
        out.extend(router.touch(syn(), now));
        out
    }

    fn lift(router: &mut Router, now: u64) -> Vec<Out> {
        let mut out = router.touch(abs(ABS_MT_SLOT, 0), now);
        out.extend(router.touch(abs(ABS_MT_TRACKING_ID, LIFTED), now));
        out.extend(router.touch(syn(), now));
        out
    }

    #[test]
    fn nothing_reaches_a_persona_while_locked_and_keys_unlock() {
        let mut router = router();
        assert!(delivered(&type_key(&mut router, KEY_A, 0)).is_empty());
        assert!(delivered(&finger(&mut router, 100, 900, true, 0)).is_empty());
        assert!(delivered(&lift(&mut router, 10_000)).is_empty());
        let out = type_key(&mut router, KEY_2, 20_000);
        assert_eq!(out, vec![Out::Unlock { persona: 1 }], "the unlocking key reaches no one");
        assert_eq!(router.front(), Some(1));
    }

    #[test]
    fn unlocked_keys_go_to_the_persona_in_front_only() {
        let mut router = router();
        type_key(&mut router, KEY_1, 0);
        let out = type_key(&mut router, KEY_A, 100_000);
        let got = delivered(&out);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(p, d, _)| (*p, *d) == (0, Device::Keyboard)));
        assert_eq!(got[0].2, vec![key(KEY_A, 1), syn()]);
        assert_eq!(got[1].2, vec![key(KEY_A, 0), syn()]);
    }

    #[test]
    fn a_key_held_across_a_lock_is_released_where_it_was_pressed() {
        let mut router = router();
        type_key(&mut router, KEY_1, 0);
        router.key(key(KEY_A, 1), 100_000);
        router.key(syn(), 100_000);
        let out = router.key(key(KEY_POWER, 1), 200_000);
        assert_eq!(
            out,
            vec![
                Out::Deliver {
                    persona: 0,
                    device: Device::Keyboard,
                    events: vec![key(KEY_A, 0), syn()]
                },
                Out::Lock
            ]
        );
        // The real release later goes nowhere; so does the power key's.
        assert!(delivered(&router.key(key(KEY_A, 0), 300_000)).is_empty());
        assert!(delivered(&router.key(key(KEY_POWER, 0), 300_000)).is_empty());
        assert!(delivered(&router.key(syn(), 300_000)).is_empty());
        // Unlocking into the other persona: it never sees A's release.
        let out = type_key(&mut router, KEY_2, 400_000);
        assert_eq!(out, vec![Out::Unlock { persona: 1 }]);
    }

    #[test]
    fn touch_moves_below_the_strip_and_the_strip_goes_nowhere() {
        let mut router = router();
        type_key(&mut router, KEY_1, 0);
        let got = delivered(&finger(&mut router, 360, 48 + 100, true, 100_000));
        assert_eq!(got.len(), 1);
        let (persona, device, events) = &got[0];
        assert_eq!((*persona, *device), (0, Device::Touch));
        assert_eq!(
            events,
            &vec![
                abs(ABS_MT_SLOT, 0),
                abs(ABS_MT_TRACKING_ID, 7),
                abs(ABS_MT_POSITION_X, 360),
                abs(ABS_MT_POSITION_Y, 100),
                syn()
            ]
        );
        // Dragged up into the strip: the x moves, the y stays where it was.
        let got = delivered(&finger(&mut router, 300, 10, false, 110_000));
        assert_eq!(got[0].2, vec![abs(ABS_MT_SLOT, 0), abs(ABS_MT_POSITION_X, 300), syn()]);
        let got = delivered(&lift(&mut router, 120_000));
        assert_eq!(got[0].2, vec![abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, LIFTED), syn()]);
        // A touch that begins in the strip reaches no one, to its lift.
        assert!(delivered(&finger(&mut router, 100, 20, true, 200_000)).is_empty());
        assert!(delivered(&finger(&mut router, 100, 500, false, 210_000)).is_empty());
        assert!(delivered(&lift(&mut router, 220_000)).is_empty());
    }

    #[test]
    fn a_swipe_up_on_a_card_unlocks_and_its_finger_stays_withheld() {
        let mut router = router();
        let card = router.areas()[1];
        let x = card.x + card.width / 2;
        let mut out = finger(&mut router, x, 1200, true, 0);
        for (i, y) in [1000, 800, 600].into_iter().enumerate() {
            out.extend(finger(&mut router, x, y, false, 50_000 * (i as u64 + 1)));
        }
        out.extend(lift(&mut router, 200_000));
        assert_eq!(out, vec![Out::Unlock { persona: 1 }]);
        // The next touch goes to corporate.
        let got = delivered(&finger(&mut router, 10, 600, true, 300_000));
        assert_eq!(got[0].0, 1);
    }

    #[test]
    fn a_lock_lifts_the_fingers_the_persona_had() {
        let mut router = router();
        type_key(&mut router, KEY_1, 0);
        finger(&mut router, 100, 600, true, 100_000);
        let out = router.lock();
        assert_eq!(
            out,
            vec![
                Out::Deliver {
                    persona: 0,
                    device: Device::Touch,
                    events: vec![abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, LIFTED), syn()]
                },
                Out::Lock
            ]
        );
        assert!(delivered(&lift(&mut router, 200_000)).is_empty());
    }

    #[test]
    fn idle_time_locks_on_the_next_event_or_tick() {
        let mut router = router();
        type_key(&mut router, KEY_1, 0);
        assert_eq!(router.next_deadline_us(), Some(60_001_000));
        assert!(router.tick(30_000_000).is_empty());
        assert_eq!(router.tick(61_000_000), vec![Out::Lock]);
        type_key(&mut router, KEY_1, 62_000_000);
        let out = router.key(key(KEY_A, 1), 200_000_000);
        assert_eq!(out, vec![Out::Lock], "the late key locks and goes nowhere");
    }

    #[test]
    fn the_console_key_unlocks_into_the_last_used_and_locks() {
        let mut router = Router::new((720, 1280), (MAX, MAX), 2, 1, None);
        assert_eq!(router.toggle(0), vec![Out::Unlock { persona: 1 }]);
        assert_eq!(router.toggle(1), vec![Out::Lock]);
        type_key(&mut router, KEY_1, 2);
        router.lock();
        assert_eq!(router.toggle(3), vec![Out::Unlock { persona: 0 }]);
    }

    #[test]
    fn axes_scale_to_pixels() {
        assert_eq!(scale(0, MAX, 720), 0);
        assert_eq!(scale(MAX, MAX, 720), 719);
        assert_eq!(scale(raw(48, 1280), MAX, 1280), 48);
        assert_eq!(scale(u32::MAX, MAX, 1280), 1279);
    }
}
