//! The parser behind [`parse`]: a cursor over the bytes received so far.
//! Reaching their end anywhere means "need more", never an error; a byte
//! the grammar does not allow is an error naming what was expected.

use super::*;
use alloc::string::ToString;
use alloc::vec;

/// Parses the first response in `input`: `Ok(Some((response, length)))`
/// when it is all there, `Ok(None)` when more bytes are needed, or the
/// error that ends the session. `input` should begin where the previous
/// response ended.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Option<(Response, usize)>, ImapError> {
    let mut parser = Parser { input, pos: 0, literals: 0, pending: None, limits, depth: 0 };
    let result = parser.response();
    // Bytes outside literals; for an incomplete literal, up to its start.
    let outside = parser.pending.unwrap_or(match result {
        Err(Stop::More) => input.len(),
        _ => parser.pos,
    }) - parser.literals;
    if outside > limits.line {
        return Err(ImapError {
            at: limits.line,
            kind: ErrorKind::LineTooLong { limit: limits.line },
        });
    }
    match result {
        Ok(response) => Ok(Some((response, parser.pos))),
        Err(Stop::More) => Ok(None),
        Err(Stop::Bad(e)) => Err(e),
    }
}

enum Stop {
    More,
    Bad(ImapError),
}

type R<T> = Result<T, Stop>;

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Bytes of whole literals read so far.
    literals: usize,
    /// Where the data of a literal not yet all received starts.
    pending: Option<usize>,
    limits: &'a Limits,
    depth: usize,
}

/// ATOM-CHAR of RFC 3501: not `(){ %*"\]`, a control character or 8-bit.
fn atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl<'a> Parser<'a> {
    fn fail<T>(&self, kind: ErrorKind) -> R<T> {
        Err(Stop::Bad(ImapError { at: self.pos, kind }))
    }

    fn peek(&self) -> R<u8> {
        self.input.get(self.pos).copied().ok_or(Stop::More)
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> R<()> {
        if self.peek()? != byte {
            return self.fail(ErrorKind::Expected(what));
        }
        self.pos += 1;
        Ok(())
    }

    fn space(&mut self) -> R<()> {
        self.expect(b' ', "a space")
    }

    fn crlf(&mut self) -> R<()> {
        if self.peek()? == b'\r' {
            self.pos += 1;
        }
        self.expect(b'\n', "the end of the line")
    }

    fn at_line_end(&self) -> R<bool> {
        Ok(matches!(self.peek()?, b'\r' | b'\n'))
    }

    /// Bytes while `keep` holds; at least one. Reaching the end of the
    /// input is "more", since the token may go on.
    fn token(&mut self, keep: impl Fn(u8) -> bool, what: &'static str) -> R<&'a [u8]> {
        let start = self.pos;
        while keep(self.peek()?) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.fail(ErrorKind::Expected(what));
        }
        Ok(&self.input[start..self.pos])
    }

    fn atom(&mut self) -> R<&'a [u8]> {
        self.token(atom_char, "an atom")
    }

    /// An atom that stops before a `[` (a fetch item's name before its
    /// section).
    fn name(&mut self) -> R<&'a [u8]> {
        self.token(|b| atom_char(b) && b != b'[', "a name")
    }

    fn number(&mut self) -> R<u32> {
        let at = self.pos;
        let digits = self.token(|b| b.is_ascii_digit(), "a number")?;
        let mut n: u32 = 0;
        for d in digits {
            n = match n.checked_mul(10).and_then(|n| n.checked_add(u32::from(d - b'0'))) {
                Some(n) => n,
                None => {
                    self.pos = at;
                    return self.fail(ErrorKind::NumberTooLarge);
                }
            };
        }
        Ok(n)
    }

    /// Everything up to the end of the line (not taken).
    fn rest(&mut self) -> R<String> {
        let start = self.pos;
        while !self.at_line_end()? {
            self.pos += 1;
        }
        Ok(text(&self.input[start..self.pos]))
    }

    fn response(&mut self) -> R<Response> {
        let response = match self.peek()? {
            b'+' => {
                self.pos += 1;
                if self.peek()? == b' ' {
                    self.pos += 1;
                }
                Response::Continue(self.rest()?)
            }
            b'*' => {
                self.pos += 1;
                self.space()?;
                Response::Untagged(self.untagged()?)
            }
            _ => {
                let tag = text(self.token(|b| atom_char(b) && b != b'+', "a tag")?);
                self.space()?;
                let name = self.atom()?;
                let status = match self.status_kind(name) {
                    Some(kind @ (StatusKind::Ok | StatusKind::No | StatusKind::Bad)) => {
                        self.status(kind)?
                    }
                    _ => return self.fail(ErrorKind::Expected("OK, NO or BAD")),
                };
                Response::Tagged { tag, status }
            }
        };
        self.crlf()?;
        Ok(response)
    }

    fn status_kind(&self, name: &[u8]) -> Option<StatusKind> {
        Some(match name.to_ascii_uppercase().as_slice() {
            b"OK" => StatusKind::Ok,
            b"NO" => StatusKind::No,
            b"BAD" => StatusKind::Bad,
            b"PREAUTH" => StatusKind::PreAuth,
            b"BYE" => StatusKind::Bye,
            _ => return None,
        })
    }

    /// After OK, NO ...: `[SP ["[" code "]" [SP]] text]`.
    fn status(&mut self, kind: StatusKind) -> R<Status> {
        let mut code = None;
        if !self.at_line_end()? {
            self.space()?;
            if self.peek()? == b'[' {
                self.pos += 1;
                code = Some(self.code()?);
                self.expect(b']', "] after the response code")?;
                if self.peek()? == b' ' {
                    self.pos += 1;
                }
            }
        }
        Ok(Status { kind, code, text: self.rest()? })
    }

    fn code(&mut self) -> R<Code> {
        let name = self.atom()?.to_ascii_uppercase();
        let code = match name.as_slice() {
            b"ALERT" => Code::Alert,
            b"PARSE" => Code::Parse,
            b"READ-ONLY" => Code::ReadOnly,
            b"READ-WRITE" => Code::ReadWrite,
            b"TRYCREATE" => Code::TryCreate,
            b"UIDNEXT" | b"UIDVALIDITY" | b"UNSEEN" => {
                self.space()?;
                let n = self.number()?;
                match name.as_slice() {
                    b"UIDNEXT" => Code::UidNext(n),
                    b"UIDVALIDITY" => Code::UidValidity(n),
                    _ => Code::Unseen(n),
                }
            }
            b"PERMANENTFLAGS" => {
                self.space()?;
                Code::PermanentFlags(self.flags()?)
            }
            b"CAPABILITY" => Code::Capability(self.capabilities()?),
            _ => {
                let mut rest = String::new();
                if self.peek()? == b' ' {
                    self.pos += 1;
                    let start = self.pos;
                    while !matches!(self.peek()?, b']' | b'\r' | b'\n') {
                        self.pos += 1;
                    }
                    rest = text(&self.input[start..self.pos]);
                }
                Code::Other(text(&name), rest)
            }
        };
        Ok(code)
    }

    /// `*(SP atom)`, up to the end of the line or a `]`.
    fn capabilities(&mut self) -> R<Vec<String>> {
        let mut names = Vec::new();
        while self.peek()? == b' ' {
            self.pos += 1;
            self.count(names.len())?;
            names.push(text(self.atom()?));
        }
        Ok(names)
    }

    fn count(&self, items: usize) -> R<()> {
        if items >= self.limits.items {
            return self.fail(ErrorKind::TooManyItems { limit: self.limits.items });
        }
        Ok(())
    }

    fn untagged(&mut self) -> R<Untagged> {
        if self.peek()?.is_ascii_digit() {
            let n = self.number()?;
            self.space()?;
            let name = self.atom()?.to_ascii_uppercase();
            return Ok(match name.as_slice() {
                b"EXISTS" => Untagged::Exists(n),
                b"RECENT" => Untagged::Recent(n),
                b"EXPUNGE" => Untagged::Expunge(n),
                b"FETCH" => {
                    self.space()?;
                    Untagged::Fetch { sequence: n, attributes: self.attributes()? }
                }
                _ => {
                    let mut values = vec![Value::Number(n)];
                    values.extend(self.values()?);
                    Untagged::Other { name: text(&name), values }
                }
            });
        }
        let name = self.atom()?;
        if let Some(kind) = self.status_kind(name) {
            return Ok(Untagged::Status(self.status(kind)?));
        }
        Ok(match name.to_ascii_uppercase().as_slice() {
            b"CAPABILITY" => Untagged::Capability(self.capabilities()?),
            b"FLAGS" => {
                self.space()?;
                Untagged::Flags(self.flags()?)
            }
            b"SEARCH" => {
                let mut found = Vec::new();
                while self.peek()? == b' ' {
                    self.pos += 1;
                    if self.at_line_end()? {
                        break;
                    }
                    self.count(found.len())?;
                    found.push(self.number()?);
                }
                Untagged::Search(found)
            }
            _ => Untagged::Other { name: text(name), values: self.values()? },
        })
    }

    /// `*(SP value)` to the end of the line.
    fn values(&mut self) -> R<Vec<Value>> {
        let mut values = Vec::new();
        while self.peek()? == b' ' {
            self.pos += 1;
            self.count(values.len())?;
            values.push(self.value()?);
        }
        Ok(values)
    }

    /// `"(" [flag *(SP flag)] ")"`.
    fn flags(&mut self) -> R<Vec<Flag>> {
        self.expect(b'(', "( before flags")?;
        let mut flags = Vec::new();
        while self.peek()? != b')' {
            if !flags.is_empty() {
                self.space()?;
            }
            self.count(flags.len())?;
            flags.push(self.flag()?);
        }
        self.pos += 1;
        Ok(flags)
    }

    fn flag(&mut self) -> R<Flag> {
        if self.peek()? != b'\\' {
            return Ok(Flag::Keyword(text(self.atom()?)));
        }
        self.pos += 1;
        if self.peek()? == b'*' {
            self.pos += 1;
            return Ok(Flag::MayCreate);
        }
        let name = self.atom()?;
        Ok(match name.to_ascii_uppercase().as_slice() {
            b"SEEN" => Flag::Seen,
            b"ANSWERED" => Flag::Answered,
            b"FLAGGED" => Flag::Flagged,
            b"DELETED" => Flag::Deleted,
            b"DRAFT" => Flag::Draft,
            b"RECENT" => Flag::Recent,
            _ => Flag::Extension(text(name)),
        })
    }

    /// A FETCH response's `"(" att *(SP att) ")"`.
    fn attributes(&mut self) -> R<Vec<Attribute>> {
        self.expect(b'(', "( before the fetch data")?;
        let mut attributes = Vec::new();
        while self.peek()? != b')' {
            if !attributes.is_empty() {
                self.space()?;
            }
            self.count(attributes.len())?;
            attributes.push(self.attribute()?);
        }
        self.pos += 1;
        Ok(attributes)
    }

    fn attribute(&mut self) -> R<Attribute> {
        let name = self.name()?.to_ascii_uppercase();
        let section = match self.peek()? {
            b'[' => Some(self.section()?),
            _ => None,
        };
        let mut origin = None;
        if section.is_some() && self.peek()? == b'<' {
            self.pos += 1;
            origin = Some(self.number()?);
            self.expect(b'>', "> after the origin")?;
        }
        self.space()?;
        let body =
            |section: &str, data| Attribute::Body { section: section.to_string(), origin, data };
        Ok(match (name.as_slice(), section) {
            (b"BODY" | b"BINARY", Some(section)) => body(&section, self.nstring()?),
            (b"RFC822", None) => body("", self.nstring()?),
            (b"RFC822.HEADER", None) => body("HEADER", self.nstring()?),
            (b"RFC822.TEXT", None) => body("TEXT", self.nstring()?),
            (b"UID", None) => Attribute::Uid(self.number()?),
            (b"RFC822.SIZE", None) => Attribute::Size(self.number()?),
            (b"FLAGS", None) => Attribute::Flags(self.flags()?),
            (b"INTERNALDATE", None) => Attribute::InternalDate(text(&self.quoted()?)),
            (_, section) => {
                let mut name = text(&name);
                if let Some(section) = section {
                    name = alloc::format!("{name}[{section}]");
                }
                Attribute::Other(name, self.value()?)
            }
        })
    }

    /// `"[" ... "]"`: a section spec, kept as text (it may hold spaces
    /// and a list of header names, never a line end).
    fn section(&mut self) -> R<String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b']' => break,
                b'\r' | b'\n' | b'[' => return self.fail(ErrorKind::Expected("] after a section")),
                _ => self.pos += 1,
            }
        }
        let section = text(&self.input[start..self.pos]);
        self.pos += 1;
        Ok(section)
    }

    fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        match self.value()? {
            Value::Nil => Ok(None),
            Value::String(bytes) => Ok(Some(bytes)),
            _ => self.fail(ErrorKind::Expected("a string or NIL")),
        }
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut bytes = Vec::new();
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek()? {
                        b @ (b'"' | b'\\') => bytes.push(b),
                        _ => return self.fail(ErrorKind::Expected("\\ or \" after \\")),
                    }
                }
                b'\r' | b'\n' => return self.fail(ErrorKind::Expected("\" before the line end")),
                b => bytes.push(b),
            }
            self.pos += 1;
        }
        self.pos += 1;
        Ok(bytes)
    }

    /// `"{" number "}" CRLF` and that many bytes, within the limits.
    fn literal(&mut self) -> R<Vec<u8>> {
        self.pos += 1;
        let at = self.pos;
        let digits = self.token(|b| b.is_ascii_digit(), "the literal's size")?;
        // Up to 20 digits fit u64; anything longer is over any limit.
        let size = if digits.len() > 19 {
            u64::MAX
        } else {
            digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
        };
        let limit = self.limits.literal.min(self.limits.literals - self.literals);
        if size > limit as u64 {
            self.pos = at;
            let limit = if size > self.limits.literal as u64 {
                self.limits.literal
            } else {
                self.limits.literals
            };
            return self.fail(ErrorKind::LiteralTooLarge { size, limit });
        }
        let size = size as usize;
        self.expect(b'}', "} after the literal's size")?;
        self.crlf()?;
        let start = self.pos;
        if self.input.len() - start < size {
            self.pending = Some(start);
            return Err(Stop::More);
        }
        self.pos += size;
        self.literals += size;
        Ok(self.input[start..self.pos].to_vec())
    }

    /// Any value, for what is read without being understood.
    fn value(&mut self) -> R<Value> {
        Ok(match self.peek()? {
            b'"' => Value::String(self.quoted()?),
            b'{' => Value::String(self.literal()?),
            b'(' => {
                if self.depth >= self.limits.depth {
                    return self.fail(ErrorKind::TooDeep { limit: self.limits.depth });
                }
                self.depth += 1;
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b')' {
                    if !items.is_empty() {
                        self.space()?;
                    }
                    self.count(items.len())?;
                    items.push(self.value()?);
                }
                self.pos += 1;
                self.depth -= 1;
                Value::List(items)
            }
            b'\\' => {
                self.pos += 1;
                let name = match self.peek()? {
                    b'*' => {
                        self.pos += 1;
                        "*".into()
                    }
                    _ => text(self.atom()?),
                };
                Value::Atom(alloc::format!("\\{name}"))
            }
            _ => {
                let start = self.pos;
                let atom = self.name()?;
                if atom.eq_ignore_ascii_case(b"NIL") {
                    Value::Nil
                } else if atom.iter().all(u8::is_ascii_digit) {
                    self.pos = start;
                    match self.number() {
                        Ok(n) => Value::Number(n),
                        // A bigger number (a MODSEQ): kept as it was sent.
                        Err(Stop::Bad(_)) => {
                            self.pos = start + atom.len();
                            Value::Atom(text(atom))
                        }
                        Err(more) => return Err(more),
                    }
                } else if self.peek()? == b'[' {
                    let section = self.section()?;
                    Value::Atom(alloc::format!("{}[{section}]", text(atom)))
                } else {
                    Value::Atom(text(atom))
                }
            }
        })
    }
}
