//! One console, several VMs: every line a guest prints is tagged with its
//! VM's name and reaches the console whole, Duet's own lines never land in
//! the middle of a guest's, and typed input goes to exactly one VM, the one
//! with the focus.
//!
//! The VM with the focus is printed as it writes, so its prompt and echo
//! show at once; its line may stay open (printed in part). Every other VM's
//! output is held back until it has a whole line; then the open line is
//! broken, the whole line printed, and the open line printed again from its
//! start, so nothing is lost or mixed. When the focus moves, the newly
//! focused VM's unfinished line (its prompt) is shown.
//!
//! Escape sequences start with Ctrl-] (0x1d):
//! - `Ctrl-] n`: move the input focus to the next VM;
//! - `Ctrl-] s`: print Duet's counters;
//! - `Ctrl-] o`: turn the (simulated) screen off or on again;
//! - `Ctrl-] Ctrl-]`: send one Ctrl-] to the focused VM.
//!
//! Any other key after Ctrl-] is dropped with it.

use alloc::string::String;
use alloc::vec::Vec;

/// The escape key: Ctrl-].
pub const ESCAPE: u8 = 0x1d;

/// What a typed byte means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Give this byte to the VM with the focus.
    ToVm { vm: usize, byte: u8 },
    /// The focus moved to this VM.
    FocusMoved { vm: usize },
    /// Print the counters.
    ShowCounters,
    /// Turn the screen off, or on again (until Duet draws one, a switch).
    ToggleScreen,
    /// Part of an escape sequence, or dropped.
    Nothing,
}

/// The longest line held back whole; a longer one is printed in pieces.
pub const LINE_LIMIT: usize = 256;

/// The console's state.
#[derive(Clone, Debug)]
pub struct ConsoleMux {
    vms: usize,
    focus: usize,
    escaped: bool,
    /// The VM whose line is printed in part, if any.
    open_line: Option<usize>,
    /// Per VM: its current line so far (printed if it is the open line,
    /// held back otherwise).
    lines: Vec<Vec<u8>>,
    /// Per VM: its name, for tags.
    names: Vec<String>,
}

impl ConsoleMux {
    /// A console for `vms` VMs; the first has the focus.
    pub const fn new(vms: usize) -> Self {
        Self {
            vms,
            focus: 0,
            escaped: false,
            open_line: None,
            lines: Vec::new(),
            names: Vec::new(),
        }
    }

    /// The VM typed input goes to.
    pub fn focus(&self) -> usize {
        self.focus
    }

    /// Reads one typed byte.
    pub fn input(&mut self, byte: u8) -> Input {
        if self.vms == 0 {
            return Input::Nothing;
        }
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Input::Nothing;
            }
            return Input::ToVm { vm: self.focus, byte };
        }
        self.escaped = false;
        match byte {
            b'n' | b'N' => {
                self.focus = (self.focus + 1) % self.vms;
                Input::FocusMoved { vm: self.focus }
            }
            b's' | b'S' => Input::ShowCounters,
            b'o' | b'O' => Input::ToggleScreen,
            ESCAPE => Input::ToVm { vm: self.focus, byte },
            _ => Input::Nothing,
        }
    }

    /// Writes what VM `vm` (called `name`) printed, tagging each of its
    /// lines, through `out`.
    pub fn guest_output(
        &mut self,
        vm: usize,
        name: &str,
        bytes: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) {
        if self.lines.len() <= vm {
            self.lines.resize(vm + 1, Vec::new());
            self.names.resize(vm + 1, String::new());
        }
        if self.names[vm].is_empty() {
            self.names[vm] = String::from(name);
        }
        for &byte in bytes {
            if vm == self.focus {
                self.print(vm, name, byte, out);
            } else {
                self.hold(vm, name, byte, out);
            }
        }
    }

    /// After the focus moved: shows the focused VM's unfinished line.
    pub fn show_focused_line(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.open_line.take().is_some() {
            out(b"\r\n");
        }
        if let Some(line) = self.lines.get(self.focus).filter(|l| !l.is_empty()) {
            tag(&self.names[self.focus], out);
            out(line);
            self.open_line = Some(self.focus);
        }
    }

    /// `vm` has the focus: print the byte at once.
    fn print(&mut self, vm: usize, name: &str, byte: u8, out: &mut impl FnMut(&[u8])) {
        if self.open_line.is_some_and(|open| open != vm) {
            // Another VM's line was left open when the focus moved.
            out(b"\r\n");
            self.open_line = None;
        }
        if self.open_line.is_none() {
            // Start the line with what was held back (or was cut short by a
            // line of Duet's).
            tag(name, out);
            out(&self.lines[vm]);
            self.open_line = Some(vm);
        }
        out(&[byte]);
        if byte == b'\n' {
            self.lines[vm].clear();
            self.open_line = None;
        } else if self.lines[vm].len() < LINE_LIMIT {
            self.lines[vm].push(byte);
        }
    }

    /// `vm` does not have the focus: keep the byte until `vm` has a whole
    /// line (or too long a one), then print that line, between the open
    /// line's pieces if one is open.
    fn hold(&mut self, vm: usize, name: &str, byte: u8, out: &mut impl FnMut(&[u8])) {
        self.lines[vm].push(byte);
        let whole = byte == b'\n';
        if !whole && self.lines[vm].len() < LINE_LIMIT {
            return;
        }
        if self.open_line.is_some() {
            out(b"\r\n");
        }
        tag(name, out);
        out(&self.lines[vm]);
        if !whole {
            out(b"\r\n");
        }
        self.lines[vm].clear();
        self.reprint_open_line(out);
    }

    /// Prints the open line again from its start, after a whole line of
    /// another VM was printed in its middle.
    fn reprint_open_line(&mut self, out: &mut impl FnMut(&[u8])) {
        if let Some(open) = self.open_line {
            tag(&self.names[open], out);
            out(&self.lines[open]);
        }
    }

    /// Called before Duet prints a line of its own: ends a guest's
    /// unfinished line first.
    pub fn duet_output(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.open_line.take().is_some() {
            out(b"\r\n");
        }
    }
}

fn tag(name: &str, out: &mut impl FnMut(&[u8])) {
    out(b"[");
    out(name.as_bytes());
    out(b"] ");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(mux: &mut ConsoleMux, vm: usize, name: &str, text: &str) -> String {
        let mut out = Vec::new();
        mux.guest_output(vm, name, text.as_bytes(), &mut |b| out.extend_from_slice(b));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_guest_line_is_tagged() {
        let mut mux = ConsoleMux::new(2);
        assert_eq!(
            render(&mut mux, 0, "personal", "hello\r\nworld\r\n"),
            "[personal] hello\r\n[personal] world\r\n"
        );
        assert_eq!(render(&mut mux, 1, "corporate", "mail\n"), "[corporate] mail\n");
    }

    #[test]
    fn a_partial_line_is_continued_by_its_own_vm_and_broken_by_another() {
        let mut mux = ConsoleMux::new(2);
        assert_eq!(render(&mut mux, 0, "personal", "/ # "), "[personal] / # ");
        assert_eq!(render(&mut mux, 0, "personal", "ls"), "ls");
        // The other VM's line waits until it is whole, then goes in between,
        // and the open line is printed again.
        assert_eq!(render(&mut mux, 1, "corporate", "x"), "");
        assert_eq!(
            render(&mut mux, 1, "corporate", "y\n"),
            "\r\n[corporate] xy\n[personal] / # ls"
        );
        assert_eq!(render(&mut mux, 0, "personal", "\n"), "\n");
        assert_eq!(render(&mut mux, 1, "corporate", "z\n"), "[corporate] z\n");
        let mut out = Vec::new();
        render(&mut mux, 0, "personal", "half");
        mux.duet_output(&mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"\r\n");
        out.clear();
        mux.duet_output(&mut |b| out.extend_from_slice(b));
        assert!(out.is_empty(), "no blank line when no guest line is open");
    }

    #[test]
    fn interleaved_output_reaches_the_console_in_whole_lines() {
        let mut mux = ConsoleMux::new(2);
        let mut out = String::new();
        for (a, b) in "init ran\n".chars().zip("booting!\n".chars()) {
            out += &render(&mut mux, 0, "personal", &a.to_string());
            out += &render(&mut mux, 1, "corporate", &b.to_string());
        }
        assert!(out.contains("[personal] init ran\n"), "{out:?}");
        assert!(out.contains("[corporate] booting!\n"), "{out:?}");
    }

    #[test]
    fn moving_the_focus_shows_the_new_focus_prompt() {
        let mut mux = ConsoleMux::new(2);
        assert_eq!(render(&mut mux, 0, "personal", "/ # "), "[personal] / # ");
        assert_eq!(render(&mut mux, 1, "corporate", "$ "), "", "held: not the focus");
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b'n'), Input::FocusMoved { vm: 1 });
        let mut out = Vec::new();
        mux.show_focused_line(&mut |b| out.extend_from_slice(b));
        assert_eq!(String::from_utf8(out).unwrap(), "\r\n[corporate] $ ");
        assert_eq!(render(&mut mux, 1, "corporate", "ls"), "ls");
    }

    #[test]
    fn a_very_long_held_line_is_printed_in_pieces() {
        let mut mux = ConsoleMux::new(2);
        render(&mut mux, 0, "a", "open");
        let long = "x".repeat(LINE_LIMIT);
        let out = render(&mut mux, 1, "b", &long);
        assert!(out.starts_with("\r\n[b] xxx"), "{out:?}");
        assert!(out.ends_with("\r\n[a] open"), "{out:?}");
    }

    #[test]
    fn input_goes_to_the_focus_and_escapes_move_it() {
        let mut mux = ConsoleMux::new(2);
        assert_eq!(mux.input(b'a'), Input::ToVm { vm: 0, byte: b'a' });
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b'n'), Input::FocusMoved { vm: 1 });
        assert_eq!(mux.input(b'b'), Input::ToVm { vm: 1, byte: b'b' });
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b'n'), Input::FocusMoved { vm: 0 });
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b's'), Input::ShowCounters);
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b'o'), Input::ToggleScreen);
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(ESCAPE), Input::ToVm { vm: 0, byte: ESCAPE });
        assert_eq!(mux.input(ESCAPE), Input::Nothing);
        assert_eq!(mux.input(b'x'), Input::Nothing);
        assert_eq!(mux.input(b'y'), Input::ToVm { vm: 0, byte: b'y' });
    }

    #[test]
    fn without_vms_input_goes_nowhere() {
        let mut mux = ConsoleMux::new(0);
        assert_eq!(mux.input(b'a'), Input::Nothing);
    }
}
