//! Composition: what the physical screen shows, drawn into a plain pixel
//! buffer (the panel's framebuffer on the board, a `Vec` in the tests).
//!
//! The screen is a strip of [`STRIP_HEIGHT`] rows at the top, the trusted
//! indicator, which only Duet draws (the foreground persona's name on its
//! colour, or Duet's own on the lock screen), and below it the foreground
//! persona's area. A guest's flush is copied only while that persona is in
//! front, clipped to its area, so no guest pixel ever reaches the strip; a
//! background persona's flush copies nothing. Bringing a persona to the
//! front copies its current scanout whole, read in place from its RAM, so
//! it need not redraw. The lock screen shows each persona's name and
//! colour and nothing of any persona's content.

use crate::vdev::virtio::backend::{Frame, Rect};
use alloc::vec::Vec;
use font8x8::legacy::BASIC_LEGACY;

/// Rows at the top of the screen that only Duet draws.
pub use super::layout::STRIP_HEIGHT;

/// The alpha byte Duet sets on every pixel it writes: opaque, for a
/// framebuffer whose format has alpha (virtio-gpu's B8G8R8A8); formats
/// without alpha ignore it.
const OPAQUE: u32 = 0xff00_0000;

/// The lock screen's strip and background.
const LOCK_STRIP: u32 = 0x20_20_20;
const LOCK_BACKGROUND: u32 = 0x10_10_10;
const WHITE: u32 = 0xff_ff_ff;
const BLACK: u32 = 0;

/// Font8x8 glyphs are 8x8; scaled by these for the strip and the cards.
const STRIP_TEXT_SCALE: u32 = 4;
const HINT_TEXT_SCALE: u32 = 2;
/// The white frame around the lock screen card the keyboard selected.
const SELECTED_FRAME: u32 = 6;

/// The physical screen's pixels, rows packed: `width` x `height`, each
/// `0xAARRGGBB` (Duet writes them opaque).
pub struct Pixels<'a> {
    pub pixels: &'a mut [u32],
    pub width: u32,
    pub height: u32,
}

impl Pixels<'_> {
    /// The screen as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect { x: 0, y: 0, width: self.width, height: self.height }
    }

    /// Row `y`, columns `x..x + len`, clipped to the screen and the buffer.
    fn span(&mut self, x: u32, y: u32, len: u32) -> Option<&mut [u32]> {
        if y >= self.height || x >= self.width {
            return None;
        }
        let len = len.min(self.width - x) as usize;
        let start = y as usize * self.width as usize + x as usize;
        self.pixels.get_mut(start..start + len)
    }

    fn fill(&mut self, rect: Rect, rgb: u32) {
        for y in rect.y..rect.y.saturating_add(rect.height) {
            if let Some(span) = self.span(rect.x, y, rect.width) {
                span.fill(OPAQUE | rgb);
            }
        }
    }

    /// Draws `text` at (x, y), each glyph `8 * scale` pixels square,
    /// clipped to `clip`. Characters outside ASCII show as `?`.
    fn text(&mut self, text: &str, x: u32, y: u32, scale: u32, rgb: u32, clip: Rect) {
        let size = 8 * scale;
        for (i, ch) in text.chars().enumerate() {
            let glyph = BASIC_LEGACY[if ch.is_ascii() { ch as usize } else { b'?' as usize }];
            let left = x.saturating_add(i as u32 * size);
            for (row, bits) in glyph.iter().enumerate() {
                for column in (0..8).filter(|c| bits & (1 << c) != 0) {
                    let dot = Rect {
                        x: left + column * scale,
                        y: y + row as u32 * scale,
                        width: scale,
                        height: scale,
                    };
                    if let Some(dot) = intersect(dot, clip) {
                        self.fill(dot, rgb);
                    }
                }
            }
        }
    }

    /// Draws `text` centred horizontally in `area`, its top at `y`.
    fn centred_text(&mut self, text: &str, area: Rect, y: u32, scale: u32, rgb: u32) {
        let width = text.chars().count() as u32 * 8 * scale;
        let x = area.x + area.width.saturating_sub(width) / 2;
        self.text(text, x, y, scale, rgb, area);
    }
}

/// The part of `a` inside `b`, if any.
pub fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let x = a.x.max(b.x);
    let y = a.y.max(b.y);
    let right = a.x.saturating_add(a.width).min(b.x.saturating_add(b.width));
    let bottom = a.y.saturating_add(a.height).min(b.y.saturating_add(b.height));
    (x < right && y < bottom).then(|| Rect { x, y, width: right - x, height: bottom - y })
}

/// Draws a frame `thickness` pixels wide just inside `rect`'s edges.
fn frame(screen: &mut Pixels, rect: Rect, thickness: u32, rgb: u32) {
    let t = thickness.min(rect.width / 2).min(rect.height / 2);
    let right = rect.x + rect.width - t;
    let bottom = rect.y + rect.height - t;
    screen.fill(Rect { height: t, ..rect }, rgb);
    screen.fill(Rect { y: bottom, height: t, ..rect }, rgb);
    screen.fill(Rect { width: t, ..rect }, rgb);
    screen.fill(Rect { x: right, width: t, ..rect }, rgb);
}

/// Black or white, whichever reads better on `rgb`.
fn ink_on(rgb: u32) -> u32 {
    let (r, g, b) = ((rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff);
    if r * 299 + g * 587 + b * 114 > 150_000 {
        BLACK
    } else {
        WHITE
    }
}

/// A persona as the screen shows it: its name and colour (the manifest's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub name: &'static str,
    pub colour: u32,
}

/// What is on the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Showing {
    /// The lock screen: no persona is in front.
    Lock,
    /// Persona `n` is in front.
    Persona(usize),
}

/// Decides what reaches the screen; draws into the [`Pixels`] it is given.
pub struct Compositor {
    width: u32,
    height: u32,
    looks: Vec<Look>,
    showing: Showing,
}

impl Compositor {
    /// A `width` x `height` screen for `looks`, one per persona in manifest
    /// order. It starts on the lock screen (not yet drawn), so nothing a
    /// persona draws shows before the lock screen has been.
    pub fn new(width: u32, height: u32, looks: Vec<Look>) -> Self {
        Compositor { width, height, looks, showing: Showing::Lock }
    }

    pub fn showing(&self) -> Showing {
        self.showing
    }

    /// The size of each persona's display: the screen less the strip.
    pub fn persona_size(&self) -> (u32, u32) {
        (self.width, self.height.saturating_sub(STRIP_HEIGHT))
    }

    /// Where the persona in front shows, in screen pixels.
    pub fn persona_area(&self) -> Rect {
        let (width, height) = self.persona_size();
        Rect { x: 0, y: STRIP_HEIGHT, width, height }
    }

    /// Persona `persona` flushed `rect` of its scanout `frame`. In front,
    /// the part inside its area is copied; returns the screen rectangle
    /// that changed. In the background: nothing is read or written.
    pub fn flushed(
        &self,
        screen: &mut Pixels,
        persona: usize,
        frame: &dyn Frame,
        rect: Rect,
    ) -> Option<Rect> {
        if self.showing != Showing::Persona(persona) {
            return None;
        }
        self.copy(screen, frame, rect)
    }

    /// Persona `persona` turned its scanout off: in front, its area goes
    /// black.
    pub fn scanout_off(&self, screen: &mut Pixels, persona: usize) -> Option<Rect> {
        if self.showing != Showing::Persona(persona) {
            return None;
        }
        let area = self.persona_area();
        screen.fill(area, BLACK);
        Some(area)
    }

    /// Brings `persona` to the front: its indicator in the strip and its
    /// current scanout whole (black where it has none, or none at all).
    /// Returns the screen rectangle to flush: all of it.
    pub fn show_persona(
        &mut self,
        screen: &mut Pixels,
        persona: usize,
        frame: Option<&dyn Frame>,
    ) -> Rect {
        self.showing = Showing::Persona(persona);
        let look = self.looks.get(persona).copied().unwrap_or(Look { name: "?", colour: BLACK });
        self.draw_strip(screen, look.name, look.colour);
        // The scanout, then black where it does not reach: every pixel of
        // the area is written once, none left from what showed before.
        let area = self.persona_area();
        let whole = frame.map(|f| Rect { x: 0, y: 0, width: f.width(), height: f.height() });
        let covered = frame.zip(whole).and_then(|(frame, whole)| self.copy(screen, frame, whole));
        let (width, height) = covered.map_or((0, 0), |c| (c.width, c.height));
        let right = Rect { x: width, y: area.y, width: area.width - width, height };
        let below = Rect { y: area.y + height, height: area.height - height, ..area };
        screen.fill(right, BLACK);
        screen.fill(below, BLACK);
        screen.bounds()
    }

    /// Shows the lock screen: Duet's strip, and in `areas` (screen
    /// rectangles, one per persona) each persona's name on its colour, the
    /// `selected` one (the keyboard's choice) framed in white. Nothing of
    /// any persona's content. Returns the rectangle to flush.
    pub fn show_lock(
        &mut self,
        screen: &mut Pixels,
        areas: &[Rect],
        selected: Option<usize>,
    ) -> Rect {
        self.showing = Showing::Lock;
        self.draw_strip(screen, "Duet - locked", LOCK_STRIP);
        let below = self.persona_area();
        screen.fill(below, LOCK_BACKGROUND);
        let hint_y = STRIP_HEIGHT + below.height / 4;
        screen.centred_text("swipe up to unlock", below, hint_y, HINT_TEXT_SCALE, WHITE);
        let keys_y = hint_y + 8 * HINT_TEXT_SCALE * 2;
        screen.centred_text(
            "or keys 1-9, or arrows + Enter",
            below,
            keys_y,
            HINT_TEXT_SCALE,
            WHITE,
        );
        for (index, (look, &area)) in self.looks.iter().zip(areas).enumerate() {
            let Some(area) = intersect(area, below) else { continue };
            screen.fill(area, look.colour);
            if selected == Some(index) {
                frame(screen, area, SELECTED_FRAME, WHITE);
            }
            let ink = ink_on(look.colour);
            let name_y = area.y + area.height / 3;
            screen.centred_text(look.name, area, name_y, STRIP_TEXT_SCALE, ink);
            let hint_y = name_y + 8 * STRIP_TEXT_SCALE + 16;
            screen.centred_text("swipe up", area, hint_y, HINT_TEXT_SCALE, ink);
        }
        screen.bounds()
    }

    fn draw_strip(&self, screen: &mut Pixels, text: &str, colour: u32) {
        let strip = Rect { x: 0, y: 0, width: self.width, height: STRIP_HEIGHT };
        screen.fill(strip, colour);
        let y = (STRIP_HEIGHT - 8 * STRIP_TEXT_SCALE) / 2;
        screen.text(text, 16, y, STRIP_TEXT_SCALE, ink_on(colour), strip);
    }

    /// Copies `rect` of `frame` (frame coordinates) into the persona area,
    /// clipped to the frame and the area; returns the screen rectangle.
    fn copy(&self, screen: &mut Pixels, frame: &dyn Frame, rect: Rect) -> Option<Rect> {
        let frame_bounds = Rect { x: 0, y: 0, width: frame.width(), height: frame.height() };
        let (width, height) = self.persona_size();
        let area = Rect { x: 0, y: 0, width, height };
        let source = intersect(intersect(rect, frame_bounds)?, area)?;
        for y in source.y..source.y + source.height {
            let Some(span) = screen.span(source.x, STRIP_HEIGHT + y, source.width) else {
                continue;
            };
            // A row the guest's backing does not cover goes black: never
            // what showed there before (another persona's, on a switch).
            if frame.read_row(y, source.x, span) {
                span.iter_mut().for_each(|pixel| *pixel |= OPAQUE);
            } else {
                span.fill(OPAQUE | BLACK);
            }
        }
        Some(Rect { y: STRIP_HEIGHT + source.y, ..source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const W: u32 = 72;
    const H: u32 = 128;

    /// A guest's scanout: every pixel `colour`, or a pattern of its own.
    struct Solid {
        width: u32,
        height: u32,
        colour: u32,
    }

    impl Frame for Solid {
        fn width(&self) -> u32 {
            self.width
        }
        fn height(&self) -> u32 {
            self.height
        }
        fn read_row(&self, y: u32, x: u32, out: &mut [u32]) -> bool {
            if y >= self.height || x as usize + out.len() > self.width as usize {
                return false;
            }
            out.fill(self.colour);
            true
        }
    }

    fn looks() -> Vec<Look> {
        vec![
            Look { name: "personal", colour: 0x1e6fd9 },
            Look { name: "corporate", colour: 0xe8730c },
        ]
    }

    fn at(screen: &[u32], x: u32, y: u32) -> u32 {
        screen[(y * W + x) as usize] & 0xff_ffff
    }

    fn setup() -> (Compositor, Vec<u32>) {
        (Compositor::new(W, H, looks()), vec![0x5a5a5a; (W * H) as usize])
    }

    fn pixels(buffer: &mut [u32]) -> Pixels<'_> {
        Pixels { pixels: buffer, width: W, height: H }
    }

    fn full_frame(colour: u32) -> Solid {
        Solid { width: W, height: H - STRIP_HEIGHT, colour }
    }

    #[test]
    fn the_persona_area_is_the_screen_less_the_strip() {
        let (compositor, _) = setup();
        assert_eq!(compositor.persona_size(), (W, H - 48));
        assert_eq!(compositor.persona_area(), Rect { x: 0, y: 48, width: W, height: H - 48 });
    }

    #[test]
    fn a_flush_in_front_is_copied_below_the_strip() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, None);
        let frame = full_frame(0x00ff00);
        let rect = Rect { x: 4, y: 0, width: 10, height: 3 };
        let changed = compositor.flushed(&mut screen, 0, &frame, rect);
        assert_eq!(changed, Some(Rect { x: 4, y: 48, width: 10, height: 3 }));
        assert_eq!(at(&buffer, 4, 48), 0x00ff00);
        assert_eq!(at(&buffer, 13, 50), 0x00ff00);
        assert_eq!(at(&buffer, 14, 48), 0, "outside the rect: black from the switch");
        assert_eq!(at(&buffer, 4, 51), 0);
        assert_eq!(buffer[(48 * W + 4) as usize] >> 24, 0xff, "written opaque");
    }

    #[test]
    fn a_guest_never_writes_the_strip_or_past_its_area() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 1, None);
        let strip_before: Vec<u32> = buffer[..(48 * W) as usize].to_vec();
        let mut screen = pixels(&mut buffer);
        // A scanout bigger than the area, flushed whole and beyond.
        let huge = Solid { width: 4 * W, height: 4 * H, colour: 0x123456 };
        let rect = Rect { x: 0, y: 0, width: u32::MAX, height: u32::MAX };
        let changed = compositor.flushed(&mut screen, 1, &huge, rect);
        assert_eq!(changed, Some(Rect { x: 0, y: 48, width: W, height: H - 48 }));
        assert_eq!(&buffer[..(48 * W) as usize], &strip_before[..]);
        assert!(buffer[(48 * W) as usize..].iter().all(|&p| p & 0xff_ffff == 0x123456));
        // A rect wholly outside the frame changes nothing.
        let mut screen = pixels(&mut buffer);
        let away = Rect { x: 5000, y: 5000, width: 10, height: 10 };
        assert_eq!(compositor.flushed(&mut screen, 1, &huge, away), None);
    }

    #[test]
    fn a_background_flush_copies_nothing() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&full_frame(0x0000ff)));
        let before = buffer.clone();
        let mut screen = pixels(&mut buffer);
        let other = full_frame(0xff0000);
        let whole = Rect { x: 0, y: 0, width: W, height: H };
        assert_eq!(compositor.flushed(&mut screen, 1, &other, whole), None);
        assert_eq!(compositor.scanout_off(&mut screen, 1), None);
        assert_eq!(buffer, before);
    }

    #[test]
    fn nothing_of_a_persona_shows_on_the_lock_screen() {
        let (mut compositor, mut buffer) = setup();
        let frame = full_frame(0xabcdef);
        let whole = Rect { x: 0, y: 0, width: W, height: H };
        let mut screen = pixels(&mut buffer);
        // Before the first lock screen is drawn, too.
        assert_eq!(compositor.flushed(&mut screen, 0, &frame, whole), None);
        compositor.show_persona(&mut screen, 0, Some(&frame));
        let areas = [
            Rect { x: 2, y: 64, width: 32, height: 64 },
            Rect { x: 38, y: 64, width: 32, height: 64 },
        ];
        compositor.show_lock(&mut screen, &areas, Some(1));
        assert_eq!(compositor.showing(), Showing::Lock);
        assert_eq!(compositor.flushed(&mut screen, 0, &frame, whole), None);
        assert!(buffer.iter().all(|&p| p & 0xff_ffff != 0xabcdef));
        assert_eq!(at(&buffer, 0, 0), LOCK_STRIP);
        assert_eq!(at(&buffer, 1, 50), LOCK_BACKGROUND);
        // Each card is its persona's colour (away from its text).
        assert_eq!(at(&buffer, 3, 126), 0x1e6fd9);
        assert_eq!(at(&buffer, 44, 120), 0xe8730c);
        // Only the selected card is framed.
        assert_eq!(at(&buffer, 39, 126), WHITE);
    }

    #[test]
    fn a_switch_shows_the_stored_scanout_and_the_indicator() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&full_frame(0x111111)));
        let changed = compositor.show_persona(&mut screen, 1, Some(&full_frame(0x222222)));
        assert_eq!(changed, Rect { x: 0, y: 0, width: W, height: H });
        assert_eq!(compositor.showing(), Showing::Persona(1));
        assert!(buffer[(48 * W) as usize..].iter().all(|&p| p & 0xff_ffff == 0x222222));
        // The strip: corporate's colour, with its name in ink on it.
        assert_eq!(at(&buffer, 0, 0), 0xe8730c);
        assert_eq!(at(&buffer, W - 1, 47), 0xe8730c);
        let strip = &buffer[..(48 * W) as usize];
        assert!(strip.iter().any(|&p| p & 0xff_ffff == ink_on(0xe8730c)), "the name is drawn");
        // A scanout smaller than the area: the rest is black, not stale.
        let small = Solid { width: 10, height: 10, colour: 0x333333 };
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&small));
        assert_eq!(at(&buffer, 9, 57), 0x333333);
        assert_eq!(at(&buffer, 10, 57), 0);
        assert_eq!(at(&buffer, 0, 58), 0);
        assert_eq!(at(&buffer, 0, 0), 0x1e6fd9);
    }

    /// A scanout whose backing covers no row.
    struct Unbacked;

    impl Frame for Unbacked {
        fn width(&self) -> u32 {
            W
        }
        fn height(&self) -> u32 {
            H
        }
        fn read_row(&self, _y: u32, _x: u32, _out: &mut [u32]) -> bool {
            false
        }
    }

    #[test]
    fn nothing_of_the_previous_persona_survives_a_switch() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&full_frame(0x777777)));
        compositor.show_persona(&mut screen, 1, Some(&Unbacked));
        assert!(buffer[(48 * W) as usize..].iter().all(|&p| p & 0xff_ffff == 0));
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&full_frame(0x777777)));
        compositor.show_persona(&mut screen, 1, None);
        assert!(buffer[(48 * W) as usize..].iter().all(|&p| p & 0xff_ffff == 0));
    }

    #[test]
    fn scanout_off_blanks_the_area_in_front_only() {
        let (mut compositor, mut buffer) = setup();
        let mut screen = pixels(&mut buffer);
        compositor.show_persona(&mut screen, 0, Some(&full_frame(0x444444)));
        assert_eq!(compositor.scanout_off(&mut screen, 0), Some(compositor.persona_area()));
        assert!(buffer[(48 * W) as usize..].iter().all(|&p| p & 0xff_ffff == 0));
        assert_eq!(at(&buffer, 0, 0), 0x1e6fd9);
    }

    #[test]
    fn text_is_clipped_and_ink_contrasts() {
        let mut buffer = vec![0; (W * H) as usize];
        let mut screen = pixels(&mut buffer);
        let clip = Rect { x: 0, y: 0, width: 20, height: 8 };
        screen.text("WWWWWWWW", 0, 0, 1, WHITE, clip);
        assert!(buffer.iter().enumerate().all(|(i, &p)| p == 0 || (i as u32 % W) < 20));
        assert!(buffer.iter().any(|&p| p != 0));
        assert_eq!(ink_on(0xffffff), BLACK);
        assert_eq!(ink_on(0x1e6fd9), WHITE);
        assert_eq!(intersect(Rect { x: 0, y: 0, width: 5, height: 5 }, clip).unwrap().width, 5);
        assert_eq!(intersect(Rect { x: 30, y: 0, width: 5, height: 5 }, clip), None);
    }
}
