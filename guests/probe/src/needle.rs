//! The secret of the plant-and-hunt test, and the hunter's form of it.
//!
//! The planter needs the secret itself. The hunter must not: if its own
//! memory held the 64-bit value, its scan could "find" its own copy. So the
//! hunter parses the two 32-bit halves of the secret separately and keeps
//! each XORed with a mask of its own; the whole value never sits in memory
//! it scans (the comparison works on masked halves).

/// Masks for the two halves. Any values do; they only have to differ from
/// zero so that a masked half is not the half itself.
const MASK_HIGH: u32 = 0x5a5a_c3c3;
const MASK_LOW: u32 = 0x3c3c_a5a5;

/// Hex digits in a secret on the command line: exactly 16, one 64-bit value.
const DIGITS: usize = 16;

/// A secret as written on the command line, checked but not yet a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretText<'a>(&'a str);

impl<'a> SecretText<'a> {
    /// Accepts exactly 16 hex digits (either case).
    pub fn parse(text: &'a str) -> Option<Self> {
        let hex = text.len() == DIGITS && text.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then_some(SecretText(text))
    }

    /// The secret as a number: for the planter only.
    pub fn value(&self) -> u64 {
        u64::from(self.high()) << 32 | u64::from(self.low())
    }

    fn high(&self) -> u32 {
        half(&self.0[..DIGITS / 2])
    }

    fn low(&self) -> u32 {
        half(&self.0[DIGITS / 2..])
    }
}

/// Eight hex digits, already checked.
fn half(digits: &str) -> u32 {
    u32::from_str_radix(digits, 16).unwrap_or(0)
}

/// What the hunter looks for: the secret's halves, each masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needle {
    high_masked: u32,
    low_masked: u32,
}

impl Needle {
    pub fn new(secret: SecretText) -> Self {
        Needle { high_masked: secret.high() ^ MASK_HIGH, low_masked: secret.low() ^ MASK_LOW }
    }

    /// Whether `word`, as read from memory, is the secret.
    #[inline(always)]
    pub fn matches(&self, word: u64) -> bool {
        ((word >> 32) as u32 ^ MASK_HIGH) == self.high_masked
            && (word as u32 ^ MASK_LOW) == self.low_masked
    }

    /// The secret itself, for the hunter's self-check only: it plants one
    /// copy, finds it, and wipes it before the real hunt.
    pub fn unmasked(&self) -> u64 {
        u64::from(self.high_masked ^ MASK_HIGH) << 32 | u64::from(self.low_masked ^ MASK_LOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_needle_matches_the_secret_and_nothing_else() {
        let text = SecretText::parse("fedcba9876543210").unwrap();
        assert_eq!(text.value(), 0xfedc_ba98_7654_3210);
        let needle = Needle::new(text);
        assert!(needle.matches(0xfedc_ba98_7654_3210));
        for wrong in
            [0, u64::MAX, 0xfedc_ba98_0000_0000, 0x7654_3210_fedc_ba98, 0xfedc_ba98_7654_3211]
        {
            assert!(!needle.matches(wrong), "{wrong:#x}");
        }
        assert_eq!(needle.unmasked(), 0xfedc_ba98_7654_3210);
    }

    #[test]
    fn the_needle_does_not_hold_the_secret() {
        let secret = 0x0123_4567_89ab_cdef_u64;
        let needle = Needle::new(SecretText::parse("0123456789abcdef").unwrap());
        let halves = [needle.high_masked, needle.low_masked];
        // Neither half is held as it is, so no layout of the two can be
        // the secret.
        assert!(!halves.contains(&((secret >> 32) as u32)));
        assert!(!halves.contains(&(secret as u32)));
    }

    #[test]
    fn only_sixteen_hex_digits_make_a_secret() {
        assert!(SecretText::parse("0123456789abcdef").is_some());
        assert!(SecretText::parse("0123456789ABCDEF").is_some());
        for bad in
            ["", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg", "+123456789abcdef"]
        {
            assert!(SecretText::parse(bad).is_none(), "{bad:?}");
        }
    }
}
