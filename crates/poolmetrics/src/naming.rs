//! Family names, label syntax and pool-name validation.
//!
//! Conventions (those of Prometheus and `promtool check metrics`): every family is
//! `poolside_<kind>_<metric>`; counters end in `_total`; timing histograms end in
//! `_seconds`; sizes already end in `_bytes` where pools declare them.

use crate::MetricsError;
use poolside_core::{Label, MetricDesc, MetricKind, Timing};

/// The longest pool name accepted as a label value.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// The family a pool's metric is exported as: `poolside_<kind>_<metric>`, plus
/// `_total` for counters.
pub(crate) fn family_name(kind: &str, desc: &MetricDesc) -> String {
    match desc.kind {
        MetricKind::Counter if !desc.name.ends_with("_total") => {
            format!("poolside_{kind}_{}_total", desc.name)
        }
        _ => format!("poolside_{kind}_{}", desc.name),
    }
}

/// `poolside_<kind>_<timing>_seconds`, the family of one timing histogram.
pub(crate) fn histogram_name(kind: &str, timing: Timing) -> String {
    format!("poolside_{kind}_{}_seconds", timing.name())
}

/// Whether `part` may appear in a metric or label name: `[a-z_][a-z0-9_]*` (lower
/// snake case, no colons: those are for recording rules).
pub(crate) fn is_snake_case(part: &str) -> bool {
    let mut bytes = part.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Whether a label a pool reports is exported: lower snake case, and not one of the
/// labels every series carries already (`pool`, `kind`) or `le`, reserved for
/// histogram buckets.
pub(crate) fn is_exported_label(key: &str) -> bool {
    is_snake_case(key) && !["pool", "kind", "le"].contains(&key)
}

/// The labels of one reported value that are exported, in the pool's order: those
/// [`is_exported_label`] accepts, each key once (the first value reported for it), since
/// a series with a repeated label name is not a valid exposition.
pub(crate) fn exported_labels<'a>(
    labels: &'a [Label<'a>],
) -> impl Iterator<Item = &'a Label<'a>> + 'a {
    labels.iter().enumerate().filter_map(move |(i, label)| {
        let repeated = labels[..i].iter().any(|(earlier, _)| *earlier == label.0);
        (is_exported_label(label.0) && !repeated).then_some(label)
    })
}

/// Checks a pool's kind and catalogue before it is exported, so every family it can
/// produce is a valid, conventional name.
pub(crate) fn validate_catalogue(
    kind: &'static str,
    catalogue: &[&'static MetricDesc],
) -> Result<(), MetricsError> {
    let invalid = |metric: &'static str, reason: &'static str| MetricsError::InvalidMetric {
        kind,
        metric,
        reason,
    };
    if !is_snake_case(kind) {
        return Err(invalid("", "the pool kind is not lower snake case"));
    }
    for desc in catalogue {
        if !is_snake_case(desc.name) {
            return Err(invalid(desc.name, "the metric name is not lower snake case"));
        }
        if desc.kind == MetricKind::Gauge && desc.name.ends_with("_total") {
            return Err(invalid(desc.name, "a gauge must not end in _total"));
        }
        if ["_bucket", "_count", "_sum"].iter().any(|s| desc.name.ends_with(s)) {
            return Err(invalid(desc.name, "_bucket, _count and _sum are reserved for histograms"));
        }
    }
    Ok(())
}

/// Pool names become label values and JSON keys: keep them short and printable so a
/// typo or a per-request name cannot blow up cardinality or break a dashboard.
pub(crate) fn validate_pool_name(name: &str) -> Result<(), MetricsError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 64 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
    {
        Some("only ASCII letters, digits and _ - . : / are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MetricsError::InvalidName { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        static DIALS: MetricDesc = MetricDesc::counter("dials", "Dials.");
        static SENT: MetricDesc = MetricDesc::counter("sent_total", "Sent.");
        static OPEN: MetricDesc = MetricDesc::gauge("open", "Open.");
        assert_eq!(family_name("connpool", &DIALS), "poolside_connpool_dials_total");
        assert_eq!(family_name("connpool", &SENT), "poolside_connpool_sent_total");
        assert_eq!(family_name("connpool", &OPEN), "poolside_connpool_open");
        assert_eq!(
            histogram_name("connpool", Timing::AcquireWait),
            "poolside_connpool_acquire_wait_seconds"
        );
    }

    #[test]
    fn catalogues_are_checked() {
        static OK: MetricDesc = MetricDesc::gauge("retained_bytes", "Bytes.");
        static GAUGE_TOTAL: MetricDesc = MetricDesc::gauge("x_total", "X.");
        static CAMEL: MetricDesc = MetricDesc::counter("inUse", "X.");
        static COUNT: MetricDesc = MetricDesc::gauge("jobs_count", "X.");
        assert!(validate_catalogue("bufpool", &[&OK]).is_ok());
        for bad in [&GAUGE_TOTAL, &CAMEL, &COUNT] {
            let err = validate_catalogue("bufpool", &[bad]).unwrap_err();
            assert!(matches!(err, MetricsError::InvalidMetric { .. }), "{err}");
        }
        assert!(validate_catalogue("Buf Pool", &[]).is_err());
        assert!(!is_snake_case(""));
        assert!(!is_snake_case("9lives"));
    }

    #[test]
    fn pool_names_are_validated() {
        assert!(validate_pool_name("primary-db/eu:1.a_b").is_ok());
        for bad in ["", "has space", "quote\"", "é", &"x".repeat(65)] {
            let err = validate_pool_name(bad).unwrap_err();
            assert!(matches!(err, MetricsError::InvalidName { .. }), "{err}");
            assert!(err.to_string().contains("invalid pool name"));
        }
    }
}
