//! The guest's command line (`/chosen/bootargs`, the manifest's
//! `cmdline`). Words not starting with `mail.` are ignored; an unknown or
//! malformed `mail.` word is an error naming it.
//!
//! - `mail.hello=A.B.C.D:PORT`: after DHCP, open a TCP connection there,
//!   send one line and print the line that comes back (a check of the
//!   network path; the integration test runs the server).
//! - `mail.ui`: run the console interface.
//! - `mail.tls-hello`: after DHCP, exchange one line over TLS with the
//!   provisioned IMAP address, checking its certificate.
//! - `mail.sync`: after DHCP, sync the inbox once from the provisioned
//!   IMAP server (over TLS) and print it.
//! - `mail.send`: after DHCP, send what waits in the outbox to the
//!   provisioned SMTP server (over TLS).
//! - `mail.run`: the long-running client (the console interface, with
//!   syncing and sending in the background); what a provisioned guest does
//!   when the command line asks for nothing else.
//! - `mail.power-cut=before-end|after-end`: for the exactly-once tests,
//!   power off in the middle of the next submission, just before or just
//!   after the message's end goes to the server (after "sending" is
//!   recorded, before "sent"), as a power cut would.
//! - `mail.fault=stack-overflow|unmapped`: a test hook for the guest's
//!   fatal-exception path (`vectors.rs`): right after the command line is
//!   read, recurse without end into the stack's guard page, or load from
//!   an address the identity map leaves unmapped.

use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub hello: Option<SocketAddrV4>,
    /// Run the console interface (otherwise the guest powers off after
    /// its checks).
    pub ui: bool,
    /// After DHCP, exchange a line over TLS with the provisioned IMAP
    /// address (a check of TLS and the CA; the integration test runs the
    /// server).
    pub tls_hello: bool,
    /// After DHCP, sync the inbox from the provisioned IMAP server.
    pub sync: bool,
    /// After DHCP, send the outbox to the provisioned SMTP server.
    pub send: bool,
    /// Run the long-running client.
    pub run: bool,
    /// Power off in the middle of the next submission (a test's power cut).
    pub power_cut: Option<PowerCut>,
    /// Commit a fatal fault at once (a test of the exception vectors).
    pub fault: Option<Fault>,
}

/// The fault `mail.fault` commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Recursion without end, until the stack reaches its guard page.
    StackOverflow,
    /// A load from an address outside the identity map.
    Unmapped,
}

/// Where `mail.power-cut` cuts a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerCut {
    /// "Sending" is recorded; the message's end has not gone out.
    BeforeEnd,
    /// The message's end has gone out (and been acknowledged by TCP); the
    /// server's reply has not been read.
    AfterEnd,
}

impl Config {
    /// True if the command line asks for a one-shot step (then the guest
    /// does it and powers off rather than run the client).
    pub fn one_shot(&self) -> bool {
        self.hello.is_some() || self.ui || self.tls_hello || self.sync || self.send
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootargError<'a> {
    /// A `mail.` word the guest does not know.
    Unknown(&'a str),
    /// A known word with a value that does not parse.
    BadValue { word: &'a str, expected: &'static str },
}

impl fmt::Display for BootargError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BootargError::Unknown(word) => write!(f, "unknown option {word:?}"),
            BootargError::BadValue { word, expected } => write!(f, "{word:?}: expected {expected}"),
        }
    }
}

pub fn parse(cmdline: &str) -> Result<Config, BootargError<'_>> {
    let mut config = Config::default();
    for word in cmdline.split_ascii_whitespace().filter(|w| w.starts_with("mail.")) {
        match word.split_once('=') {
            Some(("mail.hello", value)) => {
                let address =
                    value.parse::<SocketAddrV4>().map_err(|_| BootargError::BadValue {
                        word,
                        expected: "an IPv4 address and port, A.B.C.D:PORT",
                    })?;
                if address.port() == 0 || address.ip() == &Ipv4Addr::UNSPECIFIED {
                    return Err(BootargError::BadValue {
                        word,
                        expected: "a real address and port",
                    });
                }
                config.hello = Some(address);
            }
            Some(("mail.power-cut", value)) => {
                config.power_cut = Some(match value {
                    "before-end" => PowerCut::BeforeEnd,
                    "after-end" => PowerCut::AfterEnd,
                    _ => {
                        return Err(BootargError::BadValue {
                            word,
                            expected: "before-end or after-end",
                        })
                    }
                })
            }
            Some(("mail.fault", value)) => {
                config.fault = Some(match value {
                    "stack-overflow" => Fault::StackOverflow,
                    "unmapped" => Fault::Unmapped,
                    _ => {
                        return Err(BootargError::BadValue {
                            word,
                            expected: "stack-overflow or unmapped",
                        })
                    }
                })
            }
            None if word == "mail.ui" => config.ui = true,
            None if word == "mail.tls-hello" => config.tls_hello = true,
            None if word == "mail.sync" => config.sync = true,
            None if word == "mail.send" => config.send = true,
            None if word == "mail.run" => config.run = true,
            _ => return Err(BootargError::Unknown(word)),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_and_others_ignored() {
        assert_eq!(parse("console=ttyAMA0 quiet"), Ok(Config::default()));
        let config = parse("quiet mail.hello=10.0.2.2:4321").unwrap();
        assert_eq!(config.hello, Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 4321)));
        assert!(!config.ui);
        assert!(parse("mail.ui").unwrap().ui);
        assert!(parse("mail.tls-hello").unwrap().tls_hello);
        assert!(parse("mail.sync").unwrap().sync);
        assert!(parse("mail.send").unwrap().send);
        assert!(parse("mail.run").unwrap().run);
        assert!(!parse("mail.run").unwrap().one_shot());
        assert!(parse("mail.sync").unwrap().one_shot());
        assert_eq!(parse("mail.power-cut=after-end").unwrap().power_cut, Some(PowerCut::AfterEnd));
        assert!(matches!(parse("mail.power-cut=now"), Err(BootargError::BadValue { .. })));
        assert_eq!(parse("mail.ui=1"), Err(BootargError::Unknown("mail.ui=1")));
    }

    #[test]
    fn the_fault_hook_is_read_and_checked() {
        assert_eq!(parse("quiet").unwrap().fault, None);
        assert_eq!(
            parse("quiet mail.fault=stack-overflow").unwrap().fault,
            Some(Fault::StackOverflow)
        );
        assert_eq!(parse("mail.fault=unmapped mail.ui").unwrap().fault, Some(Fault::Unmapped));
        assert_eq!(
            parse("mail.fault=null"),
            Err(BootargError::BadValue {
                word: "mail.fault=null",
                expected: "stack-overflow or unmapped"
            })
        );
        assert_eq!(parse("mail.fault"), Err(BootargError::Unknown("mail.fault")));
    }

    #[test]
    fn bad_words_are_named() {
        assert_eq!(parse("mail.shell=1"), Err(BootargError::Unknown("mail.shell=1")));
        assert_eq!(parse("mail.hello"), Err(BootargError::Unknown("mail.hello")));
        for bad in [
            "mail.hello=10.0.2.2",
            "mail.hello=host:25",
            "mail.hello=10.0.2.2:0",
            "mail.hello=0.0.0.0:1",
        ] {
            assert!(matches!(parse(bad), Err(BootargError::BadValue { .. })), "{bad}");
        }
    }
}
