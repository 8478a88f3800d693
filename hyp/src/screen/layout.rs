//! Where things sit on the physical screen: the trusted indicator strip
//! along the top, the personas' display area below it, and each persona's
//! card on the lock screen. The compositor draws with these and the lock
//! screen hit-tests with them, so what the user sees is what a touch hits.
//!
//! The lock screen's cards sit side by side in the lower half of the
//! screen, one column per persona in manifest order, separated by gaps and
//! reaching down to the bottom edge (a swipe up usually starts there). The
//! upper half, the gaps and the strip are neutral: a swipe up from there
//! unlocks into the persona used last.

use alloc::vec::Vec;

/// The height, in pixels, of the strip at the top of the screen where Duet
/// draws its trusted indicator; no guest ever draws there.
pub const STRIP_HEIGHT: u32 = 48;

/// A rectangle on the screen, in pixels, (x, y) its top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    /// Whether the pixel (x, y) lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        // Subtraction, not `self.x + self.width`, so edges near u32::MAX
        // cannot overflow.
        x >= self.x && x - self.x < self.width && y >= self.y && y - self.y < self.height
    }
}

/// The indicator strip of a screen `width` pixels wide.
pub fn strip(width: u32) -> Area {
    Area { x: 0, y: 0, width, height: STRIP_HEIGHT }
}

/// What a persona in front has of a `width` x `height` screen: all of it
/// below the strip.
pub fn persona_display(width: u32, height: u32) -> Area {
    Area { x: 0, y: STRIP_HEIGHT, width, height: height.saturating_sub(STRIP_HEIGHT) }
}

/// The lock screen's card of each of `personas` personas (in manifest
/// order) on a `width` x `height` screen: equal columns across the lower
/// half, a gap of 1/24 of the width around each, down to the bottom edge.
pub fn persona_areas(width: u32, height: u32, personas: usize) -> Vec<Area> {
    let Ok(count) = u32::try_from(personas) else { return Vec::new() };
    if count == 0 || width == 0 {
        return Vec::new();
    }
    let gap = width / 24;
    let top = height / 2;
    (0..count)
        .map(|i| {
            // Columns from proportional edges, so they tile the width
            // exactly whatever the division leaves over.
            let left = (u64::from(width) * u64::from(i) / u64::from(count)) as u32;
            let right = (u64::from(width) * u64::from(i + 1) / u64::from(count)) as u32;
            let column = right - left;
            let inset = (gap / 2).min(column / 4);
            Area { x: left + inset, y: top, width: column - 2 * inset, height: height - top }
        })
        .collect()
}

/// Which of `areas` holds the pixel (x, y), if one does.
pub fn hit(areas: &[Area], x: u32, y: u32) -> Option<usize> {
    areas.iter().position(|area| area.contains(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_is_half_open() {
        let area = Area { x: 10, y: 20, width: 5, height: 2 };
        assert!(area.contains(10, 20));
        assert!(area.contains(14, 21));
        assert!(!area.contains(15, 20));
        assert!(!area.contains(10, 22));
        assert!(!area.contains(9, 20));
        let edge = Area { x: u32::MAX - 1, y: 0, width: 10, height: 1 };
        assert!(edge.contains(u32::MAX, 0));
    }

    #[test]
    fn two_cards_share_the_lower_half_of_the_phone_screen() {
        let areas = persona_areas(720, 1280, 2);
        assert_eq!(
            areas,
            [
                Area { x: 15, y: 640, width: 330, height: 640 },
                Area { x: 375, y: 640, width: 330, height: 640 },
            ]
        );
        assert_eq!(hit(&areas, 100, 1279), Some(0));
        assert_eq!(hit(&areas, 600, 700), Some(1));
        // The gap between the cards, the upper half and the strip are neutral.
        assert_eq!(hit(&areas, 360, 1000), None);
        assert_eq!(hit(&areas, 100, 639), None);
        assert_eq!(hit(&areas, 100, 10), None);
    }

    #[test]
    fn cards_never_overlap_nor_leave_the_screen() {
        for (width, height) in [(720, 1280), (1, 1), (7, 3), (1080, 2400), (800, 480)] {
            for personas in 1..=9 {
                let areas = persona_areas(width, height, personas);
                assert_eq!(areas.len(), personas);
                for (i, a) in areas.iter().enumerate() {
                    assert!(a.x + a.width <= width && a.y + a.height <= height, "{a:?}");
                    for b in &areas[i + 1..] {
                        assert!(a.x + a.width <= b.x, "{a:?} overlaps {b:?}");
                    }
                }
            }
        }
        assert!(persona_areas(720, 1280, 0).is_empty());
        assert!(persona_areas(0, 1280, 2).is_empty());
    }

    #[test]
    fn the_strip_and_the_persona_display_split_the_screen() {
        assert_eq!(strip(720), Area { x: 0, y: 0, width: 720, height: 48 });
        assert_eq!(persona_display(720, 1280), Area { x: 0, y: 48, width: 720, height: 1232 });
    }
}
