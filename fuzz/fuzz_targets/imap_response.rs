//! The mail guest's IMAP response parser (guests/mail/src/imap): any bytes,
//! with small limits so that they are reached. It must never panic, never
//! say it used more bytes than it had, and give the same answer for a
//! complete response however much more input follows it. Each response
//! also goes to a sync session and to a Message-ID check (the outbox's
//! reconciliation), which must take any of them without panicking.
#![no_main]

use duet_mail::imap::check::Check;
use duet_mail::imap::session::Session;
use duet_mail::imap::{parse, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { line: 512, literal: 256, literals: 512, depth: 6, items: 32 };
    let mut session = Session::new("user", "pass", 7, 3).ok();
    let mut check = Check::new("user", "pass", "<1.ab@duet-mail>").ok();
    let mut at = 0;
    while at < data.len() {
        match parse(&data[at..], &limits) {
            Ok(Some((response, used))) => {
                assert!(used > 0 && at + used <= data.len());
                // The same response from exactly its own bytes.
                let alone = parse(&data[at..at + used], &limits);
                assert_eq!(alone, Ok(Some((response.clone(), used))));
                if session.as_mut().is_some_and(|s| s.on_response(&response).is_err()) {
                    session = None;
                }
                if check.as_mut().is_some_and(|c| c.on_response(&response).is_err()) {
                    check = None;
                }
                at += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
