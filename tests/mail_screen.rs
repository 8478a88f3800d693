//! The mail guest (the corporate persona) on its own display, driven by its
//! own keyboard, the way a person holding the phone would see and use it:
//! QEMU's `screendump` for the screen and `input-send-event` for the keys,
//! over QMP (`duet_tests::qmp`). A personal Linux beside it runs a
//! keylogger on its input devices.
//!
//! Unlocked into the mail guest (its offline interface, `mail.ui`), the
//! screen shows its inbox in the font8x8 glyphs under Duet's strip; keys
//! typed on the keyboard open compose and fill in the recipient on the
//! screen (Backspace and Ctrl-C too), then type a message into the
//! outbox; idle, the guest sleeps; and the personal persona gets none of
//! those keys.

use duet::screen::layout::STRIP_HEIGHT;
use duet_mail::draw::{origin, rows, BACKGROUND, BAR, BAR_TEXT, CELL_WIDTH, SCALE, TEXT};
use duet_tests::qmp::{near, socket_path, Picture};
use duet_tests::{manifest, Machine, SCREEN};
use font8x8::legacy::BASIC_LEGACY;
use std::path::PathBuf;
use std::time::Duration;

const LINUX_BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
/// How long the screen may take to show what it should.
const SCREEN_SETTLES: Duration = Duration::from_secs(30);
const PROMPT: &str = "/ # ";
const PERSONAL_COLOUR: [u8; 3] = [0x1e, 0x6f, 0xd9];
const CORPORATE_COLOUR: [u8; 3] = [0xe8, 0x73, 0x0c];
/// Per channel: the screendump is exact, but leave room for a format that
/// drops low bits.
const TOLERANCE: u8 = 8;

/// A personal Linux (busybox shell) and the mail guest in its offline
/// interface as the corporate persona.
fn personal_and_mail(name: &str) -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let mail = match xtask::image::build_mail() {
        Ok(image) => image.binary,
        Err(e) => panic!("cannot build the mail guest: {e:#}"),
    };
    let colour = |[r, g, b]: [u8; 3]| format!("\"#{r:02x}{g:02x}{b:02x}\"");
    let text = format!(
        "[screen]\nlock_after_idle_seconds = 0\n\n\
         [[vm]]\nname = \"personal\"\nrole = \"personal\"\nkernel = {:?}\ninitrd = {:?}\n\
         cmdline = \"console=ttyAMA0 quiet\"\nmemory_mib = 192\nvcpus = 1\ncolour = {}\n\n\
         [[vm]]\nname = \"corporate\"\nrole = \"corporate\"\nkernel = {mail:?}\n\
         cmdline = \"mail.ui\"\nmemory_mib = 24\nvcpus = 1\ndisk_mib = 4\ncolour = {}\n",
        guests.join("Image"),
        guests.join("initramfs.cpio"),
        colour(PERSONAL_COLOUR),
        colour(CORPORATE_COLOUR),
    );
    manifest(name, &text)
}

/// Runs `command` in the personal shell (it has the console's focus);
/// fails the test unless it prints `answer`.
fn ask(run: &mut Machine, command: &str, answer: &str) -> String {
    let output = run.shell(command, PROMPT, COMMAND);
    if !output.contains(answer) {
        run.fail(&format!("[personal] `{command}` did not print {answer:?}: {output:?}"));
    }
    output
}

/// `Err` unless the mail guest's text grid row `row` starts with `text`,
/// each character its font8x8 glyph at twice its size in `fg` on `bg`,
/// pixel for pixel; the guest's display starts below Duet's strip.
fn text_at(
    picture: &Picture,
    row: usize,
    text: &str,
    fg: [u8; 3],
    bg: [u8; 3],
) -> Result<(), String> {
    for (column, c) in text.chars().enumerate() {
        let (x, y) = origin(row, column);
        let glyph = BASIC_LEGACY[c as usize];
        for py in 0..8 * SCALE {
            for px in 0..CELL_WIDTH {
                let on = px < 8 * SCALE && glyph[py / SCALE] & (1 << (px / SCALE)) != 0;
                let want = if on { fg } else { bg };
                let (sx, sy) = ((x + px) as u32, STRIP_HEIGHT + (y + py) as u32);
                let seen = picture.pixel(sx, sy);
                if !near(seen, want, TOLERANCE) {
                    return Err(format!(
                        "row {row} is not {text:?}: {c:?} at column {column}: pixel ({sx}, {sy}) \
                         is {seen:02x?}, not {want:02x?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The title bar (row 0) and the first line (row 1) of the mail screen.
fn mail_screen(picture: &Picture, title: &str, first: &str) -> Result<(), String> {
    text_at(picture, 0, title, BAR_TEXT, BAR)?;
    text_at(picture, 1, first, TEXT, BACKGROUND)
}

/// Presses `s` on the mail guest's keyboard and reads how many times it
/// has slept in WFI from the status line it prints.
fn wfi_sleeps(run: &mut Machine) -> u64 {
    let mark = run.mark();
    run.qmp_do("s", |q| q.type_text("s"));
    let recent = run.expect_since(mark, " WFI sleeps", COMMAND);
    let line = recent.lines().find(|l| l.contains(" WFI sleeps")).unwrap_or("");
    let count = line.rsplit("; ").next().and_then(|w| w.split(' ').next()?.parse().ok());
    count.unwrap_or_else(|| run.fail(&format!("no WFI count in {line:?}")))
}

#[test]
fn the_mail_guest_draws_its_interface_and_takes_keys_from_its_own_keyboard() {
    let path = personal_and_mail("mail-screen");
    let socket = socket_path("mail-screen");
    let mut run = Machine::xtask(&[
        "run",
        "--screen",
        "--manifest",
        path.to_str().unwrap(),
        "--qmp",
        socket.to_str().unwrap(),
        "--new-disk",
    ]);
    run.expect("[corporate] mail: virtio gpu at 0xa000800, display 720x1232", LINUX_BOOT);
    run.expect("[corporate] mail: virtio keyboard at 0xa000a00", COMMAND);
    run.expect("[corporate] inbox: 0 messages, 0 unread", COMMAND);
    run.expect("[personal] duet-guest: init ran", LINUX_BOOT);
    run.expect("duet: screen: locked", COMMAND);
    run.expect(&format!("[personal] {PROMPT}"), COMMAND);

    // A keylogger on every input device of the personal persona.
    let devices = ask(&mut run, "ls /dev/input/", "event");
    if devices.matches("event").count() < 2 {
        run.fail(&format!("the personal persona has too few input devices: {devices:?}"));
    }
    ask(&mut run, "for e in /dev/input/ev*;do cat $e >/tmp/spy.${e##*/}&done;echo ok", "ok");

    // `2` unlocks into the corporate persona: the mail guest's inbox.
    let mark = run.mark();
    run.qmp_do("2", |q| q.press_key("2"));
    run.expect_since(mark, "duet: screen: unlocked into vm corporate", COMMAND);
    run.expect_screen("mail-inbox", SCREEN_SETTLES, |p| {
        mail_screen(p, "Inbox: 0 messages, 0 unread ", "(no messages) ")
    });

    // `c` on the keyboard opens compose, on the screen and on the console
    // (the console's input focus is the personal persona's: these keys
    // come only through the mail guest's own keyboard).
    let mark = run.mark();
    run.qmp_do("c", |q| q.type_text("c"));
    run.expect_since(mark, "[corporate] compose (a line with only . sends it", COMMAND);
    run.expect_screen("mail-compose", SCREEN_SETTLES, |p| mail_screen(p, "Compose ", "To: _ "));

    // The recipient, a typo taken back with Backspace.
    run.qmp_do("bobx", |q| q.type_text("bobx"));
    run.qmp_do("backspace", |q| q.press_key("backspace"));
    run.expect_screen("mail-compose-to", SCREEN_SETTLES, |p| {
        mail_screen(p, "Compose ", "To: bob_ ")
    });

    // Ctrl-C drops the draft: the inbox again.
    run.qmp_do("ctrl down", |q| q.key("ctrl", true));
    run.qmp_do("c", |q| q.press_key("c"));
    run.qmp_do("ctrl up", |q| q.key("ctrl", false));
    run.expect_since(mark, "^C (dropped)", COMMAND);
    run.expect_screen("mail-inbox-again", SCREEN_SETTLES, |p| {
        mail_screen(p, "Inbox: 0 messages, 0 unread ", "(no messages) ")
    });

    // A message typed on the keyboard goes to the outbox: the draft on the
    // screen as it is typed, then the inbox, the status bar saying so.
    run.qmp_do("compose", |q| q.type_text("cbob\nhi\nbody\n"));
    run.expect_screen("mail-compose-body", SCREEN_SETTLES, |p| {
        mail_screen(p, "Compose ", "To: bob ")?;
        text_at(p, 2, "Subject: hi ", TEXT, BACKGROUND)?;
        text_at(p, 4, "body ", TEXT, BACKGROUND)?;
        text_at(p, 5, "_ ", TEXT, BACKGROUND)
    });
    let mark = run.mark();
    run.qmp_do("end", |q| q.type_text(".\n"));
    run.expect_since(mark, "[corporate] mail: queued as outbox entry 1", COMMAND);
    let status_row = rows(SCREEN.1 as usize - STRIP_HEIGHT as usize) - 1;
    run.expect_screen("mail-queued", SCREEN_SETTLES, |p| {
        mail_screen(p, "Inbox: 0 messages, 0 unread ", "(no messages) ")?;
        text_at(p, status_row, "queued as outbox entry 1 ", BAR_TEXT, BAR)
    });

    // Idle, the mail guest sleeps in WFI: no redraws, no spinning. `s`
    // (status) twice, 10 s apart: each key is a few wakeups (its press, its
    // release), a loop that did not sleep would be thousands.
    let first = wfi_sleeps(&mut run);
    std::thread::sleep(Duration::from_secs(10));
    let second = wfi_sleeps(&mut run);
    println!("mail guest: {} WFI sleeps in 10 s idle and one key", second - first);
    if second - first > 20 {
        run.fail(&format!("the idle mail guest woke {} times in 10 s", second - first));
    }

    // The personal persona, in the background, got none of those keys.
    let sizes = ask(&mut run, "wc -c /tmp/spy.* | tail -n 1", "total");
    let total = sizes.split_whitespace().find_map(|w| w.parse::<u64>().ok());
    if total != Some(0) {
        run.fail(&format!("the personal persona got input meant for the mail guest: {sizes:?}"));
    }

    // `q` on the inbox closes the mail guest; then the personal one.
    let mark = run.mark();
    run.qmp_do("q", |q| q.type_text("q"));
    run.expect_since(mark, "[corporate] mail: interface closed; powering off", COMMAND);
    run.expect_since(mark, "duet: vm corporate powered off", COMMAND);
    run.send("poweroff -f\n");
    let exit = run.wait(COMMAND);
    run.require(&["duet: vm personal powered off", "every VM has powered off"]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    let _ = std::fs::remove_file(socket);
}
