//! IMAP4rev1 (RFC 3501) server responses, parsed defensively: whatever the
//! bytes, [`parse`] returns a response, "need more bytes", or an
//! [`ImapError`] saying what was wrong and where; it never panics, and it
//! never allocates more than the [`Limits`] allow (the line, every literal,
//! nesting depth and list lengths are bounded). A bad response is the
//! session's end; the caller logs the error and keeps its store.
//!
//! What the mail client needs is parsed into types (status responses and
//! their codes, CAPABILITY, FLAGS, EXISTS, RECENT, EXPUNGE, SEARCH, FETCH
//! with UID, FLAGS, RFC822.SIZE, INTERNALDATE and BODY[...] sections);
//! anything else a server may send is read as generic values so that it
//! can be skipped.

pub mod check;
mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use parser::parse;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// How much one response may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of a response outside its literals (its lines, joined).
    pub line: usize,
    /// Bytes of one literal (a message body arrives as one).
    pub literal: usize,
    /// Bytes of all the literals of one response.
    pub literals: usize,
    /// Nested parenthesised lists.
    pub depth: usize,
    /// Items in one list.
    pub items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { line: 64 << 10, literal: 1 << 20, literals: 2 << 20, depth: 16, items: 1024 }
    }
}

/// A server response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `+ text`: the server waits for more from the client.
    Continue(String),
    /// `tag OK/NO/BAD ...`: a command completed.
    Tagged { tag: String, status: Status },
    /// `* ...`: data, or a status not tied to a command.
    Untagged(Untagged),
}

/// `OK`, `NO`, `BAD` (and, untagged, `PREAUTH` and `BYE`) with their text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub code: Option<Code>,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// A response code, `[...]` at the start of a status's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    Alert,
    Parse,
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    PermanentFlags(Vec<Flag>),
    Capability(Vec<String>),
    /// Any other code: its name and the rest, as sent.
    Other(String, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Recent,
    /// `\*`: the client may create keywords.
    MayCreate,
    /// Another `\Name`.
    Extension(String),
    /// A keyword (no backslash).
    Keyword(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untagged {
    Status(Status),
    Capability(Vec<String>),
    Flags(Vec<Flag>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Search(Vec<u32>),
    Fetch {
        sequence: u32,
        attributes: Vec<Attribute>,
    },
    /// Any other response (LIST, STATUS, ENABLED, ID ...): its name and
    /// what followed, read generically.
    Other {
        name: String,
        values: Vec<Value>,
    },
}

/// One data item of a FETCH response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribute {
    Uid(u32),
    Flags(Vec<Flag>),
    Size(u32),
    InternalDate(String),
    /// `BODY[section]<origin>` (or `RFC822`, `RFC822.HEADER`,
    /// `RFC822.TEXT`, named by their section); `None` for NIL.
    Body {
        section: String,
        origin: Option<u32>,
        data: Option<Vec<u8>>,
    },
    /// Any other item (ENVELOPE, BODYSTRUCTURE, MODSEQ ...), generically.
    Other(String, Value),
}

/// A value read without knowing what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Number(u32),
    Atom(String),
    /// A quoted string or a literal.
    String(Vec<u8>),
    List(Vec<Value>),
}

/// What was wrong with a response, and the byte where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapError {
    pub at: usize,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The response's lines, outside literals, are longer than the limit.
    LineTooLong { limit: usize },
    /// A literal larger than the limit (one or all together).
    LiteralTooLarge { size: u64, limit: usize },
    /// Lists nested deeper than the limit.
    TooDeep { limit: usize },
    /// A list with more items than the limit.
    TooManyItems { limit: usize },
    /// A number that does not fit 32 bits.
    NumberTooLarge,
    /// Something else than what the grammar allows here.
    Expected(&'static str),
}

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "bad IMAP response at byte {}: ", self.at)?;
        match &self.kind {
            ErrorKind::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            ErrorKind::LiteralTooLarge { size, limit } => {
                write!(f, "literal of {size} bytes is over the limit of {limit}")
            }
            ErrorKind::TooDeep { limit } => write!(f, "lists nested deeper than {limit}"),
            ErrorKind::TooManyItems { limit } => write!(f, "a list of more than {limit} items"),
            ErrorKind::NumberTooLarge => write!(f, "number does not fit 32 bits"),
            ErrorKind::Expected(what) => write!(f, "expected {what}"),
        }
    }
}
