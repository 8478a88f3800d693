//! What an attempt to break out came to, and how the probe words it: each
//! attempt ends in one [`Outcome`], printed as the tail of its report line
//! (`probe: attempt <name>: <outcome>`), and counted into a [`Tally`].
//!
//! An outcome is *contained* when the guest took an exception, or got an
//! answer that only its own virtual platform could give (an emulated
//! register, an error code, its own RAM). Anything else is `NOT CONTAINED`,
//! with what the guest saw or changed.

use core::fmt::{self, Write};

/// A short text kept without a heap; what does not fit is cut off.
#[derive(Clone, Copy)]
pub struct Text {
    bytes: [u8; Text::CAPACITY],
    len: usize,
}

impl Text {
    pub const CAPACITY: usize = 160;

    pub const fn new() -> Self {
        Text { bytes: [0; Text::CAPACITY], len: 0 }
    }

    /// `args`, formatted (cut off at [`Text::CAPACITY`] bytes).
    pub fn format(args: fmt::Arguments) -> Self {
        let mut text = Text::new();
        let _ = text.write_fmt(args);
        text
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in (see `write_str`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut buffer = [0; 4];
            let encoded = c.encode_utf8(&mut buffer).as_bytes();
            let end = self.len + encoded.len();
            if end > Text::CAPACITY {
                return Err(fmt::Error);
            }
            self.bytes[self.len..end].copy_from_slice(encoded);
            self.len = end;
        }
        Ok(())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An exception the guest took at its own EL1, as its syndrome registers
/// describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub esr: u64,
    pub far: u64,
}

impl Exception {
    /// ESR_EL1.EC.
    pub fn class(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }

    /// ESR_EL1.ISS.
    pub fn iss(&self) -> u64 {
        self.esr & 0x1ff_ffff
    }

    /// The fault status code of an abort (ISS bits 5:0).
    fn fault_status(&self) -> u64 {
        self.iss() & 0x3f
    }

    fn is_abort(&self) -> bool {
        matches!(self.class(), 0x20 | 0x21 | 0x24 | 0x25)
    }

    /// Whether FAR_EL1 holds the faulting address.
    fn has_address(&self) -> bool {
        self.is_abort() || self.class() == 0x22
    }

    /// What the exception was, in words.
    pub fn describe(&self) -> &'static str {
        match self.class() {
            0x00 => "undefined instruction",
            0x0e => "illegal execution state",
            0x18 => "trapped system register",
            0x19 => "trapped SVE",
            0x20 | 0x21 | 0x24 | 0x25 => self.abort_kind(),
            0x22 => "PC alignment fault",
            0x26 => "SP alignment fault",
            _ => "other exception",
        }
    }

    /// An abort's cause, from its fault status code.
    fn abort_kind(&self) -> &'static str {
        match self.fault_status() {
            0x10 => "synchronous external abort, injected by Duet",
            0x00..=0x03 => "address size fault of its own MMU",
            0x04..=0x07 => "translation fault of its own MMU",
            0x09..=0x0b => "access flag fault of its own MMU",
            0x0d..=0x0f => "permission fault of its own MMU",
            0x21 => "alignment fault of its own MMU",
            0x30 => "TLB conflict",
            _ => "other abort",
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exception class {:#x}, ISS {:#x} ({})",
            self.class(),
            self.iss(),
            self.describe()
        )?;
        if self.has_address() {
            write!(f, ", FAR {:#x}", self.far)?;
        }
        Ok(())
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// The guest took an exception: the attempt went nowhere.
    Exception(Exception),
    /// Every one of `count` accesses took an exception; `first` is the
    /// first of them.
    Exceptions { first: Exception, count: u32 },
    /// The address is the guest's own RAM: it reached only that.
    OwnRam(Text),
    /// Answered by the guest's own virtual platform; the text says with what.
    Emulated(Text),
    /// It saw or changed what it must not; the text says what.
    NotContained(Text),
}

impl Outcome {
    pub fn contained(&self) -> bool {
        !matches!(self, Outcome::NotContained(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exception(e) => write!(f, "{e} (contained)"),
            Outcome::Exceptions { first, count } => {
                write!(f, "all {count} accesses faulted, the first with {first} (contained)")
            }
            Outcome::OwnRam(text) => write!(f, "{} (its own RAM, reveals nothing)", text.as_str()),
            Outcome::Emulated(text) => write!(f, "{} (emulated, reveals nothing)", text.as_str()),
            Outcome::NotContained(text) => write!(f, "NOT CONTAINED: {}", text.as_str()),
        }
    }
}

/// An [`Outcome::Emulated`] with a formatted text.
#[macro_export]
macro_rules! emulated {
    ($($arg:tt)*) => { $crate::report::Outcome::Emulated($crate::report::Text::format(format_args!($($arg)*))) };
}

/// An [`Outcome::OwnRam`] with a formatted text.
#[macro_export]
macro_rules! own_ram {
    ($($arg:tt)*) => { $crate::report::Outcome::OwnRam($crate::report::Text::format(format_args!($($arg)*))) };
}

/// An [`Outcome::NotContained`] with a formatted text.
#[macro_export]
macro_rules! breach {
    ($($arg:tt)*) => { $crate::report::Outcome::NotContained($crate::report::Text::format(format_args!($($arg)*))) };
}

/// Attempts counted by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempts: u32,
    pub contained: u32,
}

impl Tally {
    pub fn add(&mut self, outcome: &Outcome) {
        self.attempts += 1;
        if outcome.contained() {
            self.contained += 1;
        }
    }

    pub fn not_contained(&self) -> u32 {
        self.attempts - self.contained
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempts, {} contained, {} not contained",
            self.attempts,
            self.contained,
            self.not_contained()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn outcomes_read_as_the_tests_expect() {
        let abort = Outcome::Exception(Exception { esr: 0x9600_0010, far: 0x4400_0000 });
        assert_eq!(
            abort.to_string(),
            "exception class 0x25, ISS 0x10 (synchronous external abort, injected by Duet), \
             FAR 0x44000000 (contained)"
        );
        let undefined = Outcome::Exception(Exception { esr: 0x0200_0000, far: 0 });
        assert_eq!(
            undefined.to_string(),
            "exception class 0x0, ISS 0x0 (undefined instruction) (contained)"
        );
        assert_eq!(emulated!("read {:#x}", 0).to_string(), "read 0x0 (emulated, reveals nothing)");
        assert_eq!(breach!("read {:#x}", 7).to_string(), "NOT CONTAINED: read 0x7");
        assert_eq!(own_ram!("read zeros").to_string(), "read zeros (its own RAM, reveals nothing)");
        let first = Exception { esr: 0x9600_0010, far: 0x8000_0000 };
        assert!(Outcome::Exceptions { first, count: 3 }
            .to_string()
            .starts_with("all 3 accesses faulted, the first with exception class 0x25"));
    }

    #[test]
    fn own_mmu_faults_are_told_apart_from_duet_s() {
        let alignment = Exception { esr: 0x9600_0021, far: 0x0800_0001 };
        assert_eq!(alignment.describe(), "alignment fault of its own MMU");
        let instruction = Exception { esr: 0x8600_0010, far: 0x4400_0000 };
        assert_eq!(instruction.describe(), "synchronous external abort, injected by Duet");
        assert_eq!(instruction.class(), 0x21);
    }

    #[test]
    fn the_tally_counts() {
        let mut tally = Tally::default();
        tally.add(&emulated!("x"));
        tally.add(&breach!("y"));
        tally.add(&Outcome::Exception(Exception { esr: 0, far: 0 }));
        assert_eq!(tally.to_string(), "3 attempts, 2 contained, 1 not contained");
    }

    #[test]
    fn long_texts_are_cut_not_overflowed() {
        let long = "é".repeat(200);
        let text = Text::format(format_args!("{long}"));
        assert_eq!(text.as_str().len(), Text::CAPACITY);
        assert!(text.as_str().chars().all(|c| c == 'é'));
    }
}
