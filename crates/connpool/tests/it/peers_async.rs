//! The test suites of the two async pools our users come from, translated to our API:
//! bb8 (`bb8/tests/test.rs`, djc/bb8 @ 15a6c5a) and deadpool's managed pool
//! (`tests/managed*.rs`, bikeshedder/deadpool @ 375ffee). Each test names, in a
//! one-line comment, the peer test it mirrors; none of the peers' code is copied.
//! Everything runs on tokio's paused clock, so every duration below is exact.
//!
//! How the peers' vocabulary maps onto ours: bb8's `connection_timeout` and
//! deadpool's wait timeout are `WaitPolicy::Timeout` (and our `connect_timeout`
//! bounds dialling); `reaper_rate` is `janitor_interval`; `idle_timeout` is
//! `max_idle_time`; `is_valid` / `recycle` is `Manager::check` (run when a connection
//! sat unused for `health_check_after`; zero here where the peers check every
//! checkout); `has_broken` is `Manager::is_broken`; `retry_connection(false)` is
//! `connect_retries(0)`; `CustomizeConnection::on_acquire` and `post_create` are
//! `after_connect`; `pre_recycle` is `before_acquire`; `Object::take` is `detach`;
//! deadpool's `size` / `available` are `open` / `idle`; bb8's statistics are our
//! `Instrumented` counters and `Events` timings.
//!
//! Design differences, documented in the crate, that the translations assert:
//!
//! - `Builder::build` is synchronous and never dials: bb8's `build` (which waits for
//!   `min_idle` and fails with the first dial error) becomes `build` + `warm`, and the
//!   janitor warms to `min_idle` in the background right after `build`.
//! - A failed dial is retried with the shared backoff within `connect_timeout`, and
//!   the error names the last cause (`ConnectFailed` / `Connect`), not a bare
//!   time-out as bb8 reports; `connect_retries(0)` makes one attempt, reported at
//!   once. An `after_connect` refusal counts as a failed dial the same way, so
//!   deadpool's "post_create error fails this get" holds only with
//!   `connect_retries(0)`, and after it the next get first waits out the backoff.
//! - `Pool::add` does not call `is_broken` (bb8 refuses with `AddError::Broken`): an
//!   added connection is judged like an idle one before it is handed out, whichever
//!   caller it goes to (one dialling included), so a broken one is closed then.
//! - A slot being dialled counts in `open` (as `in_use`) from the moment it is
//!   reserved, and `waiting` counts only callers queued in line: deadpool reports a
//!   dialling caller as `waiting` with `size` 0.
//! - `max_size(0)` and `resize(0)` are refused (`BuildError::ZeroMaxSize`,
//!   `ResizeError::Zero`), and a closed pool refuses `resize` and keeps reporting its
//!   last `max_size` (deadpool silently ignores the resize and reports 0).
//! - `after_release` runs when a connection comes back (deadpool's `post_recycle`
//!   runs at the next checkout): same values handed out, but a refused connection
//!   is closed at once on return rather than at the next checkout.
//! - `Pool::retain` returns how many idle connections it closed (deadpool returns
//!   the removed objects and a count of the kept ones).
//! - bb8's `QueueStrategy::Lifo` is not an option: idle connections are always
//!   handed out last-in first-out, waiters always served first-come first-served.
//!
//! Peer tests not translated:
//!
//! - deadpool `rt_async_std_1`: the pool runs on tokio only.
//! - deadpool `tests/unmanaged*.rs`: the unmanaged object pool is not this pool.

use crate::common::{Ledger, TestConn, TestError, TestManager};
use poolside_connpool::{
    AddError, Builder, CloseReason, GetError, Manager, OwnedConn, Pool, PoolError, ResizeError,
    WaitPolicy,
};
use poolside_core::{Events, Snapshot, Timing};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets every runnable task (spawned gets, hook tasks, the janitor) run to its next
/// wait; on the paused clock this advances time by 1 ms.
async fn settle() {
    sleep(ms(1)).await;
}

/// One counter of the pool's metrics.
fn count<M: Manager>(pool: &Pool<M>, name: &str) -> u64 {
    Snapshot::of(pool).value(name).expect("a metric of the catalogue")
}

/// Bounds a liveness wait: generous, so a loaded machine never trips it.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// A task that checks out a connection, reports its id and holds it until released.
struct Holder {
    id: oneshot::Receiver<usize>,
    release: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Holder {
    fn spawn(pool: &Pool<TestManager>) -> Holder {
        let pool = pool.clone();
        let (id_tx, id) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let conn = pool.get().await.expect("a holder gets a connection");
            id_tx.send(conn.id).expect("the test listens");
            let _ = released.await;
            drop(conn);
        });
        Holder { id, release, task }
    }

    /// The id of the connection it holds, once it holds one.
    async fn id(&mut self) -> usize {
        within("a holder's get", &mut self.id).await.expect("the holder reports")
    }

    /// Whether it got no connection so far.
    fn still_waiting(&mut self) -> bool {
        matches!(self.id.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }

    /// Returns its connection and waits for the task to end.
    async fn release(self) {
        self.release.send(()).expect("the holder listens");
        within("a holder's return", self.task).await.unwrap();
    }
}

/// Hands out numbers: `start`, `start + step`, ... (a stand-in for stateful
/// connections that hooks and callers modify).
struct Numbers {
    next: AtomicUsize,
    step: usize,
}

impl Numbers {
    fn from(start: usize) -> Numbers {
        Numbers { next: AtomicUsize::new(start), step: 1 }
    }

    fn zeros() -> Numbers {
        Numbers { next: AtomicUsize::new(0), step: 0 }
    }
}

impl Manager for Numbers {
    type Connection = usize;
    type Error = TestError;
    async fn connect(&self) -> Result<usize, TestError> {
        Ok(self.next.fetch_add(self.step, SeqCst))
    }
    async fn check(&self, _: &mut usize) -> Result<(), TestError> {
        Ok(())
    }
}

/// A [`TestManager`] whose first `failures` dials fail.
struct FailFirst {
    inner: TestManager,
    failures: AtomicUsize,
}

impl Manager for FailFirst {
    type Connection = TestConn;
    type Error = TestError;
    async fn connect(&self) -> Result<TestConn, TestError> {
        if self.failures.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(TestError("refused once"));
        }
        self.inner.connect().await
    }
    async fn check(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.inner.check(conn).await
    }
}

/// A [`TestManager`] whose dials wait for the test's verdict: `true` connects,
/// `false` fails.
struct Remote {
    inner: TestManager,
    verdicts: tokio::sync::Mutex<mpsc::UnboundedReceiver<bool>>,
}

impl Manager for Remote {
    type Connection = TestConn;
    type Error = TestError;
    async fn connect(&self) -> Result<TestConn, TestError> {
        match self.verdicts.lock().await.recv().await {
            Some(true) => self.inner.connect().await,
            _ => Err(TestError("refused by the test")),
        }
    }
    async fn check(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.inner.check(conn).await
    }
}

/// A [`TestManager`] that judges every connection it did not open broken.
struct OwnOnly(TestManager);

impl Manager for OwnOnly {
    type Connection = TestConn;
    type Error = TestError;
    async fn connect(&self) -> Result<TestConn, TestError> {
        self.0.connect().await
    }
    async fn check(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.0.check(conn).await
    }
    fn is_broken(&self, conn: &mut TestConn) -> bool {
        !conn.is_from(&self.0.0)
    }
}

// ---------------------------------------------------------------------------
// bb8
// ---------------------------------------------------------------------------

// bb8: test_max_size_ok
#[tokio::test(start_paused = true)]
async fn max_size_connections_are_held_at_once() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(5).build(m).unwrap();
    let mut holders: Vec<Holder> = (0..5).map(|_| Holder::spawn(&pool)).collect();
    let mut ids = Vec::new();
    for h in &mut holders {
        ids.push(h.id().await);
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(ledger.connects.load(SeqCst), 5, "exactly one dial per slot");
    let s = pool.status();
    assert_eq!((s.open, s.in_use, s.idle, s.waiting), (5, 5, 0, 0));
    for h in holders {
        h.release().await;
    }
    assert_eq!(pool.status().idle, 5);
}

// bb8: test_acquire_release
#[tokio::test(start_paused = true)]
async fn a_released_connection_goes_to_the_waiting_caller() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let mut first = Holder::spawn(&pool);
    let mut second = Holder::spawn(&pool);
    let first_id = first.id().await;
    second.id().await;
    let mut third = Holder::spawn(&pool);
    settle().await;
    assert!(third.still_waiting());
    assert_eq!(pool.status().waiting, 1);
    first.release().await;
    assert_eq!(third.id().await, first_id, "the returned connection, handed on");
    assert_eq!(ledger.connects.load(SeqCst), 2);
    second.release().await;
    third.release().await;
    assert_eq!(pool.status().idle, 2);
}

// bb8: test_guard
#[tokio::test(start_paused = true)]
async fn owned_guards_released_in_tasks_serve_the_waiter() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let spawn_holding = |conn: OwnedConn<TestManager>| {
        let (release, released) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = released.await;
            drop(conn);
        });
        (release, task)
    };
    let a: OwnedConn<TestManager> = pool.get_owned().await.unwrap();
    let a_id = a.id;
    let (release_a, task_a) = spawn_holding(a);
    let (release_b, task_b) = spawn_holding(pool.get_owned().await.unwrap());
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get_owned().await.map(|c| c.id) });
    settle().await;
    assert!(!waiter.is_finished());
    assert_eq!(pool.status().waiting, 1);
    release_a.send(()).unwrap();
    task_a.await.unwrap();
    assert_eq!(within("the waiter", waiter).await.unwrap().unwrap(), a_id);
    release_b.send(()).unwrap();
    task_b.await.unwrap();
    let s = pool.status();
    assert_eq!((s.open, s.idle), (2, 2));
}

// bb8: test_is_send_sync
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_its_guards_and_its_get_future_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    send_sync(&pool);
    let fut = pool.get();
    send(&fut);
    drop(fut);
    let owned = pool.get_owned().await.unwrap();
    send(&owned);
    // Each get runs on a worker thread of its own choosing; the guard moves across.
    let p = pool.clone();
    let id = tokio::spawn(async move { p.get().await.map(|c| c.id) });
    let held_by_task = tokio::spawn(async move { owned.id });
    assert_eq!(held_by_task.await.unwrap(), 1);
    assert_eq!(within("the spawned get", id).await.unwrap().unwrap(), 1);
}

// bb8: test_drop_on_broken
#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_dropped_on_return() {
    let (m, ledger) = TestManager::new();
    ledger.broken_up_to.store(usize::MAX, SeqCst);
    let pool = Builder::new().build(m).unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(ledger.closes.load(SeqCst), 1);
    assert_eq!(count(&pool, "closed_broken"), 1);
    assert_eq!(pool.status().open, 0);
}

// bb8: test_initialization_failure
#[tokio::test(start_paused = true)]
async fn an_eager_warm_up_reports_a_failing_server() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    // Building never dials, so it cannot fail on the server; `warm` is the eager step.
    let pool = Builder::new()
        .max_size(1)
        .min_idle(1)
        .connect_timeout(Duration::from_secs(5))
        .build(m)
        .unwrap();
    let err = pool.warm(1).await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    let s = pool.status();
    assert_eq!((s.open, s.idle), (0, 0));
    assert_eq!((count(&pool, "dials"), count(&pool, "dial_errors")), (1, 1));
}

// bb8: test_lazy_initialization_failure
#[tokio::test(start_paused = true)]
async fn a_get_redials_until_the_connect_timeout_then_names_the_last_error() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool = Builder::new().connect_timeout(Duration::from_secs(1)).build(m).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    let GetError::ConnectFailed { attempts, last: TestError(cause) } = err else {
        panic!("not a retried dial failure: {err}");
    };
    assert_eq!(cause, "connection refused");
    // The backoff starts at 10 ms and doubles: at least 5 dials fit in a second.
    assert!(attempts >= 5, "{attempts} attempts");
    assert_eq!(count(&pool, "dial_errors"), u64::from(attempts));
    assert!(started.elapsed() <= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(pool.status().open, 0);
}

// bb8: test_lazy_initialization_failure_no_retry
#[tokio::test(start_paused = true)]
async fn without_retries_a_failed_dial_is_reported_at_once() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool =
        Builder::new().connect_timeout(Duration::from_secs(1)).connect_retries(0).build(m).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(count(&pool, "dials"), 1);
    assert_eq!(pool.status().open, 0);
}

// bb8: test_get_timeout
#[tokio::test(start_paused = true)]
async fn a_get_times_out_while_the_only_connection_is_held() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Timeout(ms(100))).build(m).unwrap();
    let mut holder = Holder::spawn(&pool);
    holder.id().await;
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(100) }));
    assert_eq!(started.elapsed(), ms(100));
    assert_eq!((pool.status().waiting, count(&pool, "timeouts")), (0, 1));
    holder.release().await;
    assert_eq!(pool.get().await.unwrap().id, 1);
}

// bb8: test_lots_of_waiters
#[tokio::test(start_paused = true)]
async fn twenty_five_thousand_waiters_are_all_served() {
    const WAITERS: usize = 25_000;
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(3)
        .wait(WaitPolicy::Timeout(Duration::from_secs(5)))
        .build(m)
        .unwrap();
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await?;
                // Held across a yield, so that the others queue behind it.
                tokio::task::yield_now().await;
                drop(conn);
                Ok::<(), GetError<TestError>>(())
            })
        })
        .collect();
    settle().await;
    for t in tasks {
        within("a waiter", t).await.unwrap().unwrap();
    }
    assert_eq!(ledger.connects.load(SeqCst), 3);
    assert_eq!(count(&pool, "acquires"), WAITERS as u64);
    assert_eq!(count(&pool, "exhaustions"), WAITERS as u64 - 3, "all but three waited in line");
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (3, 3, 0));
}

// bb8: test_timeout_caller
#[tokio::test(start_paused = true)]
async fn a_get_cancelled_by_its_caller_leaves_the_pool_usable() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    assert!(timeout(ms(100), pool.get()).await.is_err());
    assert_eq!(pool.status().waiting, 0, "the cancelled get left the line");
    drop(held);
    assert_eq!(pool.get().await.unwrap().id, 1);
    assert_eq!(ledger.connects.load(SeqCst), 1);
}

// bb8: test_now_invalid
#[tokio::test(start_paused = true)]
async fn idle_connections_that_went_bad_are_closed_and_the_get_reports_the_dial() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(2)
        .min_idle(2)
        .connect_timeout(Duration::from_secs(1))
        .connect_retries(0)
        .build(m)
        .unwrap();
    let mut a = Holder::spawn(&pool);
    let mut b = Holder::spawn(&pool);
    a.id().await;
    b.id().await;
    ledger.fail_check.store(true, SeqCst);
    ledger.fail_connect.store(true, SeqCst);
    a.release().await;
    b.release().await;
    // Unused for longer than `health_check_after`: both are checked on checkout.
    sleep(Duration::from_secs(3)).await;
    assert_eq!(pool.status().idle, 2);
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    assert_eq!(ledger.checks.load(SeqCst), 2);
    assert_eq!((count(&pool, "health_fails"), count(&pool, "closed_broken")), (2, 2));
    assert_eq!((pool.status().open, ledger.live()), (0, 0));
}

/// A pool of five connections, all opened by the janitor (`min_idle(5)`, swept every
/// second), configured further by `configure`, whose manager refuses every dial from
/// then on (bb8's manager allows five).
async fn five_warm_then_no_more_dials(
    configure: impl FnOnce(Builder) -> Builder,
) -> (Pool<TestManager>, Arc<Ledger>) {
    let (m, ledger) = TestManager::new();
    let builder = Builder::new().janitor_interval(Duration::from_secs(1)).max_size(5).min_idle(5);
    let pool = configure(builder).build(m).unwrap();
    settle().await;
    assert_eq!(pool.status().idle, 5);
    ledger.fail_connect.store(true, SeqCst);
    (pool, ledger)
}

// bb8: test_idle_timeout
#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_after_max_idle_time() {
    let (pool, ledger) =
        five_warm_then_no_more_dials(|b| b.max_idle_time(Duration::from_secs(1))).await;
    let held = pool.get().await.unwrap();
    sleep(Duration::from_secs(2)).await;
    assert_eq!(ledger.closes.load(SeqCst), 4, "the four idle ones, min_idle or not");
    assert_eq!(count(&pool, "closed_idle"), 4);
    drop(held);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(ledger.closes.load(SeqCst), 5);
    assert_eq!(count(&pool, "closed_idle"), 5);
    assert_eq!(pool.status().open, 0);
}

// bb8: test_max_lifetime
#[tokio::test(start_paused = true)]
async fn connections_are_closed_at_max_lifetime_idle_or_returned() {
    let (pool, ledger) =
        five_warm_then_no_more_dials(|b| b.max_lifetime(Duration::from_secs(1))).await;
    let held = pool.get().await.unwrap();
    sleep(Duration::from_secs(2)).await;
    assert_eq!(ledger.closes.load(SeqCst), 4);
    assert_eq!(count(&pool, "closed_lifetime"), 4);
    drop(held);
    assert_eq!(ledger.closes.load(SeqCst), 5, "closed on return, past its lifetime");
    assert_eq!(count(&pool, "closed_lifetime"), 5);
    assert_eq!(pool.status().open, 0);
}

// bb8: test_max_lifetime_reap_on_drop
#[tokio::test(start_paused = true)]
async fn a_connection_past_its_lifetime_is_closed_when_returned() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_lifetime(Duration::from_secs(1))
        .janitor_interval(Duration::from_secs(999))
        .build(m)
        .unwrap();
    let held = pool.get().await.unwrap();
    sleep(Duration::from_secs(2)).await;
    assert_eq!(ledger.closes.load(SeqCst), 0);
    drop(held);
    assert_eq!(ledger.closes.load(SeqCst), 1);
    assert_eq!(count(&pool, "closed_lifetime"), 1);
    assert_eq!(pool.status().open, 0);
}

// bb8: test_min_idle
#[tokio::test(start_paused = true)]
async fn min_idle_is_kept_while_connections_are_out() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(5).min_idle(2).build(m).unwrap();
    // The janitor warms in the background, right after `build`.
    settle().await;
    let s = pool.status();
    assert_eq!((s.open, s.idle), (2, 2));
    let mut holders: Vec<Holder> = (0..3).map(|_| Holder::spawn(&pool)).collect();
    for h in &mut holders {
        h.id().await;
    }
    settle().await;
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (5, 2, 3));
    for h in holders {
        h.release().await;
    }
    let s = pool.status();
    assert_eq!((s.open, s.idle), (5, 5));
}

// bb8: test_conns_drop_on_pool_drop
#[tokio::test(start_paused = true)]
async fn dropping_the_pool_closes_every_connection() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_lifetime(Duration::from_secs(10))
        .max_size(10)
        .min_idle(10)
        .build(m)
        .unwrap();
    settle().await;
    assert_eq!(ledger.live(), 10);
    drop(pool);
    within("closing on drop", async {
        while ledger.closes.load(SeqCst) < 10 {
            settle().await;
        }
    })
    .await;
    assert_eq!((ledger.connects.load(SeqCst), ledger.closes.load(SeqCst)), (10, 10));
    settle().await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);
}

// bb8: test_retry
#[tokio::test(start_paused = true)]
async fn a_connection_failing_its_check_is_replaced_by_a_fresh_dial() {
    let (m, ledger) = TestManager::new();
    ledger.fail_check.store(true, SeqCst);
    let pool = Builder::new().max_size(1).health_check_after(Duration::ZERO).build(m).unwrap();
    assert_eq!(pool.get().await.unwrap().id, 1, "fresh: not checked");
    assert_eq!(pool.get().await.unwrap().id, 2, "the check failed: replaced, not reported");
    assert_eq!(ledger.checks.load(SeqCst), 1);
    assert_eq!((count(&pool, "health_fails"), count(&pool, "closed_broken")), (1, 1));
    assert_eq!(ledger.live(), 1);
}

// bb8: test_conn_fail_once
#[tokio::test(start_paused = true)]
async fn a_dial_failing_once_is_retried_within_the_get() {
    let (inner, ledger) = TestManager::new();
    let m = FailFirst { inner, failures: AtomicUsize::new(1) };
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let started = Instant::now();
    assert_eq!(pool.get().await.unwrap().id, 1);
    // One backoff delay, drawn from the upper half of 10 ms.
    assert!((ms(5)..=ms(10)).contains(&started.elapsed()), "{:?}", started.elapsed());
    assert_eq!(pool.get().await.unwrap().id, 1);
    assert_eq!((count(&pool, "dials"), count(&pool, "dial_errors")), (2, 1));
    assert_eq!(ledger.connects.load(SeqCst), 1);
}

// bb8: test_customize_connection_acquire
#[tokio::test(start_paused = true)]
async fn after_connect_runs_once_per_new_connection_not_on_reuse() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let pool = Builder::new()
        .max_size(2)
        .manager(Numbers::zeros())
        .after_connect(move |conn, _meta| {
            *conn = seen.fetch_add(1, SeqCst) + 1;
            Box::pin(async { Ok(()) })
        })
        .build()
        .unwrap();
    {
        let first = pool.get().await.unwrap();
        assert_eq!(*first, 1);
        let second = pool.get().await.unwrap();
        assert_eq!(*second, 2);
    }
    let again = pool.get().await.unwrap();
    assert!(*again == 1 || *again == 2, "{}", *again);
    assert_eq!(calls.load(SeqCst), 2, "not run again on reuse");
}

// bb8: test_broken_connections_dont_starve_pool
#[tokio::test(start_paused = true)]
async fn broken_connections_do_not_starve_waiters() {
    let (m, ledger) = TestManager::new();
    // The first five connections report broken.
    ledger.broken_up_to.store(5, SeqCst);
    let pool = Builder::new()
        .max_size(5)
        .wait(WaitPolicy::Timeout(Duration::from_secs(10)))
        .build(m)
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|c| c.id) })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(within("a get", t).await.unwrap().unwrap());
    }
    // One at a time on this thread: five broken ones, then the sixth serves the rest.
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 6, 6, 6, 6]);
    assert_eq!(count(&pool, "closed_broken"), 5);
    assert_eq!((pool.status().open, ledger.live()), (1, 1));
}

// bb8: test_state_get_contention
#[tokio::test(start_paused = true)]
async fn acquire_wait_timings_tell_direct_gets_from_waited_ones() {
    let (m, _) = TestManager::new();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let sink = waits.clone();
    let events = Events::new(move |t: Timing, d: Duration| {
        if t == Timing::AcquireWait {
            sink.lock().unwrap().push(d);
        }
    });
    let pool = Builder::new().max_size(1).min_idle(1).events(events).build(m).unwrap();
    settle().await;
    let mut holder = Holder::spawn(&pool);
    holder.id().await;
    let p = pool.clone();
    let waited = tokio::spawn(async move { p.get().await.map(|c| c.id) });
    sleep(ms(30)).await;
    holder.release().await;
    assert_eq!(within("the waiter", waited).await.unwrap().unwrap(), 1);
    assert_eq!(*waits.lock().unwrap(), [Duration::ZERO, ms(30)]);
    assert_eq!(count(&pool, "acquires"), 2);
}

// bb8: test_statistics_connections_created
#[tokio::test(start_paused = true)]
async fn the_dial_counter_counts_connections_created() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).min_idle(1).build(m).unwrap();
    let mut holder = Holder::spawn(&pool);
    holder.id().await;
    holder.release().await;
    settle().await;
    assert_eq!(count(&pool, "dials"), 1);
    assert_eq!(ledger.connects.load(SeqCst), 1);
}

// bb8: test_can_use_added_connections
#[tokio::test(start_paused = true)]
async fn an_added_connection_serves_a_pool_that_cannot_dial() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool = Builder::new().connect_timeout(ms(50)).build(m).unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(
        matches!(err, GetError::ConnectFailed { last: TestError("connection refused"), .. }),
        "{err}"
    );
    let (elsewhere, made_elsewhere) = TestManager::new();
    let conn = elsewhere.connect().await.unwrap();
    let meta = pool.add(conn).unwrap();
    assert_eq!(meta.id, 1);
    let conn = pool.get().await.unwrap();
    assert!(conn.is_from(&made_elsewhere));
    assert_eq!(conn.meta().id, meta.id);
}

// bb8: test_add_ok_until_max_size
#[tokio::test(start_paused = true)]
async fn add_is_accepted_until_max_size() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().min_idle(1).max_size(3).build(m.clone()).unwrap();
    settle().await;
    assert_eq!(pool.status().open, 1);
    for _ in 0..2 {
        let conn = m.connect().await.unwrap();
        pool.add(conn).unwrap();
    }
    let conn = m.connect().await.unwrap();
    let refused_id = conn.id;
    match pool.add(conn) {
        Err(AddError::Full(back)) => assert_eq!(back.id, refused_id, "handed back"),
        other => panic!("not refused as full: {other:?}"),
    }
    let s = pool.status();
    assert_eq!((s.open, s.idle), (3, 3));
    assert_eq!(ledger.live(), 3, "the refused connection was dropped by the test");
}

// bb8: test_add_checks_broken_connections
#[tokio::test(start_paused = true)]
async fn an_added_broken_connection_is_closed_before_it_is_handed_out() {
    let (m, ledger) = TestManager::new();
    ledger.broken_up_to.store(1, SeqCst);
    let pool = Builder::new().max_size(3).build(m.clone()).unwrap();
    let broken = m.connect().await.unwrap();
    assert_eq!(broken.id, 1);
    pool.add(broken).unwrap();
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2, "the broken one was closed, a fresh one dialled");
    assert_eq!(count(&pool, "closed_broken"), 1);
    assert_eq!((ledger.closes.load(SeqCst), pool.status().open), (1, 1));
}

// bb8: test_add_checks_broken_connections (added for a caller that is dialling)
#[tokio::test(start_paused = true)]
async fn a_broken_connection_added_for_a_dialling_caller_is_not_handed_to_it() {
    let (m, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(100, SeqCst);
    let pool = Builder::new().max_size(1).build(OwnOnly(m)).unwrap();
    let (p, own) = (pool.clone(), ledger.clone());
    let caller = tokio::spawn(async move { p.get().await.map(|c| c.is_from(&own)) });
    settle().await;
    assert_eq!(pool.status().in_use, 1, "the caller dials on the only slot");
    let (elsewhere, made_elsewhere) = TestManager::new();
    pool.add(elsewhere.connect().await.unwrap()).unwrap();
    // The added connection ends the caller's dial and fills its slot; judged broken,
    // it is closed, and the caller dials again.
    let started = Instant::now();
    assert!(within("the caller", caller).await.unwrap().unwrap(), "handed the added one");
    assert_eq!(started.elapsed(), ms(100), "a second, full dial");
    assert_eq!(made_elsewhere.live(), 0);
    assert_eq!(count(&pool, "closed_broken"), 1);
    assert_eq!((pool.status().open, ledger.live()), (1, 1));
}

// bb8: test_reuse_on_drop
#[tokio::test(start_paused = true)]
async fn a_returned_connection_is_reused_before_a_new_one_is_dialled() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(100).build(m).unwrap();
    let first = pool.get().await.unwrap();
    assert_eq!(first.id, 1);
    drop(first);
    let second = pool.get().await.unwrap();
    assert_eq!(second.id, 1);
    let third = pool.get().await.unwrap();
    assert_eq!(third.id, 2);
    assert_eq!((pool.status().open, ledger.connects.load(SeqCst)), (2, 2));
}

// ---------------------------------------------------------------------------
// deadpool (managed)
// ---------------------------------------------------------------------------

// deadpool: managed::basic
#[tokio::test(start_paused = true)]
async fn status_follows_gets_and_returns() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(16).build(m).unwrap();
    let levels = |pool: &Pool<TestManager>| {
        let s = pool.status();
        (s.open, s.idle, s.in_use, s.waiting)
    };
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    let a = pool.get().await.unwrap();
    assert_eq!(levels(&pool), (1, 0, 1, 0));
    let b = pool.get().await.unwrap();
    assert_eq!(levels(&pool), (2, 0, 2, 0));
    let c = pool.get().await.unwrap();
    assert_eq!(levels(&pool), (3, 0, 3, 0));
    drop(a);
    assert_eq!(levels(&pool), (3, 1, 2, 0));
    drop(b);
    assert_eq!(levels(&pool), (3, 2, 1, 0));
    drop(c);
    assert_eq!(levels(&pool), (3, 3, 0, 0));
}

// deadpool: managed::closing
#[tokio::test(start_paused = true)]
async fn close_fails_waiters_and_later_gets_and_closes_returns() {
    let (m, ledger) = TestManager::new();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let log = reasons.clone();
    let pool = Builder::new()
        .max_size(1)
        .on_close(move |_meta, reason| log.lock().unwrap().push(reason))
        .build(m)
        .unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(|c| c.id) });
    settle().await;
    assert_eq!((pool.status().idle, pool.status().waiting), (0, 1));
    pool.close();
    settle().await;
    assert_eq!((pool.status().idle, pool.status().waiting), (0, 0));
    assert!(within("the waiter", waiter).await.unwrap().unwrap_err().is_closed());
    assert!(pool.get().await.unwrap_err().is_closed());
    assert!(pool.get_timeout(Duration::ZERO).await.unwrap_err().is_closed());
    assert!(pool.try_get().await.unwrap_err().is_closed());
    drop(held);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (0, 0, 0));
    assert_eq!(ledger.live(), 0);
    assert_eq!(*reasons.lock().unwrap(), [CloseReason::PoolClosed]);
}

// deadpool: managed::concurrent
#[tokio::test(start_paused = true)]
async fn concurrent_users_share_max_size_connections() {
    let pool = Builder::new().max_size(3).build(Numbers::zeros()).unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await.unwrap();
                *conn += 1;
                sleep(ms(1)).await;
            })
        })
        .collect();
    for t in tasks {
        within("a user", t).await.unwrap();
    }
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (3, 3, 0));
    assert_eq!(count(&pool, "exhaustions"), 97, "all but three waited in line");
    let all = [pool.get().await.unwrap(), pool.get().await.unwrap(), pool.get().await.unwrap()];
    assert_eq!(all.iter().map(|c| **c).sum::<usize>(), 100, "every increment kept");
}

// deadpool: managed::object_take
#[tokio::test(start_paused = true)]
async fn detached_connections_leave_the_pool() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_eq!((pool.status().open, pool.status().in_use), (2, 2));
    let raw_a = a.detach();
    assert_eq!((pool.status().open, pool.status().in_use), (1, 1));
    let raw_b = b.detach();
    assert_eq!((pool.status().open, pool.status().idle), (0, 0));
    let c = pool.get().await.unwrap();
    let d = pool.get().await.unwrap();
    assert_eq!((c.id, d.id), (3, 4), "new connections for the detached slots");
    assert_eq!((pool.status().open, pool.status().in_use), (2, 2));
    drop((c, d));
    assert_eq!((pool.status().open, pool.status().idle), (2, 2));
    assert_eq!(ledger.live(), 4, "the detached ones are the caller's now");
    drop((raw_a, raw_b));
    assert_eq!(ledger.live(), 2);
}

// deadpool: managed::retain
#[tokio::test(start_paused = true)]
async fn retain_closes_the_idle_connections_it_rejects() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(4).build(m).unwrap();
    {
        let _a = pool.get().await.unwrap();
        let _b = pool.get().await.unwrap();
        sleep(ms(5)).await;
        let _c = pool.get().await.unwrap();
        sleep(ms(5)).await;
    }
    assert_eq!(pool.status().open, 3);
    let young = |_: &TestConn, meta: &poolside_connpool::ConnMeta| meta.age() < ms(10);
    assert_eq!(pool.retain(young).unwrap(), 2, "the two 10 ms old ones");
    assert_eq!((pool.status().open, ledger.live()), (1, 1));
    sleep(ms(5)).await;
    assert_eq!(pool.retain(young).unwrap(), 1);
    assert_eq!((pool.status().open, ledger.live()), (0, 0));
}

// deadpool: managed::retain_fnmut
#[tokio::test(start_paused = true)]
async fn retain_takes_a_stateful_predicate() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(4).build(m).unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await.unwrap());
    }
    drop(held);
    assert_eq!(pool.status().idle, 4);
    let mut seen = 0;
    let closed = pool
        .retain(|_, _| {
            seen += 1;
            false
        })
        .unwrap();
    assert_eq!((closed, seen), (4, 4));
    assert_eq!(pool.status().open, 0);
}

// deadpool: managed_config::from_env
#[cfg(feature = "serde")]
#[tokio::test(start_paused = true)]
async fn settings_read_from_environment_variables_build_a_pool() {
    use poolside_connpool::config::Config;
    // `from_vars` is `from_env` over given pairs: setting the process environment
    // is unsound while other test threads run.
    let vars = [("POOL__MAX_SIZE", "42"), ("POOL__WAIT", "1s"), ("POOL__CONNECT_TIMEOUT", "2s")];
    let cfg = Config::from_vars("POOL", vars).unwrap();
    assert_eq!(cfg.max_size, Some(42));
    assert_eq!(cfg.wait, Some(WaitPolicy::Timeout(Duration::from_secs(1))));
    assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(2)));
    let (m, _) = TestManager::new();
    let pool = Builder::from_config(&cfg).max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: Duration::from_secs(1) }));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    drop(held);
    let pool = Builder::from_config(&cfg).build(TestManager::new().0).unwrap();
    assert_eq!(pool.max_size(), 42);
}

// deadpool: managed_deadlock::pool_drained
#[tokio::test(start_paused = true)]
async fn a_failed_dial_passes_its_slot_to_the_next_waiter() {
    let (inner, ledger) = TestManager::new();
    let (verdict, verdicts) = mpsc::unbounded_channel();
    let m = Remote { inner, verdicts: tokio::sync::Mutex::new(verdicts) };
    let pool = Builder::new().max_size(1).connect_retries(0).build(m).unwrap();
    let spawn_get = |pool: &Pool<Remote>| {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|c| c.id) })
    };
    let first = spawn_get(&pool);
    settle().await;
    // Dialling on a reserved slot: counted open and in use, not waiting.
    let s = pool.status();
    assert_eq!((s.open, s.in_use, s.waiting), (1, 1, 0));
    let second = spawn_get(&pool);
    settle().await;
    let s = pool.status();
    assert_eq!((s.open, s.in_use, s.waiting), (1, 1, 1));
    verdict.send(false).unwrap();
    let err = within("the first get", first).await.unwrap().unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("refused by the test"))), "{err}");
    // The slot went straight to the second caller, which now dials on it.
    let s = pool.status();
    assert_eq!((s.open, s.in_use, s.waiting), (1, 1, 0));
    verdict.send(true).unwrap();
    assert_eq!(within("the second get", second).await.unwrap().unwrap(), 1);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (1, 1, 0));
    assert_eq!(ledger.connects.load(SeqCst), 1);
}

// deadpool: managed_hooks::post_create_ok
#[tokio::test(start_paused = true)]
async fn after_connect_prepares_the_new_connection() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(42))
        .after_connect(|conn, _meta| {
            *conn += 1;
            Box::pin(async { Ok(()) })
        })
        .build()
        .unwrap();
    assert_eq!(*pool.get().await.unwrap(), 43);
}

// deadpool: managed_hooks::post_create_ok_async
#[tokio::test(start_paused = true)]
async fn an_after_connect_hook_that_awaits_prepares_the_new_connection() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(42))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sleep(ms(3)).await;
                *conn += 1;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(*pool.get().await.unwrap(), 43);
    assert_eq!(started.elapsed(), ms(3), "the get waited for the hook");
}

/// `after_connect` refusing odd numbers.
fn refusing_odd(start: usize, retries: Option<u32>) -> Pool<Numbers> {
    let mut builder = Builder::new().max_size(3);
    if let Some(retries) = retries {
        builder = builder.connect_retries(retries);
    }
    builder
        .manager(Numbers::from(start))
        .after_connect(|conn, _meta| {
            let odd = *conn % 2 == 1;
            Box::pin(async move { if odd { Err("odd connection".into()) } else { Ok(()) } })
        })
        .build()
        .unwrap()
}

// deadpool: managed_hooks::post_create_err_abort
#[tokio::test(start_paused = true)]
async fn an_after_connect_refusal_fails_the_get_without_retries() {
    let pool = refusing_odd(0, Some(0));
    let refused = |err: GetError<TestError>| match err {
        GetError::Hook { during, error } => {
            assert_eq!((during, error.to_string().as_str()), ("after_connect", "odd connection"));
        }
        other => panic!("not a hook refusal: {other}"),
    };
    let a = pool.get().await.unwrap();
    assert_eq!(*a, 0);
    refused(pool.get().await.unwrap_err());
    let b = pool.get().await.unwrap();
    assert_eq!(*b, 2);
    refused(pool.get().await.unwrap_err());
    let c = pool.get().await.unwrap();
    assert_eq!(*c, 4);
    assert_eq!(pool.status().open, 3, "every refused connection was closed");
    assert_eq!((count(&pool, "dials"), count(&pool, "dial_errors")), (5, 2));
}

// deadpool: managed_hooks::post_create_err_abort (our default: the refusal is retried)
#[tokio::test(start_paused = true)]
async fn an_after_connect_refusal_is_redialled_by_default() {
    let pool = refusing_odd(1, None);
    let started = Instant::now();
    assert_eq!(*pool.get().await.unwrap(), 2, "1 refused, 2 dialled after one backoff");
    assert!((ms(5)..=ms(10)).contains(&started.elapsed()), "{:?}", started.elapsed());
    assert_eq!((count(&pool, "dials"), count(&pool, "dial_errors")), (2, 1));
    assert_eq!(pool.status().open, 1);
}

// deadpool: managed_hooks::pre_recycle_ok
#[tokio::test(start_paused = true)]
async fn before_acquire_sees_every_reuse() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(42))
        .before_acquire(|conn, _meta| {
            *conn += 1;
            Box::pin(async { Ok(true) })
        })
        .build()
        .unwrap();
    let handed: Vec<usize> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(*pool.get().await.unwrap());
        }
        out
    };
    assert_eq!(handed, [42, 43, 44, 45], "not run on the fresh connection");
}

// deadpool: managed_hooks::pre_recycle_err_continue
#[tokio::test(start_paused = true)]
async fn a_before_acquire_refusal_replaces_the_connection_silently() {
    // deadpool's `recycle_count > 0` is "checked out more than once before".
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(0))
        .before_acquire(|_conn, meta| {
            let worn = meta.checkouts > 1;
            Box::pin(async move { if worn { Err("worn out".into()) } else { Ok(true) } })
        })
        .build()
        .unwrap();
    for expected in [0, 0, 1, 1, 2, 2] {
        assert_eq!(*pool.get().await.unwrap(), expected);
        let s = pool.status();
        assert_eq!((s.open, s.idle), (1, 1));
    }
}

// deadpool: managed_hooks::post_recycle_ok
#[tokio::test(start_paused = true)]
async fn after_release_resets_every_returned_connection() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(42))
        .after_release(|conn, _meta| {
            *conn += 1;
            Box::pin(async { Ok(true) })
        })
        .build()
        .unwrap();
    let mut handed = Vec::new();
    for _ in 0..4 {
        handed.push(*pool.get().await.unwrap());
    }
    assert_eq!(handed, [42, 43, 44, 45]);
}

// deadpool: managed_hooks::post_recycle_err_continue
#[tokio::test(start_paused = true)]
async fn an_after_release_refusal_closes_the_connection_on_return() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Numbers::from(0))
        .after_release(|_conn, meta| {
            let worn = meta.checkouts > 1;
            Box::pin(async move { if worn { Err("worn out".into()) } else { Ok(true) } })
        })
        .build()
        .unwrap();
    for (expected, kept) in [(0, true), (0, false), (1, true), (1, false), (2, true), (2, false)] {
        assert_eq!(*pool.get().await.unwrap(), expected);
        // The hook runs in a task after the return.
        settle().await;
        let s = pool.status();
        let open = usize::from(kept);
        assert_eq!((s.open, s.idle), (open, open), "after handing out {expected}");
    }
}

// deadpool: managed_resize::test_grow_reuse_existing
#[tokio::test(start_paused = true)]
async fn shrinking_below_the_connections_out_closes_the_surplus_on_return() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_eq!(pool.resize(0), Err(ResizeError::Zero));
    assert_eq!((pool.status().open, pool.status().max_size), (2, 2), "unchanged");
    pool.resize(1).unwrap();
    assert_eq!((pool.status().open, pool.status().max_size), (2, 1));
    drop(a);
    assert_eq!((pool.status().open, pool.status().idle), (1, 0));
    drop(b);
    assert_eq!((pool.status().open, pool.status().idle), (1, 1));
    assert_eq!(ledger.live(), 1);
}

// deadpool: managed_resize::resize_pool_shrink
#[tokio::test(start_paused = true)]
async fn shrinking_closes_returned_connections_until_within_the_new_size() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    pool.resize(1).unwrap();
    assert_eq!((pool.status().max_size, pool.status().open), (1, 2));
    drop(b);
    assert_eq!((pool.status().max_size, pool.status().open), (1, 1));
    drop(a);
    assert_eq!((pool.status().max_size, pool.status().open), (1, 1));
    assert_eq!(pool.status().idle, 1);
    assert_eq!(ledger.live(), 1);
}

// deadpool: managed_resize::resize_pool_grow
#[tokio::test(start_paused = true)]
async fn growing_makes_room_for_another_connection() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::FailFast).build(m).unwrap();
    let a = pool.get().await.unwrap();
    assert_eq!(pool.get().await.unwrap_err().pool_error(), Some(PoolError::Exhausted));
    pool.resize(2).unwrap();
    assert_eq!((pool.status().max_size, pool.status().open), (2, 1));
    let b = pool.get().await.unwrap();
    assert_eq!((pool.status().max_size, pool.status().open), (2, 2));
    drop(b);
    drop(a);
    let s = pool.status();
    assert_eq!((s.max_size, s.open, s.idle), (2, 2, 2));
}

// deadpool: managed_resize::resize_pool_shrink_grow
#[tokio::test(start_paused = true)]
async fn shrinking_then_growing_keeps_the_connection_out() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let a = pool.get().await.unwrap();
    pool.resize(2).unwrap();
    assert_eq!(pool.resize(0), Err(ResizeError::Zero));
    pool.resize(1).unwrap();
    pool.resize(5).unwrap();
    assert_eq!((pool.status().max_size, pool.status().open), (5, 1));
    drop(a);
    let s = pool.status();
    assert_eq!((s.max_size, s.open, s.idle), (5, 1, 1));
    assert_eq!(ledger.closes.load(SeqCst), 0);
}

// deadpool: managed_resize::resize_pool_grow_concurrent
#[tokio::test(start_paused = true)]
async fn growing_hands_the_new_slot_to_the_waiter() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(|c| c.id) });
    settle().await;
    let s = pool.status();
    assert_eq!((s.max_size, s.open, s.idle, s.waiting), (1, 1, 0, 1));
    pool.resize(2).unwrap();
    // The slot is the waiter's at once (reserved: open, in use), before it dials.
    let s = pool.status();
    assert_eq!((s.max_size, s.open, s.in_use, s.waiting), (2, 2, 2, 0));
    assert_eq!(within("the waiter", waiter).await.unwrap().unwrap(), 2);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (2, 1, 0), "its connection came back");
    drop(held);
    assert_eq!((pool.status().open, pool.status().idle), (2, 2));
}

// deadpool: managed_resize::close_resize
#[tokio::test(start_paused = true)]
async fn a_closed_pool_refuses_to_resize() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    pool.close();
    assert_eq!(pool.resize(16), Err(ResizeError::Closed));
    let s = pool.status();
    assert_eq!((s.open, s.max_size), (0, 1));
}

// deadpool: managed_timeout::rt_tokio_1
#[tokio::test(start_paused = true)]
async fn a_dial_that_never_completes_times_out() {
    let (m, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(u64::from(u32::MAX), SeqCst);
    let pool = Builder::new().max_size(16).connect_timeout(ms(10)).build(m.clone()).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::ConnectTimeout { after } if after == ms(10)), "{err}");
    assert_eq!(started.elapsed(), ms(10));
    assert_eq!(pool.status().open, 0);
    // A caller's own, shorter wait ends it first.
    let pool = Builder::new()
        .max_size(16)
        .connect_timeout(ms(10))
        .wait(WaitPolicy::Timeout(ms(4)))
        .build(m)
        .unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(4) }));
    assert_eq!(started.elapsed(), ms(4));
    assert_eq!(pool.status().open, 0);
}

// deadpool: managed_unreliable_manager::create
#[tokio::test(start_paused = true)]
async fn a_server_refusing_every_dial_fails_each_get_promptly() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool = Builder::new().max_size(16).connect_retries(0).build(m).unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    assert_eq!((pool.status().open, pool.status().idle), (0, 0));
    // The next get waits out the backoff (its first delay), then dials once.
    let started = Instant::now();
    let err = within("the second get", pool.get()).await.unwrap_err();
    assert!(matches!(err, GetError::Connect(TestError("connection refused"))), "{err}");
    assert!(started.elapsed() <= ms(10), "{:?}", started.elapsed());
    assert_eq!((pool.status().open, pool.status().idle), (0, 0));
    assert_eq!(count(&pool, "dial_errors"), 2);
}

// deadpool: managed_unreliable_manager::recycle
#[tokio::test(start_paused = true)]
async fn idle_connections_failing_their_check_are_closed_and_replaced() {
    let (m, ledger) = TestManager::new();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let log = reasons.clone();
    let pool = Builder::new()
        .max_size(16)
        .health_check_after(Duration::ZERO)
        .on_close(move |meta, reason| log.lock().unwrap().push((meta.id, reason)))
        .build(m)
        .unwrap();
    {
        let _a = pool.get().await.unwrap();
        let _b = pool.get().await.unwrap();
    }
    assert_eq!((pool.status().open, pool.status().idle), (2, 2));
    ledger.fail_check.store(true, SeqCst);
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.id, 3);
        let s = pool.status();
        assert_eq!((s.open, s.idle, s.in_use), (1, 0, 1));
        let mut closed = reasons.lock().unwrap().clone();
        closed.sort_unstable_by_key(|(id, _)| *id);
        assert_eq!(closed, [(1, CloseReason::Broken), (2, CloseReason::Broken)]);
    }
    assert_eq!((pool.status().open, pool.status().idle), (1, 1));
    assert_eq!(count(&pool, "health_fails"), 2);
    assert_eq!(ledger.live(), 1);
}

/// How one step of a connection's life behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Pass,
    Fail,
    Slow,
    Hang,
}

impl Gate {
    const ALL: [Gate; 4] = [Gate::Pass, Gate::Fail, Gate::Slow, Gate::Hang];

    async fn open(self) -> Result<(), TestError> {
        match self {
            Gate::Pass => Ok(()),
            Gate::Fail => Err(TestError("gate failed")),
            Gate::Slow => {
                sleep(ms(1)).await;
                Ok(())
            }
            Gate::Hang => std::future::pending().await,
        }
    }
}

/// One gate per step: dial, check, and the three connection hooks.
#[derive(Debug, Clone, Copy)]
struct Gates {
    connect: Gate,
    check: Gate,
    after_connect: Gate,
    before_acquire: Gate,
    after_release: Gate,
}

struct Gated {
    inner: TestManager,
    gates: Gates,
}

impl Manager for Gated {
    type Connection = TestConn;
    type Error = TestError;
    async fn connect(&self) -> Result<TestConn, TestError> {
        self.gates.connect.open().await?;
        self.inner.connect().await
    }
    async fn check(&self, conn: &mut TestConn) -> Result<(), TestError> {
        self.gates.check.open().await?;
        self.inner.check(conn).await
    }
}

fn gated_pool(gates: Gates) -> (Pool<Gated>, Arc<crate::common::Ledger>) {
    let (inner, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        // Bounds every hanging dial, check and hook.
        .connect_timeout(ms(20))
        .manager(Gated { inner, gates })
        .after_connect(move |_conn, _meta| {
            Box::pin(async move { gates.after_connect.open().await.map_err(Into::into) })
        })
        .before_acquire(move |_conn, _meta| {
            Box::pin(
                async move { gates.before_acquire.open().await.map(|()| true).map_err(Into::into) },
            )
        })
        .after_release(move |_conn, _meta| {
            Box::pin(
                async move { gates.after_release.open().await.map(|()| true).map_err(Into::into) },
            )
        })
        .build()
        .unwrap();
    (pool, ledger)
}

// deadpool: managed_cancellation::test_cancellations
#[tokio::test(start_paused = true)]
async fn cancelled_gets_keep_counts_under_every_mix_of_failing_slow_and_hanging_steps() {
    let mut mixes = 0;
    for connect in Gate::ALL {
        for check in Gate::ALL {
            for after_connect in Gate::ALL {
                for before_acquire in Gate::ALL {
                    for after_release in Gate::ALL {
                        let gates =
                            Gates { connect, check, after_connect, before_acquire, after_release };
                        run_cancellation_mix(gates).await;
                        mixes += 1;
                    }
                }
            }
        }
    }
    assert_eq!(mixes, 1024);
}

/// Eight callers whose gets are cut short after 0 to 7 ms, holding what they get
/// as long, for 10 ms; then every caller is aborted. The levels must stay
/// consistent throughout, and once everything in flight has timed out the pool must
/// hold exactly its idle connections.
async fn run_cancellation_mix(gates: Gates) {
    let (pool, ledger) = gated_pool(gates);
    let callers: Vec<_> = (0..8u64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                loop {
                    let _conn = timeout(ms(i), pool.get()).await;
                    sleep(ms(i.max(1))).await;
                }
            })
        })
        .collect();
    for _ in 0..10 {
        settle().await;
        let s = pool.status();
        assert!(s.open <= s.max_size && s.idle + s.in_use == s.open, "{s:?} {gates:?}");
    }
    for c in &callers {
        c.abort();
    }
    for c in callers {
        assert!(c.await.unwrap_err().is_cancelled());
    }
    // Past the connect timeout: every hanging hook task and check has given up.
    sleep(ms(50)).await;
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?} {gates:?}");
    assert!(s.open <= s.max_size, "{s:?} {gates:?}");
    assert_eq!(ledger.live(), s.idle, "{gates:?}");
}
