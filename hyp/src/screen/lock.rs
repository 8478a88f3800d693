//! The lock screen's state machine: locked or unlocked, which persona was
//! used last, and what gestures, keys and time do to it. It decides; the
//! compositor draws and routes input.
//!
//! - Duet starts locked (the boot persona is the one "used last").
//! - **Touch**: a swipe up unlocks. If it starts on a persona's card (see
//!   [`crate::screen::layout::persona_areas`]) it unlocks into that persona,
//!   anywhere else into the persona used last. Other gestures do nothing.
//! - **Keyboard** (for tests and boards without touch), while locked:
//!   `1`..`9` unlock into the first to ninth persona; Left and Right move the
//!   selection (which starts at the persona used last, and which the lock
//!   screen highlights); Enter unlocks into the selected one. A key unlocks
//!   when it is released, so that neither its press nor its release reaches
//!   the persona behind the lock screen.
//! - **Power key** (Linux `KEY_POWER`, QEMU's qcode `power`): locks, on
//!   press. While locked it does nothing.
//! - **Idle**: with a timeout set, [`LockScreen::tick`] locks once no
//!   [`LockScreen::activity`] (any input) has been seen for that long.

use super::gesture::{Direction, Gesture};
use super::layout::{hit, Area};

/// Linux key codes (input-event-codes.h) the lock screen acts on.
pub const KEY_ENTER: u16 = 28;
pub const KEY_KPENTER: u16 = 96;
pub const KEY_1: u16 = 2;
pub const KEY_9: u16 = 10;
pub const KEY_LEFT: u16 = 105;
pub const KEY_RIGHT: u16 = 106;
pub const KEY_POWER: u16 = 116;

/// What the compositor must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Show the lock screen; input goes to no persona.
    Lock,
    /// Show this persona (an index in manifest order) and give it input.
    Unlock {
        persona: usize,
    },
}

#[derive(Clone, Debug)]
pub struct LockScreen {
    personas: usize,
    locked: bool,
    last_used: usize,
    selected: usize,
    lock_after_idle_us: Option<u64>,
    last_activity_us: u64,
    /// A key pressed while locked that unlocks when released.
    armed: Option<u16>,
}

impl LockScreen {
    /// A locked screen over `personas` personas, `boot_persona` counting
    /// as used last; with `lock_after_idle_us`, idle time locks it again.
    pub fn new(personas: usize, boot_persona: usize, lock_after_idle_us: Option<u64>) -> Self {
        let boot = boot_persona.min(personas.saturating_sub(1));
        LockScreen {
            personas,
            locked: true,
            last_used: boot,
            selected: boot,
            lock_after_idle_us,
            last_activity_us: 0,
            armed: None,
        }
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The persona used last: the one in front while unlocked.
    pub fn last_used(&self) -> usize {
        self.last_used
    }

    /// The persona the keyboard's Enter would unlock into (the lock screen
    /// highlights its card).
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Locks (e.g. the persona in front went away). Returns
    /// [`Action::Lock`] if it was unlocked.
    pub fn lock(&mut self) -> Action {
        if self.locked {
            return Action::None;
        }
        self.locked = true;
        self.selected = self.last_used;
        self.armed = None;
        Action::Lock
    }

    /// Notes input at `now_us`: it keeps the idle timeout away.
    pub fn activity(&mut self, now_us: u64) {
        self.last_activity_us = self.last_activity_us.max(now_us);
    }

    /// A gesture on the screen; `areas` are the personas' cards.
    pub fn on_gesture(&mut self, gesture: Gesture, areas: &[Area], now_us: u64) -> Action {
        self.activity(now_us);
        if !self.locked {
            return Action::None;
        }
        match gesture {
            Gesture::Swipe { from: (x, y), direction: Direction::Up, .. } => {
                let persona = hit(areas, x, y).filter(|&p| p < self.personas);
                self.unlock(persona.unwrap_or(self.last_used), now_us)
            }
            _ => Action::None,
        }
    }

    /// A key of the keyboard, pressed or released (a repeat counts as a
    /// press).
    pub fn on_key(&mut self, code: u16, pressed: bool, now_us: u64) -> Action {
        self.activity(now_us);
        if code == KEY_POWER {
            return if pressed { self.lock() } else { Action::None };
        }
        if !self.locked || self.personas == 0 {
            return Action::None;
        }
        if pressed {
            match code {
                KEY_LEFT => self.selected = (self.selected + self.personas - 1) % self.personas,
                KEY_RIGHT => self.selected = (self.selected + 1) % self.personas,
                KEY_ENTER | KEY_KPENTER | KEY_1..=KEY_9 => self.armed = Some(code),
                _ => {}
            }
            return Action::None;
        }
        if self.armed.take() != Some(code) {
            return Action::None;
        }
        match code {
            KEY_ENTER | KEY_KPENTER => self.unlock(self.selected, now_us),
            _ => match usize::from(code - KEY_1) {
                persona if persona < self.personas => self.unlock(persona, now_us),
                _ => Action::None,
            },
        }
    }

    /// The passing of time: locks after the idle timeout.
    pub fn tick(&mut self, now_us: u64) -> Action {
        match self.lock_after_idle_us {
            Some(idle) if now_us.saturating_sub(self.last_activity_us) >= idle => self.lock(),
            _ => Action::None,
        }
    }

    /// When [`LockScreen::tick`] next has something to do, if ever: for
    /// the caller's timer.
    pub fn next_deadline_us(&self) -> Option<u64> {
        if self.locked {
            return None;
        }
        Some(self.last_activity_us.saturating_add(self.lock_after_idle_us?))
    }

    fn unlock(&mut self, persona: usize, now_us: u64) -> Action {
        if persona >= self.personas {
            return Action::None;
        }
        self.locked = false;
        self.last_used = persona;
        self.selected = persona;
        self.armed = None;
        self.last_activity_us = now_us;
        Action::Unlock { persona }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::layout::persona_areas;

    const SECOND: u64 = 1_000_000;

    fn swipe_up(from: (u32, u32)) -> Gesture {
        Gesture::Swipe { from, to: (from.0, 100), direction: Direction::Up }
    }

    /// Presses and releases `code`; returns what the release did (the
    /// press must do nothing).
    fn type_key(lock: &mut LockScreen, code: u16, now_us: u64) -> Action {
        assert_eq!(lock.on_key(code, true, now_us), Action::None, "press of {code}");
        lock.on_key(code, false, now_us + 50_000)
    }

    #[test]
    fn it_starts_locked_with_the_boot_persona_as_last_used() {
        let lock = LockScreen::new(2, 1, None);
        assert!(lock.is_locked());
        assert_eq!((lock.last_used(), lock.selected()), (1, 1));
        assert_eq!(LockScreen::new(2, 7, None).last_used(), 1);
    }

    #[test]
    fn a_swipe_up_on_a_card_unlocks_into_that_persona() {
        let areas = persona_areas(720, 1280, 2);
        let mut lock = LockScreen::new(2, 0, None);
        assert_eq!(
            lock.on_gesture(swipe_up((600, 1270)), &areas, 10),
            Action::Unlock { persona: 1 }
        );
        assert!(!lock.is_locked());
        assert_eq!(lock.last_used(), 1);
        assert_eq!(lock.on_key(KEY_POWER, true, 20), Action::Lock);
        assert_eq!(lock.on_key(KEY_POWER, false, 30), Action::None);
        assert_eq!(
            lock.on_gesture(swipe_up((100, 1270)), &areas, 40),
            Action::Unlock { persona: 0 }
        );
    }

    #[test]
    fn a_swipe_up_elsewhere_unlocks_into_the_persona_used_last() {
        let areas = persona_areas(720, 1280, 2);
        let mut lock = LockScreen::new(2, 0, None);
        // From the upper half, and from the gap between the cards.
        assert_eq!(
            lock.on_gesture(swipe_up((360, 500)), &areas, 10),
            Action::Unlock { persona: 0 }
        );
        lock.lock();
        assert_eq!(
            lock.on_gesture(swipe_up((600, 900)), &areas, 20),
            Action::Unlock { persona: 1 }
        );
        lock.lock();
        assert_eq!(
            lock.on_gesture(swipe_up((360, 900)), &areas, 30),
            Action::Unlock { persona: 1 }
        );
    }

    #[test]
    fn other_gestures_and_gestures_while_unlocked_do_nothing() {
        let areas = persona_areas(720, 1280, 2);
        let mut lock = LockScreen::new(2, 0, None);
        let others = [
            Gesture::Tap { x: 100, y: 1000 },
            Gesture::Swipe { from: (100, 100), to: (100, 900), direction: Direction::Down },
            Gesture::Swipe { from: (100, 900), to: (600, 900), direction: Direction::Right },
            Gesture::Swipe { from: (600, 900), to: (100, 900), direction: Direction::Left },
        ];
        for gesture in others {
            assert_eq!(lock.on_gesture(gesture, &areas, 10), Action::None, "{gesture:?}");
            assert!(lock.is_locked());
        }
        lock.on_gesture(swipe_up((100, 1000)), &areas, 20);
        assert_eq!(lock.on_gesture(swipe_up((600, 1000)), &areas, 30), Action::None);
        assert_eq!(lock.last_used(), 0);
    }

    #[test]
    fn digits_unlock_into_that_persona_on_release() {
        let mut lock = LockScreen::new(2, 0, None);
        assert_eq!(type_key(&mut lock, KEY_1 + 1, 10), Action::Unlock { persona: 1 });
        // Unlocked, digits are the persona's, not the lock screen's.
        assert_eq!(type_key(&mut lock, KEY_1, 20), Action::None);
        assert_eq!(lock.last_used(), 1);
        lock.on_key(KEY_POWER, true, 30);
        // A digit past the last persona does nothing.
        assert_eq!(type_key(&mut lock, KEY_9, 40), Action::None);
        assert!(lock.is_locked());
        assert_eq!(type_key(&mut lock, KEY_1, 50), Action::Unlock { persona: 0 });
    }

    #[test]
    fn a_release_without_its_press_on_the_lock_screen_does_nothing() {
        // Enter held down in the persona, released after the power key locked.
        let mut lock = LockScreen::new(2, 0, None);
        type_key(&mut lock, KEY_ENTER, 0);
        assert_eq!(lock.on_key(KEY_POWER, true, 10), Action::Lock);
        assert_eq!(lock.on_key(KEY_ENTER, false, 20), Action::None);
        assert!(lock.is_locked());
        // Nor does releasing a different key than the one pressed.
        lock.on_key(KEY_1, true, 30);
        assert_eq!(lock.on_key(KEY_ENTER, false, 40), Action::None);
        assert!(lock.is_locked());
    }

    #[test]
    fn left_right_and_enter_pick_a_persona() {
        let mut lock = LockScreen::new(3, 0, None);
        assert_eq!(type_key(&mut lock, KEY_ENTER, 0), Action::Unlock { persona: 0 });
        lock.on_key(KEY_POWER, true, 10);
        assert_eq!(type_key(&mut lock, KEY_LEFT, 20), Action::None);
        assert_eq!(lock.selected(), 2, "Left from the first wraps to the last");
        type_key(&mut lock, KEY_RIGHT, 30);
        type_key(&mut lock, KEY_RIGHT, 40);
        assert_eq!(lock.selected(), 1);
        assert_eq!(type_key(&mut lock, KEY_KPENTER, 50), Action::Unlock { persona: 1 });
        // Locking again selects the persona used last.
        lock.on_key(KEY_POWER, true, 60);
        assert_eq!(lock.selected(), 1);
        assert_eq!(type_key(&mut lock, KEY_ENTER, 70), Action::Unlock { persona: 1 });
    }

    #[test]
    fn the_power_key_locks_once() {
        let mut lock = LockScreen::new(2, 0, None);
        assert_eq!(lock.on_key(KEY_POWER, true, 0), Action::None, "already locked");
        type_key(&mut lock, KEY_ENTER, 10);
        assert_eq!(lock.on_key(KEY_POWER, true, 20), Action::Lock);
        assert_eq!(lock.on_key(KEY_POWER, true, 30), Action::None, "a repeat");
        assert_eq!(lock.lock(), Action::None);
    }

    #[test]
    fn idle_time_locks_with_a_fake_clock() {
        let mut lock = LockScreen::new(2, 0, Some(30 * SECOND));
        assert_eq!(lock.tick(100 * SECOND), Action::None, "locked already");
        assert_eq!(type_key(&mut lock, KEY_ENTER, 100 * SECOND), Action::Unlock { persona: 0 });
        let unlocked_at = 100 * SECOND + 50_000;
        assert_eq!(lock.next_deadline_us(), Some(unlocked_at + 30 * SECOND));
        assert_eq!(lock.tick(unlocked_at + 29 * SECOND), Action::None);
        // Input in the persona keeps it awake.
        lock.activity(unlocked_at + 20 * SECOND);
        assert_eq!(lock.tick(unlocked_at + 45 * SECOND), Action::None);
        assert_eq!(lock.tick(unlocked_at + 50 * SECOND), Action::Lock);
        assert!(lock.is_locked());
        assert_eq!(lock.tick(unlocked_at + 90 * SECOND), Action::None);
        assert_eq!(lock.next_deadline_us(), None);
    }

    #[test]
    fn without_a_timeout_idle_never_locks() {
        let mut lock = LockScreen::new(2, 0, None);
        type_key(&mut lock, KEY_ENTER, 0);
        assert_eq!(lock.tick(u64::MAX), Action::None);
        assert_eq!(lock.next_deadline_us(), None);
    }

    #[test]
    fn no_personas_never_unlocks_nor_panics() {
        let mut lock = LockScreen::new(0, 0, None);
        assert_eq!(type_key(&mut lock, KEY_LEFT, 0), Action::None);
        assert_eq!(type_key(&mut lock, KEY_ENTER, 0), Action::None);
        assert_eq!(lock.on_gesture(swipe_up((1, 1000)), &[], 0), Action::None);
        assert!(lock.is_locked());
    }
}
