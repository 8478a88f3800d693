//! The mail guest's host-testable logic, `no_std` with `alloc`: the
//! offline store (an append-only checksummed log over a block device, and
//! the mailbox and outbox kept in it) and the IMAP4rev1 response parser.
//! `cargo test -p duet-mail` runs their tests on the host.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bootargs;
pub mod imap;
pub mod message;
pub mod provision;
pub mod schedule;
pub mod smtp;
pub mod store;
pub mod ui;
