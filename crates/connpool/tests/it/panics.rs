//! User code may panic anywhere: every `Manager` method on every path (get, return,
//! janitor, warm, retain), connection drops, retain predicates and shard selectors.
//! Afterwards no slot is leaked, nobody hangs, counts are exact, the affected
//! connection is closed and counted, and the panic is logged.
//!
//! The proptest at the end picks which call panics and when, over a random sequence of
//! entry points, and checks the invariants after every case.

use crate::common::{Ledger, TestConn, TestError, TestManager};
use poolside_connpool::{
    Builder, GetError, Manager, Pool, sharded::ShardSelector, sharded::ShardedPool,
};
use poolside_core::Snapshot;
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// The user call that panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    /// `Manager::connect` before returning its future.
    ConnectCall,
    /// `Manager::connect`'s future while polled.
    ConnectPoll,
    Check,
    IsBroken,
    /// A connection's `Drop`.
    ConnDrop,
}

const SITES: [Site; 5] =
    [Site::ConnectCall, Site::ConnectPoll, Site::Check, Site::IsBroken, Site::ConnDrop];

/// Panics at the `nth` call (from 0) of `site`, once.
#[derive(Debug, Default)]
struct Bomb {
    site: std::sync::Mutex<Option<Site>>,
    countdown: AtomicUsize,
    fired: AtomicUsize,
}

impl Bomb {
    fn arm(&self, site: Site, nth: usize) {
        self.countdown.store(nth, SeqCst);
        *self.site.lock().unwrap() = Some(site);
    }

    fn disarm(&self) {
        *self.site.lock().unwrap() = None;
    }

    fn tick(&self, here: Site) {
        let mut site = self.site.lock().unwrap();
        if *site != Some(here) {
            return;
        }
        if self.countdown.load(SeqCst) == 0 {
            *site = None;
            drop(site);
            self.fired.fetch_add(1, SeqCst);
            panic!("injected panic in {here:?}");
        }
        self.countdown.fetch_sub(1, SeqCst);
    }
}

/// A connection whose drop may panic (after its inner connection is counted closed).
#[derive(Debug)]
struct Conn {
    inner: TestConn,
    bomb: Arc<Bomb>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Fields drop even when this panics, so the ledger still counts the close. It
        // may panic on a thread that is already unwinding too: the pool catches it.
        self.bomb.tick(Site::ConnDrop);
    }
}

#[derive(Debug, Clone)]
struct Panicky {
    inner: TestManager,
    bomb: Arc<Bomb>,
}

impl Panicky {
    fn new() -> (Self, Arc<Ledger>, Arc<Bomb>) {
        let (inner, ledger) = TestManager::new();
        let bomb = Arc::new(Bomb::default());
        (Panicky { inner, bomb: bomb.clone() }, ledger, bomb)
    }
}

impl Manager for Panicky {
    type Connection = Conn;
    type Error = TestError;

    fn connect(&self) -> impl std::future::Future<Output = Result<Conn, TestError>> + Send {
        self.bomb.tick(Site::ConnectCall);
        let (inner, bomb) = (self.inner.clone(), self.bomb.clone());
        async move {
            tokio::task::yield_now().await;
            bomb.tick(Site::ConnectPoll);
            Ok(Conn { inner: inner.connect().await?, bomb })
        }
    }

    async fn check(&self, conn: &mut Conn) -> Result<(), TestError> {
        self.bomb.tick(Site::Check);
        self.inner.check(&mut conn.inner).await
    }

    fn is_broken(&self, conn: &mut Conn) -> bool {
        self.bomb.tick(Site::IsBroken);
        self.inner.is_broken(&mut conn.inner)
    }
}

/// Counts ERROR events of the pool (its panic reports) per thread. Installed once as
/// the global subscriber: per-test scoped subscribers race with the callsite interest
/// cache when tests run in parallel threads.
struct ErrorLog;

thread_local! {
    static ERRORS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl tracing::Subscriber for ErrorLog {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() == tracing::Level::ERROR
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target().starts_with("poolside_connpool") {
            ERRORS.with(|n| n.set(n.get() + 1));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// ERROR events the pool logged on this thread so far.
fn errors_logged() -> usize {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(ErrorLog).expect("no other subscriber");
    });
    ERRORS.with(|n| n.get())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts are exact and the pool serves `max_size` checkouts at once, promptly.
async fn assert_whole(pool: &Pool<Panicky>, ledger: &Ledger, max_size: usize) {
    // Let the janitor finish whatever it started.
    tokio::time::sleep(ms(5)).await;
    let s = pool.status();
    assert_eq!(s.idle + s.in_use, s.open, "{s:?}");
    assert_eq!(s.in_use, 0, "nothing is checked out: {s:?}");
    assert_eq!(ledger.live(), s.open, "every slot is one live connection: {s:?}");
    let all = tokio::time::timeout(ms(1000), async {
        let mut held = Vec::new();
        for _ in 0..max_size {
            held.push(pool.get().await.expect("a healthy pool serves"));
        }
        held
    })
    .await
    .expect("the pool serves max_size concurrent checkouts after a panic");
    assert_eq!(pool.status().in_use, max_size);
    drop(all);
    assert_eq!(pool.status().in_use, 0);
}

/// The path that used to leak: `is_broken` panicking as a guard is dropped closed the
/// connection without freeing its slot, and the next `get` on a pool of one hung.
#[test]
fn is_broken_panicking_on_return_frees_the_slot() {
    runtime().block_on(async {
        let logged_before = errors_logged();
        let (m, ledger, bomb) = Panicky::new();
        let pool = Builder::new().max_size(1).build(m).unwrap();
        let conn = pool.get().await.unwrap();
        bomb.arm(Site::IsBroken, 0);
        drop(conn);
        assert_eq!(bomb.fired.load(SeqCst), 1);
        assert_eq!(pool.status().open, 0, "the slot is free");
        assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1), "closed and counted");
        assert_eq!(ledger.live(), 0);
        assert!(errors_logged() > logged_before, "the panic is logged");
        assert_whole(&pool, &ledger, 1).await;
    });
}

#[test]
fn a_retain_predicate_panicking_closes_only_that_connection() {
    runtime().block_on(async {
        let (m, ledger, _bomb) = Panicky::new();
        let pool = Builder::new().max_size(3).build(m).unwrap();
        assert_eq!(pool.warm(3).await.unwrap(), 3);
        let mut seen = 0;
        let closed = pool
            .retain(|_, _| {
                seen += 1;
                assert!(seen != 2, "the predicate panics on the second connection");
                true
            })
            .unwrap();
        assert_eq!((seen, closed), (3, 1));
        assert_eq!(pool.status().open, 2);
        assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
        assert_whole(&pool, &ledger, 3).await;
    });
}

#[test]
fn a_panicking_connect_fails_that_get_and_the_next_one_dials_again() {
    runtime().block_on(async {
        let (m, ledger, bomb) = Panicky::new();
        let pool = Builder::new().max_size(1).build(m).unwrap();
        for site in [Site::ConnectCall, Site::ConnectPoll] {
            bomb.arm(site, 0);
            let err = pool.get().await.unwrap_err();
            assert!(matches!(err, GetError::Panicked { during: "connect", .. }), "{err}");
            assert_eq!(pool.status().open, 0);
        }
        assert_whole(&pool, &ledger, 1).await;
    });
}

#[test]
fn a_panicking_check_discards_the_connection_and_a_fresh_dial_serves() {
    runtime().block_on(async {
        let (m, ledger, bomb) = Panicky::new();
        let pool = Builder::new().max_size(1).health_check_after(Duration::ZERO).build(m).unwrap();
        drop(pool.get().await.unwrap());
        bomb.arm(Site::Check, 0);
        let conn = pool.get().await.expect("the stale connection is replaced");
        assert_eq!(conn.inner.id, 2);
        assert_eq!(Snapshot::of(&pool).value("health_fails"), Some(1));
        drop(conn);
        assert_whole(&pool, &ledger, 1).await;
    });
}

#[test]
fn a_panicking_connect_in_the_janitor_does_not_stop_it() {
    runtime().block_on(async {
        let (m, ledger, bomb) = Panicky::new();
        bomb.arm(Site::ConnectPoll, 0);
        let pool = Builder::new().max_size(2).min_idle(2).build(m).unwrap();
        tokio::time::sleep(ms(100)).await;
        assert_eq!(bomb.fired.load(SeqCst), 1);
        assert_eq!(pool.status().idle, 2, "the janitor carried on and warmed the pool");
        assert_whole(&pool, &ledger, 2).await;
    });
}

#[test]
fn a_connection_drop_panicking_in_close_resize_or_sweep_frees_its_slot() {
    runtime().block_on(async {
        let (m, ledger, bomb) = Panicky::new();
        let pool = Builder::new().max_size(3).max_idle_time(ms(50)).build(m).unwrap();
        pool.warm(3).await.unwrap();
        bomb.arm(Site::ConnDrop, 0);
        pool.resize(1).unwrap();
        assert_eq!((pool.status().open, ledger.live()), (1, 1));
        pool.resize(3).unwrap();
        pool.warm(3).await.unwrap();
        bomb.arm(Site::ConnDrop, 1);
        tokio::time::sleep(ms(200)).await;
        assert_eq!((pool.status().open, ledger.live()), (0, 0), "the sweep closed all");
        pool.warm(2).await.unwrap();
        bomb.arm(Site::ConnDrop, 0);
        pool.close();
        assert_eq!((pool.status().open, ledger.live()), (0, 0));
        assert_eq!(bomb.fired.load(SeqCst), 3);
    });
}

#[test]
fn a_connection_drop_panicking_while_its_holder_panics_does_not_abort() {
    runtime().block_on(async {
        let (m, ledger, bomb) = Panicky::new();
        let pool = Builder::new().max_size(1).build(m).unwrap();
        let holder = {
            let (pool, bomb) = (pool.clone(), bomb.clone());
            tokio::spawn(async move {
                let _conn = pool.get().await.unwrap();
                bomb.arm(Site::ConnDrop, 0);
                panic!("the holder panics; the connection's drop panics too");
            })
        };
        assert!(holder.await.unwrap_err().is_panic());
        // The connection was dropped as the holder unwound, its panic caught.
        assert_eq!(bomb.fired.load(SeqCst), 1);
        assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
        assert_whole(&pool, &ledger, 1).await;
    });
}

/// A thread outside any runtime that panics while it holds an owned connection: the
/// connection is closed (not leaked, which would keep its server-side session open
/// until the process ends) and its slot freed, even when its own `Drop` panics too.
#[test]
fn a_connection_held_by_a_panicking_thread_outside_a_runtime_is_closed_not_leaked() {
    for drop_panics in [false, true] {
        runtime().block_on(async {
            let (m, ledger, bomb) = Panicky::new();
            let pool = Builder::new().max_size(1).build(m).unwrap();
            let conn = pool.get_owned().await.unwrap();
            if drop_panics {
                bomb.arm(Site::ConnDrop, 0);
            }
            let holder = std::thread::spawn(move || {
                let _conn = conn;
                panic!("the holder panics outside any runtime");
            });
            assert!(holder.join().is_err());
            assert_eq!(bomb.fired.load(SeqCst), usize::from(drop_panics));
            assert_eq!(ledger.live(), 0, "the connection was closed, not leaked");
            assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
            assert_whole(&pool, &ledger, 1).await;
        });
    }
}

/// Always picks the shard that panics for key 13.
struct Unlucky;

impl ShardSelector<u32> for Unlucky {
    fn select(&self, key: &u32, shards: usize) -> usize {
        assert_ne!(*key, 13, "unlucky key");
        *key as usize % shards
    }
}

#[test]
fn a_panicking_shard_selector_is_a_typed_error() {
    runtime().block_on(async {
        let (m0, ledger0, _) = Panicky::new();
        let (m1, ledger1, _) = Panicky::new();
        let shards = vec![
            Builder::new().max_size(1).build(m0).unwrap(),
            Builder::new().max_size(1).build(m1).unwrap(),
        ];
        let pool = ShardedPool::with_selector(shards, Unlucky).unwrap();
        let err = pool.get(&13).await.map(drop).unwrap_err();
        assert!(matches!(err, GetError::Panicked { during: "a shard selector", .. }), "{err}");
        drop(pool.get(&1).await.unwrap());
        assert_whole(&pool.shards()[0], &ledger0, 1).await;
        assert_whole(&pool.shards()[1], &ledger1, 1).await;
    });
}

/// One step of the random schedule.
#[derive(Debug, Clone)]
enum Op {
    Get,
    /// Return the i-th held connection (mod the count), maybe marked broken.
    Put(usize, bool),
    Warm(usize),
    Retain(bool),
    Resize(usize),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Put(i, b)),
        1 => (0usize..4).prop_map(Op::Warm),
        1 => any::<bool>().prop_map(Op::Retain),
        1 => (1usize..5).prop_map(Op::Resize),
        2 => (1u64..80).prop_map(Op::Tick),
    ]
}

fn run_case(site: Site, nth: usize, ops: Vec<Op>) {
    runtime().block_on(async {
        let logged_before = errors_logged();
        let (m, ledger, bomb) = Panicky::new();
        let max_size = 3;
        let pool = Builder::new()
            .max_size(max_size)
            .min_idle(1)
            .max_idle_time(ms(60))
            .health_check_after(ms(20))
            .janitor_interval(ms(10))
            .build(m)
            .unwrap();
        bomb.arm(site, nth);
        let retain_panics = AtomicBool::new(false);
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Get => {
                    // Bounded: a leaked slot shows up as a hang here.
                    if held.len() < pool.max_size() {
                        let got = tokio::time::timeout(ms(500), pool.get())
                            .await
                            .expect("a get hung: a slot leaked");
                        match got {
                            Ok(conn) => held.push(conn),
                            Err(GetError::Panicked { .. }) => {}
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                }
                Op::Put(i, broken) if !held.is_empty() => {
                    let n = held.len();
                    let mut conn = held.swap_remove(i % n);
                    if broken {
                        conn.mark_broken();
                    }
                    drop(conn);
                }
                // A panicking connect also starts the dial backoff, which `warm` reports.
                Op::Warm(n) => match pool.warm(n).await {
                    Ok(_) | Err(GetError::Panicked { .. } | GetError::Backoff { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                },
                Op::Retain(panic) => {
                    retain_panics.store(panic, SeqCst);
                    pool.retain(|_, _| {
                        assert!(!retain_panics.swap(false, SeqCst), "injected retain panic");
                        true
                    })
                    .unwrap();
                }
                Op::Resize(n) => pool.resize(n.max(1)).unwrap(),
                Op::Tick(t) => tokio::time::sleep(ms(t)).await,
                Op::Put(..) => {}
            }
            let s = pool.status();
            assert_eq!(s.idle + s.in_use, s.open, "{s:?}");
            assert!(s.in_use >= held.len(), "{s:?} with {} held", held.len());
        }
        drop(held);
        bomb.disarm();
        pool.resize(max_size).unwrap();
        assert_whole(&pool, &ledger, max_size).await;
        let panics = bomb.fired.load(SeqCst);
        let logged = errors_logged() - logged_before;
        assert!(logged >= panics, "every panic is logged ({panics} fired, {logged} logged)");
        pool.close();
        assert_eq!((pool.status().open, ledger.live()), (0, 0));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_panic_at_any_call_leaves_the_pool_whole(
        site in proptest::sample::select(SITES.to_vec()),
        nth in 0usize..6,
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        run_case(site, nth, ops);
    }
}
