//! The immediate path: a get that finds an idle connection, and its drop.
//!
//! * The clock: such a get reuses the pool's latest clock reading for about a
//!   millisecond instead of reading the clock. Paused time shows the reuse, and shows
//!   that the health-check window and the lifetime limits still hold to within it.
//! * The hand-shake: a return pushes under its stripe's lock with no fence, and a
//!   caller about to wait locks every stripe. Real threads, some of them spinning
//!   neighbours that oversubscribe the cores (so lock holders get descheduled), churn
//!   a small pool while a sampler checks the levels continuously; a lost wake-up
//!   would hang a task next to an idle connection, so every run has a deadline.

use crate::common::TestManager;
use poolside_connpool::{Builder, Pool};
use poolside_core::Snapshot;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;
use tokio::time::{Instant, advance};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn value(pool: &Pool<TestManager>, name: &str) -> u64 {
    Snapshot::of(pool).value(name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// Fails on a pool that reads the clock on every get: there `last_used` follows
/// each 300 µs step.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_get_served_at_once_reuses_a_clock_reading_for_about_a_millisecond() {
    let (m, _ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    drop(pool.get().await.unwrap()); // dials
    advance(ms(5)).await;
    let start = Instant::now();
    let first = pool.get().await.unwrap().meta().last_used;
    assert_eq!(first, start, "a reading taken after the clock's period is exact");
    advance(us(300)).await;
    let reused = pool.get().await.unwrap().meta().last_used;
    assert_eq!(reused, first, "within the period the reading is reused");
    advance(us(300)).await;
    assert_eq!(pool.get().await.unwrap().meta().last_used, first);
    advance(ms(2)).await;
    let later = pool.get().await.unwrap().meta().last_used;
    assert_eq!(later, Instant::now(), "read again once the period passed");
    assert!(later > first);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn last_used_never_moves_backwards_and_stays_after_creation() {
    let (m, _ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    // The first get reads the clock, then dials: the connection is created after
    // the reading the next get reuses.
    let a = pool.get().await.unwrap();
    let created = a.meta().created_at;
    drop(a);
    advance(us(10)).await;
    let meta = pool.get().await.unwrap().meta();
    assert!(meta.last_used >= created, "{meta:?}");
    let mut previous = meta.last_used;
    for step in 0..50 {
        advance(us(137 * (step % 7))).await;
        let meta = pool.get().await.unwrap().meta();
        assert!(meta.last_used >= previous, "went back: {meta:?} after {previous:?}");
        assert!(Instant::now().duration_since(meta.last_used) <= ms(2), "lags too far: {meta:?}");
        previous = meta.last_used;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_health_check_window_holds_to_within_the_clock_period() {
    let (m, ledger) = TestManager::new();
    let window = ms(10);
    let pool = Builder::new().max_size(1).health_check_after(window).build(m).unwrap();
    drop(pool.get().await.unwrap());
    // Used every 100 µs for 50 ms: never idle for the window, never checked.
    for _ in 0..500 {
        advance(us(100)).await;
        drop(pool.get().await.unwrap());
    }
    assert_eq!(ledger.checks.load(SeqCst), 0);
    // Idle for less than the window minus the clock's lag: still not checked.
    advance(window - ms(3)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.checks.load(SeqCst), 0);
    // Idle for the window: checked on the next get, exactly once.
    advance(window).await;
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.checks.load(SeqCst), 1);
    assert_eq!(value(&pool, "health_checks"), 1);
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.checks.load(SeqCst), 1, "used just now: no second check");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn lifetime_and_idle_limits_hold_at_checkout() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(1)
        .max_lifetime(ms(40))
        .max_idle_time(ms(20))
        .janitor_interval(Duration::from_secs(3600))
        .build(m)
        .unwrap();
    drop(pool.get().await.unwrap());
    // In use every 5 ms: the idle limit never bites, the lifetime does.
    for _ in 0..7 {
        advance(ms(5)).await;
        assert_eq!(pool.get().await.unwrap().id, 1);
    }
    advance(ms(5)).await;
    assert_eq!(pool.get().await.unwrap().id, 2, "replaced at its lifetime");
    assert_eq!(value(&pool, "closed_lifetime"), 1);
    advance(ms(20)).await;
    assert_eq!(pool.get().await.unwrap().id, 3, "replaced after its idle limit");
    assert_eq!(value(&pool, "closed_idle"), 1);
    assert_eq!(ledger.live(), 1);
}

/// A return hands its connection straight to the oldest waiter, which judges it
/// without entering the slower checkout: a connection used a moment ago needs no
/// health check, and the lifetime still holds.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_connection_handed_to_a_waiter_is_judged_like_one_found_idle() {
    let (m, ledger) = TestManager::new();
    let pool = Arc::new(
        Builder::new()
            .max_size(1)
            .max_lifetime(ms(40))
            .health_check_after(ms(10))
            .janitor_interval(Duration::from_secs(3600))
            .build(m)
            .unwrap(),
    );
    let waiter = || {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.unwrap().id })
    };
    let mut held = Some(pool.get().await.unwrap());
    let checks = ledger.checks.load(SeqCst);
    for round in 0..3 {
        let waiting = waiter();
        tokio::task::yield_now().await;
        assert_eq!(pool.status().waiting, 1, "round {round}: the waiter queued");
        advance(ms(5)).await;
        drop(held.take());
        assert_eq!(waiting.await.unwrap(), 1, "round {round}: handed over as it was");
        held = Some(pool.get().await.unwrap());
    }
    assert_eq!(ledger.checks.load(SeqCst), checks, "in use a moment ago: never checked");
    // Past its lifetime while in use: the waiter gets a new connection instead.
    let waiting = waiter();
    tokio::task::yield_now().await;
    advance(ms(40)).await;
    drop(held.take());
    assert_eq!(waiting.await.unwrap(), 2, "replaced at its lifetime");
    assert_eq!(value(&pool, "closed_lifetime"), 1);
    assert_eq!(ledger.live(), 1);
}

/// Every task that awaits a `get` holds its future: one that inlined the dialling and
/// checking paths would be several kilobytes, in every such task. The failover pool's
/// `get` also holds the timer bounding the primary's checkout.
#[tokio::test(flavor = "current_thread")]
async fn get_futures_stay_small() {
    const POOL_LIMIT: usize = 512;
    const WRAPPER_LIMIT: usize = 1024;
    let pool = || Builder::new().min_idle(1).build(TestManager::new().0).unwrap();
    let failover =
        poolside_connpool::failover::FailoverBuilder::new().build(pool(), pool()).unwrap();
    let sharded: poolside_connpool::sharded::ShardedPool<str, TestManager> =
        poolside_connpool::sharded::ShardedPool::new(vec![pool()]).unwrap();
    let pool = failover.primary();
    let sizes = [
        ("get", std::mem::size_of_val(&pool.get()), POOL_LIMIT),
        ("get_timeout", std::mem::size_of_val(&pool.get_timeout(ms(1))), POOL_LIMIT),
        ("try_get", std::mem::size_of_val(&pool.try_get()), POOL_LIMIT),
        ("get_owned", std::mem::size_of_val(&pool.get_owned()), POOL_LIMIT),
        ("failover get", std::mem::size_of_val(&failover.get()), WRAPPER_LIMIT),
        ("sharded get", std::mem::size_of_val(&sharded.get("key")), WRAPPER_LIMIT),
    ];
    for (name, size, limit) in sizes {
        assert!(size <= limit, "the {name} future is {size} bytes (at most {limit} expected)");
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_closed_or_dropped_pool_leaves_nothing_running() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    for _ in 0..10 {
        drop(pool.get().await.unwrap());
    }
    pool.close();
    tokio::task::yield_now().await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);
    let other = Builder::new().max_size(2).build(m).unwrap();
    drop(other.get().await.unwrap());
    drop(other);
    advance(ms(5)).await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);
    assert_eq!(ledger.live(), 0);
}

/// One gets in a row on a multi-thread runtime while it is oversubscribed: `tasks`
/// tasks on `workers` workers, `neighbours` spinning OS threads, a sampler checking
/// the levels the whole time. Returns the total gets.
fn churn(workers: usize, neighbours: usize, size: usize, tasks: u64, gets: u64) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..neighbours)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let spins = AtomicU64::new(0);
                while !stop.load(Relaxed) {
                    spins.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap();
    let (m, ledger) = TestManager::new();
    let pool = runtime.block_on(async {
        let pool = Builder::new().max_size(size).build(m).unwrap();
        pool.warm(size).await.unwrap();
        pool
    });
    let sampler = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Relaxed) {
                let s = pool.status();
                assert_eq!(s.idle + s.in_use, s.open, "{s:?}");
                assert!(s.open <= size && s.idle <= s.open, "{s:?}");
                samples += 1;
                std::thread::yield_now();
            }
            samples
        })
    };
    let done = runtime.block_on(async {
        let tasks: Vec<_> = (0..tasks)
            .map(|task| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for i in 0..gets {
                        let conn = pool.get().await.unwrap();
                        // Some hold across a yield (so others queue and returns go to
                        // waiters), some return at once (the immediate path).
                        if (i + task) % 5 == 0 {
                            tokio::task::yield_now().await;
                        }
                        drop(conn);
                    }
                })
            })
            .collect();
        tokio::time::timeout(Duration::from_secs(20), async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
    });
    stop.store(true, Relaxed);
    let samples = sampler.join().expect("levels stayed consistent");
    spinners.into_iter().for_each(|s| s.join().unwrap());
    assert!(done.is_ok(), "a task hung next to an idle connection (lost wake-up)");
    assert!(samples > 0);
    let status = pool.status();
    assert_eq!((status.in_use, status.waiting, status.open), (0, 0, size), "{status:?}");
    let total = tasks * gets;
    assert_eq!(value(&pool, "acquires"), total);
    assert_eq!(value(&pool, "releases"), total);
    assert_eq!(value(&pool, "dials"), size as u64, "no connection was lost or replaced");
    drop(pool);
    drop(runtime);
    assert_eq!(ledger.live(), 0);
    total
}

#[test]
fn churn_on_a_quiet_machine_loses_no_wake_up_and_counts_exactly() {
    assert_eq!(churn(2, 0, 3, 24, 2_000), 48_000);
}

#[test]
fn churn_with_spinning_neighbours_loses_no_wake_up_and_counts_exactly() {
    assert_eq!(churn(2, 2, 2, 16, 1_500), 24_000);
}

#[test]
fn churn_with_more_workers_than_stripes_loses_no_wake_up() {
    // Workers share stripes, so stripe locks are contended.
    assert_eq!(churn(6, 1, 4, 32, 500), 16_000);
}
