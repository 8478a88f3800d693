//! The guest's own keyboard (Duet's virtio keyboard, evdev key codes) as
//! the console's bytes, so that its keys drive the same `ui` state machine
//! as keys typed on the console: a US layout with Shift and Ctrl, Enter as
//! `\r`, Backspace as DEL, Escape as ESC, Up and Down as `ui::UP` and
//! `ui::DOWN`. Presses and autorepeats give a byte; releases only change
//! the modifiers.

use crate::ui::{DOWN, UP};

/// evdev's key event type and the codes of the modifiers and special keys
/// (Linux `input-event-codes.h`).
pub const EV_KEY: u16 = 0x01;
const KEY_ESC: u16 = 1;
const KEY_BACKSPACE: u16 = 14;
const KEY_ENTER: u16 = 28;
const KEY_LEFTCTRL: u16 = 29;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;
const KEY_SPACE: u16 = 57;
const KEY_KPENTER: u16 = 96;
const KEY_RIGHTCTRL: u16 = 97;
const KEY_UP: u16 = 103;
const KEY_DOWN: u16 = 108;

/// Key codes 2 to 53 in order, unshifted and shifted (`\0`: no character).
const PLAIN: &[u8; 52] = b"1234567890-=\0\0qwertyuiop[]\0\0asdfghjkl;'`\0\\zxcvbnm,./";
const SHIFTED: &[u8; 52] = b"!@#$%^&*()_+\0\0QWERTYUIOP{}\0\0ASDFGHJKL:\"~\0|ZXCVBNM<>?";

/// Which modifiers are held; left and right apart, so that releasing one
/// Shift while the other is down keeps Shift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keyboard {
    shift: [bool; 2],
    ctrl: [bool; 2],
}

impl Keyboard {
    /// Takes one evdev event (`value`: 0 release, 1 press, 2 autorepeat)
    /// and gives the byte the console would have, if the key makes one.
    pub fn event(&mut self, kind: u16, code: u16, value: u32) -> Option<u8> {
        if kind != EV_KEY {
            return None;
        }
        let down = value != 0;
        match code {
            KEY_LEFTSHIFT => self.shift[0] = down,
            KEY_RIGHTSHIFT => self.shift[1] = down,
            KEY_LEFTCTRL => self.ctrl[0] = down,
            KEY_RIGHTCTRL => self.ctrl[1] = down,
            _ if down => return self.byte(code),
            _ => {}
        }
        None
    }

    fn byte(&self, code: u16) -> Option<u8> {
        let shift = self.shift.contains(&true);
        let ctrl = self.ctrl.contains(&true);
        let byte = match code {
            KEY_ESC => 0x1b,
            KEY_BACKSPACE => 0x7f,
            KEY_ENTER | KEY_KPENTER => b'\r',
            KEY_SPACE => b' ',
            KEY_UP => UP,
            KEY_DOWN => DOWN,
            2..=53 => {
                let table = if shift { SHIFTED } else { PLAIN };
                match table[usize::from(code - 2)] {
                    0 => return None,
                    c => c,
                }
            }
            _ => return None,
        };
        // Ctrl with a letter is its control character (Ctrl-C drops a draft).
        match ctrl {
            true if byte.is_ascii_alphabetic() => Some(byte.to_ascii_lowercase() & 0x1f),
            true => None,
            false => Some(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Presses and releases each code in turn.
    fn typed(keyboard: &mut Keyboard, codes: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &code in codes {
            bytes.extend(keyboard.event(EV_KEY, code, 1));
            bytes.extend(keyboard.event(EV_KEY, code, 0));
        }
        bytes
    }

    #[test]
    fn letters_digits_and_punctuation_are_the_console_bytes() {
        let mut keyboard = Keyboard::default();
        // "bob@x.io" then Enter: b o b, Shift+2, x . i o.
        let mut bytes = typed(&mut keyboard, &[48, 24, 48]);
        keyboard.event(EV_KEY, KEY_LEFTSHIFT, 1);
        bytes.extend(typed(&mut keyboard, &[3]));
        keyboard.event(EV_KEY, KEY_LEFTSHIFT, 0);
        bytes.extend(typed(&mut keyboard, &[45, 52, 23, 24, KEY_ENTER]));
        assert_eq!(bytes, b"bob@x.io\r");
        assert_eq!(typed(&mut keyboard, &[2, 11, 12, 13, 57, 53]), b"10-= /");
        assert_eq!(typed(&mut keyboard, &[16, 25, 30, 38, 44, 50]), b"qpalzm");
    }

    #[test]
    fn special_keys_and_modifiers() {
        let mut keyboard = Keyboard::default();
        let specials = [KEY_BACKSPACE, KEY_ESC, KEY_KPENTER, KEY_UP, KEY_DOWN];
        assert_eq!(typed(&mut keyboard, &specials), [0x7f, 0x1b, b'\r', UP, DOWN]);
        // Left and right, Tab, F1 and unknown codes make nothing.
        assert_eq!(typed(&mut keyboard, &[105, 106, 15, 59, 300]), b"");
        // Ctrl-C, and Ctrl with a digit makes nothing.
        keyboard.event(EV_KEY, KEY_RIGHTCTRL, 1);
        assert_eq!(typed(&mut keyboard, &[46, 3]), [0x03]);
        keyboard.event(EV_KEY, KEY_RIGHTCTRL, 0);
        // Both Shifts down, one released: still shifted.
        keyboard.event(EV_KEY, KEY_LEFTSHIFT, 1);
        keyboard.event(EV_KEY, KEY_RIGHTSHIFT, 1);
        keyboard.event(EV_KEY, KEY_RIGHTSHIFT, 0);
        assert_eq!(typed(&mut keyboard, &[30]), b"A");
        keyboard.event(EV_KEY, KEY_LEFTSHIFT, 0);
        assert_eq!(typed(&mut keyboard, &[30]), b"a");
    }

    #[test]
    fn autorepeat_repeats_and_other_events_are_ignored() {
        let mut keyboard = Keyboard::default();
        assert_eq!(keyboard.event(EV_KEY, KEY_BACKSPACE, 2), Some(0x7f));
        assert_eq!(keyboard.event(0, 0, 0), None);
        assert_eq!(keyboard.event(0x03, 0x35, 100), None);
        assert_eq!(keyboard.event(EV_KEY, 30, 0), None);
    }
}
