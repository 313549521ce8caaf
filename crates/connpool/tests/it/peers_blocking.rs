//! r2d2's test suite (`src/test.rs`, and the example in `src/lib.rs`), translated to
//! the blocking pool: each test names the r2d2 test whose behaviour it checks.
//!
//! Where our documented design differs, the test checks our behaviour instead:
//!
//! * `build` is lazy: it checks the settings and never dials, so a server that is
//!   down fails the first `get`, not `build` (r2d2's `build` opens `min_idle`
//!   connections and fails after `connection_timeout`; our `build` is its
//!   `build_unchecked`). `test_initialization_failure` therefore checks that a down
//!   server does not fail `build`, that warming to `min_idle` leaks no slot, and
//!   that the manager's error reaches the first `get`.
//! * `min_idle` defaults to 0, not to `max_size`: tests that start from a full pool
//!   fill it by checking connections out and back in.
//! * r2d2's `connection_timeout` is two settings here: the wait policy
//!   (`WaitPolicy::Timeout`, how long `get` waits in line) and `connect_timeout`
//!   (how long one `get` may spend dialling). `reaper_rate` is `janitor_interval`,
//!   `idle_timeout` is `max_idle_time`, `test_on_check_out(true)` is
//!   `health_check_after(Duration::ZERO)`, `state()` is `status()`.
//! * `try_get` returns `Err(GetError::Pool(PoolError::Exhausted))` rather than
//!   `None`.
//! * `CustomizeConnection::on_acquire` is `Builder::after_connect`. Its
//!   `on_release` has no blocking counterpart (no release hook): the connection's
//!   own `Drop`, and the `Close` event, are where its closing is seen.
//! * Events are the shared `EventHook`: `ConnEvent::Connect` / `Checkout` /
//!   `Checkin` / `Close` stand for r2d2's acquire / checkout / checkin / release
//!   events; connection ids count from 1 within each pool. A get that times out
//!   sends no event (r2d2's `TimeoutEvent`): it is counted in the `timeouts` metric.
//!
//! Skipped, for features we lack:
//!
//! * `extensions`: no per-connection type map on the guard; keep such state in the
//!   connection type itself.
#![cfg(feature = "blocking")]

use poolside_connpool::blocking::{Builder, Manager, Pool};
use poolside_connpool::events::{ConnEvent, EventHook, Events, Timing};
use poolside_connpool::{GetError, PoolError, WaitPolicy};
use poolside_core::Snapshot;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// What the fake server says when it refuses a connection.
const REFUSAL: &str = "refused by the fake server";

#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REFUSAL)
    }
}

impl std::error::Error for Refused {}

/// A connection that counts its own close.
#[derive(Debug)]
struct FakeConn {
    /// 1 for the first connection opened, then 2, ...
    id: usize,
    /// Set by the `after_connect` hook.
    tag: u32,
    closed: Arc<AtomicUsize>,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.closed.fetch_add(1, SeqCst);
    }
}

/// r2d2's fake managers in one: connects succeed while the budget lasts (r2d2's
/// `NthConnectFailManager`), every connection can be reported broken on return
/// (`has_broken`), and connects and closes are counted.
#[derive(Default)]
struct Fake {
    /// How many more connects may succeed; `None`: all of them.
    budget: Mutex<Option<usize>>,
    connects: AtomicUsize,
    opened: AtomicUsize,
    closed: Arc<AtomicUsize>,
    broken: AtomicBool,
}

/// A cheap handle to the fake, shared by the pool and the test.
#[derive(Clone, Default)]
struct Peer(Arc<Fake>);

impl std::ops::Deref for Peer {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl Peer {
    fn with_budget(connects: usize) -> Self {
        let peer = Peer::default();
        *peer.budget.lock().unwrap() = Some(connects);
        peer
    }

    fn connects(&self) -> usize {
        self.connects.load(SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(SeqCst)
    }
}

impl Manager for Peer {
    type Connection = FakeConn;
    type Error = Refused;

    fn connect(&self) -> Result<FakeConn, Refused> {
        self.connects.fetch_add(1, SeqCst);
        if let Some(left) = self.budget.lock().unwrap().as_mut() {
            if *left == 0 {
                return Err(Refused);
            }
            *left -= 1;
        }
        let id = self.opened.fetch_add(1, SeqCst) + 1;
        Ok(FakeConn { id, tag: 0, closed: self.closed.clone() })
    }

    fn check(&self, _conn: &mut FakeConn) -> Result<(), Refused> {
        Ok(())
    }

    fn is_broken(&self, _conn: &mut FakeConn) -> bool {
        self.broken.load(SeqCst)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Waits (at most 10 s) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(ms(2));
    }
}

/// Opens `n` connections and returns them all, as r2d2's eager `build` would have.
fn fill(pool: &Pool<Peer>, n: usize) {
    let all: Vec<_> = (0..n).map(|_| pool.get().unwrap()).collect();
    drop(all);
    assert_eq!(pool.status().idle, n);
}

fn metric(pool: &Pool<Peer>, name: &str) -> u64 {
    Snapshot::of(pool).value(name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// (open, idle, in_use, waiting)
fn levels(pool: &Pool<Peer>) -> (usize, usize, usize, usize) {
    let s = pool.status();
    (s.open, s.idle, s.in_use, s.waiting)
}

// r2d2: test_max_size_ok
#[test]
fn max_size_connections_can_be_held_at_once() {
    let m = Peer::with_budget(5);
    let pool = Builder::new().max_size(5).build(m.clone()).unwrap();
    let held: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    assert_eq!(held.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(levels(&pool), (5, 0, 5, 0));
    // A sixth is refused by the pool, without asking the server.
    assert_eq!(pool.try_get().unwrap_err().pool_error(), Some(PoolError::Exhausted));
    assert_eq!(m.connects(), 5);
    drop(held);
    assert_eq!(levels(&pool), (5, 5, 0, 0));
    assert_eq!(m.closed(), 0);
}

// r2d2: test_acquire_release
#[test]
fn a_released_connection_is_reused() {
    let m = Peer::default();
    let pool = Builder::new().max_size(2).build(m.clone()).unwrap();
    let first = pool.get().unwrap();
    let second = pool.get().unwrap();
    assert_eq!((first.id, second.id), (1, 2));
    drop(first);
    let third = pool.get().unwrap();
    assert_eq!(third.id, 1, "the returned connection is handed out again");
    drop(second);
    drop(third);
    assert_eq!(m.connects(), 2);
    assert_eq!(levels(&pool), (2, 2, 0, 0));
    assert_eq!(metric(&pool, "acquires"), 3);
    assert_eq!(metric(&pool, "releases"), 3);
}

// r2d2: try_get
#[test]
fn try_get_never_waits_and_reports_exhaustion() {
    let m = Peer::default();
    let pool = Builder::new().max_size(2).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let first = pool.try_get().unwrap();
    let second = pool.try_get().unwrap();
    match pool.try_get() {
        Err(GetError::Pool(PoolError::Exhausted)) => {}
        other => panic!("expected Exhausted, got {:?}", other.map(|c| c.id)),
    }
    assert_eq!(pool.status().waiting, 0, "try_get never joins the line");
    let first_id = first.id;
    drop(first);
    assert_eq!(pool.try_get().unwrap().id, first_id);
    drop(second);
    assert_eq!(m.connects(), 2);
    assert_eq!(metric(&pool, "exhaustions"), 1);
}

// r2d2: get_timeout
#[test]
fn get_timeout_waits_for_a_return_and_fails_when_none_comes() {
    let m = Peer::default();
    let pool = Builder::new().max_size(1).build(m.clone()).unwrap();
    let held = pool.get_timeout(ms(100)).expect("a free slot: no wait");
    // A connection returned while a caller waits goes to that caller.
    let delayed = thread::scope(|s| {
        s.spawn(|| {
            eventually("the caller waits in line", || pool.status().waiting == 1);
            drop(held);
        });
        pool.get_timeout(Duration::from_secs(10)).expect("handed the returned connection")
    });
    assert_eq!(delayed.id, 1);
    // Nothing comes back this time: the wait ends with a timeout.
    let started = Instant::now();
    match pool.get_timeout(ms(100)) {
        Err(GetError::Pool(PoolError::TimedOut { waited })) => assert!(waited >= ms(100)),
        other => panic!("expected a timeout, got {:?}", other.map(|c| c.id)),
    }
    assert!(started.elapsed() >= ms(100));
    assert_eq!(levels(&pool), (1, 0, 1, 0), "the timed-out caller left the line");
    drop(delayed);
    assert_eq!(m.connects(), 1);
    assert_eq!(metric(&pool, "timeouts"), 1);
}

// r2d2: test_is_send_sync (and the threads sharing a pool in r2d2's crate example)
#[test]
fn the_pool_is_send_sync_and_its_clones_serve_many_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Pool<Peer>>();

    let m = Peer::default();
    let pool = Builder::new().max_size(3).wait(WaitPolicy::Queue).build(m.clone()).unwrap();
    let in_use = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (pool, in_use, peak) = (pool.clone(), in_use.clone(), peak.clone());
            thread::spawn(move || {
                for _ in 0..50 {
                    let conn = pool.get().unwrap();
                    peak.fetch_max(in_use.fetch_add(1, SeqCst) + 1, SeqCst);
                    thread::yield_now();
                    in_use.fetch_sub(1, SeqCst);
                    drop(conn);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(peak.load(SeqCst) <= 3, "at most max_size connections out at once");
    assert!(m.connects() <= 3);
    assert_eq!(metric(&pool, "acquires"), 8 * 50);
    let (open, idle, in_use, waiting) = levels(&pool);
    assert_eq!((idle, in_use, waiting), (open, 0, 0));
    assert_eq!(open, m.connects());
}

/// Checks pass, except one (once armed) that blocks until the test releases it.
struct Gate {
    armed: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
    entered: Mutex<mpsc::SyncSender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Manager for Gate {
    type Connection = usize;
    type Error = Refused;

    fn connect(&self) -> Result<usize, Refused> {
        Ok(self.opened.fetch_add(1, SeqCst) + 1)
    }

    fn check(&self, _conn: &mut usize) -> Result<(), Refused> {
        if self.armed.swap(false, SeqCst) {
            self.entered.lock().unwrap().send(()).map_err(|_| Refused)?;
            // The test's sender is dropped if it fails: then this returns too.
            self.release.lock().unwrap().recv().map_err(|_| Refused)?;
        }
        Ok(())
    }
}

// r2d2: test_issue_2_unlocked_during_is_valid
#[test]
fn a_slow_health_check_does_not_hold_the_pool_lock() {
    let (entered_tx, entered) = mpsc::sync_channel(0);
    let (release, release_rx) = mpsc::sync_channel(0);
    let armed = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let gate = Gate {
        armed: armed.clone(),
        opened: opened.clone(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    };
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .wait(WaitPolicy::Queue)
        .build(gate)
        .unwrap();
    let both: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    drop(both);
    armed.store(true, SeqCst);

    let checking = {
        let pool = pool.clone();
        thread::spawn(move || pool.get().map(|c| *c))
    };
    entered.recv_timeout(Duration::from_secs(10)).expect("the first get is checking");
    // While that check blocks, another caller gets (and checks) the other
    // connection; run it on a thread of its own so a held lock fails the test
    // instead of hanging it.
    let other = {
        let pool = pool.clone();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let status = pool.status();
            let got = pool.get().map(|c| *c);
            let _ = tx.send((status, got));
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("a get while another check blocks")
    };
    let (status, got) = other;
    assert_eq!((status.open, status.idle, status.in_use), (2, 1, 1));
    release.send(()).unwrap();
    let first = checking.join().unwrap().unwrap();
    let second = got.unwrap();
    assert_eq!(BTreeSet::from([first, second]), BTreeSet::from([1, 2]));
    assert_eq!(opened.load(SeqCst), 2, "no extra dial");
    assert_eq!(pool.status().idle, 2);
}

// r2d2: test_drop_on_broken
#[test]
fn a_broken_connection_is_dropped_on_return() {
    let m = Peer::default();
    m.broken.store(true, SeqCst);
    let pool = Pool::new(m.clone());
    drop(pool.get().unwrap());
    assert_eq!(m.closed(), 1, "the connection itself was dropped");
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(metric(&pool, "closed_broken"), 1);
    assert_eq!(metric(&pool, "releases"), 0, "closed, not put back");
}

// r2d2: test_initialization_failure
#[test]
fn a_down_server_fails_the_first_get_not_build() {
    let m = Peer::with_budget(0);
    let pool = Builder::new()
        .max_size(4)
        .min_idle(2)
        .connect_retries(0)
        .connect_timeout(Duration::from_secs(1))
        .build(m.clone())
        .expect("build does not dial");
    // Warming to min_idle fails quietly and leaks no slot.
    pool.maintain();
    assert!(m.connects() >= 1, "the pool tried to warm up");
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    match pool.get() {
        Err(GetError::Connect(Refused)) => {}
        Err(e) => panic!("expected the manager's error, got {e}"),
        Ok(c) => panic!("the server is down, yet got {}", c.id),
    }
    assert_eq!(pool.status().open, 0);
}

// r2d2: test_lazy_initialization_failure
#[test]
fn the_first_get_reports_the_managers_connect_error() {
    let m = Peer::with_budget(0);
    let pool = Builder::new()
        .connect_retries(2)
        .dial_backoff(ms(1), ms(1))
        .connect_timeout(Duration::from_secs(5))
        .build(m.clone())
        .unwrap();
    assert_eq!(m.connects(), 0, "build does not dial");
    let err = pool.get().unwrap_err();
    assert!(err.to_string().contains(REFUSAL), "{err}");
    match err {
        GetError::ConnectFailed { attempts: 3, last: Refused } => {}
        e => panic!("expected three failed attempts, got {e:?}"),
    }
    assert_eq!(m.connects(), 3);
    assert_eq!(levels(&pool), (0, 0, 0, 0));
}

// r2d2: test_get_global_timeout
#[test]
fn get_waits_at_most_the_pools_wait_timeout() {
    let m = Peer::default();
    let pool =
        Builder::new().max_size(1).wait(WaitPolicy::Timeout(ms(200))).build(m.clone()).unwrap();
    let held = pool.get().unwrap();
    let started = Instant::now();
    match pool.get() {
        Err(GetError::Pool(PoolError::TimedOut { waited })) => assert!(waited >= ms(200)),
        other => panic!("expected a timeout, got {:?}", other.map(|c| c.id)),
    }
    let took = started.elapsed();
    assert!(took >= ms(200), "gave up early: {took:?}");
    assert!(took < Duration::from_secs(10), "waited far past the limit: {took:?}");
    assert_eq!(levels(&pool), (1, 0, 1, 0));
    drop(held);
    assert_eq!(metric(&pool, "timeouts"), 1);
}

// r2d2: test_connection_customizer
#[test]
fn after_connect_prepares_new_connections_and_a_refused_one_is_closed() {
    let m = Peer::default();
    // As in r2d2's test, the connection is closed on return.
    m.broken.store(true, SeqCst);
    let closed = m.closed.clone();
    let closed_at_call = Arc::new(Mutex::new(Vec::new()));
    let seen = closed_at_call.clone();
    let pool = Builder::new()
        .dial_backoff(ms(1), ms(1))
        .after_connect(move |conn: &mut FakeConn| {
            let closed_now = closed.load(SeqCst);
            seen.lock().unwrap().push(closed_now);
            if closed_now == 0 {
                return Err(Refused);
            }
            conn.tag = 1;
            Ok(())
        })
        .build(m.clone())
        .unwrap();
    let conn = pool.get().expect("the refused dial is retried within the get");
    assert_eq!((conn.id, conn.tag), (2, 1));
    assert_eq!(*closed_at_call.lock().unwrap(), [0, 1], "the refused connection was closed");
    assert_eq!(m.closed(), 1);
    drop(conn);
    assert_eq!(m.closed(), 2, "closed on return");
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(closed_at_call.lock().unwrap().len(), 2, "the hook runs on new connections only");
}

// r2d2: test_idle_timeout
#[test]
fn idle_connections_past_max_idle_time_are_closed_by_the_janitor() {
    let m = Peer::with_budget(5);
    let pool = Builder::new()
        .max_size(5)
        .max_idle_time(ms(300))
        .janitor_interval(ms(20))
        .build(m.clone())
        .unwrap();
    fill(&pool, 5);
    let conn = pool.get().unwrap();
    eventually("the four idle connections closed", || m.closed() == 4);
    assert_eq!(levels(&pool), (1, 0, 1, 0));
    // The one in use was not touched, and its idle clock restarts on return.
    drop(conn);
    assert_eq!(m.closed(), 4);
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(metric(&pool, "closed_idle"), 4);
    assert_eq!(m.connects(), 5);
}

// r2d2: idle_timeout_partial_use
#[test]
fn a_connection_in_steady_use_outlives_max_idle_time() {
    let m = Peer::with_budget(5);
    let pool = Builder::new()
        .max_size(5)
        .max_idle_time(ms(1000))
        .janitor_interval(ms(20))
        .build(m.clone())
        .unwrap();
    fill(&pool, 5);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut used = BTreeSet::new();
    while m.closed() < 4 {
        assert!(Instant::now() < deadline, "the unused connections never idled out");
        used.insert(pool.get().expect("the connection in use is kept").id);
        thread::sleep(ms(10));
    }
    assert_eq!(used.len(), 1, "the most recently returned connection is reused: {used:?}");
    assert_eq!(m.closed(), 4);
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(m.connects(), 5);
}

// r2d2: test_max_lifetime
#[test]
fn connections_past_max_lifetime_are_closed_idle_or_on_return() {
    let lifetime = ms(500);
    let m = Peer::with_budget(5);
    let pool = Builder::new()
        .max_size(5)
        .max_lifetime(lifetime)
        .janitor_interval(ms(20))
        .connect_retries(0)
        .build(m.clone())
        .unwrap();
    fill(&pool, 5);
    let conn = pool.get().unwrap();
    eventually("the four idle connections closed", || m.closed() == 4);
    assert_eq!(levels(&pool), (1, 0, 1, 0), "the one in use is closed on return, not taken");
    // Make sure it is past its lifetime too, then return it.
    thread::sleep(lifetime.saturating_sub(conn.created_at().elapsed()));
    drop(conn);
    assert_eq!(m.closed(), 5, "closed on return");
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(metric(&pool, "closed_lifetime"), 5);
    // The server takes no more connections.
    assert!(matches!(pool.get(), Err(GetError::Connect(Refused))));
}

// r2d2: min_idle
#[test]
fn the_janitor_keeps_min_idle_ready_beside_checked_out_connections() {
    let m = Peer::default();
    let pool = Builder::new().max_size(5).min_idle(2).build(m.clone()).unwrap();
    eventually("warmed at build", || pool.status().idle == 2);
    assert_eq!(levels(&pool), (2, 2, 0, 0));
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    eventually("two idle again", || pool.status().idle == 2);
    assert_eq!(levels(&pool), (5, 2, 3, 0));
    drop(held);
    assert_eq!(levels(&pool), (5, 5, 0, 0));
    assert_eq!(m.connects(), 5);
}

// r2d2: conns_drop_on_pool_drop
#[test]
fn dropping_the_pool_closes_its_connections() {
    let m = Peer::default();
    let pool =
        Builder::new().max_size(10).max_lifetime(Duration::from_secs(10)).build(m.clone()).unwrap();
    fill(&pool, 10);
    let clone = pool.clone();
    drop(pool);
    assert_eq!(m.closed(), 0, "a clone keeps the pool alive");
    drop(clone);
    // Dropping the last handle joins the janitor, which frees every connection.
    assert_eq!(m.closed(), 10);
}

/// Records every connection event and timing.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<ConnEvent>>,
    timings: Mutex<Vec<Timing>>,
}

impl EventHook for Log {
    fn on_timing(&self, timing: Timing, _elapsed: Duration) {
        self.timings.lock().unwrap().push(timing);
    }

    fn on_connection(&self, event: ConnEvent) {
        self.events.lock().unwrap().push(event);
    }
}

// r2d2: events
#[test]
fn events_report_each_connections_life_with_its_id() {
    let log = Arc::new(Log::default());
    let m = Peer::default();
    m.broken.store(true, SeqCst);
    let created = Instant::now();
    let pool =
        Builder::new().max_size(1).events(Events::from_arc(log.clone())).build(m.clone()).unwrap();
    let start = Instant::now();
    let conn = pool.get().unwrap();
    let checkout = start.elapsed();
    assert!(pool.get_timeout(ms(20)).is_err());
    drop(conn);
    let checkin = start.elapsed();
    let release = created.elapsed();
    assert_eq!(log.events.lock().unwrap().len(), 4, "checked in and closed on return");
    let _second = pool.get().unwrap();

    let events = log.events.lock().unwrap().clone();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match e {
            ConnEvent::Connect { .. } => ("connect", e.id()),
            ConnEvent::Checkout { .. } => ("checkout", e.id()),
            ConnEvent::Checkin { .. } => ("checkin", e.id()),
            ConnEvent::Close { .. } => ("close", e.id()),
            _ => ("other", e.id()),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("connect", 1),
            ("checkout", 1),
            ("checkin", 1),
            ("close", 1),
            ("connect", 2),
            ("checkout", 2),
        ],
        "{events:?}"
    );
    for event in &events {
        match *event {
            ConnEvent::Checkout { id: 1, waited } => assert!(waited <= checkout),
            ConnEvent::Checkin { held, .. } => assert!(held <= checkin),
            ConnEvent::Close { age, reason, .. } => {
                assert!(age <= release);
                assert_eq!(reason, "broken");
            }
            _ => {}
        }
    }
    // The timed-out get is counted, and the timings arrive alongside.
    assert_eq!(metric(&pool, "timeouts"), 1);
    let timings = log.timings.lock().unwrap();
    assert_eq!(timings.iter().filter(|t| **t == Timing::Dial).count(), 2);
    assert_eq!(timings.iter().filter(|t| **t == Timing::AcquireWait).count(), 2);
}
