//! The pool's guarantees under adversity: consistent snapshots under load (a sampler
//! taking millions of them), a janitor at 1 ms that never hides idle connections, an
//! abort storm watched continuously by a sampler task, `min_idle` refilled at once on
//! a current-thread runtime, the dial backoff and connect retry while the server is
//! down, the bounded default wait, and a closed pool that refuses to change.

use crate::common::{Rng, TestError, TestManager};
use poolside_connpool::{Builder, GetError, Pool, PoolError, ResizeError, Status, WaitPolicy};
use poolside_core::Snapshot;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

/// The snapshot invariants: `idle <= open <= max_size`, `in_use == open - idle`.
fn assert_snapshot(s: Status) {
    assert!(s.idle <= s.open, "idle above open: {s:?}");
    assert!(s.open <= s.max_size, "open above max_size: {s:?}");
    assert_eq!(s.in_use, s.open.wrapping_sub(s.idle), "in_use is not open - idle: {s:?}");
}

/// Load on a pool: tasks get, hold across a yield, and return (some marked broken,
/// so slots are freed and dialled again), until `stop`.
fn spawn_load(
    pool: &Pool<TestManager>,
    tasks: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|task| {
            let (pool, stop) = (pool.clone(), stop.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0xA5A5_5A5A ^ (task + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                while !stop.load(SeqCst) {
                    let mut conn = pool.get().await.expect("the pool serves under load");
                    if rng.below(3) == 0 {
                        tokio::task::yield_now().await;
                    }
                    if rng.below(16) == 0 {
                        conn.mark_broken();
                    }
                    drop(conn);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect()
}

#[test]
fn a_snapshot_sampler_sees_only_consistent_levels_under_load() {
    let runtime = multi_thread();
    let (m, _ledger) = TestManager::new();
    let pool = runtime.block_on(async {
        Builder::new()
            .max_size(4)
            .min_idle(1)
            .max_idle_time(ms(3))
            .janitor_interval(ms(1))
            .build(m)
            .unwrap()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let load = runtime.block_on(async { spawn_load(&pool, 8, &stop) });
    // The sampler runs on its own thread, next to the two runtime workers.
    let sampler = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut taken = 0u64;
            while taken < 2_000_000 && started.elapsed() < Duration::from_secs(3) {
                assert_snapshot(pool.status());
                let snap = Snapshot::of(&pool);
                let (open, idle, in_use) =
                    (snap.value("open"), snap.value("idle"), snap.value("in_use"));
                assert_eq!(open.zip(idle).map(|(o, i)| o.wrapping_sub(i)), in_use, "{snap:?}");
                taken += 2;
            }
            taken
        })
    };
    let taken = sampler.join().expect("every snapshot was consistent");
    stop.store(true, SeqCst);
    runtime.block_on(async {
        for task in load {
            task.await.unwrap();
        }
    });
    assert!(taken >= 100_000, "the sampler took {taken} snapshots");
    assert_snapshot(pool.status());
}

#[test]
fn a_janitor_at_1ms_never_hides_idle_connections() {
    let runtime = multi_thread();
    let (m, ledger) = TestManager::new();
    // Many idle connections make each sweep long, so a get that a sweep hides from
    // them is likely within a second (the old take-all-and-restore sweep failed this
    // every time in four runs).
    let min_idle = 96;
    let pool = runtime.block_on(async {
        Builder::new()
            .max_size(256)
            .min_idle(min_idle)
            .max_idle_time(Duration::from_secs(3600))
            .janitor_interval(ms(1))
            .build(m)
            .unwrap()
    });
    let checked_out = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        sleep(ms(20)).await;
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let (pool, checked_out, peak) = (pool.clone(), checked_out.clone(), peak.clone());
                tokio::spawn(async move {
                    let mut rng = Rng(0x1234_5678 ^ (task + 1));
                    let until = Instant::now() + ms(1000);
                    while Instant::now() < until {
                        let conn = pool.get().await.unwrap();
                        let now_out = checked_out.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now_out, SeqCst);
                        if rng.below(4) == 0 {
                            tokio::task::yield_now().await;
                        }
                        checked_out.fetch_sub(1, SeqCst);
                        drop(conn);
                        if rng.below(8) == 0 {
                            sleep(Duration::from_micros(200)).await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (opened, peak) = (ledger.connects.load(SeqCst), peak.load(SeqCst));
    assert!(
        opened <= peak + min_idle,
        "{opened} connections opened for at most {peak} concurrent checkouts + min_idle {min_idle}: \
         a sweep hid idle connections and a get dialled"
    );
    assert_eq!(Snapshot::of(&pool).value("closed_idle"), Some(0));
}

#[test]
fn an_abort_storm_with_a_1ms_janitor_keeps_every_invariant_at_every_moment() {
    let runtime = multi_thread();
    let (m, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(1, SeqCst);
    ledger.check_delay_ms.store(1, SeqCst);
    let max_size = 6;
    runtime.block_on(async {
        let pool = Builder::new()
            .max_size(max_size)
            .min_idle(2)
            .max_idle_time(ms(4))
            .max_lifetime(ms(20))
            .health_check_after(ms(1))
            .janitor_interval(ms(1))
            .wait(WaitPolicy::Queue)
            .build(m)
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        // Watches the levels continuously, not only at the end.
        let sampler = {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                let mut samples = 0u64;
                while !done.load(SeqCst) {
                    assert_snapshot(pool.status());
                    samples += 1;
                    tokio::task::yield_now().await;
                }
                samples
            })
        };
        // The server flaps, so aborts also land in dial retries and backoff waits.
        let flapping = {
            let (ledger, done) = (ledger.clone(), done.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0xF1A9);
                while !done.load(SeqCst) {
                    ledger.fail_connect.store(rng.below(3) == 0, SeqCst);
                    sleep(ms(rng.below(8))).await;
                }
                ledger.fail_connect.store(false, SeqCst);
            })
        };
        let mut rng = Rng(0xDEAD_BEEF);
        let mut tasks = Vec::new();
        for round in 0..1500u64 {
            let p = pool.clone();
            let (yields, hold) = (rng.below(4), rng.below(3));
            tasks.push(tokio::spawn(async move {
                if let Ok(conn) = p.get().await {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                    sleep(ms(hold)).await;
                    drop(conn);
                }
            }));
            // Abort a random task: it may be queued, dialling, checking or holding.
            if round % 2 == 0 {
                let victim = rng.below(tasks.len() as u64) as usize;
                tasks[victim].abort();
            }
            if rng.below(3) == 0 {
                tokio::task::yield_now().await;
            }
        }
        for task in tasks {
            let joined = tokio::time::timeout(Duration::from_secs(20), task).await;
            if let Err(e) = joined.expect("a get hung after the storm") {
                assert!(e.is_cancelled(), "{e}");
            }
        }
        done.store(true, SeqCst);
        flapping.await.unwrap();
        let samples = sampler.await.expect("every sampled snapshot was consistent");
        assert!(samples > 100, "the sampler ran throughout ({samples} samples)");
        // The janitor keeps replacing expiring connections (a dial shows as in use):
        // between two of its rounds, nothing may be left out.
        let s = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let s = pool.status();
                if s.in_use == 0 && ledger.live() == s.open {
                    return s;
                }
                sleep(Duration::from_micros(100)).await;
            }
        })
        .await
        .expect("a slot or connection leaked");
        assert_snapshot(s);
        assert_eq!(s.waiting, 0, "{s:?}");
        let all: Vec<_> = futures_all(&pool, max_size).await;
        assert_eq!(all.len(), max_size);
    });
}

/// `n` connections checked out at once, each get bounded.
async fn futures_all(
    pool: &Pool<TestManager>,
    n: usize,
) -> Vec<poolside_connpool::PooledConn<'_, TestManager>> {
    let mut held = Vec::new();
    for _ in 0..n {
        let conn = tokio::time::timeout(Duration::from_secs(5), pool.get())
            .await
            .expect("the pool serves max_size checkouts")
            .unwrap();
        held.push(conn);
    }
    held
}

#[test]
fn min_idle_is_refilled_at_once_on_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let (m, _ledger) = TestManager::new();
        // No lifetimes: the periodic tick is 30 s away.
        let pool = Builder::new().max_size(6).min_idle(2).build(m).unwrap();
        sleep(ms(1)).await;
        assert_eq!(pool.status().idle, 2);
        // Checkouts take idle to 0: replacements start at once, not at the next tick.
        let held = (pool.get().await.unwrap(), pool.get().await.unwrap());
        let started = Instant::now();
        while pool.status().idle < 2 {
            assert!(started.elapsed() < ms(100), "idle stayed below min_idle: {:?}", pool.status());
            sleep(ms(1)).await;
        }
        // An on-demand dial (idle exhausted) triggers a refill too.
        let more =
            (pool.get().await.unwrap(), pool.get().await.unwrap(), pool.get().await.unwrap());
        sleep(ms(5)).await;
        assert_eq!(pool.status().idle, 1, "refilled up to max_size: {:?}", pool.status());
        drop((held, more));
        assert_eq!(pool.status().open, 6);
    });
}

#[tokio::test(start_paused = true)]
async fn a_down_server_gets_a_trickle_of_dials_and_service_returns_within_a_second() {
    let (m, ledger) = TestManager::new();
    let pool =
        Builder::new().max_size(8).min_idle(2).wait(WaitPolicy::Timeout(ms(200))).build(m).unwrap();
    sleep(ms(1)).await;
    // The server goes away: idle connections are dead, and every dial is refused.
    ledger.broken_up_to.store(usize::MAX, SeqCst);
    ledger.fail_connect.store(true, SeqCst);
    pool.retain(|_, _| false).unwrap();
    let dials_before = Snapshot::of(&pool).value("dials").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let (pool, stop) = (pool.clone(), stop.clone());
            tokio::spawn(async move {
                let mut errors = 0u32;
                while !stop.load(SeqCst) {
                    match pool.get().await {
                        Ok(_) => return errors,
                        Err(_) => errors += 1,
                    }
                    sleep(ms(5)).await;
                }
                errors
            })
        })
        .collect();
    sleep(Duration::from_secs(5)).await;
    let dials = Snapshot::of(&pool).value("dials").unwrap() - dials_before;
    assert!(dials <= 5 * 50, "{dials} dials in 5 s of outage: more than 50/s");
    assert!(dials >= 5, "the pool kept probing ({dials} dials)");
    // The server accepts again: the next probe (at most 1 s away) restores service.
    ledger.fail_connect.store(false, SeqCst);
    ledger.broken_up_to.store(0, SeqCst);
    let back = Instant::now();
    let conn = loop {
        match pool.get().await {
            Ok(conn) => break conn,
            Err(e) => {
                // A caller whose deadline comes before the next probe fails at once.
                assert!(back.elapsed() < Duration::from_secs(1), "still failing: {e}");
                sleep(ms(5)).await;
            }
        }
    };
    assert!(
        back.elapsed() <= Duration::from_secs(1),
        "served {:?} after the server came back",
        back.elapsed()
    );
    drop(conn);
    stop.store(true, SeqCst);
    for caller in callers {
        caller.await.unwrap();
    }
    // Once a dial succeeded the backoff is over: several dials go out at once.
    let started = Instant::now();
    let many = futures_all(&pool, 8).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff after a success");
    drop(many);
}

#[tokio::test(start_paused = true)]
async fn a_get_retries_a_transient_connect_failure_until_the_connect_timeout() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().connect_timeout(ms(500)).build(m).unwrap();
    ledger.fail_connect.store(true, SeqCst);
    let heal = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            sleep(ms(120)).await;
            ledger.fail_connect.store(false, SeqCst);
        })
    };
    let started = Instant::now();
    let conn = pool.get().await.expect("retried until the server accepted");
    assert!(started.elapsed() >= ms(120) && started.elapsed() < ms(500));
    assert!(Snapshot::of(&pool).value("dial_errors").unwrap() >= 2);
    heal.await.unwrap();
    drop(conn);

    // Down for good: the error names the attempts and the last cause.
    ledger.fail_connect.store(true, SeqCst);
    pool.retain(|_, _| false).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(started.elapsed() <= ms(500), "bounded by the connect timeout");
    match &err {
        GetError::ConnectFailed { attempts, last: TestError("connection refused") } => {
            assert!(*attempts >= 2, "{err}");
            assert!(err.to_string().contains(&format!("after {attempts} attempts")), "{err}");
            assert!(err.to_string().ends_with("last error: connection refused"), "{err}");
        }
        other => panic!("expected ConnectFailed, got {other}"),
    }
    // Retries are configurable: none at all.
    let single = Builder::new().connect_retries(0).build(TestManager(ledger.clone())).unwrap();
    assert!(matches!(
        single.get().await.map(drop),
        Err(GetError::Connect(_)) | Err(GetError::Backoff { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn callers_during_backoff_fail_fast_with_the_last_connect_error() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(4).wait(WaitPolicy::FailFast).build(m).unwrap();
    ledger.fail_connect.store(true, SeqCst);
    assert!(matches!(pool.get().await.map(drop), Err(GetError::Connect(_))));
    let dials = Snapshot::of(&pool).value("dials");
    let started = Instant::now();
    let err = pool.try_get().await.map(drop).unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "no waiting");
    match &err {
        GetError::Backoff { failures: 1, retry_in: Some(_), last_error } => {
            assert_eq!(last_error, "connection refused");
        }
        other => panic!("expected Backoff, got {other}"),
    }
    assert_eq!(Snapshot::of(&pool).value("dials"), dials, "no dial during the backoff");
    assert_eq!(pool.status().open, 0);
}

/// A caller whose wait limit runs out while it waits for the pool's dial backoff has
/// lost its time to the backoff, and says so: `Backoff` with the connect error, never
/// a bare `TimedOut` (which reads as "every connection was busy"). The backoff's
/// jitter decides whether it ends just before the limit (the caller's timer then wakes
/// just past it), so many pools are tried.
#[tokio::test(start_paused = true)]
async fn a_wait_that_runs_out_during_the_backoff_reports_the_backoff() {
    for round in 0..300 {
        let (m, ledger) = TestManager::new();
        let pool = Builder::new()
            .max_size(4)
            .connect_timeout(ms(100))
            .wait(WaitPolicy::Timeout(ms(50)))
            .build(m)
            .unwrap();
        ledger.fail_connect.store(true, SeqCst);
        let first = pool.get().await.map(drop).unwrap_err();
        assert!(matches!(first, GetError::ConnectFailed { .. }), "round {round}: {first}");
        for _ in 0..2 {
            match pool.get().await.map(drop).unwrap_err() {
                GetError::Backoff { last_error, .. } => {
                    assert_eq!(last_error, "connection refused");
                }
                GetError::Connect(_) | GetError::ConnectFailed { .. } => {}
                other => {
                    panic!("round {round}: expected the backoff or a connect error, got {other:?}")
                }
            }
        }
        assert_eq!(pool.status().open, 0);
    }
}

/// Refuses the first dial at once and hangs on every later one.
struct RefusesThenHangs(AtomicUsize);

impl poolside_connpool::Manager for RefusesThenHangs {
    type Connection = ();
    type Error = TestError;

    async fn connect(&self) -> Result<(), TestError> {
        if self.0.fetch_add(1, SeqCst) == 0 {
            return Err(TestError("connection refused"));
        }
        std::future::pending().await
    }

    async fn check(&self, _: &mut ()) -> Result<(), TestError> {
        Ok(())
    }
}

/// A dial cut short by what is left of the connect timeout after a refusal is not the
/// cause: the refusal is reported, not a bare connect timeout (the server answered,
/// and said no).
#[tokio::test(start_paused = true)]
async fn a_dial_cut_short_after_a_refusal_reports_the_refusal() {
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(ms(100))
        .wait(WaitPolicy::Queue)
        .build(RefusesThenHangs(AtomicUsize::new(0)))
        .unwrap();
    match pool.get().await.map(drop).unwrap_err() {
        GetError::ConnectFailed { attempts: 2, last } => assert_eq!(last.0, "connection refused"),
        other => panic!("expected the refusal after two attempts, got {other:?}"),
    }
    assert_eq!(pool.status().open, 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_wait_is_a_30_second_timeout() {
    let (m, _ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(31), pool.get())
        .await
        .expect("the default wait is bounded")
        .map(drop)
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: Duration::from_secs(30) }));
    assert_eq!(pool.status().waiting, 0);
    drop(held);
    // Queue stays available, explicitly.
    let (m, _ledger) = TestManager::new();
    let queue = Builder::new().max_size(1).wait(WaitPolicy::Queue).build(m).unwrap();
    let held = queue.get().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(60), queue.get()).await.is_err());
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_closed_pool_refuses_resize_retain_and_warm() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(3).build(m).unwrap();
    let held = pool.get().await.unwrap();
    pool.close();
    assert_eq!(pool.resize(5), Err(ResizeError::Closed));
    assert_eq!(pool.max_size(), 3, "unchanged");
    assert_eq!(pool.retain(|_, _| false), Err(PoolError::Closed));
    assert!(pool.warm(2).await.unwrap_err().is_closed());
    assert_eq!(ledger.connects.load(SeqCst), 1, "nothing dialled");
    assert!(pool.get().await.map(drop).unwrap_err().is_closed());
    drop(held);
    assert_eq!((pool.status().open, ledger.live()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn close_wakes_a_caller_waiting_out_the_backoff() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .dial_backoff(Duration::from_secs(10), Duration::from_secs(10))
        .build(m)
        .unwrap();
    ledger.fail_connect.store(true, SeqCst);
    let first = pool.try_get().await.map(drop).unwrap_err();
    assert!(matches!(first, GetError::Connect(_)), "{first}");
    let waiting = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop) })
    };
    sleep(ms(50)).await;
    assert!(!waiting.is_finished(), "it waits for the next attempt, 10 s away");
    let closed_at = Instant::now();
    pool.close();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(err.is_closed(), "{err}");
    assert_eq!(closed_at.elapsed(), Duration::ZERO);
    assert_eq!((pool.status().open, ledger.live()), (0, 0));
}

/// Polls `future` up to `polls` times, letting 1 ms pass between polls, then drops it:
/// a cancellation at whatever await point it had reached.
async fn poll_then_drop<F: std::future::Future>(future: F, polls: usize) -> bool {
    let mut future = std::pin::pin!(future);
    for _ in 0..polls {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready()))
                .await;
        if ready {
            return true;
        }
        sleep(ms(1)).await;
    }
    false
}

#[tokio::test(start_paused = true)]
async fn a_get_dropped_at_every_await_point_leaks_nothing() {
    // Each scenario parks a get at a different await point: dialling, health-checking
    // a stale connection, waiting out the dial backoff, and waiting in line.
    for scenario in 0..4 {
        for polls in 0..24 {
            let (m, ledger) = TestManager::new();
            ledger.connect_delay_ms.store(3, SeqCst);
            ledger.check_delay_ms.store(2, SeqCst);
            let pool = Builder::new()
                .max_size(2)
                .health_check_after(ms(1))
                .dial_backoff(ms(4), ms(8))
                .build(m)
                .unwrap();
            let mut holder = None;
            match scenario {
                1 => {
                    pool.warm(2).await.unwrap();
                    sleep(ms(5)).await;
                }
                2 => {
                    ledger.fail_connect.store(true, SeqCst);
                    let _ = pool.try_get().await.map(drop);
                    let heal = ledger.clone();
                    tokio::spawn(async move {
                        sleep(ms(10)).await;
                        heal.fail_connect.store(false, SeqCst);
                    });
                }
                3 => {
                    holder =
                        Some((pool.get_owned().await.unwrap(), pool.get_owned().await.unwrap()));
                    let release = holder.take();
                    tokio::spawn(async move {
                        sleep(ms(6)).await;
                        drop(release);
                    });
                }
                _ => {}
            }
            let finished = poll_then_drop(pool.get(), polls).await;
            drop(holder);
            // Let dials, checks and janitor-free hand-offs in flight settle.
            sleep(ms(50)).await;
            let s = pool.status();
            assert_snapshot(s);
            assert_eq!(
                (s.in_use, s.waiting),
                (0, 0),
                "scenario {scenario}, {polls} polls ({finished}): {s:?}"
            );
            assert_eq!(ledger.live(), s.open, "scenario {scenario}, {polls} polls: {s:?}");
            let both = futures_all(&pool, 2).await;
            assert_eq!(both.len(), 2);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_black_holed_server_gets_a_trickle_of_dials_too() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(8).min_idle(2).build(m).unwrap();
    sleep(ms(1)).await;
    pool.retain(|_, _| false).unwrap();
    // New connections never complete (a dropped SYN), for the 30 s connect timeout.
    ledger.connect_delay_ms.store(3_600_000, SeqCst);
    ledger.fail_connect.store(true, SeqCst);
    let dials_before = Snapshot::of(&pool).value("dials").unwrap();
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _ = pool.get_timeout(ms(200)).await.map(drop);
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    sleep(Duration::from_secs(4)).await;
    let dials = Snapshot::of(&pool).value("dials").unwrap() - dials_before;
    assert!(dials <= 4 * 50, "{dials} dials in 4 s of black hole");
    let s = pool.status();
    assert!(s.open <= 8 && s.waiting == 0, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dial_cut_short_by_the_callers_deadline_does_not_start_a_backoff() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().build(m).unwrap();
    ledger.connect_delay_ms.store(100, SeqCst);
    let err = pool.get_timeout(ms(50)).await.map(drop).unwrap_err();
    assert!(matches!(err.pool_error(), Some(PoolError::TimedOut { .. })), "{err}");
    // The server is fine: the next caller dials at once.
    ledger.connect_delay_ms.store(0, SeqCst);
    let started = Instant::now();
    drop(pool.get().await.unwrap());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[test]
fn a_runtime_without_timers_makes_get_panic_with_tokios_message_and_leak_nothing() {
    // The pool bounds every dial, check and hook with tokio's timers, so it needs a
    // runtime with time enabled, as `tokio::time` does. On one without, a get fails
    // loudly (tokio's panic, naming `enable_time`) rather than dialling, checking or
    // approving unbounded; every slot is given back, and the pool serves callers on a
    // proper runtime. Connections are dialled there first, so the timer-less runtime
    // meets each later step: the health check, a `before_acquire` that waits, an
    // `after_release` that waits (in its task).
    let waits = || {
        Box::pin(async {
            tokio::task::yield_now().await;
            Ok(true)
        })
    };
    let pools: Vec<(&str, Pool<TestManager>, Arc<crate::common::Ledger>)> = vec![
        {
            let (manager, ledger) = TestManager::new();
            ("dial", Builder::new().max_size(2).build(manager).unwrap(), ledger)
        },
        {
            let (manager, ledger) = TestManager::new();
            let pool = Builder::new().max_size(2).health_check_after(Duration::ZERO);
            ("health check", pool.build(manager).unwrap(), ledger)
        },
        {
            let (manager, ledger) = TestManager::new();
            let pool =
                Builder::new().max_size(2).manager(manager).before_acquire(move |_, _| waits());
            ("before_acquire", pool.build().unwrap(), ledger)
        },
        {
            let (manager, ledger) = TestManager::new();
            let pool =
                Builder::new().max_size(2).manager(manager).after_release(move |_, _| waits());
            ("after_release", pool.build().unwrap(), ledger)
        },
    ];
    let timed = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let timerless = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (step, pool, ledger) in &pools {
        if *step != "dial" {
            timed.block_on(async { drop(pool.get().await.unwrap()) });
            timed.block_on(async {
                while pool.status().idle != 1 {
                    tokio::task::yield_now().await
                }
            });
        }
        for _ in 0..3 {
            let got = std::panic::catch_unwind(AssertUnwindSafe(|| {
                timerless.block_on(async {
                    let conn = pool.get().await?;
                    drop(conn);
                    // An `after_release` task runs (and panics) when it is polled.
                    tokio::task::yield_now().await;
                    Ok::<_, GetError<TestError>>(())
                })
            }));
            let status = pool.status();
            match got {
                // The get needed no timer; the hook's task panicked, closing the
                // connection (so the next get dials, and panics there).
                Ok(Ok(())) => assert_eq!(*step, "after_release"),
                Ok(Err(e)) => panic!("{step}: {e:?}"),
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or_default();
                    assert!(message.contains("enable_time"), "{step}: {message:?}");
                }
            }
            assert_eq!((status.in_use, status.waiting), (0, 0), "{step}: {status:?}");
            assert_eq!(ledger.live(), status.open, "{step}: {status:?}");
        }
        timed.block_on(async {
            let conn = pool.get().await.unwrap();
            assert_eq!(pool.status().in_use, 1, "{step}");
            drop(conn);
            while pool.status().idle != 1 {
                tokio::task::yield_now().await;
            }
        });
    }
}
