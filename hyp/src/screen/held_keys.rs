//! Keys held down, and by which persona, so that a switch leaves no key
//! stuck: what was pressed in one persona is released in that persona,
//! and the next one never sees a release without its press.

use alloc::vec::Vec;

/// The keys down now, each with the persona (index) its press went to.
#[derive(Clone, Debug, Default)]
pub struct HeldKeys {
    held: Vec<(usize, u16)>,
}

impl HeldKeys {
    pub fn new() -> Self {
        HeldKeys::default()
    }

    /// `code` went down, its press delivered to `persona`. A key already
    /// held (an autorepeat) stays with the persona that had its press.
    pub fn press(&mut self, persona: usize, code: u16) {
        if !self.held.iter().any(|&(_, held)| held == code) {
            self.held.push((persona, code));
        }
    }

    /// `code` came up: the persona that must get the release, if one had
    /// its press (none if the press went to the lock screen, or was
    /// already released by a switch).
    pub fn release(&mut self, code: u16) -> Option<usize> {
        let index = self.held.iter().position(|&(_, held)| held == code)?;
        Some(self.held.swap_remove(index).0)
    }

    /// Every key still down, with who had it, in the order pressed; the
    /// caller sends each persona its releases. Nothing is held afterwards.
    pub fn take_all(&mut self) -> Vec<(usize, u16)> {
        core::mem::take(&mut self.held)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: u16 = 30;
    const KEY_LEFTSHIFT: u16 = 42;
    const KEY_POWER: u16 = 116;

    #[test]
    fn a_release_goes_where_the_press_went() {
        let mut keys = HeldKeys::new();
        keys.press(0, KEY_A);
        keys.press(0, KEY_A);
        assert_eq!(keys.release(KEY_A), Some(0));
        assert_eq!(keys.release(KEY_A), None);
        assert!(keys.is_empty());
    }

    #[test]
    fn keys_held_across_a_switch_are_released_to_their_persona() {
        let mut keys = HeldKeys::new();
        // Shift and A held in persona 0, then a switch to persona 1.
        keys.press(0, KEY_LEFTSHIFT);
        keys.press(0, KEY_A);
        assert_eq!(keys.take_all(), [(0, KEY_LEFTSHIFT), (0, KEY_A)]);
        assert!(keys.is_empty());
        // Their physical release later reaches nobody: persona 1 never
        // had the press, and persona 0 already got its release.
        assert_eq!(keys.release(KEY_A), None);
        // Persona 1's own keys are its own.
        keys.press(1, KEY_A);
        assert_eq!(keys.release(KEY_LEFTSHIFT), None);
        assert_eq!(keys.release(KEY_A), Some(1));
    }

    #[test]
    fn keys_of_two_personas_are_kept_apart() {
        let mut keys = HeldKeys::new();
        keys.press(1, KEY_POWER);
        keys.press(0, KEY_A);
        keys.press(1, KEY_A);
        assert_eq!(keys.take_all(), [(1, KEY_POWER), (0, KEY_A)]);
    }
}
