//! Does the server have this message? The check, without I/O, that
//! settles an outbox entry cut off between "sending" and "sent": the
//! submission may or may not have been accepted. Every submission also
//! names the account itself as a (blind) envelope recipient (`smtp`), so a
//! message the server accepted lands in the account's own mailbox; the
//! check looks for its Message-ID there (`UID SEARCH HEADER Message-ID`) in
//! INBOX, then in `Sent` (where servers that file submitted mail keep it;
//! a server without one answers NO, which is no error here).
//!
//! The session: greeting, LOGIN, for each mailbox EXAMINE (read-only) and
//! the search, LOGOUT. The result is [`Found`] or not; any refusal other
//! than a missing mailbox, or a response out of place, is an error and the
//! entry stays uncertain.

use super::session::{quoted, shown, SessionError};
use super::{Response, Status, StatusKind, Untagged};
use alloc::format;
use alloc::vec::Vec;

/// The mailboxes searched, in order.
pub const MAILBOXES: [&str; 2] = ["INBOX", "Sent"];

/// The check's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found(pub bool);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Login,
    Examine(usize),
    Search(usize),
    Logout,
}

/// What to do after a response: a command to send, and once known the
/// answer (the session is over when `done`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStep {
    pub send: Option<Vec<u8>>,
    pub done: Option<Found>,
}

pub struct Check {
    state: State,
    tag: u32,
    login: Vec<u8>,
    search: Vec<u8>,
    found: bool,
}

impl Check {
    /// A check for `message_id` (as in the header, with its angle
    /// brackets) under `user`/`password`.
    pub fn new(user: &str, password: &str, message_id: &str) -> Result<Check, SessionError> {
        let login = format!("LOGIN {} {}", quoted(user)?, quoted(password)?).into_bytes();
        let search = format!("UID SEARCH HEADER Message-ID {}", quoted(message_id)?).into_bytes();
        Ok(Check { state: State::Greeting, tag: 0, login, search, found: false })
    }

    fn command(&mut self, text: &[u8], next: State) -> Option<Vec<u8>> {
        self.tag += 1;
        self.state = next;
        let mut line = format!("c{} ", self.tag).into_bytes();
        line.extend_from_slice(text);
        line.extend_from_slice(b"\r\n");
        Some(line)
    }

    fn examine(&mut self, mailbox: usize) -> Option<Vec<u8>> {
        let command = format!("EXAMINE {}", MAILBOXES[mailbox]);
        self.command(command.as_bytes(), State::Examine(mailbox))
    }

    fn unexpected(&self, response: &Response) -> SessionError {
        SessionError::Unexpected { state: "checking for a sent message", response: shown(response) }
    }

    /// Takes the next response from the server.
    pub fn on_response(&mut self, response: &Response) -> Result<CheckStep, SessionError> {
        let mut step = CheckStep::default();
        match (self.state, response) {
            (
                _,
                Response::Untagged(Untagged::Status(Status {
                    kind: StatusKind::Bye, text, ..
                })),
            ) => {
                if self.state != State::Logout {
                    return Err(SessionError::Closed(text.clone()));
                }
            }
            (State::Greeting, Response::Untagged(Untagged::Status(s)))
                if s.kind == StatusKind::Ok =>
            {
                let login = core::mem::take(&mut self.login);
                step.send = self.command(&login, State::Login);
            }
            (State::Greeting, _) => return Err(self.unexpected(response)),
            (State::Search(_), Response::Untagged(Untagged::Search(uids))) => {
                self.found |= !uids.is_empty();
            }
            (_, Response::Untagged(_)) => {}
            (_, Response::Continue(_)) => return Err(self.unexpected(response)),
            (state, Response::Tagged { tag, status }) => {
                if *tag != format!("c{}", self.tag) {
                    return Err(self.unexpected(response));
                }
                let ok = status.kind == StatusKind::Ok;
                step.send = match state {
                    State::Login if ok => self.examine(0),
                    State::Examine(n) if ok => {
                        let search = self.search.clone();
                        self.command(&search, State::Search(n))
                    }
                    // No such mailbox: nothing of ours there.
                    State::Examine(n) if status.kind == StatusKind::No => self.next(n),
                    State::Search(n) if ok => self.next(n),
                    State::Logout => {
                        step.done = Some(Found(self.found));
                        None
                    }
                    _ => {
                        return Err(SessionError::Refused {
                            command: match state {
                                State::Login => "LOGIN",
                                State::Examine(_) => "EXAMINE",
                                _ => "UID SEARCH",
                            },
                            text: status.text.clone(),
                        })
                    }
                };
            }
        }
        Ok(step)
    }

    /// After mailbox `n`: the next one, or LOGOUT once found or done.
    fn next(&mut self, n: usize) -> Option<Vec<u8>> {
        if self.found || n + 1 == MAILBOXES.len() {
            self.command(b"LOGOUT", State::Logout)
        } else {
            self.examine(n + 1)
        }
    }
}

/// The answer's text, for the console.
impl core::fmt::Display for Found {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str(if self.0 { "found on the server" } else { "not on the server" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{parse, Limits};
    use alloc::string::String;
    use alloc::vec;

    /// Feeds `server` to `check`: what it sent and how it ended.
    fn run(check: &mut Check, server: &str) -> (Vec<String>, Result<Option<Found>, SessionError>) {
        let mut sent = Vec::new();
        let mut at = 0;
        let bytes = server.as_bytes();
        while at < bytes.len() {
            let (response, used) =
                parse(&bytes[at..], &Limits::default()).unwrap().expect("whole responses");
            at += used;
            match check.on_response(&response) {
                Ok(step) => {
                    sent.extend(step.send.map(|s| String::from_utf8(s).unwrap()));
                    if step.done.is_some() {
                        return (sent, Ok(step.done));
                    }
                }
                Err(e) => return (sent, Err(e)),
            }
        }
        (sent, Ok(None))
    }

    const GREETING: &str = "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n";

    #[test]
    fn a_message_in_the_inbox_is_found_without_looking_further() {
        let mut check = Check::new("alice", "pw", "<1.ab@duet-mail>").unwrap();
        let server = format!(
            "{GREETING}c1 OK Logged in\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\nc2 OK [READ-ONLY] Examine completed\r\n\
             * SEARCH 7\r\nc3 OK Search completed\r\n* BYE Logging out\r\nc4 OK Logout completed\r\n"
        );
        let (sent, result) = run(&mut check, &server);
        assert_eq!(result, Ok(Some(Found(true))));
        assert_eq!(
            sent,
            vec![
                "c1 LOGIN \"alice\" \"pw\"\r\n",
                "c2 EXAMINE INBOX\r\n",
                "c3 UID SEARCH HEADER Message-ID \"<1.ab@duet-mail>\"\r\n",
                "c4 LOGOUT\r\n"
            ]
        );
    }

    #[test]
    fn a_missing_sent_mailbox_is_no_error_and_nothing_found_says_so() {
        let mut check = Check::new("alice", "pw", "<2@x>").unwrap();
        let server = format!(
            "{GREETING}c1 OK in\r\nc2 OK ex\r\n* SEARCH\r\nc3 OK s\r\nc4 NO Mailbox doesn't exist: Sent\r\n\
             * BYE out\r\nc5 OK out\r\n"
        );
        let (sent, result) = run(&mut check, &server);
        assert_eq!(result, Ok(Some(Found(false))));
        assert_eq!(sent[3], "c4 EXAMINE Sent\r\n");
        assert_eq!(sent[4], "c5 LOGOUT\r\n");

        // Found in Sent.
        let mut check = Check::new("alice", "pw", "<2@x>").unwrap();
        let server = format!(
            "{GREETING}c1 OK in\r\nc2 OK ex\r\n* SEARCH\r\nc3 OK s\r\nc4 OK ex\r\n* SEARCH 1 2\r\nc5 OK s\r\nc6 OK out\r\n"
        );
        assert_eq!(run(&mut check, &server).1, Ok(Some(Found(true))));
    }

    #[test]
    fn refusals_and_surprises_end_the_check_unsettled() {
        let mut check = Check::new("alice", "pw", "<3@x>").unwrap();
        let (_, result) = run(&mut check, &format!("{GREETING}c1 NO bad password\r\n"));
        assert!(matches!(result, Err(SessionError::Refused { command: "LOGIN", .. })));
        let mut check = Check::new("alice", "pw", "<3@x>").unwrap();
        let server = format!("{GREETING}c1 OK in\r\nc2 OK ex\r\nc3 BAD no HEADER search\r\n");
        assert!(matches!(run(&mut check, &server).1, Err(SessionError::Refused { .. })));
        let mut check = Check::new("alice", "pw", "<3@x>").unwrap();
        assert!(matches!(
            run(&mut check, &format!("{GREETING}c9 OK forged\r\n")).1,
            Err(SessionError::Unexpected { .. })
        ));
        let mut check = Check::new("alice", "pw", "<3@x>").unwrap();
        assert!(matches!(
            run(&mut check, &format!("{GREETING}c1 OK in\r\n* BYE shutting down\r\n")).1,
            Err(SessionError::Closed(_))
        ));
        assert!(Check::new("alice", "pw", "<a\r\nc9 DELETE INBOX>").is_err());
    }
}
