//! The mail guest's host-testable logic, `no_std` with `alloc`: the
//! offline store (an append-only checksummed log over a block device, and
//! the mailbox and outbox kept in it), the IMAP4rev1 response parser, the
//! interface's state machine (`ui`) and its drawing on the guest's display
//! (`draw`, `keys`), the identity map's entries (`paging`) and what a fatal
//! exception is called (`fault`). `cargo test -p duet-mail` runs their
//! tests on the host.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bootargs;
pub mod draw;
pub mod fault;
pub mod imap;
pub mod keys;
pub mod message;
pub mod paging;
pub mod provision;
pub mod schedule;
pub mod smtp;
pub mod store;
pub mod ui;
