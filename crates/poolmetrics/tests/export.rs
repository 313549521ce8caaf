//! End-to-end: pools registered, scraped over loopback HTTP with a real client, the
//! exposition parsed, values compared with the pools' own statistics.

mod support;

use poolside_core::{Snapshot, Timing};
use poolside_metrics::{MetricsError, PoolMetrics};
use std::sync::Arc;
use std::time::Duration;
use support::{ScriptedPool, http_get, sample, scripted_workload};

#[test]
fn scraped_counters_and_gauges_equal_the_pools_own_stats() {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("orders", &pool).unwrap();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    scripted_workload(&pool);

    let (status, content_type, text) = http_get(&format!("http://{}/metrics", server.local_addr()));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");

    let own = Snapshot::of(&*pool);
    let labels = [("pool", "orders"), ("kind", "scripted")];
    assert_eq!(
        sample(&text, "poolside_scripted_acquires", &labels),
        own.value("acquires").map(|v| v as f64)
    );
    assert_eq!(sample(&text, "poolside_scripted_in_use", &labels), Some(3.0));
    assert_eq!(own.value("in_use"), Some(3));
    for (class, expected) in [("small", 5.0), ("large", 2.0)] {
        let labels = [("pool", "orders"), ("kind", "scripted"), ("class", class)];
        assert_eq!(sample(&text, "poolside_scripted_retained", &labels), Some(expected), "{class}");
    }
    assert!(text.contains("# HELP poolside_scripted_acquires Successful acquisitions."), "{text}");
    assert!(text.contains("# TYPE poolside_scripted_acquires counter"));
    assert!(text.contains("# TYPE poolside_scripted_in_use gauge"));

    // The next scrape sees new activity: collection happens on scrape.
    pool.acquire();
    let (_, _, text) = http_get(&format!("http://{}/metrics", server.local_addr()));
    assert_eq!(sample(&text, "poolside_scripted_acquires", &labels), Some(11.0));
    assert_eq!(sample(&text, "poolside_scripted_in_use", &labels), Some(4.0));
}

#[test]
fn two_pools_of_one_kind_share_families_with_one_header_each() {
    let metrics = PoolMetrics::new();
    let (a, b) = (Arc::new(ScriptedPool::default()), Arc::new(ScriptedPool::default()));
    let _ra = metrics.register("a", &a).unwrap();
    let _rb = metrics.register("b", &b).unwrap();
    a.acquire();
    scripted_workload(&b);
    let text = metrics.render_prometheus();
    assert_eq!(text.matches("# TYPE poolside_scripted_acquires counter").count(), 1, "{text}");
    assert_eq!(
        sample(&text, "poolside_scripted_acquires", &[("pool", "a"), ("kind", "scripted")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "poolside_scripted_acquires", &[("pool", "b"), ("kind", "scripted")]),
        Some(10.0)
    );
}

#[test]
fn timings_become_histograms_with_exact_counts() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("scripted", "timed").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("timed", &pool).unwrap();
    for ms in [1, 2, 3, 4] {
        events.record(Timing::AcquireWait, Duration::from_millis(ms));
    }
    events.record(Timing::JobRun, Duration::from_secs(2));
    let text = metrics.render_prometheus();
    let labels = r#"{pool="timed",kind="scripted"}"#;
    assert!(
        text.contains(&format!("poolside_scripted_acquire_wait_seconds_count{labels} 4")),
        "{text}"
    );
    assert!(
        text.contains(&format!("poolside_scripted_acquire_wait_seconds_sum{labels} 0.01")),
        "{text}"
    );
    assert!(text.contains(&format!("poolside_scripted_job_run_seconds_count{labels} 1")));
    assert!(text.contains("# TYPE poolside_scripted_acquire_wait_seconds histogram"));
    // Bucket boundaries: 1 ms and 2 ms fall at or below le="0.0025"; 3 and 4 ms do not.
    assert!(
        text.contains(r#"poolside_scripted_acquire_wait_seconds_bucket{pool="timed",kind="scripted",le="0.0025"} 2"#),
        "{text}"
    );
}

#[test]
fn deregistering_or_dropping_a_pool_removes_all_its_series() {
    let metrics = PoolMetrics::new();
    let kept = Arc::new(ScriptedPool::default());
    let _kept_registration = metrics.register("kept", &kept).unwrap();

    let gone = Arc::new(ScriptedPool::default());
    let events = metrics.timing_hook("scripted", "gone").unwrap();
    let registration = metrics.register("gone", &gone).unwrap();
    events.record(Timing::Dial, Duration::from_millis(5));
    assert!(metrics.render_prometheus().contains(r#"pool="gone""#));
    registration.deregister();
    let text = metrics.render_prometheus();
    assert!(!text.contains(r#"pool="gone""#), "deregistered series remain:\n{text}");
    assert!(text.contains(r#"pool="kept""#));

    let dropped = Arc::new(ScriptedPool::default());
    let registration = metrics.register("dropped", &dropped).unwrap();
    assert_eq!(metrics.len(), 2);
    drop(dropped);
    let text = metrics.render_prometheus();
    assert!(!text.contains(r#"pool="dropped""#), "a dropped pool's series remain:\n{text}");
    assert_eq!(metrics.len(), 1);
    drop(registration); // after the pool: harmless
    assert_eq!(metrics.len(), 1);
}

#[test]
fn names_are_unique_per_kind_and_cardinality_is_bounded() {
    let metrics = PoolMetrics::builder().max_pools(2).build().unwrap();
    let a = Arc::new(ScriptedPool::default());
    let first = metrics.register("same", &a).unwrap();
    let b = Arc::new(ScriptedPool::default());
    let err = metrics.register("same", &b).unwrap_err();
    assert!(matches!(err, MetricsError::DuplicatePool { kind: "scripted", .. }), "{err}");
    assert_eq!(err.to_string(), r#"a scripted named "same" is already registered"#);

    let _second = metrics.register("other", &b).unwrap();
    let c = Arc::new(ScriptedPool::default());
    let err = metrics.register("third", &c).unwrap_err();
    assert!(matches!(err, MetricsError::TooManyPools { limit: 2 }), "{err}");
    assert!(matches!(
        metrics.timing_hook("scripted", "fourth"),
        Err(MetricsError::TooManyPools { .. })
    ));

    // A freed slot and a freed name can be used again.
    drop(first);
    let _again = metrics.register("same", &c).unwrap();

    for bad in ["", "with space", "{}"] {
        assert!(
            matches!(metrics.register(bad, &a), Err(MetricsError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        PoolMetrics::builder().max_pools(0).build(),
        Err(MetricsError::InvalidConfig(_))
    ));
}

#[test]
fn json_snapshot_lists_every_pool_with_its_values() {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("jsonpool", &pool).unwrap();
    scripted_workload(&pool);
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let (status, content_type, body) =
        http_get(&format!("http://{}/debug/vars", server.local_addr()));
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pools = json["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["name"], "jsonpool");
    assert_eq!(pools[0]["kind"], "scripted");
    let metrics_json = pools[0]["metrics"].as_array().unwrap();
    let find = |name: &str, class: Option<&str>| {
        metrics_json
            .iter()
            .find(|m| m["name"] == name && class.is_none_or(|c| m["labels"]["class"] == c))
            .map(|m| m["value"].as_u64().unwrap())
    };
    assert_eq!(find("acquires", None), Some(10));
    assert_eq!(find("in_use", None), Some(3));
    assert_eq!(find("retained", Some("large")), Some(2));
    assert_eq!(metrics_json[0]["kind"], "gauge");
}

#[test]
fn unknown_paths_and_methods_get_clear_statuses() {
    let metrics = PoolMetrics::new();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let (status, _, _) = http_get(&format!("http://{}/nope", server.local_addr()));
    assert_eq!(status, 404);
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response =
        agent.post(&format!("http://{}/metrics", server.local_addr())).send("x").unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let (status, _, body) = http_get(&format!("http://{}/", server.local_addr()));
    assert_eq!(status, 200);
    assert!(body.contains("/metrics"));
}

#[test]
fn bad_listen_addresses_give_clear_errors() {
    let metrics = PoolMetrics::new();
    let err = metrics.serve("not an address").unwrap_err();
    assert!(matches!(err, MetricsError::InvalidAddress { .. }), "{err}");
    assert!(err.to_string().starts_with(r#"invalid listen address "not an address""#), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = metrics.serve(&addr).unwrap_err();
    assert!(matches!(err, MetricsError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn the_server_stops_when_dropped() {
    let metrics = PoolMetrics::new();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    drop(server);
    // The listener is closed: the port refuses connections (or is rebindable).
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    std::net::TcpListener::bind(addr).expect("the port is free again");
}
