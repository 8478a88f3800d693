//! One IMAP sync of the inbox, without I/O: the session says what to send
//! and what to store, and is fed the server's parsed responses. The guest's
//! network code moves the bytes (over TLS, once that is wired in); the
//! tests feed transcripts.
//!
//! The sync: wait for the greeting, LOGIN, SELECT INBOX (learning
//! UIDVALIDITY), `UID FETCH <next>:* (UID FLAGS BODY.PEEK[])` for the
//! messages newer than the highest stored UID, `UID FETCH 1:<highest>
//! (UID FLAGS)` to bring the stored ones' flags up to date, LOGOUT. Messages go
//! to the store one by one as they arrive, so a sync cut off anywhere
//! keeps what it got, and the next one asks only for the rest (the store
//! refuses a UID twice in any case).

use super::{Attribute, Code, Flag, Response, Status, StatusKind, Untagged};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// What the store should do with what the server said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// The mailbox's UIDVALIDITY (a new value empties the stored mailbox).
    UidValidity(u32),
    /// A new message.
    Message { uid: u32, flags: u8, raw: Vec<u8> },
    /// A stored message's flags as the server has them.
    Flags { uid: u32, flags: u8 },
}

/// Why a sync ended early. The store keeps whatever was stored before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// User or password holds a character LOGIN cannot carry quoted.
    BadCredentials,
    /// The server refused a command (NO or BAD).
    Refused { command: &'static str, text: String },
    /// The server said BYE before the sync was done.
    Closed(String),
    /// A response that makes no sense at this point.
    Unexpected { state: &'static str, response: String },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SessionError::BadCredentials => {
                write!(f, "user or password holds a control or non-ASCII character")
            }
            SessionError::Refused { command, text } => write!(f, "{command} refused: {text}"),
            SessionError::Closed(text) => write!(f, "the server closed the session: {text}"),
            SessionError::Unexpected { state, response } => {
                write!(f, "unexpected response while {state}: {response}")
            }
        }
    }
}

/// What to do after a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// A command line to send (with its CRLF).
    pub send: Option<Vec<u8>>,
    /// What to store, in order.
    pub store: Vec<StoreOp>,
    /// The sync is complete (the server has said goodbye).
    pub done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Login,
    Select,
    FetchNew,
    FetchFlags,
    Logout,
    Done,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Greeting => "waiting for the greeting",
            State::Login => "logging in",
            State::Select => "selecting INBOX",
            State::FetchNew => "fetching new mail",
            State::FetchFlags => "fetching flags",
            State::Logout => "logging out",
            State::Done => "done",
        }
    }
}

pub struct Session {
    state: State,
    login: Vec<u8>,
    tag: u32,
    /// What the store holds: its UIDVALIDITY and highest UID.
    stored_validity: u32,
    highest: u32,
    /// The server's UIDVALIDITY, once SELECT said it.
    validity: Option<u32>,
}

impl Session {
    /// A sync for a store holding UIDs up to `highest` under `uidvalidity`.
    pub fn new(
        user: &str,
        password: &str,
        uidvalidity: u32,
        highest: u32,
    ) -> Result<Self, SessionError> {
        let login = format!("LOGIN {} {}", quoted(user)?, quoted(password)?).into_bytes();
        Ok(Session {
            state: State::Greeting,
            login,
            tag: 0,
            stored_validity: uidvalidity,
            highest,
            validity: None,
        })
    }

    /// The tag of the command in flight.
    fn current_tag(&self) -> String {
        format!("m{}", self.tag)
    }

    fn command(&mut self, text: &[u8], next: State) -> Option<Vec<u8>> {
        self.tag += 1;
        self.state = next;
        let mut line = self.current_tag().into_bytes();
        line.push(b' ');
        line.extend_from_slice(text);
        line.extend_from_slice(b"\r\n");
        Some(line)
    }

    fn unexpected(&self, response: &Response) -> SessionError {
        SessionError::Unexpected { state: self.state.name(), response: shown(response) }
    }

    /// Takes the next response from the server.
    pub fn on_response(&mut self, response: &Response) -> Result<Step, SessionError> {
        let mut step = Step::default();
        match response {
            Response::Untagged(Untagged::Status(Status {
                kind: StatusKind::Bye, text, ..
            })) => {
                if self.state != State::Logout {
                    return Err(SessionError::Closed(text.clone()));
                }
            }
            Response::Untagged(untagged) => self.untagged(untagged, response, &mut step)?,
            Response::Tagged { tag, status } => {
                if *tag != self.current_tag() || self.state == State::Greeting {
                    return Err(self.unexpected(response));
                }
                if status.kind != StatusKind::Ok {
                    return Err(SessionError::Refused {
                        command: self.command_name(),
                        text: status.text.clone(),
                    });
                }
                step.send = self.completed(response)?;
                step.done = self.state == State::Done;
            }
            Response::Continue(_) => return Err(self.unexpected(response)),
        }
        Ok(step)
    }

    fn command_name(&self) -> &'static str {
        match self.state {
            State::Login => "LOGIN",
            State::Select => "SELECT",
            State::FetchNew | State::FetchFlags => "UID FETCH",
            _ => "LOGOUT",
        }
    }

    fn untagged(
        &mut self,
        untagged: &Untagged,
        response: &Response,
        step: &mut Step,
    ) -> Result<(), SessionError> {
        match (self.state, untagged) {
            (State::Greeting, Untagged::Status(Status { kind: StatusKind::Ok, .. })) => {
                let login = core::mem::take(&mut self.login);
                step.send = self.command(&login, State::Login);
            }
            (State::Greeting, Untagged::Status(Status { kind: StatusKind::PreAuth, .. })) => {
                step.send = self.command(b"SELECT INBOX", State::Select);
            }
            (State::Select, Untagged::Status(Status { code: Some(Code::UidValidity(v)), .. })) => {
                self.validity = Some(*v);
                if *v != self.stored_validity {
                    // Every UID the store holds means nothing now.
                    self.highest = 0;
                    step.store.push(StoreOp::UidValidity(*v));
                }
            }
            (State::FetchNew, Untagged::Fetch { attributes, .. }) => {
                let (uid, flags, body) = fetched(attributes);
                // `n:*` also returns the last message when none is newer.
                if let (Some(uid), Some(raw)) = (uid, body) {
                    if uid > self.highest {
                        step.store.push(StoreOp::Message { uid, flags: flags.unwrap_or(0), raw });
                    }
                }
            }
            (State::FetchFlags, Untagged::Fetch { attributes, .. }) => {
                if let (Some(uid), Some(flags), _) = fetched(attributes) {
                    step.store.push(StoreOp::Flags { uid, flags });
                }
            }
            (State::Greeting, _) => return Err(self.unexpected(response)),
            // Capabilities, EXISTS, RECENT, FLAGS, other codes and data:
            // nothing the sync needs.
            _ => {}
        }
        Ok(())
    }

    /// The command in flight completed: the next one.
    fn completed(&mut self, response: &Response) -> Result<Option<Vec<u8>>, SessionError> {
        Ok(match self.state {
            State::Login => self.command(b"SELECT INBOX", State::Select),
            State::Select => {
                if self.validity.is_none() {
                    return Err(SessionError::Unexpected {
                        state: self.state.name(),
                        response: "SELECT completed without UIDVALIDITY".into(),
                    });
                }
                let fetch = format!("UID FETCH {}:* (UID FLAGS BODY.PEEK[])", self.highest + 1);
                self.command(fetch.as_bytes(), State::FetchNew)
            }
            State::FetchNew if self.highest > 0 => {
                let fetch = format!("UID FETCH 1:{} (UID FLAGS)", self.highest);
                self.command(fetch.as_bytes(), State::FetchFlags)
            }
            State::FetchNew | State::FetchFlags => self.command(b"LOGOUT", State::Logout),
            State::Logout => {
                self.state = State::Done;
                None
            }
            State::Greeting | State::Done => return Err(self.unexpected(response)),
        })
    }
}

/// UID, flags (as the store's bits) and the whole body of a FETCH.
fn fetched(attributes: &[Attribute]) -> (Option<u32>, Option<u8>, Option<Vec<u8>>) {
    let (mut uid, mut flags, mut body) = (None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::Uid(u) => uid = Some(*u),
            Attribute::Flags(list) => flags = Some(flag_bits(list)),
            Attribute::Body { section, origin: None, data } if section.is_empty() => {
                body = data.clone()
            }
            _ => {}
        }
    }
    (uid, flags, body)
}

fn flag_bits(flags: &[Flag]) -> u8 {
    use crate::store::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};
    flags.iter().fold(0, |bits, flag| {
        bits | match flag {
            Flag::Seen => SEEN,
            Flag::Answered => ANSWERED,
            Flag::Flagged => FLAGGED,
            Flag::Deleted => DELETED,
            Flag::Draft => DRAFT,
            _ => 0,
        }
    })
}

/// A response as the error shows it: its first 200 bytes or so (cut at a
/// character boundary: the server's text may be any UTF-8).
pub(crate) fn shown(response: &Response) -> String {
    let mut text = format!("{response:?}");
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// `text` as an IMAP quoted string; only printable ASCII may be quoted.
pub(crate) fn quoted(text: &str) -> Result<String, SessionError> {
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(SessionError::BadCredentials);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

impl StoreOp {
    /// Does this to `store`.
    pub fn apply<D: crate::store::log::BlockDevice>(
        self,
        store: &mut crate::store::Store<D>,
    ) -> Result<(), crate::store::StoreError<D::Error>> {
        match self {
            StoreOp::UidValidity(v) => store.set_uidvalidity(v),
            StoreOp::Message { uid, flags, raw } => store.add_message(uid, flags, &raw).map(|_| ()),
            StoreOp::Flags { uid, flags } => match store.set_flags(uid, flags) {
                // A flag update for a message the store never had (an
                // earlier sync was cut off before it): nothing to update.
                Err(crate::store::StoreError::NoMessage(_)) => Ok(()),
                other => other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{parse, Limits};
    use crate::store::memory::MemoryDisk;
    use crate::store::{Store, SEEN};
    use alloc::vec;

    /// Feeds `server` (one response after another) to `session`: the
    /// commands it sent, and whether it finished; applies its ops to `store`.
    fn run(
        session: &mut Session,
        server: &str,
        store: &mut Store<MemoryDisk>,
    ) -> (Vec<String>, Result<bool, SessionError>) {
        let mut sent = Vec::new();
        let mut at = 0;
        let bytes = server.as_bytes();
        while at < bytes.len() {
            let (response, used) =
                parse(&bytes[at..], &Limits::default()).unwrap().expect("whole responses");
            at += used;
            match session.on_response(&response) {
                Ok(step) => {
                    sent.extend(step.send.map(|s| String::from_utf8(s).unwrap()));
                    for op in step.store {
                        op.apply(store).unwrap();
                    }
                    if step.done {
                        return (sent, Ok(true));
                    }
                }
                Err(e) => return (sent, Err(e)),
            }
        }
        (sent, Ok(false))
    }

    fn message(n: u32) -> String {
        format!("From: sender{n}@example.com\r\nSubject: number {n}\r\n\r\nBody {n}.\r\n")
    }

    fn fetch(seq: u32, uid: u32, flags: &str) -> String {
        let m = message(uid);
        format!("* {seq} FETCH (UID {uid} FLAGS ({flags}) BODY[] {{{}}}\r\n{m})\r\n", m.len())
    }

    const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot (Debian) ready.\r\n";
    const SELECT: &str = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 2 EXISTS\r\n\
        * OK [UIDVALIDITY 1700] UIDs valid\r\n* OK [UIDNEXT 3] Predicted next UID\r\nm2 OK [READ-WRITE] Select completed.\r\n";

    #[test]
    fn a_first_sync_fetches_everything_and_a_second_only_what_is_new() {
        let mut store = Store::open(MemoryDisk::new(256), 7).unwrap();
        let mut session =
            Session::new("bob", "pa\"ss", store.uidvalidity(), store.highest_uid()).unwrap();
        let server = format!(
            "{GREETING}m1 OK Logged in\r\n{SELECT}{}{}m3 OK Fetch completed.\r\n* BYE Logging out\r\nm4 OK Logout completed.\r\n",
            fetch(1, 1, "\\Seen"),
            fetch(2, 2, "")
        );
        let (sent, done) = run(&mut session, &server, &mut store);
        assert_eq!(done, Ok(true));
        assert_eq!(
            sent,
            vec![
                "m1 LOGIN \"bob\" \"pa\\\"ss\"\r\n",
                "m2 SELECT INBOX\r\n",
                "m3 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n",
                "m4 LOGOUT\r\n"
            ]
        );
        assert_eq!(store.uidvalidity(), 1700);
        let listed: Vec<(u32, u8)> = store.messages().map(|m| (m.uid, m.flags)).collect();
        assert_eq!(listed, vec![(1, SEEN), (2, 0)]);
        assert_eq!(store.read_message(2).unwrap(), message(2).as_bytes());

        // Next sync: one new message (3), and 2 was read elsewhere. The
        // server also answers `3:*` with nothing older.
        let mut session =
            Session::new("bob", "pw", store.uidvalidity(), store.highest_uid()).unwrap();
        let server = format!(
            "{GREETING}m1 OK Logged in\r\n{}{}m3 OK Fetch completed.\r\n* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n\
             * 2 FETCH (UID 2 FLAGS (\\Seen \\Answered))\r\nm4 OK Fetch completed.\r\n* BYE bye\r\nm5 OK done\r\n",
            SELECT.replace("2 EXISTS", "3 EXISTS"),
            fetch(3, 3, "")
        );
        let (sent, done) = run(&mut session, &server, &mut store);
        assert_eq!(done, Ok(true));
        assert_eq!(sent[2], "m3 UID FETCH 3:* (UID FLAGS BODY.PEEK[])\r\n");
        assert_eq!(sent[3], "m4 UID FETCH 1:2 (UID FLAGS)\r\n");
        let listed: Vec<(u32, u8)> = store.messages().map(|m| (m.uid, m.flags)).collect();
        assert_eq!(listed, vec![(1, SEEN), (2, SEEN | crate::store::ANSWERED), (3, 0)]);
    }

    #[test]
    fn an_old_message_answering_n_star_is_not_stored_again_and_a_cut_sync_resumes() {
        let mut store = Store::open(MemoryDisk::new(256), 7).unwrap();
        store.set_uidvalidity(1700).unwrap();
        store.add_message(1, 0, message(1).as_bytes()).unwrap();
        store.add_message(2, 0, message(2).as_bytes()).unwrap();
        let used = store.log().used();
        let mut session = Session::new("bob", "pw", 1700, 2).unwrap();
        // `3:*` with no newer mail returns the last message, UID 2.
        let server =
            format!("{GREETING}m1 OK Logged in\r\n{SELECT}{}m3 OK done\r\n", fetch(2, 2, ""));
        let (sent, _) = run(&mut session, &server, &mut store);
        assert_eq!(sent.last().unwrap(), "m4 UID FETCH 1:2 (UID FLAGS)\r\n");
        assert_eq!(store.log().used(), used);

        // The connection drops in the middle of a fetch: what arrived is kept.
        let mut session = Session::new("bob", "pw", 1700, 2).unwrap();
        let server = format!("{GREETING}m1 OK Logged in\r\n{SELECT}{}", fetch(3, 3, ""));
        let (_, done) = run(&mut session, &server, &mut store);
        assert_eq!(done, Ok(false));
        assert_eq!(store.highest_uid(), 3);
    }

    #[test]
    fn a_new_uidvalidity_starts_over_and_refusals_end_the_sync() {
        let mut store = Store::open(MemoryDisk::new(256), 7).unwrap();
        store.set_uidvalidity(99).unwrap();
        store.add_message(5, 0, b"old").unwrap();
        let mut session = Session::new("bob", "pw", 99, 5).unwrap();
        let server = format!("{GREETING}m1 OK Logged in\r\n{SELECT}");
        let (sent, _) = run(&mut session, &server, &mut store);
        assert_eq!(sent.last().unwrap(), "m3 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n");
        assert_eq!((store.uidvalidity(), store.messages().count()), (1700, 0));

        let mut session = Session::new("bob", "wrong", 0, 0).unwrap();
        let server = format!("{GREETING}m1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
        let (_, done) = run(&mut session, &server, &mut store);
        assert_eq!(
            done,
            Err(SessionError::Refused { command: "LOGIN", text: "Authentication failed.".into() })
        );

        let mut session = Session::new("bob", "pw", 0, 0).unwrap();
        let (_, done) = run(&mut session, "* BYE Too many connections\r\n", &mut store);
        assert_eq!(done, Err(SessionError::Closed("Too many connections".into())));

        let mut session = Session::new("bob", "pw", 0, 0).unwrap();
        let (_, done) = run(&mut session, "m1 OK forged\r\n", &mut store);
        assert!(matches!(done, Err(SessionError::Unexpected { .. })));
        let mut session = Session::new("bob", "pw", 0, 0).unwrap();
        let (_, done) = run(&mut session, &format!("{GREETING}m7 OK wrong tag\r\n"), &mut store);
        assert!(matches!(done, Err(SessionError::Unexpected { .. })));
        let mut session = Session::new("bob", "pw", 0, 0).unwrap();
        let (_, done) =
            run(&mut session, &format!("{GREETING}m1 OK in\r\nm2 OK selected\r\n"), &mut store);
        assert!(matches!(done, Err(SessionError::Unexpected { .. })), "no UIDVALIDITY");

        assert!(matches!(
            Session::new("bob\r\nm9 DELETE INBOX", "pw", 0, 0),
            Err(SessionError::BadCredentials)
        ));
        assert!(matches!(Session::new("bob", "p\u{e9}", 0, 0), Err(SessionError::BadCredentials)));

        // An unexpected response with text where byte 200 falls inside a
        // character (found by fuzzing: the error must not panic).
        let mut session = Session::new("bob", "pw", 0, 0).unwrap();
        let text = "\u{e9}".repeat(150);
        let (_, done) = run(&mut session, &format!("* NO {text}\r\n"), &mut store);
        assert!(matches!(done, Err(SessionError::Unexpected { .. })));
    }
}
