//! The console text interface, as a state machine the guest feeds one key
//! at a time: it says what to do ([`Effect`]) and renders screens as lines;
//! the guest reads keys from its console, does the effects (open a
//! message, queue a draft) and prints. Keys are listed in the README.
//!
//! Screens: the inbox (one line per message: unread mark, sender, subject,
//! date; a `>` at the selected one), a message, and compose (To, Subject,
//! then body lines until a line holding only `.`). Only printable
//! characters are taken into a draft, so a header field can hold no line
//! break (no header injection).

use crate::draw::{Line, Page};
use crate::message::{safe_line, Summary};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// A message as the inbox lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub uid: u32,
    pub unread: bool,
    pub summary: Summary,
}

/// What the guest should do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Print the inbox again.
    ShowInbox,
    /// Print this message (and mark it seen).
    Open(u32),
    /// Print these characters (echo while composing, prompts).
    Print(String),
    /// Put this draft in the outbox.
    Queue(Draft),
    /// Print the sync status.
    Status,
    /// Leave the interface (the guest powers off).
    Quit,
}

/// A message composed on the console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub to: String,
    pub subject: String,
    pub body: Vec<String>,
}

impl Draft {
    /// The message as RFC 5322 text (CRLF lines). The sender adds From and
    /// Date when it sends.
    pub fn raw(&self, message_id: &str) -> Vec<u8> {
        let mut text = format!(
            "To: {}\r\nSubject: {}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n",
            self.to, self.subject
        );
        for line in &self.body {
            // A body line starting with "." would end SMTP's DATA early.
            if line.starts_with('.') {
                text.push('.');
            }
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.into_bytes()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    To,
    Subject,
    Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Screen {
    Inbox,
    Message,
    Compose { draft: Draft, field: Field, line: String },
}

/// The longest line a draft field or body line may have.
const LINE_LIMIT: usize = 998;
/// The most body lines of a draft.
const BODY_LIMIT: usize = 2000;

const ENTER: [u8; 2] = [b'\r', b'\n'];
const BACKSPACE: [u8; 2] = [0x08, 0x7f];
const CTRL_C: u8 = 0x03;
const ESCAPE: u8 = 0x1b;
/// Up and down on the inbox: Ctrl-P and Ctrl-N on the console, the arrow
/// keys on the guest's own keyboard (`keys`).
pub const UP: u8 = 0x10;
pub const DOWN: u8 = 0x0e;

pub struct Ui {
    screen: Screen,
    selected: usize,
}

impl Default for Ui {
    fn default() -> Self {
        Ui { screen: Screen::Inbox, selected: 0 }
    }
}

impl Ui {
    /// Handles one key; `rows` is the inbox as it is now.
    pub fn key(&mut self, key: u8, rows: &[Row]) -> Effect {
        self.selected = self.selected.min(rows.len().saturating_sub(1));
        match &mut self.screen {
            Screen::Inbox => self.inbox_key(key, rows),
            Screen::Message => match key {
                b'q' | ESCAPE => {
                    self.screen = Screen::Inbox;
                    Effect::ShowInbox
                }
                _ => Effect::Nothing,
            },
            Screen::Compose { .. } => self.compose_key(key),
        }
    }

    fn inbox_key(&mut self, key: u8, rows: &[Row]) -> Effect {
        match key {
            b'j' | DOWN if self.selected + 1 < rows.len() => {
                self.selected += 1;
                Effect::ShowInbox
            }
            b'k' | UP if self.selected > 0 => {
                self.selected -= 1;
                Effect::ShowInbox
            }
            k if ENTER.contains(&k) && !rows.is_empty() => {
                self.screen = Screen::Message;
                Effect::Open(rows[self.selected].uid)
            }
            b'c' => self.start_compose(Draft::default(), Field::To),
            b'r' if !rows.is_empty() => {
                let summary = &rows[self.selected].summary;
                let subject = if summary.subject.to_ascii_lowercase().starts_with("re:") {
                    summary.subject.clone()
                } else {
                    format!("Re: {}", summary.subject)
                };
                let draft = Draft {
                    to: printable(&summary.from),
                    subject: printable(&subject),
                    body: Vec::new(),
                };
                let prompt = format!("To: {}\nSubject: {}\n", draft.to, draft.subject);
                match self.start_compose(draft, Field::Body) {
                    Effect::Print(rest) => Effect::Print(prompt + &rest),
                    other => other,
                }
            }
            b's' => Effect::Status,
            b'q' => Effect::Quit,
            _ => Effect::Nothing,
        }
    }

    fn start_compose(&mut self, draft: Draft, field: Field) -> Effect {
        self.screen = Screen::Compose { draft, field, line: String::new() };
        Effect::Print(String::from(match field {
            Field::To => {
                "compose (a line with only . sends it to the outbox, Ctrl-C drops it)\nTo: "
            }
            Field::Subject => "Subject: ",
            Field::Body => "(body; a line with only . ends it)\n",
        }))
    }

    fn compose_key(&mut self, key: u8) -> Effect {
        let Screen::Compose { draft, field, line } = &mut self.screen else {
            return Effect::Nothing;
        };
        match key {
            CTRL_C => {
                self.screen = Screen::Inbox;
                Effect::Print(String::from("^C (dropped)\n"))
            }
            k if BACKSPACE.contains(&k) => match line.pop() {
                Some(_) => Effect::Print(String::from("\x08 \x08")),
                None => Effect::Nothing,
            },
            k if ENTER.contains(&k) => {
                let done = core::mem::take(line);
                match field {
                    Field::To => {
                        draft.to = done;
                        *field = Field::Subject;
                        Effect::Print(String::from("\nSubject: "))
                    }
                    Field::Subject => {
                        draft.subject = done;
                        *field = Field::Body;
                        Effect::Print(String::from("\n(body; a line with only . ends it)\n"))
                    }
                    Field::Body if done == "." => {
                        let draft = core::mem::take(draft);
                        self.screen = Screen::Inbox;
                        Effect::Queue(draft)
                    }
                    Field::Body if draft.body.len() >= BODY_LIMIT => {
                        Effect::Print(format!("\n(the body is limited to {BODY_LIMIT} lines)\n"))
                    }
                    Field::Body => {
                        draft.body.push(done);
                        Effect::Print(String::from("\n"))
                    }
                }
            }
            k if (0x20..0x7f).contains(&k) && line.len() < LINE_LIMIT => {
                line.push(k as char);
                Effect::Print(String::from(k as char))
            }
            _ => Effect::Nothing,
        }
    }

    /// The inbox as console lines, `width` characters at most each.
    pub fn inbox(&self, rows: &[Row], width: usize) -> Vec<String> {
        let mut lines = Vec::with_capacity(rows.len() + 2);
        let unread = rows.iter().filter(|r| r.unread).count();
        lines.push(format!("inbox: {} messages, {unread} unread", rows.len()));
        for (i, row) in rows.iter().enumerate() {
            let mark = if i == self.selected { '>' } else { ' ' };
            let new = if row.unread { 'N' } else { ' ' };
            let s = &row.summary;
            let text = format!("{mark}{new} {:<24.24}  {:<40.40}  {}", s.from, s.subject, s.date);
            lines.push(safe_line(&text, width));
        }
        lines
            .push(String::from("keys: j/k move, Enter open, r reply, c compose, s status, q quit"));
        lines
    }

    /// The screen as a page for the guest's display (`draw`): the inbox
    /// (two lines a message, the selected one highlighted), the open
    /// message (`message`: its lines as the console printed them), or the
    /// draft being composed with a `_` where the next key goes.
    pub fn page(&self, rows: &[Row], message: &[String]) -> Page {
        match &self.screen {
            Screen::Inbox => {
                let unread = rows.iter().filter(|r| r.unread).count();
                let mut lines = Vec::with_capacity(rows.len() * 2);
                for (i, row) in rows.iter().enumerate() {
                    let selected = i == self.selected;
                    let new = if row.unread { 'N' } else { ' ' };
                    let s = &row.summary;
                    lines.push(Line { text: format!("{new} {}", s.from), selected });
                    lines.push(Line { text: format!("  {}  {}", s.subject, s.date), selected });
                }
                if rows.is_empty() {
                    lines.push(Line::plain("(no messages)"));
                }
                Page {
                    title: format!("Inbox: {} messages, {unread} unread", rows.len()),
                    lines,
                    status: String::from("j/k move, Enter open, c compose, r reply"),
                    focus: self.selected * 2..self.selected * 2 + 2,
                }
            }
            Screen::Message => Page {
                title: String::from("Message"),
                lines: message.iter().map(|l| Line::plain(l.as_str())).collect(),
                status: String::from("q: back to the inbox"),
                focus: 0..1,
            },
            Screen::Compose { draft, field, line } => {
                let typing = |f: Field, done: &str| match f == *field {
                    true => format!("{line}_"),
                    false => String::from(done),
                };
                let mut lines = vec![
                    Line::plain(format!("To: {}", typing(Field::To, &draft.to))),
                    Line::plain(format!("Subject: {}", typing(Field::Subject, &draft.subject))),
                    Line::plain(""),
                ];
                lines.extend(draft.body.iter().map(|l| Line::plain(l.as_str())));
                if *field == Field::Body {
                    lines.push(Line::plain(typing(Field::Body, "")));
                }
                let at = match field {
                    Field::To => 0,
                    Field::Subject => 1,
                    Field::Body => lines.len() - 1,
                };
                Page {
                    title: String::from("Compose"),
                    lines,
                    status: String::from("a line of . queues it, Ctrl-C drops"),
                    focus: at..at + 1,
                }
            }
        }
    }

    /// True on the inbox screen (not reading a message or composing).
    pub fn on_inbox(&self) -> bool {
        self.screen == Screen::Inbox
    }

    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selected
    }
}

/// Only printable ASCII, for a field prefilled from a received message.
fn printable(text: &str) -> String {
    text.chars().filter(|c| (' '..='~').contains(c)).take(LINE_LIMIT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        let row = |uid, unread, from: &str, subject: &str| Row {
            uid,
            unread,
            summary: Summary {
                from: from.into(),
                subject: subject.into(),
                date: "Sat, 5 Dec 2026".into(),
            },
        };
        vec![
            row(7, false, "Alice <a@example.com>", "Plans"),
            row(9, true, "Bob\x1b[2J", "Re: lunch"),
        ]
    }

    fn keys(ui: &mut Ui, text: &[u8], rows: &[Row]) -> Vec<Effect> {
        text.iter().map(|&k| ui.key(k, rows)).collect()
    }

    #[test]
    fn the_inbox_lists_messages_with_unread_marks_and_a_selection() {
        let mut ui = Ui::default();
        let lines = ui.inbox(&rows(), 100);
        assert_eq!(lines[0], "inbox: 2 messages, 1 unread");
        assert!(lines[1].starts_with(">  Alice <a@example.com>"), "{:?}", lines[1]);
        // The sender's escape sequence is defused.
        assert!(lines[2].starts_with(" N Bob?[2J"), "{:?}", lines[2]);
        assert!(lines[2].contains("Re: lunch") && lines[2].ends_with("Sat, 5 Dec 2026"));
        assert_eq!(ui.key(b'j', &rows()), Effect::ShowInbox);
        assert_eq!(ui.key(b'j', &rows()), Effect::Nothing);
        assert!(ui.inbox(&rows(), 100)[2].starts_with(">N"));
        assert_eq!(ui.key(b'\r', &rows()), Effect::Open(9));
        assert_eq!(ui.key(b'j', &rows()), Effect::Nothing);
        assert_eq!(ui.key(b'q', &rows()), Effect::ShowInbox);
        assert_eq!(ui.key(b'k', &rows()), Effect::ShowInbox);
        assert_eq!(ui.key(b's', &rows()), Effect::Status);
        assert!(ui.on_inbox());
        assert_eq!(ui.key(b'q', &rows()), Effect::Quit);
        assert_eq!(Ui::default().key(b'\r', &[]), Effect::Nothing);
    }

    #[test]
    fn compose_queues_a_draft_and_takes_only_printable_keys() {
        let mut ui = Ui::default();
        keys(&mut ui, b"cbob@example.com\rHi\x1b there\r", &[]);
        assert!(!ui.on_inbox());
        keys(&mut ui, b"line one\r.hidden dot\rtypo\x7f\x7fpo\r", &[]);
        let effect = ui.key(b'.', &[]);
        assert_eq!(effect, Effect::Print(".".into()));
        let Effect::Queue(draft) = ui.key(b'\r', &[]) else { panic!() };
        assert_eq!(draft.to, "bob@example.com");
        assert_eq!(draft.subject, "Hi there");
        assert_eq!(draft.body, vec!["line one", ".hidden dot", "typo"]);
        let raw = String::from_utf8(draft.raw("1@duet")).unwrap();
        assert!(
            raw.starts_with("To: bob@example.com\r\nSubject: Hi there\r\nMessage-ID: <1@duet>\r\n")
        );
        assert!(raw.ends_with("\r\n\r\nline one\r\n..hidden dot\r\ntypo\r\n"));
        // Back at the inbox.
        assert_eq!(ui.key(b'q', &[]), Effect::Quit);
    }

    #[test]
    fn reply_prefills_and_ctrl_c_drops() {
        let mut ui = Ui::default();
        ui.key(b'j', &rows());
        let Effect::Print(prompt) = ui.key(b'r', &rows()) else { panic!() };
        assert!(prompt.starts_with("To: Bob[2J\nSubject: Re: lunch\n"), "{prompt:?}");
        keys(&mut ui, b"ok\r.", &rows());
        let Effect::Queue(draft) = ui.key(b'\n', &rows()) else { panic!() };
        assert_eq!((draft.to.as_str(), draft.body.len()), ("Bob[2J", 1));

        let mut ui = Ui::default();
        keys(&mut ui, b"cx", &[]);
        assert_eq!(ui.key(CTRL_C, &[]), Effect::Print("^C (dropped)\n".into()));
        assert_eq!(ui.key(b'q', &[]), Effect::Quit);
    }

    #[test]
    fn arrows_move_and_escape_leaves_a_message() {
        let mut ui = Ui::default();
        assert_eq!(ui.key(DOWN, &rows()), Effect::ShowInbox);
        assert_eq!(ui.key(DOWN, &rows()), Effect::Nothing);
        assert_eq!(ui.key(UP, &rows()), Effect::ShowInbox);
        assert_eq!(ui.selected(), 0);
        assert_eq!(ui.key(b'\r', &rows()), Effect::Open(7));
        assert_eq!(ui.key(ESCAPE, &rows()), Effect::ShowInbox);
        assert!(ui.on_inbox());
        // Escape while composing changes nothing (as before).
        keys(&mut ui, b"cab", &rows());
        assert_eq!(ui.key(ESCAPE, &rows()), Effect::Nothing);
        assert!(!ui.on_inbox());
    }

    #[test]
    fn pages_show_the_inbox_a_message_and_the_draft() {
        let mut ui = Ui::default();
        let texts =
            |page: &Page| -> Vec<String> { page.lines.iter().map(|l| l.text.clone()).collect() };
        let page = ui.page(&rows(), &[]);
        assert_eq!(page.title, "Inbox: 2 messages, 1 unread");
        assert_eq!(
            texts(&page)[..3],
            ["  Alice <a@example.com>", "  Plans  Sat, 5 Dec 2026", "N Bob\x1b[2J"]
        );
        let selected: Vec<bool> = page.lines.iter().map(|l| l.selected).collect();
        assert_eq!(selected, [true, true, false, false]);
        ui.key(b'j', &rows());
        let page = ui.page(&rows(), &[]);
        assert_eq!(
            (page.lines[2].selected, page.lines[0].selected, page.focus),
            (true, false, 2..4)
        );
        assert_eq!(ui.page(&[], &[]).lines, [Line::plain("(no messages)")]);

        ui.key(b'\r', &rows());
        let page = ui.page(&rows(), &["Subject: hi".into(), "body".into()]);
        assert_eq!(
            (page.title.as_str(), texts(&page)),
            ("Message", vec!["Subject: hi".into(), "body".into()])
        );
        ui.key(b'q', &rows());

        keys(&mut ui, b"cbob", &rows());
        let page = ui.page(&rows(), &[]);
        assert_eq!(page.title, "Compose");
        assert_eq!(texts(&page), ["To: bob_", "Subject: ", ""]);
        keys(&mut ui, b"\rHi\rline\rnext", &rows());
        let page = ui.page(&rows(), &[]);
        assert_eq!(texts(&page), ["To: bob", "Subject: Hi", "", "line", "next_"]);
        assert_eq!(page.focus, 4..5);
    }
}
