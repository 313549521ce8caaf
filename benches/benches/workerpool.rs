//! poolside-workerpool against threadpool, rayon, rusty_pool and tokio's blocking pool.
//!
//! * `workerpool_noop_jobs/<impl>/<workers>`: one thread submits N no-op jobs
//!   (1,000,000; 100,000 with --quick), timed until every job has run. Besides the
//!   default pool (`poolside/WorkerPool`, 2 searching workers),
//!   `poolside/WorkerPool-search<n>` runs it with `max_searching_workers(n)` for n = 1
//!   and all workers.
//! * `workerpool_submitters/<impl>/<submitters>`: 4 or 16 threads submit N jobs in
//!   all to a 2-worker pool.
//! * `workerpool_spawn_join/<impl>`: one job spawned and its result joined, one at a
//!   time (round-trip latency); p50 / p99 written as an extra table.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::{full_or_quick, thread_counts, write_extra_report};
use poolside_workerpool::WorkerPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Jobs run so far; every implementation's job bumps it, so all do the same work.
static DONE: AtomicUsize = AtomicUsize::new(0);

fn job() {
    DONE.fetch_add(1, Ordering::Relaxed);
}

/// Waits (yielding) until `target` jobs have run.
fn wait_for(target: usize) {
    while DONE.load(Ordering::Acquire) < target {
        std::thread::yield_now();
    }
}

fn jobs_per_iteration() -> usize {
    full_or_quick(1_000_000, 100_000)
}

/// Worker counts for the one-submitter scenario: 2 and 16 (capped like the scaling
/// tables, so a 2-core run does 2 only unless POOLSIDE_BENCH_MAX_THREADS allows more).
fn worker_counts() -> Vec<usize> {
    let max = thread_counts().into_iter().max().unwrap_or(2);
    [2, 16].into_iter().filter(|&w| w <= max.max(2)).collect()
}

/// The reference point of ANCHORS.md: the smallest correct pool on a crossbeam
/// bounded(1024) channel, with no shutdown deadline, stats, cancellation or handles.
struct MinimalPool {
    sender: Option<crossbeam_channel::Sender<Box<dyn FnOnce() + Send>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MinimalPool {
    fn new(workers: usize) -> Self {
        let (sender, receiver) = crossbeam_channel::bounded::<Box<dyn FnOnce() + Send>>(1024);
        let threads = (0..workers)
            .map(|_| {
                let receiver = receiver.clone();
                std::thread::spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        job();
                    }
                })
            })
            .collect();
        MinimalPool { sender: Some(sender), threads }
    }

    fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(sender) = &self.sender {
            sender.send(Box::new(job)).expect("workers outlive the pool handle");
        }
    }
}

impl Drop for MinimalPool {
    fn drop(&mut self) {
        drop(self.sender.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs `iters` rounds of `n` jobs submitted by `submit`, timing until all have run.
fn timed_rounds(
    iters: u64,
    n: usize,
    mut submit: impl FnMut(),
    mut finish: impl FnMut(usize),
) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        let target = DONE.load(Ordering::Relaxed) + n;
        for _ in 0..n {
            submit();
        }
        finish(target);
    }
    started.elapsed()
}

fn noop_jobs(c: &mut Criterion) {
    let n = jobs_per_iteration();
    let mut group = c.benchmark_group("workerpool_noop_jobs");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    for workers in worker_counts() {
        // (name suffix, searching workers); `None`: the default.
        let mut variants: Vec<(String, Option<usize>)> = vec![(String::new(), None)];
        let mut searching = vec![1, workers];
        searching.dedup();
        variants.extend(searching.into_iter().map(|n| (format!("-search{n}"), Some(n))));
        for (suffix, searching) in variants {
            let mut builder = WorkerPool::builder().workers(workers).queue_depth(1024);
            if let Some(searching) = searching {
                builder = builder.max_searching_workers(searching);
            }
            let name = format!("poolside/WorkerPool{suffix}");
            let pool = builder.build().unwrap();
            group.bench_function(BenchmarkId::new(name, workers), |b| {
                b.iter_custom(|iters| {
                    timed_rounds(iters, n, || pool.submit(|_| job()).unwrap(), wait_for)
                })
            });
            drop(pool);
        }

        let pool = threadpool::ThreadPool::new(workers);
        group.bench_function(BenchmarkId::new("threadpool", workers), |b| {
            b.iter_custom(|iters| timed_rounds(iters, n, || pool.execute(job), |_| pool.join()))
        });
        drop(pool);

        let pool = MinimalPool::new(workers);
        group.bench_function(BenchmarkId::new("crossbeam-minimal", workers), |b| {
            b.iter_custom(|iters| timed_rounds(iters, n, || pool.execute(job), wait_for))
        });
        drop(pool);

        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
        group.bench_function(BenchmarkId::new("rayon", workers), |b| {
            b.iter_custom(|iters| timed_rounds(iters, n, || pool.spawn(job), wait_for))
        });
        drop(pool);

        let pool = rusty_pool::Builder::new().core_size(workers).max_size(workers).build();
        group.bench_function(BenchmarkId::new("rusty_pool", workers), |b| {
            b.iter_custom(|iters| timed_rounds(iters, n, || pool.execute(job), |_| pool.join()))
        });
        drop(pool);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(workers)
            .build()
            .unwrap();
        group.bench_function(BenchmarkId::new("tokio-spawn_blocking", workers), |b| {
            b.iter_custom(|iters| {
                timed_rounds(
                    iters,
                    n,
                    || {
                        drop(runtime.spawn_blocking(job));
                    },
                    wait_for,
                )
            })
        });
        drop(runtime);
    }
    group.finish();
}

/// `iters` rounds in which `submitters` threads each call `submit` `per_thread` times,
/// each round ending with `finish(target)` once `target` jobs have run.
fn submitter_rounds(
    iters: u64,
    submitters: usize,
    per_thread: usize,
    submit: impl Fn() + Sync,
    mut finish: impl FnMut(usize),
) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        let target = DONE.load(Ordering::Relaxed) + submitters * per_thread;
        std::thread::scope(|s| {
            for _ in 0..submitters {
                s.spawn(|| (0..per_thread).for_each(|_| submit()));
            }
        });
        finish(target);
    }
    started.elapsed()
}

fn many_submitters(c: &mut Criterion) {
    let n = jobs_per_iteration();
    let mut group = c.benchmark_group("workerpool_submitters");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    let workers = 2;
    for submitters in [4usize, 16] {
        let per_thread = n / submitters;
        let pool = WorkerPool::builder().workers(workers).queue_depth(1024).build().unwrap();
        group.bench_function(BenchmarkId::new("poolside/WorkerPool", submitters), |b| {
            b.iter_custom(|iters| {
                submitter_rounds(
                    iters,
                    submitters,
                    per_thread,
                    || pool.submit(|_| job()).unwrap(),
                    wait_for,
                )
            })
        });
        drop(pool);

        let pool = threadpool::ThreadPool::new(workers);
        group.bench_function(BenchmarkId::new("threadpool", submitters), |b| {
            b.iter_custom(|iters| {
                submitter_rounds(
                    iters,
                    submitters,
                    per_thread,
                    || pool.execute(job),
                    |_| pool.join(),
                )
            })
        });
        drop(pool);

        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
        group.bench_function(BenchmarkId::new("rayon", submitters), |b| {
            b.iter_custom(|iters| {
                submitter_rounds(iters, submitters, per_thread, || pool.spawn(job), wait_for)
            })
        });
        drop(pool);
    }
    group.finish();
}

/// Round-trip latencies of `round_trip`, sorted.
fn latencies(samples: usize, mut round_trip: impl FnMut()) -> Vec<Duration> {
    let mut out: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            round_trip();
            started.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("workerpool_spawn_join");
    let pool = WorkerPool::builder().workers(2).build().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    group.bench_function("poolside/WorkerPool", |b| {
        b.iter(|| pool.spawn(|_| 7u64).unwrap().join().unwrap())
    });
    group.bench_function("tokio-spawn_blocking", |b| {
        b.iter(|| runtime.block_on(runtime.spawn_blocking(|| 7u64)).unwrap())
    });
    group.finish();

    let samples = full_or_quick(20_000, 2_000);
    let ours = latencies(samples, || {
        pool.spawn(|_| 7u64).unwrap().join().unwrap();
    });
    let ours_async = latencies(samples, || {
        runtime.block_on(pool.spawn(|_| 7u64).unwrap()).unwrap();
    });
    let theirs = latencies(samples, || {
        runtime.block_on(runtime.spawn_blocking(|| 7u64)).unwrap();
    });
    let mut md = format!(
        "### workerpool: spawn + join round trip ({samples} samples, 2 workers)\n\n\
         | implementation | p50 | p99 | p99.9 |\n|---|---:|---:|---:|\n"
    );
    for (name, sorted) in [
        ("poolside/WorkerPool join", &ours),
        ("poolside/WorkerPool .await", &ours_async),
        ("tokio spawn_blocking .await", &theirs),
    ] {
        md.push_str(&format!(
            "| {name} | {:.1?} | {:.1?} | {:.1?} |\n",
            percentile(sorted, 0.50),
            percentile(sorted, 0.99),
            percentile(sorted, 0.999)
        ));
    }
    write_extra_report("workerpool_spawn_join", &md);
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = noop_jobs, many_submitters, spawn_join
}
criterion_main!(benches);
