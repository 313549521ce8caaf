//! The blocking pool's user code at the edges of a `get` and a return: `is_broken`,
//! `check`, `connect`, `after_connect` and the connection's own `Drop`, when the
//! caller's wait ends, when the pool closes, and when they panic. The async pool's
//! rules (tests in `peers_sqlx_mobc.rs`) carried over to threads: a get never hands
//! out a connection from a check or dial that ended after its deadline or after the
//! pool closed, and counts stay exact whatever the user code does.
//!
//! Stalls are gates the test opens (no timing races); the only sleeps are an idle
//! gap and an `is_broken` that must outlast a 20 ms wait limit.
#![cfg(feature = "blocking")]

use poolside_connpool::blocking::{Builder, Manager, Pool};
use poolside_connpool::events::{ConnEvent, EventHook, Events, Timing};
use poolside_connpool::{GetError, PoolError, WaitPolicy};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Blocks the user code that passes it while armed, until the test opens it.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    fn arm(&self) {
        *self.state.lock().unwrap() = (0, false);
        self.armed.store(true, SeqCst);
    }

    /// Called by the user code: blocks while the gate is armed and closed.
    fn pass(&self) {
        if !self.armed.load(SeqCst) {
            return;
        }
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Waits (at most 10 s) until some user code is blocked at the gate.
    fn wait_entered(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) =
            self.changed.wait_timeout_while(state, Duration::from_secs(10), |s| s.0 == 0).unwrap();
        assert!(!timeout.timed_out() || state.0 > 0, "nothing reached the gate");
    }

    /// Lets everything through, now and later.
    fn open(&self) {
        self.armed.store(false, SeqCst);
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// A manager whose methods can be held at gates, stalled or made to panic.
#[derive(Default)]
struct Script {
    next: AtomicU64,
    live: Arc<AtomicUsize>,
    connects: AtomicUsize,
    checks: AtomicUsize,
    connect_gate: Gate,
    check_gate: Gate,
    is_broken_gate: Gate,
    /// How long `is_broken` takes (it is the only user code run on the caller's
    /// thread during a get).
    is_broken_stall: Mutex<Option<Duration>>,
    panic_check: AtomicBool,
    /// New connections panic when dropped while this is set.
    panic_on_drop: Arc<AtomicBool>,
}

/// A connection that counts itself live until dropped, and may panic in `Drop`.
#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Arc<AtomicUsize>,
    panic_on_drop: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
        if self.panic_on_drop.load(SeqCst) {
            panic!("the connection's drop panicked on purpose");
        }
    }
}

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
        self.connects.fetch_add(1, SeqCst);
        self.connect_gate.pass();
        self.live.fetch_add(1, SeqCst);
        Ok(Tracked {
            id: self.next.fetch_add(1, SeqCst),
            live: self.live.clone(),
            panic_on_drop: self.panic_on_drop.clone(),
        })
    }

    fn check(&self, _conn: &mut Tracked) -> Result<(), std::io::Error> {
        self.checks.fetch_add(1, SeqCst);
        self.check_gate.pass();
        if self.panic_check.load(SeqCst) {
            panic!("check panicked on purpose");
        }
        Ok(())
    }

    fn is_broken(&self, _conn: &mut Tracked) -> bool {
        self.is_broken_gate.pass();
        let stall = *self.is_broken_stall.lock().unwrap();
        if let Some(stall) = stall {
            thread::sleep(stall);
        }
        false
    }
}

/// Records every connection event.
#[derive(Default)]
struct Log(Mutex<Vec<ConnEvent>>);

impl EventHook for Log {
    fn on_timing(&self, _: Timing, _: Duration) {}
    fn on_connection(&self, event: ConnEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Log {
    fn closes(&self) -> Vec<(u64, &'static str)> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter_map(|e| match *e {
                ConnEvent::Close { id, reason, .. } => Some((id, reason)),
                _ => None,
            })
            .collect()
    }

    fn last_held(&self) -> Duration {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .rev()
            .find_map(|e| match *e {
                ConnEvent::Checkin { held, .. } => Some(held),
                _ => None,
            })
            .expect("a checkin was reported")
    }
}

fn logged() -> (Arc<Log>, Events) {
    let log = Arc::new(Log::default());
    let events = Events::from_arc(log.clone());
    (log, events)
}

/// (open, idle, in use, waiting).
fn levels(pool: &Pool<S>) -> (usize, usize, usize, usize) {
    let s = pool.status();
    (s.open, s.idle, s.in_use, s.waiting)
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn is_timed_out<E: std::error::Error>(result: &Result<impl Sized, GetError<E>>) -> bool {
    matches!(result, Err(GetError::Pool(PoolError::TimedOut { .. })))
}

const MS: Duration = Duration::from_millis(1);

// Mirrors peers_sqlx_mobc's `a_before_acquire_hook_that_hangs_is_cut_off_by_the_callers_wait`:
// the time `is_broken` takes on checkout counts against the wait, and a health check
// is not started for a caller whose deadline has passed.
#[test]
fn no_health_check_starts_once_the_callers_deadline_has_passed() {
    let m = S::default();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .connect_timeout(Duration::from_secs(30))
        .build(m.clone())
        .unwrap();
    drop(pool.get().unwrap());
    // Checking out the idle connection, `is_broken` outlasts the caller's wait.
    *m.is_broken_stall.lock().unwrap() = Some(60 * MS);
    let got = pool.get_timeout(20 * MS).map(|c| c.id);
    *m.is_broken_stall.lock().unwrap() = None;
    assert!(is_timed_out(&got), "a connection was handed out after the deadline: {got:?}");
    assert_eq!(m.checks.load(SeqCst), 0, "no check starts after the deadline");
    // The connection, never judged broken, stays in the pool.
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(pool.get().unwrap().id, 0);
    assert_eq!(m.live.load(SeqCst), 1);
}

// Mirrors peers_sqlx_mobc's `a_get_still_preparing_its_connection_when_the_pool_closes_fails_with_closed`.
#[test]
fn a_get_checking_its_connection_when_the_pool_closes_fails_with_closed() {
    let m = S::default();
    let (log, events) = logged();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .events(events)
        .build(m.clone())
        .unwrap();
    drop(pool.get().unwrap());
    m.check_gate.arm();
    thread::scope(|s| {
        let getter = s.spawn(|| pool.get().map(|c| c.id));
        m.check_gate.wait_entered();
        pool.close();
        m.check_gate.open();
        let got = getter.join().unwrap();
        assert!(
            matches!(got, Err(GetError::Pool(PoolError::Closed))),
            "a closed pool handed out a connection: {got:?}"
        );
    });
    assert_eq!(log.closes(), [(1, "pool_closed")]);
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(m.live.load(SeqCst), 0);
    pool.close_graceful(Instant::now()).expect("nothing is still out");
}

// The dial path: already correct (guard).
#[test]
fn a_get_dialling_when_the_pool_closes_fails_with_closed() {
    let m = S::default();
    let (log, events) = logged();
    let pool = Builder::new().max_size(1).events(events).build(m.clone()).unwrap();
    m.connect_gate.arm();
    thread::scope(|s| {
        let getter = s.spawn(|| pool.get().map(|c| c.id));
        m.connect_gate.wait_entered();
        pool.close();
        m.connect_gate.open();
        let got = getter.join().unwrap();
        assert!(
            matches!(got, Err(GetError::Pool(PoolError::Closed))),
            "a closed pool handed out a new connection: {got:?}"
        );
    });
    assert_eq!(log.closes(), [(1, "pool_closed")]);
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(m.live.load(SeqCst), 0);
    pool.close_graceful(Instant::now()).expect("nothing is still out");
}

// The dial path: already correct (guard). The late connection is healthy: it joins
// the pool, and the slot stays counted until it does.
#[test]
fn a_dial_that_ends_after_the_callers_deadline_hands_nothing_out_and_keeps_the_connection() {
    let m = S::default();
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_secs(30))
        .build(m.clone())
        .unwrap();
    m.connect_gate.arm();
    let got = pool.get_timeout(20 * MS).map(|c| c.id);
    assert!(is_timed_out(&got), "{got:?}");
    assert_eq!(levels(&pool), (1, 0, 1, 0), "the dial still holds its slot");
    m.connect_gate.open();
    eventually("the late connection is idle", || pool.status().idle == 1);
    assert_eq!(pool.get().unwrap().id, 0);
    assert_eq!(m.connects.load(SeqCst), 1);
    assert_eq!(m.live.load(SeqCst), 1);
}

// The return path when the pool closes meanwhile: already correct (guard).
#[test]
fn a_connection_returned_while_the_pool_closes_is_closed_not_kept() {
    let m = S::default();
    let (log, events) = logged();
    let pool = Builder::new().max_size(1).events(events).build(m.clone()).unwrap();
    let conn = pool.get().unwrap();
    m.is_broken_gate.arm();
    thread::scope(|s| {
        let returning = s.spawn(move || drop(conn));
        m.is_broken_gate.wait_entered();
        pool.close();
        m.is_broken_gate.open();
        returning.join().unwrap();
    });
    assert_eq!(log.closes(), [(1, "pool_closed")]);
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(m.live.load(SeqCst), 0);
    pool.close_graceful(Instant::now()).expect("nothing is still out");
}

// A panic in the connection's `Drop` (user code, like the manager's methods) is
// caught and logged: the slot goes back, and closing the pool finishes its work.
#[test]
fn a_connection_whose_drop_panics_gives_its_slot_back() {
    let m = S::default();
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(Duration::from_secs(5)))
        .build(m.clone())
        .unwrap();
    m.panic_on_drop.store(true, SeqCst);
    let mut conn = pool.get().unwrap();
    conn.mark_broken();
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(conn)));
    assert!(dropped.is_ok(), "the connection's panic escaped the guard's drop");
    assert_eq!(levels(&pool), (0, 0, 0, 0), "the slot was given back");
    // The pool still serves; closing it closes the idle connection, panic caught.
    drop(pool.get_timeout(Duration::from_secs(5)).expect("the slot is free"));
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    let closed = catch_unwind(AssertUnwindSafe(|| pool.close()));
    assert!(closed.is_ok(), "close let the connection's panic escape");
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(m.live.load(SeqCst), 0);
    pool.close_graceful(Instant::now()).expect("nothing is still out");
}

// The same while the holder's thread is already panicking: a second panic escaping
// a destructor during unwinding aborts the process, so it must be caught there too.
#[test]
fn a_thread_panicking_with_a_connection_whose_drop_panics_gives_its_slot_back() {
    let m = S::default();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    m.panic_on_drop.store(true, SeqCst);
    let holder = thread::scope(|s| {
        s.spawn(|| {
            let _conn = pool.get().unwrap();
            panic!("the request handler panicked");
        })
        .join()
    });
    assert!(holder.is_err());
    assert_eq!(levels(&pool), (0, 0, 0, 0), "the slot was given back");
    assert_eq!(m.live.load(SeqCst), 0);
    m.panic_on_drop.store(false, SeqCst);
    assert_eq!(pool.get().unwrap().id, 1);
}

// Panics after the caller gave up: already correct (guard).
#[test]
fn a_check_that_panics_after_its_caller_gave_up_gives_its_slot_back() {
    let m = S::default();
    let (log, events) = logged();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .connect_timeout(Duration::from_secs(30))
        .events(events)
        .build(m.clone())
        .unwrap();
    drop(pool.get().unwrap());
    m.check_gate.arm();
    let got = pool.get_timeout(20 * MS).map(|c| c.id);
    assert!(is_timed_out(&got), "{got:?}");
    assert_eq!(levels(&pool), (1, 0, 1, 0), "the check still holds the slot");
    m.panic_check.store(true, SeqCst);
    m.check_gate.open();
    eventually("the slot is given back", || pool.status().open == 0);
    assert_eq!(log.closes(), [(1, "broken")]);
    assert_eq!(m.live.load(SeqCst), 0);
    m.panic_check.store(false, SeqCst);
    assert_eq!(pool.get_timeout(Duration::from_secs(5)).unwrap().id, 1);
}

// Panics after the caller gave up: already correct (guard).
#[test]
fn an_after_connect_hook_that_panics_after_its_caller_gave_up_gives_its_slot_back() {
    let m = S::default();
    let hook_gate = Arc::new(Gate::default());
    let gate = hook_gate.clone();
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_secs(30))
        .after_connect(move |conn: &mut Tracked| {
            gate.pass();
            if conn.id == 0 {
                panic!("after_connect panicked on purpose");
            }
            Ok(())
        })
        .build(m.clone())
        .unwrap();
    hook_gate.arm();
    let got = pool.get_timeout(20 * MS).map(|c| c.id);
    assert!(is_timed_out(&got), "{got:?}");
    assert_eq!(levels(&pool), (1, 0, 1, 0), "the dial still holds the slot");
    hook_gate.open();
    eventually("the slot is given back", || pool.status().open == 0);
    assert_eq!(m.live.load(SeqCst), 0);
    assert_eq!(pool.get_timeout(Duration::from_secs(5)).unwrap().id, 1);
}

// Mirrors peers_sqlx_mobc's `hooks_keep_retire_and_replace_connections_in_the_peer_pattern`
// (the real idle time): the blocking pool has no hooks reading it, but its checkin
// event reports the hold, which must not include the idle time before the checkout,
// whichever way the connection was handed out. Already correct (guard).
#[test]
fn checkin_events_measure_the_hold_not_the_idle_time_before_it() {
    for health_check_after in [Duration::ZERO, Duration::from_secs(60)] {
        let m = S::default();
        let (log, events) = logged();
        let pool = Builder::new()
            .max_size(1)
            .health_check_after(health_check_after)
            .events(events)
            .build(m.clone())
            .unwrap();
        drop(pool.get().unwrap());
        thread::sleep(40 * MS);
        let before = Instant::now();
        drop(pool.get().unwrap());
        let window = before.elapsed();
        let held = log.last_held();
        assert!(
            held <= window,
            "held {held:?} counts idle time (get + drop took {window:?}, checked: {})",
            health_check_after.is_zero()
        );
        assert_eq!(m.checks.load(SeqCst), usize::from(health_check_after.is_zero()));
    }
}

/// A manager with nothing to script.
struct Plain;

impl Manager for Plain {
    type Connection = ();
    type Error = std::io::Error;
    fn connect(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn check(&self, _: &mut ()) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A metrics sink that panics on every event.
struct BrokenSink;

impl EventHook for BrokenSink {
    fn on_timing(&self, timing: Timing, _: Duration) {
        panic!("broken sink: {timing:?}");
    }
    fn on_connection(&self, event: ConnEvent) {
        panic!("broken sink: {event:?}");
    }
}

/// The event hook is user code too: one that panics on every event (dial, wait,
/// checkout, checkin, close) loses the events, and the pool's counts stay exact with
/// threads waiting in line.
#[test]
fn a_panicking_event_hook_leaks_no_slot_and_hangs_nobody() {
    let pool = Builder::new()
        .max_size(2)
        .wait(WaitPolicy::Timeout(Duration::from_secs(5)))
        .events(Events::new(BrokenSink))
        .build(Plain)
        .unwrap();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    let conn = pool.get().expect("the pool serves despite its hook");
                    thread::yield_now();
                    drop(conn);
                }
            });
        }
    });
    let status = pool.status();
    assert_eq!((status.in_use, status.open), (0, status.idle), "{status:?}");
    assert!(status.open <= 2, "{status:?}");
    let both = (pool.get().unwrap(), pool.get().unwrap());
    assert_eq!(pool.status().in_use, 2);
    drop(both);
    pool.close();
    assert_eq!(pool.status().open, 0);
}

#[test]
fn event_hooks_may_read_the_pool_from_every_lifecycle_step() {
    // Connect, checkout, check-in, and each way a connection closes (broken, retain,
    // resize, idle and lifetime sweeps, close), with a hook that reads the pool's
    // status each time; on a thread of its own, so a deadlock fails instead of hangs.
    let hook = Arc::new(crate::common::LookingHook::default());
    let pool = Builder::new()
        .max_size(4)
        .max_idle_time(Duration::from_millis(30))
        .max_lifetime(Duration::from_millis(200))
        .janitor_interval(Duration::from_millis(10))
        .events(Events::from_arc(hook.clone()))
        .build(S::default())
        .unwrap();
    let looked_at = pool.clone();
    let look = move || {
        let status = looked_at.status();
        assert!(status.in_use <= status.open, "{status:?}");
        let _ = looked_at.is_closed();
    };
    assert!(hook.look.set(Box::new(look)).is_ok(), "set once");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = {
        let pool = pool.clone();
        thread::spawn(move || {
            let mut held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
            held[0].mark_broken();
            drop(held);
            pool.retain(|conn, _| conn.id % 2 == 0).unwrap();
            pool.resize(1).unwrap();
            pool.resize(4).unwrap();
            let again: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
            drop(again);
            thread::sleep(Duration::from_millis(300)); // idle and lifetime sweeps
            drop(pool.get().unwrap());
            pool.close();
            done_tx.send(()).unwrap();
        })
    };
    done_rx.recv_timeout(Duration::from_secs(20)).expect("an event hook deadlocked");
    worker.join().unwrap();
    assert!(hook.looks.load(SeqCst) > 10);
    assert_eq!(pool.status().open, 0);
}
