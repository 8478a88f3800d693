//! The parser against transcripts shaped like Dovecot's and other servers'
//! answers, every prefix of them (always "need more", never an error), and
//! hostile input: oversized literals and lines, deep nesting, huge numbers
//! and garbage, each an error of its own kind.

use super::*;
use alloc::string::ToString;
use alloc::vec;

fn all(input: &[u8]) -> Vec<Response> {
    let limits = Limits::default();
    let mut at = 0;
    let mut out = Vec::new();
    while at < input.len() {
        match parse(&input[at..], &limits) {
            Ok(Some((response, used))) => {
                out.push(response);
                at += used;
            }
            Ok(None) => panic!("incomplete at byte {at}: {:?}", text(&input[at..])),
            Err(e) => panic!("{e} (from byte {at}: {:?})", text(&input[at..])),
        }
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn one(input: &str) -> Response {
    let mut responses = all(input.as_bytes());
    assert_eq!(responses.len(), 1, "{input:?}");
    responses.remove(0)
}

fn error(input: &[u8], limits: &Limits) -> ErrorKind {
    match parse(input, limits) {
        Err(e) => e.kind,
        other => panic!("{:?} parsed as {other:?}", text(input)),
    }
}

fn untagged(u: Untagged) -> Response {
    Response::Untagged(u)
}

fn ok(code: Option<Code>, text: &str) -> Status {
    Status { kind: StatusKind::Ok, code, text: text.to_string() }
}

const LOGIN_AND_SELECT: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n\
a1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MOVE] Logged in\r\n\
* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
* 3 EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UNSEEN 2] First unseen.\r\n\
* OK [UIDVALIDITY 1733480000] UIDs valid\r\n\
* OK [UIDNEXT 4] Predicted next UID\r\n\
a2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n";

#[test]
fn a_login_and_select_transcript() {
    let r = all(LOGIN_AND_SELECT.as_bytes());
    assert_eq!(r.len(), 10);
    let Response::Untagged(Untagged::Status(greeting)) = &r[0] else { panic!("{:?}", r[0]) };
    let Some(Code::Capability(caps)) = &greeting.code else { panic!("{greeting:?}") };
    assert!(caps.iter().any(|c| c == "AUTH=PLAIN") && caps[0] == "IMAP4rev1");
    assert_eq!(greeting.text, "Dovecot (Debian) ready.");
    assert!(
        matches!(&r[1], Response::Tagged { tag, status } if tag == "a1" && status.kind == StatusKind::Ok)
    );
    use Flag::*;
    assert_eq!(r[2], untagged(Untagged::Flags(vec![Answered, Flagged, Deleted, Seen, Draft])));
    assert_eq!(
        r[3],
        untagged(Untagged::Status(ok(
            Some(Code::PermanentFlags(vec![Answered, Flagged, Deleted, Seen, Draft, MayCreate])),
            "Flags permitted."
        )))
    );
    assert_eq!(r[4], untagged(Untagged::Exists(3)));
    assert_eq!(r[5], untagged(Untagged::Recent(0)));
    assert_eq!(r[6], untagged(Untagged::Status(ok(Some(Code::Unseen(2)), "First unseen."))));
    assert_eq!(
        r[7],
        untagged(Untagged::Status(ok(Some(Code::UidValidity(1733480000)), "UIDs valid")))
    );
    assert_eq!(r[8], untagged(Untagged::Status(ok(Some(Code::UidNext(4)), "Predicted next UID"))));
    assert_eq!(
        r[9],
        Response::Tagged {
            tag: "a2".into(),
            status: ok(Some(Code::ReadWrite), "Select completed (0.001 + 0.000 secs).")
        }
    );
}

const MESSAGE: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Quarterly (draft) {1}\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nHello Bob.\r\n* 9 EXISTS\r\n) a tag OK\r\n";

#[test]
fn a_fetch_of_new_mail_with_a_literal_body() {
    let transcript = format!(
        "* 1 FETCH (UID 41 RFC822.SIZE {n} FLAGS (\\Seen $Important) INTERNALDATE \"05-Dec-2026 10:00:01 +0000\" BODY[] {{{n}}}\r\n{MESSAGE})\r\n\
         * 2 FETCH (UID 42 FLAGS () BODY[HEADER.FIELDS (FROM SUBJECT DATE)] {{20}}\r\nSubject: x \"y\" )\r\n\r\n)\r\n\
         * 3 FETCH (FLAGS (\\Seen) UID 43 BODY[TEXT]<0> NIL MODSEQ (12345678901234))\r\n\
         a3 OK Fetch completed (0.002 + 0.000 secs).\r\n",
        n = MESSAGE.len()
    );
    let r = all(transcript.as_bytes());
    assert_eq!(r.len(), 4);
    let Response::Untagged(Untagged::Fetch { sequence: 1, attributes }) = &r[0] else {
        panic!("{:?}", r[0])
    };
    assert_eq!(attributes[0], Attribute::Uid(41));
    assert_eq!(attributes[1], Attribute::Size(MESSAGE.len() as u32));
    assert_eq!(
        attributes[2],
        Attribute::Flags(vec![Flag::Seen, Flag::Keyword("$Important".into())])
    );
    assert_eq!(attributes[3], Attribute::InternalDate("05-Dec-2026 10:00:01 +0000".into()));
    assert_eq!(
        attributes[4],
        Attribute::Body {
            section: "".into(),
            origin: None,
            data: Some(MESSAGE.as_bytes().to_vec())
        }
    );
    let Response::Untagged(Untagged::Fetch { sequence: 2, attributes }) = &r[1] else {
        panic!("{:?}", r[1])
    };
    assert_eq!(attributes[1], Attribute::Flags(vec![]));
    assert_eq!(
        attributes[2],
        Attribute::Body {
            section: "HEADER.FIELDS (FROM SUBJECT DATE)".into(),
            origin: None,
            data: Some(b"Subject: x \"y\" )\r\n\r\n".to_vec())
        }
    );
    let Response::Untagged(Untagged::Fetch { sequence: 3, attributes }) = &r[2] else {
        panic!("{:?}", r[2])
    };
    assert_eq!(
        attributes[2],
        Attribute::Body { section: "TEXT".into(), origin: Some(0), data: None }
    );
    assert_eq!(
        attributes[3],
        Attribute::Other("MODSEQ".into(), Value::List(vec![Value::Atom("12345678901234".into())]))
    );
}

#[test]
fn envelope_idle_expunge_search_and_bye() {
    let transcript = "* 4 FETCH (UID 44 ENVELOPE (\"Sat, 05 Dec 2026 11:00:00 +0000\" \"Re: plans\" ((\"Carol\" NIL \"carol\" \"example.com\")) NIL NIL NIL NIL NIL NIL \"<id@example.com>\"))\r\n\
a4 OK Fetch completed.\r\n\
+ idling\r\n\
* 5 EXISTS\r\n\
* 2 EXPUNGE\r\n\
a5 OK Idle completed (0.001 + 5.002 secs).\r\n\
* SEARCH 2 3 5\r\n\
* SEARCH\r\n\
* LIST (\\HasNoChildren) \".\" INBOX\r\n\
* ENABLED CONDSTORE\r\n\
a6 NO [TRYCREATE] Mailbox doesn't exist: Sent\r\n\
a7 BAD Error in IMAP command: Unknown command\r\n\
* BYE Logging out\r\n\
a8 OK\r\n";
    let r = all(transcript.as_bytes());
    assert_eq!(r.len(), 14);
    let Response::Untagged(Untagged::Fetch { attributes, .. }) = &r[0] else { panic!() };
    let Attribute::Other(name, Value::List(envelope)) = &attributes[1] else {
        panic!("{attributes:?}")
    };
    assert_eq!(name, "ENVELOPE");
    assert_eq!(envelope[1], Value::String(b"Re: plans".to_vec()));
    assert_eq!(envelope.len(), 10);
    assert_eq!(r[2], Response::Continue("idling".into()));
    assert_eq!(r[3], untagged(Untagged::Exists(5)));
    assert_eq!(r[4], untagged(Untagged::Expunge(2)));
    assert_eq!(r[6], untagged(Untagged::Search(vec![2, 3, 5])));
    assert_eq!(r[7], untagged(Untagged::Search(vec![])));
    assert_eq!(
        r[8],
        untagged(Untagged::Other {
            name: "LIST".into(),
            values: vec![
                Value::List(vec![Value::Atom("\\HasNoChildren".into())]),
                Value::String(b".".to_vec()),
                Value::Atom("INBOX".into())
            ]
        })
    );
    let Response::Tagged { status, .. } = &r[10] else { panic!() };
    assert_eq!((status.kind, &status.code), (StatusKind::No, &Some(Code::TryCreate)));
    let Response::Tagged { status, .. } = &r[11] else { panic!() };
    assert_eq!(status.kind, StatusKind::Bad);
    assert_eq!(
        r[12],
        untagged(Untagged::Status(Status {
            kind: StatusKind::Bye,
            code: None,
            text: "Logging out".into()
        }))
    );
    assert_eq!(r[13], Response::Tagged { tag: "a8".into(), status: ok(None, "") });
}

#[test]
fn every_prefix_of_a_transcript_needs_more_and_never_fails() {
    let limits = Limits::default();
    let body = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n{MESSAGE})\r\n", MESSAGE.len());
    for transcript in [LOGIN_AND_SELECT, body.as_str()] {
        let bytes = transcript.as_bytes();
        let first = match parse(bytes, &limits) {
            Ok(Some((_, used))) => used,
            other => panic!("{other:?}"),
        };
        for end in 0..first {
            assert_eq!(parse(&bytes[..end], &limits), Ok(None), "prefix of {end} bytes");
        }
    }
}

#[test]
fn a_literal_over_the_limit_is_refused_before_its_bytes_arrive() {
    let limits = Limits { literal: 100, literals: 150, ..Limits::default() };
    assert_eq!(
        error(b"* 1 FETCH (BODY[] {101}\r\n", &limits),
        ErrorKind::LiteralTooLarge { size: 101, limit: 100 }
    );
    assert_eq!(
        error(b"* 1 FETCH (BODY[] {99999999999999999999999999}\r\n", &limits),
        ErrorKind::LiteralTooLarge { size: u64::MAX, limit: 100 }
    );
    let two = format!("* 1 FETCH (BODY[1] {{100}}\r\n{} BODY[2] {{51}}\r\n", "x".repeat(100));
    assert_eq!(error(two.as_bytes(), &limits), ErrorKind::LiteralTooLarge { size: 51, limit: 150 });
    // At the limit it is fine, and its bytes do not count as line.
    let limits = Limits { line: 40, literal: 100, ..Limits::default() };
    let fits = format!("* 1 FETCH (BODY[] {{100}}\r\n{})\r\n", "y".repeat(100));
    assert!(matches!(parse(fits.as_bytes(), &limits), Ok(Some(_))));
    assert_eq!(parse(&fits.as_bytes()[..60], &limits), Ok(None));
}

#[test]
fn hostile_input_is_an_error_of_its_own_kind() {
    let limits = Limits { line: 200, depth: 4, items: 8, ..Limits::default() };
    let long = format!("* OK {}", "a".repeat(300));
    assert_eq!(error(long.as_bytes(), &limits), ErrorKind::LineTooLong { limit: 200 });
    assert_eq!(error(b"* LIST ((((((x)))))))\r\n", &limits), ErrorKind::TooDeep { limit: 4 });
    assert_eq!(
        error(b"* SEARCH 1 2 3 4 5 6 7 8 9\r\n", &limits),
        ErrorKind::TooManyItems { limit: 8 }
    );
    assert_eq!(error(b"* 4294967296 EXISTS\r\n", &limits), ErrorKind::NumberTooLarge);
    assert!(matches!(error(b"\x00\x01garbage\r\n", &limits), ErrorKind::Expected(_)));
    assert!(matches!(error(b"a1 MAYBE done\r\n", &limits), ErrorKind::Expected(_)));
    assert!(matches!(error(b"* 1 FETCH (UID x)\r\n", &limits), ErrorKind::Expected(_)));
    assert!(matches!(error(b"* 1 FETCH (BODY[1\r\n", &limits), ErrorKind::Expected(_)));
    assert!(matches!(
        error(b"* 1 FETCH (INTERNALDATE \"a\rb\")\r\n", &limits),
        ErrorKind::Expected(_)
    ));
    let e = parse(b"* 1 FETCH (UID 1 FLAGS (\\Seen)] \r\n", &limits).unwrap_err();
    assert_eq!(e.to_string(), "bad IMAP response at byte 30: expected a space");
}

#[test]
fn bytes_that_are_not_utf8_are_kept_or_replaced_never_a_panic() {
    let r = one("* OK caf\u{e9}\r\n");
    assert_eq!(r, untagged(Untagged::Status(ok(None, "caf\u{e9}"))));
    let raw = b"* 1 FETCH (BODY[] {3}\r\n\xff\x00\xfe)\r\n";
    let Ok(Some((Response::Untagged(Untagged::Fetch { attributes, .. }), _))) =
        parse(raw, &Limits::default())
    else {
        panic!()
    };
    assert_eq!(
        attributes[0],
        Attribute::Body { section: "".into(), origin: None, data: Some(vec![0xff, 0, 0xfe]) }
    );
}
