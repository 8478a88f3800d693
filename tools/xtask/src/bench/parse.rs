//! Reading the figures the benchmarks need out of text: busybox's `time`
//! report, Duet's counter lines (`Ctrl-] s`), a process's CPU time from
//! `/proc/<pid>/stat`, and the median of repeated samples. Pure functions, so
//! each format is unit-tested on the host.

/// Seconds of busybox's `real\t0m 1.23s` line in `output`; the line may
/// carry Duet's `[vm] ` tag in front.
pub fn real_seconds(output: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains("real\t"))?;
    let after = &line[line.find("real\t")? + "real\t".len()..];
    let (minutes, seconds) = after.trim().split_once('m')?;
    let seconds = seconds.trim().strip_suffix('s')?.parse::<f64>().ok()?;
    Some(minutes.trim().parse::<f64>().ok()? * 60.0 + seconds)
}

/// Microseconds of Duet's `duet: screen: switch to vm NAME took N us ...`
/// line in `output`.
pub fn switch_micros(output: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains("duet: screen: switch to vm "))?;
    let after = &line[line.find(" took ")? + " took ".len()..];
    after.split_once(" us")?.0.trim().parse().ok()
}

/// User plus system time, in clock ticks, from the text of
/// `/proc/<pid>/stat` (fields 14 and 15). The command name (field 2) sits in
/// parentheses and may itself hold spaces or parentheses, so the fields are
/// counted from the last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// One CPU's line of Duet's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuCounters {
    /// Times the CPU slept in WFI with nothing to run (each sleep ends in a
    /// wakeup).
    pub idle_sleeps: u64,
    /// Interrupts from Duet's own EL2 timer.
    pub timer_interrupts: u64,
}

/// One VM's line of Duet's counters (the parts the benchmarks use).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct VmCounters {
    pub name: String,
    /// Time its vCPUs spent in the guest, in seconds.
    pub guest_seconds: f64,
    /// Exits to Duet, all reasons together.
    pub exits: u64,
    /// Times a waiting vCPU was woken.
    pub wakeups: u64,
}

/// One CPU's residency line: since the VMs started, how long it was off
/// and in each of its idle states, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Residency {
    pub elapsed_ms: u64,
    pub off_ms: u64,
    pub offs: u64,
    /// By idle state, shallowest first.
    pub states_ms: Vec<u64>,
}

impl Residency {
    /// The share of the time from `earlier` to `self` spent off or in the
    /// deepest idle state, in percent.
    pub fn deepest_percent_since(&self, earlier: &Residency) -> f64 {
        let window = self.elapsed_ms.saturating_sub(earlier.elapsed_ms).max(1) as f64;
        let deepest = |r: &Residency| r.states_ms.last().copied().unwrap_or(0) + r.off_ms;
        100.0 * deepest(self).saturating_sub(deepest(earlier)) as f64 / window
    }

    /// The share of the time from `earlier` to `self` spent neither off
    /// nor in an idle state, in percent.
    pub fn busy_percent_since(&self, earlier: &Residency) -> f64 {
        let window = self.elapsed_ms.saturating_sub(earlier.elapsed_ms).max(1) as f64;
        let resting = |r: &Residency| r.states_ms.iter().sum::<u64>() + r.off_ms;
        let rested = resting(self).saturating_sub(resting(earlier)) as f64;
        (100.0 * (1.0 - rested / window)).max(0.0)
    }
}

/// Everything one `Ctrl-] s` printed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub vms: Vec<VmCounters>,
    /// Indexed by CPU number.
    pub cpus: Vec<CpuCounters>,
    /// Indexed by CPU number (empty before Duet printed residency lines).
    pub residency: Vec<Residency>,
    /// Each CPU's vCPUs (`personal/0 corporate/0`, or `nothing`).
    pub placed: Vec<String>,
    /// Each persona's estimated energy since the VMs started, in mJ.
    pub energy_mj: Vec<(String, f64)>,
    pub heap_used_kib: u64,
    pub heap_total_kib: u64,
}

impl Counters {
    /// Reads the counter lines in `text`; lines of other kinds (guest output
    /// in between) are skipped. Needs the heap line, which comes last.
    pub fn parse(text: &str) -> Option<Counters> {
        let mut counters = Counters::default();
        let mut heap = None;
        for line in text.lines() {
            let Some(line) = line.trim_end().strip_prefix("duet: ") else { continue };
            if let Some(vm) = vm_line(line) {
                counters.vms.push(vm);
            } else if let Some((cpu, values)) = cpu_line(line) {
                if counters.cpus.len() <= cpu {
                    counters.cpus.resize(cpu + 1, CpuCounters::default());
                }
                counters.cpus[cpu] = values;
            } else if let Some((cpu, vcpus)) = placed_line(line) {
                if counters.placed.len() <= cpu {
                    counters.placed.resize(cpu + 1, String::new());
                }
                counters.placed[cpu] = vcpus;
            } else if let Some(energy) = energy_line(line) {
                counters.energy_mj.push(energy);
            } else if let Some((cpu, values)) = residency_line(line) {
                if counters.residency.len() <= cpu {
                    counters.residency.resize(cpu + 1, Residency::default());
                }
                counters.residency[cpu] = values;
            } else if let Some(values) = heap_line(line) {
                heap = Some(values);
            }
        }
        (counters.heap_used_kib, counters.heap_total_kib) = heap?;
        Some(counters)
    }

    /// Each CPU's counts from `earlier` to `self`.
    pub fn cpus_since(&self, earlier: &Counters) -> Vec<CpuCounters> {
        self.cpus
            .iter()
            .enumerate()
            .map(|(cpu, now)| {
                let then = earlier.cpus.get(cpu).copied().unwrap_or_default();
                CpuCounters {
                    idle_sleeps: now.idle_sleeps.saturating_sub(then.idle_sleeps),
                    timer_interrupts: now.timer_interrupts.saturating_sub(then.timer_interrupts),
                }
            })
            .collect()
    }
}

/// `vm personal: guest time 2.500 s, exits call 0 mmio 2 ... fault 0, wakeups 1`
fn vm_line(line: &str) -> Option<VmCounters> {
    let (name, rest) = line.strip_prefix("vm ")?.split_once(": guest time ")?;
    let (seconds, rest) = rest.split_once(" s, exits ")?;
    let (exits, wakeups) = rest.split_once(", wakeups ")?;
    // Exits come as pairs of a reason and its count.
    let counts: Option<Vec<u64>> =
        exits.split_whitespace().skip(1).step_by(2).map(|n| n.parse().ok()).collect();
    Some(VmCounters {
        name: name.to_owned(),
        guest_seconds: seconds.parse().ok()?,
        exits: counts?.iter().sum(),
        wakeups: wakeups.trim().parse().ok()?,
    })
}

/// `cpu3: idle sleeps 17, Duet timer interrupts 2`
fn cpu_line(line: &str) -> Option<(usize, CpuCounters)> {
    let (cpu, rest) = line.strip_prefix("cpu")?.split_once(": idle sleeps ")?;
    let (sleeps, timer) = rest.split_once(", Duet timer interrupts ")?;
    let values = CpuCounters {
        idle_sleeps: sleeps.trim().parse().ok()?,
        timer_interrupts: timer.trim().parse().ok()?,
    };
    Some((cpu.parse().ok()?, values))
}

/// `cpu1: residency off=97.5% state0=0.1% offs=1 elapsed_ms=9000
/// off_ms=8775 state0_ms=9`
fn residency_line(line: &str) -> Option<(usize, Residency)> {
    let (cpu, rest) = line.strip_prefix("cpu")?.split_once(": residency ")?;
    let mut residency = Residency::default();
    for (key, value) in rest.split_whitespace().filter_map(|kv| kv.split_once('=')) {
        let number = || value.parse::<u64>().ok();
        match key {
            "elapsed_ms" => residency.elapsed_ms = number()?,
            "off_ms" => residency.off_ms = number()?,
            "offs" => residency.offs = number()?,
            state if state.starts_with("state") && state.ends_with("_ms") => {
                residency.states_ms.push(number()?)
            }
            _ => {}
        }
    }
    Some((cpu.parse().ok()?, residency))
}

/// `cpu0: placed personal/0 corporate/0`
fn placed_line(line: &str) -> Option<(usize, String)> {
    let (cpu, vcpus) = line.strip_prefix("cpu")?.split_once(": placed ")?;
    Some((cpu.parse().ok()?, vcpus.trim().to_owned()))
}

/// `energy persona=corporate cpu_ms=10695 wakeups=67 energy_mj=7152.729`
fn energy_line(line: &str) -> Option<(String, f64)> {
    let rest = line.strip_prefix("energy persona=")?;
    let (persona, rest) = rest.split_once(' ')?;
    let mj = rest.split_whitespace().find_map(|kv| kv.strip_prefix("energy_mj="))?;
    Some((persona.to_owned(), mj.parse().ok()?))
}

/// `heap 412 KiB in use of 32768 KiB`
fn heap_line(line: &str) -> Option<(u64, u64)> {
    let (used, total) = line.strip_prefix("heap ")?.split_once(" KiB in use of ")?;
    Some((used.trim().parse().ok()?, total.trim().strip_suffix(" KiB")?.trim().parse().ok()?))
}

/// The median of `samples` (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_latencies_are_read() {
        let line = "[personal] x\nduet: screen: switch to vm corporate took 6134 us \
                    (drawing 5000 us, flushing 1134 us)\n";
        assert_eq!(switch_micros(line), Some(6134.0));
        assert_eq!(switch_micros("duet: screen: unlocked into vm corporate\n"), None);
        assert_eq!(switch_micros("duet: screen: switch to vm a took many us\n"), None);
    }

    #[test]
    fn busybox_time_with_and_without_the_vm_tag() {
        let native = "/ # time sh -c 'true'\nreal\t0m 1.23s\nuser\t0m 1.00s\nsys\t0m 0.20s\n";
        assert_eq!(real_seconds(native), Some(1.23));
        let tagged = "[personal] real\t1m 2.50s\n[personal] user\t0m 0.00s\n";
        assert_eq!(real_seconds(tagged), Some(62.5));
        assert_eq!(real_seconds("[personal] real 0m 1.00s\n"), None);
        assert_eq!(real_seconds("real\t0m oops\n"), None);
    }

    #[test]
    fn proc_stat_cpu_time_counts_from_the_last_parenthesis() {
        let stat = "4242 (qemu-system-aar) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 5 0 100 1000 200 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        let odd_name = "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0";
        assert_eq!(stat_cpu_ticks(odd_name), Some(33));
        assert_eq!(stat_cpu_ticks("7 (short) S 1 2"), None);
    }

    #[test]
    fn counter_lines_with_guest_output_between() {
        let text = "duet: vm personal: guest time 12.345 s, exits call 1 mmio 20 sysreg 3 wfi 400 \
                    irq 50 fault 0, wakeups 399\n\
                    [corporate] something the guest printed\n\
                    duet: vm corporate: guest time 0.500 s, exits call 0 mmio 1 sysreg 0 wfi 2 \
                    irq 0 fault 0, wakeups 2\n\
                    duet: cpu0: idle sleeps 10, Duet timer interrupts 0\n\
                    duet: cpu1: idle sleeps 7, Duet timer interrupts 2\r\n\
                    duet: heap 412 KiB in use of 32768 KiB\n";
        let counters = Counters::parse(text).unwrap();
        assert_eq!(counters.vms.len(), 2);
        assert_eq!(counters.vms[0].name, "personal");
        assert_eq!(counters.vms[0].guest_seconds, 12.345);
        assert_eq!(counters.vms[0].exits, 474);
        assert_eq!(counters.vms[0].wakeups, 399);
        assert_eq!(counters.vms[1].exits, 3);
        assert_eq!(
            counters.cpus,
            [
                CpuCounters { idle_sleeps: 10, timer_interrupts: 0 },
                CpuCounters { idle_sleeps: 7, timer_interrupts: 2 }
            ]
        );
        assert_eq!((counters.heap_used_kib, counters.heap_total_kib), (412, 32768));
        // Without the heap line the block is not whole.
        assert_eq!(Counters::parse("duet: cpu0: idle sleeps 1, Duet timer interrupts 0\n"), None);
    }

    #[test]
    fn residency_lines_and_the_deepest_share_over_a_window() {
        let text = "duet: cpu1: residency off=50.0% state0=0.1% state1=20.0% offs=1 \
                    elapsed_ms=10000 off_ms=5000 state0_ms=10 state1_ms=2000\n\
                    duet: heap 1 KiB in use of 2 KiB\n";
        let before = Counters::parse(text).unwrap();
        let residency = &before.residency[1];
        assert_eq!(residency.states_ms, [10, 2000]);
        assert_eq!((residency.elapsed_ms, residency.off_ms, residency.offs), (10000, 5000, 1));
        // 10 s later: 8 s more off, 1 s more in state1: 90% deepest.
        let after =
            Residency { elapsed_ms: 20000, off_ms: 13000, offs: 2, states_ms: vec![10, 3000] };
        assert_eq!(after.deepest_percent_since(residency), 90.0);
        // 8 s off and 1 s in idle states of the 10: busy 10% of the time.
        assert!((after.busy_percent_since(residency) - 10.0).abs() < 1e-9);
        let text = "duet: cpu0: placed personal/0 corporate/0\n\
                    duet: cpu1: placed nothing\n\
                    duet: energy persona=corporate cpu_ms=10 wakeups=6 energy_mj=7152.729\n\
                    duet: heap 1 KiB in use of 2 KiB\n";
        let counters = Counters::parse(text).unwrap();
        assert_eq!(counters.placed, ["personal/0 corporate/0", "nothing"]);
        assert_eq!(counters.energy_mj, [("corporate".to_owned(), 7152.729)]);
    }

    #[test]
    fn counters_over_a_window() {
        let before = Counters {
            cpus: vec![CpuCounters { idle_sleeps: 10, timer_interrupts: 1 }],
            ..Counters::default()
        };
        let after = Counters {
            cpus: vec![
                CpuCounters { idle_sleeps: 25, timer_interrupts: 1 },
                CpuCounters { idle_sleeps: 4, timer_interrupts: 0 },
            ],
            ..Counters::default()
        };
        assert_eq!(
            after.cpus_since(&before),
            [
                CpuCounters { idle_sleeps: 15, timer_interrupts: 0 },
                CpuCounters { idle_sleeps: 4, timer_interrupts: 0 }
            ]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }
}
