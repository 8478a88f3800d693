//! One benchmark boot: QEMU running Linux either directly (native), or as
//! the one persona of a persona set under Duet, or as the personal VM of
//! Duet's default pair, driven through its console.
//! Knows the strings that mark each stage (init ran, the prompt, Duet's
//! banner and counters), times them, reads QEMU's CPU time, runs a shell job
//! and powers everything off.

use super::parse::{self, Counters};
use crate::console::{Console, Missing};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};

/// Linux boots in software emulation, on a machine that may be busy.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);

/// What guests/personal/init prints once it runs.
const INIT_RAN: &str = "duet-guest: init ran";
const PROMPT: &str = "/ # ";
/// The last whole line busybox's shell prints before its prompt.
const SHELL_BANNER: &str = "Enter 'help' for a list of built-in commands.";
/// The first line Duet prints.
const DUET_BANNER: &str = "-- a hypervisor for phones, at EL2";
/// Duet's console keys: print the counters; give the next VM the input.
const SHOW_COUNTERS: &[u8] = b"\x1ds";
const NEXT_VM: &[u8] = b"\x1dn";
/// The last line of the counters.
const COUNTERS_END: &str = "duet: heap ";
/// Duet's console key for the screen: locks it, or unlocks it into the
/// persona used last.
const TOGGLE_SCREEN: &[u8] = b"\x1do";
const LOCKED: &str = "duet: screen: locked";
const SWITCHED: &str = "duet: screen: switch to vm ";

/// With or without Duet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Linux booted by QEMU directly.
    Native,
    /// The same Linux as the only persona under Duet.
    Duet,
    /// The default persona pair under Duet (for the idle window).
    DuetPair,
}

impl Setup {
    pub fn name(self) -> &'static str {
        match self {
            Setup::Native => "native",
            Setup::Duet => "Duet",
            Setup::DuetPair => "Duet, two personas",
        }
    }

    /// How the personal guest's lines appear on the console.
    fn personal(self, text: &str) -> String {
        match self {
            Setup::Native => text.to_owned(),
            Setup::Duet | Setup::DuetPair => format!("[personal] {text}"),
        }
    }
}

/// Seconds from QEMU's start to each boot milestone.
#[derive(Clone, Copy, Debug)]
pub struct BootTimes {
    /// The personal guest's init ran.
    pub init: f64,
    /// Duet's banner (under Duet only).
    pub banner: Option<f64>,
}

/// A running benchmark machine.
pub struct Machine {
    console: Console,
    setup: Setup,
}

impl Machine {
    /// Starts `command` (a QEMU command line with its console on stdio).
    pub fn start(command: Command, setup: Setup) -> Result<Machine> {
        let console = Console::spawn(command, false)
            .with_context(|| format!("cannot start QEMU ({})", setup.name()))?;
        Ok(Machine { console, setup })
    }

    /// Waits until every guest shows its prompt; returns when the personal
    /// guest's init ran and (under Duet) when Duet's banner appeared.
    pub fn boot(&mut self) -> Result<BootTimes> {
        let banner = match self.setup {
            Setup::Native => None,
            Setup::Duet | Setup::DuetPair => Some(self.seconds_to(DUET_BANNER, BOOT_TIMEOUT)?),
        };
        let init = self.seconds_to(&self.setup.personal(INIT_RAN), BOOT_TIMEOUT)?;
        self.expect(0, &self.setup.personal(PROMPT), BOOT_TIMEOUT)?;
        if self.setup == Setup::DuetPair {
            // Only the focused VM's open line (its prompt) is shown; the
            // corporate shell's last whole line is busybox's banner.
            self.expect(0, &format!("[corporate] {INIT_RAN}"), BOOT_TIMEOUT)?;
            self.expect(0, &format!("[corporate] {SHELL_BANNER}"), BOOT_TIMEOUT)?;
        }
        Ok(BootTimes { init, banner })
    }

    /// Host CPU time QEMU has used so far (all its threads), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.console.pid());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let ticks = parse::stat_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))?;
        Ok(ticks as f64 / clock_ticks_per_second())
    }

    /// Asks Duet for its counters and reads them.
    pub fn counters(&mut self) -> Result<Counters> {
        let mark = self.console.len();
        self.send(SHOW_COUNTERS)?;
        let last = self.expect(mark, COUNTERS_END, COMMAND_TIMEOUT)?;
        let end = self.expect(last.end, "\n", COMMAND_TIMEOUT)?;
        let text = self.console.slice(mark, Some(end.end));
        Counters::parse(&text).with_context(|| format!("cannot read Duet's counters in {text:?}"))
    }

    /// Types `command` into the personal guest's shell and waits until it
    /// prints `done`.
    pub fn shell_until(&mut self, command: &str, done: &str) -> Result<()> {
        let mark = self.console.len();
        self.send(format!("{command}\n").as_bytes())?;
        self.expect(mark, done, COMMAND_TIMEOUT)?;
        Ok(())
    }

    /// Types `command` into the personal guest's shell, which must report
    /// through busybox's `time`, and returns its `real` seconds.
    pub fn timed_job(&mut self, command: &str) -> Result<f64> {
        let mark = self.console.len();
        self.send(format!("{command}\n").as_bytes())?;
        let real = self.expect(mark, "real\t", COMMAND_TIMEOUT)?;
        let prompt = self.expect(real.end, &self.setup.personal(PROMPT), COMMAND_TIMEOUT)?;
        let output = self.console.slice(mark, Some(prompt.start));
        parse::real_seconds(&output)
            .with_context(|| format!("no `real` time in what `{command}` printed: {output:?}"))
    }

    /// With the lock screen showing: unlocks it with Duet's console key,
    /// reads the switch latency Duet prints, in microseconds, and locks it
    /// again.
    pub fn switch_micros(&mut self) -> Result<f64> {
        let mark = self.console.len();
        self.send(TOGGLE_SCREEN)?;
        let switched = self.expect(mark, SWITCHED, COMMAND_TIMEOUT)?;
        let end = self.expect(switched.end, "\n", COMMAND_TIMEOUT)?;
        let line = self.console.slice(switched.start, Some(end.end));
        let micros = parse::switch_micros(&line)
            .with_context(|| format!("no switch latency in {line:?}"))?;
        let mark = self.console.len();
        self.send(TOGGLE_SCREEN)?;
        self.expect(mark, LOCKED, COMMAND_TIMEOUT)?;
        Ok(micros)
    }

    /// Waits for Duet's lock screen (a board with a screen, at boot).
    pub fn locked(&mut self) -> Result<()> {
        self.expect(0, LOCKED, BOOT_TIMEOUT).map(|_| ())
    }

    /// Powers every guest off and waits for QEMU to end; stops QEMU if that
    /// takes too long.
    pub fn power_off(mut self) -> Result<()> {
        let result = self.try_power_off();
        if self.console.wait(POWER_OFF_TIMEOUT).is_none() {
            self.console.kill();
            result?;
            bail!("QEMU ({}) did not end after power-off; stopped it", self.setup.name());
        }
        result
    }

    fn try_power_off(&mut self) -> Result<()> {
        let mark = self.console.len();
        self.send(b"poweroff -f\n")?;
        if self.setup == Setup::DuetPair {
            // The focus starts on the personal VM; the corporate one is next.
            self.expect(mark, "duet: vm personal powered off", POWER_OFF_TIMEOUT)?;
            self.send(NEXT_VM)?;
            self.expect(mark, "duet: console input now goes to vm corporate", COMMAND_TIMEOUT)?;
            self.send(b"poweroff -f\n")?;
        }
        Ok(())
    }

    fn seconds_to(&mut self, needle: &str, timeout: Duration) -> Result<f64> {
        let seen = self.expect(0, needle, timeout)?;
        Ok(seen.at.duration_since(self.console.started()).as_secs_f64())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.console
            .send(bytes)
            .with_context(|| format!("cannot type into QEMU ({})", self.setup.name()))
    }

    fn expect(
        &mut self,
        since: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<crate::console::Seen> {
        self.console.wait_for(since, needle, timeout).map_err(|missing| {
            let why = match missing {
                Missing::Exited => "QEMU ended".to_owned(),
                Missing::TimedOut => format!("{timeout:?} passed"),
            };
            let tail = tail(&self.console.text(), 40);
            anyhow::anyhow!(
                "{why} before {:?} appeared ({}); the console's last lines:\n{tail}",
                needle,
                self.setup.name()
            )
        })
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The kernel's clock ticks per second, the unit of `/proc/<pid>/stat`.
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Waits `duration` of wall time, which is guest time too: QEMU's virtual
/// counter follows the host clock.
pub fn idle_for(duration: Duration) {
    let end = Instant::now() + duration;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}
