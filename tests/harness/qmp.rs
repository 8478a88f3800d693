//! A QMP client (QEMU's JSON machine protocol, over the unix socket that
//! `-qmp unix:PATH,server=on,wait=off` opens): what the display tests use
//! to look at the screen (`screendump`, read back as a PPM picture) and to
//! touch it and press keys (`input-send-event`), as a person holding the
//! phone would.
//!
//! Touches go to QEMU's `virtio-multitouch-device` as its multitouch
//! events: `begin` (slot and tracking ID), the touch button, `data` for X
//! and Y on QEMU's 0..=0x7fff axes (scaled here from screen pixels), and
//! `end` with tracking ID -1 to lift. Each `input-send-event` is one frame:
//! QEMU ends it with a `SYN_REPORT`. Frames are a few milliseconds apart so
//! the hypervisor sees a finger move, not a teleport.

use serde_json::{json, Value};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// QEMU's absolute axes run from 0 to this.
pub const AXIS_MAX: u32 = 0x7fff;
/// Between the frames of a touch, and between a key's press and release.
const EVENT_GAP: Duration = Duration::from_millis(15);
/// How long one command may take to answer (a screendump of a busy
/// machine can be slow).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to QEMU.
#[derive(Debug)]
pub enum QmpError {
    /// The socket could not be reached or broke.
    Io(std::io::Error),
    /// QEMU said something that is not QMP, or nothing.
    Protocol(String),
    /// QEMU refused a command.
    Refused { command: String, class: String, desc: String },
    /// A picture is not a binary PPM Duet can read.
    Picture(String),
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            QmpError::Io(e) => write!(f, "QMP socket: {e}"),
            QmpError::Protocol(what) => write!(f, "QMP protocol: {what}"),
            QmpError::Refused { command, class, desc } => {
                write!(f, "QEMU refused {command}: {class}: {desc}")
            }
            QmpError::Picture(what) => write!(f, "screendump picture: {what}"),
        }
    }
}

impl std::error::Error for QmpError {}

impl From<std::io::Error> for QmpError {
    fn from(e: std::io::Error) -> Self {
        QmpError::Io(e)
    }
}

/// A connection to one QEMU's QMP socket, past the capabilities handshake.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The touch screen's size in pixels, for scaling touches.
    screen: (u32, u32),
    /// The next touch's tracking ID.
    tracking_id: i64,
    /// Where screendumps are written.
    scratch: PathBuf,
}

impl Qmp {
    /// Connects to the socket at `path`, waiting up to `timeout` for QEMU
    /// to open it, and negotiates capabilities. Touches are scaled for a
    /// screen of `screen` (width, height) pixels.
    pub fn connect(path: &Path, screen: (u32, u32), timeout: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => return Err(QmpError::Io(e)),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let scratch = path.with_extension("ppm");
        let mut qmp =
            Qmp { reader: BufReader::new(stream), writer, screen, tracking_id: 1, scratch };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("no greeting but {greeting}")));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` and returns its `return` value.
    /// Asynchronous events that arrive meanwhile are skipped.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}")?;
        loop {
            let answer = self.read()?;
            if let Some(value) = answer.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = answer.get("error") {
                let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("?").into();
                return Err(QmpError::Refused {
                    command: command.into(),
                    class: text("class"),
                    desc: text("desc"),
                });
            }
            if answer.get("event").is_none() {
                return Err(QmpError::Protocol(format!("unexpected answer {answer}")));
            }
        }
    }

    fn read(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Protocol("QEMU closed the socket".into()));
        }
        serde_json::from_str(&line).map_err(|e| QmpError::Protocol(format!("{e}: {line:?}")))
    }

    /// Writes what the screen shows to `path`, as a binary PPM.
    pub fn screendump(&mut self, path: &Path) -> Result<(), QmpError> {
        let filename = path.to_str().ok_or_else(|| QmpError::Picture("path not UTF-8".into()))?;
        self.execute("screendump", json!({ "filename": filename, "format": "ppm" }))?;
        Ok(())
    }

    /// What the screen shows now.
    pub fn screenshot(&mut self) -> Result<Picture, QmpError> {
        let path = self.scratch.clone();
        self.screendump(&path)?;
        let bytes = std::fs::read(&path)?;
        Picture::from_ppm(&bytes)
    }

    /// Sends `events` (QAPI `InputEvent`s) as one frame.
    pub fn send_events(&mut self, events: Vec<Value>) -> Result<(), QmpError> {
        self.execute("input-send-event", json!({ "events": events }))?;
        Ok(())
    }

    /// Presses (`down`) or releases the key QEMU calls `qcode` (e.g. `ret`,
    /// `a`, `1`, `power`).
    pub fn key(&mut self, qcode: &str, down: bool) -> Result<(), QmpError> {
        let key = json!({ "type": "qcode", "data": qcode });
        self.send_events(vec![json!({ "type": "key", "data": { "key": key, "down": down } })])
    }

    /// Presses and releases `qcode`.
    pub fn press_key(&mut self, qcode: &str) -> Result<(), QmpError> {
        self.key(qcode, true)?;
        std::thread::sleep(EVENT_GAP);
        self.key(qcode, false)?;
        std::thread::sleep(EVENT_GAP);
        Ok(())
    }

    /// Types `text` (lower-case letters, digits, space, newline and a few
    /// marks) key by key.
    pub fn type_text(&mut self, text: &str) -> Result<(), QmpError> {
        for c in text.chars() {
            let qcode = match c {
                'a'..='z' | '0'..='9' => c.to_string(),
                ' ' => "spc".into(),
                '\n' => "ret".into(),
                '-' => "minus".into(),
                '.' => "dot".into(),
                '/' => "slash".into(),
                '=' => "equal".into(),
                other => return Err(QmpError::Protocol(format!("no key for {other:?}"))),
            };
            self.press_key(&qcode)?;
        }
        Ok(())
    }

    /// A finger touching at pixel (x, y), moving through `path`, and
    /// lifting where it ends; one frame per point, [`EVENT_GAP`] apart.
    pub fn touch(&mut self, points: &[(u32, u32)]) -> Result<(), QmpError> {
        let Some((&(x, y), moves)) = points.split_first() else { return Ok(()) };
        let id = self.tracking_id;
        self.tracking_id += 1;
        let mut frame = vec![mtt("begin", id, "x", 0), button(true)];
        frame.extend(self.position(id, x, y));
        self.send_events(frame)?;
        for &(x, y) in moves {
            std::thread::sleep(EVENT_GAP);
            let mut frame = vec![mtt("update", id, "x", 0)];
            frame.extend(self.position(id, x, y));
            self.send_events(frame)?;
        }
        std::thread::sleep(EVENT_GAP);
        self.send_events(vec![mtt("end", -1, "x", 0), button(false)])?;
        std::thread::sleep(EVENT_GAP);
        Ok(())
    }

    /// A tap at pixel (x, y).
    pub fn tap(&mut self, x: u32, y: u32) -> Result<(), QmpError> {
        self.touch(&[(x, y)])
    }

    /// A quick swipe in a straight line from `from` to `to` (pixels), in
    /// `steps` moves.
    pub fn swipe(&mut self, from: (u32, u32), to: (u32, u32), steps: u32) -> Result<(), QmpError> {
        let steps = steps.max(1);
        let along = |a: u32, b: u32, i: u32| {
            (i64::from(a) + (i64::from(b) - i64::from(a)) * i64::from(i) / i64::from(steps)) as u32
        };
        let points: Vec<_> =
            (0..=steps).map(|i| (along(from.0, to.0, i), along(from.1, to.1, i))).collect();
        self.touch(&points)
    }

    /// The `data` events that put touch `id` at pixel (x, y).
    fn position(&self, id: i64, x: u32, y: u32) -> [Value; 2] {
        let scale = |p: u32, size: u32| {
            i64::from(p.min(size - 1)) * i64::from(AXIS_MAX) / i64::from((size - 1).max(1))
        };
        [
            mtt("data", id, "x", scale(x, self.screen.0)),
            mtt("data", id, "y", scale(y, self.screen.1)),
        ]
    }
}

/// A multitouch event of `kind` for slot 0.
fn mtt(kind: &str, tracking_id: i64, axis: &str, value: i64) -> Value {
    json!({ "type": "mtt", "data": {
        "type": kind, "slot": 0, "tracking-id": tracking_id, "axis": axis, "value": value
    }})
}

fn button(down: bool) -> Value {
    json!({ "type": "btn", "data": { "button": "touch", "down": down } })
}

/// An RGB picture, as `screendump` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Row by row from the top left.
    pub pixels: Vec<[u8; 3]>,
}

impl Picture {
    /// Reads a binary PPM (`P6`, maximum value 255), comments allowed in
    /// the header.
    pub fn from_ppm(bytes: &[u8]) -> Result<Picture, QmpError> {
        let bad = |what: &str| QmpError::Picture(what.to_string());
        let mut at = 0;
        let mut fields = Vec::new();
        while fields.len() < 4 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if start == at {
                return Err(bad("the header ends early"));
            }
            fields.push(std::str::from_utf8(&bytes[start..at]).map_err(|_| bad("header"))?);
        }
        if fields[0] != "P6" {
            return Err(bad(&format!("not a binary PPM but {:?}", fields[0])));
        }
        let number = |s: &str| s.parse::<u32>().map_err(|_| bad(&format!("bad number {s:?}")));
        let (width, height, max) = (number(fields[1])?, number(fields[2])?, number(fields[3])?);
        if max != 255 {
            return Err(bad(&format!("maximum value {max}, not 255")));
        }
        // One whitespace byte separates the header from the pixels.
        let data = bytes.get(at + 1..).ok_or_else(|| bad("no pixel data"))?;
        let count = width as usize * height as usize;
        if data.len() < count * 3 {
            return Err(bad(&format!("{} bytes of pixels for {width}x{height}", data.len())));
        }
        let pixels = data[..count * 3].chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        Ok(Picture { width, height, pixels })
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[y as usize * self.width as usize + x as usize]
    }

    /// How many pixels of the rectangle (x, y, width, height) satisfy
    /// `test`, and how many it has (clipped to the picture).
    pub fn count(
        &self,
        (x, y, width, height): (u32, u32, u32, u32),
        test: impl Fn([u8; 3]) -> bool,
    ) -> (usize, usize) {
        let (x_end, y_end) = ((x + width).min(self.width), (y + height).min(self.height));
        let mut hits = 0;
        let mut all = 0;
        for row in y..y_end {
            for column in x..x_end {
                all += 1;
                hits += usize::from(test(self.pixel(column, row)));
            }
        }
        (hits, all)
    }

    /// The share (0 to 1) of the rectangle whose pixels are within
    /// `tolerance` of `colour` in each channel.
    pub fn share_near(&self, rect: (u32, u32, u32, u32), colour: [u8; 3], tolerance: u8) -> f64 {
        let (hits, all) = self.count(rect, |p| near(p, colour, tolerance));
        if all == 0 {
            0.0
        } else {
            hits as f64 / all as f64
        }
    }

    /// Writes the picture as a binary PPM (for a failing test's evidence).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        bytes.extend(self.pixels.iter().flatten());
        std::fs::write(path, bytes)
    }

    /// Writes the picture as a PNG (screenshots for the docs).
    pub fn save_png(&self, path: &Path) -> Result<(), QmpError> {
        let file = std::fs::File::create(path)?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let data: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        let written = encoder.write_header().and_then(|mut writer| {
            writer.write_image_data(&data)?;
            writer.finish()
        });
        written.map_err(|e| QmpError::Picture(format!("cannot write {}: {e}", path.display())))
    }
}

/// Whether `a` is within `tolerance` of `b` in every channel.
pub fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= tolerance)
}

/// A socket path for test `name` in the temporary directory (unix socket
/// paths must stay short), removed first if a stale one is there.
pub fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("duet-qmp-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ppm_with_a_comment_is_read() {
        let mut bytes = b"P6\n# made by hand\n2 2\n255\n".to_vec();
        bytes.extend([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let picture = Picture::from_ppm(&bytes).unwrap();
        assert_eq!((picture.width, picture.height), (2, 2));
        assert_eq!(picture.pixel(1, 0), [4, 5, 6]);
        assert_eq!(picture.pixel(0, 1), [7, 8, 9]);
        assert_eq!(picture.count((0, 0, 2, 2), |p| p[0] > 3), (3, 4));
        assert_eq!(picture.share_near((1, 1, 5, 5), [10, 11, 12], 0), 1.0);
    }

    #[test]
    fn a_saved_picture_reads_back() {
        let picture = Picture { width: 3, height: 1, pixels: vec![[0, 0, 0], [9, 9, 9], [255; 3]] };
        let path = std::env::temp_dir().join(format!("duet-ppm-{}.ppm", std::process::id()));
        picture.save(&path).unwrap();
        assert_eq!(Picture::from_ppm(&std::fs::read(&path).unwrap()).unwrap(), picture);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn bad_pictures_are_named() {
        for (bytes, what) in [
            (&b"P3\n1 1\n255\n"[..], "not a binary PPM"),
            (b"P6\n1 1\n65535\n", "maximum value"),
            (b"P6\n2 2\n255\n\0\0\0", "bytes of pixels"),
            (b"P6\n2", "header ends early"),
        ] {
            let error = Picture::from_ppm(bytes).unwrap_err().to_string();
            assert!(error.contains(what), "{error}");
        }
    }
}
