//! Sending one outbox entry over TLS: the SMTP submission (`smtp`) fed
//! with the server's replies; "sending" recorded in the store before the
//! message's end goes out and "sent" after the server's 250, so an entry
//! is sent exactly once or left "uncertain", never sent twice blindly.

use crate::disk::Disk;
use crate::tls::{self, Connection};
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::message::recipients;
use duet_mail::provision::Provision;
use duet_mail::smtp::{parse_reply, Event, ReplyError, Submission, SubmitError};
use duet_mail::store::Store;
use embedded_tls::blocking::TlsError;

#[derive(Debug)]
pub enum SendError {
    Tls(TlsError),
    Reply(ReplyError),
    Submit(SubmitError),
    Store(String),
    Closed,
}

impl From<TlsError> for SendError {
    fn from(e: TlsError) -> Self {
        SendError::Tls(e)
    }
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            SendError::Tls(e) => write!(f, "TLS: {e:?}"),
            SendError::Reply(e) => write!(f, "{e}"),
            SendError::Submit(e) => write!(f, "{e}"),
            SendError::Store(e) => write!(f, "store: {e}"),
            SendError::Closed => write!(f, "the server closed the connection"),
        }
    }
}

/// Sends outbox entry `id`.
pub fn one(
    stream: tls::Stream,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
    id: u64,
) -> Result<(), SendError> {
    let raw = store.read_outbox(id).map_err(|e| SendError::Store(alloc::format!("{e}")))?;
    let to = recipients(&raw);
    let mut submission =
        Submission::new(&provision.user, &provision.password, &provision.from, to, &raw)
            .map_err(SendError::Submit)?;
    tls::with_connection(stream, rng, &provision.ca, &provision.server_name, |tls| {
        converse(tls, &mut submission, store, id)
    })
}

fn converse(
    tls: &mut Connection,
    submission: &mut Submission,
    store: &mut Store<Disk>,
    id: u64,
) -> Result<(), SendError> {
    let mut received: Vec<u8> = Vec::new();
    let mut chunk = [0; 1024];
    let store_error = |e| SendError::Store(alloc::format!("{e}"));
    loop {
        while let Some((reply, used)) = parse_reply(&received).map_err(SendError::Reply)? {
            received.drain(..used);
            let step = submission.on_reply(&reply).map_err(SendError::Submit)?;
            if step.event == Some(Event::Sending) {
                store.begin_send(id).map_err(store_error)?;
            }
            if let Some(bytes) = step.send {
                tls::send(tls, &bytes)?;
            }
            if step.event == Some(Event::Accepted) {
                store.mark_sent(id).map_err(store_error)?;
            }
            if step.done {
                return Ok(());
            }
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(SendError::Closed);
        }
        received.extend_from_slice(&chunk[..n]);
    }
}
