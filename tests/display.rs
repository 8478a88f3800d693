//! The phone's screen and touch belong to Duet (issue 10), judged the way a
//! person holding the phone would: QEMU's `screendump` for what the screen
//! shows, `input-send-event` on the touch screen and keyboard for what the
//! fingers do, all over QMP (`duet_tests::qmp`).
//!
//! - Two Linux personas each fill their framebuffer (`/dev/fb0`) with a grey
//!   of their own; the screen shows the lock screen, then after a swipe up on
//!   a persona's card exactly that persona's grey under its indicator, and
//!   the other's grey nowhere.
//! - A persona that paints another's colour over its whole framebuffer
//!   cannot change one pixel of the indicator strip.
//! - A keylogger in the background persona gets nothing of what is typed or
//!   touched in the foreground persona or on the lock screen, while the
//!   foreground persona gets every event, in order.

use duet::screen::layout::{persona_areas, STRIP_HEIGHT};
use duet_tests::qmp::{near, socket_path, Picture, QmpError};
use duet_tests::{screen_manifest, Machine, SCREEN};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
/// How long the screen may take to show what it should (a composition on
/// a busy, emulated machine).
const SCREEN_SETTLES: Duration = Duration::from_secs(20);
const PROMPT: &str = "/ # ";
/// Moves the console input focus to the next VM (see the README).
const NEXT_VM: &str = "\x1dn";

/// The personas' indicator colours, as the test manifest gives them.
const PERSONAL_COLOUR: [u8; 3] = [0x1e, 0x6f, 0xd9];
const CORPORATE_COLOUR: [u8; 3] = [0xe8, 0x73, 0x0c];
/// What each persona paints: every byte of its framebuffer `\100` (0x40)
/// or `\300` (0xc0), a grey whatever the pixel format.
const PERSONAL_GREY: [u8; 3] = [0x40; 3];
const CORPORATE_GREY: [u8; 3] = [0xc0; 3];
/// Per channel: the screendump is exact, but leave room for a format that
/// drops low bits.
const TOLERANCE: u8 = 8;

/// The manifest of two Linux personas, Debian's kernel with the busybox
/// initramfs, the console's cursor off (so fbcon draws nothing over the
/// patterns), and an idle lock after `idle_seconds` (0: never).
fn two_personas(name: &str, idle_seconds: u64) -> PathBuf {
    let personas = [("personal", PERSONAL_COLOUR), ("corporate", CORPORATE_COLOUR)];
    screen_manifest(name, idle_seconds, "vt.global_cursor_default=0", &personas)
}

/// Boots the two personas with a QMP socket, and waits for both shells and
/// the lock screen. The personal persona has the console's focus.
fn boot(name: &str, idle_seconds: u64) -> Machine {
    let mut run = Machine::run_screen(name, &two_personas(name, idle_seconds));
    for vm in ["personal", "corporate"] {
        run.expect(&format!("[{vm}] duet-guest: init ran"), LINUX_BOOT);
    }
    run.expect("duet: screen: locked", COMMAND);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);
    run
}

/// Runs `command` in the shell of the VM with the focus; fails the test
/// unless it prints `answer`.
fn ask(run: &mut Machine, vm: &str, command: &str, answer: &str) -> String {
    let output = run.shell(command, PROMPT, COMMAND);
    if !output.contains(answer) {
        run.fail(&format!("[{vm}] `{command}` did not print {answer:?}: {output:?}"));
    }
    output
}

/// Moves the console focus to `vm` and waits for its prompt.
fn focus(run: &mut Machine, vm: &str) {
    let mark = run.mark();
    run.send(NEXT_VM);
    run.expect_since(mark, &format!("duet: console input now goes to vm {vm}"), COMMAND);
    run.send("\n");
    run.expect_since(mark, &format!("[{vm}] {PROMPT}"), COMMAND);
}

/// Fills the framebuffer of the VM with the focus with `byte` (octal, for
/// `tr`), and checks its size is the personas' display (720x1232).
fn paint(run: &mut Machine, vm: &str, octal: &str) {
    ask(run, vm, "cat /sys/class/graphics/fb0/virtual_size", "720,1232");
    // More than the framebuffer holds: dd stops at its end (ENOSPC). Short
    // commands: the shell breaks an echoed line at 80 columns.
    let fill =
        format!("dd if=/dev/zero bs=64k count=64|tr '\\000' '\\{octal}' >/dev/fb0;echo painted");
    ask(run, vm, &fill, "painted");
}

const WHOLE: (u32, u32, u32, u32) = (0, 0, SCREEN.0, SCREEN.1);
const STRIP: (u32, u32, u32, u32) = (0, 0, SCREEN.0, STRIP_HEIGHT);
const PERSONA_AREA: (u32, u32, u32, u32) = (0, STRIP_HEIGHT, SCREEN.0, SCREEN.1 - STRIP_HEIGHT);

/// `Err` unless at least `share` of `rect` is `colour`.
fn mostly(
    picture: &Picture,
    what: &str,
    rect: (u32, u32, u32, u32),
    colour: [u8; 3],
    share: f64,
) -> Result<(), String> {
    let seen = picture.share_near(rect, colour, TOLERANCE);
    if seen < share {
        return Err(format!("{what}: only {:.1}% is {colour:02x?}", seen * 100.0));
    }
    Ok(())
}

/// `Err` if any of the screen is `colour` (beyond a stray pixel or two).
fn nowhere(picture: &Picture, what: &str, colour: [u8; 3]) -> Result<(), String> {
    let (hits, _) = picture.count(WHOLE, |p| near(p, colour, TOLERANCE));
    if hits > 4 {
        return Err(format!("{what}: {hits} pixels are {colour:02x?}"));
    }
    Ok(())
}

/// The lock screen: each persona's card in its colour, nothing of either
/// persona's content.
fn lock_screen(picture: &Picture) -> Result<(), String> {
    let cards = persona_areas(SCREEN.0, SCREEN.1, 2);
    for (card, (name, colour)) in
        cards.iter().zip([("personal", PERSONAL_COLOUR), ("corporate", CORPORATE_COLOUR)])
    {
        let rect = (card.x, card.y, card.width, card.height);
        mostly(picture, &format!("the {name} card"), rect, colour, 0.5)?;
    }
    nowhere(picture, "the lock screen shows the personal pattern", PERSONAL_GREY)?;
    nowhere(picture, "the lock screen shows the corporate pattern", CORPORATE_GREY)?;
    Ok(())
}

/// A swipe up from the bottom of persona `index`'s card.
fn swipe_up_on_card(run: &mut Machine, index: usize) {
    let card = persona_areas(SCREEN.0, SCREEN.1, 2)[index];
    let x = card.x + card.width / 2;
    run.qmp_do("swipe", |q| q.swipe((x, SCREEN.1 - 20), (x, SCREEN.1 / 4), 6));
}

/// Prints the switch-latency lines Duet logged since `mark`, for the test
/// log (the figure also goes to docs/benchmarks.md).
fn report_switch(run: &mut Machine, mark: usize, vm: &str) {
    let line = format!("duet: screen: switch to vm {vm} took ");
    let recent = run.expect_since(mark, &line, COMMAND);
    if let Some(found) = recent.lines().find(|l| l.contains(&line)) {
        println!("{}", found.trim());
    }
}

#[test]
fn qmp_screendumps_and_sends_touches_and_keys_to_qemu() {
    // QEMU alone, paused at first: a virtio-gpu with no driver shows QEMU's
    // 640x480 "Display output is not active" placeholder.
    let socket = socket_path("qmp-client");
    let mut command = Command::new(xtask::deps::QEMU);
    command
        .args(["-M", "virt", "-cpu", "max", "-display", "none", "-S", "-nodefaults"])
        .args(["-device", "virtio-gpu-device,xres=720,yres=1280"])
        .args(["-device", "virtio-multitouch-device", "-device", "virtio-keyboard-device"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()));
    let mut run = Machine::qemu(command, "QEMU with a virtio-gpu").with_qmp(Some(socket.clone()));
    let picture = run.qmp_do("screendump", |q| q.screenshot());
    assert_eq!((picture.width, picture.height), (640, 480));
    assert_eq!(picture.pixels.len(), 640 * 480);
    // Input needs a running machine; QEMU checks every event's shape.
    run.qmp_do("cont", |q| q.execute("cont", serde_json::json!({})));
    run.qmp_do("tap", |q| q.tap(100, 200));
    run.qmp_do("swipe", |q| q.swipe((360, 1270), (360, 0), 4));
    run.qmp_do("keys", |q| q.type_text("echo 1-2/3.\n"));
    run.qmp_do("power key", |q| q.press_key("power"));
    // And a bad request is a named error, not a hang.
    match run.qmp().key("no-such-key", true) {
        Err(QmpError::Refused { command, .. }) => assert_eq!(command, "input-send-event"),
        other => run.fail(&format!("a bad qcode was not refused: {other:?}")),
    }
    let _ = std::fs::remove_file(socket);
}

#[test]
fn lock_screen_then_each_persona_by_swipe_and_the_strip_cannot_be_faked() {
    let mut run = boot("display-personas", 0);
    paint(&mut run, "personal", "100");
    focus(&mut run, "corporate");
    paint(&mut run, "corporate", "300");

    // Both painted, the screen is still locked.
    run.expect_screen("lock-screen", SCREEN_SETTLES, lock_screen);

    // A swipe up on the personal card: its grey, its indicator.
    let mark = run.mark();
    swipe_up_on_card(&mut run, 0);
    run.expect_since(mark, "duet: screen: unlocked into vm personal", COMMAND);
    report_switch(&mut run, mark, "personal");
    run.expect_screen("personal", SCREEN_SETTLES, |p| {
        mostly(p, "the personal area", PERSONA_AREA, PERSONAL_GREY, 0.95)?;
        mostly(p, "the strip", STRIP, PERSONAL_COLOUR, 0.5)?;
        nowhere(p, "the personal screen shows the corporate pattern", CORPORATE_GREY)
    });

    // The power key locks; a swipe up on the corporate card shows it.
    let mark = run.mark();
    run.qmp_do("power key", |q| q.press_key("power"));
    run.expect_since(mark, "duet: screen: locked", COMMAND);
    run.expect_screen("locked-again", SCREEN_SETTLES, lock_screen);
    let mark = run.mark();
    swipe_up_on_card(&mut run, 1);
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", COMMAND);
    report_switch(&mut run, mark, "corporate");
    let before = run.expect_screen("corporate", SCREEN_SETTLES, |p| {
        mostly(p, "the corporate area", PERSONA_AREA, CORPORATE_GREY, 0.95)?;
        mostly(p, "the strip", STRIP, CORPORATE_COLOUR, 0.5)?;
        nowhere(p, "the corporate screen shows the personal pattern", PERSONAL_GREY)
    });

    // The corporate persona, in front, paints the personal colour over its
    // whole framebuffer (XRGB8888: bytes B, G, R, X): a fake indicator.
    let [r, g, b] = PERSONAL_COLOUR;
    ask(&mut run, "corporate", &format!("printf '\\{b:03o}\\{g:03o}\\{r:03o}\\377' >/tmp/p"), "");
    ask(
        &mut run,
        "corporate",
        "p=/tmp/p;for i in $(seq 20);do cat $p $p >$p.2;mv $p.2 $p;done",
        "",
    );
    ask(&mut run, "corporate", "cat /tmp/p >/dev/fb0;echo faked", "faked");
    let after = run.expect_screen("fake-indicator", SCREEN_SETTLES, |p| {
        mostly(p, "the corporate area", PERSONA_AREA, PERSONAL_COLOUR, 0.95)
    });
    let changed = (0..STRIP_HEIGHT)
        .flat_map(|y| (0..SCREEN.0).map(move |x| (x, y)))
        .filter(|&(x, y)| before.pixel(x, y) != after.pixel(x, y))
        .count();
    if changed != 0 {
        run.fail(&format!("the fake indicator changed {changed} pixels of the strip"));
    }

    // The personal persona's screen survived the switches without a redraw.
    let mark = run.mark();
    run.qmp_do("power key", |q| q.press_key("power"));
    run.expect_since(mark, "duet: screen: locked", COMMAND);
    swipe_up_on_card(&mut run, 0);
    run.expect_since(mark, "duet: screen: unlocked into vm personal", COMMAND);
    run.expect_screen("personal-again", SCREEN_SETTLES, |p| {
        mostly(p, "the personal area", PERSONA_AREA, PERSONAL_GREY, 0.95)?;
        mostly(p, "the strip", STRIP, PERSONAL_COLOUR, 0.5)
    });

    focus(&mut run, "personal");
    run.power_off_personal_then_corporate(COMMAND);
}

/// One evdev event as a 64-bit Linux guest reads it from
/// `/dev/input/event*` (struct input_event: a 16-byte time, then type, code
/// and value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Event {
    kind: u16,
    code: u16,
    value: i32,
}

const EV_KEY: u16 = 1;
const EV_ABS: u16 = 3;
const BTN_TOUCH: u16 = 0x14a;
const ABS_MT_TRACKING_ID: u16 = 0x39;

/// The events in `od -An -v -tx1` output of an event log.
fn parse_events(od: &str) -> Vec<Event> {
    let bytes: Vec<u8> = od
        .split_whitespace()
        .filter_map(|w| if w.len() == 2 { u8::from_str_radix(w, 16).ok() } else { None })
        .collect();
    bytes
        .chunks_exact(24)
        .map(|e| Event {
            kind: u16::from_le_bytes([e[16], e[17]]),
            code: u16::from_le_bytes([e[18], e[19]]),
            value: i32::from_le_bytes([e[20], e[21], e[22], e[23]]),
        })
        .collect()
}

/// Starts a reader of every input device of the VM with the focus, each
/// into `/tmp/PREFIX.eventN`, and returns how many devices there are.
fn log_input(run: &mut Machine, vm: &str, prefix: &str) -> usize {
    let devices = ask(run, vm, "ls /dev/input/", "event");
    let count = devices.matches("event").count();
    if count < 2 {
        run.fail(&format!("{vm} has {count} input devices, not a keyboard and a touch screen"));
    }
    let start = format!("for e in /dev/input/ev*;do cat $e >/tmp/{prefix}.${{e##*/}}&done;echo ok");
    ask(run, vm, &start, "ok");
    count
}

/// Linux key codes of what the test types.
fn key_codes(text: &str) -> Vec<u16> {
    text.chars()
        .map(|c| match c {
            'h' => 35,
            'e' => 18,
            'l' => 38,
            'o' => 24,
            'x' => 45,
            'y' => 21,
            'a' => 30,
            other => panic!("no key code for {other:?}"),
        })
        .collect()
}

#[test]
fn a_background_keylogger_gets_nothing_and_the_foreground_gets_everything_in_order() {
    let mut run = boot("display-keylogger", 0);
    log_input(&mut run, "personal", "mine");
    focus(&mut run, "corporate");
    log_input(&mut run, "corporate", "spy");

    // On the lock screen: keys, a tap, a swipe down, then the unlocking
    // swipe itself. None of it is any persona's.
    run.qmp_do("keys", |q| q.type_text("xy"));
    run.qmp_do("tap", |q| q.tap(360, 300));
    run.qmp_do("swipe", |q| q.swipe((360, 200), (360, 1000), 5));
    let mark = run.mark();
    swipe_up_on_card(&mut run, 0);
    run.expect_since(mark, "duet: screen: unlocked into vm personal", COMMAND);

    // In the personal persona, in front: five keys and two touches.
    run.qmp_do("keys", |q| q.type_text("hello"));
    run.qmp_do("tap", |q| q.tap(200, 600));
    run.qmp_do("swipe", |q| q.swipe((100, 700), (600, 700), 5));
    // A key held down when the power key locks: the persona that had its
    // press gets its release at the lock; the real release, later, and
    // the keys typed on the lock screen again go to nobody.
    let mark = run.mark();
    run.qmp_do("hold a", |q| q.key("a", true));
    run.qmp_do("power key", |q| q.press_key("power"));
    run.expect_since(mark, "duet: screen: locked", COMMAND);
    run.qmp_do("release a", |q| q.key("a", false));
    run.qmp_do("keys", |q| q.type_text("yx"));
    std::thread::sleep(Duration::from_secs(3));

    // The spy, in the background (its shell has the console), saw nothing.
    let sizes = ask(&mut run, "corporate", "wc -c /tmp/spy.* | tail -n 1", "total");
    let total = sizes.split_whitespace().find_map(|w| w.parse::<u64>().ok());
    if total != Some(0) {
        run.fail(&format!("the background keylogger got input: {sizes:?}"));
    }

    // The personal persona got the keys, in order (the held one released),
    // and both touches, and nothing from the lock screen.
    focus(&mut run, "personal");
    let dump = run.shell("od -An -v -tx1 /tmp/mine.*", PROMPT, COMMAND);
    let dump: Vec<&str> = dump.lines().filter_map(|l| l.strip_prefix("[personal]")).collect();
    let events = parse_events(&dump.join("\n"));
    let keys: Vec<(u16, i32)> = events
        .iter()
        // Keys, not buttons (BTN_* are 0x100 and up), and no autorepeats.
        .filter(|e| e.kind == EV_KEY && e.code < 0x100 && e.value != 2)
        .map(|e| (e.code, e.value))
        .collect();
    let expected: Vec<(u16, i32)> =
        key_codes("helloa").into_iter().flat_map(|code| [(code, 1), (code, 0)]).collect();
    if keys != expected {
        run.fail(&format!("the personal persona got keys {keys:?}, not {expected:?}"));
    }
    let touch_buttons =
        events.iter().filter(|e| e.kind == EV_KEY && e.code == BTN_TOUCH && e.value == 1).count();
    let contacts = events
        .iter()
        .filter(|e| e.kind == EV_ABS && e.code == ABS_MT_TRACKING_ID && e.value >= 0)
        .count();
    let touches = if touch_buttons > 0 { touch_buttons } else { contacts };
    if touches != 2 {
        run.fail(&format!("the personal persona got {touches} touches, not 2: {events:?}"));
    }
    run.power_off_personal_then_corporate(COMMAND);
}

#[test]
fn the_keyboard_unlocks_and_idle_time_locks_again() {
    let mut run = boot("display-idle", 5);
    // Right moves the selection from the boot persona's card to the
    // corporate one; Enter, on its release, unlocks into it.
    let mark = run.mark();
    run.qmp_do("right", |q| q.press_key("right"));
    run.qmp_do("enter", |q| q.press_key("ret"));
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", COMMAND);
    let (unlocked, since_unlock) = (Instant::now(), run.mark());
    run.expect_screen("corporate-by-keyboard", SCREEN_SETTLES, |p| {
        mostly(p, "the strip", STRIP, CORPORATE_COLOUR, 0.5)
    });
    // Then nothing: 5 s after the last key the screen locks by itself.
    run.expect_since(since_unlock, "duet: screen: locked", COMMAND);
    let idle = unlocked.elapsed();
    println!("locked after {idle:?} without input (lock_after_idle_seconds = 5)");
    if idle < Duration::from_secs(4) {
        run.fail(&format!("the screen locked after {idle:?}, before the idle time"));
    }
    run.expect_screen("locked-by-idle", SCREEN_SETTLES, lock_screen);
    run.power_off_personal_then_corporate(COMMAND);
}

#[test]
fn events_are_read_from_an_od_dump() {
    // Two events of a 64-bit guest, as `od -An -v -tx1` prints them.
    let od = " 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00\n 01 00 23 00 01 00 00 00\n\
              01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 03 00 39 00 ff ff ff ff";
    assert_eq!(
        parse_events(od),
        [
            Event { kind: EV_KEY, code: 35, value: 1 },
            Event { kind: EV_ABS, code: ABS_MT_TRACKING_ID, value: -1 }
        ]
    );
}
