//! The bench guest's output: one line per figure, machine-readable, and the
//! parser the host uses to read them back. Every line starts with `bench: `.
//!
//! - `bench: platform counter_hz=<n> gic=<v2|v3|none> uart=<pl011|ns16550> conduit=<hvc|smc> cpus=<n> virtio_mmio=<yes|no>`
//! - `bench: <figure> ticks_per_op=<a.bb> total_ticks=<n> iterations=<n>`
//! - `bench: <figure> absent (<why>)`
//! - `bench: done`

use core::fmt;

/// The prefix of every line the guest prints.
pub const PREFIX: &str = "bench: ";
/// The last line of a complete run.
pub const DONE: &str = "bench: done";

/// The figures the guest measures, in the order it prints them.
pub const NAMES: [&str; 7] = [
    "hvc_null",
    "mmio_gicd_typer",
    "mmio_virtio_magic",
    "ipi_one_way",
    "ipi_round_trip",
    "timer_busy",
    "timer_wfi",
];

/// One measured figure: counter ticks over some iterations of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure<'a> {
    pub name: &'a str,
    pub total_ticks: u64,
    pub iterations: u64,
}

impl Figure<'_> {
    /// Ticks per operation, in hundredths (integer arithmetic: the guest
    /// has no floating point).
    pub fn centiticks_per_op(&self) -> u64 {
        (self.total_ticks * 100).checked_div(self.iterations).unwrap_or(0)
    }

    /// Ticks per operation.
    pub fn ticks_per_op(&self) -> f64 {
        self.total_ticks as f64 / self.iterations.max(1) as f64
    }
}

impl fmt::Display for Figure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let centi = self.centiticks_per_op();
        write!(
            f,
            "{PREFIX}{} ticks_per_op={}.{:02} total_ticks={} iterations={}",
            self.name,
            centi / 100,
            centi % 100,
            self.total_ticks,
            self.iterations
        )
    }
}

/// What one line of the guest's output says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The counter's frequency and what the guest found.
    Platform {
        counter_hz: u64,
    },
    Figure(Figure<'a>),
    /// A figure the platform cannot give (no GIC, one CPU, no virtio-mmio).
    Absent {
        name: &'a str,
    },
    Done,
}

/// Reads one line of the guest's output; None for any other line. Text
/// before `bench: ` (a hypervisor's `[vm] ` tag) is ignored.
pub fn parse(line: &str) -> Option<Line<'_>> {
    let line = line.trim_end();
    let rest = &line[line.find(PREFIX)? + PREFIX.len()..];
    if rest == "done" {
        return Some(Line::Done);
    }
    let (name, fields) = rest.split_once(' ')?;
    if fields.starts_with("absent") {
        return Some(Line::Absent { name });
    }
    let field = |key: &str| {
        fields.split(' ').find_map(|f| f.strip_prefix(key)?.strip_prefix('=')?.parse::<u64>().ok())
    };
    if name == "platform" {
        return Some(Line::Platform { counter_hz: field("counter_hz")? });
    }
    Some(Line::Figure(Figure {
        name,
        total_ticks: field("total_ticks")?,
        iterations: field("iterations")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_and_parse_back() {
        let figure = Figure { name: "hvc_null", total_ticks: 123_456, iterations: 1000 };
        let line = figure.to_string();
        assert_eq!(line, "bench: hvc_null ticks_per_op=123.45 total_ticks=123456 iterations=1000");
        assert_eq!(parse(&line), Some(Line::Figure(figure)));
        assert_eq!(parse(&format!("[bench] {line}\r")), Some(Line::Figure(figure)));
        assert_eq!(figure.ticks_per_op(), 123.456);
    }

    #[test]
    fn other_lines() {
        assert_eq!(
            parse("bench: platform counter_hz=62500000 gic=v3 uart=pl011 conduit=hvc cpus=2"),
            Some(Line::Platform { counter_hz: 62_500_000 })
        );
        assert_eq!(
            parse("bench: mmio_virtio_magic absent (no virtio-mmio node)"),
            Some(Line::Absent { name: "mmio_virtio_magic" })
        );
        assert_eq!(parse("bench: done"), Some(Line::Done));
        assert_eq!(parse("duet: vm bench powered off"), None);
        assert_eq!(parse("bench: hvc_null ticks_per_op=1.00"), None);
        assert_eq!(parse("bench: platform gic=v3"), None);
    }

    #[test]
    fn no_iterations_is_no_division() {
        let figure = Figure { name: "ipi", total_ticks: 5, iterations: 0 };
        assert_eq!(figure.centiticks_per_op(), 0);
        assert!(figure.to_string().contains("ticks_per_op=0.00"));
    }
}
