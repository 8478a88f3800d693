//! The long-running client (`mail.run`, and what a provisioned guest does
//! by default): the console interface stays live while the guest syncs
//! the inbox every `sync_seconds` (at once at start and after a message is
//! queued) and sends the outbox whenever it has something waiting, with
//! backoff after failures (`duet_mail::schedule`). When there is nothing
//! to do it sleeps in WFI with the virtual timer armed for the next
//! deadline; a key, a frame or the timer wakes it.
//!
//! A sync or send runs to its end (or its timeout) before keys are taken
//! again: keys typed meanwhile wait in the console's buffer.

use crate::disk::Disk;
use crate::display::Panel;
use crate::net::{now, Net};
use crate::screen::{self, Asked, Screen};
use crate::{gic, send, sync, tls};
use alloc::string::String;
use duet_mail::provision::Provision;
use duet_mail::schedule::{uptime, Outcome, Schedule, Work};
use duet_mail::store::Store;
use smoltcp::time::{Duration, Instant};

/// Runs until `q` on the inbox.
pub fn run(
    store: &mut Store<Disk>,
    provision: &Provision,
    rng: &mut tls::Rng,
    mut net: Option<Net>,
    panel: Panel,
) {
    let boot = now();
    let uptime_ms = move || (now() - boot).total_millis();
    let mut schedule = Schedule::new(provision.sync_seconds, uptime_ms());
    let mut screen = Screen::new(store, panel);
    say!(
        "mail: client running: sync every {} s, outbox sent when it can; {}",
        provision.sync_seconds,
        if gic::ready() { "waits in WFI" } else { "no GIC: polls" }
    );
    screen.show();
    let mut sequence = 0u64;
    // The outbox entry whose last attempt the server refused, if any.
    let mut failed: Option<u64> = None;
    loop {
        while let Some(key) = screen.read_key() {
            let id = || {
                sequence += 1;
                let domain = provision.from.rsplit_once('@').map_or("duet-mail", |(_, d)| d);
                message_id(rng, domain, sequence)
            };
            match screen.key(key, store, id) {
                Asked::Nothing => {}
                Asked::Queued => schedule.queued(uptime_ms()),
                Asked::Status => {
                    let network = net
                        .as_ref()
                        .and_then(|n| n.address())
                        .map_or(String::from("no address"), |a| alloc::format!("{a}"));
                    let now = uptime_ms();
                    let status = screen::status(store, &network);
                    say!(
                        "{status}; {}; uptime {} s, {} WFI sleeps",
                        schedule.status(now, screen::waiting(store)),
                        now / 1000,
                        gic::waits()
                    );
                    screen.notice(status);
                }
                Asked::Quit => return,
            }
        }
        let Some(net) = net.as_mut() else {
            // No NIC: an offline mail reader. Sleep until a key.
            gic::wait_until(None);
            continue;
        };
        net.poll();
        let waiting = screen::waiting(store);
        if net.address().is_some() {
            if let Some(work) = schedule.due(uptime_ms(), waiting) {
                let outcome = match work {
                    Work::Send => {
                        let (tried, outcome) = send::next(net, rng, provision, store, failed);
                        // A refused entry waits behind the others next time.
                        failed = match outcome {
                            Outcome::Failed(_) => tried,
                            _ => None,
                        };
                        outcome
                    }
                    Work::Sync => {
                        let (outcome, report) = sync::once(net, rng, provision, store, true);
                        if report.new > 0 || report.flags > 0 {
                            screen.refresh(store);
                            if report.new > 0 && screen.on_inbox() {
                                screen.show();
                            }
                        }
                        outcome
                    }
                };
                finished(&mut schedule, work, &outcome, uptime_ms(), screen::waiting(store));
                continue;
            }
        }
        let until = match net.address() {
            Some(_) => {
                let next = schedule.next_deadline(screen::waiting(store));
                let ahead = next.saturating_sub(uptime_ms());
                now() + Duration::from_millis(ahead)
            }
            // Without an address only DHCP has anything to do.
            None => Instant::from_micros(i64::MAX / 2),
        };
        net.sleep(until);
    }
}

/// Records how `work` ended, and says when its server goes out of reach
/// or comes back.
fn finished(schedule: &mut Schedule, work: Work, outcome: &Outcome, now: u64, waiting: usize) {
    let was_offline = schedule.offline_since(work).is_some();
    schedule.finished(work, outcome, now);
    let next = schedule.next(work).saturating_sub(now).div_ceil(1000);
    let what = match work {
        Work::Send => "sending",
        Work::Sync => "syncing",
    };
    match (was_offline, schedule.offline_since(work), outcome) {
        (false, Some(since), Outcome::Unreachable(why)) => say!(
            "mail: {what}: offline since {}: {why}; {waiting} waiting; next attempt in {next} s",
            uptime(since)
        ),
        (true, None, _) => say!("mail: {what}: online again at {}; {waiting} waiting", uptime(now)),
        (_, _, Outcome::Done) => {}
        (_, _, Outcome::Unreachable(_) | Outcome::Failed(_)) => {
            say!("mail: {what}: next attempt in {next} s; {waiting} waiting")
        }
    }
}

/// A new Message-ID (without its angle brackets): random, so that no two
/// messages of any boot share one (the outbox's check relies on that).
pub fn message_id(rng: &mut tls::Rng, domain: &str, sequence: u64) -> String {
    let mut bytes = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut tls::Entropy(rng), &mut bytes);
    let mut id = String::new();
    for b in bytes {
        id.push_str(&alloc::format!("{b:02x}"));
    }
    alloc::format!("{id}.{sequence}@{domain}")
}
