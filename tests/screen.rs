//! The phone's screen as Duet drives it, seen through QEMU's monitor (QMP):
//! at boot the lock screen shows each persona's colour and Duet's own strip;
//! a key on the keyboard unlocks into a persona, whose indicator then
//! fills the strip in its colour; the power key locks again; the switch
//! latency appears in Duet's counters.

use duet_tests::{manifest, Machine};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LINUX_BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
/// Asks Duet to print its counters.
const COUNTERS: &str = "\x1ds";

const PERSONAL: u32 = 0x00aa55;
const CORPORATE: u32 = 0xcc3300;
/// The lock screen's strip (`screen::compose`).
const LOCK_STRIP: u32 = 0x202020;

/// Two small Linux personas with colours of the test's own.
fn two_personas() -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let vm = |name: &str, colour: u32| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{name}\"\nkernel = {:?}\ninitrd = {:?}\n\
             cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 128\nvcpus = 1\n\
             colour = \"#{colour:06x}\"\n\n",
            guests.join("Image"),
            guests.join("initramfs.cpio"),
        )
    };
    let text = format!(
        "[screen]\nlock_after_idle_seconds = 0\n\n{}{}",
        vm("personal", PERSONAL),
        vm("corporate", CORPORATE)
    );
    manifest("screen", &text)
}

/// A minimal QMP client: one command at a time, events skipped.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(path: &Path) -> Qmp {
        let deadline = Instant::now() + STEP;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => panic!("no QMP at {}: {e}", path.display()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(STEP)).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut qmp = Qmp { reader: BufReader::new(stream), writer };
        let greeting = qmp.line();
        assert!(greeting.contains("\"QMP\""), "not a QMP greeting: {greeting}");
        qmp.execute(r#"{"execute":"qmp_capabilities"}"#);
        qmp
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("QMP answers");
        line
    }

    /// Sends `command` (JSON); returns the answer, failing on an error.
    fn execute(&mut self, command: &str) -> String {
        self.writer.write_all(command.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
        loop {
            let line = self.line();
            if line.contains("\"return\"") {
                return line;
            }
            assert!(!line.contains("\"error\""), "QMP refused {command}: {line}");
        }
    }

    /// Presses and releases the key QEMU calls `qcode`.
    fn key(&mut self, qcode: &str) {
        for down in [true, false] {
            self.execute(&format!(
                r#"{{"execute":"input-send-event","arguments":{{"events":[{{"type":"key","data":{{"down":{down},"key":{{"type":"qcode","data":"{qcode}"}}}}}}]}}}}"#
            ));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen as QEMU shows it.
    fn screendump(&mut self, path: &Path) -> Picture {
        let _ = std::fs::remove_file(path);
        self.execute(&format!(
            r#"{{"execute":"screendump","arguments":{{"filename":{:?}}}}}"#,
            path.to_str().unwrap()
        ));
        Picture::read_ppm(&std::fs::read(path).expect("the screendump was written"))
    }
}

/// A binary PPM (P6), pixels as 0xRRGGBB.
struct Picture {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
}

impl Picture {
    fn read_ppm(bytes: &[u8]) -> Picture {
        // Four whitespace-separated header fields, then one whitespace byte.
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(std::str::from_utf8(&bytes[start..at]).unwrap().to_string());
        }
        assert_eq!(fields[0], "P6", "a binary PPM");
        let (width, height): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        assert_eq!(fields[3], "255");
        let data = &bytes[at + 1..];
        assert_eq!(data.len(), (width * height * 3) as usize);
        let pixels = data
            .chunks(3)
            .map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]))
            .collect();
        Picture { width, height, pixels }
    }

    fn at(&self, x: u32, y: u32) -> u32 {
        self.pixels[(y * self.width + x) as usize]
    }

    /// How many pixels of rows `rows` are `colour`.
    fn count(&self, rows: std::ops::Range<u32>, colour: u32) -> usize {
        rows.flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .filter(|&(x, y)| self.at(x, y) == colour)
            .count()
    }
}

#[test]
fn the_lock_screen_shows_both_personas_and_a_key_unlocks_into_one() {
    let dir = xtask::target_dir().join("test-screen");
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("qmp.sock");
    let _ = std::fs::remove_file(&socket);
    let qmp_arg = format!("unix:{},server=on,wait=off", socket.display());
    let path = two_personas();
    let mut run = Machine::xtask(&[
        "run",
        "--screen",
        "--manifest",
        path.to_str().unwrap(),
        "--",
        "-qmp",
        &qmp_arg,
    ]);
    run.expect("virtio  gpu at", LINUX_BOOT);
    run.expect("duet: screen: locked", LINUX_BOOT);
    run.require(&["duet: screen off: every VM is in the background"]);
    let mut qmp = Qmp::connect(&socket);

    let lock = qmp.screendump(&dir.join("lock.ppm"));
    assert_eq!((lock.width, lock.height), (720, 1280));
    for (x, y) in [(0, 0), (719, 47), (360, 2)] {
        assert_eq!(lock.at(x, y), LOCK_STRIP, "the lock screen's strip at ({x}, {y})");
    }
    // Each persona's card, in its colour, on its half of the lower screen.
    assert_eq!(lock.at(100, 1260), PERSONAL);
    assert_eq!(lock.at(700, 1270), CORPORATE);
    assert!(lock.count(640..1280, PERSONAL) > 50_000, "the personal card");
    assert!(lock.count(640..1280, CORPORATE) > 50_000, "the corporate card");

    // The keyboard's `2` unlocks into the second persona.
    run.expect("[corporate] duet-guest: init ran", LINUX_BOOT);
    let mark = run.mark();
    qmp.key("2");
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", STEP);
    run.expect_since(mark, "duet: screen: switch to vm corporate took", STEP);
    let front = qmp.screendump(&dir.join("corporate.ppm"));
    assert_eq!(front.at(0, 0), CORPORATE, "the indicator in corporate's colour");
    assert_eq!(front.at(719, 47), CORPORATE);
    assert_eq!(front.count(48..1280, PERSONAL), 0, "nothing of personal");
    assert_eq!(front.count(0..48, LOCK_STRIP), 0, "the lock strip is gone");

    // The power key locks again.
    let mark = run.mark();
    qmp.key("power");
    run.expect_since(mark, "duet: screen: locked", STEP);
    let locked = qmp.screendump(&dir.join("locked-again.ppm"));
    assert_eq!(locked.at(0, 0), LOCK_STRIP);

    let mark = run.mark();
    run.send(COUNTERS);
    let counters = run.expect_since(mark, "duet: screen: 1 switches, latency last", STEP);
    let line = counters.lines().find(|l| l.contains("duet: screen: 1 switches")).unwrap();
    println!("{line}");
}
