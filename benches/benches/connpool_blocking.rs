//! poolside-connpool's blocking pool against r2d2, on OS threads.
//!
//! * `connpool_blocking_get_drop`: get + drop throughput with a no-op manager, pools
//!   pre-warmed to their size, at (pool 8 | 16) × (16 | 64 threads). r2d2's checkout
//!   test is off; ours skips the check for connections used within 500 ms (its
//!   default), so neither pings. One iteration is `GETS_PER_ITER` gets across the
//!   threads; each scenario runs ours and r2d2 back to back.
//! * fairness (extra report `connpool_blocking_fairness`): acquire wait p50 / p99 /
//!   p99.9 / max with 200 threads on 20 connections, each holding its connection
//!   across one `yield_now`; two interleaved rounds per pool (ours, r2d2, ours, r2d2).
//! * `connpool_blocking_sqlite_point`: `SELECT v FROM t WHERE id = ?` through
//!   rusqlite's prepared-statement cache on a 10 000-row WAL file, ours
//!   (`SqliteManager`) against r2d2_sqlite, 1 and 4 threads on a pool of 4.
//! * interleaved A/B (extra report `connpool_blocking_ab`): the same scenarios as
//!   alternating fixed batches, ours then r2d2 then r2d2 then ours..., and the median
//!   of the per-round ratios. On a busy machine this is the figure to read: load
//!   that drifts during the run hits both sides of each round alike.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::{criterion_config, full_or_quick, write_extra_report};
use poolside_connpool::WaitPolicy;
use poolside_connpool::blocking::{self, sqlite::SqliteManager};
use r2d2_sqlite::SqliteConnectionManager;
use r2d2_sqlite::rusqlite;
use std::convert::Infallible;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Gets per criterion iteration (split evenly over the threads): large enough that
/// starting the threads is a small part of an iteration.
const GETS_PER_ITER: u64 = 32_768;
/// (pool size, threads) scenarios.
const SCENARIOS: [(usize, usize); 4] = [(8, 16), (8, 64), (16, 16), (16, 64)];

// ---- no-op managers -------------------------------------------------------

struct Noop;

impl blocking::Manager for Noop {
    type Connection = u64;
    type Error = std::io::Error;
    fn connect(&self) -> Result<u64, std::io::Error> {
        Ok(0)
    }
    fn check(&self, _: &mut u64) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[derive(Debug)]
struct NoopError(Infallible);

impl std::fmt::Display for NoopError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {}
    }
}

impl std::error::Error for NoopError {}

impl r2d2::ManageConnection for Noop {
    type Connection = u64;
    type Error = NoopError;
    fn connect(&self) -> Result<u64, NoopError> {
        Ok(0)
    }
    fn is_valid(&self, _: &mut u64) -> Result<(), NoopError> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

/// Runs `threads` threads that together do `total` calls of `one`, started together
/// behind a barrier; returns the time from just before the barrier opens until every
/// thread is joined. (The clock is read before the main thread's `wait`: read after
/// it, a main thread descheduled on a busy machine would start the clock late and
/// report work it never timed.)
fn run_threads(threads: usize, total: u64, one: impl Fn() + Sync) -> Duration {
    let per_thread = total.div_ceil(threads as u64);
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..per_thread {
                    one();
                }
            });
        }
        start = Instant::now();
        barrier.wait();
        // The scope joins every thread before returning.
    });
    start.elapsed()
}

fn ours(size: usize) -> blocking::Pool<Noop> {
    let pool = blocking::Builder::new()
        .max_size(size)
        .wait(WaitPolicy::Queue)
        .build(Noop)
        .expect("valid settings");
    let warm: Vec<_> = (0..size).map(|_| pool.get().unwrap()).collect();
    drop(warm);
    pool
}

fn theirs(size: usize) -> r2d2::Pool<Noop> {
    r2d2::Pool::builder()
        .max_size(size as u32)
        .min_idle(Some(size as u32))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(600))
        .build(Noop)
        .expect("r2d2 pool")
}

fn get_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("connpool_blocking_get_drop");
    group.throughput(Throughput::Elements(GETS_PER_ITER));
    for (size, threads) in SCENARIOS {
        let param = format!("pool{size}_threads{threads}");
        let pool = ours(size);
        group.bench_function(BenchmarkId::new("poolside/blocking", &param), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters * GETS_PER_ITER, || drop(pool.get().unwrap()))
            })
        });
        let r2 = theirs(size);
        group.bench_function(BenchmarkId::new("r2d2", &param), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters * GETS_PER_ITER, || drop(r2.get().unwrap()))
            })
        });
    }
    group.finish();
}

// ---- fairness -----------------------------------------------------------------

const FAIR_THREADS: usize = 200;
const FAIR_CONNS: usize = 20;
/// Gets per thread excluded from the percentiles (the start-up burst).
const WARMUP_GETS: usize = 2;

fn percentiles(mut waits: Vec<Duration>) -> [Duration; 4] {
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
    [at(0.50), at(0.99), at(0.999), *waits.last().expect("samples")]
}

/// Acquire waits of `FAIR_THREADS` threads doing `rounds` gets each, holding each
/// connection across one `yield_now`.
fn fairness_run<C>(rounds: usize, get: impl Fn() -> C + Sync) -> Vec<Duration> {
    let barrier = Barrier::new(FAIR_THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..FAIR_THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut waits = Vec::with_capacity(rounds);
                    for round in 0..rounds {
                        let t = Instant::now();
                        let conn = get();
                        if round >= WARMUP_GETS {
                            waits.push(t.elapsed());
                        }
                        std::thread::yield_now();
                        drop(conn);
                    }
                    waits
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("fairness thread")).collect()
    })
}

fn fairness(_c: &mut Criterion) {
    let rounds = full_or_quick(200, 50) + WARMUP_GETS;
    let pool = ours(FAIR_CONNS);
    let r2 = theirs(FAIR_CONNS);
    let mut rows = Vec::new();
    for round in 1..=2 {
        let waits = fairness_run(rounds, || pool.get().unwrap());
        rows.push((format!("poolside/blocking (round {round})"), percentiles(waits)));
        let waits = fairness_run(rounds, || r2.get().unwrap());
        rows.push((format!("r2d2 (round {round})"), percentiles(waits)));
    }
    let mut md = format!(
        "### connpool blocking fairness: acquire wait, {FAIR_THREADS} threads on {FAIR_CONNS} \
         connections, {rounds} gets each (the first {WARMUP_GETS} of each thread excluded)\n\n\
         | pool | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|\n"
    );
    for (name, [p50, p99, p999, max]) in rows {
        md.push_str(&format!("| {name} | {p50:?} | {p99:?} | {p999:?} | {max:?} |\n"));
    }
    write_extra_report("connpool_blocking_fairness", &md);
}

// ---- SQLite point query --------------------------------------------------------

const ROWS: i64 = 10_000;
const QUERIES_PER_ITER: u64 = 4096;

const SQLITE_POOL: usize = 4;
const POINT_SQL: &str = "SELECT v FROM t WHERE id = ?1";

/// A fresh WAL database of `ROWS` rows in its own temp directory.
fn sqlite_file(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("poolside-bench-sqlite-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("point.db");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; DROP TABLE IF EXISTS t;
         CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
    )
    .expect("schema");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut insert = tx.prepare("INSERT INTO t (id, v) VALUES (?1, ?2)").expect("prepare");
        for id in 0..ROWS {
            insert.execute((id, format!("value-{id}"))).expect("insert");
        }
    }
    tx.commit().expect("commit");
    (dir, path)
}

/// Ours and r2d2_sqlite on the same file, both pre-warmed.
fn sqlite_pools(
    path: &std::path::Path,
) -> (blocking::Pool<SqliteManager>, r2d2::Pool<SqliteConnectionManager>) {
    let pool = blocking::Builder::new()
        .max_size(SQLITE_POOL)
        .wait(WaitPolicy::Queue)
        .build(SqliteManager::file(path).wal(true))
        .expect("pool");
    let warm: Vec<_> = (0..SQLITE_POOL).map(|_| pool.get().unwrap()).collect();
    drop(warm);
    let r2 = r2d2::Pool::builder()
        .max_size(SQLITE_POOL as u32)
        .min_idle(Some(SQLITE_POOL as u32))
        .test_on_check_out(false)
        .build(SqliteConnectionManager::file(path))
        .expect("r2d2_sqlite pool");
    (pool, r2)
}

/// The point query through rusqlite's prepared-statement cache.
fn point_query(conn: &rusqlite::Connection, id: i64) -> usize {
    let mut stmt = conn.prepare_cached(POINT_SQL).expect("prepare_cached");
    stmt.query_row([id], |r| r.get_ref(0).map(|v| v.as_str().map_or(0, str::len))).expect("row")
}

/// Spreads the ids over the table.
fn next_id(next: &std::sync::atomic::AtomicI64) -> i64 {
    next.fetch_add(7919, std::sync::atomic::Ordering::Relaxed) % ROWS
}

fn sqlite_point(c: &mut Criterion) {
    let (dir, path) = sqlite_file("criterion");
    let (pool, r2) = sqlite_pools(&path);
    let mut group = c.benchmark_group("connpool_blocking_sqlite_point");
    group.throughput(Throughput::Elements(QUERIES_PER_ITER));
    for threads in [1usize, 4] {
        let param = format!("pool{SQLITE_POOL}_threads{threads}");
        group.bench_function(BenchmarkId::new("poolside/blocking", &param), |b| {
            b.iter_custom(|iters| {
                let next = std::sync::atomic::AtomicI64::new(0);
                run_threads(threads, iters * QUERIES_PER_ITER, || {
                    std::hint::black_box(point_query(&pool.get().unwrap(), next_id(&next)));
                })
            })
        });
        group.bench_function(BenchmarkId::new("r2d2_sqlite", &param), |b| {
            b.iter_custom(|iters| {
                let next = std::sync::atomic::AtomicI64::new(0);
                run_threads(threads, iters * QUERIES_PER_ITER, || {
                    std::hint::black_box(point_query(&r2.get().unwrap(), next_id(&next)));
                })
            })
        });
    }
    group.finish();
    drop((pool, r2));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- interleaved A/B ---------------------------------------------------------

/// Runs `rounds` rounds of one batch of `a` and one of `b` (order alternating per
/// round); returns the medians of a's and b's batch times and of the ratios a/b.
fn ab(rounds: usize, mut a: impl FnMut() -> Duration, mut b: impl FnMut() -> Duration) -> [f64; 3] {
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        ta.push(x.as_secs_f64());
        tb.push(y.as_secs_f64());
        ratio.push(x.as_secs_f64() / y.as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    [median(ta), median(tb), median(ratio)]
}

fn ab_table(_c: &mut Criterion) {
    let rounds = full_or_quick(51, 21);
    let mut md = format!(
        "### connpool blocking, interleaved A/B ({rounds} rounds, order alternating; \
         throughput from the median batch time, ratio = median of per-round ours/peer times, \
         below 1 means poolside is faster)\n\n\
         | scenario | poolside/blocking | peer | peer throughput | ours/peer |\n|---|---|---|---|---|\n"
    );
    for (size, threads) in [(4, 1)].into_iter().chain(SCENARIOS) {
        let pool = ours(size);
        let r2 = theirs(size);
        let [a, b, ratio] = ab(
            rounds,
            || run_threads(threads, GETS_PER_ITER, || drop(pool.get().unwrap())),
            || run_threads(threads, GETS_PER_ITER, || drop(r2.get().unwrap())),
        );
        let m = |t: f64| GETS_PER_ITER as f64 / t / 1e6;
        md.push_str(&format!(
            "| get+drop pool{size} threads{threads} | {:.2} M/s | r2d2 | {:.2} M/s | {ratio:.2} |\n",
            m(a),
            m(b)
        ));
    }
    let (dir, path) = sqlite_file("ab");
    let (pool, r2) = sqlite_pools(&path);
    for threads in [1usize, 4] {
        let next = std::sync::atomic::AtomicI64::new(0);
        let [a, b, ratio] = ab(
            rounds,
            || {
                run_threads(threads, QUERIES_PER_ITER, || {
                    std::hint::black_box(point_query(&pool.get().unwrap(), next_id(&next)));
                })
            },
            || {
                run_threads(threads, QUERIES_PER_ITER, || {
                    std::hint::black_box(point_query(&r2.get().unwrap(), next_id(&next)));
                })
            },
        );
        let k = |t: f64| QUERIES_PER_ITER as f64 / t / 1e3;
        md.push_str(&format!(
            "| SQLite point query pool{SQLITE_POOL} threads{threads} | {:.0} k/s | r2d2_sqlite | {:.0} k/s | {ratio:.2} |\n",
            k(a),
            k(b)
        ));
    }
    drop((pool, r2));
    let _ = std::fs::remove_dir_all(&dir);
    write_extra_report("connpool_blocking_ab", &md);
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = get_drop, fairness, sqlite_point, ab_table
}
criterion_main!(benches);
