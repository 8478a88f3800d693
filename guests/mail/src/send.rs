//! Sending one outbox entry over TLS: the SMTP submission (`smtp`) fed
//! with the server's replies; "sending" recorded in the store before the
//! message's end goes out and "sent" after the server's 250, so an entry
//! is sent exactly once or left "uncertain", never sent twice blindly.

use crate::disk::Disk;
use crate::net::{Net, SYNC_WAIT};
use crate::tls::{self, Connection};
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::bootargs::PowerCut;
use duet_mail::message::{message_id, recipients};
use duet_mail::provision::Provision;
use duet_mail::provision::SmtpTls;
use duet_mail::schedule::Outcome;
use duet_mail::smtp::{parse_reply, Event, ReplyError, StartTls, Submission, SubmitError};
use duet_mail::store::{Outbox, Store};
use embedded_tls::blocking::TlsError;

#[derive(Debug)]
pub enum SendError {
    Tls(TlsError),
    Reply(ReplyError),
    Submit(SubmitError),
    Store(String),
    Closed,
    /// Before TLS (STARTTLS): the connection failed.
    Plain(tls::StreamError),
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
            SendError::Plain(e) => write!(f, "before STARTTLS: {e}"),
        }
    }
}

/// A power cut the command line asked for (`mail.power-cut`), for tests.
static POWER_CUT: spin::Once<PowerCut> = spin::Once::new();

pub fn set_power_cut(cut: PowerCut) {
    POWER_CUT.call_once(|| cut);
}

/// Powers off here if the command line asked for a cut at `point`.
fn maybe_cut(point: PowerCut) {
    if POWER_CUT.get() == Some(&point) {
        crate::entry::stop(format_args!("power cut ({point:?}, mail.power-cut)"));
    }
}

/// Sends outbox entry `id` to the provisioned SMTP server, said on the
/// console.
pub fn entry(
    net: &mut Net,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
    id: u64,
) -> Outcome {
    match net.connected(provision.smtp, SYNC_WAIT, |stream| one(stream, rng, provision, store, id))
    {
        Ok(Ok(())) => {
            say!("mail: send: outbox entry {id} sent");
            Outcome::Done
        }
        Ok(Err(e)) => {
            say!("mail: send: outbox entry {id} not sent: {e}");
            Outcome::Failed(alloc::format!("send: {e}"))
        }
        Err(e) => {
            say!("mail: send: outbox entry {id} not sent: {e}");
            Outcome::Unreachable(alloc::format!("send: {e}"))
        }
    }
}

/// Sends the first entry waiting in the outbox. One cut off mid-send
/// (`Outbox::Uncertain`) is first looked for on the IMAP server by its
/// Message-ID (`sync::check_sent`): found, it is marked sent and not sent
/// again; not found, it is sent again (with the same Message-ID).
/// After a failure, `after` names the entry that failed: the next attempt
/// takes the entry after it (`Store::next_waiting`). Returns the entry
/// tried with the outcome.
pub fn next(
    net: &mut Net,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
    after: Option<u64>,
) -> (Option<u64>, Outcome) {
    let Some((id, state)) = store.next_waiting(after) else {
        return (None, Outcome::Done);
    };
    (Some(id), attempt(net, rng, provision, store, id, state))
}

fn attempt(
    net: &mut Net,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
    id: u64,
    state: Outbox,
) -> Outcome {
    if state == Outbox::Uncertain {
        let raw = match store.read_outbox(id) {
            Ok(raw) => raw,
            Err(e) => return Outcome::Failed(alloc::format!("outbox entry {id}: {e}")),
        };
        let Some(message_id) = message_id(&raw) else {
            say!("mail: send: outbox entry {id} was cut off mid-send and has no Message-ID to look for; left alone");
            return Outcome::Failed(alloc::format!("outbox entry {id} cannot be checked"));
        };
        let found = match crate::sync::check_sent(net, rng, provision, &message_id) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        say!("mail: send: outbox entry {id} was cut off mid-send; {message_id} is {found}");
        if found.0 {
            return match store.mark_sent(id) {
                Ok(()) => {
                    say!("mail: send: outbox entry {id} marked sent; not sent again");
                    Outcome::Done
                }
                Err(e) => Outcome::Failed(alloc::format!("store: {e}")),
            };
        }
    }
    entry(net, rng, provision, store, id)
}

/// Sends outbox entry `id`.
pub fn one(
    mut stream: tls::Stream,
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
    if provision.smtp_tls == SmtpTls::StartTls {
        start_tls(&mut stream)?;
        submission = submission.after_starttls();
    }
    tls::with_connection(stream, rng, &provision.ca, &provision.server_name, |tls| {
        if let Some(first) = submission.begin() {
            tls::send(tls, &first)?;
        }
        converse(tls, &mut submission, store, id)
    })
}

/// The plaintext part of STARTTLS: up to the server's 220, nothing but
/// EHLO and STARTTLS sent. A server that does not offer it, or that sends
/// anything after its 220, is refused.
fn start_tls(stream: &mut tls::Stream) -> Result<(), SendError> {
    use embedded_io::{Read, Write};
    let mut start = StartTls::default();
    let mut received: Vec<u8> = Vec::new();
    let mut chunk = [0; 512];
    loop {
        while let Some((reply, used)) = parse_reply(&received).map_err(SendError::Reply)? {
            received.drain(..used);
            let step = start.on_reply(&reply).map_err(SendError::Submit)?;
            if let Some(bytes) = step.send {
                stream.write_all(&bytes).map_err(SendError::Plain)?;
                stream.flush().map_err(SendError::Plain)?;
            }
            if step.ready {
                if !received.is_empty() {
                    return Err(SendError::Submit(SubmitError::InjectedBeforeTls));
                }
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk).map_err(SendError::Plain)?;
        if n == 0 {
            return Err(SendError::Closed);
        }
        received.extend_from_slice(&chunk[..n]);
    }
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
                maybe_cut(PowerCut::BeforeEnd);
            }
            if let Some(bytes) = step.send {
                tls::send(tls, &bytes)?;
            }
            if step.event == Some(Event::Sending) {
                maybe_cut(PowerCut::AfterEnd);
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
