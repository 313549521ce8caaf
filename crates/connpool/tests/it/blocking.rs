//! The blocking pool: settings, FIFO order, timeouts, panics, lifetimes, the janitor
//! thread, close, and counts that stay exact.
#![cfg(feature = "blocking")]

use poolside_connpool::PoolError;
use poolside_connpool::blocking::{
    BuildError, Builder, MAX_DURATION, MAX_POOL_SIZE, Manager, Pool,
};
use poolside_connpool::{AddError, GetError, WaitPolicy};
use poolside_core::Snapshot;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A manager whose every method can be made to fail, panic or stall.
#[derive(Default)]
struct Script {
    next: AtomicU64,
    live: Arc<AtomicUsize>,
    fail_connect: AtomicBool,
    panic_connect: AtomicBool,
    stall_connect: Mutex<Option<Duration>>,
    fail_check: AtomicBool,
    panic_check: AtomicBool,
    panic_is_broken: AtomicBool,
    broken: AtomicBool,
    stall_check: Mutex<Option<Duration>>,
    checks: AtomicUsize,
    connects: AtomicUsize,
    /// Fail this many more connects, then succeed.
    fail_next: AtomicUsize,
    /// Stall every connect after the first by this long.
    stall_after_first: Mutex<Option<Duration>>,
}

/// A connection that counts itself live until dropped.
#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

/// A cheap handle to the script, shared by the pool and the test.
#[derive(Clone, Default)]
struct S(Arc<Script>);

impl std::ops::Deref for S {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.0
    }
}

impl Manager for S {
    type Connection = Tracked;
    type Error = std::io::Error;

    fn connect(&self) -> Result<Tracked, std::io::Error> {
        let earlier = self.connects.fetch_add(1, SeqCst);
        let stall = match *self.stall_after_first.lock().unwrap() {
            Some(stall) if earlier > 0 => Some(stall),
            _ => *self.stall_connect.lock().unwrap(),
        };
        if let Some(stall) = stall {
            thread::sleep(stall);
        }
        if self.panic_connect.load(SeqCst) {
            panic!("connect panicked on purpose");
        }
        let fail_next = self.fail_next.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok();
        if fail_next || self.fail_connect.load(SeqCst) {
            return Err(std::io::Error::other("refused"));
        }
        self.live.fetch_add(1, SeqCst);
        Ok(Tracked { id: self.next.fetch_add(1, SeqCst), live: self.live.clone() })
    }

    fn check(&self, _conn: &mut Tracked) -> Result<(), std::io::Error> {
        self.checks.fetch_add(1, SeqCst);
        let stall = *self.stall_check.lock().unwrap();
        if let Some(stall) = stall {
            thread::sleep(stall);
        }
        if self.panic_check.load(SeqCst) {
            panic!("check panicked on purpose");
        }
        if self.fail_check.load(SeqCst) {
            return Err(std::io::Error::other("unhealthy"));
        }
        Ok(())
    }

    fn is_broken(&self, _conn: &mut Tracked) -> bool {
        if self.panic_is_broken.load(SeqCst) {
            panic!("is_broken panicked on purpose");
        }
        self.broken.load(SeqCst)
    }
}

fn script() -> S {
    S::default()
}

/// idle + in_use == open <= max, nobody waiting, and as many live connections as open.
fn assert_settled(pool: &Pool<S>, m: &Script) {
    let s = pool.status();
    assert_eq!(s.idle + s.in_use, s.open, "{s:?}");
    assert!(s.open <= s.max_size, "{s:?}");
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(m.live.load(SeqCst), s.open, "live connections vs {s:?}");
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_setting_rejects_its_extremes_with_a_typed_error() {
    let b = || Builder::<S>::new();
    let m = script;
    assert_eq!(b().max_size(0).build(m()).unwrap_err(), BuildError::ZeroMaxSize);
    assert!(matches!(
        b().max_size(usize::MAX).build(m()).unwrap_err(),
        BuildError::MaxSizeTooLarge { .. }
    ));
    assert!(matches!(
        b().min_idle(usize::MAX).build(m()).unwrap_err(),
        BuildError::MinIdleAboveMaxSize { .. }
    ));
    assert!(matches!(
        b().max_health_retries(u32::MAX).build(m()).unwrap_err(),
        BuildError::TooManyHealthRetries { .. }
    ));
    type Set = fn(Builder<S>, Duration) -> Builder<S>;
    let durations: [(&str, Set); 8] = [
        ("max_lifetime", |b, d| b.max_lifetime(d)),
        ("max_idle_time", |b, d| b.max_idle_time(d)),
        ("connect_timeout", |b, d| b.connect_timeout(d)),
        ("janitor_interval", |b, d| b.janitor_interval(d)),
        ("wait timeout", |b, d| b.wait(WaitPolicy::Timeout(d))),
        ("dial backoff min", |b, d| b.dial_backoff(d, d)),
        ("health_check_after", |b, d| b.health_check_after(d)),
        ("fair_after", |b, d| b.fair_after(d)),
    ];
    for (name, set) in durations {
        let err = set(b(), Duration::MAX).build(m()).unwrap_err();
        assert!(
            matches!(err, BuildError::DurationTooLong { limit: MAX_DURATION, .. }),
            "{name}: {err:?}"
        );
        let zero = set(b(), Duration::ZERO).build(m());
        match name {
            // Zero has a meaning here: check every time / hand off at once.
            "health_check_after" | "fair_after" => assert!(zero.is_ok(), "{name}"),
            _ => assert_eq!(zero.unwrap_err(), BuildError::ZeroDuration { setting: name }),
        }
    }
    assert_eq!(
        b().dial_backoff(Duration::from_secs(2), Duration::from_secs(1)).build(m()).unwrap_err(),
        BuildError::BackoffCapBelowBase
    );
    assert_eq!(
        b().max_lifetime(Duration::from_secs(1))
            .max_idle_time(Duration::from_secs(2))
            .build(m())
            .unwrap_err(),
        BuildError::IdleTimeAboveLifetime
    );
    // The async pool's bounds, from the options both builders share.
    assert_eq!(
        b().janitor_interval(Duration::from_micros(999)).build(m()).unwrap_err(),
        BuildError::OutOfRange { setting: "janitor_interval" }
    );
    assert!(b().max_size(MAX_POOL_SIZE).build(m()).is_ok());
    assert!(matches!(
        b().max_size(MAX_POOL_SIZE + 1).build(m()).unwrap_err(),
        BuildError::MaxSizeTooLarge { limit: MAX_POOL_SIZE, .. }
    ));
    let pool = b().build(m()).unwrap();
    assert!(pool.resize(0).is_err());
    assert!(pool.resize(usize::MAX).is_err());
}

#[test]
fn default_wait_is_bounded() {
    // The default policy is a 30 s timeout, not an unbounded queue.
    let pool = Builder::new().max_size(1).build(script()).unwrap();
    let held = pool.get().unwrap();
    let started = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(matches!(err.pool_error(), Some(PoolError::TimedOut { .. })));
    assert!(started.elapsed() >= Duration::from_millis(30));
    drop(held);
    assert!(format!("{:?}", Builder::<S>::new()).contains("Timeout(30s)"));
}

#[test]
fn works_without_any_runtime_and_reuses_connections() {
    let m = script();
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    for _ in 0..10 {
        let conn = pool.get().unwrap();
        assert_eq!(conn.id, 0);
    }
    assert_eq!(m.connects.load(SeqCst), 1);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("acquires"), Some(10));
    assert_eq!(snap.value("releases"), Some(10));
    assert_settled(&pool, &m);
}

#[test]
fn metric_names_and_kinds_match_the_async_pool() {
    struct AsyncNoop;
    impl poolside_connpool::Manager for AsyncNoop {
        type Connection = ();
        type Error = std::io::Error;
        async fn connect(&self) -> Result<(), Self::Error> {
            Ok(())
        }
        async fn check(&self, _: &mut ()) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    use poolside_core::Instrumented;
    let blocking = Pool::new(script());
    let asynchronous = poolside_connpool::Pool::new(AsyncNoop);
    assert_eq!(blocking.kind(), asynchronous.kind());
    let names = |c: &[&poolside_core::MetricDesc]| {
        c.iter().map(|d| (d.name, d.kind, d.help)).collect::<Vec<_>>()
    };
    assert_eq!(names(blocking.catalogue()), names(asynchronous.catalogue()));
}

/// Spawns `n` threads that queue in a known order (each starts only once the
/// previous one is in line), records the order they get the connection.
#[test]
fn a_returned_connection_goes_to_the_oldest_waiting_thread() {
    for fair_after in [Duration::ZERO, Duration::from_millis(1)] {
        let pool = Builder::new()
            .max_size(1)
            .fair_after(fair_after)
            .wait(WaitPolicy::Queue)
            .build(script())
            .unwrap();
        let order = Mutex::new(Vec::new());
        let held = pool.get().unwrap();
        thread::scope(|s| {
            for i in 0..8 {
                let (pool, order) = (&pool, &order);
                s.spawn(move || {
                    let conn = pool.get().unwrap();
                    order.lock().unwrap().push(i);
                    thread::sleep(Duration::from_millis(2));
                    drop(conn);
                });
                eventually("the thread queued", || pool.status().waiting == i + 1);
            }
            // Every waiter has waited longer than fair_after: strict hand-off.
            thread::sleep(Duration::from_millis(5));
            drop(held);
        });
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>(), "{fair_after:?}");
    }
}

#[test]
fn a_newcomer_does_not_overtake_a_starving_waiter() {
    let pool = Builder::new().max_size(1).fair_after(Duration::ZERO).build(script()).unwrap();
    let held = pool.get().unwrap();
    let got = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _c = pool.get().unwrap();
            got.store(true, SeqCst);
        });
        eventually("queued", || pool.status().waiting == 1);
        drop(held);
        // The hand-off went to the waiter, not to the pool: a try_get finds nothing
        // until the waiter is done with it.
        if !got.load(SeqCst) {
            assert!(pool.try_get().is_err() || got.load(SeqCst));
        }
    });
    assert!(got.load(SeqCst));
}

#[test]
fn timeout_storm_leaves_exact_counts_and_nobody_waiting() {
    let m = script();
    let pool = Builder::new().max_size(4).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let got = AtomicUsize::new(0);
    let timed_out = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..16u64 {
            let (pool, got, timed_out) = (&pool, &got, &timed_out);
            s.spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..200 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let limit = Duration::from_micros(x % 400);
                    match pool.get_timeout(limit) {
                        Ok(conn) => {
                            got.fetch_add(1, SeqCst);
                            if x % 3 == 0 {
                                thread::sleep(Duration::from_micros(x % 200));
                            }
                            drop(conn);
                        }
                        Err(GetError::Pool(PoolError::TimedOut { .. })) => {
                            timed_out.fetch_add(1, SeqCst);
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            });
        }
    });
    assert_eq!(got.load(SeqCst) + timed_out.load(SeqCst), 16 * 200);
    assert!(timed_out.load(SeqCst) > 0, "the storm should time some gets out");
    assert_settled(&pool, &m);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("timeouts"), Some(timed_out.load(SeqCst) as u64));
    assert_eq!(snap.value("acquires"), Some(got.load(SeqCst) as u64));
    // Every slot is usable again.
    let all: Vec<_> = (0..4).map(|_| pool.try_get().unwrap()).collect();
    assert_eq!(all.len(), 4);
}

#[test]
fn a_timed_out_waiter_swallows_no_hand_off() {
    // One connection; waiters with tiny timeouts race the hand-off. After each
    // round the connection must still be obtainable at once.
    let m = script();
    let pool = Builder::new().max_size(1).fair_after(Duration::ZERO).build(m.clone()).unwrap();
    for round in 0..200u64 {
        let held = pool.get().unwrap();
        thread::scope(|s| {
            let waiter =
                s.spawn(|| pool.get_timeout(Duration::from_micros(50 + round % 100)).map(|c| c.id));
            thread::sleep(Duration::from_micros(round % 120));
            drop(held);
            let _ = waiter.join().unwrap();
        });
        let again = pool.try_get().expect("the connection came back");
        drop(again);
    }
    assert_settled(&pool, &m);
}

#[test]
fn panics_in_connect_give_back_the_slot_and_reach_the_caller() {
    let m = script();
    let pool = Builder::new().max_size(1).build(m.clone()).unwrap();
    m.panic_connect.store(true, SeqCst);
    match pool.get().unwrap_err() {
        GetError::Panicked { during, message } => {
            assert_eq!(during, "connect");
            assert!(message.contains("connect panicked on purpose"), "{message}");
        }
        e => panic!("unexpected {e}"),
    }
    m.panic_connect.store(false, SeqCst);
    assert_eq!(pool.status().open, 0);
    // The slot is free: the next get (after the shared backoff) dials again.
    drop(pool.get().unwrap());
    assert_settled(&pool, &m);
    assert_eq!(Snapshot::of(&pool).value("dial_errors"), Some(1));
}

#[test]
fn a_panic_in_connect_never_hangs_a_waiter() {
    let m = script();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let held = pool.get().unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| pool.get().map(|c| c.id));
        eventually("queued", || pool.status().waiting == 1);
        // The waiter will receive a slot and dial; make that dial panic.
        let mut held = held;
        held.mark_broken();
        m.panic_connect.store(true, SeqCst);
        drop(held);
        let got = waiter.join().expect("the panic is caught, not re-raised");
        assert!(matches!(got, Err(GetError::Panicked { during: "connect", .. })));
    });
    m.panic_connect.store(false, SeqCst);
    assert_eq!(pool.status().open, 0);
    assert!(pool.get().is_ok());
}

#[test]
fn panics_in_check_and_is_broken_keep_counts_exact() {
    let m = script();
    let pool =
        Builder::new().max_size(2).health_check_after(Duration::ZERO).build(m.clone()).unwrap();
    drop(pool.get().unwrap());
    // A panicking check counts as a failed one: the connection is closed and the
    // caller gets a fresh one, as in the async pool.
    m.panic_check.store(true, SeqCst);
    let conn = pool.get().expect("a panicking check is the pool's problem");
    m.panic_check.store(false, SeqCst);
    assert_eq!(conn.id, 1);
    drop(conn);
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 1);
    assert_eq!(Snapshot::of(&pool).value("health_fails"), Some(1));

    // is_broken panics on checkout (idle connection) and inside Drop: both caught,
    // both connections closed.
    m.panic_is_broken.store(true, SeqCst);
    let conn = pool.get().unwrap();
    assert_eq!(conn.id, 2);
    drop(conn);
    m.panic_is_broken.store(false, SeqCst);
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 0);
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(3));
}

#[test]
fn a_thread_panicking_while_holding_a_connection_gives_its_slot_back() {
    let m = script();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let waiter_got = thread::scope(|s| {
        let holder = s.spawn(|| {
            let _conn = pool.get().unwrap();
            thread::sleep(Duration::from_millis(20));
            panic!("the request handler panicked");
        });
        eventually("held", || pool.status().in_use == 1);
        let waiter = s.spawn(|| pool.get().map(|c| c.id));
        assert!(holder.join().is_err());
        waiter.join().unwrap()
    });
    // The panicking holder's connection was closed, the waiter dialled a new one.
    assert_eq!(waiter_got.unwrap(), 1);
    assert_settled(&pool, &m);
}

#[test]
fn connect_timeout_bounds_a_stalled_dial_and_the_late_connection_is_kept() {
    let m = script();
    *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(300));
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_millis(30))
        .build(m.clone())
        .unwrap();
    let started = Instant::now();
    let err = pool.get().unwrap_err();
    assert!(matches!(err, GetError::ConnectTimeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(250));
    // The slot is still taken by the dial in progress...
    assert_eq!(pool.status().open, 1);
    *m.stall_connect.lock().unwrap() = None;
    // ...and the late connection lands in the pool.
    eventually("late connection idle", || pool.status().idle == 1);
    assert_eq!(pool.get().unwrap().id, 0);
    assert_settled(&pool, &m);
}

#[test]
fn a_dial_cut_short_by_the_callers_deadline_is_no_verdict_on_the_server() {
    let m = script();
    *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(150));
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    let started = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(matches!(err.pool_error(), Some(PoolError::TimedOut { .. })), "{err}");
    assert!(started.elapsed() < Duration::from_millis(120), "bounded by the caller's wait");
    *m.stall_connect.lock().unwrap() = None;
    // No backoff: the next caller dials at once (on the other slot).
    let conn = pool.try_get().expect("no backoff after a dial its caller cut short");
    drop(conn);
    // The late connection joins the pool.
    eventually("late connection kept", || pool.status().idle == 2);
    assert_eq!(Snapshot::of(&pool).value("timeouts"), Some(1));
    assert_settled(&pool, &m);
}

#[test]
fn close_ends_a_wait_for_the_dial_backoff() {
    let m = script();
    let pool = Builder::new()
        .connect_retries(0)
        .dial_backoff(Duration::from_secs(5), Duration::from_secs(5))
        .build(m.clone())
        .unwrap();
    m.fail_connect.store(true, SeqCst);
    assert!(matches!(pool.get().unwrap_err(), GetError::Connect(_)));
    thread::scope(|s| {
        // This caller waits out the (5 s) backoff before it dials again...
        let waiter = s.spawn(|| pool.get_timeout(Duration::from_secs(20)).map(|_| ()));
        thread::sleep(Duration::from_millis(30));
        let started = Instant::now();
        pool.close();
        // ...and close ends that wait at once.
        let err = waiter.join().unwrap().unwrap_err();
        assert!(err.is_closed(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    });
    assert_settled(&pool, &m);
}

#[test]
fn failed_dials_share_one_backoff_and_counts_stay_exact() {
    let m = script();
    let pool = Builder::new()
        .max_size(4)
        .connect_retries(0)
        .dial_backoff(Duration::from_millis(40), Duration::from_millis(40))
        .build(m.clone())
        .unwrap();
    m.fail_connect.store(true, SeqCst);
    assert!(matches!(pool.get().unwrap_err(), GetError::Connect(_)));
    let started = Instant::now();
    // Eight threads at once during the backoff: they wait it out and the server
    // sees at most one attempt each afterwards, not a storm while it is down.
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert!(pool.get().is_err()));
        }
    });
    assert!(started.elapsed() >= Duration::from_millis(15), "callers waited out the backoff");
    // A caller whose wait ends before the backoff does, or that may not wait, is
    // told so without a dial (`GetError::Backoff`, as in the async pool).
    let before = m.connects.load(SeqCst);
    let err = pool.get_timeout(Duration::from_millis(1)).unwrap_err();
    match err {
        GetError::Backoff { failures, last_error, .. } => {
            assert!(failures >= 1);
            assert!(last_error.contains("refused"), "{last_error}");
        }
        e => panic!("unexpected {e}"),
    }
    let started_try = Instant::now();
    assert!(matches!(pool.try_get().unwrap_err(), GetError::Backoff { .. }));
    assert!(started_try.elapsed() < Duration::from_millis(20), "try_get never sleeps");
    assert_eq!(m.connects.load(SeqCst), before);
    m.fail_connect.store(false, SeqCst);
    thread::sleep(Duration::from_millis(70));
    drop(pool.get().unwrap());
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 1);
}

/// A dial cut short by what is left of the connect timeout after a refusal is not the
/// cause: the refusal is reported, not a bare connect timeout (the server answered,
/// and said no), as in the async pool.
#[test]
fn a_dial_cut_short_after_a_refusal_reports_the_refusal() {
    let m = script();
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_millis(300))
        .dial_backoff(Duration::from_millis(20), Duration::from_millis(20))
        .build(m.clone())
        .unwrap();
    m.fail_next.store(1, SeqCst);
    *m.stall_after_first.lock().unwrap() = Some(Duration::from_secs(1));
    match pool.get().unwrap_err() {
        GetError::ConnectFailed { attempts: 2, last } => assert_eq!(last.to_string(), "refused"),
        other => panic!("expected the refusal after two attempts, got {other:?}"),
    }
}

#[test]
fn a_failed_dial_is_retried_within_the_connect_timeout() {
    // As in the async pool: connect_timeout is the time one get may spend dialling,
    // failed dials are retried after the shared backoff, without a count limit by
    // default.
    let m = script();
    let pool = Builder::new()
        .max_size(2)
        .dial_backoff(Duration::from_millis(1), Duration::from_millis(2))
        .build(m.clone())
        .unwrap();
    m.fail_next.store(2, SeqCst);
    let conn = pool.get().expect("the third attempt succeeds");
    assert_eq!(m.connects.load(SeqCst), 3);
    assert_eq!(Snapshot::of(&pool).value("dial_errors"), Some(2));
    drop(conn);
    assert_settled(&pool, &m);

    // A count limit: retries + 1 attempts, reported with the last error.
    let m = script();
    let pool = Builder::new()
        .connect_retries(2)
        .dial_backoff(Duration::from_millis(1), Duration::from_millis(2))
        .build(m.clone())
        .unwrap();
    m.fail_connect.store(true, SeqCst);
    match pool.get().unwrap_err() {
        GetError::ConnectFailed { attempts, last } => {
            assert_eq!(attempts, 3);
            assert_eq!(last.to_string(), "refused");
        }
        e => panic!("unexpected {e}"),
    }
    assert_eq!(m.connects.load(SeqCst), 3);
    assert_settled(&pool, &m);

    // No count limit: the connect timeout ends the retries.
    let m = script();
    let pool = Builder::new()
        // Long enough for several attempts even when the test's thread waits for a
        // core on a loaded machine.
        .connect_timeout(Duration::from_millis(300))
        .dial_backoff(Duration::from_millis(5), Duration::from_millis(10))
        .build(m.clone())
        .unwrap();
    m.fail_connect.store(true, SeqCst);
    let started = Instant::now();
    // The last attempt may be the one the deadline cuts short (as in the async pool,
    // then reported as a connect timeout).
    let err = pool.get().unwrap_err();
    assert!(
        matches!(err, GetError::ConnectFailed { .. } | GetError::ConnectTimeout { .. }),
        "{err}"
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(3), "{took:?}");
    assert!(m.connects.load(SeqCst) >= 3);
    // A fail-fast caller makes one attempt (and then finds the backoff in force).
    // (Once a dial cut short by the deadline, if any, has ended on its thread.)
    eventually("no dial in progress", || pool.status().open == 0);
    let before = m.connects.load(SeqCst);
    thread::sleep(Duration::from_millis(15));
    assert!(matches!(pool.try_get().unwrap_err(), GetError::Connect(_)));
    assert_eq!(m.connects.load(SeqCst), before + 1);
    assert_settled(&pool, &m);
}

#[test]
fn failed_health_checks_discard_stale_connections_then_dial_a_fresh_one() {
    // As in the async pool: a failed check is never the caller's error. The retries
    // bound how many stale idle connections one get checks before it dials.
    let m = script();
    let pool = Builder::new()
        .max_size(4)
        .health_check_after(Duration::ZERO)
        .max_health_retries(1)
        .build(m.clone())
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    drop(held);
    m.fail_check.store(true, SeqCst);
    let conn = pool.get().expect("a fresh dial replaces the stale connections");
    assert_eq!(conn.id, 3, "a new connection, not one that failed its check");
    assert_eq!(m.checks.load(SeqCst), 2, "max_health_retries + 1 checks, then a dial");
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("health_checks"), Some(2));
    assert_eq!(snap.value("health_fails"), Some(2));
    assert_eq!(snap.value("closed_broken"), Some(2));
    assert_eq!(snap.value("dials"), Some(4));
    drop(conn);
    assert_settled(&pool, &m);
    // The third stale connection is still idle (this get stopped looking), plus the new one.
    assert_eq!(pool.status().open, 2);
}

#[test]
fn zero_health_retries_check_one_stale_connection_then_dial() {
    let m = script();
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .max_health_retries(0)
        .build(m.clone())
        .unwrap();
    let held: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    drop(held);
    m.fail_check.store(true, SeqCst);
    // The pool is full (two idle): the failed connection's slot is reused for the dial.
    assert_eq!(pool.get().unwrap().id, 2);
    assert_eq!(m.checks.load(SeqCst), 1);
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 2);
}

#[test]
fn a_timed_out_health_check_is_not_the_callers_error() {
    let m = script();
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .max_health_retries(0)
        .connect_timeout(Duration::from_millis(30))
        .build(m.clone())
        .unwrap();
    let held: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    drop(held);
    *m.stall_check.lock().unwrap() = Some(Duration::from_millis(300));
    let started = Instant::now();
    // The first idle connection's check hangs past the connect timeout; the retries
    // are spent, so the other stale one is replaced by a dial instead of checked.
    let conn = pool.get().expect("a hung check is the pool's problem");
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(conn.id, 2);
    assert_eq!(m.checks.load(SeqCst), 1);
    *m.stall_check.lock().unwrap() = None;
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("health_fails"), Some(1));
    drop(conn);
    // The late check succeeds: its connection comes back to the pool.
    eventually("late check ended", || pool.status().in_use == 0);
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 2);
}

#[test]
fn a_health_check_is_bounded_by_the_callers_deadline() {
    let m = script();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .connect_timeout(Duration::from_secs(5))
        .build(m.clone())
        .unwrap();
    drop(pool.get().unwrap());
    *m.stall_check.lock().unwrap() = Some(Duration::from_millis(200));
    let started = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(matches!(err.pool_error(), Some(PoolError::TimedOut { .. })), "{err}");
    assert!(started.elapsed() < Duration::from_millis(150));
    *m.stall_check.lock().unwrap() = None;
    eventually("late check ended", || pool.status().idle == 1);
    assert_settled(&pool, &m);
}

#[test]
fn is_broken_is_asked_on_checkout_and_a_broken_idle_connection_is_replaced() {
    let m = script();
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    drop(pool.get().unwrap());
    // The connection broke while idle (e.g. the server closed it).
    m.broken.store(true, SeqCst);
    let conn = pool.get().unwrap();
    m.broken.store(false, SeqCst);
    assert_eq!(conn.id, 1, "the broken idle connection was not handed out");
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
    drop(conn);
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 1);
}

#[test]
fn lifetimes_are_enforced_on_checkout_return_and_by_the_janitor() {
    let m = script();
    let pool = Builder::new()
        .max_size(4)
        .max_lifetime(Duration::from_millis(40))
        .janitor_interval(Duration::from_millis(10))
        .build(m.clone())
        .unwrap();
    // On return.
    let conn = pool.get().unwrap();
    thread::sleep(Duration::from_millis(50));
    drop(conn);
    assert_eq!(pool.status().open, 0);
    // By the janitor.
    drop(pool.get().unwrap());
    eventually("janitor closed it", || pool.status().open == 0);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("closed_lifetime"), Some(2));
    assert_settled(&pool, &m);
}

#[test]
fn idle_connections_past_max_idle_time_are_closed_on_checkout() {
    let m = script();
    let pool = Builder::new()
        .max_size(2)
        .max_idle_time(Duration::from_millis(20))
        .janitor_interval(Duration::from_secs(60))
        .build(m.clone())
        .unwrap();
    drop(pool.get().unwrap());
    thread::sleep(Duration::from_millis(30));
    // Checkout sees the expired one, closes it, dials a fresh one.
    assert_eq!(pool.get().unwrap().id, 1);
    assert_eq!(Snapshot::of(&pool).value("closed_idle"), Some(1));
    assert_settled(&pool, &m);
}

#[test]
fn the_janitor_keeps_min_idle() {
    let m = script();
    let pool = Builder::new()
        .max_size(4)
        .min_idle(2)
        .janitor_interval(Duration::from_millis(5))
        .build(m.clone())
        .unwrap();
    eventually("warmed", || pool.status().idle == 2);
    let a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    b.mark_broken();
    drop(b);
    eventually("re-warmed", || pool.status().idle >= 2);
    drop(a);
    assert_eq!(pool.retain(|_, _| false), Ok(3));
    eventually("re-warmed after retain", || pool.status().idle == 2);
    assert_settled(&pool, &m);
}

#[test]
fn taking_the_pool_below_min_idle_has_the_janitor_refill_it_at_once() {
    // As in the async pool: the janitor refills min_idle when a get takes the pool
    // below it, not only at its next tick (30 s here: no time limits are set).
    let m = script();
    let pool = Builder::new().max_size(4).min_idle(2).build(m.clone()).unwrap();
    pool.maintain();
    assert_eq!(pool.status().idle, 2);
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    eventually("refilled", || pool.status().idle == 2);
    assert_eq!(pool.status().open, 4);
    drop((a, b));
    assert_settled(&pool, &m);
}

#[test]
fn close_wakes_every_waiter_and_close_graceful_waits_for_returns() {
    let m = script();
    let pool = Builder::new().max_size(2).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    thread::scope(|s| {
        let waiters: Vec<_> = (0..4).map(|_| s.spawn(|| pool.get().map(|_| ()))).collect();
        eventually("queued", || pool.status().waiting == 4);
        let deadline = Instant::now() + Duration::from_millis(20);
        let err = pool.close_graceful(deadline).unwrap_err();
        assert_eq!(err.still_in_use, 2);
        for w in waiters {
            assert!(w.join().unwrap().unwrap_err().is_closed());
        }
        drop(a);
        let returning = s.spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(b);
        });
        pool.close_graceful(Instant::now() + Duration::from_secs(5)).unwrap();
        returning.join().unwrap();
    });
    assert_eq!(pool.status().open, 0);
    assert_eq!(m.live.load(SeqCst), 0);
    assert!(pool.get().unwrap_err().is_closed());
}

#[test]
fn resize_add_detach_and_mark_broken() {
    let m = script();
    let pool = Builder::new().max_size(2).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    thread::scope(|s| {
        let w = s.spawn(|| pool.get().map(|c| c.id));
        eventually("queued", || pool.status().waiting == 1);
        pool.resize(3).unwrap(); // the new slot goes to the waiter
        assert_eq!(w.join().unwrap().unwrap(), 2);
    });
    pool.resize(1).unwrap(); // the idle one is closed now
    assert_eq!(pool.status().open, 2);
    drop(a); // still over size: closed on return
    assert_eq!(pool.status().open, 1);
    let raw = b.detach();
    assert_eq!(raw.id, 1);
    assert_eq!(pool.status().open, 0);
    drop(raw);
    let tracked = |id| {
        m.live.fetch_add(1, SeqCst);
        Tracked { id, live: m.live.clone() }
    };
    pool.add(tracked(98)).unwrap();
    let back = match pool.add(tracked(99)).unwrap_err() {
        AddError::Full(back) => back,
        e => panic!("unexpected {e}"),
    };
    pool.resize(2).unwrap();
    pool.add(back).unwrap();
    assert_eq!(pool.get().unwrap().id, 99);
    assert_settled(&pool, &m);
    pool.close();
    // On a closed pool: the connection comes back inside the error, resize and
    // retain say `Closed`, as in the async pool.
    match pool.add(tracked(100)) {
        Err(AddError::Closed(back)) => assert_eq!(back.id, 100),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.resize(3), Err(BuildError::Closed));
    assert_eq!(pool.retain(|_, _| true), Err(PoolError::Closed));
    assert_eq!(m.live.load(SeqCst), 0);
}

#[test]
fn a_panicking_retain_predicate_rejects_that_connection_and_goes_on() {
    let m = script();
    let pool = Builder::new().max_size(3).build(m.clone()).unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    drop(held);
    let closed = pool.retain(|conn, _| {
        assert_ne!(conn.id, 1, "the predicate panics on connection 1");
        true
    });
    assert_eq!(closed, Ok(1));
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
    assert_settled(&pool, &m);
    assert_eq!(pool.status().idle, 2);
}

#[test]
fn min_idle_does_not_protect_a_connection_from_max_idle_time() {
    // As in the async pool: idle connections past max_idle_time are closed even at
    // min_idle, and the janitor replaces them with fresh ones.
    let m = script();
    let pool = Builder::new()
        .max_size(2)
        .min_idle(1)
        .max_idle_time(Duration::from_millis(20))
        .janitor_interval(Duration::from_secs(3600))
        .build(m.clone())
        .unwrap();
    pool.maintain();
    assert_eq!(pool.status().idle, 1);
    thread::sleep(Duration::from_millis(30));
    pool.maintain();
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("closed_idle"), Some(1));
    assert_eq!(pool.status().idle, 1, "re-warmed to min_idle");
    assert_eq!(pool.get().unwrap().id, 1, "a fresh connection");
    // That get woke the janitor to refill min_idle: wait for its dial, if any.
    eventually("no dial in progress", || m.live.load(SeqCst) == pool.status().open);
    assert_settled(&pool, &m);
}

#[test]
fn a_slot_being_dialled_counts_as_in_use() {
    let m = script();
    *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(100));
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    thread::scope(|s| {
        let dialer = s.spawn(|| pool.get().map(|c| c.id));
        eventually("dialling", || m.connects.load(SeqCst) == 1);
        let st = pool.status();
        assert_eq!((st.open, st.idle, st.in_use), (1, 0, 1), "in_use == open - idle");
        assert_eq!(dialer.join().unwrap().unwrap(), 0);
    });
    assert_settled(&pool, &m);
}

#[test]
fn fail_fast_reports_exhaustion_at_once() {
    let pool = Builder::new().max_size(1).wait(WaitPolicy::FailFast).build(script()).unwrap();
    let held = pool.get().unwrap();
    assert_eq!(pool.get().unwrap_err().pool_error(), Some(PoolError::Exhausted));
    assert_eq!(Snapshot::of(&pool).value("exhaustions"), Some(1));
    drop(held);
}

#[test]
fn after_connect_runs_once_per_connection_and_its_error_fails_the_dial() {
    let m = script();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let pool = Builder::new()
        .max_size(2)
        .after_connect(move |conn: &mut Tracked| {
            if seen.fetch_add(1, SeqCst) == 0 {
                return Err(std::io::Error::other("setup failed"));
            }
            conn.id += 1000;
            Ok(())
        })
        .dial_backoff(Duration::from_millis(1), Duration::from_millis(1))
        .connect_retries(0)
        .build(m.clone())
        .unwrap();
    // As in the async pool: the hook's error is `GetError::Hook`, not a connect error.
    match pool.get().unwrap_err() {
        GetError::Hook { during, error } => {
            assert_eq!(during, "after_connect");
            assert_eq!(error.to_string(), "setup failed");
        }
        e => panic!("unexpected {e}"),
    }
    let conn = pool.get().unwrap();
    assert_eq!(conn.id, 1001);
    drop(conn);
    drop(pool.get().unwrap());
    assert_eq!(calls.load(SeqCst), 2);
    assert_settled(&pool, &m);

    // With retries (the default), a hook that fails once is retried within the get.
    let m = script();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let pool = Builder::new()
        .after_connect(move |_: &mut Tracked| match seen.fetch_add(1, SeqCst) {
            0 => Err(std::io::Error::other("setup failed")),
            _ => Ok(()),
        })
        .dial_backoff(Duration::from_millis(1), Duration::from_millis(1))
        .build(m.clone())
        .unwrap();
    assert_eq!(pool.get().unwrap().id, 1);
    assert_eq!(calls.load(SeqCst), 2);
    assert_settled(&pool, &m);
}

#[test]
fn a_panicking_after_connect_hook_is_reported_and_closes_the_connection() {
    let m = script();
    let pool = Builder::new()
        .after_connect(|_: &mut Tracked| panic!("hook panicked on purpose"))
        .build(m.clone())
        .unwrap();
    match pool.get().unwrap_err() {
        GetError::Panicked { during, message } => {
            assert_eq!(during, "after_connect");
            assert!(message.contains("hook panicked on purpose"), "{message}");
        }
        e => panic!("unexpected {e}"),
    }
    assert_eq!(m.connects.load(SeqCst), 1, "a panic ends the get: no retry");
    assert_settled(&pool, &m);
    assert_eq!(pool.status().open, 0);
}

#[test]
fn many_threads_hammer_a_small_pool_and_counts_stay_exact() {
    let m = script();
    let pool = Builder::new().max_size(3).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let barrier = Barrier::new(12);
    let in_use = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..12 {
            let (pool, barrier, in_use, peak) = (&pool, &barrier, &in_use, &peak);
            s.spawn(move || {
                barrier.wait();
                for i in 0..2000 {
                    let mut conn = pool.get().unwrap();
                    let now = in_use.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    if (i + t) % 97 == 0 {
                        conn.mark_broken();
                    }
                    in_use.fetch_sub(1, SeqCst);
                }
            });
        }
    });
    assert!(peak.load(SeqCst) <= 3);
    assert_settled(&pool, &m);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("acquires"), Some(24_000));
    assert_eq!(
        snap.value("dials").unwrap() - snap.value("closed_broken").unwrap(),
        pool.status().open as u64
    );
}

#[test]
fn dropping_the_pool_while_the_janitor_is_mid_round_does_not_hang() {
    for _ in 0..5 {
        let m = script();
        *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(30));
        let pool = Builder::new()
            .min_idle(2)
            .janitor_interval(Duration::from_millis(1))
            .build(m.clone())
            .unwrap();
        // The janitor is dialling (holding the pool) when the last handle drops.
        thread::sleep(Duration::from_millis(5));
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            drop(pool);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("dropping the pool returned");
        assert_eq!(m.live.load(SeqCst), 0, "the warmed connections were closed");
    }
}

#[test]
fn warming_from_the_janitor_and_callers_at_once_never_overshoots_min_idle() {
    for _ in 0..5 {
        let m = script();
        *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(3));
        let pool = Builder::new()
            .max_size(8)
            .min_idle(3)
            .janitor_interval(Duration::from_millis(1))
            .build(m.clone())
            .unwrap();
        thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| pool.maintain());
            }
        });
        assert_eq!(pool.status().idle, 3, "maintain returns with min_idle ready");
        thread::sleep(Duration::from_millis(10));
        assert_eq!(pool.status().open, 3, "and nobody opened more");
        assert_eq!(m.connects.load(SeqCst), 3);
    }
}

#[test]
fn events_receive_acquire_wait_and_dial_timings() {
    use poolside_core::{EventHook, Events, Timing};
    #[derive(Default)]
    struct Seen(Mutex<Vec<(Timing, Duration)>>);
    impl EventHook for Seen {
        fn on_timing(&self, timing: Timing, elapsed: Duration) {
            self.0.lock().unwrap().push((timing, elapsed));
        }
    }
    let seen = Arc::new(Seen::default());
    let m = script();
    *m.stall_connect.lock().unwrap() = Some(Duration::from_millis(5));
    let pool = Builder::new().events(Events::from_arc(seen.clone())).build(m).unwrap();
    drop(pool.get().unwrap());
    drop(pool.get().unwrap());
    let seen = seen.0.lock().unwrap();
    let dials: Vec<_> = seen.iter().filter(|(t, _)| *t == Timing::Dial).collect();
    let waits: Vec<_> = seen.iter().filter(|(t, _)| *t == Timing::AcquireWait).collect();
    assert_eq!(dials.len(), 1);
    assert!(dials[0].1 >= Duration::from_millis(5));
    assert_eq!(waits.len(), 2);
    assert!(waits[0].1 >= Duration::from_millis(5), "the first get waited for the dial");
}
