//! Behaviour of the pool on tokio's paused clock: policies, fairness, failures,
//! lifetimes, the janitor, close.

use crate::common::{TestError, TestManager};
use poolside_connpool::{
    BuildError, Builder, GetError, Instrumented, Pool, PoolError, Status, WaitPolicy,
};
use poolside_core::{Events, Snapshot, Timing};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A task that gets a connection and reports its id (or the error).
fn spawn_get(pool: &Pool<TestManager>) -> JoinHandle<Result<usize, GetError<TestError>>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.get().await.map(|c| c.id) })
}

fn assert_consistent(status: Status) {
    assert_eq!(status.idle + status.in_use, status.open, "{status:?}");
    assert!(status.open <= status.max_size, "{status:?}");
}

#[test]
fn builder_rejects_invalid_settings() {
    let (m, _) = TestManager::new();
    let b = || Builder::new();
    assert_eq!(b().max_size(0).build(m.clone()).unwrap_err(), BuildError::ZeroMaxSize);
    assert_eq!(
        b().max_size(2).min_idle(3).build(m.clone()).unwrap_err(),
        BuildError::MinIdleAboveMaxSize { min_idle: 3, max_size: 2 }
    );
    assert_eq!(
        b().connect_timeout(Duration::ZERO).build(m.clone()).unwrap_err(),
        BuildError::ZeroDuration { setting: "connect_timeout" }
    );
    assert_eq!(
        b().wait(WaitPolicy::Timeout(Duration::ZERO)).build(m.clone()).unwrap_err(),
        BuildError::ZeroDuration { setting: "wait timeout" }
    );
    assert_eq!(
        b().max_lifetime(ms(10)).max_idle_time(ms(20)).build(m.clone()).unwrap_err(),
        BuildError::IdleTimeAboveLifetime
    );
    // A janitor is needed but there is no runtime here.
    assert_eq!(b().min_idle(1).build(m).unwrap_err(), BuildError::NoRuntime);
}

#[tokio::test(start_paused = true)]
async fn reuses_connections_and_counts() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.id, 1);
    }
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("dials"), Some(1));
    assert_eq!(snap.value("acquires"), Some(5));
    assert_eq!(snap.value("releases"), Some(5));
    assert_eq!(snap.value("idle"), Some(1));
    assert_eq!(ledger.live(), 1);
    assert_eq!(pool.catalogue().len(), 15);
}

#[tokio::test(start_paused = true)]
async fn health_check_skipped_within_window_and_run_after() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().health_check_after(ms(500)).build(m).unwrap();
    drop(pool.get().await.unwrap());
    sleep(ms(100)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.checks.load(SeqCst), 0, "used 100 ms ago: no ping");
    sleep(ms(600)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.checks.load(SeqCst), 1);
    assert_eq!(Snapshot::of(&pool).value("health_checks"), Some(1));
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let order = Arc::new(parking_lot_free::Order::default());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = pool.clone();
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            order.push(i);
            sleep(ms(1)).await;
            drop(conn);
        }));
        // Let each task queue before spawning the next.
        tokio::task::yield_now().await;
        sleep(ms(1)).await;
    }
    assert_eq!(pool.status().waiting, 8);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(order.take(), (0..8).collect::<Vec<_>>());
}

/// A tiny ordered log without extra dependencies.
mod parking_lot_free {
    use std::sync::Mutex;
    #[derive(Default)]
    pub(crate) struct Order(Mutex<Vec<usize>>);
    impl Order {
        pub(crate) fn push(&self, i: usize) {
            self.0.lock().unwrap().push(i);
        }
        pub(crate) fn take(&self) -> Vec<usize> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn fail_fast_reports_exhausted_and_counts_it() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::FailFast).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let err = pool.get().await.unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::Exhausted));
    assert!(pool.try_get().await.is_err());
    assert_eq!(Snapshot::of(&pool).value("exhaustions"), Some(2));
    drop(held);
    assert!(pool.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn timeout_policy_times_out_and_leaves_no_waiter() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Timeout(ms(50))).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(50) }));
    assert_eq!(started.elapsed(), ms(50));
    let snap = Snapshot::of(&pool);
    assert_eq!((snap.value("timeouts"), snap.value("waiting")), (Some(1), Some(0)));
    drop(held);
    assert_eq!(pool.status().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn queue_policy_waits_until_a_connection_returns() {
    let (m, _) = TestManager::new();
    let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = waits.clone();
    let events = Events::new(move |t: Timing, d: Duration| sink.lock().unwrap().push((t, d)));
    let pool = Builder::new().max_size(1).events(events).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(|c| c.id).unwrap() });
    sleep(ms(30)).await;
    drop(held);
    assert_eq!(waiter.await.unwrap(), 1);
    let waits = waits.lock().unwrap();
    assert!(waits.contains(&(Timing::AcquireWait, ms(30))), "{waits:?}");
    let acquires = waits.iter().filter(|(t, _)| *t == Timing::AcquireWait).count();
    assert_eq!(acquires, 2, "every get reports its wait, the first one too: {waits:?}");
    assert!(waits.iter().any(|(t, _)| *t == Timing::Dial));
}

#[tokio::test(start_paused = true)]
async fn connect_failures_keep_counts_and_do_not_hang_waiters() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).connect_retries(0).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let second = pool.get().await.unwrap();
    ledger.fail_connect.store(true, SeqCst);
    let mut waiters = Vec::new();
    for _ in 0..3 {
        waiters.push(spawn_get(&pool));
    }
    sleep(ms(1)).await;
    // A broken connection frees a slot: the first waiter dials and fails, and the slot
    // it held passes on, so every waiter finishes (with an error) and nobody hangs.
    let mut second = second;
    second.mark_broken();
    drop(second);
    for w in waiters {
        let err = w.await.unwrap().unwrap_err();
        assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    }
    assert_consistent(pool.status());
    assert_eq!(pool.status().open, 1);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("dial_errors"), Some(3));
    assert_eq!(snap.value("closed_broken"), Some(1));
    ledger.fail_connect.store(false, SeqCst);
    drop(held);
    let conns = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(pool.status().in_use, 2);
    drop(conns);
}

#[tokio::test(start_paused = true)]
async fn black_holed_connect_times_out_and_frees_the_slot() {
    let (m, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(3_600_000, SeqCst);
    let pool = Builder::new().max_size(1).connect_timeout(ms(200)).build(m).unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::ConnectTimeout { after } if after == ms(200)));
    assert_eq!(pool.status().open, 0);
    ledger.connect_delay_ms.store(0, SeqCst);
    assert!(pool.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn black_holed_health_check_times_out_and_a_fresh_dial_serves() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .max_health_retries(0)
        .connect_timeout(ms(200))
        .build(m)
        .unwrap();
    drop(pool.get().await.unwrap());
    ledger.check_delay_ms.store(3_600_000, SeqCst);
    let started = Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2, "the black-holed connection was discarded, a fresh one dialled");
    assert_eq!(started.elapsed(), ms(200));
    assert_eq!(Snapshot::of(&pool).value("health_fails"), Some(1));
    assert_eq!((pool.status().open, ledger.live()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn broken_connections_do_not_starve_the_pool() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    ledger.broken_up_to.store(50, SeqCst);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let p = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let c = p.get().await.unwrap();
                sleep(ms(1)).await;
                drop(c);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(50));
    assert_consistent(pool.status());
    assert_eq!(ledger.live(), pool.status().open);
}

#[tokio::test(start_paused = true)]
async fn failed_checks_are_bounded_then_a_fresh_dial_serves() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(5)
        .max_health_retries(1)
        .health_check_after(Duration::ZERO)
        .build(m)
        .unwrap();
    let conns: Vec<_> = [
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ]
    .into_iter()
    .collect();
    drop(conns);
    sleep(ms(1)).await;
    ledger.fail_check.store(true, SeqCst);
    // Two stale connections fail their check (the bound), then a fresh dial serves.
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 5);
    assert_eq!(ledger.checks.load(SeqCst), 2, "two checks, no more");
    assert_eq!(Snapshot::of(&pool).value("health_fails"), Some(2));
    assert_eq!((pool.status().open, pool.status().idle, ledger.live()), (3, 2, 3));
    // When the fresh dial fails too, the caller gets the dial's error.
    ledger.fail_connect.store(true, SeqCst);
    let second = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .connect_retries(0)
        .build(TestManager(ledger.clone()))
        .unwrap();
    ledger.fail_connect.store(false, SeqCst);
    drop(second.get().await.unwrap());
    ledger.fail_connect.store(true, SeqCst);
    sleep(ms(1)).await;
    let err = second.get().await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    assert_eq!(second.status().open, 0);
}

#[tokio::test(start_paused = true)]
async fn failed_check_falls_back_to_a_fresh_dial() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().health_check_after(Duration::ZERO).build(m).unwrap();
    drop(pool.get().await.unwrap());
    ledger.fail_check.store(true, SeqCst);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2, "the unhealthy connection was replaced");
    assert_eq!(Snapshot::of(&pool).value("health_fails"), Some(1));
}

#[tokio::test(start_paused = true)]
async fn lifetime_enforced_on_checkout_return_and_sweep() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(3).max_lifetime(ms(1000)).build(m).unwrap();
    // Return: a connection held past its lifetime is closed when it comes back.
    let held = pool.get().await.unwrap();
    sleep(ms(1100)).await;
    drop(held);
    assert_eq!(ledger.closes.load(SeqCst), 1);
    // Sweep: an idle connection is closed by the janitor without any get.
    drop(pool.get().await.unwrap());
    sleep(ms(1500)).await;
    assert_eq!(ledger.closes.load(SeqCst), 2);
    assert_eq!(pool.status().open, 0);
    assert_eq!(Snapshot::of(&pool).value("closed_lifetime"), Some(2));
}

#[tokio::test(start_paused = true)]
async fn lifetime_enforced_on_checkout_without_janitor_running_first() {
    let (m, _) = TestManager::new();
    let pool =
        Builder::new().max_lifetime(ms(1000)).janitor_interval(ms(3_600_000)).build(m).unwrap();
    drop(pool.get().await.unwrap());
    sleep(ms(1001)).await;
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2);
}

#[tokio::test(start_paused = true)]
async fn idle_sweep_keeps_min_idle_and_rewarms() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(5).min_idle(2).max_idle_time(ms(400)).build(m).unwrap();
    sleep(ms(1)).await;
    assert_eq!(pool.status().idle, 2, "pre-warmed to min_idle");
    let conns: Vec<_> = [
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ]
    .into_iter()
    .collect();
    drop(conns);
    assert_eq!(pool.status().idle, 4);
    sleep(ms(1000)).await;
    // Every connection idle past the limit is closed, min_idle ones too; fresh ones
    // restore min_idle, so none is ever older than the limit plus a janitor period.
    assert_eq!(pool.status().idle, 2, "min_idle restored");
    assert!(Snapshot::of(&pool).value("closed_idle") >= Some(4));
    let ages = std::sync::Mutex::new(Vec::new());
    pool.retain(|_, meta| {
        ages.lock().unwrap().push(meta.age());
        true
    })
    .unwrap();
    assert!(ages.into_inner().unwrap().iter().all(|age| *age < ms(400 + 100)));
    // A broken connection below min_idle is replaced.
    let mut a = pool.get().await.unwrap();
    let mut b = pool.get().await.unwrap();
    a.mark_broken();
    b.mark_broken();
    drop((a, b));
    sleep(ms(1)).await;
    assert_eq!(pool.status().idle, 2);
    assert_eq!(ledger.live(), 2);
}

#[tokio::test(start_paused = true)]
async fn lifetime_sweep_replaces_min_idle_connections() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(4).min_idle(2).max_lifetime(ms(1000)).build(m).unwrap();
    sleep(ms(1)).await;
    assert_eq!(ledger.connects.load(SeqCst), 2);
    sleep(ms(2600)).await;
    assert!(ledger.connects.load(SeqCst) >= 4, "recycled and replaced");
    assert_eq!(pool.status().idle, 2);
}

#[tokio::test(start_paused = true)]
async fn panic_while_holding_releases_the_slot_and_discards_the_connection() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let p = pool.clone();
    let outcome = tokio::spawn(async move {
        let _conn = p.get().await.unwrap();
        panic!("handler failed");
    })
    .await;
    assert!(outcome.unwrap_err().is_panic());
    assert_eq!(ledger.closes.load(SeqCst), 1);
    assert_eq!(pool.status().open, 0);
    assert_eq!(pool.get().await.unwrap().id, 2);
}

#[tokio::test(start_paused = true)]
async fn close_wakes_every_waiter_and_leaves_no_task() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).min_idle(1).max_idle_time(ms(100)).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let held2 = pool.get().await.unwrap();
    let mut waiters = Vec::new();
    for _ in 0..10 {
        waiters.push(spawn_get(&pool));
    }
    sleep(ms(1)).await;
    assert_eq!(pool.status().waiting, 10);
    pool.close();
    pool.close();
    for w in waiters {
        assert!(w.await.unwrap().unwrap_err().is_closed());
    }
    assert!(pool.get().await.unwrap_err().is_closed());
    drop((held, held2));
    assert_eq!(ledger.live(), 0);
    sleep(ms(1)).await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0, "janitor ended");
}

#[tokio::test(start_paused = true)]
async fn janitor_ends_when_the_last_handle_drops() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().min_idle(3).build(m).unwrap();
    sleep(ms(1)).await;
    assert_eq!(ledger.live(), 3);
    drop(pool);
    sleep(ms(1)).await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);
    assert_eq!(ledger.live(), 0, "every connection closed exactly once");
}

#[tokio::test(start_paused = true)]
async fn close_graceful_waits_for_checked_out_connections() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().build(m).unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let closer = tokio::spawn(async move { p.close_graceful(Instant::now() + ms(500)).await });
    sleep(ms(100)).await;
    drop(held);
    assert_eq!(closer.await.unwrap(), Ok(()));
    assert_eq!(ledger.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn timeout_after_grant_hands_the_connection_on_without_churn() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    // This waiter is granted the connection, then dropped before it runs.
    let doomed = tokio::spawn(async move { p.get().await.map(|c| c.id) });
    sleep(ms(1)).await;
    let survivor = spawn_get(&pool);
    sleep(ms(1)).await;
    drop(held);
    doomed.abort();
    assert_eq!(survivor.await.unwrap().unwrap(), 1, "same connection, no close");
    assert_eq!(ledger.connects.load(SeqCst), 1);
    assert_eq!(ledger.closes.load(SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn resize_grows_for_waiters_and_shrinks_idle() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let waiter = spawn_get(&pool);
    sleep(ms(1)).await;
    pool.resize(2).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    drop(held);
    assert_eq!(pool.status().idle, 2);
    pool.resize(1).unwrap();
    assert_eq!(pool.status().open, 1);
    assert_eq!(ledger.live(), 1);
    assert!(pool.resize(0).is_err());
}

#[tokio::test(start_paused = true)]
async fn detach_frees_the_slot_for_a_waiter() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let waiter = spawn_get(&pool);
    sleep(ms(1)).await;
    let raw = held.detach();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    drop(raw);
    assert_eq!(ledger.live(), 1);
}
