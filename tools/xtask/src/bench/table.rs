//! The results of one `cargo xtask bench`: rows of figures (native, under
//! Duet, their ratio and its target), rendered as the table the command
//! prints, as a Markdown table for the report, and as JSON. Rows are plain
//! data, so later scenarios (microbenchmarks inside a guest) add rows without
//! touching the rendering.

use serde::Serialize;

/// What a row's figures count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Wall-clock or guest seconds.
    Seconds,
    /// Host CPU seconds (user + system).
    CpuSeconds,
    /// Events.
    Count,
    /// Kibibytes.
    Kib,
    /// Instructions executed (with QEMU's icount).
    Instructions,
    /// Nanoseconds of the guest's counter.
    Nanoseconds,
    /// Microseconds of Duet's counter.
    Microseconds,
    /// A percentage.
    Percent,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Seconds | Unit::CpuSeconds => format!("{value:.2} s"),
            Unit::Count => format!("{value:.0}"),
            Unit::Kib => format!("{value:.0} KiB"),
            Unit::Instructions => format!("{value:.0}"),
            Unit::Nanoseconds => format!("{value:.0} ns"),
            Unit::Microseconds => format!("{value:.0} us"),
            Unit::Percent => format!("{value:.1} %"),
        }
    }
}

/// One figure, measured natively and/or under Duet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// A stable key for scripts, e.g. `boot.init`.
    pub id: String,
    /// What the row measures, in words.
    pub scenario: String,
    pub unit: Unit,
    /// The figure without Duet (a median where there are several samples).
    pub native: Option<f64>,
    /// The figure under Duet.
    pub duet: Option<f64>,
    /// `duet / native`, where both exist.
    pub ratio: Option<f64>,
    /// The ratio this figure should stay at or under.
    pub target: Option<f64>,
    /// Every sample behind `native` and `duet`.
    pub native_samples: Vec<f64>,
    pub duet_samples: Vec<f64>,
}

impl Row {
    /// A row compared with the native baseline: medians of the samples and
    /// their ratio.
    pub fn compared(
        id: &str,
        scenario: &str,
        unit: Unit,
        native_samples: Vec<f64>,
        duet_samples: Vec<f64>,
        target: Option<f64>,
    ) -> Row {
        let native = super::parse::median(&native_samples);
        let duet = super::parse::median(&duet_samples);
        let ratio = match (native, duet) {
            (Some(n), Some(d)) if n > 0.0 => Some(d / n),
            _ => None,
        };
        Row {
            id: id.into(),
            scenario: scenario.into(),
            unit,
            native,
            duet,
            ratio,
            target,
            native_samples,
            duet_samples,
        }
    }

    /// A figure that exists only under Duet.
    pub fn duet_only(id: &str, scenario: &str, unit: Unit, value: f64) -> Row {
        Row::compared(id, scenario, unit, Vec::new(), vec![value], None)
    }

    /// Whether the ratio meets its target (None without both).
    pub fn met(&self) -> Option<bool> {
        Some(self.ratio? <= self.target?)
    }

    /// The row's five cells: scenario, native, under Duet, ratio, target.
    fn cells(&self) -> [String; 5] {
        let value = |v: Option<f64>| v.map(|v| self.unit.format(v)).unwrap_or_else(|| "-".into());
        let target = match (self.target, self.met()) {
            (Some(t), Some(true)) => format!("<= {t:.2} met"),
            (Some(t), Some(false)) => format!("<= {t:.2} MISSED"),
            (Some(t), None) => format!("<= {t:.2}"),
            (None, _) => "-".into(),
        };
        [
            self.scenario.clone(),
            value(self.native),
            value(self.duet),
            self.ratio.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into()),
            target,
        ]
    }
}

/// How far apart the samples are: (max - min) / min; 0 for fewer than two.
pub fn relative_spread(samples: &[f64]) -> f64 {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if samples.len() < 2 || min <= 0.0 {
        return 0.0;
    }
    (max - min) / min
}

const HEADERS: [&str; 5] = ["scenario", "native", "under Duet", "ratio", "target"];

/// The rows as an aligned plain-text table.
pub fn plain(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Text left, figures right.
            if column == 0 {
                out += &format!("{cell:<width$}");
            } else {
                out += &format!("  {cell:>width$}");
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(HEADERS);
    out += &line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for row in &cells {
        out += &line(row.each_ref().map(String::as_str));
    }
    out
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    out += "| --- | ---: | ---: | ---: | --- |\n";
    for row in rows {
        out += &format!("| {} |\n", row.cells().join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row::compared(
                "boot.init",
                "boot to init",
                Unit::Seconds,
                vec![10.0, 12.0, 11.0],
                vec![11.0, 11.5, 13.0],
                Some(1.05),
            ),
            Row::duet_only("size.text", "text", Unit::Kib, 96.0),
            Row::compared("x", "over", Unit::Count, vec![2.0], vec![4.0], Some(1.1)),
        ]
    }

    #[test]
    fn ratios_are_of_medians() {
        let row = &rows()[0];
        assert_eq!((row.native, row.duet), (Some(11.0), Some(11.5)));
        assert!((row.ratio.unwrap() - 11.5 / 11.0).abs() < 1e-12);
        assert_eq!(row.met(), Some(true));
        assert_eq!(rows()[1].ratio, None);
        assert_eq!(rows()[2].met(), Some(false));
    }

    #[test]
    fn spreads() {
        assert_eq!(relative_spread(&[100.0, 100.0]), 0.0);
        assert!((relative_spread(&[100.0, 103.0]) - 0.03).abs() < 1e-12);
        assert_eq!(relative_spread(&[5.0]), 0.0);
    }

    #[test]
    fn the_plain_table_lines_up() {
        let table = plain(&rows());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "scenario       native  under Duet  ratio          target");
        assert_eq!(lines[1], "------------  -------  ----------  -----  --------------");
        assert_eq!(lines[2], "boot to init  11.00 s     11.50 s  1.045     <= 1.05 met");
        assert_eq!(lines[3], "text                -      96 KiB      -               -");
        assert_eq!(lines[4], "over                2           4  2.000  <= 1.10 MISSED");
    }

    #[test]
    fn the_markdown_table_has_a_row_per_figure() {
        let table = markdown(&rows());
        assert!(table.starts_with("| scenario | native | under Duet | ratio | target |\n"));
        assert!(table.contains("| boot to init | 11.00 s | 11.50 s | 1.045 | <= 1.05 met |\n"));
        assert_eq!(table.lines().count(), 5);
    }

    #[test]
    fn rows_serialise_with_their_samples() {
        let json = serde_json::to_value(&rows()[0]).unwrap();
        assert_eq!(json["id"], "boot.init");
        assert_eq!(json["unit"], "seconds");
        assert_eq!(json["native_samples"], serde_json::json!([10.0, 12.0, 11.0]));
        assert_eq!(json["target"], 1.05);
    }
}
