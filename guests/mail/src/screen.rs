//! The console interface's loop: keys from the console into the `ui`
//! state machine, its effects done on the store and printed. It polls the
//! UART for keys (a busy vCPU; waiting with WFI on the UART's interrupt is
//! still to do).

use crate::console;
use crate::disk::Disk;
use aarch64_cpu::registers::{Readable, CNTVCT_EL0};
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::message::{safe_line, Summary};
use duet_mail::store::{Outbox, Store, SEEN};
use duet_mail::ui::{Effect, Row, Ui};

const WIDTH: usize = 100;
/// Lines of a message printed when it is opened.
const MESSAGE_LINES: usize = 60;

/// Runs the interface until `q` on the inbox.
pub fn run(store: &mut Store<Disk>, network: &str) {
    let mut ui = Ui::default();
    let mut sequence: u64 = 0;
    let mut rows = inbox(store);
    show(&ui, &rows);
    loop {
        let Some(key) = console::read_key() else {
            core::hint::spin_loop();
            continue;
        };
        match ui.key(key, &rows) {
            Effect::Nothing => {}
            Effect::ShowInbox => show(&ui, &rows),
            Effect::Print(text) => console::write(&text),
            Effect::Open(uid) => {
                open(store, uid);
                rows = inbox(store);
            }
            Effect::Queue(draft) => {
                console::write("\n");
                sequence += 1;
                let id = alloc::format!("{}.{sequence}@duet-mail", CNTVCT_EL0.get());
                match store.queue(&draft.raw(&id)) {
                    Ok(n) => say!(
                        "mail: queued as outbox entry {n}; it is sent when the mail client can"
                    ),
                    Err(e) => say!("mail: cannot queue the draft: {e}"),
                }
                show(&ui, &rows);
            }
            Effect::Status => status(store, network),
            Effect::Quit => return,
        }
    }
}

/// Prints the inbox once.
pub fn list(store: &mut Store<Disk>) {
    show(&Ui::default(), &inbox(store));
}

fn inbox(store: &mut Store<Disk>) -> Vec<Row> {
    let listed: Vec<(u32, u8)> = store.messages().map(|m| (m.uid, m.flags)).collect();
    listed
        .into_iter()
        .rev()
        .map(|(uid, flags)| {
            let summary =
                store.read_message(uid).map(|raw| Summary::parse(&raw)).unwrap_or_default();
            Row { uid, unread: flags & SEEN == 0, summary }
        })
        .collect()
}

fn show(ui: &Ui, rows: &[Row]) {
    for line in ui.inbox(rows, WIDTH) {
        say!("{line}");
    }
}

fn open(store: &mut Store<Disk>, uid: u32) {
    match store.read_message(uid) {
        Ok(raw) => {
            let text = String::from_utf8_lossy(&raw);
            for line in text.lines().take(MESSAGE_LINES) {
                say!("{}", safe_line(line, WIDTH));
            }
            say!("(q: back to the inbox)");
            let flags = store.messages().find(|m| m.uid == uid).map_or(0, |m| m.flags);
            if let Err(e) = store.set_flags(uid, flags | SEEN) {
                say!("mail: cannot mark message {uid} seen: {e}");
            }
        }
        Err(e) => say!("mail: cannot read message {uid}: {e}"),
    }
}

fn status(store: &Store<Disk>, network: &str) {
    let queued = store.outbox().filter(|(_, s)| *s != Outbox::Sent).count();
    let log = store.log();
    say!(
        "status: {} messages; outbox {queued} waiting; store {} of {} KiB; network: {network}; sync: no mail client yet",
        store.messages().count(),
        log.used() / 1024,
        log.capacity() / 1024
    );
}
