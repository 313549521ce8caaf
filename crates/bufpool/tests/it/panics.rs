//! User code may panic anywhere: the `make` function, a `Reset` impl or reset hook, a
//! retain policy, a `size_of` function, an object's `Drop`. A panic never aborts the
//! process (also when a guard is dropped while its thread unwinds), never leaks or
//! double-drops an object, never corrupts the counters, and is logged.

use poolside_bufpool::{Pool, PoolBuilder, Reset};
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts objects made and dropped, and user-code calls, to decide which one panics.
#[derive(Default)]
struct Ledger {
    made: AtomicUsize,
    dropped: AtomicUsize,
    /// Calls of the hook under test so far.
    calls: AtomicUsize,
    /// The hook panics on this call (1-based); 0: never.
    panic_on: AtomicUsize,
}

impl Ledger {
    /// Counts a call; true when this is the call that must panic.
    fn call(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.panic_on.load(Ordering::SeqCst)
    }

    fn alive(&self) -> usize {
        self.made.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }
}

struct Obj {
    ledger: Arc<Ledger>,
    scratch: Vec<u8>,
    /// Panics when dropped, if set.
    panic_on_drop: bool,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop {
            panic!("Obj::drop panics");
        }
    }
}

fn make_obj(ledger: &Arc<Ledger>) -> Obj {
    ledger.made.fetch_add(1, Ordering::SeqCst);
    Obj { ledger: ledger.clone(), scratch: Vec::with_capacity(8), panic_on_drop: false }
}

/// Counts the ERROR events on this thread: "the panic is logged".
struct ErrorCounter(Arc<AtomicUsize>);

impl tracing::Subscriber for ErrorCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `f` with an error-counting subscriber on this thread; returns the count.
fn errors_logged(f: impl FnOnce()) -> usize {
    let count = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(ErrorCounter(count.clone()), f);
    count.load(Ordering::SeqCst)
}

/// The panics these tests cause on purpose; any other panic is reported as usual.
const EXPECTED: [&str; 13] = [
    "reset hook panics",
    "retain panics",
    "make panics",
    "Fragile::reset panics",
    "Obj::drop panics",
    "size_of panics",
    "the user's code panics while holding a guard",
    "user panic",
    "make",
    "reset",
    "retain",
    "size_of",
    "user",
];

fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !EXPECTED.contains(&message) {
                default(info);
            }
        }));
    });
}

#[test]
fn a_reset_hook_panicking_in_a_guard_dropped_while_unwinding_does_not_abort() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    ledger.panic_on.store(1, Ordering::SeqCst);
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(
        move || make_obj(&l),
        |o: &mut Obj| {
            if o.ledger.call() {
                panic!("reset hook panics");
            }
            o.scratch.clear();
        },
    )
    .build()
    .unwrap();
    let logged = errors_logged(|| {
        let user = catch_unwind(AssertUnwindSafe(|| {
            let _guard = pool.get();
            panic!("the user's code panics while holding a guard");
        }));
        let payload = user.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the user's code panics while holding a guard")
        );
    });
    assert_eq!(logged, 1, "the hook's panic is logged");
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.returns, stats.dropped_panicked), (1, 0, 1));
    assert_eq!(ledger.alive(), 0, "the object the hook panicked on was dropped");
    // The pool serves on.
    drop(pool.get());
    assert_eq!(pool.stats().returns, 1);
}

#[test]
fn a_panicking_retain_policy_drops_the_object_and_counts_it() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    ledger.panic_on.store(2, Ordering::SeqCst);
    let l = ledger.clone();
    let refusing = PoolBuilder::with_reset(move || make_obj(&l), |o: &mut Obj| o.scratch.clear())
        .retain(|o| !o.ledger.call())
        .build()
        .unwrap();
    let logged = errors_logged(|| {
        for _ in 0..3 {
            drop(refusing.get());
        }
    });
    // `call` returned true on the second return: retain said "no"; no panic there.
    assert_eq!(logged, 0);
    assert_eq!(refusing.stats().rejected, 1);
    drop(refusing);
    assert_eq!(ledger.alive(), 0);
    let retain_panics = Arc::new(Ledger::default());
    retain_panics.panic_on.store(1, Ordering::SeqCst);
    let r = retain_panics.clone();
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(move || make_obj(&l), |o: &mut Obj| o.scratch.clear())
        .retain(move |_| if r.call() { panic!("retain panics") } else { true })
        .build()
        .unwrap();
    let logged = errors_logged(|| {
        for _ in 0..3 {
            drop(pool.get());
        }
    });
    assert_eq!(logged, 1);
    let stats = pool.stats();
    assert_eq!((stats.hits + stats.misses, stats.returns, stats.dropped_panicked), (3, 2, 1));
    drop(pool);
    assert_eq!(ledger.alive(), 0, "every object dropped exactly once");
}

#[test]
fn a_panicking_make_function_reaches_the_caller_and_leaves_the_pool_intact() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    ledger.panic_on.store(2, Ordering::SeqCst);
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(
        move || {
            if l.call() {
                panic!("make panics");
            }
            make_obj(&l)
        },
        |o: &mut Obj| o.scratch.clear(),
    )
    .build()
    .unwrap();
    let first = pool.get(); // call 1 makes
    let logged = errors_logged(|| {
        let second = catch_unwind(AssertUnwindSafe(|| pool.get())); // call 2 panics
        assert!(second.is_err(), "get has no object to hand out: the panic reaches the caller");
    });
    assert_eq!(logged, 1);
    drop(first);
    assert_eq!(pool.stats().misses, 1, "the failed make is not a miss");
    drop(pool.get()); // reuses the first object
    assert_eq!((pool.stats().hits, pool.stats().misses), (1, 1));
    drop(pool);
    assert_eq!(ledger.alive(), 0);
}

/// A `Reset` impl that panics when told to.
struct Fragile {
    data: Vec<u8>,
    explode: bool,
}

impl Reset for Fragile {
    fn reset(&mut self) {
        if self.explode {
            panic!("Fragile::reset panics");
        }
        self.data.clear();
    }
}

#[test]
fn a_panicking_reset_impl_is_caught_even_while_unwinding() {
    quiet_panics();
    let pool = Pool::new(|| Fragile { data: Vec::new(), explode: false });
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = pool.get();
        guard.explode = true;
        panic!("user panic");
    }));
    assert!(result.is_err());
    assert_eq!(pool.stats().dropped_panicked, 1);
    let mut ok = pool.get();
    ok.data.push(1);
    drop(ok);
    assert!(pool.get().data.is_empty());
}

#[test]
fn objects_whose_drop_panics_are_dropped_without_aborting_or_leaking_the_rest() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(move || make_obj(&l), |o: &mut Obj| o.scratch.clear())
        .retain(|o| o.scratch.capacity() < 1000)
        .max_retained(2)
        .local_capacity(0)
        .build()
        .unwrap();
    let logged = errors_logged(|| {
        // Four back at once into a store of two: two dropped for a full store.
        let mut held: Vec<_> = (0..4).map(|_| pool.get()).collect();
        for guard in &mut held {
            guard.panic_on_drop = true;
        }
        drop(held);
        // Rejected by the retain policy, then dropped: panics in Drop.
        let mut big = pool.get();
        big.scratch.reserve(4096);
        drop(big);
        // Trim drops the rest.
        pool.trim();
    });
    assert_eq!(ledger.alive(), 0, "every object dropped, panicking or not");
    assert_eq!(ledger.made.load(Ordering::SeqCst), 4);
    assert_eq!(logged, 4, "each panicking drop logged once");
    let stats = pool.stats();
    assert_eq!((stats.returns, stats.dropped_full, stats.rejected), (4, 2, 1));
}

#[test]
fn a_guard_dropped_in_unwinding_whose_object_drop_panics_does_not_abort() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(move || make_obj(&l), |o: &mut Obj| o.scratch.clear())
        .retain(|_| false) // every return is dropped
        .build()
        .unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = pool.get();
        guard.panic_on_drop = true;
        panic!("user panic");
    }));
    assert!(result.is_err());
    assert_eq!(ledger.alive(), 0);
}

#[test]
fn a_panicking_size_of_at_thread_exit_neither_aborts_nor_loses_objects() {
    quiet_panics();
    let ledger = Arc::new(Ledger::default());
    let l = ledger.clone();
    let pool = PoolBuilder::with_reset(move || make_obj(&l), |o: &mut Obj| o.scratch.clear())
        .size_of(|_| panic!("size_of panics"))
        .build()
        .unwrap();
    let in_thread = pool.clone();
    std::thread::spawn(move || {
        let held: Vec<_> = (0..3).map(|_| in_thread.get()).collect();
        drop(held); // cached by this thread, handed to the shared store at exit
    })
    .join()
    .expect("the thread-exit path never panics");
    assert_eq!(pool.shared_len(), 3, "kept, with a size of 0");
    assert_eq!(pool.stats().retained_shared_bytes, 0);
    drop(pool);
    assert_eq!(ledger.alive(), 0);
}

/// Which user function panics in a generated case.
#[derive(Debug, Clone, Copy)]
enum Hook {
    Make,
    Reset,
    Retain,
    SizeOf,
    Drop,
}

#[derive(Debug, Clone)]
enum Op {
    Get,
    Release(usize),
    Trim,
    /// A thread borrows and returns `n` objects, then exits.
    Thread(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        4 => (0usize..6).prop_map(Op::Release),
        1 => Just(Op::Trim),
        1 => (1usize..4).prop_map(Op::Thread),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Proptest picks the user function that panics and on which of its calls; after
    /// every operation the counters stay exact and every object is accounted for.
    #[test]
    fn panics_in_any_hook_at_any_call_keep_the_counts_exact(
        hook in prop_oneof![Just(Hook::Make), Just(Hook::Reset), Just(Hook::Retain), Just(Hook::SizeOf), Just(Hook::Drop)],
        panic_on in 1usize..12,
        unwinding in any::<bool>(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        quiet_panics();
        let ledger = Arc::new(Ledger::default());
        ledger.panic_on.store(panic_on, Ordering::SeqCst);
        let (l1, l2, l3, l4) = (ledger.clone(), ledger.clone(), ledger.clone(), ledger.clone());
        let pool = PoolBuilder::with_reset(
            move || {
                if matches!(hook, Hook::Make) && l1.call() {
                    panic!("make");
                }
                let mut o = make_obj(&l1);
                // The drop hook: the object whose drop is the chosen call panics.
                o.panic_on_drop = matches!(hook, Hook::Drop) && l1.call();
                o
            },
            move |o: &mut Obj| {
                if matches!(hook, Hook::Reset) && l2.call() {
                    panic!("reset");
                }
                o.scratch.clear();
            },
        )
        .retain(move |_| {
            if matches!(hook, Hook::Retain) && l3.call() {
                panic!("retain");
            }
            true
        })
        .size_of(move |_| {
            if matches!(hook, Hook::SizeOf) && l4.call() {
                panic!("size_of");
            }
            8
        })
        .max_retained(3)
        .local_capacity(2)
        .build()
        .unwrap();

        let mut held = Vec::new();
        let mut gets = 0u64; // gets that returned an object
        let mut releases = 0u64;
        for op in ops {
            match op {
                Op::Get => {
                    if let Ok(guard) = catch_unwind(AssertUnwindSafe(|| pool.get())) {
                        held.push(guard);
                        gets += 1;
                    }
                }
                Op::Release(i) if !held.is_empty() => {
                    let guard = held.remove(i % held.len());
                    releases += 1;
                    if unwinding {
                        // Dropped while this thread unwinds from the user's panic.
                        let r = catch_unwind(AssertUnwindSafe(move || {
                            let _guard = guard;
                            panic!("user");
                        }));
                        prop_assert!(r.is_err());
                    } else {
                        drop(guard);
                    }
                }
                Op::Release(_) => {}
                Op::Trim => { pool.trim(); }
                Op::Thread(n) => {
                    let p = pool.clone();
                    let got = std::thread::spawn(move || {
                        let mut got = 0u64;
                        let mut mine = Vec::new();
                        for _ in 0..n {
                            if let Ok(g) = catch_unwind(AssertUnwindSafe(|| p.get())) {
                                mine.push(g);
                                got += 1;
                            }
                        }
                        drop(mine);
                        got
                    })
                    .join()
                    .expect("no panic escapes the pool");
                    gets += got;
                    releases += got;
                }
            }
            let s = pool.stats();
            prop_assert_eq!(s.hits + s.misses, gets, "every handed-out object counted once");
            prop_assert_eq!(s.returns + s.rejected + s.dropped_panicked, releases);
            prop_assert!(s.dropped_full <= s.returns);
            prop_assert!(s.retained_shared <= 3);
            prop_assert!(s.retained_shared_bytes <= 8 * s.retained_shared, "bytes: {:?}", s);
            prop_assert!(ledger.alive() >= held.len(), "a held object was dropped");
        }
        drop(held);
        drop(pool);
        prop_assert_eq!(ledger.alive(), 0, "every object made was dropped exactly once");
    }
}
