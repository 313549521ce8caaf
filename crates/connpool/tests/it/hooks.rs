//! Lifecycle hooks and connection metadata: each hook runs exactly when documented
//! (counted per connection id across connect, checkout, return, sweep, resize and
//! close); refusals, errors and panics close exactly one connection with exact counts;
//! a slow `after_release` never slows `drop(guard)`; cancelling a `get` while a hook
//! runs leaks nothing.

use poolside_connpool::{
    Builder, CloseReason, ConnMeta, GetError, Manager, Pool, WaitPolicy, hooks::HookFuture,
};
use poolside_core::Snapshot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A connection that counts itself alive until dropped.
#[derive(Debug)]
struct Conn {
    serial: u64,
    session: Vec<&'static str>,
    alive: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
    }
}

#[derive(Default, Clone)]
struct Mgr {
    dials: Arc<AtomicU64>,
    alive: Arc<AtomicUsize>,
}

impl Manager for Mgr {
    type Connection = Conn;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<Conn, Self::Error> {
        let serial = self.dials.fetch_add(1, SeqCst) + 1;
        self.alive.fetch_add(1, SeqCst);
        Ok(Conn { serial, session: Vec::new(), alive: self.alive.clone() })
    }
    async fn check(&self, _: &mut Conn) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Every hook call, per connection id.
#[derive(Default)]
struct Calls {
    connect: Mutex<HashMap<u64, usize>>,
    acquire: Mutex<HashMap<u64, usize>>,
    release: Mutex<HashMap<u64, usize>>,
    close: Mutex<Vec<(u64, CloseReason)>>,
}

impl Calls {
    fn bump(map: &Mutex<HashMap<u64, usize>>, id: u64) {
        *map.lock().unwrap().entry(id).or_default() += 1;
    }
    fn of(map: &Mutex<HashMap<u64, usize>>, id: u64) -> usize {
        map.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
    fn closes(&self) -> Vec<(u64, CloseReason)> {
        self.close.lock().unwrap().clone()
    }
}

/// A builder with all four hooks recording into `calls`; `before_acquire` and
/// `after_release` approve unless the connection's session says "reject".
fn counting(calls: &Arc<Calls>, mgr: Mgr) -> Builder<Mgr> {
    let (c1, c2, c3, c4) = (calls.clone(), calls.clone(), calls.clone(), calls.clone());
    Builder::new()
        .wait(WaitPolicy::Queue)
        .manager(mgr)
        .after_connect(move |conn, meta| {
            Calls::bump(&c1.connect, meta.id);
            conn.session.push("connected");
            Box::pin(async move { Ok(()) })
        })
        .before_acquire(move |conn, meta| {
            Calls::bump(&c2.acquire, meta.id);
            let keep = !conn.session.contains(&"reject-acquire");
            Box::pin(async move { Ok(keep) })
        })
        .after_release(move |conn, meta| {
            Calls::bump(&c3.release, meta.id);
            let keep = !conn.session.contains(&"reject-release");
            conn.session.retain(|s| *s == "connected" || s.starts_with("reject"));
            Box::pin(async move { Ok(keep) })
        })
        .on_close(move |meta, reason| c4.close.lock().unwrap().push((meta.id, reason)))
}

/// Lets spawned `after_release` tasks run.
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn meta_is_per_connection_and_counts_checkouts() {
    let pool = Builder::new().max_size(2).build(Mgr::default()).unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let (ma, mb) = (a.meta(), b.meta());
    assert_ne!(ma.id, mb.id);
    assert_eq!((ma.checkouts, mb.checkouts), (1, 1));
    drop(a);
    tokio::time::advance(ms(5)).await;
    let again = pool.get().await.unwrap();
    let m = again.meta();
    assert_eq!(m.id, ma.id);
    assert_eq!(m.checkouts, 2);
    assert_eq!(m.created_at, ma.created_at);
    assert_eq!(m.last_used.duration_since(ma.last_used), ms(5));
    drop((again, b));
    let mut seen = Vec::new();
    pool.retain(|_, meta| {
        seen.push((meta.id, meta.checkouts));
        meta.id != ma.id
    })
    .unwrap();
    seen.sort_unstable();
    assert_eq!(seen, [(ma.id, 2), (mb.id, 1)]);
    assert_eq!(pool.status().open, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn each_hook_runs_exactly_when_documented() {
    let calls = Arc::new(Calls::default());
    let mgr = Mgr::default();
    let pool = counting(&calls, mgr.clone())
        .max_size(3)
        .max_lifetime(Duration::from_secs(60))
        .health_check_after(Duration::ZERO)
        .build()
        .unwrap();
    // Connect: after_connect once, no before_acquire for a fresh connection.
    let a = pool.get().await.unwrap();
    let id_a = a.meta().id;
    assert_eq!(a.session, ["connected"]);
    assert_eq!((Calls::of(&calls.connect, id_a), Calls::of(&calls.acquire, id_a)), (1, 0));
    // Return: after_release runs in a task; the connection is in use until it did.
    drop(a);
    assert_eq!(pool.status().in_use, 1, "available only after the hook");
    settle().await;
    assert_eq!(Calls::of(&calls.release, id_a), 1);
    assert_eq!(pool.status().idle, 1);
    // Checkout of an idle connection: before_acquire once (after the health check).
    for round in 1..=3 {
        let again = pool.get().await.unwrap();
        assert_eq!(again.meta().id, id_a);
        drop(again);
        settle().await;
        assert_eq!(Calls::of(&calls.acquire, id_a), round);
        assert_eq!(Calls::of(&calls.release, id_a), round + 1);
    }
    assert_eq!(Calls::of(&calls.connect, id_a), 1);
    // Resize: the idle connections beyond the new size are closed with `Resize`.
    let held: Vec<_> = [pool.get().await.unwrap(), pool.get().await.unwrap()].into();
    let ids: Vec<u64> = held.iter().map(|c| c.meta().id).collect();
    drop(held);
    settle().await;
    assert_eq!(pool.status().idle, 2);
    pool.resize(1).unwrap();
    assert_eq!(calls.closes().len(), 1);
    assert_eq!(calls.closes()[0].1, CloseReason::Resize);
    assert!(ids.contains(&calls.closes()[0].0));
    // Sweep: past max_lifetime, the janitor closes it with `Lifetime`.
    tokio::time::sleep(Duration::from_secs(61 + 30)).await;
    settle().await;
    assert_eq!(calls.closes().len(), 2);
    assert_eq!(calls.closes()[1].1, CloseReason::Lifetime);
    // Close: every idle connection is reported once with `PoolClosed`.
    pool.resize(3).unwrap();
    pool.warm(2).await.unwrap();
    pool.close();
    let closes = calls.closes();
    assert_eq!(closes.len(), 4);
    assert!(closes[2..].iter().all(|(_, r)| *r == CloseReason::PoolClosed));
    // Every connection ever opened ran after_connect once and was closed once.
    let opened = mgr.dials.load(SeqCst);
    assert_eq!(calls.connect.lock().unwrap().len() as u64, opened);
    assert!(calls.connect.lock().unwrap().values().all(|&n| n == 1));
    let mut closed_ids: Vec<u64> = closes.iter().map(|(id, _)| *id).collect();
    closed_ids.sort_unstable();
    closed_ids.dedup();
    assert_eq!(closed_ids.len() as u64, opened);
    assert_eq!(mgr.alive.load(SeqCst), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn before_acquire_false_closes_exactly_that_connection_and_moves_on() {
    let calls = Arc::new(Calls::default());
    let mgr = Mgr::default();
    let pool = counting(&calls, mgr.clone()).max_size(3).build().unwrap();
    let mut a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let (id_a, id_b) = (a.meta().id, b.meta().id);
    a.session.push("reject-acquire");
    drop(b); // idle first, below `a`
    settle().await;
    drop(a); // top of the idle stack: refused on the next checkout
    settle().await;
    // after_release strips unknown session state but keeps the "reject" marker.
    let got = pool.get().await.unwrap();
    assert_eq!(got.meta().id, id_b, "moved on to the next idle connection");
    assert_eq!(calls.closes(), [(id_a, CloseReason::Hook)]);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (1, 0, 1));
    assert_eq!(mgr.alive.load(SeqCst), 1);
    assert_eq!(mgr.dials.load(SeqCst), 2, "no dial while an idle connection was left");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn before_acquire_refusing_everything_dials_a_fresh_connection() {
    let mgr = Mgr::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let r = refused.clone();
    let pool = Builder::new()
        .max_size(4)
        .max_health_retries(1)
        .manager(mgr.clone())
        .before_acquire(move |_: &mut Conn, _| {
            r.fetch_add(1, SeqCst);
            Box::pin(async { Err("stale session".into()) })
        })
        .build()
        .unwrap();
    pool.warm(4).await.unwrap();
    let got = pool.get().await.unwrap();
    // Two refusals (max_health_retries + 1), then a fresh dial on the held slot.
    assert_eq!(refused.load(SeqCst), 2);
    assert_eq!(got.meta().id, 5);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (3, 2, 1));
    assert_eq!(mgr.alive.load(SeqCst), 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn after_release_false_or_error_closes_it_and_frees_the_slot() {
    let calls = Arc::new(Calls::default());
    let mgr = Mgr::default();
    let pool = counting(&calls, mgr.clone()).max_size(1).build().unwrap();
    let mut a = pool.get().await.unwrap();
    let id = a.meta().id;
    a.session.push("reject-release");
    drop(a);
    settle().await;
    assert_eq!(calls.closes(), [(id, CloseReason::Hook)]);
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
    // The freed slot serves the next caller.
    let b = pool.get().await.unwrap();
    assert_ne!(b.meta().id, id);
    assert_eq!(Snapshot::of(&pool).value("releases"), Some(1));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn after_connect_error_fails_the_dial_and_leaves_nothing_open() {
    let mgr = Mgr::default();
    let closes = Arc::new(Mutex::new(Vec::new()));
    let log = closes.clone();
    let pool = Builder::new()
        .connect_retries(0)
        .manager(mgr.clone())
        .after_connect(|_: &mut Conn, _| Box::pin(async { Err("SET search_path failed".into()) }))
        .on_close(move |m, r| log.lock().unwrap().push((m.id, r)))
        .build()
        .unwrap();
    let err = pool.get().await.unwrap_err();
    match &err {
        GetError::Hook { during, error } => {
            assert_eq!(*during, "after_connect");
            assert_eq!(error.to_string(), "SET search_path failed");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("after_connect"));
    assert_eq!(*closes.lock().unwrap(), [(1, CloseReason::Hook)]);
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
    let snap = Snapshot::of(&pool);
    assert_eq!((snap.value("dials"), snap.value("dial_errors")), (Some(1), Some(1)));
    // The failed dial entered the backoff like a failed connect.
    let next = pool.try_get().await.unwrap_err();
    assert!(matches!(next, GetError::Backoff { .. }), "{next:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn after_connect_is_retried_within_the_connect_timeout() {
    let mgr = Mgr::default();
    let pool = Builder::new()
        .manager(mgr.clone())
        .after_connect(|conn: &mut Conn, _| {
            let ok = conn.serial >= 3;
            Box::pin(async move { if ok { Ok(()) } else { Err("not yet".into()) } })
        })
        .build()
        .unwrap();
    let got = pool.get().await.unwrap();
    assert_eq!(got.serial, 3);
    assert_eq!(pool.status().open, 1);
    assert_eq!(mgr.alive.load(SeqCst), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_slow_after_release_does_not_slow_the_drop() {
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Queue)
        .manager(Mgr::default())
        .after_release(|_: &mut Conn, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(true)
            })
        })
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let wall = std::time::Instant::now();
    let start = Instant::now();
    drop(conn);
    assert!(wall.elapsed() < ms(100), "drop is synchronous and cheap");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pool.status().in_use, 1, "still being reset");
    // The next caller gets it once the hook finished, 10 s later.
    let again = pool.get().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(again.meta().checkouts, 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hung_after_release_is_bounded_by_the_connect_timeout() {
    let mgr = Mgr::default();
    let pool = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_secs(2))
        .manager(mgr.clone())
        .after_release(|_: &mut Conn, _| Box::pin(std::future::pending()))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
}

/// Cancels `get` while a hook is parked, then checks that nothing leaked and the
/// pool still serves `max_size` callers.
async fn cancel_while_hook_runs(
    builder: Builder<Mgr>,
    warm: usize,
    mgr: Mgr,
    entered: Arc<AtomicUsize>,
) {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let log = closes.clone();
    let pool = builder
        .max_size(2)
        .on_close(move |m, r| log.lock().unwrap().push((m.id, r)))
        .build()
        .unwrap();
    pool.warm(warm).await.unwrap();
    let cut = tokio::time::timeout(ms(50), pool.get()).await;
    assert!(cut.is_err(), "the hook never answers");
    assert_eq!(entered.load(SeqCst), 1);
    assert_eq!(closes.lock().unwrap().len(), 1);
    assert_eq!(closes.lock().unwrap()[0].1, CloseReason::Cancelled);
    let s = pool.status();
    assert_eq!(s.in_use, 0);
    assert_eq!(s.open, warm.saturating_sub(1));
    assert_eq!(mgr.alive.load(SeqCst), s.open);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_get_during_after_connect_leaks_nothing() {
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let mgr = Mgr::default();
    let builder = Builder::new().manager(mgr.clone()).after_connect(move |_, _| {
        e.fetch_add(1, SeqCst);
        Box::pin(std::future::pending())
    });
    cancel_while_hook_runs(builder, 0, mgr, entered).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_get_during_before_acquire_leaks_nothing() {
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let mgr = Mgr::default();
    let builder = Builder::new().manager(mgr.clone()).before_acquire(move |_, _| {
        e.fetch_add(1, SeqCst);
        Box::pin(std::future::pending())
    });
    cancel_while_hook_runs(builder, 1, mgr, entered).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn panicking_hooks_are_contained() {
    let mgr = Mgr::default();
    let pool = Builder::new()
        .max_size(2)
        .connect_retries(0)
        .manager(mgr.clone())
        .after_connect(|conn: &mut Conn, _| {
            assert!(conn.serial != 1, "after_connect bomb");
            Box::pin(async { Ok(()) })
        })
        .before_acquire(|conn: &mut Conn, _| {
            let serial = conn.serial;
            Box::pin(async move {
                assert!(serial != 2, "before_acquire bomb");
                Ok(true)
            })
        })
        .after_release(|conn: &mut Conn, _| {
            assert!(conn.serial != 3, "after_release bomb");
            Box::pin(async { Ok(true) })
        })
        .on_close(|_, _| panic!("on_close bomb"))
        .build()
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, GetError::Panicked { during: "after_connect", .. }), "{err:?}");
    assert_eq!(pool.status().open, 0);
    tokio::time::sleep(Duration::from_secs(1)).await; // past the backoff
    drop(pool.get().await.unwrap()); // serial 2, idle
    settle().await;
    let c = pool.get().await.unwrap(); // serial 2 panics in before_acquire; dial 3
    assert_eq!(c.serial, 3);
    drop(c); // after_release panics: closed
    settle().await;
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
    // Still serves max_size concurrent checkouts.
    let (x, y) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(pool.status().in_use, 2);
    drop((x, y));
    settle().await;
    assert_eq!(pool.status().idle, 2);
}

/// Issue 14: with the manager given first, every hook takes a closure without
/// annotations (the connection type comes from the manager). This test fails to
/// compile on a builder that does not know its manager.
#[tokio::test(flavor = "current_thread")]
async fn every_hook_takes_an_unannotated_closure() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, b, c, d) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    let pool = Pool::builder()
        .max_size(1)
        .manager(Mgr::default())
        .after_connect(move |conn, meta| {
            a.lock().unwrap().push(("after_connect", meta.id));
            conn.session.push("connected");
            Box::pin(async { Ok(()) })
        })
        .before_acquire(move |conn, meta| {
            b.lock().unwrap().push(("before_acquire", meta.id));
            let ok = conn.session.contains(&"connected");
            Box::pin(async move { Ok(ok) })
        })
        .after_release(move |conn, meta| {
            c.lock().unwrap().push(("after_release", meta.id));
            conn.session.retain(|s| *s == "connected");
            Box::pin(async { Ok(true) })
        })
        .on_close(move |meta, reason| {
            assert_eq!(reason, CloseReason::PoolClosed);
            d.lock().unwrap().push(("on_close", meta.id));
        })
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    settle().await;
    drop(pool.get().await.unwrap());
    settle().await;
    pool.close();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("after_connect", 1),
            ("after_release", 1),
            ("before_acquire", 1),
            ("after_release", 1),
            ("on_close", 1),
        ]
    );
}

#[test]
fn a_return_outside_a_runtime_closes_rather_than_skips_the_reset() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let mgr = Mgr::default();
    let pool: Pool<Mgr> = Builder::new()
        .manager(mgr.clone())
        .after_release(|_: &mut Conn, _| Box::pin(async { Ok(true) }))
        .build()
        .unwrap();
    let conn = rt.block_on(pool.get_owned()).unwrap();
    drop(conn); // no runtime entered here
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
}

/// A named hook function, for readers who prefer them to closures.
fn discard_all(conn: &mut Conn, _meta: ConnMeta) -> HookFuture<'_, bool> {
    Box::pin(async move {
        conn.session.clear();
        Ok(true)
    })
}

#[tokio::test(flavor = "current_thread")]
async fn a_named_fn_works_as_a_hook() {
    let pool = Builder::new()
        .max_size(1)
        .manager(Mgr::default())
        .after_release(discard_all)
        .build()
        .unwrap();
    pool.get().await.unwrap().session.push("SET x = 1");
    assert!(pool.get().await.unwrap().session.is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn each_shard_runs_the_hooks_its_builder_set() {
    use poolside_connpool::sharded::ShardedPool;
    let calls: Vec<Arc<Calls>> = (0..3).map(|_| Arc::new(Calls::default())).collect();
    let shards = calls
        .iter()
        .map(|c| counting(c, Mgr::default()).max_size(2).build())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let pool: ShardedPool<str, Mgr> = ShardedPool::new(shards).unwrap();
    let key = "tenant:42";
    let shard = pool.shard_for(key);
    let conn = pool.get(key).await.unwrap();
    let id = conn.meta().id;
    drop(conn);
    settle().await;
    for (i, c) in calls.iter().enumerate() {
        let expected = usize::from(i == shard);
        assert_eq!(Calls::of(&c.connect, id), expected, "shard {i}");
        assert_eq!(Calls::of(&c.release, id), expected, "shard {i}");
    }
    pool.close();
    assert_eq!(calls[shard].closes(), [(id, CloseReason::PoolClosed)]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hung_after_connect_fails_the_dial_within_the_connect_timeout() {
    let mgr = Mgr::default();
    let pool = Builder::new()
        .connect_timeout(Duration::from_secs(2))
        .connect_retries(0)
        .manager(mgr.clone())
        .after_connect(|_: &mut Conn, _| Box::pin(std::future::pending()))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    match err {
        GetError::Hook { during: "after_connect", error } => {
            assert!(error.to_string().contains("timed out"), "{error}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.status().open, 0);
    assert_eq!(mgr.alive.load(SeqCst), 0);
}
