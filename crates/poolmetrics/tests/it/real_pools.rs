//! Every poolside pool kind, registered and scraped: bufpool `Pool`, `BufPool` and
//! `BytesPool`, `WorkerPool`, connpool `Pool`, `ShardedPool` (per shard) and
//! `FailoverPool` (state, breaker counters, per backend). After a scripted workload
//! every exported value equals the pool's own snapshot.

use crate::service::Service;
use crate::support::{assert_scrape_equals_snapshot, sample, series};
use poolside_core::{Instrumented, Snapshot};
use poolside_metrics::PoolMetrics;
use std::time::Duration;

/// Snapshots of every pool of the service, taken once two in a row agree (worker
/// threads count a job just after its handle completes).
fn settled(pools: &[(&str, &dyn Instrumented)]) -> Vec<Snapshot> {
    let take = || pools.iter().map(|(_, p)| Snapshot::of(*p)).collect::<Vec<_>>();
    let mut last = take();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        let now = take();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the pools never settled");
}

#[test]
fn every_pool_kind_exports_exactly_its_own_stats() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let metrics = PoolMetrics::new();
    let service = runtime.block_on(async {
        let service = Service::start(&metrics).await.unwrap();
        for _ in 0..5 {
            service.exercise().await.unwrap();
        }
        service
    });
    let pools: [(&str, &dyn Instrumented); 7] = [
        ("objects", &*service.objects),
        ("buffers", &*service.buffers),
        ("bytes", &*service.bytes),
        ("jobs", &*service.jobs),
        ("orders-db", &*service.db),
        ("sessions", &*service.sessions),
        ("ledger", &*service.ledger),
    ];
    let before = settled(&pools);
    let text = metrics.render_prometheus();
    let after = settled(&pools);
    assert_eq!(before, after, "the pools changed during the scrape");
    for ((name, _), snapshot) in pools.iter().zip(&after) {
        assert_scrape_equals_snapshot(&text, name, snapshot);
    }

    // What each kind must show, by name.
    let all = series(&text);
    let has = |name: &str, pool: &str, label: (&str, &str)| {
        all.iter().any(|s| {
            s.name == name
                && s.labels["pool"] == pool
                && s.labels.get(label.0).map(String::as_str) == Some(label.1)
        })
    };
    for class in ["4KiB", "64KiB", "1MiB"] {
        assert!(has("poolside_bufpool_hits_total", "buffers", ("class", class)), "{class}");
    }
    assert!(has("poolside_bufpool_retained_bytes", "bytes", ("kind", "bufpool")));
    assert!(has("poolside_bufpool_misses_total", "objects", ("kind", "bufpool")));
    for shard in ["0", "1"] {
        assert!(has("poolside_connpool_open", "sessions", ("shard", shard)), "{shard}");
        assert!(has("poolside_connpool_acquires_total", "sessions", ("shard", shard)), "{shard}");
    }
    for backend in ["primary", "spare"] {
        assert!(
            has("poolside_connpool_failover_open", "ledger", ("backend", backend)),
            "{backend}"
        );
    }
    let ledger = [("pool", "ledger"), ("kind", "connpool_failover")];
    assert_eq!(sample(&text, "poolside_connpool_failover_state", &ledger), Some(0.0));
    assert_eq!(sample(&text, "poolside_connpool_failover_trips_total", &ledger), Some(0.0));
    assert_eq!(
        sample(&text, "poolside_connpool_failover_routed_primary_total", &ledger),
        Some(5.0)
    );

    // Timing histograms count what the pools counted.
    let jobs = [("pool", "jobs"), ("kind", "workerpool")];
    let completed = sample(&text, "poolside_workerpool_completed_total", &jobs).unwrap();
    assert_eq!(completed, 5.0);
    assert_eq!(sample(&text, "poolside_workerpool_job_run_seconds_count", &jobs), Some(completed));
    assert_eq!(
        sample(&text, "poolside_workerpool_queue_wait_seconds_count", &jobs),
        Some(completed)
    );
    let db = [("pool", "orders-db"), ("kind", "connpool")];
    let acquires = sample(&text, "poolside_connpool_acquires_total", &db).unwrap();
    assert_eq!(acquires, 5.0);
    assert_eq!(sample(&text, "poolside_connpool_acquire_wait_seconds_count", &db), Some(acquires));
    let dials = sample(&text, "poolside_connpool_dials_total", &db).unwrap();
    assert_eq!(sample(&text, "poolside_connpool_dial_seconds_count", &db), Some(dials));
    let sessions = [("pool", "sessions"), ("kind", "connpool")];
    assert_eq!(sample(&text, "poolside_connpool_acquire_wait_seconds_count", &sessions), Some(5.0));

    drop(service);
    assert_eq!(metrics.render_prometheus(), "", "dropped pools take their series along");
}
