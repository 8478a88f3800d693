//! One console, several VMs: every line a guest prints is tagged with its
//! VM's name, Duet's own lines never land in the middle of a guest's, and
//! typed input goes to exactly one VM, the one with the focus.
//!
//! Escape sequences start with Ctrl-] (0x1d):
//! - `Ctrl-] n`: move the input focus to the next VM;
//! - `Ctrl-] s`: print Duet's counters;
//! - `Ctrl-] Ctrl-]`: send one Ctrl-] to the focused VM.
//!
//! Any other key after Ctrl-] is dropped with it.

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
    /// Part of an escape sequence, or dropped.
    Nothing,
}

/// The console's state.
#[derive(Clone, Debug)]
pub struct ConsoleMux {
    vms: usize,
    focus: usize,
    escaped: bool,
    /// The VM whose line is unfinished, if any.
    open_line: Option<usize>,
}

impl ConsoleMux {
    /// A console for `vms` VMs; the first has the focus.
    pub const fn new(vms: usize) -> Self {
        Self { vms, focus: 0, escaped: false, open_line: None }
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
        for &byte in bytes {
            if self.open_line != Some(vm) {
                if self.open_line.is_some() {
                    out(b"\r\n");
                }
                out(b"[");
                out(name.as_bytes());
                out(b"] ");
                self.open_line = Some(vm);
            }
            out(&[byte]);
            if byte == b'\n' {
                self.open_line = None;
            }
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
        assert_eq!(render(&mut mux, 1, "corporate", "x\n"), "\r\n[corporate] x\n");
        let mut out = Vec::new();
        render(&mut mux, 0, "personal", "half");
        mux.duet_output(&mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"\r\n");
        out.clear();
        mux.duet_output(&mut |b| out.extend_from_slice(b));
        assert!(out.is_empty(), "no blank line when no guest line is open");
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
