//! What exporting a pool costs its hot path: the same pool registered with
//! `PoolMetrics` (timing hook installed, scraped every 10 ms by another thread) against
//! the pool unregistered, in the same run.
//!
//! * `metrics_overhead_bufpool/<impl>`: `Pool<Vec<u8>>` get + put.
//! * `metrics_overhead_connpool/<impl>`: connpool get + release, pre-warmed, no-op
//!   manager, on a current-thread runtime; the registered pool records an
//!   acquire-wait histogram sample on every get.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use poolside_bufpool::Pool;
use poolside_connpool::{Builder, Manager};
use poolside_metrics::PoolMetrics;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

struct Noop;

impl Manager for Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(7)
    }
    async fn check(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Scrapes `metrics` every 10 ms until dropped, like a busy Prometheus.
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    fn start(metrics: PoolMetrics) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                black_box(metrics.render_prometheus());
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Scraper { stop, thread: Some(thread) }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bufpool(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_overhead_bufpool");
    group.throughput(Throughput::Elements(1));
    // The same pool, first unregistered, then registered and scraped: the difference
    // is what registration costs, not where two pools sit in the thread cache.
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(256)));
    group.bench_function("unregistered", |b| b.iter(|| black_box(pool.get().capacity())));

    let metrics = PoolMetrics::new();
    let _registration = metrics.register("bench", &pool).unwrap();
    let _scraper = Scraper::start(metrics.clone());
    group.bench_function("poolside/registered", |b| b.iter(|| black_box(pool.get().capacity())));
    group.finish();
}

fn connpool(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_overhead_connpool");
    const GETS: u64 = 1000;
    group.throughput(Throughput::Elements(GETS));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let run = |pool: &poolside_connpool::Pool<Noop>| {
        runtime.block_on(async {
            for _ in 0..GETS {
                black_box(*pool.get().await.unwrap());
            }
        })
    };

    let plain = runtime.block_on(async { Builder::new().max_size(4).build(Noop).unwrap() });
    run(&plain); // pre-warm
    group.bench_function("unregistered", |b| b.iter(|| run(&plain)));

    let metrics = PoolMetrics::new();
    let exported = Arc::new(runtime.block_on(async {
        Builder::new()
            .max_size(4)
            .events(metrics.timing_hook("bench").unwrap())
            .build(Noop)
            .unwrap()
    }));
    let _registration = metrics.register("bench", &exported).unwrap();
    run(&exported);
    let _scraper = Scraper::start(metrics.clone());
    group.bench_function("poolside/registered", |b| b.iter(|| run(&exported)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = bufpool, connpool
}
criterion_main!(benches);
