//! poolside-connpool against deadpool, bb8, mobc, qp and r2d2.
//!
//! * `connpool_get_drop`: get + drop throughput with a no-op manager (ours also with
//!   trivial `before_acquire` + `after_release` hooks, `poolside/Pool+hooks`, and
//!   with `before_acquire` alone, `poolside/Pool+before_acquire`; deadpool also with
//!   trivial `pre_recycle` + `post_recycle` hooks, `deadpool+hooks`), pools
//!   pre-warmed to their size, on a multi-thread tokio runtime (r2d2 on OS threads),
//!   at (pool 8, 64 tasks), (pool 16, 256 tasks), (pool 16, 16 tasks). Checkout
//!   health tests are off in the peers that default them on. One iteration is
//!   `GETS_PER_ITER` gets in total across the tasks.
//! * fairness (extra report `connpool_fairness`): acquire wait p50 / p99 / p99.9 / max
//!   with 1000 tasks on 50 connections, each holding its connection across one yield;
//!   ours with the default wait policy (30 s limit) and without a limit, deadpool and
//!   bb8, every pool once per round in rotating order, medians and spread over the
//!   rounds, and per round whether ours meets p99.9 ≤ deadpool's and max ≤ 2× its max.
//! * busy machine (extra report `connpool_busy`): get + drop (pool 8, 64 tasks, each
//!   owning its pool handle, as above) with every contender (ours, qp, deadpool, bb8)
//!   once per round in rotating order, 7 rounds, median and spread, on a multi-thread
//!   and on a current-thread runtime. `POOLSIDE_BENCH_CONTENDERS=poolside,qp` runs
//!   only the named contenders (a profile of one pool, an A/B of two builds).
//!   With `POOLSIDE_BENCH_NEIGHBORS=n`, `n` threads spin for the whole run (every
//!   scenario here) to oversubscribe the cores.
//! * `connpool_pg_select1`: `SELECT 1` on a real PostgreSQL (pool 16, 64 tasks), only
//!   when `POOLSIDE_PG_URL` is set.
//!
//! The runtime's worker count is `POOLSIDE_BENCH_MAX_THREADS` when set, else the
//! machine's parallelism. qp 0.2 can deadlock: every qp batch runs under a timeout
//! and a deadlock is reported instead of hanging the run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::{criterion_config, full_or_quick, write_extra_report};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

#[path = "support/interleaved.rs"]
mod interleaved;
#[path = "support/neighbors.rs"]
mod neighbors;
#[path = "support/peers.rs"]
mod peers;

/// Gets per criterion iteration (split evenly over the tasks).
const GETS_PER_ITER: u64 = 4096;
/// (pool size, tasks) scenarios.
const SCENARIOS: [(usize, usize); 3] = [(8, 64), (16, 256), (16, 16)];
/// A qp batch taking longer than this is declared deadlocked.
const QP_DEADLOCK_AFTER: Duration = Duration::from_secs(10);
/// The batch limit for pools that cannot deadlock.
const NO_LIMIT: Duration = Duration::from_secs(3600);

fn worker_threads() -> usize {
    std::env::var("POOLSIDE_BENCH_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---- no-op managers -------------------------------------------------------

struct Noop;

impl poolside_connpool::Manager for Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn check(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

impl deadpool::managed::Manager for Noop {
    type Type = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

impl bb8::ManageConnection for Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[mobc::async_trait]
impl mobc::Manager for Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn check(&self, conn: u64) -> Result<u64, Infallible> {
        Ok(conn)
    }
}

#[qp::async_trait]
impl qp::resource::Manage for Noop {
    type Output = u64;
    type Error = Infallible;
    async fn try_create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
}

#[derive(Debug)]
struct NoopError;

impl std::fmt::Display for NoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
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

// ---- drivers ----------------------------------------------------------------

/// Runs `tasks` tasks that together do `iters * GETS_PER_ITER` gets; returns the
/// elapsed time, or `None` if they did not finish within `limit`.
fn run_tasks<F, Fut>(
    rt: &Runtime,
    iters: u64,
    tasks: usize,
    limit: Duration,
    get_drop_loop: F,
) -> Option<Duration>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let per_task = (iters * GETS_PER_ITER).div_ceil(tasks as u64);
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(get_drop_loop(per_task))).collect();
        let joined = tokio::time::timeout(limit, async {
            for h in handles {
                h.await.expect("bench task");
            }
        })
        .await;
        joined.ok().map(|()| start.elapsed())
    })
}

/// Registers one get + drop throughput bench: `tasks` tasks share `$pool` and each
/// runs `drop($get)` in a loop, where `$p` names the task's clone of the pool.
macro_rules! bench_get_drop {
    ($group:expr, $rt:expr, $name:expr, $param:expr, $tasks:expr, $pool:expr, |$p:ident| $get:expr) => {{
        let shared = $pool;
        $group.bench_function(BenchmarkId::new($name, &$param), |b| {
            b.iter_custom(|iters| {
                let pool = shared.clone();
                run_tasks($rt, iters, $tasks, NO_LIMIT, move |n| {
                    let $p = pool.clone();
                    async move {
                        for _ in 0..n {
                            drop($get.unwrap());
                        }
                    }
                })
                .expect("no limit")
            })
        });
    }};
}

fn get_drop(c: &mut Criterion) {
    neighbors::for_run();
    let rt = runtime();
    let mut group = c.benchmark_group("connpool_get_drop");
    group.throughput(Throughput::Elements(GETS_PER_ITER));
    let mut qp_notes = Vec::new();
    for (size, tasks) in SCENARIOS {
        let param = format!("pool{size}_tasks{tasks}");

        let ours = rt.block_on(async {
            let pool = poolside_connpool::Builder::new().max_size(size).build(Noop).unwrap();
            pool.warm(size).await.unwrap();
            pool
        });
        bench_get_drop!(group, &rt, "poolside/Pool", param, tasks, ours, |p| p.get().await);

        // The cost of lifecycle hooks: trivial `before_acquire` + `after_release`.
        let hooked = rt.block_on(async {
            let pool = poolside_connpool::Builder::new()
                .max_size(size)
                .manager(Noop)
                .before_acquire(|_, _| Box::pin(async { Ok(true) }))
                .after_release(|_, _| Box::pin(async { Ok(true) }))
                .build()
                .unwrap();
            pool.warm(size).await.unwrap();
            pool
        });
        bench_get_drop!(group, &rt, "poolside/Pool+hooks", param, tasks, hooked, |p| p.get().await);

        // `before_acquire` alone runs inside `get`, as deadpool's hooks do; the
        // difference from `Pool+hooks` is what `after_release`'s task per return costs.
        let before_only = rt.block_on(async {
            let pool = poolside_connpool::Builder::new()
                .max_size(size)
                .manager(Noop)
                .before_acquire(|_, _| Box::pin(async { Ok(true) }))
                .build()
                .unwrap();
            pool.warm(size).await.unwrap();
            pool
        });
        bench_get_drop!(
            group,
            &rt,
            "poolside/Pool+before_acquire",
            param,
            tasks,
            before_only,
            |p| p.get().await
        );

        let dp = rt.block_on(async {
            let pool =
                deadpool::managed::Pool::<Noop>::builder(Noop).max_size(size).build().unwrap();
            drop(futures_join_all((0..size).map(|_| pool.get())).await);
            pool
        });
        bench_get_drop!(group, &rt, "deadpool", param, tasks, dp, |p| p.get().await);

        // deadpool's nearest hooks to ours: both run inside `get` (deadpool recycles
        // on checkout), where our `after_release` runs in a task after the return.
        let dp_hooked = rt.block_on(async {
            let pool = deadpool::managed::Pool::<Noop>::builder(Noop)
                .max_size(size)
                .pre_recycle(deadpool::managed::Hook::async_fn(|_, _| Box::pin(async { Ok(()) })))
                .post_recycle(deadpool::managed::Hook::async_fn(|_, _| Box::pin(async { Ok(()) })))
                .build()
                .unwrap();
            drop(futures_join_all((0..size).map(|_| pool.get())).await);
            pool
        });
        bench_get_drop!(group, &rt, "deadpool+hooks", param, tasks, dp_hooked, |p| p.get().await);

        let b8 = rt.block_on(peers::bb8_pool(Noop, size));
        bench_get_drop!(group, &rt, "bb8", param, tasks, b8, |p| p.get().await);

        let mb = rt.block_on(async {
            let pool = mobc::Pool::builder()
                .max_open(size as u64)
                .max_idle(size as u64)
                .test_on_check_out(false)
                .build(Noop);
            drop(futures_join_all((0..size).map(|_| pool.get())).await);
            pool
        });
        bench_get_drop!(group, &rt, "mobc", param, tasks, mb, |p| p.get().await);

        // qp: probe one batch under a timeout first; a deadlock skips its bench.
        let qp_pool = rt.block_on(async {
            let pool = Arc::new(qp::Pool::new(Noop, size));
            pool.reserve(size).await.unwrap();
            pool
        });
        let qp_loop = |pool: Arc<qp::Pool<Noop>>| {
            move |n: u64| {
                let pool = pool.clone();
                async move {
                    for _ in 0..n {
                        drop(pool.acquire_unchecked().await.unwrap());
                    }
                }
            }
        };
        if run_tasks(&rt, 4, tasks, QP_DEADLOCK_AFTER, qp_loop(qp_pool.clone())).is_none() {
            qp_notes.push(format!(
                "qp deadlocked at {param} (probe timed out after {QP_DEADLOCK_AFTER:?})"
            ));
            eprintln!("connpool bench: qp deadlocked at {param}; skipping it");
        } else {
            let deadlocked = AtomicBool::new(false);
            group.bench_function(BenchmarkId::new("qp", &param), |b| {
                b.iter_custom(|iters| {
                    if deadlocked.load(Ordering::Relaxed) {
                        return QP_DEADLOCK_AFTER;
                    }
                    run_tasks(&rt, iters, tasks, QP_DEADLOCK_AFTER, qp_loop(qp_pool.clone()))
                        .unwrap_or_else(|| {
                            deadlocked.store(true, Ordering::Relaxed);
                            QP_DEADLOCK_AFTER
                        })
                })
            });
            if deadlocked.load(Ordering::Relaxed) {
                qp_notes.push(format!("qp deadlocked at {param} during measurement"));
            }
        }

        // r2d2 is synchronous: OS threads (at most 64) instead of tasks.
        let r2 = r2d2::Pool::builder()
            .max_size(size as u32)
            .min_idle(Some(size as u32))
            .test_on_check_out(false)
            .build(Noop)
            .unwrap();
        let threads = tasks.min(64);
        group.bench_function(BenchmarkId::new("r2d2", &param), |b| {
            b.iter_custom(|iters| {
                let per_thread = (iters * GETS_PER_ITER).div_ceil(threads as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..per_thread {
                                drop(r2.get().unwrap());
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
    if !qp_notes.is_empty() {
        write_extra_report(
            "connpool_qp",
            &format!("### qp 0.2 deadlocks\n\n{}\n", qp_notes.join("\n\n")),
        );
    }
}

/// Awaits every future (no futures-util dependency needed: spawn-free sequential
/// polling is fine for pre-warming, since every get here completes immediately or
/// after a dial).
async fn futures_join_all<F: Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await);
    }
    out
}

// ---- busy machine -------------------------------------------------------------

const BUSY_SIZE: usize = 8;
const BUSY_TASKS: usize = 64;
const BUSY_ROUNDS: usize = 7;

/// The interleaved get + drop table on `rt` (`flavor` names it in the title).
fn busy_table(rt: &Runtime, flavor: &str, qp_stuck: &Arc<AtomicBool>) -> String {
    let ops = full_or_quick(200_000, 40_000);
    let ours = rt.block_on(async {
        let pool = poolside_connpool::Builder::new().max_size(BUSY_SIZE).build(Noop).unwrap();
        pool.warm(BUSY_SIZE).await.unwrap();
        Arc::new(pool)
    });
    let qp_pool = rt.block_on(async {
        let pool = Arc::new(qp::Pool::new(Noop, BUSY_SIZE));
        pool.reserve(BUSY_SIZE).await.unwrap();
        pool
    });
    let dp = rt.block_on(async {
        let pool =
            deadpool::managed::Pool::<Noop>::builder(Noop).max_size(BUSY_SIZE).build().unwrap();
        drop(futures_join_all((0..BUSY_SIZE).map(|_| pool.get())).await);
        pool
    });
    let b8 = rt.block_on(peers::bb8_pool(Noop, BUSY_SIZE));
    let stuck = qp_stuck.clone();
    // Each task owns its handle and loops (as `connpool_get_drop` does), so no
    // contender pays a shared reference-count update per get.
    let contenders = [
        interleaved::contender_loop("poolside", BUSY_TASKS, ours, |p, n| {
            Box::pin(async move {
                for _ in 0..n {
                    drop(p.get().await.unwrap());
                }
            })
        }),
        interleaved::contender_loop("qp", BUSY_TASKS, qp_pool, move |p, n| {
            let stuck = stuck.clone();
            Box::pin(async move {
                for _ in 0..n {
                    // qp 0.2 can deadlock: a get stuck this long ends the qp rows'
                    // meaning (reported under the table) rather than the run.
                    if stuck.load(Ordering::Relaxed) {
                        return;
                    }
                    match tokio::time::timeout(QP_DEADLOCK_AFTER, p.acquire_unchecked()).await {
                        Ok(conn) => drop(conn.unwrap()),
                        Err(_) => stuck.store(true, Ordering::Relaxed),
                    }
                }
            })
        }),
        interleaved::contender_loop("deadpool", BUSY_TASKS, dp, |p, n| {
            Box::pin(async move {
                for _ in 0..n {
                    drop(p.get().await.unwrap());
                }
            })
        }),
        interleaved::contender_loop("bb8", BUSY_TASKS, b8, |p, n| {
            Box::pin(async move {
                for _ in 0..n {
                    drop(p.get().await.unwrap());
                }
            })
        }),
    ];
    let title = format!(
        "connpool get + drop, pool {BUSY_SIZE}, {BUSY_TASKS} tasks, {flavor}, {} spinning neighbour(s)",
        neighbors::for_run()
    );
    interleaved::run(rt, &title, full_or_quick(BUSY_ROUNDS, BUSY_ROUNDS), ops, &contenders)
}

fn busy(_c: &mut Criterion) {
    neighbors::for_run();
    let qp_stuck = Arc::new(AtomicBool::new(false));
    let multi = runtime();
    let mut md = busy_table(&multi, &format!("{} worker threads", worker_threads()), &qp_stuck);
    drop(multi);
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    md.push('\n');
    md.push_str(&busy_table(&single, "current_thread runtime", &qp_stuck));
    if qp_stuck.load(Ordering::Relaxed) {
        md.push_str(&format!(
            "\nqp deadlocked (a get waited over {QP_DEADLOCK_AFTER:?}); its rows are void.\n"
        ));
    }
    eprintln!("{md}");
    write_extra_report("connpool_busy", &md);
}

// ---- fairness -----------------------------------------------------------------

const FAIR_TASKS: usize = 1000;
const FAIR_CONNS: usize = 50;

/// Gets per task excluded from the percentiles: the start-up burst (1000 tasks
/// spawned at once) is not the steady state being compared.
const WARMUP_GETS: usize = 2;

fn percentiles(mut waits: Vec<Duration>) -> [Duration; 4] {
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
    [at(0.50), at(0.99), at(0.999), *waits.last().expect("samples")]
}

fn fairness_run<Fut>(rt: &Runtime, rounds: usize, one: impl Fn() -> Fut) -> Vec<Duration>
where
    Fut: Future<Output = Vec<Duration>> + Send + 'static,
{
    rt.block_on(async {
        let handles: Vec<_> = (0..FAIR_TASKS).map(|_| tokio::spawn(one())).collect();
        let mut all = Vec::with_capacity(FAIR_TASKS * rounds);
        for h in handles {
            all.extend(h.await.expect("fairness task"));
        }
        all
    })
}

/// Acquire waits of one fairness task: `rounds` gets of `$get`, each connection held
/// across one yield; the first `WARMUP_GETS` are not recorded.
macro_rules! fair_task {
    ($pool:expr, $rounds:expr, |$p:ident| $get:expr) => {{
        let $p = $pool.clone();
        async move {
            let mut waits = Vec::with_capacity($rounds);
            for round in 0..$rounds {
                let t = Instant::now();
                let conn = $get.unwrap();
                if round >= WARMUP_GETS {
                    waits.push(t.elapsed());
                }
                tokio::task::yield_now().await;
                drop(conn);
            }
            waits
        }
    }};
}

/// Interleaved fairness rounds: quick 5, full 9.
const FAIR_ROUNDS: (usize, usize) = (9, 5);

/// One fairness contender: runs one round (every task's recorded waits).
type FairRun<'a> = Box<dyn Fn() -> Vec<Duration> + 'a>;

fn fairness(_c: &mut Criterion) {
    let neighbours = neighbors::for_run();
    let rt = runtime();
    let gets = full_or_quick(40, 10) + WARMUP_GETS;
    let rounds = full_or_quick(FAIR_ROUNDS.0, FAIR_ROUNDS.1);

    // The default wait policy: a 30 s limit on every queued get.
    let ours = rt.block_on(async {
        let pool = poolside_connpool::Builder::new().max_size(FAIR_CONNS).build(Noop).unwrap();
        pool.warm(FAIR_CONNS).await.unwrap();
        pool
    });
    // Without a wait limit (deadpool's default).
    let unlimited = rt.block_on(async {
        let pool = poolside_connpool::Builder::new()
            .max_size(FAIR_CONNS)
            .wait(poolside_connpool::WaitPolicy::Queue)
            .build(Noop)
            .unwrap();
        pool.warm(FAIR_CONNS).await.unwrap();
        pool
    });
    let dp = rt.block_on(async {
        let pool =
            deadpool::managed::Pool::<Noop>::builder(Noop).max_size(FAIR_CONNS).build().unwrap();
        drop(futures_join_all((0..FAIR_CONNS).map(|_| pool.get())).await);
        pool
    });
    let b8 = rt.block_on(async {
        peers::bb8_builder(FAIR_CONNS)
            .connection_timeout(Duration::from_secs(600))
            .build(Noop)
            .await
            .unwrap()
    });
    let contenders: Vec<(&str, FairRun<'_>)> = vec![
        (
            "poolside/Pool (default: 30 s limit)",
            Box::new(|| fairness_run(&rt, gets, || fair_task!(ours, gets, |p| p.get().await))),
        ),
        (
            "poolside/Pool (WaitPolicy::Queue)",
            Box::new(|| fairness_run(&rt, gets, || fair_task!(unlimited, gets, |p| p.get().await))),
        ),
        (
            "deadpool",
            Box::new(|| fairness_run(&rt, gets, || fair_task!(dp, gets, |p| p.get().await))),
        ),
        ("bb8", Box::new(|| fairness_run(&rt, gets, || fair_task!(b8, gets, |p| p.get().await)))),
    ];
    // Every contender once per round, in rotating order, so a slow phase of the
    // machine hits all of them alike; percentiles per round.
    let mut per_round: Vec<Vec<[Duration; 4]>> = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let index = (round + k) % contenders.len();
            per_round[index].push(percentiles((contenders[index].1)()));
        }
    }
    let median_of = |rows: &[[Duration; 4]], q: usize| {
        let mut v: Vec<Duration> = rows.iter().map(|r| r[q]).collect();
        v.sort_unstable();
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let mut md = format!(
        "### connpool fairness: acquire wait, {FAIR_TASKS} tasks on {FAIR_CONNS} connections, \
         {gets} gets each (the first {WARMUP_GETS} of each task excluded as warm-up), {} worker \
         threads, {neighbours} spinning neighbour(s)\n\n{rounds} interleaved rounds (every pool \
         once per round, rotating order); the median over the rounds of each percentile, and \
         the min–max over the rounds.\n\n| pool | p50 | p99 | p99.9 (min–max) | max (min–max) |\n\
         |---|---|---|---|---|\n",
        worker_threads()
    );
    for (i, (name, _)) in contenders.iter().enumerate() {
        let rows = &per_round[i];
        let (p50, ..) = median_of(rows, 0);
        let (p99, ..) = median_of(rows, 1);
        let (p999, p999_lo, p999_hi) = median_of(rows, 2);
        let (max, max_lo, max_hi) = median_of(rows, 3);
        md.push_str(&format!(
            "| {name} | {p50:.1?} | {p99:.1?} | {p999:.1?} ({p999_lo:.1?}–{p999_hi:.1?}) | \
             {max:.1?} ({max_lo:.1?}–{max_hi:.1?}) |\n"
        ));
    }
    // The targets, round by round against deadpool in the same round.
    let deadpool = &per_round[2];
    for (i, (name, _)) in contenders.iter().enumerate().take(2) {
        let rows = &per_round[i];
        let p999_ok = rows.iter().zip(deadpool).filter(|(r, d)| r[2] <= d[2]).count();
        let max_ok = rows.iter().zip(deadpool).filter(|(r, d)| r[3] <= d[3] * 2).count();
        md.push_str(&format!(
            "\n{name}: p99.9 ≤ deadpool's in {p999_ok} of {rounds} rounds, max ≤ 2× deadpool's \
             in {max_ok} of {rounds}."
        ));
    }
    md.push('\n');
    write_extra_report("connpool_fairness", &md);
}

// ---- PostgreSQL ------------------------------------------------------------------

/// A tokio-postgres manager for our pool (the same as the crate's `PgManager`, which
/// sits behind a feature this bench crate does not enable).
struct PgBench(tokio_postgres::Config);

impl poolside_connpool::Manager for PgBench {
    type Connection = tokio_postgres::Client;
    type Error = tokio_postgres::Error;
    async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = self.0.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }
    async fn check(&self, c: &mut tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
        c.simple_query("").await.map(|_| ())
    }
    fn is_broken(&self, c: &mut tokio_postgres::Client) -> bool {
        c.is_closed()
    }
}

/// Registers one `SELECT 1` bench: `TASKS` tasks share `$pool`, each running
/// `QUERIES_PER_ITER * iters / TASKS` queries on connections from `$get`.
macro_rules! bench_select1 {
    ($group:expr, $rt:expr, $name:expr, $pool:expr, |$p:ident| $get:expr) => {{
        let shared = $pool;
        $group.bench_function(BenchmarkId::new($name, "pool16_tasks64"), |b| {
            b.iter_custom(|iters| {
                let n = (iters * PG_QUERIES_PER_ITER).div_ceil(PG_TASKS as u64);
                $rt.block_on(async {
                    let start = Instant::now();
                    let hs: Vec<_> = (0..PG_TASKS)
                        .map(|_| {
                            let $p = shared.clone();
                            tokio::spawn(async move {
                                for _ in 0..n {
                                    let c = $get.unwrap();
                                    c.query_one("SELECT 1", &[]).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }};
}

const PG_SIZE: usize = 16;
const PG_TASKS: usize = 64;
const PG_QUERIES_PER_ITER: u64 = 256;

fn pg_select1(c: &mut Criterion) {
    let Ok(url) = std::env::var("POOLSIDE_PG_URL") else {
        eprintln!("connpool bench: POOLSIDE_PG_URL is not set; skipping connpool_pg_select1");
        return;
    };
    let config: tokio_postgres::Config = url.parse().expect("POOLSIDE_PG_URL");
    let rt = runtime();
    let mut group = c.benchmark_group("connpool_pg_select1");
    group.throughput(Throughput::Elements(PG_QUERIES_PER_ITER));

    let ours = rt.block_on(async {
        let pool = poolside_connpool::Builder::new()
            .max_size(PG_SIZE)
            .build(PgBench(config.clone()))
            .unwrap();
        pool.warm(PG_SIZE).await.unwrap();
        pool
    });
    bench_select1!(group, rt, "poolside/Pool", ours, |p| p.get().await);

    let dp = {
        let mgr = deadpool_postgres::Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(mgr).max_size(PG_SIZE).build().unwrap();
        rt.block_on(async { drop(futures_join_all((0..PG_SIZE).map(|_| pool.get())).await) });
        pool
    };
    bench_select1!(group, rt, "deadpool-postgres", dp, |p| p.get().await);

    let b8 = rt.block_on(peers::bb8_pool(
        bb8_postgres::PostgresConnectionManager::new(config.clone(), tokio_postgres::NoTls),
        PG_SIZE,
    ));
    bench_select1!(group, rt, "bb8-postgres", b8, |p| p.get().await);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = busy, get_drop, fairness, pg_select1
}
criterion_main!(benches);
