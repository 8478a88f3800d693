//! The guest's provisioning: which servers, which account, which CA. It
//! comes from the persona manifest, not from the guest's build: the
//! manifest's `initrd` names a provisioning file, which Duet loads into the
//! guest's RAM like an initramfs (the device tree's `/chosen`
//! `linux,initrd-start` and `-end` say where). Unlike the command line,
//! Duet never prints it.
//!
//! The file is text: `key = value` lines (`#` starts a comment) and the
//! corporate CA's certificate as one PEM block:
//!
//! ```text
//! imap = 10.0.2.2:993           # IMAP over implicit TLS
//! smtp = 10.0.2.2:465           # submission over implicit TLS
//! smtp_tls = implicit           # or starttls (port 587); never plaintext
//! server_name = mail.example    # the name the servers' certificates must carry
//! user = alice
//! password = secret
//! from = alice@mail.example
//! sync_seconds = 300
//! -----BEGIN CERTIFICATE-----
//! ...
//! -----END CERTIFICATE-----
//! ```
//!
//! Every key is required except `sync_seconds` (default 300) and
//! `smtp_tls` (default `implicit`); addresses
//! are IPv4 (the guest has no DNS resolver yet).

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use core::fmt;
use core::net::SocketAddrV4;

/// The largest provisioning file taken.
pub const SIZE_LIMIT: usize = 64 << 10;

#[derive(Clone, PartialEq, Eq)]
pub struct Provision {
    pub imap: SocketAddrV4,
    pub smtp: SocketAddrV4,
    pub server_name: String,
    pub user: String,
    pub password: String,
    pub from: String,
    pub sync_seconds: u32,
    /// How the submission server is reached: implicit TLS or STARTTLS.
    pub smtp_tls: SmtpTls,
    /// The CA certificate, DER.
    pub ca: Vec<u8>,
}

/// TLS on the submission port: from the first byte (465), or after
/// STARTTLS (587). Both refuse to go on without TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    Implicit,
    StartTls,
}

/// Never shows the password.
impl fmt::Debug for Provision {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} at {} (IMAP {}, SMTP {}{}, every {} s, CA of {} bytes)",
            self.user,
            self.server_name,
            self.imap,
            self.smtp,
            if self.smtp_tls == SmtpTls::StartTls { " with STARTTLS" } else { "" },
            self.sync_seconds,
            self.ca.len()
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvisionError {
    TooLarge(usize),
    NotText,
    /// Line `line` is neither `key = value`, a comment nor PEM.
    Malformed {
        line: usize,
    },
    UnknownKey {
        line: usize,
    },
    Duplicate {
        line: usize,
    },
    BadValue {
        line: usize,
        expected: &'static str,
    },
    Missing(&'static str),
    /// No CA certificate, or more than one.
    CaCount(usize),
    /// The PEM block does not decode to a DER certificate.
    BadCa,
}

impl fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ProvisionError::TooLarge(n) => {
                write!(f, "provisioning of {n} bytes is over {SIZE_LIMIT}")
            }
            ProvisionError::NotText => write!(f, "provisioning is not UTF-8 text"),
            ProvisionError::Malformed { line } => write!(f, "line {line}: expected key = value"),
            ProvisionError::UnknownKey { line } => write!(f, "line {line}: unknown key"),
            ProvisionError::Duplicate { line } => write!(f, "line {line}: key given twice"),
            ProvisionError::BadValue { line, expected } => {
                write!(f, "line {line}: expected {expected}")
            }
            ProvisionError::Missing(key) => write!(f, "no {key}"),
            ProvisionError::CaCount(n) => write!(f, "expected one CA certificate, found {n}"),
            ProvisionError::BadCa => write!(f, "the CA certificate is not base64 DER"),
        }
    }
}

const KEYS: [&str; 8] =
    ["imap", "smtp", "server_name", "user", "password", "from", "sync_seconds", "smtp_tls"];

impl Provision {
    pub fn parse(bytes: &[u8]) -> Result<Provision, ProvisionError> {
        if bytes.len() > SIZE_LIMIT {
            return Err(ProvisionError::TooLarge(bytes.len()));
        }
        let text = core::str::from_utf8(bytes).map_err(|_| ProvisionError::NotText)?;
        let mut values: [Option<(usize, &str)>; KEYS.len()] = [None; KEYS.len()];
        let mut blocks: Vec<String> = Vec::new();
        let mut open_block: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if let Some(body) = open_block.as_mut() {
                if content == "-----END CERTIFICATE-----" {
                    blocks.extend(open_block.take());
                } else {
                    body.push_str(content);
                }
                continue;
            }
            if content == "-----BEGIN CERTIFICATE-----" {
                open_block = Some(String::new());
                continue;
            }
            let content = content.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (key, value) = content.split_once('=').ok_or(ProvisionError::Malformed { line })?;
            let index = KEYS
                .iter()
                .position(|k| *k == key.trim())
                .ok_or(ProvisionError::UnknownKey { line })?;
            if values[index].is_some() {
                return Err(ProvisionError::Duplicate { line });
            }
            values[index] = Some((line, value.trim()));
        }
        if open_block.is_some() {
            return Err(ProvisionError::BadCa);
        }
        if blocks.len() != 1 {
            return Err(ProvisionError::CaCount(blocks.len()));
        }
        let ca = base64::engine::general_purpose::STANDARD
            .decode(&blocks[0])
            .map_err(|_| ProvisionError::BadCa)?;
        // A DER certificate is a SEQUENCE, and not a tiny one.
        if ca.first() != Some(&0x30) || ca.len() < 64 {
            return Err(ProvisionError::BadCa);
        }
        let get = |key: &'static str| {
            let index = KEYS.iter().position(|k| *k == key).unwrap_or(0);
            values[index].ok_or(ProvisionError::Missing(key))
        };
        let address = |key| {
            let (line, value) = get(key)?;
            value.parse::<SocketAddrV4>().map_err(|_| ProvisionError::BadValue {
                line,
                expected: "an IPv4 address and port, A.B.C.D:PORT",
            })
        };
        let text = |key, expected, ok: fn(&str) -> bool| {
            let (line, value) = get(key)?;
            if value.is_empty() || !ok(value) {
                return Err(ProvisionError::BadValue { line, expected });
            }
            Ok(String::from(value))
        };
        let printable = |v: &str| v.chars().all(|c| (' '..='~').contains(&c));
        let host_name =
            |v: &str| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let sync_seconds = match get("sync_seconds") {
            Err(_) => 300,
            Ok((line, value)) => value
                .parse::<u32>()
                .ok()
                .filter(|s| (10..=86_400).contains(s))
                .ok_or(ProvisionError::BadValue { line, expected: "seconds, 10 to 86400" })?,
        };
        let smtp_tls = match get("smtp_tls") {
            Err(_) => SmtpTls::Implicit,
            Ok((_, "implicit")) => SmtpTls::Implicit,
            Ok((_, "starttls")) => SmtpTls::StartTls,
            Ok((line, _)) => {
                return Err(ProvisionError::BadValue { line, expected: "implicit or starttls" })
            }
        };
        Ok(Provision {
            smtp_tls,
            imap: address("imap")?,
            smtp: address("smtp")?,
            server_name: text("server_name", "a host name", host_name)?,
            user: text("user", "printable ASCII", printable)?,
            password: text("password", "printable ASCII", printable)?,
            from: text("from", "an address, user@domain", |v| {
                v.split_once('@').is_some_and(|(u, d)| !u.is_empty() && !d.is_empty())
                    && !v.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
            })?,
            sync_seconds,
            ca,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    fn pem() -> String {
        let mut der = alloc::vec![0x30, 0x82, 0x01, 0x00];
        der.extend((0..200).map(|i| i as u8));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> =
            b64.as_bytes().chunks(64).map(|c| core::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }

    fn file(keys: &str) -> String {
        format!("{keys}{}", pem())
    }

    const KEYS_OK: &str =
        "# the test servers\nimap = 10.0.2.2:993\nsmtp = 10.0.2.2:465  # submission\n\
        server_name = mail.test\nuser = alice\npassword = s3cret pass\nfrom = alice@mail.test\n";

    #[test]
    fn a_complete_file_is_read_and_the_password_never_shown() {
        let p = Provision::parse(file(KEYS_OK).as_bytes()).unwrap();
        assert_eq!(p.imap.to_string(), "10.0.2.2:993");
        assert_eq!(p.smtp.port(), 465);
        assert_eq!(
            (p.server_name.as_str(), p.user.as_str(), p.password.as_str()),
            ("mail.test", "alice", "s3cret pass")
        );
        assert_eq!((p.from.as_str(), p.sync_seconds, p.ca.len()), ("alice@mail.test", 300, 204));
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("alice at mail.test (IMAP 10.0.2.2:993"));
        assert_eq!(p.smtp_tls, SmtpTls::Implicit);
        let text = file(&format!("{KEYS_OK}smtp_tls = starttls\n"));
        let p = Provision::parse(text.as_bytes()).unwrap();
        assert_eq!(p.smtp_tls, SmtpTls::StartTls);
        assert!(format!("{p:?}").contains("SMTP 10.0.2.2:465 with STARTTLS, every"));
    }

    #[test]
    fn every_problem_is_named() {
        let cases: [(String, ProvisionError); 11] = [
            (
                file(&format!("{KEYS_OK}smtp_tls = none\n")),
                ProvisionError::BadValue { line: 8, expected: "implicit or starttls" },
            ),
            (file(&KEYS_OK.replace("imap = 10.0.2.2:993\n", "")), ProvisionError::Missing("imap")),
            (
                file(&KEYS_OK.replace("993", "imap.test:993")),
                ProvisionError::BadValue {
                    line: 2,
                    expected: "an IPv4 address and port, A.B.C.D:PORT",
                },
            ),
            (file(&format!("{KEYS_OK}user = bob\n")), ProvisionError::Duplicate { line: 8 }),
            (file(&format!("{KEYS_OK}shell = /bin/sh\n")), ProvisionError::UnknownKey { line: 8 }),
            (file(&format!("{KEYS_OK}just words\n")), ProvisionError::Malformed { line: 8 }),
            (
                file(&format!("{KEYS_OK}sync_seconds = 1\n")),
                ProvisionError::BadValue { line: 8, expected: "seconds, 10 to 86400" },
            ),
            (
                file(&KEYS_OK.replace("alice@mail.test", "alice")),
                ProvisionError::BadValue { line: 7, expected: "an address, user@domain" },
            ),
            (KEYS_OK.to_string(), ProvisionError::CaCount(0)),
            (format!("{}{}", file(KEYS_OK), pem()), ProvisionError::CaCount(2)),
            (
                format!("{KEYS_OK}-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
                ProvisionError::BadCa,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Provision::parse(text.as_bytes()), Err(expected), "{text}");
        }
        assert_eq!(Provision::parse(b"\xff"), Err(ProvisionError::NotText));
        assert_eq!(
            Provision::parse(&[b'#'; SIZE_LIMIT + 1]),
            Err(ProvisionError::TooLarge(SIZE_LIMIT + 1))
        );
        let unterminated = format!("{KEYS_OK}-----BEGIN CERTIFICATE-----\nMIIB\n");
        assert_eq!(Provision::parse(unterminated.as_bytes()), Err(ProvisionError::BadCa));
        let user = file(&KEYS_OK.replace("user = alice", "user = al\u{1b}ice"));
        assert!(matches!(
            Provision::parse(user.as_bytes()),
            Err(ProvisionError::BadValue { line: 5, .. })
        ));
    }
}
