//! The interface on the guest: keys from the console and from the guest's
//! own keyboard into the `ui` state machine, its effects done on the store,
//! printed on the console and drawn on the guest's own display
//! ([`Screen`], used by the long-running client and by `mail.ui`), and the
//! one-shot `mail.ui` loop, which sleeps in WFI until a key comes.

use crate::console;
use crate::disk::Disk;
use crate::display::Panel;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::message::{safe_line, Summary};
use duet_mail::store::{Outbox, Store, SEEN};
use duet_mail::ui::{Effect, Row, Ui};

const WIDTH: usize = 100;
/// Lines of a message printed when it is opened.
const MESSAGE_LINES: usize = 60;

/// What a key asks of the caller.
pub enum Asked {
    Nothing,
    /// A message went into the outbox.
    Queued,
    /// Print the status.
    Status,
    /// Leave (the guest powers off).
    Quit,
}

/// The interface's state: the `ui` machine and the inbox as listed, with
/// each message's summary read from the disk once.
pub struct Screen {
    ui: Ui,
    rows: Vec<Row>,
    summaries: BTreeMap<u32, Summary>,
    panel: Panel,
    /// The open message's lines, as printed.
    message: Vec<String>,
    /// A line for the display's status bar until the next key (a queued
    /// message, the status).
    notice: Option<String>,
}

impl Screen {
    pub fn new(store: &mut Store<Disk>, panel: Panel) -> Screen {
        let mut screen = Screen {
            ui: Ui::default(),
            rows: Vec::new(),
            summaries: BTreeMap::new(),
            panel,
            message: Vec::new(),
            notice: None,
        };
        screen.refresh(store);
        screen
    }

    /// The next key typed on the console or the guest's keyboard.
    pub fn read_key(&mut self) -> Option<u8> {
        console::read_key().or_else(|| self.panel.read_key())
    }

    /// Shows `text` in the display's status bar until the next key.
    pub fn notice(&mut self, text: String) {
        self.notice = Some(text);
        self.draw();
    }

    /// Draws the screen on the display (only if it changed).
    fn draw(&mut self) {
        let mut page = self.ui.page(&self.rows, &self.message);
        if let Some(notice) = &self.notice {
            page.status = notice.clone();
        }
        self.panel.show(page);
    }

    /// Lists the inbox again from the store (new messages, flags).
    pub fn refresh(&mut self, store: &mut Store<Disk>) {
        let listed: Vec<(u32, u8)> = store.messages().map(|m| (m.uid, m.flags)).collect();
        self.summaries.retain(|uid, _| listed.iter().any(|(u, _)| u == uid));
        self.rows = listed
            .into_iter()
            .rev()
            .map(|(uid, flags)| {
                let summary = self
                    .summaries
                    .entry(uid)
                    .or_insert_with(|| {
                        store.read_message(uid).map(|raw| Summary::parse(&raw)).unwrap_or_default()
                    })
                    .clone();
                Row { uid, unread: flags & SEEN == 0, summary }
            })
            .collect();
        self.draw();
    }

    /// Prints the inbox (and draws the screen).
    pub fn show(&mut self) {
        for line in self.ui.inbox(&self.rows, WIDTH) {
            say!("{line}");
        }
        self.draw();
    }

    /// True when the inbox is on the screen (not a message or a draft), so
    /// that printing it again disturbs nothing.
    pub fn on_inbox(&self) -> bool {
        self.ui.on_inbox()
    }

    /// Takes one key; `message_id` gives a new Message-ID (without angle
    /// brackets) for a draft put in the outbox.
    pub fn key(
        &mut self,
        key: u8,
        store: &mut Store<Disk>,
        message_id: impl FnOnce() -> String,
    ) -> Asked {
        self.notice = None;
        let asked = match self.ui.key(key, &self.rows) {
            Effect::Nothing => Asked::Nothing,
            Effect::ShowInbox => {
                self.show();
                Asked::Nothing
            }
            Effect::Print(text) => {
                console::write(&text);
                Asked::Nothing
            }
            Effect::Open(uid) => {
                self.message = open(store, uid);
                self.refresh(store);
                Asked::Nothing
            }
            Effect::Queue(draft) => {
                console::write("\n");
                let queued = store.queue(&draft.raw(&message_id()));
                let notice = match &queued {
                    Ok(n) => {
                        say!(
                            "mail: queued as outbox entry {n}; it is sent when the mail client can"
                        );
                        alloc::format!("queued as outbox entry {n}")
                    }
                    Err(e) => {
                        say!("mail: cannot queue the draft: {e}");
                        alloc::format!("cannot queue the draft: {e}")
                    }
                };
                self.notice = Some(notice);
                self.show();
                if queued.is_ok() {
                    Asked::Queued
                } else {
                    Asked::Nothing
                }
            }
            Effect::Status => Asked::Status,
            Effect::Quit => Asked::Quit,
        };
        self.draw();
        asked
    }
}

/// Runs the interface until `q` on the inbox (`mail.ui`: no network).
/// Message-IDs are random when the entropy device is there.
pub fn run(
    store: &mut Store<Disk>,
    network: &str,
    mut rng: Option<&mut crate::tls::Rng>,
    panel: Panel,
) {
    let mut screen = Screen::new(store, panel);
    let mut sequence = 0u64;
    screen.show();
    loop {
        let Some(key) = screen.read_key() else {
            // Until a key comes (or, without a GIC, at once: then this polls).
            crate::gic::wait_until(None);
            continue;
        };
        let id = || {
            sequence += 1;
            match rng.as_deref_mut() {
                Some(rng) => crate::client::message_id(rng, "duet-mail", sequence),
                None => alloc::format!("{}.{sequence}@duet-mail", crate::net::now().total_micros()),
            }
        };
        match screen.key(key, store, id) {
            Asked::Status => {
                let status = status(store, network);
                let sleeps = crate::gic::waits();
                say!("{status}; sync: not in this mode (mail.run syncs); {sleeps} WFI sleeps");
                screen.notice(status);
            }
            Asked::Quit => return,
            Asked::Nothing | Asked::Queued => {}
        }
    }
}

/// Prints the inbox once.
pub fn list(store: &mut Store<Disk>) {
    Screen::new(store, Panel::default()).show();
}

/// Prints message `uid` and marks it seen; gives the lines printed.
fn open(store: &mut Store<Disk>, uid: u32) -> Vec<String> {
    match store.read_message(uid) {
        Ok(raw) => {
            let text = String::from_utf8_lossy(&raw);
            let lines: Vec<String> =
                text.lines().take(MESSAGE_LINES).map(|l| safe_line(l, WIDTH)).collect();
            for line in &lines {
                say!("{line}");
            }
            say!("(q: back to the inbox)");
            let flags = store.messages().find(|m| m.uid == uid).map_or(0, |m| m.flags);
            if let Err(e) = store.set_flags(uid, flags | SEEN) {
                say!("mail: cannot mark message {uid} seen: {e}");
            }
            lines
        }
        Err(e) => {
            say!("mail: cannot read message {uid}: {e}");
            alloc::vec![alloc::format!("cannot read message {uid}: {e}")]
        }
    }
}

/// Outbox entries not yet sent.
pub fn waiting(store: &Store<Disk>) -> usize {
    store.outbox().filter(|(_, s)| *s != Outbox::Sent).count()
}

/// The status line's start: messages, outbox, store, network.
pub fn status(store: &Store<Disk>, network: &str) -> String {
    let log = store.log();
    alloc::format!(
        "status: {} messages; outbox {} waiting; store {} of {} KiB; network: {network}",
        store.messages().count(),
        waiting(store),
        log.used() / 1024,
        log.capacity() / 1024
    )
}
