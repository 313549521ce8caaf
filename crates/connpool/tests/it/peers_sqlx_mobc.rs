//! The pool tests of sqlx and mobc translated to our API: sqlx's pool
//! (`tests/any/pool.rs`, the pool tests of `tests/postgres/postgres.rs` and the unit
//! test of `sqlx-core/src/pool/mod.rs`, launchbadge/sqlx @ 9d6bf66) and mobc
//! (`tests/mobc.rs`, importcjj/mobc @ 50258dc). Each test names, in a one-line
//! comment, the peer test it mirrors; none of the peers' code is copied. Everything
//! runs on tokio's paused clock, so every duration below is exact. Tests that bb8's
//! and deadpool's suites already cover are translated once, in `peers_async.rs`, and
//! cross-referenced below instead.
//!
//! sqlx's tests run SQL on PostgreSQL; here a [`Sessions`] manager models what they
//! observe of a session (an open or aborted transaction, sqlx's `conn_stats` table),
//! and the hooks read and change that state as the SQL would.
//!
//! How the peers' vocabulary maps onto ours: sqlx's `max_connections` and mobc's
//! `max_open` are `max_size`; `acquire_timeout` and mobc's `get_timeout` are
//! `WaitPolicy::Timeout` (or `get_timeout(d)` per call); sqlx's `acquire` is `get`,
//! `size()` / `num_idle()` are `status().open` / `status().idle`, and mobc's
//! `state().connections` / `idle` / `in_use` the same; sqlx's `PoolConnectionMetadata`
//! (`age`, `idle_for`) is `ConnMeta::age()` / `idle_for()`; `test_before_acquire`
//! and mobc's `test_on_check_out` are `Manager::check` with `health_check_after`
//! (zero: every checkout); mobc's `health_check_interval` is `health_check_after`,
//! `validate` is `Manager::is_broken`, `max_idle_lifetime` and sqlx's `idle_timeout`
//! are `max_idle_time`; `set_max_open_conns` is `resize`; `into_inner` and sqlx's
//! `detach` are `detach`; sqlx's `close().await` is `close_graceful(deadline)`;
//! `is_brand_new()` is `meta().checkouts == 1`.
//!
//! Design differences, documented in the crate, that the translations assert:
//!
//! - `close()` is synchronous: it fails waiters and later gets with
//!   `PoolError::Closed` and closes idle connections at once; connections still out
//!   are closed as they come back. sqlx's `close().await`, which waits for them, is
//!   `close_graceful(deadline)`, bounded by its deadline (`CloseTimeout` names how
//!   many are still out).
//! - `min_idle` keeps that many connections *idle* (sqlx's `min_connections` keeps
//!   that many *open*, in use or not): with every idle connection checked out, the
//!   janitor opens more, up to `max_size`.
//! - A guard dropped while its thread panics closes its connection (reason
//!   `Broken`) rather than returning it: the panic may have left it mid-statement.
//!   Its slot goes back at once, to a waiter first. sqlx returns it to the pool.
//! - `health_check_after` counts from the connection's last checkout, not from its
//!   last health check (mobc's `health_check_interval`): a connection in steady use
//!   is never pinged, its users see whether it works.
//! - `max_idle_time` counts from the connection's last return: a connection reused
//!   since is not idle (mobc closes the connections of `test_max_idle_lifetime`
//!   while they were returned 800 ms before, under a 1 s limit).
//! - The janitor keeps enforcing `max_lifetime` whatever the pool's size (mobc's
//!   cleaner stops once the pool empties, so its `test_max_lifetime_lazy` keeps an
//!   expired idle connection open).
//! - There is no cap on idle connections (mobc's `max_idle`, `set_max_idle_conns`):
//!   connections returned stay idle up to `max_size`; a surplus idles out through
//!   `max_idle_time`, or is dropped with `resize` / `retain`.
//! - `max_size(0)` is refused (`BuildError::ZeroMaxSize`), never "unlimited" (mobc's
//!   `max_open(0)`), and `min_idle` above `max_size` is refused
//!   (`BuildError::MinIdleAboveMaxSize`) where mobc clamps `max_idle`.
//! - A return is synchronous unless `after_release` is set (then the hook runs in a
//!   task and the connection counts as in use until it answers): sequential gets
//!   reuse one connection and `after_connect` runs once, where sqlx, which always
//!   releases in a task, allows it to run again.
//!
//! Bugs these translations found, fixed in the pool (each test failed before):
//!
//! - `before_acquire` was bounded by `connect_timeout` only, so a hook that hung
//!   outlived the caller's wait limit (sqlx's `acquire_timeout` covers the whole
//!   acquire): `a_before_acquire_hook_that_hangs_is_cut_off_by_the_callers_wait`.
//! - A get that was health-checking or running `before_acquire` on an idle
//!   connection when the pool closed still handed it out (one dialling did not):
//!   `a_get_still_preparing_its_connection_when_the_pool_closes_fails_with_closed`.
//! - Without lifetimes set, a return did not stamp `last_used`, so `idle_for()` in
//!   `after_release` was the time held and in `before_acquire` included it (sqlx's
//!   metadata: zero, and the time idle):
//!   `hooks_keep_retire_and_replace_connections_in_the_peer_pattern`.
//!
//! Peer tests with no counterpart here:
//!
//! - mobc `test_max_open_ok`, `test_acquire_release`, `test_is_send_sync`,
//!   `test_drop_on_checkin`, `test_conns_drop_on_pool_drop` and sqlx
//!   `assert_pool_traits` (`sqlx-core/src/pool/mod.rs`): the same assertions as bb8's
//!   `test_max_size_ok`, `test_acquire_release`, `test_is_send_sync`,
//!   `test_drop_on_broken` and `test_conns_drop_on_pool_drop`, translated in
//!   `peers_async.rs` (a `Pool` is `Clone` by construction).
//! - mobc `test_idle_timeout_partial_use`: its assertions are commented out upstream;
//!   it asserts nothing.
//! - mobc `test_set_conn_max_lifetime`: limits are set when the pool is built; the
//!   runtime counterpart is `retain(|_, meta| meta.age() < limit)`, translated from
//!   deadpool's `retain` in `peers_async.rs`.
//! - mobc `test_set_max_idle_conns`, `test_min_idle`,
//!   `test_max_idle_limited_max_open_unlimited`: they test the idle cap and the
//!   unlimited size, which do not exist here (see above).
//! - sqlx `it_can_fail_and_recover_with_pool`, `it_executes_with_pool`: a failed query
//!   is the connection's business, not the pool's; the PostgreSQL adapter's tests
//!   (`tests/postgres/`) cover it against a server.

use crate::common::{TestConn, TestError, TestManager, approve_when_notified};
use poolside_connpool::{
    BuildError, Builder, CloseReason, ConnMeta, GetError, Manager, Pool, PoolError, WaitPolicy,
};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Lets every runnable task (spawned gets, hook tasks, the janitor) run to its next
/// wait; on the paused clock this advances time by 1 ms.
async fn settle() {
    sleep(ms(1)).await;
}

/// Bounds a liveness wait: generous, so a loaded machine never trips it.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    timeout(secs(60), fut).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// `(open, idle, in_use, waiting)`.
fn levels<M: Manager>(pool: &Pool<M>) -> (usize, usize, usize, usize) {
    let s = pool.status();
    (s.open, s.idle, s.in_use, s.waiting)
}

/// Every close the pool reported: connection id and reason.
type CloseLog = Arc<Mutex<Vec<(u64, CloseReason)>>>;

/// Records every close the pool reports.
fn close_log() -> (CloseLog, impl Fn(ConnMeta, CloseReason)) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = log.clone();
    (log, move |meta: ConnMeta, reason| writer.lock().unwrap().push((meta.id, reason)))
}

/// Polls `fut` once: `Pending` leaves it queued (or dialling) where it stands.
async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

// ---------------------------------------------------------------------------
// A model of the PostgreSQL session state sqlx's tests observe
// ---------------------------------------------------------------------------

/// sqlx's `conn_stats` row: which connection, and how often each hook ran on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnStats {
    id: u64,
    before_acquire_calls: u32,
    after_release_calls: u32,
}

/// How many sessions a [`Sessions`] manager opened, and how many were closed.
#[derive(Debug, Default)]
struct SessionCounts {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

/// One modelled session: its transaction (open, or aborted by a failed statement)
/// and the `conn_stats` temporary table `after_connect` creates in it.
#[derive(Debug)]
struct Session {
    stats: Option<ConnStats>,
    in_transaction: bool,
    aborted: bool,
    counts: Arc<SessionCounts>,
}

impl Session {
    fn begin(&mut self) {
        self.in_transaction = true;
    }

    /// A statement that fails ("blah blah"): inside a transaction it aborts the
    /// transaction, as PostgreSQL does, until `ROLLBACK`.
    fn execute_invalid(&mut self) -> Result<(), &'static str> {
        if self.in_transaction {
            self.aborted = true;
        }
        Err("syntax error at or near \"blah\"")
    }

    fn rollback(&mut self) {
        self.in_transaction = false;
        self.aborted = false;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.counts.closed.fetch_add(1, SeqCst);
    }
}

/// Opens [`Session`]s. With `transaction_breaks`, `is_broken` judges a session
/// left inside a transaction broken (so the pool closes it rather than reuse it).
#[derive(Default)]
struct Sessions {
    counts: Arc<SessionCounts>,
    transaction_breaks: bool,
}

impl Manager for Sessions {
    type Connection = Session;
    type Error = TestError;
    async fn connect(&self) -> Result<Session, TestError> {
        self.counts.opened.fetch_add(1, SeqCst);
        Ok(Session {
            stats: None,
            in_transaction: false,
            aborted: false,
            counts: self.counts.clone(),
        })
    }
    async fn check(&self, _: &mut Session) -> Result<(), TestError> {
        Ok(())
    }
    fn is_broken(&self, conn: &mut Session) -> bool {
        self.transaction_breaks && conn.in_transaction
    }
}

// ---------------------------------------------------------------------------
// sqlx
// ---------------------------------------------------------------------------

// sqlx: pool_should_invoke_after_connect
#[tokio::test(start_paused = true)]
async fn after_connect_runs_once_for_sequential_gets_even_with_an_async_release() {
    // sqlx allows more than one call ("connections are released asynchronously"):
    // here a plain return is synchronous, and with `after_release` set a pool of
    // one waits for the hook to hand the connection back rather than dial again.
    for (max_size, with_release_hook) in [(10, false), (1, true)] {
        let sessions = Sessions::default();
        let counts = sessions.counts.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let builder = Builder::new().max_size(max_size).manager(sessions).after_connect(
            move |_conn, _meta| {
                counter.fetch_add(1, SeqCst);
                Box::pin(async { Ok(()) })
            },
        );
        let builder = if with_release_hook {
            builder.after_release(|_conn, _meta| Box::pin(async { Ok(true) }))
        } else {
            builder
        };
        let pool = builder.build().unwrap();
        for _ in 0..4 {
            let _ = pool.get().await.unwrap();
        }
        assert_eq!(calls.load(SeqCst), 1, "after_release set: {with_release_hook}");
        assert_eq!(counts.opened.load(SeqCst), 1);
    }
}

// sqlx: pool_should_be_returned_failed_transactions
#[tokio::test(start_paused = true)]
async fn connections_dropped_inside_a_failed_transaction_come_back_rolled_back() {
    // sqlx rolls back a dropped transaction before the connection is reused: here
    // that is `after_release`'s job.
    let sessions = Sessions::default();
    let counts = sessions.counts.clone();
    let pool = Builder::new()
        .max_size(2)
        .wait(WaitPolicy::Timeout(secs(3)))
        .manager(sessions)
        .after_release(|conn, _meta| {
            if conn.in_transaction {
                conn.rollback();
            }
            Box::pin(async { Ok(true) })
        })
        .build()
        .unwrap();
    for round in 0..3 {
        let started = Instant::now();
        let mut tx = pool.get().await.unwrap();
        assert!(started.elapsed() < secs(3), "round {round} waited out the timeout");
        assert!(!tx.in_transaction && !tx.aborted, "round {round}: a session left mid-transaction");
        tx.begin();
        assert!(tx.execute_invalid().is_err());
        assert!(tx.aborted);
        drop(tx);
    }
    settle().await;
    let opened = counts.opened.load(SeqCst);
    assert!(opened <= 2, "{opened} sessions for a pool of 2");
    assert_eq!(levels(&pool), (opened, opened, 0, 0), "every session back, idle");
    assert_eq!(counts.closed.load(SeqCst), 0);
}

// sqlx: pool_should_be_returned_failed_transactions (closing instead of rolling back)
#[tokio::test(start_paused = true)]
async fn sessions_judged_broken_inside_a_transaction_are_closed_and_their_slots_freed() {
    let sessions = Sessions { transaction_breaks: true, ..Sessions::default() };
    let counts = sessions.counts.clone();
    let (log, on_close) = close_log();
    let pool = Builder::new()
        .max_size(2)
        .wait(WaitPolicy::Timeout(secs(3)))
        .on_close(on_close)
        .build(sessions)
        .unwrap();
    let held = pool.get().await.unwrap();
    for round in 0..3 {
        let mut tx = pool.get().await.unwrap();
        assert!(!tx.in_transaction, "round {round}");
        tx.begin();
        assert!(tx.execute_invalid().is_err());
        drop(tx);
        assert_eq!(levels(&pool), (1, 0, 1, 0), "round {round}: the slot is free again");
    }
    drop(held);
    assert_eq!(counts.opened.load(SeqCst), 4);
    assert_eq!(counts.closed.load(SeqCst), 3);
    assert_eq!(
        *log.lock().unwrap(),
        [(2, CloseReason::Broken), (3, CloseReason::Broken), (4, CloseReason::Broken)]
    );
}

// sqlx: test_pool_callbacks
#[tokio::test(start_paused = true)]
async fn hooks_keep_retire_and_replace_connections_in_the_peer_pattern() {
    // What the hooks saw that sqlx asserts on `PoolConnectionMetadata`; checked at
    // the end (a panic inside a hook would be caught by the pool).
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let (w1, w2, w3) = (wrong.clone(), wrong.clone(), wrong.clone());
    let (log, on_close) = close_log();
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(secs(5)))
        .on_close(on_close)
        .manager(Sessions::default())
        .after_connect(move |conn, meta| {
            if meta.age() != Duration::ZERO || meta.idle_for() != Duration::ZERO {
                w1.lock().unwrap().push(format!("after_connect saw {meta:?}"));
            }
            // sqlx numbers its connections from 0.
            let id = meta.id - 1;
            conn.stats = Some(ConnStats { id, before_acquire_calls: 0, after_release_calls: 0 });
            Box::pin(async { Ok(()) })
        })
        .before_acquire(move |conn, meta| {
            if meta.age() == Duration::ZERO || meta.idle_for() == Duration::ZERO {
                w2.lock().unwrap().push(format!("before_acquire saw {meta:?}"));
            }
            let stats = conn.stats.as_mut().expect("after_connect made the table");
            stats.before_acquire_calls += 1;
            // Even ids: at most three uses. Odd ids: no limit here.
            let keep = stats.id & 1 == 1 || stats.before_acquire_calls < 3;
            Box::pin(async move { Ok(keep) })
        })
        .after_release(move |conn, meta| {
            if meta.age() == Duration::ZERO || meta.idle_for() != Duration::ZERO {
                w3.lock().unwrap().push(format!("after_release saw {meta:?}"));
            }
            let stats = conn.stats.as_mut().expect("after_connect made the table");
            stats.after_release_calls += 1;
            // Odd ids: at most four returns. Even ids: no limit here.
            let keep = stats.id & 1 == 0 || stats.after_release_calls < 4;
            Box::pin(async move { Ok(keep) })
        })
        .build()
        .unwrap();
    let pattern = [
        (0, 0, 0),
        (0, 1, 1),
        (0, 2, 2),
        (1, 0, 0),
        (1, 1, 1),
        (1, 2, 2),
        (1, 3, 3),
        (2, 0, 0),
        (2, 1, 1),
        (2, 2, 2),
        (3, 0, 0),
    ];
    for (id, before_acquire_calls, after_release_calls) in pattern {
        // Idle a while, then "SELECT * FROM conn_stats" for a while.
        sleep(ms(10)).await;
        let conn = pool.get().await.unwrap();
        sleep(ms(5)).await;
        let expected = ConnStats { id, before_acquire_calls, after_release_calls };
        assert_eq!(conn.stats, Some(expected));
        drop(conn);
    }
    assert_eq!(*wrong.lock().unwrap(), Vec::<String>::new());
    assert_eq!(
        *log.lock().unwrap(),
        [(1, CloseReason::Hook), (2, CloseReason::Hook), (3, CloseReason::Hook)]
    );
    within("close", pool.close_graceful(Instant::now() + secs(5))).await.unwrap();
    assert_eq!(log.lock().unwrap().last(), Some(&(4, CloseReason::PoolClosed)));
}

// sqlx: test_pool_callbacks (a before_acquire that never answers, under acquire_timeout)
#[tokio::test(start_paused = true)]
async fn a_before_acquire_hook_that_hangs_is_cut_off_by_the_callers_wait() {
    let (m, ledger) = TestManager::new();
    let (log, on_close) = close_log();
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(secs(5)))
        .on_close(on_close)
        .manager(m)
        .before_acquire(|_conn, _meta| Box::pin(std::future::pending()))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(5), "acquire_timeout bounds the whole get");
    assert!(
        matches!(err, GetError::Pool(PoolError::TimedOut { waited }) if waited == secs(5)),
        "{err:?}"
    );
    // The hook never answered: the connection's state is unknown, so it is closed.
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(ledger.live(), 0);
    assert_eq!(*log.lock().unwrap(), [(1, CloseReason::Cancelled)]);
}

// sqlx: test_connection_maintenance
#[tokio::test(start_paused = true)]
async fn expired_connections_are_replaced_to_keep_min_idle_fresh() {
    let (m, _ledger) = TestManager::new();
    let last_meta = Arc::new(Mutex::new(None));
    let seen = last_meta.clone();
    let pool = Builder::new()
        .max_lifetime(ms(400))
        .min_idle(3)
        .manager(m)
        .before_acquire(move |_conn, meta| {
            *seen.lock().unwrap() = Some(meta);
            Box::pin(async { Ok(true) })
        })
        .build()
        .unwrap();
    settle().await;
    assert_eq!(levels(&pool), (3, 3, 0, 0), "warmed to min_idle after build");
    let mut conns = Vec::new();
    for _ in 0..5 {
        conns.push(pool.get().await.unwrap());
    }
    settle().await;
    // `min_idle` counts idle connections (sqlx's `min_connections` counts all).
    assert_eq!(levels(&pool), (8, 3, 5, 0));
    drop(conns);
    assert_eq!(levels(&pool), (8, 8, 0, 0));
    sleep(secs(1)).await;
    // Every connection reached its lifetime; the janitor kept three fresh ones.
    assert_eq!(levels(&pool), (3, 3, 0, 0));
    for _ in 0..2 {
        let conn = pool.get().await.unwrap();
        let meta = last_meta.lock().unwrap().take().expect("handed out from the idle ones");
        assert_eq!(meta.id, conn.meta().id);
        assert!(meta.id > 8 && meta.age() < ms(400), "a fresh connection: {meta:?}");
    }
}

// sqlx: pool_smoke_test
#[tokio::test(start_paused = true)]
async fn many_users_and_abandoned_gets_share_one_connection_then_close_cleanly() {
    const WORKERS: usize = 50;
    const POLLERS: usize = 10;
    const SERVED: usize = 2_000;
    let (m, ledger) = TestManager::new();
    let pool =
        Builder::new().max_size(1).min_idle(1).wait(WaitPolicy::Timeout(secs(5))).build(m).unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let workers: Vec<JoinHandle<usize>> = (0..WORKERS)
        .map(|_| {
            let (pool, served, enough) = (pool.clone(), served.clone(), enough.clone());
            tokio::spawn(async move {
                let mut mine = 0;
                loop {
                    match pool.get().await {
                        Ok(conn) => drop(conn),
                        Err(e) => {
                            assert!(e.is_closed(), "a worker failed with {e}");
                            return mine;
                        }
                    }
                    mine += 1;
                    if served.fetch_add(1, SeqCst) + 1 == SERVED {
                        enough.notify_one();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Gets polled once, so that they queue, then dropped (a bounded number: once
    // they stop, an idle runtime lets the paused clock run out a hung test).
    let pollers: Vec<JoinHandle<()>> = (0..POLLERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    if pool.is_closed() {
                        return;
                    }
                    {
                        let mut get = std::pin::pin!(pool.get());
                        let _ = poll_once(&mut get).await;
                    } // Dropped: it leaves the line, or returns what it got.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    within("the workers' gets", enough.notified()).await;
    within("a graceful close", pool.close_graceful(Instant::now() + secs(30))).await.unwrap();
    for worker in workers {
        let mine = within("a worker", worker).await.unwrap();
        assert!(mine > 0, "first come first served: every worker got the connection");
    }
    for poller in pollers {
        within("a poller", poller).await.unwrap();
    }
    assert!(served.load(SeqCst) >= SERVED);
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(ledger.live(), 0);
}

// sqlx: pool_smoke_test (the pool closes while a get prepares an idle connection)
#[tokio::test(start_paused = true)]
async fn a_get_still_preparing_its_connection_when_the_pool_closes_fails_with_closed() {
    // Twice: while `before_acquire` runs, and while the health check runs.
    for via_hook in [true, false] {
        let (m, ledger) = TestManager::new();
        let (log, on_close) = close_log();
        let gate = Arc::new(Notify::new());
        let builder = Builder::new().max_size(1).on_close(on_close).manager(m);
        let pool = if via_hook {
            builder.before_acquire(approve_when_notified(gate.clone())).build().unwrap()
        } else {
            ledger.check_delay_ms.store(100, SeqCst);
            builder.health_check_after(Duration::ZERO).build().unwrap()
        };
        drop(pool.get().await.unwrap());
        let p = pool.clone();
        let getter = tokio::spawn(async move { p.get().await.map(|conn| conn.id) });
        settle().await;
        assert_eq!(levels(&pool), (1, 0, 1, 0), "the get holds the connection");
        pool.close();
        gate.notify_one();
        let got = within("the get", getter).await.unwrap();
        assert!(got.as_ref().is_err_and(GetError::is_closed), "hook {via_hook}: {got:?}");
        assert_eq!(levels(&pool), (0, 0, 0, 0));
        assert_eq!(ledger.live(), 0);
        assert_eq!(*log.lock().unwrap(), [(1, CloseReason::PoolClosed)]);
    }
}

// sqlx: test_pg_listener_allows_pool_to_close
#[tokio::test(start_paused = true)]
async fn close_returns_at_once_and_a_graceful_close_waits_for_the_connection_out() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(m).unwrap();
    let listener = pool.get_owned().await.unwrap();
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let listening = tokio::spawn(async move {
        stopped.notified().await;
        drop(listener);
    });
    let started = Instant::now();
    pool.close();
    assert!(pool.is_closed());
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(pool.get().await.unwrap_err().is_closed(), "sqlx's PoolClosed");
    // sqlx's `close().await`, bounded: still out at the deadline.
    let err = pool.close_graceful(started + secs(1)).await.unwrap_err();
    assert_eq!((err.still_in_use, started.elapsed()), (1, secs(1)));
    let p = pool.clone();
    let graceful = tokio::spawn(async move { p.close_graceful(started + secs(60)).await });
    settle().await;
    assert!(!graceful.is_finished());
    stop.notify_one();
    within("the graceful close", graceful).await.unwrap().unwrap();
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(ledger.live(), 0);
    within("the listener", listening).await.unwrap();
}

// sqlx: pool_smoke_test (a worker dies holding its connection)
#[tokio::test(start_paused = true)]
async fn a_task_that_panics_holding_a_connection_gives_its_slot_to_the_next_waiter() {
    let (m, ledger) = TestManager::new();
    let (log, on_close) = close_log();
    let pool = Builder::new().max_size(1).on_close(on_close).build(m).unwrap();
    let die = Arc::new(Notify::new());
    let (p, d) = (pool.clone(), die.clone());
    let dying = tokio::spawn(async move {
        let _conn = p.get().await.unwrap();
        d.notified().await;
        panic!("user code panics holding a connection");
    });
    settle().await;
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get().await.map(|conn| conn.id) });
    settle().await;
    assert_eq!(levels(&pool), (1, 0, 1, 1));
    die.notify_one();
    assert!(within("the dying task", dying).await.unwrap_err().is_panic());
    // Closed, not reused (it may be mid-statement); the waiter dials on its slot.
    assert_eq!(within("the waiter", waiter).await.unwrap().unwrap(), 2);
    assert_eq!(*log.lock().unwrap(), [(1, CloseReason::Broken)]);
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(ledger.live(), 1);
}

// ---------------------------------------------------------------------------
// mobc
// ---------------------------------------------------------------------------

// mobc: test_get_timeout
#[tokio::test(start_paused = true)]
async fn get_timeout_succeeds_when_a_return_comes_in_time_and_fails_at_the_limit() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Timeout(ms(500))).build(m).unwrap();
    let limit = ms(100);
    let first = pool.get_timeout(limit).await.unwrap().into_owned();
    tokio::spawn(async move {
        sleep(ms(50)).await;
        drop(first);
    });
    let started = Instant::now();
    let second = pool.get_timeout(limit).await.unwrap().into_owned();
    assert_eq!(started.elapsed(), ms(50));
    tokio::spawn(async move {
        sleep(ms(150)).await;
        drop(second);
    });
    let started = Instant::now();
    let err = pool.get_timeout(limit).await.unwrap_err();
    assert_eq!(started.elapsed(), limit);
    assert!(matches!(err, GetError::Pool(PoolError::TimedOut { waited }) if waited == limit));
    // The second connection comes back 50 ms later.
    sleep(ms(60)).await;
    assert_eq!(levels(&pool), (1, 1, 0, 0));
}

// mobc: test_get_global_timeout
#[tokio::test(start_paused = true)]
async fn the_pools_wait_limit_fails_a_get_after_exactly_that_long() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).wait(WaitPolicy::Timeout(secs(1))).build(m).unwrap();
    let _held = pool.get().await.unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(1));
    assert!(matches!(err, GetError::Pool(PoolError::TimedOut { waited }) if waited == secs(1)));
    assert_eq!(levels(&pool), (1, 0, 1, 0));
}

// mobc: test_drop_on_checkout
#[tokio::test(start_paused = true)]
async fn an_idle_connection_failing_its_check_is_closed_at_checkout_not_before() {
    let (m, ledger) = TestManager::new();
    ledger.fail_check.store(true, SeqCst);
    let pool = Builder::new().max_size(1).build(m).unwrap();
    assert_eq!(pool.get().await.unwrap().id, 1);
    sleep(secs(1)).await;
    assert_eq!(ledger.closes.load(SeqCst), 0, "not dropped while idle");
    assert_eq!(pool.get().await.unwrap().id, 2, "replaced by a fresh dial");
    assert_eq!(ledger.closes.load(SeqCst), 1);
}

// mobc: test_invalid_conn
#[tokio::test(start_paused = true)]
async fn a_failed_check_leaves_exactly_one_connection_open() {
    let (m, ledger) = TestManager::new();
    ledger.fail_check.store(true, SeqCst);
    let pool = Builder::new().max_size(1).build(m).unwrap();
    drop(pool.get().await.unwrap());
    sleep(secs(1)).await;
    let conn = pool.get().await.unwrap();
    assert_eq!((conn.id, ledger.checks.load(SeqCst)), (2, 1));
    assert_eq!(levels(&pool), (1, 0, 1, 0));
    assert_eq!(ledger.live(), 1);
}

// mobc: test_invalid_conn_recovery
#[tokio::test(start_paused = true)]
async fn a_connection_reused_at_once_is_not_checked_even_when_checks_would_fail() {
    let (m, ledger) = TestManager::new();
    ledger.fail_check.store(true, SeqCst);
    let pool = Builder::new().max_size(1).build(m).unwrap();
    assert_eq!(pool.get().await.unwrap().id, 1);
    assert_eq!(pool.get().await.unwrap().id, 1);
    assert_eq!(ledger.checks.load(SeqCst), 0);
}

// mobc: test_health_check_interval
#[tokio::test(start_paused = true)]
async fn the_health_check_window_counts_from_the_last_checkout() {
    let (m, ledger) = TestManager::new();
    ledger.fail_check.store(true, SeqCst);
    let pool = Builder::new().max_size(1).health_check_after(secs(1)).build(m).unwrap();
    assert_eq!(pool.get().await.unwrap().id, 1);
    sleep(ms(500)).await;
    assert_eq!(pool.get().await.unwrap().id, 1);
    // 1.1 s after it was opened, 600 ms after its last use: mobc checks here (its
    // interval runs from the last check), we do not.
    sleep(ms(600)).await;
    assert_eq!(pool.get().await.unwrap().id, 1);
    assert_eq!(ledger.checks.load(SeqCst), 0);
    sleep(secs(1)).await;
    assert_eq!(pool.get().await.unwrap().id, 2, "checked, failed, replaced");
    assert_eq!((ledger.checks.load(SeqCst), ledger.closes.load(SeqCst)), (1, 1));
}

// mobc: test_lazy_initialization_failure
#[tokio::test(start_paused = true)]
async fn a_server_that_refuses_every_dial_is_named_within_the_wait_limit() {
    let (m, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool = Builder::new().wait(WaitPolicy::Timeout(secs(1))).build(m).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(started.elapsed() <= secs(1), "took {:?}", started.elapsed());
    match err {
        GetError::ConnectFailed { attempts, last } => {
            assert!(attempts > 1);
            assert_eq!(last.0, "connection refused");
        }
        other => panic!("expected the manager's error, got {other:?}"),
    }
    assert_eq!(levels(&pool), (0, 0, 0, 0));
}

// mobc: test_max_lifetime_lazy
#[tokio::test(start_paused = true)]
async fn the_janitor_closes_connections_at_max_lifetime_until_the_pool_is_dropped() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(5)
        .max_lifetime(secs(1))
        .wait(WaitPolicy::Timeout(secs(1)))
        .janitor_interval(secs(1))
        .build(m)
        .unwrap();
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(pool.get().await.unwrap());
    }
    drop(v);
    sleep(secs(2)).await;
    assert_eq!((ledger.closes.load(SeqCst), pool.status().open), (5, 0));
    let mut v = Vec::new();
    for _ in 0..4 {
        v.push(pool.get().await.unwrap());
    }
    assert_eq!(ledger.closes.load(SeqCst), 5);
    assert_eq!(pool.get().await.unwrap().id, 10);
    sleep(secs(2)).await;
    // mobc's cleaner stopped when its pool emptied and keeps connection 10 open.
    assert_eq!(ledger.closes.load(SeqCst), 6);
    assert_eq!(levels(&pool), (4, 0, 4, 0), "connections in use are closed on return");
    drop(v);
    assert_eq!((ledger.closes.load(SeqCst), pool.status().open), (10, 0));
}

// mobc: test_max_idle_lifetime
#[tokio::test(start_paused = true)]
async fn max_idle_time_counts_from_the_last_return() {
    let (m, ledger) = TestManager::new();
    let (log, on_close) = close_log();
    let pool = Builder::new()
        .max_size(5)
        .max_idle_time(secs(1))
        .wait(WaitPolicy::Timeout(secs(1)))
        .on_close(on_close)
        .build(m)
        .unwrap();
    let take_five = || async {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(pool.get().await.unwrap());
        }
        let mut ids: Vec<usize> = v.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        (v, ids)
    };
    let (v, ids) = take_five().await;
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    drop(v);
    sleep(ms(500)).await;
    let (v, ids) = take_five().await;
    assert_eq!(ids, [1, 2, 3, 4, 5], "reused");
    drop(v);
    // mobc closes all five here, 800 ms after their return; they were not idle 1 s.
    sleep(ms(800)).await;
    let (v, ids) = take_five().await;
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(ledger.closes.load(SeqCst), 0);
    drop(v);
    sleep(secs(1) + ms(500)).await;
    let (_v, ids) = take_five().await;
    assert_eq!(ids, [6, 7, 8, 9, 10]);
    assert_eq!(ledger.closes.load(SeqCst), 5);
    assert!(log.lock().unwrap().iter().all(|(_, reason)| *reason == CloseReason::Idle));
}

// mobc: test_set_max_open_conns
#[tokio::test(start_paused = true)]
async fn shrinking_closes_idle_connections_and_growing_raises_the_limit() {
    let (m, ledger) = TestManager::new();
    let (log, on_close) = close_log();
    let pool = Builder::new().max_size(5).on_close(on_close).build(m).unwrap();
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(pool.get().await.unwrap());
    }
    assert_eq!(levels(&pool), (5, 0, 5, 0));
    drop(v);
    // No idle cap (mobc's `max_idle(2)` would close three here).
    assert_eq!(levels(&pool), (5, 5, 0, 0));
    pool.resize(1).unwrap();
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(pool.max_size(), 1);
    assert_eq!(ledger.live(), 1);
    assert_eq!(log.lock().unwrap().len(), 4);
    assert!(log.lock().unwrap().iter().all(|(_, reason)| *reason == CloseReason::Resize));
    pool.resize(10).unwrap();
    assert_eq!(pool.status().max_size, 10);
}

// mobc: test_max_idle_and_max_open_unlimited
#[tokio::test(start_paused = true)]
async fn a_zero_size_is_refused_and_sequential_gets_reuse_one_connection() {
    let (m, ledger) = TestManager::new();
    assert_eq!(Builder::new().max_size(0).build(m.clone()).unwrap_err(), BuildError::ZeroMaxSize);
    let pool = Builder::new().build(m).unwrap();
    for _ in 0..5 {
        drop(pool.get().await.unwrap());
        sleep(ms(100)).await;
    }
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(ledger.connects.load(SeqCst), 1);
    let mut v = Vec::new();
    for _ in 0..10 {
        v.push(pool.get().await.unwrap());
    }
    assert_eq!(levels(&pool), (10, 0, 10, 0));
    drop(v);
    assert_eq!(levels(&pool), (10, 10, 0, 0));
    assert_eq!(ledger.connects.load(SeqCst), 10);
}

// mobc: test_max_idle_greater_than_max_open
#[tokio::test(start_paused = true)]
async fn more_idle_than_the_size_is_refused_and_every_connection_returned_stays_idle() {
    let (m, _) = TestManager::new();
    let err = Builder::new().max_size(5).min_idle(6).build(m.clone()).unwrap_err();
    assert_eq!(err, BuildError::MinIdleAboveMaxSize { min_idle: 6, max_size: 5 });
    let pool = Builder::new().max_size(5).build(m).unwrap();
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(pool.get().await.unwrap());
    }
    assert_eq!(levels(&pool), (5, 0, 5, 0));
    assert_eq!(pool.max_size(), 5);
    drop(v);
    assert_eq!(levels(&pool), (5, 5, 0, 0));
}

// mobc: test_is_brand_new
#[tokio::test(start_paused = true)]
async fn a_connections_first_checkout_is_told_apart_from_its_reuse() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let first = pool.get().await.unwrap().meta();
    let again = pool.get().await.unwrap().meta();
    assert_eq!(first.id, again.id);
    assert_eq!((first.checkouts, again.checkouts), (1, 2));
}

// mobc: test_unwraps_raw_conn
#[tokio::test(start_paused = true)]
async fn detached_connections_are_the_callers_to_drop() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(10).max_lifetime(secs(10)).build(m).unwrap();
    let mut raw: Vec<TestConn> = Vec::new();
    for _ in 0..10 {
        raw.push(pool.get().await.unwrap().detach());
    }
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    drop(pool.get().await.unwrap());
    sleep(secs(1)).await;
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(ledger.closes.load(SeqCst), 0);
    drop(raw);
    assert_eq!(ledger.closes.load(SeqCst), 10);
    assert_eq!(levels(&pool), (1, 1, 0, 0));
}

// mobc: test_timeout_when_db_has_gone
#[tokio::test(start_paused = true)]
async fn a_dial_that_hangs_fails_the_get_at_exactly_the_wait_limit() {
    let (m, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(24 * 3_600_000, SeqCst);
    let pool = Builder::new().wait(WaitPolicy::Timeout(secs(1))).build(m).unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(1));
    assert!(matches!(err, GetError::Pool(PoolError::TimedOut { waited }) if waited == secs(1)));
    assert_eq!(levels(&pool), (0, 0, 0, 0));
}

// mobc: test_timeout_when_db_has_gone2
#[tokio::test(start_paused = true)]
async fn a_health_check_that_hangs_fails_the_get_at_exactly_the_wait_limit() {
    let (m, ledger) = TestManager::new();
    let (log, on_close) = close_log();
    let pool = Builder::new()
        .wait(WaitPolicy::Timeout(secs(2)))
        .health_check_after(Duration::ZERO)
        .on_close(on_close)
        .build(m)
        .unwrap();
    drop(pool.get().await.unwrap());
    ledger.connect_delay_ms.store(24 * 3_600_000, SeqCst);
    ledger.check_delay_ms.store(24 * 3_600_000, SeqCst);
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(started.elapsed(), secs(2));
    assert!(matches!(err, GetError::Pool(PoolError::TimedOut { waited }) if waited == secs(2)));
    // The check never answered: the connection's state is unknown, so it is closed.
    assert_eq!(levels(&pool), (0, 0, 0, 0));
    assert_eq!(*log.lock().unwrap(), [(1, CloseReason::Cancelled)]);
}

// mobc: test_requests_fifo
#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_the_order_they_asked() {
    let (m, _) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let first = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for who in ["second", "third"] {
        let (p, order) = (pool.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let conn = p.get().await.unwrap();
            order.lock().unwrap().push(who);
            drop(conn);
        }));
        settle().await;
    }
    assert_eq!(pool.status().waiting, 2);
    drop(first);
    for w in waiters {
        within("a waiter", w).await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["second", "third"]);
}

// mobc: test_requests_skip_canceled
#[tokio::test(start_paused = true)]
async fn a_queued_get_dropped_before_the_return_is_skipped() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(m).unwrap();
    let first = pool.get().await.unwrap();
    {
        let mut second = std::pin::pin!(pool.get());
        assert!(poll_once(&mut second).await.is_pending());
        assert_eq!(pool.status().waiting, 1, "queued");
    }
    assert_eq!(pool.status().waiting, 0, "left the line when dropped");
    let p = pool.clone();
    let third = tokio::spawn(async move { p.get().await.map(|conn| conn.id) });
    settle().await;
    drop(first);
    assert_eq!(within("the third get", third).await.unwrap().unwrap(), 1);
    assert_eq!(levels(&pool), (1, 1, 0, 0));
    assert_eq!(ledger.connects.load(SeqCst), 1);
}

// mobc: test_handle_large_number_of_requests
#[tokio::test(start_paused = true)]
async fn rounds_of_aborted_waiters_leak_nothing() {
    let (m, ledger) = TestManager::new();
    let pool = Builder::new().max_size(10).build(m).unwrap();
    let fine = Arc::new(AtomicBool::new(true));
    for _ in 0..4 {
        let tasks: Vec<JoinHandle<()>> = (0..5_000)
            .map(|_| {
                let (pool, fine) = (pool.clone(), fine.clone());
                tokio::spawn(async move {
                    match pool.get().await {
                        Ok(conn) => {
                            sleep(ms(5)).await;
                            drop(conn);
                        }
                        Err(_) => fine.store(false, SeqCst),
                    }
                })
            })
            .collect();
        sleep(ms(50)).await;
        for t in &tasks {
            t.abort();
        }
        sleep(ms(50)).await;
        assert!(tasks.iter().all(JoinHandle::is_finished));
        assert_eq!(levels(&pool), (10, 10, 0, 0));
    }
    assert!(fine.load(SeqCst), "no get failed before it was aborted");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
        })
        .collect();
    for t in tasks {
        assert!(within("a get", t).await.unwrap().is_ok());
    }
    assert_eq!(levels(&pool), (10, 10, 0, 0));
    assert_eq!((ledger.connects.load(SeqCst), ledger.live()), (10, 10));
}
