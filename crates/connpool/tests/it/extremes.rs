//! Absurd input is a typed error, never a panic, at build or later: every builder
//! option of `Pool`, `ShardedPool` and `FailoverPool` is fed 0, `usize::MAX` /
//! `u32::MAX` and `Duration::MAX` (and neighbours). A setting that builds must then
//! survive a workout: checkouts, returns, broken connections, janitor rounds, a resize,
//! a retain, and close, on tokio's paused clock, where "later" is hours away.

use crate::common::TestManager;
use poolside_connpool::{
    BuildError, Builder, Pool, ResizeError, WaitPolicy, failover, failover::FailoverBuilder,
    failover::Failure, sharded::JumpHash, sharded::ShardSelector, sharded::ShardedPool,
};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

const MAX: Duration = Duration::MAX;
const ZERO: Duration = Duration::ZERO;
const NS: Duration = Duration::from_nanos(1);

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Setting = (&'static str, fn(Builder) -> Builder);

/// Every `Builder` option at its extremes. `Some(err)`: the build must fail with it.
fn pool_table() -> Vec<(Setting, Option<BuildError>)> {
    let zero = |setting| Some(BuildError::ZeroDuration { setting });
    vec![
        (("max_size 0", |b| b.max_size(0)), Some(BuildError::ZeroMaxSize)),
        (("max_size 1", |b| b.max_size(1)), None),
        (("max_size u32::MAX", |b| b.max_size(u32::MAX as usize)), None),
        (
            ("max_size usize::MAX", |b| b.max_size(usize::MAX)),
            Some(BuildError::OutOfRange { setting: "max_size" }),
        ),
        (("min_idle 0", |b| b.min_idle(0)), None),
        (
            ("min_idle usize::MAX", |b| b.min_idle(usize::MAX)),
            Some(BuildError::MinIdleAboveMaxSize { min_idle: usize::MAX, max_size: 10 }),
        ),
        (("min_idle = max_size", |b| b.max_size(3).min_idle(3)), None),
        (("max_lifetime 0", |b| b.max_lifetime(ZERO)), zero("max_lifetime")),
        (("max_lifetime 1 ns", |b| b.max_lifetime(NS)), None),
        (("max_lifetime MAX", |b| b.max_lifetime(MAX)), None),
        (("max_idle_time 0", |b| b.max_idle_time(ZERO)), zero("max_idle_time")),
        (("max_idle_time 1 ns", |b| b.max_idle_time(NS)), None),
        (("max_idle_time MAX", |b| b.max_idle_time(MAX)), None),
        (
            ("max_idle_time > max_lifetime", |b| b.max_idle_time(MAX).max_lifetime(NS)),
            Some(BuildError::IdleTimeAboveLifetime),
        ),
        (("health_check_after 0", |b| b.health_check_after(ZERO)), None),
        (("health_check_after MAX", |b| b.health_check_after(MAX)), None),
        (("max_health_retries 0", |b| b.max_health_retries(0)), None),
        (("max_health_retries u32::MAX", |b| b.max_health_retries(u32::MAX)), None),
        (("connect_timeout 0", |b| b.connect_timeout(ZERO)), zero("connect_timeout")),
        (("connect_timeout 1 ns", |b| b.connect_timeout(NS)), None),
        (("connect_timeout MAX", |b| b.connect_timeout(MAX)), None),
        (("wait timeout 0", |b| b.wait(WaitPolicy::Timeout(ZERO))), zero("wait timeout")),
        (("wait timeout 1 ns", |b| b.wait(WaitPolicy::Timeout(NS))), None),
        (("wait timeout MAX", |b| b.wait(WaitPolicy::Timeout(MAX))), None),
        (("wait fail-fast", |b| b.wait(WaitPolicy::FailFast)), None),
        (("janitor_interval 0", |b| b.janitor_interval(ZERO)), zero("janitor_interval")),
        (
            ("janitor_interval 1 ns", |b| b.min_idle(1).janitor_interval(NS)),
            Some(BuildError::OutOfRange { setting: "janitor_interval" }),
        ),
        (("janitor_interval 1 ms", |b| b.min_idle(1).janitor_interval(ms(1))), None),
        (("janitor_interval MAX", |b| b.min_idle(1).janitor_interval(MAX)), None),
        (("dial_backoff 0", |b| b.dial_backoff(ZERO, ZERO)), zero("dial backoff min")),
        (("dial_backoff 1 ns .. MAX", |b| b.dial_backoff(NS, MAX)), None),
        (("dial_backoff MAX .. MAX", |b| b.dial_backoff(MAX, MAX)), None),
        (
            ("dial_backoff MAX .. 1 ns", |b| b.dial_backoff(MAX, NS)),
            Some(BuildError::BackoffRange { min: MAX, max: NS }),
        ),
        (("connect_retries 0", |b| b.connect_retries(0)), None),
        (("connect_retries u32::MAX", |b| b.connect_retries(u32::MAX)), None),
        (
            ("everything MAX", |b| {
                b.max_size(u32::MAX as usize)
                    .max_lifetime(MAX)
                    .max_idle_time(MAX)
                    .health_check_after(MAX)
                    .max_health_retries(u32::MAX)
                    .connect_timeout(MAX)
                    .wait(WaitPolicy::Timeout(MAX))
                    .janitor_interval(MAX)
                    .dial_backoff(MAX, MAX)
                    .connect_retries(u32::MAX)
                    .min_idle(1)
            }),
            None,
        ),
    ]
}

/// Exercises a pool that built: nothing may panic; a healthy pool serves; counts
/// stay exact. (Where the settings ask for endless waits, a get may wait: each is
/// bounded here.)
async fn workout(pool: &Pool<TestManager>, ledger: &crate::common::Ledger) {
    let bound = Duration::from_secs(60);
    for round in 0..3 {
        let got = tokio::time::timeout(bound, pool.get()).await.expect("a healthy get hung");
        if let Ok(mut conn) = got {
            if round == 1 {
                conn.mark_broken();
            }
            drop(conn);
        }
        tokio::time::sleep(ms(300)).await;
    }
    // Dials fail for a while: the backoff, whatever its settings, must not panic.
    ledger.fail_connect.store(true, SeqCst);
    pool.retain(|_, _| false).unwrap();
    let _ = tokio::time::timeout(bound, pool.get()).await;
    let _ = pool.try_get().await;
    ledger.fail_connect.store(false, SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = tokio::time::timeout(bound, pool.get_timeout(MAX)).await;
    let _ = pool.get_timeout(NS).await;
    pool.resize(pool.max_size()).unwrap();
    let _ = tokio::time::timeout(bound, pool.warm(1)).await;
    let s = pool.status();
    assert_eq!((s.in_use, s.idle + s.in_use), (0, s.open), "{s:?}");
    assert_eq!(ledger.live(), s.open);
    pool.close();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    pool.close_graceful(deadline).await.unwrap();
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (0, 0, 0), "{s:?}");
    assert_eq!(ledger.live(), 0);
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

#[test]
fn every_pool_option_at_its_extremes_is_a_typed_error_or_works() {
    let mut failures = Vec::new();
    for ((name, apply), expected) in pool_table() {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            paused_runtime().block_on(async {
                let (m, ledger) = TestManager::new();
                match (apply(Builder::new()).build(m), expected) {
                    (Ok(pool), None) => workout(&pool, &ledger).await,
                    (Err(err), Some(want)) => {
                        assert_eq!(err, want);
                        assert!(!err.to_string().is_empty());
                    }
                    (Ok(_), Some(want)) => panic!("built, expected {want:?}"),
                    (Err(err), None) => panic!("refused with {err:?}"),
                }
            })
        }));
        if outcome.is_err() {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "settings that panicked or misbehaved: {failures:?}");
}

#[test]
fn resize_at_its_extremes_is_a_typed_error_or_works() {
    paused_runtime().block_on(async {
        let (m, _ledger) = TestManager::new();
        let pool = Builder::new().max_size(2).min_idle(1).build(m).unwrap();
        assert_eq!(pool.resize(0), Err(ResizeError::Zero));
        assert_eq!(pool.resize(usize::MAX), Err(ResizeError::TooLarge { max_size: usize::MAX }));
        pool.resize(u32::MAX as usize).unwrap();
        drop(pool.get().await.unwrap());
        pool.resize(1).unwrap();
        assert_eq!(pool.max_size(), 1);
        let (m, _ledger) = TestManager::new();
        let kept = Builder::new().max_size(4).min_idle(3).build(m).unwrap();
        assert_eq!(kept.resize(2), Err(ResizeError::BelowMinIdle { max_size: 2, min_idle: 3 }));
        assert_eq!(kept.max_size(), 4, "a refused resize changes nothing");
    });
}

/// A selector answering out of range: clamped to the last shard, never a panic.
struct Wild;

impl ShardSelector<u64> for Wild {
    fn select(&self, key: &u64, _shards: usize) -> usize {
        if *key == 0 { usize::MAX } else { *key as usize }
    }
}

#[test]
fn sharded_pool_extremes_are_typed_errors_or_work() {
    paused_runtime().block_on(async {
        assert_eq!(
            ShardedPool::<u64, TestManager>::new(Vec::new()).map(drop),
            Err(poolside_connpool::sharded::BuildError::NoShards)
        );
        let shards = |n| (0..n).map(|_| Pool::new(TestManager::new().0)).collect::<Vec<_>>();
        let wild = ShardedPool::with_selector(shards(3), Wild).unwrap();
        for key in [0, 1, 2, 3, u64::MAX] {
            assert!(wild.shard_for(&key) < 3);
            drop(wild.get(&key).await.unwrap());
        }
        let one: ShardedPool<u64, TestManager, JumpHash> =
            ShardedPool::with_selector(shards(1), JumpHash).unwrap();
        assert_eq!(one.shard_for(&u64::MAX), 0);
        assert_eq!(JumpHash.select(&0u64, usize::MAX), JumpHash.select(&0u64, usize::MAX));
        wild.close();
    });
}

type FailoverSetting = (&'static str, fn(FailoverBuilder) -> FailoverBuilder);

#[test]
fn every_failover_option_at_its_extremes_is_a_typed_error_or_works() {
    let zero = |setting| Some(failover::BuildError::ZeroDuration { setting });
    let table: Vec<(FailoverSetting, Option<failover::BuildError>)> = vec![
        (("window 0", |b| b.window(ZERO)), zero("window")),
        (("window 1 ns", |b| b.window(NS)), None),
        (("window MAX", |b| b.window(MAX)), None),
        (("probe_after 0", |b| b.probe_after(ZERO)), zero("probe_after")),
        (("probe_after 1 ns", |b| b.probe_after(NS)), None),
        (("probe_after MAX", |b| b.probe_after(MAX)), None),
        (("probe_timeout 0", |b| b.probe_timeout(ZERO)), zero("probe_timeout")),
        (("probe_timeout MAX", |b| b.probe_timeout(MAX)), None),
        (("request_timeout 0", |b| b.request_timeout(ZERO)), zero("request_timeout")),
        (("request_timeout MAX", |b| b.request_timeout(MAX)), None),
        (
            ("primary_checkout_timeout 0", |b| b.primary_checkout_timeout(ZERO)),
            zero("primary_checkout_timeout"),
        ),
        (("primary_checkout_timeout 1 ns", |b| b.primary_checkout_timeout(NS)), None),
        (("primary_checkout_timeout MAX", |b| b.primary_checkout_timeout(MAX)), None),
        (("max_attempts 0", |b| b.max_attempts(0)), Some(failover::BuildError::ZeroAttempts)),
        (("max_attempts u32::MAX", |b| b.max_attempts(u32::MAX)), None),
        (
            ("trip_after 0", |b| b.trip_after(Failure::ConnectError, 0)),
            Some(failover::BuildError::ZeroThreshold { failure: Failure::ConnectError }),
        ),
        (("trip_after 1", |b| b.trip_after(Failure::ConnectError, 1)), None),
        (("trip_after u32::MAX", |b| b.trip_after(Failure::ConnectError, u32::MAX)), None),
    ];
    let mut failures = Vec::new();
    for ((name, apply), expected) in table {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            paused_runtime().block_on(async {
                let (pm, primary_ledger) = TestManager::new();
                let (sm, _) = TestManager::new();
                let primary = Builder::new().max_size(2).build(pm).unwrap();
                let spare = Builder::new().max_size(2).min_idle(1).build(sm).unwrap();
                match (apply(FailoverBuilder::new()).build(primary, spare), expected) {
                    (Ok(pool), None) => {
                        // Healthy, then failing (trips where a threshold allows), then
                        // probes due at any distance, then closed.
                        drop(pool.get().await.unwrap());
                        primary_ledger.fail_connect.store(true, SeqCst);
                        let _ = pool.primary().retain(|_, _| false);
                        for _ in 0..4 {
                            drop(pool.get().await.unwrap());
                        }
                        primary_ledger.fail_connect.store(false, SeqCst);
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        for _ in 0..3 {
                            drop(pool.get().await.unwrap());
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        let answer = pool
                            .run(|conn| Box::pin(async move { Ok::<_, std::io::Error>(conn.id) }))
                            .await;
                        assert!(answer.is_ok());
                        pool.close();
                    }
                    (Err(err), Some(want)) => assert_eq!(err, want),
                    (Ok(_), Some(want)) => panic!("built, expected {want:?}"),
                    (Err(err), None) => panic!("refused with {err:?}"),
                }
            })
        }));
        if outcome.is_err() {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "settings that panicked or misbehaved: {failures:?}");
}
