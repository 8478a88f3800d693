//! One sync of the inbox over TLS: the IMAP session (`imap::session`) fed
//! with the server's responses as they arrive, its store operations done
//! on the store one by one (so a sync cut off keeps what it got), its
//! commands sent. A bad response, a refusal or a TLS error ends the sync
//! with a logged error; the store keeps everything stored so far.

use crate::disk::Disk;
use crate::tls::{self, Connection};
use alloc::string::String;
use alloc::vec::Vec;
use duet_mail::imap::session::{Session, SessionError, StoreOp};
use duet_mail::imap::{self, ImapError, Limits};
use duet_mail::provision::Provision;
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
                match op {
                    StoreOp::Message { .. } => report.new += 1,
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
