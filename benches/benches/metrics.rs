//! What exporting a pool costs its hot path: a pool registered with `PoolMetrics`
//! (timing hook installed where the pool has timings, scraped every 10 ms by another
//! thread) against the pool unregistered, interleaved in the same run: rounds
//! `unregistered/<n>` and `poolside/registered/<n>` alternate, so drift of a busy
//! machine hits both alike.
//!
//! * `metrics_overhead_bufpool/<impl>/<round>`: `Pool<Vec<u8>>` get + put; the same
//!   pool, registered and scraped only during the `registered` rounds.
//! * `metrics_overhead_connpool/<impl>/<round>`: connpool get + drop, pre-warmed, no-op
//!   manager, on a current-thread runtime; the registered pool records an acquire-wait
//!   histogram sample on every get.
//! * `metrics_timing_hook/<impl>`: one timing event, zero and 37 µs long, through a
//!   `PoolMetrics` hook against `Events::none()` (what a pool without a hook pays).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_bufpool::Pool;
use poolside_connpool::{Builder, Manager};
use poolside_core::{Events, Timing};
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

/// Interleaved rounds of each variant.
fn rounds() -> usize {
    poolside_benches::full_or_quick(3, 2)
}

fn bufpool(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_overhead_bufpool");
    group.throughput(Throughput::Elements(1));
    // The same pool in both variants: the difference is what registration and
    // scraping cost, not where two pools sit in the thread cache.
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(256)));
    let metrics = PoolMetrics::new();
    for round in 1..=rounds() {
        group.bench_with_input(BenchmarkId::new("unregistered", round), &pool, |b, pool| {
            b.iter(|| black_box(pool.get().capacity()))
        });
        let registration = metrics.register("bench", &pool).unwrap();
        let scraper = Scraper::start(metrics.clone());
        group.bench_with_input(BenchmarkId::new("poolside/registered", round), &pool, |b, pool| {
            b.iter(|| black_box(pool.get().capacity()))
        });
        drop(scraper);
        drop(registration);
    }
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
    let metrics = PoolMetrics::new();
    let exported = Arc::new(runtime.block_on(async {
        Builder::new()
            .max_size(4)
            .events(metrics.timing_hook("bench").unwrap())
            .build(Noop)
            .unwrap()
    }));
    let _registration = metrics.register("bench", &exported).unwrap();
    run(&plain); // pre-warm both
    run(&exported);
    for round in 1..=rounds() {
        group.bench_with_input(BenchmarkId::new("unregistered", round), &plain, |b, pool| {
            b.iter(|| run(pool))
        });
        let scraper = Scraper::start(metrics.clone());
        group.bench_with_input(
            BenchmarkId::new("poolside/registered", round),
            &exported,
            |b, pool| b.iter(|| run(pool)),
        );
        drop(scraper);
    }
    group.finish();
}

fn timing_hook(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_timing_hook");
    group.throughput(Throughput::Elements(1));
    let metrics = PoolMetrics::new();
    let hooked = metrics.timing_hook("bench").unwrap();
    let none = Events::none();
    let wait = Duration::from_micros(37);
    group.bench_function("no-hook", |b| {
        b.iter(|| black_box(&none).record(Timing::AcquireWait, black_box(Duration::ZERO)))
    });
    group.bench_function("poolside/zero", |b| {
        b.iter(|| black_box(&hooked).record(Timing::AcquireWait, black_box(Duration::ZERO)))
    });
    group.bench_function("poolside/37us", |b| {
        b.iter(|| black_box(&hooked).record(Timing::AcquireWait, black_box(wait)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = bufpool, connpool, timing_hook
}
criterion_main!(benches);
