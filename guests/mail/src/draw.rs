//! The interface on the guest's own display: a [`Page`] (a title bar, lines
//! of text, some of them selected, and a status bar; `ui` makes them) drawn
//! into a framebuffer as text in the `font8x8` bitmap font at twice its
//! size. Pure: it writes pixels into a byte slice, and the guest flushes
//! them to its virtio-gpu (`display.rs` in the guest).
//!
//! The grid: rows of [`CELL_HEIGHT`] pixels from the top, columns of
//! [`CELL_WIDTH`] after a [`MARGIN`]; row 0 is the title bar, the last whole
//! row the status bar, the rows between the page's lines (scrolled so that
//! its `focus` shows). Text past the right edge is cut off, characters that
//! are not printable ASCII are drawn as `?`, and a display too small for a
//! row gets only the background.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use font8x8::legacy::BASIC_LEGACY;

/// The font's 8x8 glyphs are drawn this many times larger.
pub const SCALE: usize = 2;
pub const CELL_WIDTH: usize = 8 * SCALE;
/// A glyph's height and 2 pixels above and below it.
pub const CELL_HEIGHT: usize = 8 * SCALE + 4;
/// Pixels left of the first column (and kept free right of the last).
pub const MARGIN: usize = 8;
/// Bytes per pixel: B, G, R, X (virtio-gpu's B8G8R8A8, which the
/// `virtio-drivers` crate sets up).
pub const PIXEL_BYTES: usize = 4;

/// Colours as R, G, B.
pub const BACKGROUND: [u8; 3] = [0xf4, 0xf4, 0xf0];
pub const TEXT: [u8; 3] = [0x10, 0x18, 0x20];
pub const BAR: [u8; 3] = [0x2a, 0x4a, 0x6a];
pub const BAR_TEXT: [u8; 3] = [0xff, 0xff, 0xff];

/// One line of a page; a selected one is drawn inverted (background
/// colour on the text colour).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub selected: bool,
}

impl Line {
    pub fn plain(text: impl Into<String>) -> Line {
        Line { text: text.into(), selected: false }
    }
}

/// What the display shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub title: String,
    pub lines: Vec<Line>,
    pub status: String,
    /// Lines that must be on the display (the selection, the field being
    /// typed); the page scrolls as little as it takes.
    pub focus: Range<usize>,
}

/// A framebuffer: `width` x `height` pixels, row after row.
pub struct Canvas<'a> {
    bytes: &'a mut [u8],
    width: usize,
    height: usize,
}

impl<'a> Canvas<'a> {
    /// None if `bytes` is too small for `width` x `height` pixels.
    pub fn new(bytes: &'a mut [u8], width: usize, height: usize) -> Option<Canvas<'a>> {
        let needed = width.checked_mul(height)?.checked_mul(PIXEL_BYTES)?;
        (bytes.len() >= needed).then_some(Canvas { bytes, width, height })
    }

    /// The pixel at (x, y) as R, G, B.
    pub fn pixel(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y * self.width + x) * PIXEL_BYTES;
        Some([self.bytes[at + 2], self.bytes[at + 1], self.bytes[at]])
    }

    /// Fills the rectangle, cut to the canvas.
    fn fill(&mut self, x: usize, y: usize, width: usize, height: usize, [r, g, b]: [u8; 3]) {
        let (right, bottom) = ((x + width).min(self.width), (y + height).min(self.height));
        for row in y.min(bottom)..bottom {
            let start = (row * self.width + x.min(right)) * PIXEL_BYTES;
            let end = (row * self.width + right) * PIXEL_BYTES;
            for pixel in self.bytes[start..end].chunks_exact_mut(PIXEL_BYTES) {
                pixel.copy_from_slice(&[b, g, r, 0xff]);
            }
        }
    }

    /// Text in row `row` from column 0, in `colour`, cut at the margin.
    fn text(&mut self, row: usize, text: &str, colour: [u8; 3]) {
        let right = self.width.saturating_sub(MARGIN);
        for (column, c) in text.chars().enumerate() {
            let (x, y) = origin(row, column);
            if x + CELL_WIDTH > right {
                break;
            }
            let glyph = BASIC_LEGACY[glyph_index(c)];
            for (dy, bits) in glyph.iter().enumerate() {
                for dx in (0..8).filter(|dx| bits & (1 << dx) != 0) {
                    self.fill(x + dx * SCALE, y + dy * SCALE, SCALE, SCALE, colour);
                }
            }
        }
    }
}

/// The font's index for `c`: printable ASCII, or `?`.
fn glyph_index(c: char) -> usize {
    if (' '..='~').contains(&c) {
        c as usize
    } else {
        usize::from(b'?')
    }
}

/// The top-left pixel of the glyph in `row`, `column`.
pub fn origin(row: usize, column: usize) -> (usize, usize) {
    (MARGIN + column * CELL_WIDTH, row * CELL_HEIGHT + 2)
}

/// Whole rows a display `height` pixels high has.
pub fn rows(height: usize) -> usize {
    height / CELL_HEIGHT
}

/// Draws `page` over the whole canvas.
pub fn render(page: &Page, canvas: &mut Canvas) {
    let (width, height) = (canvas.width, canvas.height);
    canvas.fill(0, 0, width, height, BACKGROUND);
    let rows = rows(height);
    if rows == 0 {
        return;
    }
    bar(canvas, 0, CELL_HEIGHT, &page.title);
    if rows == 1 {
        return;
    }
    // The status bar also takes the pixels below the last whole row.
    bar(canvas, rows - 1, height - (rows - 1) * CELL_HEIGHT, &page.status);
    let shown = rows - 2;
    let first = page.focus.end.saturating_sub(shown).min(page.focus.start);
    for (i, line) in page.lines.iter().skip(first).take(shown).enumerate() {
        let row = 1 + i;
        let colour = if line.selected {
            canvas.fill(0, row * CELL_HEIGHT, width, CELL_HEIGHT, TEXT);
            BACKGROUND
        } else {
            TEXT
        };
        canvas.text(row, &line.text, colour);
    }
}

/// A bar `height` pixels high from row `row` down, holding `text`.
fn bar(canvas: &mut Canvas, row: usize, height: usize, text: &str) {
    canvas.fill(0, row * CELL_HEIGHT, canvas.width, height, BAR);
    canvas.text(row, text, BAR_TEXT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn page(lines: &[(&str, bool)]) -> Page {
        Page {
            title: "Inbox".into(),
            lines: lines.iter().map(|&(t, s)| Line { text: t.into(), selected: s }).collect(),
            status: "keys".into(),
            focus: 0..0,
        }
    }

    fn drawn(page: &Page, width: usize, height: usize) -> Vec<u8> {
        let mut bytes = vec![0; width * height * PIXEL_BYTES];
        render(page, &mut Canvas::new(&mut bytes, width, height).unwrap());
        bytes
    }

    /// True if the glyph cell at (row, column) holds `c` in `fg` on `bg`.
    fn glyph_at(
        canvas: &Canvas,
        row: usize,
        column: usize,
        c: char,
        fg: [u8; 3],
        bg: [u8; 3],
    ) -> bool {
        let (x, y) = origin(row, column);
        let glyph = BASIC_LEGACY[glyph_index(c)];
        (0..8 * SCALE).all(|py| {
            (0..8 * SCALE).all(|px| {
                let on = glyph[py / SCALE] & (1 << (px / SCALE)) != 0;
                canvas.pixel(x + px, y + py) == Some(if on { fg } else { bg })
            })
        })
    }

    #[test]
    fn glyphs_land_in_their_cells_in_the_text_colour() {
        let page = page(&[("Hi there", false), ("second", false)]);
        let mut bytes = drawn(&page, 320, 200);
        let canvas = Canvas::new(&mut bytes, 320, 200).unwrap();
        // The title bar, then the page's lines from row 1.
        assert!(glyph_at(&canvas, 0, 0, 'I', BAR_TEXT, BAR));
        assert!(glyph_at(&canvas, 1, 0, 'H', TEXT, BACKGROUND));
        assert!(glyph_at(&canvas, 1, 3, 't', TEXT, BACKGROUND));
        assert!(glyph_at(&canvas, 2, 5, 'd', TEXT, BACKGROUND));
        assert!(!glyph_at(&canvas, 2, 5, 'e', TEXT, BACKGROUND));
        // The status bar is the last whole row (200 / 20 = 10 rows).
        assert!(glyph_at(&canvas, 9, 0, 'k', BAR_TEXT, BAR));
        // On a display of 205 rows it also takes the 5 below.
        let mut bytes = drawn(&page, 320, 205);
        let canvas = Canvas::new(&mut bytes, 320, 205).unwrap();
        assert!(glyph_at(&canvas, 9, 0, 'k', BAR_TEXT, BAR));
        assert_eq!(canvas.pixel(0, 204), Some(BAR));
        assert_eq!(canvas.pixel(0, 9 * CELL_HEIGHT - 1), Some(BACKGROUND));
        // The margin and the space between rows are background.
        assert_eq!(canvas.pixel(0, CELL_HEIGHT + 5), Some(BACKGROUND));
        assert_eq!(canvas.pixel(100, 3 * CELL_HEIGHT + 1), Some(BACKGROUND));
        // Bytes are B, G, R, X.
        let at = (CELL_HEIGHT * 320 + 5) * PIXEL_BYTES;
        assert_eq!(bytes[at..at + 4], [BACKGROUND[2], BACKGROUND[1], BACKGROUND[0], 0xff]);
    }

    #[test]
    fn a_selected_line_is_inverted_across_the_display() {
        let page = page(&[("one", false), ("two", true)]);
        let mut bytes = drawn(&page, 320, 200);
        let canvas = Canvas::new(&mut bytes, 320, 200).unwrap();
        assert!(glyph_at(&canvas, 1, 0, 'o', TEXT, BACKGROUND));
        assert!(glyph_at(&canvas, 2, 0, 't', BACKGROUND, TEXT));
        assert_eq!(canvas.pixel(0, 2 * CELL_HEIGHT), Some(TEXT));
        assert_eq!(canvas.pixel(319, 3 * CELL_HEIGHT - 1), Some(TEXT));
        assert_eq!(canvas.pixel(319, 3 * CELL_HEIGHT), Some(BACKGROUND));
    }

    #[test]
    fn long_lines_are_cut_at_the_margin_and_odd_characters_are_question_marks() {
        let long = "x".repeat(500);
        let page = page(&[(&long, false), ("a\u{1b}é", false)]);
        let mut bytes = drawn(&page, 100, 100);
        let canvas = Canvas::new(&mut bytes, 100, 100).unwrap();
        // (100 - 2 * 8) / 16 = 5 whole columns; nothing right of them.
        assert!(glyph_at(&canvas, 1, 4, 'x', TEXT, BACKGROUND));
        let (x, _) = origin(1, 5);
        for y in CELL_HEIGHT..2 * CELL_HEIGHT {
            for x in x..100 {
                assert_eq!(canvas.pixel(x, y), Some(BACKGROUND), "at {x},{y}");
            }
        }
        assert!(glyph_at(&canvas, 2, 1, '?', TEXT, BACKGROUND));
        assert!(glyph_at(&canvas, 2, 2, '?', TEXT, BACKGROUND));
    }

    #[test]
    fn the_page_scrolls_to_its_focus() {
        let texts: Vec<String> = (0..30).map(|i| alloc::format!("{}", i % 10)).collect();
        let mut lines: Vec<(&str, bool)> = texts.iter().map(|t| (t.as_str(), false)).collect();
        lines[25].1 = true;
        let mut page = page(&lines);
        page.focus = 25..27;
        // 10 rows: title, 8 lines, status; lines 19 to 26 show.
        let mut bytes = drawn(&page, 200, 200);
        let canvas = Canvas::new(&mut bytes, 200, 200).unwrap();
        assert!(glyph_at(&canvas, 1, 0, '9', TEXT, BACKGROUND));
        assert!(glyph_at(&canvas, 7, 0, '5', BACKGROUND, TEXT));
        assert!(glyph_at(&canvas, 8, 0, '6', TEXT, BACKGROUND));
        // A focus at the top shows the first lines.
        page.focus = 0..1;
        let mut bytes = drawn(&page, 200, 200);
        let canvas = Canvas::new(&mut bytes, 200, 200).unwrap();
        assert!(glyph_at(&canvas, 1, 0, '0', TEXT, BACKGROUND));
    }

    #[test]
    fn tiny_and_empty_displays_do_not_panic() {
        let page = page(&[("text", true)]);
        for (width, height) in [(0, 0), (1, 1), (7, 300), (300, 7), (17, 19), (30, 21), (30, 45)] {
            let bytes = drawn(&page, width, height);
            assert!(bytes.chunks_exact(4).all(|p| p[3] == 0xff));
        }
        let mut small = [0u8; 15];
        assert!(Canvas::new(&mut small, 2, 2).is_none());
        assert!(Canvas::new(&mut small, usize::MAX, 2).is_none());
        render(&Page::default(), &mut Canvas::new(&mut [0u8; 16], 2, 2).unwrap());
    }
}
