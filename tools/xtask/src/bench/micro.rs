//! The microbenchmarks: the bench guest (`guests/bench`) run under Duet and
//! directly on QEMU `virt` (EL1, no hypervisor: QEMU answers PSCI itself),
//! each with `-icount shift=0` (deterministic: one instruction is one
//! nanosecond of virtual time, so counter ticks convert to instructions)
//! and on the wall clock. Reads the guest's figure lines back with the
//! guest's own parser.

use crate::console::{Console, Missing};
use anyhow::{bail, Context, Result};
use duet_bench_guest::figure::{self, Line};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// QEMU's deterministic mode: each instruction advances virtual time by
/// 2^0 ns, and with `sleep=off` an idle CPU jumps to the next timer
/// deadline instead of waiting for the host's clock.
pub const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// A run is a few seconds; a loaded machine may make it many more.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How virtual time runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `-icount shift=0`: one instruction per nanosecond.
    Icount,
    /// QEMU's counter follows the host's clock.
    Wall,
}

/// What one run of the guest printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub counter_hz: u64,
    /// Counter ticks per operation, by figure name.
    pub ticks_per_op: BTreeMap<String, f64>,
    /// Figures the guest reported absent.
    pub absent: Vec<String>,
}

impl Run {
    /// Reads the guest's lines out of a console transcript.
    pub fn parse(console: &str) -> Result<Run> {
        let mut run = Run::default();
        let mut done = false;
        for line in console.lines() {
            match figure::parse(line) {
                Some(Line::Platform { counter_hz }) => run.counter_hz = counter_hz,
                Some(Line::Figure(f)) => {
                    run.ticks_per_op.insert(f.name.to_owned(), f.ticks_per_op());
                }
                Some(Line::Absent { name }) => run.absent.push(name.to_owned()),
                Some(Line::Done) => done = true,
                None => {}
            }
        }
        if !done || run.counter_hz == 0 {
            bail!("the bench guest did not finish (no platform or done line)");
        }
        Ok(run)
    }

    /// Nanoseconds of the counter per operation of `name`: with icount,
    /// instructions executed (by every CPU of the machine) per operation.
    pub fn nanoseconds_per_op(&self, name: &str) -> Option<f64> {
        Some(self.ticks_per_op.get(name)? * 1e9 / self.counter_hz as f64)
    }
}

/// Runs `command` (a QEMU command line booting the bench guest, console on
/// stdio) to its end and reads the figures.
pub fn run(mut command: Command, clock: Clock) -> Result<Run> {
    if clock == Clock::Icount {
        command.args(ICOUNT);
    }
    let mut console = Console::spawn(command, false).context("cannot start QEMU")?;
    let seen = console.wait_for(0, figure::DONE, RUN_TIMEOUT);
    if console.wait(RUN_TIMEOUT).is_none() {
        console.kill();
    }
    let text = console.text();
    if let Err(missing) = seen {
        let why = match missing {
            Missing::Exited => "QEMU ended",
            Missing::TimedOut => "the run timed out",
        };
        bail!("{why} before the bench guest finished; its console:\n{text}");
    }
    Run::parse(&text).with_context(|| format!("in the console:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_under_duet_reads_back() {
        let console = "duet: vm bench (Corporate): 2 vcpus\n\
            [bench] bench: platform counter_hz=1000000000 gic=v3 uart=pl011 conduit=hvc cpus=2 virtio_mmio=no psci=1.1\n\
            [bench] bench: hvc_null ticks_per_op=4410.00 total_ticks=8820000 iterations=2000\n\
            [bench] bench: mmio_virtio_magic absent (no virtio-mmio node in the device tree)\n\
            [bench] bench: done\n";
        let run = Run::parse(console).unwrap();
        assert_eq!(run.counter_hz, 1_000_000_000);
        assert_eq!(run.ticks_per_op["hvc_null"], 4410.0);
        assert_eq!(run.nanoseconds_per_op("hvc_null"), Some(4410.0));
        assert_eq!(run.absent, ["mmio_virtio_magic"]);
        assert_eq!(run.nanoseconds_per_op("ipi_one_way"), None);
    }

    #[test]
    fn counter_ticks_become_nanoseconds() {
        let console = "bench: platform counter_hz=62500000\n\
            bench: hvc_null ticks_per_op=10.00 total_ticks=20000 iterations=2000\nbench: done\n";
        let run = Run::parse(console).unwrap();
        assert_eq!(run.nanoseconds_per_op("hvc_null"), Some(160.0));
    }

    #[test]
    fn an_unfinished_run_is_an_error() {
        assert!(Run::parse("bench: platform counter_hz=1000\n").is_err());
        assert!(Run::parse("bench: done\n").is_err());
    }
}
