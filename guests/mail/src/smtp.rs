//! SMTP submission (RFC 6409 over implicit TLS, port 465) of one outbox
//! entry, without I/O, and the server's replies parsed defensively (lines
//! and line counts bounded, errors as types).
//!
//! The session: the 220 greeting, EHLO, AUTH PLAIN, MAIL FROM, RCPT TO for
//! each recipient, DATA, the message dot-stuffed, QUIT. Exactly once: just
//! before the message's last line (the final `.`) goes out the session
//! says [`Event::Sending`], which the caller makes durable (the store's
//! `begin_send`) before sending it; after the server's 250 it says
//! [`Event::Accepted`] (the store's `mark_sent`). An entry cut off between
//! the two is "uncertain" in the store, never blindly sent again: the
//! sender is always one of the envelope's recipients (blind, not in the
//! header), so an accepted message leaves a copy in the account's own
//! mailbox, where `imap::check` looks for its Message-ID.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use core::fmt;

/// The longest reply line taken (RFC 5321 says 512 with the CRLF).
pub const LINE_LIMIT: usize = 1000;
/// The most lines of one multi-line reply.
pub const LINES_LIMIT: usize = 64;

/// A server reply: its code and text lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    LineTooLong,
    TooManyLines,
    /// Not `DDD`, `DDD-` or `DDD ` at the start of a line, or a
    /// continuation with another code.
    Malformed {
        line: usize,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(f, "SMTP reply line longer than {LINE_LIMIT} bytes"),
            ReplyError::TooManyLines => write!(f, "SMTP reply of more than {LINES_LIMIT} lines"),
            ReplyError::Malformed { line } => write!(f, "malformed SMTP reply line {line}"),
        }
    }
}

/// The first reply in `input`: `Ok(None)` when more bytes are needed.
pub fn parse_reply(input: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut at = 0;
    let mut reply = Reply { code: 0, lines: Vec::new() };
    loop {
        let rest = &input[at..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return if rest.len() > LINE_LIMIT { Err(ReplyError::LineTooLong) } else { Ok(None) };
        };
        if end > LINE_LIMIT {
            return Err(ReplyError::LineTooLong);
        }
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        let malformed = ReplyError::Malformed { line: reply.lines.len() + 1 };
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(malformed);
        }
        let code = line[..3].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(200..600).contains(&code) || (reply.code != 0 && code != reply.code) {
            return Err(malformed);
        }
        reply.code = code;
        if reply.lines.len() == LINES_LIMIT {
            return Err(ReplyError::TooManyLines);
        }
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(malformed),
        };
        reply.lines.push(String::from_utf8_lossy(line.get(4..).unwrap_or(&[])).into_owned());
        at += end + 1;
        if last {
            return Ok(Some((reply, at)));
        }
    }
}

/// STARTTLS (RFC 3207) on the submission port, before TLS: the greeting,
/// EHLO, STARTTLS, the server's 220. A server that does not offer STARTTLS
/// is refused: nothing more is sent in plaintext, ever (no AUTH, no
/// message). After the 220, TLS starts and the [`Submission`] goes on from
/// [`Submission::after_starttls`].
pub struct StartTls {
    state: StartTlsState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartTlsState {
    Greeting,
    Ehlo,
    StartTls,
    Ready,
}

/// What to do after a plaintext reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartTlsStep {
    pub send: Option<Vec<u8>>,
    /// The server said 220 to STARTTLS: start TLS now.
    pub ready: bool,
}

impl Default for StartTls {
    fn default() -> Self {
        StartTls { state: StartTlsState::Greeting }
    }
}

impl StartTls {
    /// Takes the next plaintext reply.
    pub fn on_reply(&mut self, reply: &Reply) -> Result<StartTlsStep, SubmitError> {
        let refused =
            |step| SubmitError::Refused { step, code: reply.code, text: reply.lines.join(" ") };
        let mut step = StartTlsStep::default();
        match self.state {
            StartTlsState::Greeting if reply.code == 220 => {
                step.send = Some(b"EHLO duet-mail\r\n".to_vec());
                self.state = StartTlsState::Ehlo;
            }
            StartTlsState::Greeting => return Err(refused("greeting")),
            StartTlsState::Ehlo if reply.code == 250 => {
                // The first line is the server's name; the others are
                // extensions, one keyword each (then parameters).
                let offered = reply.lines.iter().skip(1).any(|line| {
                    line.split_ascii_whitespace()
                        .next()
                        .is_some_and(|word| word.eq_ignore_ascii_case("STARTTLS"))
                });
                if !offered {
                    return Err(SubmitError::NoStartTls);
                }
                step.send = Some(b"STARTTLS\r\n".to_vec());
                self.state = StartTlsState::StartTls;
            }
            StartTlsState::Ehlo => return Err(refused("EHLO")),
            StartTlsState::StartTls if reply.code == 220 => {
                step.ready = true;
                self.state = StartTlsState::Ready;
            }
            StartTlsState::StartTls => return Err(refused("STARTTLS")),
            StartTlsState::Ready => return Err(refused("after STARTTLS")),
        }
        Ok(step)
    }
}

/// Why a submission failed. Nothing was accepted unless it says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// A reply other than the one the step expects.
    Refused { step: &'static str, code: u16, text: String },
    /// An address that cannot be put in MAIL FROM or RCPT TO.
    BadAddress(String),
    /// No recipients.
    NoRecipients,
    /// The server does not offer STARTTLS: refused, nothing sent in
    /// plaintext.
    NoStartTls,
    /// The server sent bytes after its 220 to STARTTLS, before TLS began
    /// (an attempt to inject replies into the TLS session): refused.
    InjectedBeforeTls,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SubmitError::Refused { step, code, text } => {
                write!(f, "{step}: server said {code} {text}")
            }
            SubmitError::BadAddress(a) => write!(f, "bad address {a:?}"),
            SubmitError::NoRecipients => write!(f, "the message has no recipients"),
            SubmitError::NoStartTls => {
                write!(f, "the server offers no STARTTLS; refused (never plaintext)")
            }
            SubmitError::InjectedBeforeTls => {
                write!(f, "the server sent more after its 220 to STARTTLS; refused")
            }
        }
    }
}

/// What the caller must record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Make "sending begins" durable, then send `Step::send`.
    Sending,
    /// The server took the message.
    Accepted,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub event: Option<Event>,
    pub send: Option<Vec<u8>>,
    pub done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Auth,
    MailFrom,
    RcptTo(usize),
    Data,
    Message,
    Quit,
    Done,
}

pub struct Submission {
    state: State,
    user: String,
    password: String,
    from: String,
    to: Vec<String>,
    message: Vec<u8>,
}

/// An address fit for MAIL FROM / RCPT TO: printable ASCII, no spaces or
/// angle brackets, one `@` with something on both sides.
fn check_address(address: &str) -> Result<(), SubmitError> {
    let ok = address.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'<' && b != b'>')
        && address.bytes().filter(|&b| b == b'@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@');
    if ok {
        Ok(())
    } else {
        Err(SubmitError::BadAddress(address.into()))
    }
}

impl Submission {
    /// Submits `raw` (an outbox entry) from `from` to `to`; `From:` is
    /// added to its header.
    pub fn new(
        user: &str,
        password: &str,
        from: &str,
        to: Vec<String>,
        raw: &[u8],
    ) -> Result<Self, SubmitError> {
        check_address(from)?;
        if to.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        let mut to = to;
        for address in &to {
            check_address(address)?;
        }
        // The account itself, blind (envelope only): the server's
        // acceptance then leaves a copy in the account's mailbox, which is
        // what settles an entry cut off mid-send (`imap::check`).
        if !to.iter().any(|a| a.eq_ignore_ascii_case(from)) {
            to.push(from.into());
        }
        let mut message = format!("From: <{from}>\r\n").into_bytes();
        message.extend_from_slice(raw);
        Ok(Submission {
            state: State::Greeting,
            user: user.into(),
            password: password.into(),
            from: from.into(),
            to,
            message,
        })
    }

    /// The same submission over a TLS session begun by STARTTLS: there is
    /// no greeting then; the first step is [`Submission::begin`] (EHLO again,
    /// as RFC 3207 requires).
    pub fn after_starttls(mut self) -> Submission {
        self.state = State::Ehlo;
        self
    }

    /// What to send first without waiting for a reply: EHLO after STARTTLS
    /// (nothing with implicit TLS, where the server greets first).
    pub fn begin(&self) -> Option<Vec<u8>> {
        (self.state == State::Ehlo).then(|| b"EHLO duet-mail\r\n".to_vec())
    }

    fn refused(&self, step: &'static str, reply: &Reply) -> SubmitError {
        SubmitError::Refused { step, code: reply.code, text: reply.lines.join(" ") }
    }

    fn expect(&self, reply: &Reply, codes: &[u16], step: &'static str) -> Result<(), SubmitError> {
        if codes.contains(&reply.code) {
            Ok(())
        } else {
            Err(self.refused(step, reply))
        }
    }

    /// Takes the next reply.
    pub fn on_reply(&mut self, reply: &Reply) -> Result<Step, SubmitError> {
        let mut step = Step::default();
        let line = |text: String| Some(format!("{text}\r\n").into_bytes());
        match self.state {
            State::Greeting => {
                self.expect(reply, &[220], "greeting")?;
                step.send = line("EHLO duet-mail".into());
                self.state = State::Ehlo;
            }
            State::Ehlo => {
                self.expect(reply, &[250], "EHLO")?;
                let plain = format!("\0{}\0{}", self.user, self.password);
                let token = base64::engine::general_purpose::STANDARD.encode(plain);
                step.send = line(format!("AUTH PLAIN {token}"));
                self.state = State::Auth;
            }
            State::Auth => {
                self.expect(reply, &[235], "AUTH")?;
                step.send = line(format!("MAIL FROM:<{}>", self.from));
                self.state = State::MailFrom;
            }
            State::MailFrom => {
                self.expect(reply, &[250], "MAIL FROM")?;
                step.send = line(format!("RCPT TO:<{}>", self.to[0]));
                self.state = State::RcptTo(0);
            }
            State::RcptTo(i) => {
                self.expect(reply, &[250, 251], "RCPT TO")?;
                if i + 1 < self.to.len() {
                    step.send = line(format!("RCPT TO:<{}>", self.to[i + 1]));
                    self.state = State::RcptTo(i + 1);
                } else {
                    step.send = line("DATA".into());
                    self.state = State::Data;
                }
            }
            State::Data => {
                self.expect(reply, &[354], "DATA")?;
                step.send = Some(dot_stuffed(&self.message));
                step.event = Some(Event::Sending);
                self.state = State::Message;
            }
            State::Message => {
                self.expect(reply, &[250], "message")?;
                step.event = Some(Event::Accepted);
                step.send = line("QUIT".into());
                self.state = State::Quit;
            }
            State::Quit | State::Done => {
                // The message is in; whatever QUIT gets changes nothing.
                self.state = State::Done;
                step.done = true;
            }
        }
        Ok(step)
    }
}

/// The message with CRLF line ends, each line starting with `.` doubled,
/// and the final `.` line.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    // The split leaves an empty last piece after a final line end.
    if message.ends_with(b"\n") {
        out.truncate(out.len() - 2);
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn reply(text: &str) -> Reply {
        let (reply, used) = parse_reply(text.as_bytes()).unwrap().unwrap();
        assert_eq!(used, text.len());
        reply
    }

    #[test]
    fn replies_single_multi_line_partial_and_bad() {
        assert_eq!(reply("220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n").code, 220);
        let ehlo = reply("250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n");
        assert_eq!(
            (ehlo.code, ehlo.lines.len(), ehlo.lines[3].as_str()),
            (250, 5, "AUTH PLAIN LOGIN")
        );
        assert_eq!(reply("250\r\n").lines, vec![""]);
        assert_eq!(parse_reply(b"250-a\r\n250 b"), Ok(None));
        assert_eq!(parse_reply(b"25"), Ok(None));
        assert_eq!(parse_reply(b"250-a\r\n251 b\r\n"), Err(ReplyError::Malformed { line: 2 }));
        assert_eq!(parse_reply(b"ok\r\n"), Err(ReplyError::Malformed { line: 1 }));
        assert_eq!(parse_reply(b"250x\r\n"), Err(ReplyError::Malformed { line: 1 }));
        assert_eq!(parse_reply(b"999 no\r\n"), Err(ReplyError::Malformed { line: 1 }));
        assert_eq!(parse_reply(&[b'2'; 2000]), Err(ReplyError::LineTooLong));
        assert_eq!(parse_reply("250-x\r\n".repeat(100).as_bytes()), Err(ReplyError::TooManyLines));
        assert_eq!(parse_reply(b"250 caf\xff\r\n").unwrap().unwrap().0.lines[0], "caf\u{fffd}");
    }

    fn submission() -> Submission {
        let raw = b"To: bob@example.com\r\nSubject: s\r\n\r\n.leading dot\r\nend\r\n";
        Submission::new(
            "alice",
            "secret",
            "alice@example.com",
            vec!["bob@example.com".into(), "carol@example.com".into()],
            raw,
        )
        .unwrap()
    }

    #[test]
    fn a_submission_goes_step_by_step_and_says_when_to_record() {
        let mut s = submission();
        let mut sent = Vec::new();
        let mut events = Vec::new();
        for r in [
            "220 hi\r\n",
            "250-x\r\n250 AUTH PLAIN\r\n",
            "235 2.7.0 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 2.0.0 Ok: queued as 1234\r\n",
            "221 bye\r\n",
        ] {
            let step = s.on_reply(&reply(r)).unwrap();
            sent.extend(step.send.map(|b| String::from_utf8(b).unwrap()));
            events.extend(step.event);
            if step.done {
                break;
            }
        }
        assert_eq!(sent[0], "EHLO duet-mail\r\n");
        // base64("\0alice\0secret")
        assert_eq!(sent[1], "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
        assert_eq!(
            sent[2..5],
            [
                "MAIL FROM:<alice@example.com>\r\n",
                "RCPT TO:<bob@example.com>\r\n",
                "RCPT TO:<carol@example.com>\r\n"
            ]
        );
        // The sender's own blind copy.
        assert_eq!(sent[5], "RCPT TO:<alice@example.com>\r\n");
        assert_eq!(sent[6], "DATA\r\n");
        assert_eq!(sent[7], "From: <alice@example.com>\r\nTo: bob@example.com\r\nSubject: s\r\n\r\n..leading dot\r\nend\r\n.\r\n");
        assert_eq!(sent[8], "QUIT\r\n");
        assert_eq!(events, vec![Event::Sending, Event::Accepted]);
    }

    #[test]
    fn starttls_goes_on_only_when_offered() {
        let mut start = StartTls::default();
        let step = start.on_reply(&reply("220 mail.test ESMTP\r\n")).unwrap();
        assert_eq!(step.send.as_deref(), Some(&b"EHLO duet-mail\r\n"[..]));
        let ehlo = "250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
        let step = start.on_reply(&reply(ehlo)).unwrap();
        assert_eq!(step.send.as_deref(), Some(&b"STARTTLS\r\n"[..]));
        let step = start.on_reply(&reply("220 2.0.0 Ready to start TLS\r\n")).unwrap();
        assert!(step.ready && step.send.is_none());
        // Then the submission starts with EHLO, unasked.
        let mut s = submission().after_starttls();
        assert_eq!(s.begin().as_deref(), Some(&b"EHLO duet-mail\r\n"[..]));
        let step = s.on_reply(&reply("250-mail.test\r\n250 AUTH PLAIN\r\n")).unwrap();
        assert!(step.send.unwrap().starts_with(b"AUTH PLAIN "));
        assert_eq!(submission().begin(), None);

        // Not offered (the server's name is no extension): refused.
        let mut start = StartTls::default();
        start.on_reply(&reply("220 hi\r\n")).unwrap();
        let e = start.on_reply(&reply("250-STARTTLS\r\n250 AUTH PLAIN\r\n")).unwrap_err();
        assert_eq!(e, SubmitError::NoStartTls);
        let mut start = StartTls::default();
        start.on_reply(&reply("220 hi\r\n")).unwrap();
        start.on_reply(&reply("250-x\r\n250 STARTTLS\r\n")).unwrap();
        assert!(matches!(
            start.on_reply(&reply("454 TLS not available\r\n")),
            Err(SubmitError::Refused { step: "STARTTLS", code: 454, .. })
        ));
    }

    #[test]
    fn a_refusal_ends_it_and_before_data_nothing_was_sent() {
        let mut s = submission();
        s.on_reply(&reply("220 hi\r\n")).unwrap();
        s.on_reply(&reply("250 ok\r\n")).unwrap();
        let e = s.on_reply(&reply("535 5.7.8 Error: authentication failed\r\n")).unwrap_err();
        assert_eq!(e.to_string(), "AUTH: server said 535 5.7.8 Error: authentication failed");
        // Sent to oneself: one RCPT, not two.
        let mut s = Submission::new("a", "b", "a@x", vec!["A@x".into()], b"").unwrap();
        s.on_reply(&reply("220 hi\r\n")).unwrap();
        s.on_reply(&reply("250 ok\r\n")).unwrap();
        s.on_reply(&reply("235 ok\r\n")).unwrap();
        s.on_reply(&reply("250 ok\r\n")).unwrap();
        let step = s.on_reply(&reply("250 ok\r\n")).unwrap();
        assert_eq!(step.send.as_deref(), Some(&b"DATA\r\n"[..]));
        assert!(matches!(
            Submission::new("a", "b", "a@x", vec![], b""),
            Err(SubmitError::NoRecipients)
        ));
        for bad in ["bob", "bob@", "@x", "a b@x", "a>@x", "a@b@c", "a\r\n@x"] {
            assert!(
                matches!(
                    Submission::new("a", "b", "a@x", vec![bad.into()], b""),
                    Err(SubmitError::BadAddress(_))
                ),
                "{bad:?}"
            );
        }
    }
}
