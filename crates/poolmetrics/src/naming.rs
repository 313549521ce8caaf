//! Series names and pool-name validation.

use crate::MetricsError;

/// The longest pool name accepted as a label value.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// `poolside_<kind>_<metric>`, the name of one exported series.
pub(crate) fn series_name(kind: &str, metric: &str) -> String {
    format!("poolside_{kind}_{metric}")
}

/// `poolside_<kind>_<timing>_seconds`, the name of one timing histogram.
pub(crate) fn histogram_name(kind: &str, timing: &str) -> String {
    format!("poolside_{kind}_{timing}_seconds")
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
    fn names_follow_the_prefix_convention() {
        assert_eq!(series_name("connpool", "in_use"), "poolside_connpool_in_use");
        assert_eq!(
            histogram_name("connpool", "acquire_wait"),
            "poolside_connpool_acquire_wait_seconds"
        );
    }

    #[test]
    fn pool_names_are_validated() {
        assert!(validate_pool_name("primary-db/eu:1.a_b").is_ok());
        for bad in ["", "has space", "quote\"", "é", &"x".repeat(65)] {
            let err = validate_pool_name(bad).unwrap_err();
            assert!(matches!(err, MetricsError::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("invalid pool name"));
        }
    }
}
