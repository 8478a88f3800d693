//! The mail guest's SMTP reply parser (guests/mail/src/smtp.rs): any bytes.
//! It must never panic, never claim more bytes than it had, keep within
//! its line limits, and give the same reply from exactly its own bytes.
//! Each reply also goes to STARTTLS's plaintext part and to a submission,
//! which must take any of them without panicking.
#![no_main]

use duet_mail::smtp::{parse_reply, StartTls, Submission, LINES_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut start = Some(StartTls::default());
    let mut submission = Submission::new(
        "alice",
        "pw",
        "alice@x.test",
        vec!["bob@x.test".into()],
        b"Subject: s\r\n\r\nhi\r\n",
    )
    .ok();
    let mut at = 0;
    while at < data.len() {
        match parse_reply(&data[at..]) {
            Ok(Some((reply, used))) => {
                assert!(used > 0 && at + used <= data.len());
                assert!(!reply.lines.is_empty() && reply.lines.len() <= LINES_LIMIT);
                assert!((200..600).contains(&reply.code));
                assert_eq!(parse_reply(&data[at..at + used]), Ok(Some((reply.clone(), used))));
                if start.as_mut().is_some_and(|s| s.on_reply(&reply).is_err()) {
                    start = None;
                }
                if submission.as_mut().is_some_and(|s| s.on_reply(&reply).is_err()) {
                    submission = None;
                }
                at += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
