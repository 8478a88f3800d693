//! One sync of the inbox over TLS: the IMAP session (`imap::session`) fed
//! with the server's responses as they arrive, its store operations done
//! on the store one by one (so a sync cut off keeps what it got), its
//! commands sent. A bad response, a refusal or a TLS error ends the sync
//! with a logged error; the store keeps everything stored so far.

use crate::disk::Disk;
use crate::net::{Net, SYNC_WAIT};
use crate::tls::{self, Connection};
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::imap::check::{Check, Found};
use duet_mail::imap::session::{Session, SessionError, StoreOp};
use duet_mail::imap::{self, ImapError, Limits};
use duet_mail::provision::Provision;
use duet_mail::schedule::Outcome;
use duet_mail::store::Store;
use embedded_tls::blocking::TlsError;

#[derive(Debug)]
pub enum SyncError {
    Tls(TlsError),
    Imap(ImapError),
    Session(SessionError),
    Store(String),
    /// The server closed the connection mid-sync.
    Closed,
}

impl From<TlsError> for SyncError {
    fn from(e: TlsError) -> Self {
        SyncError::Tls(e)
    }
}

impl core::fmt::Display for SyncError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            SyncError::Tls(e) => write!(f, "TLS: {e:?}"),
            SyncError::Imap(e) => write!(f, "{e}"),
            SyncError::Session(e) => write!(f, "{e}"),
            SyncError::Store(e) => write!(f, "store: {e}"),
            SyncError::Closed => write!(f, "the server closed the connection"),
        }
    }
}

/// What a sync did.
#[derive(Default)]
pub struct Report {
    pub new: usize,
    pub flags: usize,
}

/// One sync with the provisioned IMAP server, said on the console (when
/// `quiet`, only if it brought something or failed).
pub fn once(
    net: &mut Net,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
    quiet: bool,
) -> (Outcome, Report) {
    let to = provision.imap;
    match net.connected(to, SYNC_WAIT, |stream| run(stream, rng, provision, store)) {
        Ok(Ok(report)) => {
            if !quiet || report.new > 0 {
                say!(
                    "mail: sync: {} new messages, {} flag updates; {} stored",
                    report.new,
                    report.flags,
                    store.messages().count()
                );
            }
            (Outcome::Done, report)
        }
        Ok(Err(e)) => {
            say!("mail: sync with {to} failed: {e}; the store keeps what it has");
            (Outcome::Failed(alloc::format!("sync: {e}")), Report::default())
        }
        Err(e) => (Outcome::Unreachable(alloc::format!("sync: {e}")), Report::default()),
    }
}

/// Asks the IMAP server whether it has a message with `message_id` (the
/// settling of an outbox entry cut off mid-send; see `imap::check`).
pub fn check_sent(
    net: &mut Net,
    rng: &mut tls::Rng,
    provision: &Provision,
    message_id: &str,
) -> Result<Found, Outcome> {
    let to = provision.imap;
    let mut check = Check::new(&provision.user, &provision.password, message_id)
        .map_err(|e| Outcome::Failed(alloc::format!("check: {e}")))?;
    let result = net.connected(to, SYNC_WAIT, |stream| {
        tls::with_connection(stream, rng, &provision.ca, &provision.server_name, |tls| {
            converse_check(tls, &mut check)
        })
    });
    match result {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => {
            say!("mail: check with {to} failed: {e}");
            Err(Outcome::Failed(alloc::format!("check: {e}")))
        }
        Err(e) => Err(Outcome::Unreachable(alloc::format!("check: {e}"))),
    }
}

fn converse_check(tls: &mut Connection, check: &mut Check) -> Result<Found, SyncError> {
    let limits = Limits::default();
    let mut received: Vec<u8> = Vec::new();
    let mut chunk = [0; 2048];
    loop {
        while let Some((response, used)) =
            imap::parse(&received, &limits).map_err(SyncError::Imap)?
        {
            received.drain(..used);
            let step = check.on_response(&response).map_err(SyncError::Session)?;
            if let Some(command) = step.send {
                tls::send(tls, &command)?;
            }
            if let Some(found) = step.done {
                return Ok(found);
            }
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(SyncError::Closed);
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

pub fn run(
    stream: tls::Stream,
    rng: &mut tls::Rng,
    provision: &Provision,
    store: &mut Store<Disk>,
) -> Result<Report, SyncError> {
    let mut session = Session::new(
        &provision.user,
        &provision.password,
        store.uidvalidity(),
        store.highest_uid(),
    )
    .map_err(SyncError::Session)?;
    tls::with_connection(stream, rng, &provision.ca, &provision.server_name, |tls| {
        converse(tls, &mut session, store)
    })
}

fn converse(
    tls: &mut Connection,
    session: &mut Session,
    store: &mut Store<Disk>,
) -> Result<Report, SyncError> {
    let limits = Limits::default();
    let mut report = Report::default();
    let mut received: Vec<u8> = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        while let Some((response, used)) =
            imap::parse(&received, &limits).map_err(SyncError::Imap)?
        {
            received.drain(..used);
            let step = session.on_response(&response).map_err(SyncError::Session)?;
            for op in step.store {
                match &op {
                    StoreOp::Message { uid, raw, .. } => {
                        // Said as it happens: a power cut mid-sync is
                        // tested from these lines.
                        say!("mail: sync: storing UID {uid} ({} bytes)", raw.len());
                        report.new += 1
                    }
                    StoreOp::Flags { .. } => report.flags += 1,
                    StoreOp::UidValidity(_) => {}
                }
                op.apply(store).map_err(|e| SyncError::Store(alloc::format!("{e}")))?;
            }
            if let Some(command) = step.send {
                tls::send(tls, &command)?;
            }
            if step.done {
                return Ok(report);
            }
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(SyncError::Closed);
        }
        received.extend_from_slice(&chunk[..n]);
    }
}
