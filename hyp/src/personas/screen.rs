//! A persona's screen settings, named once for the manifest (`duet-pack`)
//! and the package reader alike: each VM's colour (its trusted indicator
//! and its area of the lock screen) and how long the screen stays unlocked
//! without input. What they do is `crate::screen`'s.
//!
//! Both are optional in the manifest and in the package: a VM without a
//! colour gets its role's, a package without the idle time locks after
//! [`DEFAULT_LOCK_AFTER_IDLE_SECONDS`].

use super::Role;
use core::fmt;

/// A colour as Duet draws it: `0x00RRGGBB`.
pub type Colour = u32;

/// The personal persona's colour when the manifest names none: blue.
pub const PERSONAL_COLOUR: Colour = 0x00_1e_6f_d9;
/// The corporate persona's colour when the manifest names none: orange.
pub const CORPORATE_COLOUR: Colour = 0x00_e8_73_0c;

/// Seconds without input before the screen locks, unless the manifest says.
pub const DEFAULT_LOCK_AFTER_IDLE_SECONDS: u32 = 60;
/// The longest idle time a manifest may give (a day); 0 means never.
pub const MAX_LOCK_AFTER_IDLE_SECONDS: u32 = 86_400;

/// The colour of a VM of `role` whose manifest names none.
pub fn default_colour(role: Role) -> Colour {
    match role {
        Role::Personal => PERSONAL_COLOUR,
        Role::Corporate => CORPORATE_COLOUR,
    }
}

/// Why a manifest's colour is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourError {
    /// Not `#` and six hexadecimal digits.
    NotRgb,
}

impl fmt::Display for ColourError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRgb => write!(f, "must be \"#rrggbb\" (six hexadecimal digits)"),
        }
    }
}

impl core::error::Error for ColourError {}

/// Reads a manifest's `"#rrggbb"`.
pub fn parse_colour(text: &str) -> Result<Colour, ColourError> {
    let digits = text.strip_prefix('#').ok_or(ColourError::NotRgb)?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ColourError::NotRgb);
    }
    u32::from_str_radix(digits, 16).map_err(|_| ColourError::NotRgb)
}

/// Writes a colour the way a manifest spells it.
pub struct Rgb(pub Colour);

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:06x}", self.0 & 0x00ff_ffff)
    }
}

/// Package property names.
pub mod prop {
    /// On each VM node, optional, one cell: `0x00RRGGBB`.
    pub const COLOUR: &str = "colour";
    /// On the root node, optional, one cell: seconds, 0 = never.
    pub const LOCK_AFTER_IDLE_SECONDS: &str = "duet,lock-after-idle-seconds";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hash_and_six_hex_digits() {
        assert_eq!(parse_colour("#1e6fd9"), Ok(0x1e6fd9));
        assert_eq!(parse_colour("#FFFFFF"), Ok(0xffffff));
        assert_eq!(parse_colour("#000000"), Ok(0));
        for bad in ["1e6fd9", "#1e6fd", "#1e6fd90", "#1e6fdg", "#+e6fd9", "", "#", "blue"] {
            assert_eq!(parse_colour(bad), Err(ColourError::NotRgb), "{bad:?}");
        }
        assert_eq!(Rgb(0x1e6fd9).to_string(), "#1e6fd9");
        assert_eq!(Rgb(parse_colour("#00ff0a").unwrap()).to_string(), "#00ff0a");
    }

    #[test]
    fn each_role_has_its_own_default_colour() {
        assert_ne!(default_colour(Role::Personal), default_colour(Role::Corporate));
    }
}
