//! FailoverPool logic on tokio's paused clock: routing, tripping on each failure kind,
//! probing back, discarding demoted connections, `run`'s retries and cancellation,
//! configuration errors and metrics. The real-socket acceptance run is in
//! `failover_faults.rs`.

use crate::common::{Ledger, TestConn, TestError, TestManager, wait_for};
use poolside_connpool::{
    Builder, GetError, Pool, WaitPolicy, failover::Backend, failover::BuildError,
    failover::FailoverBuilder, failover::FailoverPool, failover::FailoverState, failover::Failure,
    failover::RunError,
};
use poolside_core::Snapshot;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

const PROBE_AFTER: Duration = Duration::from_millis(500);

struct Setup {
    pool: FailoverPool<TestManager>,
    primary: Arc<Ledger>,
    spare: Arc<Ledger>,
}

fn primary_pool() -> (Pool<TestManager>, Arc<Ledger>) {
    let (manager, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(4)
        .connect_timeout(Duration::from_millis(100))
        .wait(WaitPolicy::Timeout(Duration::from_millis(50)))
        .build(manager)
        .unwrap();
    (pool, ledger)
}

fn spare_pool() -> (Pool<TestManager>, Arc<Ledger>) {
    let (manager, ledger) = TestManager::new();
    (Builder::new().max_size(4).min_idle(1).build(manager).unwrap(), ledger)
}

fn setup(builder: FailoverBuilder) -> Setup {
    let (primary_pool, primary) = primary_pool();
    let (spare_pool, spare) = spare_pool();
    let pool = builder.probe_after(PROBE_AFTER).build(primary_pool, spare_pool).unwrap();
    Setup { pool, primary, spare }
}

async fn backend_of_get(pool: &FailoverPool<TestManager>) -> Backend {
    pool.get().await.expect("the spare always serves").backend()
}

/// Lets spawned tasks (the probe) run to completion on the paused clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_healthy_primary_serves_every_checkout() {
    let s = setup(FailoverBuilder::new());
    for _ in 0..20 {
        let conn = s.pool.get().await.unwrap();
        assert_eq!(conn.backend(), Backend::Primary);
        assert!(conn.is_from(&s.primary));
    }
    let stats = s.pool.stats();
    assert_eq!((stats.routed_primary, stats.routed_spare, stats.trips), (20, 0, 0));
    assert_eq!(s.pool.state(), FailoverState::Primary);
}

#[tokio::test(start_paused = true)]
async fn connect_errors_trip_the_breaker_and_callers_are_served_by_the_spare() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 3));
    s.primary.fail_connect.store(true, SeqCst);
    for i in 0..3 {
        assert_eq!(backend_of_get(&s.pool).await, Backend::Spare, "checkout {i} falls back");
    }
    assert_eq!(s.pool.state(), FailoverState::Spare, "the third connect error trips");
    // Once tripped, the primary is not even tried.
    let connects_before = s.primary.connects.load(SeqCst);
    for _ in 0..5 {
        assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
    }
    assert_eq!(s.primary.connects.load(SeqCst), connects_before);
    let stats = s.pool.stats();
    assert_eq!((stats.trips, stats.routed_spare, stats.retries), (1, 8, 3));
}

/// The same trip with fresh pools, many times: the primary's dial backoff has random
/// jitter, and whatever it draws, a checkout that ran out of time while the primary
/// had free slots counts as a connect error (it went to dialling), not exhaustion.
#[tokio::test(start_paused = true)]
async fn connect_errors_trip_the_breaker_whatever_the_backoff_draws() {
    for round in 0..300 {
        let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 3));
        s.primary.fail_connect.store(true, SeqCst);
        for _ in 0..3 {
            assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
        }
        assert_eq!(s.pool.state(), FailoverState::Spare, "round {round}: the third error trips");
    }
}

#[tokio::test(start_paused = true)]
async fn failures_outside_the_window_do_not_add_up() {
    let s = setup(
        FailoverBuilder::new().window(Duration::from_secs(1)).trip_after(Failure::ConnectError, 3),
    );
    s.primary.fail_connect.store(true, SeqCst);
    for _ in 0..2 {
        backend_of_get(&s.pool).await;
    }
    tokio::time::advance(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        backend_of_get(&s.pool).await;
    }
    assert_eq!(s.pool.state(), FailoverState::Primary, "2 + 2 failures a second apart");
    backend_of_get(&s.pool).await;
    assert_eq!(s.pool.state(), FailoverState::Spare);
}

#[tokio::test(start_paused = true)]
async fn failed_health_checks_on_stale_primary_connections_do_not_fail_over() {
    // A stale connection failing its checkout ping is the pool's problem: the checkout
    // dials a fresh primary connection, and nothing counts against the primary.
    let (manager, primary) = TestManager::new();
    let primary_pool = Builder::new().max_health_retries(0).build(manager).unwrap();
    let (spare_pool, _) = spare_pool();
    let pool = FailoverBuilder::new()
        .trip_after(Failure::HealthCheck, 1)
        .build(primary_pool, spare_pool)
        .unwrap();
    let warm = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop(warm);
    // Unused past `health_check_after`: the next checkouts ping them, and the ping fails.
    tokio::time::advance(Duration::from_secs(1)).await;
    primary.fail_check.store(true, SeqCst);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.backend(), Backend::Primary);
    assert_eq!(conn.id, 3, "the stale one was replaced by a fresh dial");
    drop(conn);
    assert_eq!(pool.state(), FailoverState::Primary);
    assert_eq!(Snapshot::of(pool.primary()).value("health_fails"), Some(1));
    assert_eq!(pool.stats().routed_spare, 0);
}

#[tokio::test(start_paused = true)]
async fn primary_exhaustion_trips_on_its_own_threshold() {
    // The primary's 4 slots held: every further checkout times out waiting there.
    let s = setup(FailoverBuilder::new().trip_after(Failure::Exhaustion, 2));
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(s.pool.get().await.unwrap());
    }
    assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
    assert_eq!(s.pool.state(), FailoverState::Primary);
    assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
    assert_eq!(s.pool.state(), FailoverState::Spare);
    assert_eq!(Snapshot::of(s.pool.primary()).value("timeouts"), Some(2));
    drop(held);
    assert_eq!(s.pool.primary().status().open, 0, "demoted: all four closed on return");
}

#[tokio::test(start_paused = true)]
async fn never_trip_on_still_falls_back_but_keeps_the_primary() {
    let s = setup(FailoverBuilder::new().never_trip_on(Failure::ConnectError));
    s.primary.fail_connect.store(true, SeqCst);
    for _ in 0..20 {
        assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
    }
    assert_eq!(s.pool.state(), FailoverState::Primary);
    assert_eq!(s.pool.stats().trips, 0);
}

#[tokio::test(start_paused = true)]
async fn the_probe_moves_traffic_back_only_once_the_primary_is_healthy() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 1));
    s.primary.fail_connect.store(true, SeqCst);
    backend_of_get(&s.pool).await;
    assert_eq!(s.pool.state(), FailoverState::Spare);

    // Before the probe is due nothing touches the primary.
    tokio::time::advance(PROBE_AFTER - Duration::from_millis(1)).await;
    backend_of_get(&s.pool).await;
    assert_eq!(s.pool.stats().probes, 0);

    // Due, but the primary is still down: the probe fails and the breaker stays open.
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(backend_of_get(&s.pool).await, Backend::Spare, "probing callers use the spare");
    settle().await;
    let stats = s.pool.stats();
    assert_eq!((stats.probes, stats.probe_failures), (1, 1));
    assert_eq!(s.pool.state(), FailoverState::Spare);

    // Recovered: the next due probe closes the breaker.
    s.primary.fail_connect.store(false, SeqCst);
    backend_of_get(&s.pool).await;
    settle().await;
    assert_eq!(s.pool.stats().probes, 1, "the next probe waits another probe_after");
    tokio::time::advance(PROBE_AFTER).await;
    backend_of_get(&s.pool).await;
    settle().await;
    assert_eq!(s.pool.state(), FailoverState::Primary);
    assert_eq!(backend_of_get(&s.pool).await, Backend::Primary);
    let stats = s.pool.stats();
    assert_eq!((stats.probes, stats.probe_failures, stats.trips), (2, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_hangs_is_bounded_by_the_probe_timeout() {
    let s = setup(
        FailoverBuilder::new()
            .trip_after(Failure::ConnectError, 1)
            .probe_timeout(Duration::from_millis(200)),
    );
    s.primary.fail_connect.store(true, SeqCst);
    backend_of_get(&s.pool).await;
    s.primary.fail_connect.store(false, SeqCst);
    s.primary.connect_delay_ms.store(60_000, SeqCst);
    tokio::time::advance(PROBE_AFTER).await;
    backend_of_get(&s.pool).await;
    settle().await;
    assert_eq!(s.pool.state(), FailoverState::Probing);
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(s.pool.state(), FailoverState::Spare);
    assert_eq!(s.pool.stats().probe_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn connections_of_a_demoted_primary_are_closed_on_return() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::Request, 2));
    let held = s.pool.get().await.unwrap();
    let idle_soon = s.pool.get().await.unwrap();
    drop(idle_soon);
    assert_eq!(s.pool.primary().status().idle, 1);

    s.pool.get().await.unwrap().report_failure();
    s.pool.get().await.unwrap().report_failure();
    assert_eq!(s.pool.state(), FailoverState::Spare);
    assert_eq!(s.pool.primary().status().idle, 0, "idle primary connections closed at the trip");

    assert_eq!(held.backend(), Backend::Primary);
    drop(held);
    assert_eq!(s.pool.primary().status().open, 0, "returned, then closed");
    assert_eq!(s.primary.live(), 0);
    assert_eq!(s.pool.stats().discarded_demoted, 1);
}

fn on_primary(conn: &TestConn, primary: &Arc<Ledger>) -> bool {
    conn.is_from(primary)
}

#[tokio::test(start_paused = true)]
async fn run_retries_a_failed_request_on_the_spare() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::Request, 3));
    let primary = s.primary.clone();
    let answer = s
        .pool
        .run(|conn| {
            let primary = primary.clone();
            Box::pin(async move {
                if on_primary(conn, &primary) {
                    Err(TestError("reset by peer"))
                } else {
                    Ok(conn.id)
                }
            })
        })
        .await
        .unwrap();
    assert_eq!(answer, 1, "the spare's first connection");
    assert_eq!(s.primary.live(), 0, "the failed primary connection was closed");
    let stats = s.pool.stats();
    assert_eq!((stats.retries, stats.routed_primary, stats.routed_spare), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn run_retries_a_request_that_hangs_past_the_request_timeout() {
    let s = setup(FailoverBuilder::new().request_timeout(Duration::from_millis(300)));
    let primary = s.primary.clone();
    let started = tokio::time::Instant::now();
    let answer = s
        .pool
        .run(|conn| {
            let on_primary = on_primary(conn, &primary);
            Box::pin(async move {
                if on_primary {
                    std::future::pending::<()>().await;
                }
                Ok::<_, TestError>("served")
            })
        })
        .await
        .unwrap();
    assert_eq!(answer, "served");
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn run_gives_up_after_max_attempts_with_the_last_cause() {
    let s = setup(FailoverBuilder::new().max_attempts(3));
    let mut calls = 0;
    let err = s
        .pool
        .run(|_| {
            calls += 1;
            Box::pin(async { Err::<(), _>(TestError("always fails")) })
        })
        .await
        .unwrap_err();
    assert_eq!(calls, 3);
    match err {
        RunError::Request { attempts: 3, last } => assert_eq!(last.0, "always fails"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(s.pool.stats().retries, 2);
}

#[tokio::test(start_paused = true)]
async fn run_stops_at_once_when_the_pools_are_closed() {
    let s = setup(FailoverBuilder::new());
    s.pool.close();
    let err = s.pool.run(|_| Box::pin(async { Ok::<_, TestError>(()) })).await.unwrap_err();
    assert!(matches!(err, RunError::Get { attempts: 1, last } if last.is_closed()));
    assert!(s.pool.get().await.unwrap_err().is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_mid_request_closes_its_connection() {
    let s = setup(FailoverBuilder::new());
    let pool = s.pool.clone();
    let task = tokio::spawn(async move {
        pool.run(|_| {
            Box::pin(async {
                std::future::pending::<()>().await;
                Ok::<_, TestError>(())
            })
        })
        .await
    });
    settle().await;
    assert_eq!(s.pool.primary().status().in_use, 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let status = s.pool.primary().status();
    assert_eq!((status.open, status.idle, status.in_use), (0, 0, 0), "closed, not reused");
    assert_eq!(s.primary.live(), 0);
    assert_eq!(s.pool.stats().trips, 0, "a caller's cancellation is not a backend failure");
}

#[tokio::test(start_paused = true)]
async fn many_callers_during_an_outage_all_succeed_and_counts_stay_exact() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::Request, 5));
    s.primary.fail_connect.store(false, SeqCst);
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let pool = s.pool.clone();
        let primary = s.primary.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(i % 20))).await;
            pool.run(|conn| {
                let primary = primary.clone();
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if i >= 40 && conn.is_from(&primary) {
                        Err(TestError("primary down"))
                    } else {
                        Ok(i)
                    }
                })
            })
            .await
        }));
    }
    let mut served = Vec::new();
    for task in tasks {
        served.push(task.await.unwrap().expect("zero lost requests"));
    }
    served.sort_unstable();
    assert_eq!(served, (0..200).collect::<Vec<_>>());
    let stats = s.pool.stats();
    assert_eq!(stats.trips, 1);
    // Every request was handed one connection, plus one per retried attempt, except
    // retries of a checkout whose primary connection was demoted before hand-out.
    let routed = stats.routed_primary + stats.routed_spare;
    assert!((200..=200 + stats.retries).contains(&routed), "{stats:?}");
    assert!(routed + stats.discarded_demoted >= 200 + stats.retries, "{stats:?}");
    for pool in [s.pool.primary(), s.pool.spare()] {
        let status = pool.status();
        assert_eq!(status.in_use, 0);
        assert_eq!(status.open, status.idle);
    }
    assert_eq!(s.primary.live(), s.pool.primary().status().open);
    assert_eq!(s.spare.live(), s.pool.spare().status().open);
}

#[tokio::test(start_paused = true)]
async fn invalid_settings_are_rejected_when_the_pool_is_built() {
    let build = |builder: FailoverBuilder| {
        let (primary, _) = primary_pool();
        let (spare, _) = spare_pool();
        builder.build(primary, spare).map(drop)
    };
    assert_eq!(
        build(FailoverBuilder::new().trip_after(Failure::Exhaustion, 0)),
        Err(BuildError::ZeroThreshold { failure: Failure::Exhaustion })
    );
    assert_eq!(build(FailoverBuilder::new().max_attempts(0)), Err(BuildError::ZeroAttempts));
    assert_eq!(
        build(FailoverBuilder::new().probe_after(Duration::ZERO)),
        Err(BuildError::ZeroDuration { setting: "probe_after" })
    );
    assert_eq!(
        build(FailoverBuilder::new().window(Duration::ZERO)),
        Err(BuildError::ZeroDuration { setting: "window" })
    );
    let (primary, _) = primary_pool();
    let (cold, _) = primary_pool();
    assert_eq!(
        FailoverBuilder::new().build(primary.clone(), cold).map(drop),
        Err(BuildError::ColdSpare)
    );
    assert_eq!(
        FailoverBuilder::new().build(primary.clone(), primary).map(drop),
        Err(BuildError::SpareIsPrimary)
    );
    assert!(BuildError::ColdSpare.to_string().contains("min_idle"));
    // Each error names the option at fault.
    assert_eq!(BuildError::ZeroThreshold { failure: Failure::Exhaustion }.setting(), "trip_after");
    assert_eq!(BuildError::ZeroAttempts.setting(), "max_attempts");
    assert_eq!(BuildError::ZeroDuration { setting: "window" }.setting(), "window");
    assert_eq!(BuildError::SpareIsPrimary.setting(), "spare");
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    let (primary, _) = primary_pool();
    let spare = {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async { spare_pool().0 })
    };
    assert_eq!(FailoverBuilder::new().build(primary, spare).map(drop), Err(BuildError::NoRuntime));
}

#[tokio::test(start_paused = true)]
async fn metrics_report_state_and_counters() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 1));
    drop(s.pool.get().await.unwrap());
    assert_eq!(s.pool.primary().retain(|_, _| false), Ok(1));
    s.primary.fail_connect.store(true, SeqCst);
    drop(s.pool.get().await.unwrap());
    let snap = Snapshot::of(&s.pool);
    assert_eq!(snap.kind, "connpool_failover");
    assert_eq!(snap.value("state"), Some(FailoverState::Spare as u64));
    assert_eq!(snap.value("trips"), Some(1));
    assert_eq!(snap.value("routed_primary"), Some(1));
    assert_eq!(snap.value("routed_spare"), Some(1));
    assert_eq!(snap.value("retries"), Some(1));
    // The primary pool itself backs off and retries within its 50 ms wait.
    let err = s.pool.primary().get().await.map(drop).unwrap_err();
    assert!(
        matches!(
            err,
            GetError::ConnectFailed { last: TestError("connection refused"), .. }
                | GetError::Connect(TestError("connection refused"))
                | GetError::Backoff { .. }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_waiting_on_the_primary_when_it_trips_is_served_by_the_spare() {
    let s = setup(FailoverBuilder::new().trip_after(Failure::Request, 1));
    // The primary's only connection is slow to open; a trip happens meanwhile.
    s.primary.connect_delay_ms.store(40, SeqCst);
    let pool = s.pool.clone();
    let waiting = tokio::spawn(async move { pool.get().await.unwrap().backend() });
    settle().await;
    s.primary.connect_delay_ms.store(0, SeqCst);
    // Trip through a reported failure on a second primary checkout.
    s.pool.get().await.unwrap().report_failure();
    assert_eq!(s.pool.state(), FailoverState::Spare);
    let backend = waiting.await.unwrap();
    assert_eq!(backend, Backend::Spare, "a connection of the demoted primary is not handed out");
    let stats = s.pool.stats();
    assert_eq!(stats.discarded_demoted, 1);
    assert_eq!(s.pool.primary().status().in_use, 0);
}

#[tokio::test(start_paused = true)]
async fn with_defaults_a_black_holed_primary_fails_over_within_a_second() {
    // Default primary settings: a 30 s connect timeout and a 30 s wait.
    let (manager, primary) = TestManager::new();
    let primary_pool = Builder::new().max_size(4).build(manager).unwrap();
    let (spare_pool, _) = spare_pool();
    let pool = FailoverBuilder::new().build(primary_pool, spare_pool).unwrap();
    primary.connect_delay_ms.store(3_600_000, SeqCst);
    let started = tokio::time::Instant::now();
    // Callers at once: each is served by the spare within the primary checkout budget.
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let asked = tokio::time::Instant::now();
                let backend = pool.get().await.unwrap().backend();
                (backend, asked.elapsed())
            })
        })
        .collect();
    for caller in callers {
        let (backend, took) = caller.await.unwrap();
        assert_eq!(backend, Backend::Spare);
        assert!(took < Duration::from_secs(1), "served after {took:?}");
    }
    // One after another, too: the breaker trips within a second.
    while pool.state() == FailoverState::Primary {
        assert_eq!(backend_of_get(&pool).await, Backend::Spare);
    }
    assert!(started.elapsed() < Duration::from_secs(1), "tripped after {:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn with_defaults_an_exhausted_primary_serves_from_the_spare_within_a_second() {
    let (manager, _primary) = TestManager::new();
    let primary_pool = Builder::new().max_size(2).build(manager).unwrap();
    let (spare_pool, _) = spare_pool();
    let pool = FailoverBuilder::new().build(primary_pool, spare_pool).unwrap();
    let held = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(held.0.backend(), Backend::Primary);
    // One caller: served by the spare after the primary checkout budget (250 ms).
    let asked = tokio::time::Instant::now();
    assert_eq!(backend_of_get(&pool).await, Backend::Spare);
    assert!(asked.elapsed() < Duration::from_secs(1));
    // A burst: every caller is served within a second, and ten exhaustions within the
    // window trip the breaker.
    let callers: Vec<_> = (0..12)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let asked = tokio::time::Instant::now();
                let backend = pool.get().await.unwrap().backend();
                (backend, asked.elapsed())
            })
        })
        .collect();
    for caller in callers {
        let (backend, took) = caller.await.unwrap();
        assert_eq!(backend, Backend::Spare);
        assert!(took < Duration::from_secs(1), "served after {took:?}");
    }
    assert_eq!(pool.state(), FailoverState::Spare, "ten exhaustions trip the breaker");
    drop(held);
}

/// The probe runs as a task. A pool built on one runtime and used from another (the
/// first shut down, or idle and never driven again) must still probe its primary:
/// otherwise it stays on the spare for good.
#[test]
fn the_probe_runs_on_the_runtime_that_uses_the_pool() {
    let first = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let s = first.block_on(async {
        let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 1));
        s.primary.fail_connect.store(true, SeqCst);
        backend_of_get(&s.pool).await;
        assert_eq!(s.pool.state(), FailoverState::Spare);
        s
    });
    s.primary.fail_connect.store(false, SeqCst);
    let second = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let back_on_primary = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            wait_for("no probe brought the pool back to its primary", async || {
                backend_of_get(&s.pool).await == Backend::Primary
            })
            .await;
        })
    };
    // `first` is idle (not driven) while `second` serves.
    back_on_primary(&second);
    assert_eq!(s.pool.stats().probes, 1);
    // Tripped again, with the runtime it was built on gone.
    drop(first);
    s.primary.fail_connect.store(true, SeqCst);
    second.block_on(async {
        s.pool.primary().retain(|_, _| false).unwrap();
        backend_of_get(&s.pool).await;
        assert_eq!(s.pool.state(), FailoverState::Spare);
    });
    s.primary.fail_connect.store(false, SeqCst);
    let third = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    back_on_primary(&third);
}

#[test]
fn a_probe_cut_short_by_its_runtime_shutting_down_leaves_the_breaker_ready_to_probe_again() {
    let first = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let s = first.block_on(async {
        let s = setup(FailoverBuilder::new().trip_after(Failure::ConnectError, 1));
        s.primary.fail_connect.store(true, SeqCst);
        backend_of_get(&s.pool).await;
        s.primary.fail_connect.store(false, SeqCst);
        // The probe's dial will hang until its runtime goes away.
        s.primary.connect_delay_ms.store(60_000, SeqCst);
        tokio::time::sleep(PROBE_AFTER).await;
        assert_eq!(backend_of_get(&s.pool).await, Backend::Spare);
        settle().await;
        assert_eq!(s.pool.state(), FailoverState::Probing, "the probe is dialling");
        s
    });
    drop(first);
    assert_eq!(s.pool.state(), FailoverState::Spare, "not half-open for good");
    s.primary.connect_delay_ms.store(0, SeqCst);
    let second = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    second.block_on(async {
        wait_for("no probe brought the pool back to its primary", async || {
            backend_of_get(&s.pool).await == Backend::Primary
        })
        .await;
    });
}
