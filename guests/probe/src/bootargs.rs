//! The probe's command line (`/chosen/bootargs`): which mode it runs in and
//! that mode's options. Words not starting with `probe.` belong to someone
//! else (a manifest may carry `console=...`) and are ignored; a `probe.`
//! word the probe does not know is an error, so that a typo in a test's
//! manifest cannot quietly run the wrong thing.
//!
//! ```text
//! probe.mode=checks                                   (the default)
//! probe.mode=attack
//! probe.mode=plant  probe.secret=<16 hex digits> [probe.linger=<seconds>]
//! probe.mode=hunt   probe.secret=<16 hex digits> [probe.delay=<seconds>]
//! probe.mode=listen [probe.linger=<seconds>]
//! probe.mode=virtio
//! ```

use crate::needle::{Needle, SecretText};

/// The longest the planter keeps its secret in RAM (it stops early when a
/// key is typed), and how long the listener listens, unless `probe.linger`
/// says otherwise.
pub const DEFAULT_LINGER_SECONDS: u64 = 60;
/// How long the hunter waits for the planter before it hunts.
pub const DEFAULT_DELAY_SECONDS: u64 = 2;

/// What the probe does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Checks that a guest's basic rights and wrongs are answered.
    Checks,
    /// Tries every way out it knows, one report line per attempt.
    Attack,
    /// Fills its RAM with copies of a secret, keeps them until a key is
    /// typed or for `linger` seconds, checks they are intact, and powers off.
    Plant { secret: u64, linger: u64 },
    /// Waits `delay` seconds, then looks for the secret everywhere it can
    /// read, and stores to host RAM outside its own. It never holds the
    /// whole secret in memory (see [`Needle`]).
    Hunt { needle: Needle, delay: u64 },
    /// Watches its own console input for `linger` seconds: input typed for
    /// another VM must never arrive here.
    Listen { linger: u64 },
    /// Abuses each virtio device it has; each abuse must be refused.
    Virtio,
}

/// Why a command line is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootargsError<'a> {
    UnknownMode(&'a str),
    UnknownOption(&'a str),
    /// A number or secret that does not parse, or an option given twice.
    BadValue(&'a str),
    /// The mode needs `probe.secret`.
    NoSecret,
    /// An option the chosen mode does not take.
    NotForMode(&'a str),
}

impl core::fmt::Display for BootargsError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownMode(mode) => write!(f, "unknown mode {mode:?}"),
            Self::UnknownOption(word) => write!(f, "unknown option {word:?}"),
            Self::BadValue(word) => write!(f, "bad or repeated value in {word:?}"),
            Self::NoSecret => write!(f, "this mode needs probe.secret=<16 hex digits>"),
            Self::NotForMode(word) => write!(f, "{word:?} does not apply to this mode"),
        }
    }
}

/// The `probe.` options as written, before they are checked together.
#[derive(Default)]
struct Words<'a> {
    mode: Option<&'a str>,
    secret: Option<(&'a str, &'a str)>,
    linger: Option<(&'a str, u64)>,
    delay: Option<(&'a str, u64)>,
}

/// Parses `cmdline` into the mode to run.
pub fn parse(cmdline: &str) -> Result<Mode, BootargsError<'_>> {
    let words = collect(cmdline)?;
    let mode = words.mode.unwrap_or("checks");
    // Which of secret, linger and delay each mode takes.
    let takes = match mode {
        "checks" | "attack" | "virtio" => [false, false, false],
        "listen" => [false, true, false],
        "plant" => [true, true, false],
        "hunt" => [true, false, true],
        other => return Err(BootargsError::UnknownMode(other)),
    };
    let given =
        [words.secret.map(|(w, _)| w), words.linger.map(|(w, _)| w), words.delay.map(|(w, _)| w)];
    for (word, allowed) in given.into_iter().zip(takes) {
        if let (Some(word), false) = (word, allowed) {
            return Err(BootargsError::NotForMode(word));
        }
    }
    let secret = || {
        let (word, text) = words.secret.ok_or(BootargsError::NoSecret)?;
        SecretText::parse(text).ok_or(BootargsError::BadValue(word))
    };
    let linger = words.linger.map_or(DEFAULT_LINGER_SECONDS, |(_, n)| n);
    let delay = words.delay.map_or(DEFAULT_DELAY_SECONDS, |(_, n)| n);
    Ok(match mode {
        "attack" => Mode::Attack,
        "virtio" => Mode::Virtio,
        "listen" => Mode::Listen { linger },
        "plant" => Mode::Plant { secret: secret()?.value(), linger },
        "hunt" => Mode::Hunt { needle: Needle::new(secret()?), delay },
        _ => Mode::Checks,
    })
}

/// Sorts the `probe.` words of `cmdline` by option.
fn collect(cmdline: &str) -> Result<Words<'_>, BootargsError<'_>> {
    let mut words = Words::default();
    for word in cmdline.split_ascii_whitespace().filter(|w| w.starts_with("probe.")) {
        let (key, value) = word.split_once('=').ok_or(BootargsError::UnknownOption(word))?;
        let seconds =
            || value.parse::<u64>().map(|n| (word, n)).map_err(|_| BootargsError::BadValue(word));
        match key {
            "probe.mode" => set(&mut words.mode, value, word)?,
            "probe.secret" => set(&mut words.secret, (word, value), word)?,
            "probe.linger" => set(&mut words.linger, seconds()?, word)?,
            "probe.delay" => set(&mut words.delay, seconds()?, word)?,
            _ => return Err(BootargsError::UnknownOption(word)),
        }
    }
    Ok(words)
}

/// Sets an option once; a second value is an error.
fn set<'a, T>(slot: &mut Option<T>, value: T, word: &'a str) -> Result<(), BootargsError<'a>> {
    if slot.is_some() {
        return Err(BootargsError::BadValue(word));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef";

    #[test]
    fn no_mode_means_the_checks() {
        assert_eq!(parse(""), Ok(Mode::Checks));
        assert_eq!(parse("console=ttyAMA0 quiet"), Ok(Mode::Checks));
        assert_eq!(parse("probe.mode=checks"), Ok(Mode::Checks));
        assert_eq!(parse("  probe.mode=attack  "), Ok(Mode::Attack));
        assert_eq!(parse("probe.mode=virtio"), Ok(Mode::Virtio));
    }

    #[test]
    fn plant_and_hunt_take_the_secret() {
        assert_eq!(
            parse("probe.mode=plant probe.secret=0123456789abcdef probe.linger=30"),
            Ok(Mode::Plant { secret: 0x0123_4567_89ab_cdef, linger: 30 })
        );
        assert_eq!(
            parse("probe.secret=0123456789ABCDEF probe.mode=plant"),
            Ok(Mode::Plant { secret: 0x0123_4567_89ab_cdef, linger: DEFAULT_LINGER_SECONDS })
        );
        let Ok(Mode::Hunt { needle, delay }) =
            parse("probe.mode=hunt probe.secret=0123456789abcdef probe.delay=5")
        else {
            panic!("a hunt")
        };
        assert_eq!(delay, 5);
        assert!(needle.matches(0x0123_4567_89ab_cdef));
        assert_eq!(parse("probe.mode=listen probe.linger=9"), Ok(Mode::Listen { linger: 9 }));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse("probe.mode=fly"), Err(BootargsError::UnknownMode("fly")));
        assert_eq!(
            parse("probe.colour=red"),
            Err(BootargsError::UnknownOption("probe.colour=red"))
        );
        assert_eq!(parse("probe.mode"), Err(BootargsError::UnknownOption("probe.mode")));
        assert_eq!(parse("probe.mode=plant"), Err(BootargsError::NoSecret));
        assert_eq!(
            parse("probe.mode=hunt probe.secret=12"),
            Err(BootargsError::BadValue("probe.secret=12"))
        );
        assert_eq!(
            parse("probe.mode=plant probe.secret=0123456789abcdeg"),
            Err(BootargsError::BadValue("probe.secret=0123456789abcdeg"))
        );
        assert_eq!(
            parse("probe.mode=plant probe.linger=soon probe.secret=0123456789abcdef"),
            Err(BootargsError::BadValue("probe.linger=soon"))
        );
        assert_eq!(
            parse("probe.mode=attack probe.mode=hunt"),
            Err(BootargsError::BadValue("probe.mode=hunt"))
        );
        let with_secret = std::format!("probe.mode=attack probe.secret={SECRET}");
        assert!(matches!(parse(&with_secret), Err(BootargsError::NotForMode(_))));
        assert_eq!(
            parse("probe.mode=hunt probe.secret=0123456789abcdef probe.linger=3"),
            Err(BootargsError::NotForMode("probe.linger=3"))
        );
        assert_eq!(
            parse("probe.mode=attack probe.delay=3"),
            Err(BootargsError::NotForMode("probe.delay=3"))
        );
    }
}
