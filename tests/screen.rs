//! The phone's screen as Duet drives it, seen through QEMU's monitor (QMP):
//! at boot the lock screen shows each persona's colour and Duet's own strip;
//! a key on the keyboard unlocks into a persona, whose indicator then
//! fills the strip in its colour; the power key locks again; a swipe up on
//! the other persona's card unlocks into that one; left alone it locks
//! after the manifest's idle time; Duet's console key unlocks and locks;
//! the switch latency appears in Duet's counters.

use duet_tests::qmp::Picture;
use duet_tests::{screen_manifest, Machine};
use std::time::{Duration, Instant};

const LINUX_BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
/// Asks Duet to print its counters.
const COUNTERS: &str = "\x1ds";
/// Duet's console key for the screen: lock, or unlock into the last used.
const TOGGLE_SCREEN: &str = "\x1do";

const PERSONAL: [u8; 3] = [0x00, 0xaa, 0x55];
const CORPORATE: [u8; 3] = [0xcc, 0x33, 0x00];
/// The manifest's idle timeout: long enough for the steps between inputs
/// on a busy host, short enough to wait for once.
const IDLE_SECONDS: u64 = 20;
/// The lock screen's strip (`screen::compose`).
const LOCK_STRIP: [u8; 3] = [0x20; 3];

/// What the screen shows now, kept in `target/test-screen/NAME.ppm`.
fn screenshot(run: &mut Machine, name: &str) -> Picture {
    let picture = match run.qmp().screenshot() {
        Ok(picture) => picture,
        Err(e) => run.fail(&format!("no screenshot: {e}")),
    };
    let dir = xtask::target_dir().join("test-screen");
    std::fs::create_dir_all(&dir).unwrap();
    picture.save(&dir.join(format!("{name}.ppm"))).unwrap();
    picture
}

/// Fails the test, with the console, unless `ok`.
fn check(run: &mut Machine, ok: bool, what: &str) {
    if !ok {
        run.fail(what);
    }
}

/// How many pixels of rows `rows` are exactly `colour`.
fn count(picture: &Picture, rows: std::ops::Range<u32>, colour: [u8; 3]) -> usize {
    let rect = (0, rows.start, picture.width, rows.end - rows.start);
    picture.count(rect, |p| p == colour).0
}

/// Sends what `act` does over QMP, failing the test on a QMP error.
fn input(
    run: &mut Machine,
    act: impl FnOnce(&mut duet_tests::qmp::Qmp) -> Result<(), duet_tests::qmp::QmpError>,
) {
    if let Err(e) = act(run.qmp()) {
        run.fail(&format!("QMP: {e}"));
    }
}

#[test]
fn the_lock_screen_shows_both_personas_and_a_key_unlocks_into_one() {
    // Two small Linux personas with colours of the test's own.
    let personas = [("personal", PERSONAL), ("corporate", CORPORATE)];
    let path = screen_manifest("screen", IDLE_SECONDS, "", &personas);
    let mut run = Machine::run_screen("screen", &path);
    run.expect("virtio  gpu at", LINUX_BOOT);
    run.expect("duet: screen: locked", LINUX_BOOT);
    run.require(&["duet: screen off: every VM is in the background"]);

    let lock = screenshot(&mut run, "lock");
    check(&mut run, (lock.width, lock.height) == (720, 1280), "a 720x1280 screen");
    for (x, y) in [(0, 0), (719, 47), (360, 2)] {
        check(
            &mut run,
            lock.pixel(x, y) == LOCK_STRIP,
            &format!("the lock screen's strip at ({x}, {y})"),
        );
    }
    // Each persona's card, in its colour, on its half of the lower screen.
    check(&mut run, lock.pixel(100, 1260) == PERSONAL, "the personal card's colour");
    check(&mut run, lock.pixel(700, 1270) == CORPORATE, "the corporate card's colour");
    check(&mut run, count(&lock, 640..1280, PERSONAL) > 50_000, "the personal card");
    check(&mut run, count(&lock, 640..1280, CORPORATE) > 50_000, "the corporate card");

    // The keyboard's `2` unlocks into the second persona.
    run.expect("[corporate] duet-guest: init ran", LINUX_BOOT);
    let mark = run.mark();
    input(&mut run, |qmp| qmp.press_key("2"));
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", STEP);
    run.expect_since(mark, "duet: screen: switch to vm corporate took", STEP);
    let front = screenshot(&mut run, "corporate");
    check(&mut run, front.pixel(0, 0) == CORPORATE, "the indicator in corporate's colour");
    check(&mut run, front.pixel(719, 47) == CORPORATE, "the whole strip in corporate's colour");
    check(&mut run, count(&front, 48..1280, PERSONAL) == 0, "nothing of personal");
    check(&mut run, count(&front, 0..48, LOCK_STRIP) == 0, "the lock strip is gone");

    // The power key locks again.
    let mark = run.mark();
    input(&mut run, |qmp| qmp.press_key("power"));
    run.expect_since(mark, "duet: screen: locked", STEP);
    let locked = screenshot(&mut run, "locked-again");
    check(&mut run, locked.pixel(0, 0) == LOCK_STRIP, "the lock screen again");

    // A swipe up on the personal card (the left one) unlocks into it.
    let mark = run.mark();
    input(&mut run, |qmp| qmp.swipe((180, 1200), (180, 600), 3));
    run.expect_since(mark, "duet: screen: unlocked into vm personal", STEP);
    run.expect_since(mark, "duet: screen: switch to vm personal took", STEP);
    let front = screenshot(&mut run, "personal");
    check(&mut run, front.pixel(719, 0) == PERSONAL, "the indicator in personal's colour");
    check(&mut run, count(&front, 48..1280, CORPORATE) == 0, "nothing of corporate");

    // Left alone, the screen locks after the manifest's idle time.
    let idle = Instant::now();
    run.expect_since(mark, "duet: screen: locked", STEP);
    let waited = idle.elapsed();
    println!("locked by itself after {waited:?} more (idle time {IDLE_SECONDS} s)");
    check(
        &mut run,
        waited > Duration::from_secs(IDLE_SECONDS / 2),
        &format!("locked too soon: {waited:?}"),
    );

    // Duet's console key unlocks into the persona used last, and locks.
    let mark = run.mark();
    run.send(TOGGLE_SCREEN);
    run.expect_since(mark, "duet: screen: switch to vm personal took", STEP);
    let mark = run.mark();
    run.send(TOGGLE_SCREEN);
    run.expect_since(mark, "duet: screen: locked", STEP);

    let mark = run.mark();
    run.send(COUNTERS);
    let counters = run.expect_since(mark, "duet: screen: 3 switches, latency last", STEP);
    let line = counters.lines().find(|l| l.contains("duet: screen: 3 switches")).unwrap();
    println!("{line}");
    for switch in run.console().lines().filter(|l| l.contains("duet: screen: switch to vm")) {
        println!("{switch}");
    }
}
