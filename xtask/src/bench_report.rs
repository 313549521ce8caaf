//! Reading criterion's JSON estimates and turning them into the ratio table:
//! per scenario, ours and each peer, with the ratio ours/peer of median times.
//!
//! Convention (see `benches/src/lib.rs`): one criterion group per scenario, function
//! ids starting with `poolside` are ours, anything else is a peer.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One measured benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) function: String,
    pub(crate) median_ns: f64,
    /// Elements or bytes processed per iteration, when the bench declared it.
    pub(crate) throughput: Option<Throughput>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Throughput {
    Elements(f64),
    Bytes(f64),
}

impl Measurement {
    pub(crate) fn is_ours(&self) -> bool {
        self.function.starts_with("poolside")
    }

    /// Elements (or bytes) per second at the median.
    fn rate(&self) -> Option<f64> {
        let seconds = self.median_ns * 1e-9;
        match self.throughput? {
            Throughput::Elements(n) | Throughput::Bytes(n) => Some(n / seconds),
        }
    }

    fn rate_text(&self) -> String {
        match (self.throughput, self.rate()) {
            (Some(Throughput::Elements(_)), Some(r)) => format!("{} ops/s", si(r)),
            (Some(Throughput::Bytes(_)), Some(r)) => format!("{}B/s", si(r)),
            _ => String::from("-"),
        }
    }
}

/// A scenario: criterion group plus parameter, with every implementation measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scenario {
    pub(crate) measurements: Vec<Measurement>,
}

/// Scenarios keyed by (group, parameter).
pub(crate) type Report = BTreeMap<(String, String), Scenario>;

/// Reads every benchmark under `criterion_dir` whose estimates were written at or
/// after `since` (so one run's report never mixes in stale results).
pub(crate) fn collect(criterion_dir: &Path, since: SystemTime) -> Result<Report, String> {
    let mut report = Report::new();
    let mut files = Vec::new();
    find_benchmark_files(criterion_dir, &mut files);
    for benchmark_file in files {
        let new_dir = benchmark_file.parent().unwrap_or(criterion_dir);
        let estimates_file = new_dir.join("estimates.json");
        let fresh = std::fs::metadata(&estimates_file)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        if !fresh {
            continue;
        }
        let benchmark = read_json(&benchmark_file)?;
        let estimates = read_json(&estimates_file)?;
        let group = benchmark["group_id"].as_str().unwrap_or_default().to_owned();
        let function = benchmark["function_id"].as_str().unwrap_or("default").to_owned();
        let value = benchmark["value_str"].as_str().unwrap_or_default().to_owned();
        let Some(median_ns) = estimates["median"]["point_estimate"].as_f64() else {
            return Err(format!("{}: no median estimate", estimates_file.display()));
        };
        let throughput = match &benchmark["throughput"] {
            Value::Object(map) => map.iter().find_map(|(kind, n)| {
                let n = n.as_f64()?;
                match kind.as_str() {
                    "Bytes" | "BytesDecimal" => Some(Throughput::Bytes(n)),
                    "Elements" | "Bits" => Some(Throughput::Elements(n)),
                    _ => None,
                }
            }),
            _ => None,
        };
        report.entry((group, value)).or_default().measurements.push(Measurement {
            function,
            median_ns,
            throughput,
        });
    }
    for scenario in report.values_mut() {
        // Ours first, then peers alphabetically.
        scenario
            .measurements
            .sort_by(|a, b| (!a.is_ours(), &a.function).cmp(&(!b.is_ours(), &b.function)));
    }
    Ok(report)
}

fn find_benchmark_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // `base` and `change` hold older runs; only `new` is this run.
            if path.file_name().is_some_and(|n| n == "base" || n == "change" || n == "report") {
                continue;
            }
            find_benchmark_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "benchmark.json")
            && path.parent().and_then(Path::file_name).is_some_and(|n| n == "new")
        {
            out.push(path);
        }
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// `ours/peer` ratios of median time for one peer (ours < 1.0 means ours is faster).
fn ratios(scenario: &Scenario, peer: &Measurement) -> String {
    if peer.is_ours() {
        return String::from("(ours)");
    }
    let ours: Vec<String> = scenario
        .measurements
        .iter()
        .filter(|m| m.is_ours())
        .map(|m| {
            let ratio = m.median_ns / peer.median_ns;
            let who = m.function.trim_start_matches("poolside").trim_start_matches('/');
            let who = if who.is_empty() { "poolside" } else { who };
            format!("{who} {ratio:.2}x")
        })
        .collect();
    if ours.is_empty() { String::from("no ours in this scenario") } else { ours.join(", ") }
}

fn scenario_name(group: &str, value: &str) -> String {
    if value.is_empty() { group.to_owned() } else { format!("{group} [{value}]") }
}

/// A plain-text table for the terminal.
pub(crate) fn terminal_table(report: &Report) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "scenario".into(),
        "implementation".into(),
        "median".into(),
        "throughput".into(),
        "ours/peer (time; <1 = ours faster)".into(),
    ]];
    for ((group, value), scenario) in report {
        for m in &scenario.measurements {
            rows.push([
                scenario_name(group, value),
                m.function.clone(),
                duration(m.median_ns),
                m.rate_text(),
                ratios(scenario, m),
            ]);
        }
    }
    let widths: Vec<usize> =
        (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 8));
        }
    }
    out
}

/// Writes `report.md` and one SVG chart per scenario group into `dir`; returns the
/// markdown file's path. `origin` says which command and machine produced the numbers.
pub(crate) fn write(
    report: &Report,
    extra: &[String],
    dir: &Path,
    origin: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut md = String::from("# poolside benchmark report\n\n");
    let _ = writeln!(
        md,
        "{origin}. Median time per iteration; `ours/peer` < 1 means poolside is faster.\n"
    );
    md.push_str("| scenario | implementation | median | throughput | ours/peer |\n|---|---|---:|---:|---|\n");
    for ((group, value), scenario) in report {
        for m in &scenario.measurements {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                scenario_name(group, value),
                m.function,
                duration(m.median_ns),
                m.rate_text(),
                ratios(scenario, m)
            );
        }
    }
    let mut groups: BTreeMap<&str, Vec<(&str, &Scenario)>> = BTreeMap::new();
    for ((group, value), scenario) in report {
        groups.entry(group).or_default().push((value, scenario));
    }
    md.push_str("\n## Charts\n\n");
    for (group, scenarios) in &groups {
        let file = format!("{group}.svg");
        std::fs::write(dir.join(&file), svg_chart(group, scenarios))
            .map_err(|e| format!("writing {file}: {e}"))?;
        let _ = writeln!(md, "![{group}]({file})\n");
    }
    for fragment in extra {
        md.push('\n');
        md.push_str(fragment);
        md.push('\n');
    }
    let path = dir.join("report.md");
    std::fs::write(&path, md).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// A horizontal bar chart: one bar per implementation and parameter, length
/// proportional to throughput (or to 1/time when no throughput was declared).
fn svg_chart(group: &str, scenarios: &[(&str, &Scenario)]) -> String {
    let bars: Vec<(String, f64, bool, String)> = scenarios
        .iter()
        .flat_map(|(value, scenario)| {
            scenario.measurements.iter().map(move |m| {
                let label = if value.is_empty() {
                    m.function.clone()
                } else {
                    format!("{} [{value}]", m.function)
                };
                let score = m.rate().unwrap_or(1e9 / m.median_ns);
                let text = match m.rate() {
                    Some(_) => m.rate_text(),
                    None => duration(m.median_ns),
                };
                (label, score, m.is_ours(), text)
            })
        })
        .collect();
    let max = bars.iter().map(|b| b.1).fold(f64::MIN_POSITIVE, f64::max);
    let (label_w, bar_w, row_h) = (300.0, 420.0, 22.0);
    let height = 40.0 + row_h * bars.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{} (longer is better)</text>\n",
        label_w + bar_w + 140.0,
        escape(group)
    );
    for (i, (label, score, ours, text)) in bars.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let w = (score / max * bar_w).max(1.0);
        let color = if *ours { "#1f77b4" } else { "#aaaaaa" };
        let _ = writeln!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            escape(label),
            row_h - 6.0,
            label_w + w + 6.0,
            y + 14.0,
            escape(text)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn duration(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn si(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2} G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.2} k", value / 1e3)
    } else {
        format!("{value:.1} ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(function: &str, median_ns: f64) -> Measurement {
        Measurement {
            function: function.into(),
            median_ns,
            throughput: Some(Throughput::Elements(1.0)),
        }
    }

    #[test]
    fn ratio_is_ours_over_peer() {
        let scenario =
            Scenario { measurements: vec![m("poolside/Pool", 5.0), m("object-pool", 20.0)] };
        assert_eq!(ratios(&scenario, &scenario.measurements[1]), "Pool 0.25x");
        assert_eq!(ratios(&scenario, &scenario.measurements[0]), "(ours)");
    }

    #[test]
    fn collects_fresh_criterion_output() {
        let dir = std::env::temp_dir().join(format!("xtask-report-test-{}", std::process::id()));
        let since = SystemTime::now() - std::time::Duration::from_secs(1);
        for (function, median) in [("poolside_x", 10.0), ("peer", 40.0)] {
            let new = dir.join("grp").join(function).join("8").join("new");
            std::fs::create_dir_all(&new).unwrap();
            let id = function.replace('_', "/");
            std::fs::write(
                new.join("benchmark.json"),
                format!(r#"{{"group_id":"grp","function_id":"{id}","value_str":"8","throughput":{{"Elements":100}}}}"#),
            )
            .unwrap();
            std::fs::write(
                new.join("estimates.json"),
                format!(r#"{{"median":{{"point_estimate":{median}}}}}"#),
            )
            .unwrap();
        }
        let report = collect(&dir, since).unwrap();
        let scenario = &report[&("grp".to_owned(), "8".to_owned())];
        assert_eq!(scenario.measurements.len(), 2);
        assert!(scenario.measurements[0].is_ours(), "ours sort first");
        let table = terminal_table(&report);
        assert!(table.contains("x 0.25x"), "{table}");
        let out = dir.join("out");
        let md = write(&report, &["### extra\n".into()], &out, "Test run").unwrap();
        let md = std::fs::read_to_string(md).unwrap();
        assert!(md.contains("| grp [8] | peer |") && md.contains("### extra"));
        assert!(std::fs::read_to_string(out.join("grp.svg")).unwrap().starts_with("<svg"));
        let later = collect(&dir, SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
        assert!(later.is_empty(), "stale results are ignored");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
