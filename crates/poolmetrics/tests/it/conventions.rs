//! The whole exposition of a service with every pool kind, checked against the rules
//! of `promtool check metrics` (Prometheus' metric linter) and the text format:
//! one HELP and one TYPE per family, counters end in `_total`, durations in
//! `_seconds`, sizes in `_bytes`, no non-base units, no type names in metric names,
//! histogram suffixes only on histograms, no family both counter and gauge, lower
//! snake case names, `pool` and `kind` on every series. The linter itself is tested
//! on expositions that break each rule.

use crate::service;

use poolside_metrics::PoolMetrics;
use std::collections::{BTreeMap, BTreeSet};

/// Non-base units and abbreviations that promtool's linter rejects.
const NON_BASE_UNITS: [&str; 22] = [
    "nanoseconds",
    "microseconds",
    "milliseconds",
    "minutes",
    "hours",
    "days",
    "ns",
    "us",
    "ms",
    "sec",
    "secs",
    "mins",
    "kilobytes",
    "megabytes",
    "gigabytes",
    "kb",
    "mb",
    "gb",
    "kib",
    "mib",
    "bits",
    "percent",
];

fn is_snake_case(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Every rule violation in `text`, as readable messages.
fn lint(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).is_err() {
        problems.push("not a valid exposition".to_owned());
    }
    let mut helps: BTreeMap<String, usize> = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<(String, String)> = None; // family, type
    let mut histogram_buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut histogram_counts: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            *helps.entry(name.to_owned()).or_default() += 1;
            if help.trim().is_empty() {
                problems.push(format!("{name}: empty HELP"));
            }
            if types.contains_key(name) {
                problems.push(format!("{name}: HELP after TYPE"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                problems.push(format!("{name}: TYPE declared twice"));
            }
            if helps.get(name) != Some(&1) {
                problems.push(format!("{name}: needs exactly one HELP before its TYPE"));
            }
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((family, kind)) = &current else {
            problems.push(format!("sample before any TYPE: {line}"));
            continue;
        };
        let (series, value) = line.rsplit_once(' ').unwrap_or((line, ""));
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels: Vec<(&str, &str)> = labels
            .trim_end_matches('}')
            .split(',')
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once('='))
            .collect();
        let suffix = name.strip_prefix(family.as_str());
        let allowed = match kind.as_str() {
            "histogram" => matches!(suffix, Some("_bucket" | "_sum" | "_count")),
            _ => suffix == Some(""),
        };
        if !allowed {
            problems.push(format!("{name}: sample outside its family {family}"));
        }
        let keys: BTreeSet<&str> = labels.iter().map(|(k, _)| *k).collect();
        if keys.len() != labels.len() {
            problems.push(format!("{series}: repeated label"));
        }
        for key in ["pool", "kind"] {
            if !keys.contains(key) {
                problems.push(format!("{series}: no {key} label"));
            }
        }
        if keys.iter().any(|k| !is_snake_case(k)) {
            problems.push(format!("{series}: label name not snake case"));
        }
        let is_bucket = kind == "histogram" && suffix == Some("_bucket");
        if keys.contains("le") != is_bucket {
            problems.push(format!("{series}: `le` belongs on histogram buckets only"));
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        if kind == "histogram" {
            let pool: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let key = format!("{family}{{{}}}", pool.join(","));
            match suffix {
                Some("_bucket") => {
                    let le =
                        labels.iter().find(|(k, _)| *k == "le").map(|(_, v)| v.trim_matches('"'));
                    histogram_buckets
                        .entry(key)
                        .or_default()
                        .push((le.unwrap_or("").to_owned(), value));
                }
                Some("_count") => {
                    histogram_counts.insert(key, value);
                }
                _ => {}
            }
        }
    }
    for (family, kind) in &types {
        if !is_snake_case(family) {
            problems.push(format!("{family}: not lower snake case"));
        }
        let words: Vec<&str> = family.split('_').collect();
        match kind.as_str() {
            "counter" if !family.ends_with("_total") => {
                problems.push(format!("{family}: counter without _total"))
            }
            "counter" | "gauge" | "histogram" => {}
            other => problems.push(format!("{family}: unexpected type {other}")),
        }
        if kind != "counter" && family.ends_with("_total") {
            problems.push(format!("{family}: _total on a {kind}"));
        }
        if kind != "histogram" && ["_bucket", "_count", "_sum"].iter().any(|s| family.ends_with(s))
        {
            problems.push(format!("{family}: histogram suffix on a {kind}"));
        }
        if kind == "histogram" && !family.ends_with("_seconds") {
            problems.push(format!("{family}: timing histogram not in _seconds"));
        }
        if let Some(unit) = words.iter().find(|w| NON_BASE_UNITS.contains(w)) {
            problems.push(format!("{family}: non-base unit {unit}"));
        }
        for (unit, must_end) in [("seconds", "_seconds"), ("bytes", "_bytes")] {
            let base = family.strip_suffix("_total").unwrap_or(family);
            if words.contains(&unit) && !base.ends_with(must_end) {
                problems.push(format!("{family}: unit {unit} must be the suffix"));
            }
        }
        if words.iter().any(|w| ["gauge", "counter", "histogram", "summary"].contains(w)) {
            problems.push(format!("{family}: metric type in the name"));
        }
        if kind == "gauge" && types.get(&format!("{family}_total")).is_some_and(|k| k == "counter")
        {
            problems.push(format!("{family}: both a gauge and a counter ({family}_total)"));
        }
    }
    for (name, count) in &helps {
        if !types.contains_key(name) {
            problems.push(format!("{name}: HELP without TYPE"));
        }
        if *count > 1 {
            problems.push(format!("{name}: HELP given {count} times"));
        }
    }
    for (series, buckets) in &histogram_buckets {
        if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
            problems.push(format!("{series}: buckets not cumulative"));
        }
        match buckets.last() {
            Some((le, n)) if le == "+Inf" && Some(n) == histogram_counts.get(series) => {}
            _ => problems.push(format!("{series}: +Inf bucket missing or not equal to _count")),
        }
    }
    problems
}

#[test]
fn the_whole_exposition_follows_the_conventions() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = PoolMetrics::new();
    let service = runtime.block_on(async {
        let service = service::Service::start(&metrics).await.unwrap();
        for _ in 0..3 {
            service.exercise().await.unwrap();
        }
        service
    });
    let text = metrics.render_prometheus();
    let problems = lint(&text);
    assert!(problems.is_empty(), "{problems:#?}\n{text}");
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert!(families > 60, "every pool kind is in the scrape: {families} families");
    assert!(
        text.contains(" histogram\n") && text.contains(" counter\n") && text.contains(" gauge\n")
    );
    drop(service);
}

#[test]
fn the_linter_catches_every_rule() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{pool=\"p\",kind=\"k\"} 1\n";
    assert_eq!(lint(ok), Vec::<String>::new());
    let broken = [
        ("# HELP a A.\n# TYPE a counter\na{pool=\"p\",kind=\"k\"} 1\n", "counter without _total"),
        (
            "# HELP a_total A.\n# TYPE a_total gauge\na_total{pool=\"p\",kind=\"k\"} 1\n",
            "_total on a gauge",
        ),
        (
            "# HELP a_total A.\n# HELP a_total A.\n# TYPE a_total counter\na_total{pool=\"p\",kind=\"k\"} 1\n",
            "HELP given 2 times",
        ),
        (
            "# HELP a_total A.\n# TYPE a_total counter\na_total{pool=\"p\",kind=\"k\"} 1\n# HELP a_total A.\n# TYPE a_total counter\n",
            "TYPE declared twice",
        ),
        ("# HELP a_ms A.\n# TYPE a_ms gauge\na_ms{pool=\"p\",kind=\"k\"} 1\n", "non-base unit"),
        (
            "# HELP a_bytes_used A.\n# TYPE a_bytes_used gauge\na_bytes_used{pool=\"p\",kind=\"k\"} 1\n",
            "must be the suffix",
        ),
        (
            "# HELP a_count A.\n# TYPE a_count gauge\na_count{pool=\"p\",kind=\"k\"} 1\n",
            "histogram suffix",
        ),
        ("# HELP a A.\n# TYPE a gauge\na{pool=\"p\"} 1\n", "no kind label"),
        ("# HELP aB A.\n# TYPE aB gauge\naB{pool=\"p\",kind=\"k\"} 1\n", "snake case"),
        (
            "# HELP x A.\n# TYPE x gauge\nx{pool=\"p\",kind=\"k\"} 1\n# HELP x_total A.\n# TYPE x_total counter\nx_total{pool=\"p\",kind=\"k\"} 1\n",
            "both a gauge and a counter",
        ),
        (
            "# HELP w_seconds W.\n# TYPE w_seconds histogram\nw_seconds_bucket{pool=\"p\",kind=\"k\",le=\"1\"} 2\nw_seconds_bucket{pool=\"p\",kind=\"k\",le=\"+Inf\"} 1\nw_seconds_sum{pool=\"p\",kind=\"k\"} 1\nw_seconds_count{pool=\"p\",kind=\"k\"} 1\n",
            "buckets not cumulative",
        ),
        (
            "# HELP g_gauge G.\n# TYPE g_gauge gauge\ng_gauge{pool=\"p\",kind=\"k\"} 1\n",
            "metric type in the name",
        ),
    ];
    for (text, expected) in broken {
        let problems = lint(text);
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:?}");
    }
}
