//! The exposition is valid text format 0.0.4 whatever the pools report: checked by a
//! strict line-by-line reader of the format (names, label syntax and escapes, values,
//! one HELP and TYPE per family, families contiguous, histograms whole), over many
//! pools with every kind of odd name and label value the registry accepts. The JSON
//! snapshot of the same pools parses back to the same strings.

use crate::support::{ScriptedPool, scripted_workload};
use poolside_core::{Instrumented, Metric, MetricDesc, MetricVisitor, Timing};
use poolside_metrics::{MetricsError, PoolMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// One sample as the strict reader saw it: name, unescaped labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_' | ':'))
        && chars.all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':'))
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_'))
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        // Rust also reads `inf` and `nan`, which the format does not have.
        v if v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            v.parse().map_err(|_| format!("bad value {v:?}"))
        }
        v => Err(format!("bad value {v:?}")),
    }
}

/// `{a="x",b="y\"z"}` (after the name) into unescaped pairs, and what follows it.
/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

fn parse_labels(mut rest: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) =
            rest.split_once("=\"").ok_or_else(|| format!("no label in {rest:?}"))?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated label value in {after:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {after:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Reads `text` strictly as the text format 0.0.4 with this crate's rules on top
/// (a TYPE for every family, histograms whole); returns every sample.
fn strict_parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition does not end with a line feed".into());
    }
    let mut helps = BTreeSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    let mut series = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_metric_name(name) || !helps.insert(name.to_owned()) {
                return Err(format!("bad or repeated HELP: {line:?}"));
            }
            let mut chars = help.chars();
            while let Some(c) = chars.next() {
                if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                    return Err(format!("bad escape in HELP: {line:?}"));
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| format!("{line:?}"))?;
            if !is_metric_name(name)
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                || types.insert(name.to_owned(), kind.to_owned()).is_some()
            {
                return Err(format!("bad or repeated TYPE: {line:?}"));
            }
            if let Some((previous, _)) = current.replace((name.to_owned(), kind.to_owned())) {
                finished.insert(previous);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| format!("no value: {line:?}"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(rest) => parse_labels(rest)?,
            None => (Vec::new(), &line[name_end..]),
        };
        let value = rest.strip_prefix(' ').ok_or_else(|| format!("no value: {line:?}"))?;
        let value = parse_value(value.split(' ').next().unwrap_or_default())?;
        let Some((family, kind)) = &current else {
            return Err(format!("a sample before any TYPE: {line:?}"));
        };
        let suffix = name.strip_prefix(family.as_str());
        let ok = match kind.as_str() {
            "histogram" => matches!(suffix, Some("_bucket" | "_sum" | "_count")),
            _ => suffix == Some(""),
        };
        if !ok || finished.contains(name) {
            return Err(format!("{name} outside its family {family} (or split): {line:?}"));
        }
        let map: BTreeMap<String, String> = labels.iter().cloned().collect();
        if map.len() != labels.len() {
            return Err(format!("a repeated label name: {line:?}"));
        }
        if !series.insert((name.to_owned(), map.clone())) {
            return Err(format!("a repeated series: {line:?}"));
        }
        samples.push(Sample { name: name.to_owned(), labels: map, value });
    }
    for (family, kind) in &types {
        if kind == "counter" && !family.ends_with("_total") {
            return Err(format!("counter {family} does not end in _total"));
        }
        if kind != "histogram" {
            continue;
        }
        // Per series (labels without `le`): cumulative buckets ending in +Inf = _count,
        // and a _sum.
        let mut per_series: BTreeMap<Labels, Vec<&Sample>> = BTreeMap::new();
        let in_family = |s: &&Sample| {
            s.name
                .strip_prefix(family.as_str())
                .is_some_and(|x| ["_bucket", "_sum", "_count"].contains(&x))
        };
        for s in samples.iter().filter(in_family) {
            let key = s.labels.iter().filter(|(k, _)| *k != "le");
            per_series
                .entry(key.map(|(k, v)| (k.clone(), v.clone())).collect())
                .or_default()
                .push(s);
        }
        for (key, lines) in per_series {
            let of = |suffix: &'static str| {
                let name = format!("{family}{suffix}");
                lines.iter().filter(move |s| s.name == name).copied()
            };
            let buckets: Vec<(f64, f64)> = of("_bucket")
                .map(|s| (parse_value(&s.labels["le"]).unwrap_or(f64::NAN), s.value))
                .collect();
            let count = of("_count").map(|s| s.value).collect::<Vec<_>>();
            if buckets.windows(2).any(|w| !(w[0].0 < w[1].0 && w[0].1 <= w[1].1))
                || buckets.last().map(|b| b.0) != Some(f64::INFINITY)
                || count != [buckets.last().map_or(f64::NAN, |b| b.1)]
                || of("_sum").count() != 1
            {
                return Err(format!("histogram {family}{key:?} is not whole: {buckets:?}"));
            }
        }
    }
    Ok(samples)
}

static LEVEL: MetricDesc =
    MetricDesc::gauge("level", "A level: backslash \\ line\nfeed \"quoted\" é ✓.");
static EVENTS: MetricDesc = MetricDesc::counter("events", "Events.");
static ODD_CATALOGUE: [&MetricDesc; 2] = [&LEVEL, &EVENTS];

/// Every label value a pool may report, odd ones included.
const ODD_VALUES: [&str; 9] =
    ["plain", "", "quote\"d", "back\\slash", "line\nfeed", "\\n", "é ✓ 漢", "tab\tcr\r", "\"\\\n"];

/// A pool of kind `odd` with the catalogue above (and a dial timing), whose report
/// is `report`: [`odd_values`] or [`sloppy_values`].
struct Odd {
    report: fn(&mut dyn MetricVisitor),
}

impl Instrumented for Odd {
    fn kind(&self) -> &'static str {
        "odd"
    }
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &ODD_CATALOGUE
    }
    fn timings(&self) -> &'static [Timing] {
        &[Timing::Dial]
    }
    fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
        (self.report)(v);
    }
}

/// `level` once per odd label value, and labels that are not exported.
fn odd_values(v: &mut dyn MetricVisitor) {
    for (i, value) in ODD_VALUES.iter().enumerate() {
        v.visit(Metric { desc: &LEVEL, labels: &[("class", value)], value: i as u64 });
    }
    // Labels that are not exported: not snake case, or reserved.
    let hidden = [("Class", "x"), ("bad-key", "x"), ("pool", "evil"), ("kind", "evil")];
    v.visit(Metric { desc: &EVENTS, labels: &hidden, value: 7 });
    v.visit(Metric { desc: &EVENTS, labels: &[("le", "1"), ("shard", "0")], value: 8 });
}

#[test]
fn every_scrape_is_valid_text_format_with_odd_names_and_label_values() {
    let metrics = PoolMetrics::builder().max_pools(64).build().unwrap();
    // Every character a pool name may hold, at every length up to the bound.
    let names: Vec<String> =
        ["a", "0", "-", ".", ":", "/", "_", "a.b-c:d/e_f", "UPPER", "::", ".."]
            .iter()
            .map(|s| s.to_string())
            .chain([1, 63, 64].map(|n| "x".repeat(n)))
            .collect();
    let (mut registrations, mut hooks, mut odds, mut scripteds) = (vec![], vec![], vec![], vec![]);
    for name in &names {
        let events = metrics.timing_hook(name).unwrap();
        events.record(Timing::Dial, Duration::from_micros(30));
        events.record(Timing::AcquireWait, Duration::from_secs(100));
        let odd = Arc::new(Odd { report: odd_values });
        let scripted = Arc::new(ScriptedPool::default());
        scripted_workload(&scripted);
        registrations.push(metrics.register(name, &odd).unwrap());
        // The same name under another kind: both exported, told apart by `kind`.
        registrations.push(metrics.register(name, &scripted).unwrap());
        hooks.push(events);
        odds.push(odd);
        scripteds.push(scripted);
    }
    // Names that cannot be label values are typed errors, never panics.
    let long = "y".repeat(65);
    for bad in ["", " ", "a b", "é", "a\"b", "a\\b", "a\nb", "a{b}", "a,b", "a=b", "\0", &long] {
        assert!(
            matches!(
                metrics.register(bad, &Arc::new(Odd { report: odd_values })),
                Err(MetricsError::InvalidName { .. })
            ),
            "{bad:?}"
        );
        assert!(matches!(metrics.timing_hook(bad), Err(MetricsError::InvalidName { .. })));
    }

    let text = metrics.render_prometheus();
    let samples = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid");
    assert!(
        text.contains(
            "# HELP poolside_odd_level A level: backslash \\\\ line\\nfeed \"quoted\" é ✓.\n"
        ),
        "{text}"
    );
    for name in &names {
        // Each odd label value comes back unescaped, exactly.
        for (i, value) in ODD_VALUES.iter().enumerate() {
            let found = samples.iter().find(|s| {
                s.name == "poolside_odd_level"
                    && s.labels.get("pool") == Some(name)
                    && s.labels.get("class").map(String::as_str) == Some(*value)
            });
            assert_eq!(found.map(|s| s.value), Some(i as f64), "{name} {value:?}");
        }
        let events: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "poolside_odd_events_total" && s.labels["pool"] == *name)
            .collect();
        let label_sets: Vec<Vec<&str>> =
            events.iter().map(|s| s.labels.keys().map(String::as_str).collect()).collect();
        assert_eq!(label_sets, [vec!["kind", "pool"], vec!["kind", "pool", "shard"]]);
        assert!(events.iter().all(|s| s.labels["kind"] == "odd"), "reserved labels kept ours");
        // The declared dial histogram, and the acquire-wait one that has samples.
        for timing in ["dial", "acquire_wait"] {
            let count = samples.iter().find(|s| {
                s.name == format!("poolside_odd_{timing}_seconds_count")
                    && s.labels["pool"] == *name
            });
            assert_eq!(count.map(|s| s.value), Some(1.0), "{name} {timing}");
        }
    }
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, text.lines().filter(|l| l.starts_with("# HELP ")).count());
    assert_eq!(text, metrics.render_prometheus(), "two scrapes of idle pools are identical");

    // The JSON snapshot of the same pools parses back to the same strings.
    let json: serde_json::Value = serde_json::from_str(&metrics.snapshot_json()).unwrap();
    let pools = json["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2 * names.len());
    for (pool, name) in pools.iter().step_by(2).zip(&names) {
        assert_eq!(pool["name"], name.as_str());
        let classes: Vec<&str> = pool["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["labels"]["class"].as_str())
            .collect();
        assert_eq!(classes, ODD_VALUES);
        assert_eq!(pool["metrics"][0]["help"], LEVEL.help);
    }
    drop(registrations);
    assert_eq!(metrics.render_prometheus(), "");
}

static UNDECLARED_NAME: MetricDesc = MetricDesc::gauge("not declared-x", "Never declared.");
static UNDECLARED_SUFFIX: MetricDesc = MetricDesc::gauge("dial_seconds_bucket", "Never declared.");
static UNDECLARED_TOTAL: MetricDesc = MetricDesc::gauge("level_total", "Never declared.");
static UNDECLARED_KIND: MetricDesc = MetricDesc::counter("level", "Declared as a gauge.");

/// Values missing from the catalogue (whose names were never checked) and values with
/// a label name given twice.
fn sloppy_values(v: &mut dyn MetricVisitor) {
    v.visit(Metric { desc: &UNDECLARED_NAME, labels: &[], value: 1 });
    v.visit(Metric { desc: &UNDECLARED_SUFFIX, labels: &[], value: 2 });
    v.visit(Metric { desc: &UNDECLARED_TOTAL, labels: &[], value: 3 });
    v.visit(Metric { desc: &UNDECLARED_KIND, labels: &[], value: 4 });
    v.visit(Metric {
        desc: &LEVEL,
        labels: &[("shard", "1"), ("class", "a"), ("shard", "2")],
        value: 5,
    });
    v.visit(Metric { desc: &EVENTS, labels: &[("class", "b"), ("class", "b")], value: 6 });
}

#[test]
fn undeclared_metrics_and_repeated_label_names_are_left_out_of_the_exposition() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("sloppy").unwrap();
    let pool = Arc::new(Odd { report: sloppy_values });
    let _registration = metrics.register("sloppy", &pool).unwrap();
    events.record(Timing::Dial, Duration::from_millis(1));
    let text = metrics.render_prometheus();
    let samples = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    type Plain<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);
    let plain: Vec<Plain<'_>> = samples
        .iter()
        .filter(|s| !s.name.starts_with("poolside_odd_dial_seconds"))
        .map(|s| {
            let labels = s
                .labels
                .iter()
                .filter(|(k, _)| !["pool", "kind"].contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            (s.name.as_str(), labels, s.value)
        })
        .collect();
    // Only declared families; a label name given twice keeps its first value.
    assert_eq!(
        plain,
        [
            ("poolside_odd_events_total", vec![("class", "b")], 6.0),
            ("poolside_odd_level", vec![("class", "a"), ("shard", "1")], 5.0),
        ],
        "{text}"
    );
    let histogram = samples.iter().filter(|s| s.name.starts_with("poolside_odd_dial_seconds"));
    assert_eq!(histogram.count(), poolside_metrics::DEFAULT_BUCKETS.len() + 3, "{text}");
}

#[test]
fn the_strict_reader_rejects_what_the_format_forbids() {
    let header = "# HELP a_total A.\n# TYPE a_total counter\n";
    let valid = format!("{header}a_total{{pool=\"p\",x=\"q\\\"\\\\\\n\"}} 1\n");
    let samples = strict_parse(&valid).unwrap();
    assert_eq!(samples[0].labels["x"], "q\"\\\n");
    for bad in [
        format!("{header}a_total{{pool=\"p\",pool=\"q\"}} 1\n"),
        format!("{header}a_total{{pool=\"p\"}} 1\na_total{{pool=\"p\"}} 2\n"),
        format!("{header}a_total{{bad-name=\"p\"}} 1\n"),
        format!("{header}a_total{{x=\"\\t\"}} 1\n"),
        format!("{header}a_total{{x=\"open}} 1\n"),
        format!("{header}a_total 1 \n# HELP a_total again\n"),
        format!("{header}a_total inf\n"),
        format!("{header}a_total{{x=\"y\"}}1\n"),
        format!("{header}b 1\n"),
        "# HELP bad-name x\n".to_owned(),
        "# HELP a Bad \\t escape.\n# TYPE a gauge\n".to_owned(),
        "# HELP a_total A.\n# TYPE a_total gauge\n# TYPE a_total gauge\n".to_owned(),
        "# HELP a A.\n# TYPE a counter\na 1\n".to_owned(),
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
            .to_owned(),
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n".to_owned(),
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n".to_owned(),
        "# TYPE g gauge\ng 1\n# TYPE h gauge\nh 1\ng 2\n".to_owned(),
        "# TYPE g gauge\ng 1".to_owned(),
    ] {
        assert!(strict_parse(&bad).is_err(), "accepted: {bad:?}");
    }
}
