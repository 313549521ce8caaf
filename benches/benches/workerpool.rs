//! poolside-workerpool against threadpool, rayon, rusty_pool and tokio's blocking pool.
//!
//! * `workerpool_noop_jobs/<impl>/<workers>`: one thread submits N no-op jobs
//!   (1,000,000; 100,000 with --quick), timed until every job has run. Besides the
//!   default pool (`poolside/WorkerPool`, 2 searching workers),
//!   `poolside/WorkerPool-search<n>` runs it with `max_searching_workers(n)` for n = 1
//!   and all workers. A closure that captures nothing is never allocated, by any pool:
//!   this case flatters every contender.
//! * `workerpool_capture_jobs/<impl>/<bytes>`: the same with jobs that capture 8, 32
//!   or 64 bytes, as real jobs do (an `Arc`, an index, a small request), 2 workers,
//!   against threadpool, rayon and a minimal pool on one bounded crossbeam channel.
//!   poolside runs with the queue of 1024 jobs the other cases use, and again with a
//!   queue of 65,536: threadpool's and rayon's queues are unbounded, and on a busy
//!   machine a bounded queue makes the submitter wait whenever the workers lose
//!   their cores.
//! * `workerpool_submitters/<impl>/<submitters>`: 4 or 16 threads submit N jobs in
//!   all to a 2-worker pool.
//! * `workerpool_async_submit/<impl>`: one async task on a current-thread runtime
//!   submits N jobs, `spawn_async(..).await` against tokio's `spawn_blocking` (2
//!   blocking threads), timed until every job has run.
//! * `workerpool_spawn_join/<impl>`: one job spawned and its result joined, one at a
//!   time (round-trip latency); p50 / p99 written as an extra table.
//! * `workerpool_divide_and_conquer/<impl>/<cut-off>`: a quicksort of 1,048,576
//!   numbers (262,144 with --quick) opening a scope per node (rayon: `join`) down to a
//!   sequential cut-off of 1, 64 or 1024 elements, 2 workers, against rayon: the
//!   recursive work users bring from rayon.
//!
//! Criterion measures one contender after another, so a slow phase of a shared machine
//! can favour any of them. Each scenario therefore also writes an interleaved table
//! (`.../interleaved`): every round runs every contender once, in an order that rotates
//! from round to round, and the table gives each one's median, its spread (min–max),
//! the allocations per job on the submitting thread (counted by the counting global
//! allocator), how often another thread took the submitting thread's core in a round
//! (its involuntary context switches, where Linux reports them), the ratios of
//! medians, and the machine's load average before and after.
//! No-op and capturing jobs are measured with 2 workers and with 16 (on a 2-core
//! machine, the proxy of the 16-core case); the filter `interleaved` runs the three
//! tables alone.
//!
//! `POOLSIDE_BENCH_NEIGHBORS=n` starts `n` threads that spin for the whole run, the
//! load of a shared host or a CPU quota; every table names the setting and its file
//! name carries it (`..._neighbors2.md`), so a quiet and a busy run sit side by side.
//! The bench thread waits for the jobs by sleeping (woken by the job that completes the
//! round), so waiting costs the contenders no CPU.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::alloc::{CountingAllocator, measure};
use poolside_benches::{full_or_quick, quick, thread_counts, write_extra_report};
use poolside_workerpool::WorkerPool;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Jobs run so far; every implementation's job bumps it, so all do the same work.
static DONE: AtomicUsize = AtomicUsize::new(0);
/// The count at which the waiting bench thread is woken (`usize::MAX`: nobody waits).
static TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static WAITER: Mutex<Option<Thread>> = Mutex::new(None);

fn job() {
    let done = DONE.fetch_add(1, Ordering::AcqRel) + 1;
    if done == TARGET.load(Ordering::Acquire) {
        if let Some(waiter) = &*WAITER.lock().unwrap() {
            waiter.unpark();
        }
    }
}

/// Sleeps until `target` jobs have run: the last job of the round wakes this thread
/// (a short timeout covers the round that completed before the target was set).
fn wait_for(target: usize) {
    *WAITER.lock().unwrap() = Some(std::thread::current());
    TARGET.store(target, Ordering::Release);
    while DONE.load(Ordering::Acquire) < target {
        std::thread::park_timeout(Duration::from_millis(1));
    }
    TARGET.store(usize::MAX, Ordering::Release);
}

/// The neighbour load of `POOLSIDE_BENCH_NEIGHBORS`: that many spinning threads,
/// started once for the whole run.
fn neighbors() -> usize {
    static STARTED: OnceLock<usize> = OnceLock::new();
    *STARTED.get_or_init(|| {
        let n = std::env::var("POOLSIDE_BENCH_NEIGHBORS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize);
        for _ in 0..n {
            std::thread::spawn(|| {
                static SPIN: AtomicBool = AtomicBool::new(true);
                let mut x = 0u64;
                while SPIN.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            });
        }
        n
    })
}

/// Whether the interleaved table `name` runs: criterion's filter (the positional
/// command-line argument, matched here as a substring) skips criterion's own
/// benchmarks but not code around them.
fn selected(name: &str) -> bool {
    let mut filters = std::env::args().skip(1).filter(|a| !a.starts_with('-')).peekable();
    filters.peek().is_none() || filters.any(|f| name.contains(&f) || f.contains(name))
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
    neighbors();
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

    // Interleaved: every contender once per round, per worker count.
    if !selected("workerpool_noop_jobs/interleaved") {
        return;
    }
    let neighbors = neighbors();
    let n = full_or_quick(200_000, 100_000);
    for workers in worker_counts() {
        let ours = WorkerPool::builder().workers(workers).queue_depth(1024).build().unwrap();
        let threadpool = threadpool::ThreadPool::new(workers);
        let minimal = MinimalPool::new(workers);
        let rayon = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(workers)
            .build()
            .unwrap();
        let mut tables = vec![Table {
            label: format!("{workers}"),
            entries: vec![
                Entry::new("poolside/WorkerPool", |n| {
                    one_round(n, || ours.submit(|_| job()).unwrap(), wait_for)
                }),
                Entry::new("threadpool", |n| {
                    one_round(n, || threadpool.execute(job), |_| threadpool.join())
                }),
                Entry::new("crossbeam-minimal", |n| {
                    one_round(n, || minimal.execute(job), wait_for)
                }),
                Entry::new("rayon", |n| one_round(n, || rayon.spawn(job), wait_for)),
                Entry::new("tokio-spawn_blocking", |n| {
                    one_round(n, || drop(runtime.spawn_blocking(job)), wait_for)
                }),
            ],
        }];
        let md = interleaved(
            &format!(
                "workerpool: no-op jobs ({n} jobs a round, {workers} workers, queue 1024, \
                 {neighbors} spinning neighbour threads)"
            ),
            "workers",
            Unit::Jobs,
            n,
            &mut tables,
            &["threadpool", "crossbeam-minimal"],
        );
        write_extra_report(&format!("workerpool_noop_jobs_w{workers}_neighbors{neighbors}"), &md);
    }
}

/// One round of `n` jobs: submitted with `submit`, then `finish(target)` waits until
/// they have run; the time, and the allocations on the submitting thread.
fn one_round(n: usize, mut submit: impl FnMut(), finish: impl FnOnce(usize)) -> (Duration, u64) {
    let target = DONE.load(Ordering::Relaxed) + n;
    let started = Instant::now();
    let allocated = measure(|| (0..n).for_each(|_| submit()));
    finish(target);
    (started.elapsed(), allocated.allocations)
}

/// A job capturing `W` words (`8 * W` bytes), as a real job captures an `Arc`, an
/// index or a small request.
fn capturing<const W: usize>(seed: u64) -> impl FnOnce() + Send + 'static {
    let data = [seed; W];
    move || {
        std::hint::black_box(&data);
        job();
    }
}

/// The contenders of the capturing-job scenario.
enum Contender {
    /// The pool, and its name in the table (which says the queue depth).
    Poolside(WorkerPool, String),
    Threadpool(threadpool::ThreadPool),
    Rayon(rayon::ThreadPool),
    Minimal(MinimalPool),
}

/// The deep queue of the second poolside contender: it holds more jobs than a
/// submitter queues in one time slice, so a submitter that runs while the workers are
/// descheduled (a busy machine) keeps submitting instead of sleeping until they run.
const DEEP_QUEUE: usize = 1 << 16;

impl Contender {
    fn all(workers: usize) -> Vec<Contender> {
        vec![
            Contender::Poolside(
                WorkerPool::builder().workers(workers).queue_depth(1024).build().unwrap(),
                "poolside/WorkerPool".to_owned(),
            ),
            Contender::Poolside(
                WorkerPool::builder().workers(workers).queue_depth(DEEP_QUEUE).build().unwrap(),
                format!("poolside/WorkerPool (queue {DEEP_QUEUE})"),
            ),
            Contender::Threadpool(threadpool::ThreadPool::new(workers)),
            Contender::Rayon(rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap()),
            Contender::Minimal(MinimalPool::new(workers)),
        ]
    }

    fn name(&self) -> &str {
        match self {
            Contender::Poolside(_, name) => name,
            Contender::Threadpool(_) => "threadpool",
            Contender::Rayon(_) => "rayon",
            Contender::Minimal(_) => "crossbeam-minimal",
        }
    }

    /// Submits `n` jobs capturing `W` words each (without waiting for them).
    fn submit<const W: usize>(&self, n: usize) {
        for i in 0..n as u64 {
            let f = capturing::<W>(i);
            match self {
                Contender::Poolside(pool, _) => pool.submit(move |_| f()).unwrap(),
                Contender::Threadpool(pool) => pool.execute(f),
                Contender::Rayon(pool) => pool.spawn(f),
                Contender::Minimal(pool) => pool.execute(f),
            }
        }
    }

    /// One round: `n` jobs of `bytes` captured bytes, submitted and run; returns the
    /// time and the allocations on the submitting thread.
    fn round(&self, bytes: usize, n: usize) -> (Duration, u64) {
        let target = DONE.load(Ordering::Relaxed) + n;
        let started = Instant::now();
        let allocated = measure(|| match bytes {
            8 => self.submit::<1>(n),
            32 => self.submit::<4>(n),
            64 => self.submit::<8>(n),
            other => unreachable!("no {other}-byte case"),
        });
        wait_for(target);
        (started.elapsed(), allocated.allocations)
    }
}

const CAPTURE_SIZES: [usize; 3] = [8, 32, 64];

fn capture_jobs(c: &mut Criterion) {
    let n = full_or_quick(100_000, 20_000);
    let neighbors = neighbors();
    let contenders = Contender::all(2);
    let mut group = c.benchmark_group("workerpool_capture_jobs");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    for bytes in CAPTURE_SIZES {
        for contender in &contenders {
            group.bench_function(BenchmarkId::new(contender.name(), bytes), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| contender.round(bytes, n).0).sum())
            });
        }
    }
    group.finish();

    // Interleaved: each round runs every contender once per size.
    if !selected("workerpool_capture_jobs/interleaved") {
        return;
    }
    drop(contenders);
    let n = full_or_quick(200_000, 100_000);
    // 2 workers, and 16 (on a 2-core machine: the proxy of the 16-core case).
    for workers in worker_counts() {
        let contenders = Contender::all(workers);
        let mut tables: Vec<Table<'_>> = CAPTURE_SIZES
            .iter()
            .map(|&bytes| Table {
                label: format!("{bytes} B"),
                entries: contenders
                    .iter()
                    .map(|c| Entry::new(c.name(), move |n| c.round(bytes, n)))
                    .collect(),
            })
            .collect();
        let md = interleaved(
            &format!(
                "workerpool: jobs capturing data ({n} jobs a round, {workers} workers, queue \
                 1024 unless named, {neighbors} spinning neighbour threads)"
            ),
            "captured",
            Unit::Jobs,
            n,
            &mut tables,
            &["threadpool", "crossbeam-minimal"],
        );
        drop(tables);
        write_extra_report(
            &format!("workerpool_capture_jobs_w{workers}_neighbors{neighbors}"),
            &md,
        );
    }
}

/// One contender of an interleaved table: `round(n)` submits `n` jobs, waits until
/// they have run, and returns the time and the allocations on the submitting thread.
struct Entry<'a> {
    name: String,
    round: Box<dyn FnMut(usize) -> (Duration, u64) + 'a>,
    rates: Vec<f64>,
    allocations: u64,
    /// The bench thread's involuntary context switches in each round (empty where the
    /// system does not count them).
    switches: Vec<u64>,
}

impl<'a> Entry<'a> {
    fn new(name: impl Into<String>, round: impl FnMut(usize) -> (Duration, u64) + 'a) -> Self {
        Entry {
            name: name.into(),
            round: Box::new(round),
            rates: Vec::new(),
            allocations: 0,
            switches: Vec::new(),
        }
    }
}

/// Contenders measured on the same case (a capture size, a worker count).
struct Table<'a> {
    label: String,
    entries: Vec<Entry<'a>>,
}

/// Runs every contender of every table once per round, in an order that rotates from
/// round to round, so a slow phase of the machine hits all of them alike; returns the
/// markdown table of medians, spreads, allocations per job and ratios to the contenders
/// named in `against`.
fn interleaved(
    title: &str,
    case: &str,
    unit: Unit,
    n: usize,
    tables: &mut [Table<'_>],
    against: &[&str],
) -> String {
    let rounds = if quick() { 11 } else { 21 };
    let load_before = load_average();
    // One round each first, unmeasured: pools start their threads and warm their
    // caches of result slots.
    for table in tables.iter_mut() {
        for entry in &mut table.entries {
            (entry.round)(n);
        }
    }
    for round in 0..rounds {
        for table in tables.iter_mut() {
            let count = table.entries.len();
            for k in 0..count {
                let entry = &mut table.entries[(round + k) % count];
                let switched_before = involuntary_switches();
                let (elapsed, allocated) = (entry.round)(n);
                if let Some((before, after)) = switched_before.zip(involuntary_switches()) {
                    entry.switches.push(after.saturating_sub(before));
                }
                entry
                    .rates
                    .push(n as f64 / elapsed.max(Duration::from_nanos(1)).as_secs_f64() / 1e6);
                entry.allocations += allocated;
            }
        }
    }
    let load_after = load_average();
    let (rate, allocations) = match unit {
        Unit::Jobs => ("M jobs/s", true),
        Unit::Elements => ("M elements/s", false),
    };
    let mut md = format!(
        "### {title}\n\n{rounds} interleaved rounds (rotating order) after one warm-up round; \
         median {rate}, min–max{}, and ratios of medians. 1-minute load average {load_before} \
         before, {load_after} after.\n\n| {case} | implementation | {rate} median | min–max |",
        if allocations {
            ", allocations per job on the submitting thread, the submitting thread's \
             involuntary context switches per round (median, and the most in any round: times \
             another thread took its core)"
        } else {
            ""
        },
    );
    if allocations {
        md.push_str(" allocations/job | preempted/round |");
    }
    for name in against {
        md.push_str(&format!(" vs {name} |"));
    }
    md.push_str("\n|---|---|---:|---:|");
    if allocations {
        md.push_str("---:|---:|");
    }
    md.push_str(&"---:|".repeat(against.len()));
    md.push('\n');
    for table in tables.iter_mut() {
        let medians: Vec<f64> = table.entries.iter_mut().map(|e| median(&mut e.rates)).collect();
        let reference =
            |name: &str| table.entries.iter().position(|e| e.name == name).map(|i| medians[i]);
        let references: Vec<Option<f64>> = against.iter().map(|name| reference(name)).collect();
        for (entry, median) in table.entries.iter().zip(&medians) {
            md.push_str(&format!(
                "| {} | {} | {median:.2} | {:.2}–{:.2} |",
                table.label,
                entry.name,
                entry.rates.first().copied().unwrap_or(0.0),
                entry.rates.last().copied().unwrap_or(0.0),
            ));
            if allocations {
                let per_job = entry.allocations as f64 / (rounds * n) as f64;
                md.push_str(&format!(" {per_job:.3} |"));
                let mut switches = entry.switches.clone();
                switches.sort_unstable();
                match (switches.get(switches.len() / 2), switches.last()) {
                    (Some(median), Some(max)) => md.push_str(&format!(" {median} ({max}) |")),
                    _ => md.push_str(" – |"),
                }
            }
            for r in &references {
                match r {
                    Some(r) => md.push_str(&format!(" {:.2}× |", median / r)),
                    None => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
    }
    md
}

/// The calling thread's involuntary context switches so far (Linux's
/// `/proc/thread-self/status`), or `None` where the system does not report them.
fn involuntary_switches() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("nonvoluntary_ctxt_switches:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the rate of an interleaved table counts.
#[derive(Clone, Copy)]
enum Unit {
    /// Jobs run, with the allocations per job on the submitting thread.
    Jobs,
    /// Elements processed by work that runs on the pools' own threads, whose allocations
    /// the counting allocator does not attribute to the bench thread.
    Elements,
}

/// rayon's quicksort partition: the last element is the pivot.
fn partition(v: &mut [u32]) -> usize {
    let pivot = v.len() - 1;
    let mut i = 0;
    for j in 0..pivot {
        if v[j] <= v[pivot] {
            v.swap(i, j);
            i += 1;
        }
    }
    v.swap(i, pivot);
    i
}

/// Quicksort with a scope per node down to `cutoff` elements: one half in a scoped job,
/// the other on the calling thread.
fn sort_in_scopes(pool: &WorkerPool, v: &mut [u32], cutoff: usize) {
    if v.len() <= cutoff.max(1) {
        v.sort_unstable();
        return;
    }
    let mid = partition(v);
    let (lo, hi) = v.split_at_mut(mid);
    pool.scope(|s| {
        s.spawn(|_| sort_in_scopes(pool, hi, cutoff)).unwrap();
        sort_in_scopes(pool, lo, cutoff);
    });
}

/// The same quicksort with `rayon::join` per node.
fn sort_with_join(v: &mut [u32], cutoff: usize) {
    if v.len() <= cutoff.max(1) {
        v.sort_unstable();
        return;
    }
    let mid = partition(v);
    let (lo, hi) = v.split_at_mut(mid);
    rayon::join(|| sort_with_join(lo, cutoff), || sort_with_join(hi, cutoff));
}

/// `len` pseudo-random numbers, the same every run.
fn unsorted(len: usize) -> Vec<u32> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32
        })
        .collect()
}

/// The contenders of the divide-and-conquer scenario, each sorting a copy of `data`
/// down to `cutoff`; returns the time of the sort alone.
fn sort_round(pool: &SortPool, data: &[u32], cutoff: usize) -> Duration {
    let mut copy = data.to_vec();
    let started = Instant::now();
    match pool {
        SortPool::Poolside(pool) => {
            // Run from a job, as rayon's `install` runs on a worker.
            pool.scope(|s| s.spawn(|_| sort_in_scopes(pool, &mut copy, cutoff)).unwrap());
        }
        SortPool::Rayon(pool) => pool.install(|| sort_with_join(&mut copy, cutoff)),
    }
    let elapsed = started.elapsed();
    assert!(copy.is_sorted(), "the sort sorted");
    std::hint::black_box(copy);
    elapsed
}

enum SortPool {
    Poolside(WorkerPool),
    Rayon(rayon::ThreadPool),
}

impl SortPool {
    fn name(&self) -> &'static str {
        match self {
            SortPool::Poolside(_) => "poolside/WorkerPool::scope",
            SortPool::Rayon(_) => "rayon::join",
        }
    }
}

/// Sequential cut-offs of the divide-and-conquer scenario: one element (a scope per
/// node, rayon's own test), a small and a coarse one.
const CUTOFFS: [usize; 3] = [1, 64, 1024];

fn divide_and_conquer(c: &mut Criterion) {
    let len = full_or_quick(1 << 20, 1 << 18);
    let neighbors = neighbors();
    let data = unsorted(len);
    let workers = 2;
    let pools = [
        SortPool::Poolside(WorkerPool::new(workers).unwrap()),
        SortPool::Rayon(rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap()),
    ];
    let mut group = c.benchmark_group("workerpool_divide_and_conquer");
    group.throughput(Throughput::Elements(len as u64));
    group.sample_size(10);
    for cutoff in CUTOFFS {
        for pool in &pools {
            group.bench_function(BenchmarkId::new(pool.name(), cutoff), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| sort_round(pool, &data, cutoff)).sum())
            });
        }
    }
    group.finish();

    if !selected("workerpool_divide_and_conquer/interleaved") {
        return;
    }
    let mut tables: Vec<Table<'_>> = CUTOFFS
        .iter()
        .map(|&cutoff| Table {
            label: cutoff.to_string(),
            entries: pools
                .iter()
                .map(|pool| {
                    let data = &data;
                    Entry::new(pool.name(), move |_| (sort_round(pool, data, cutoff), 0))
                })
                .collect(),
        })
        .collect();
    let md = interleaved(
        &format!(
            "workerpool: quicksort of {len} numbers with a scope (rayon: a `join`) per node \
             down to the cut-off, {workers} workers, {neighbors} spinning neighbour threads"
        ),
        "cut-off",
        Unit::Elements,
        len,
        &mut tables,
        &["rayon::join"],
    );
    drop(tables);
    write_extra_report(&format!("workerpool_divide_and_conquer_neighbors{neighbors}"), &md);
}

/// The machine's 1-minute load average (`/proc/loadavg`), or `unknown` where the
/// system has none: a table measured on a busy machine says how busy.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sorts `values` and returns their median.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn async_submit(c: &mut Criterion) {
    let neighbors = neighbors();
    let n = jobs_per_iteration();
    let mut group = c.benchmark_group("workerpool_async_submit");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    let runtime =
        tokio::runtime::Builder::new_current_thread().max_blocking_threads(2).build().unwrap();
    let pool = WorkerPool::builder().workers(2).queue_depth(1024).build().unwrap();
    group.bench_function("poolside/WorkerPool-spawn_async", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let target = DONE.load(Ordering::Relaxed) + n;
                runtime.block_on(async {
                    for _ in 0..n {
                        drop(pool.spawn_async(|_| job()).await.unwrap());
                    }
                });
                wait_for(target);
            }
            started.elapsed()
        })
    });
    group.bench_function("poolside/WorkerPool-submit_async", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let target = DONE.load(Ordering::Relaxed) + n;
                runtime.block_on(async {
                    for _ in 0..n {
                        pool.submit_async(|_| job()).await.unwrap();
                    }
                });
                wait_for(target);
            }
            started.elapsed()
        })
    });
    group.bench_function("tokio-spawn_blocking", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let target = DONE.load(Ordering::Relaxed) + n;
                runtime.block_on(async {
                    for _ in 0..n {
                        drop(tokio::task::spawn_blocking(job));
                    }
                });
                wait_for(target);
            }
            started.elapsed()
        })
    });
    group.finish();

    // Interleaved, with the allocations of the submitting thread.
    if !selected("workerpool_async_submit/interleaved") {
        return;
    }
    let n = full_or_quick(200_000, 100_000);
    let rt = &runtime;
    let pool = &pool;
    let mut tables = vec![Table {
        label: "1 task".into(),
        entries: vec![
            Entry::new("poolside/WorkerPool-spawn_async", |n| {
                async_round(rt, n, || async {
                    drop(pool.spawn_async(|_| job()).await.unwrap());
                })
            }),
            Entry::new("poolside/WorkerPool-submit_async", |n| {
                async_round(rt, n, || async { pool.submit_async(|_| job()).await.unwrap() })
            }),
            Entry::new("tokio-spawn_blocking", |n| {
                async_round(rt, n, || async { drop(tokio::task::spawn_blocking(job)) })
            }),
        ],
    }];
    let md = interleaved(
        &format!(
            "workerpool: async submission from one task ({n} jobs a round, 2 workers / 2 \
             blocking threads, current-thread runtime, {neighbors} spinning neighbour threads)"
        ),
        "submitter",
        Unit::Jobs,
        n,
        &mut tables,
        &["tokio-spawn_blocking"],
    );
    write_extra_report(&format!("workerpool_async_submit_neighbors{neighbors}"), &md);
}

/// One round of `n` async submissions `submit()` driven by `runtime`, then waiting
/// until every job has run.
fn async_round<Fut: std::future::Future<Output = ()>>(
    runtime: &tokio::runtime::Runtime,
    n: usize,
    mut submit: impl FnMut() -> Fut,
) -> (Duration, u64) {
    let target = DONE.load(Ordering::Relaxed) + n;
    let started = Instant::now();
    let allocated = measure(|| {
        runtime.block_on(async {
            for _ in 0..n {
                submit().await;
            }
        })
    });
    wait_for(target);
    (started.elapsed(), allocated.allocations)
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

    if !selected("workerpool_spawn_join/latency") {
        return;
    }
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
    targets = noop_jobs, capture_jobs, many_submitters, async_submit, spawn_join, divide_and_conquer
}
criterion_main!(benches);
