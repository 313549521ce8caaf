//! The test suites of peer crates, `object-pool` (its `src/lib.rs` and
//! `src/experimental.rs` tests), `lifeguard` (`tests/lib.rs`) and `opool`
//! (`tests/concurrent.rs`, `tests/thread_local.rs`), rewritten against this API: one
//! test per behaviour, each naming the peer tests it stands for.
//!
//! # Design differences the translations follow
//!
//! * **The pool resets every object it takes back** (`Reset` or the builder's hook),
//!   where `object-pool` hands objects back as they were returned. Where a peer test
//!   reads the previous borrower's data, ours checks that the same allocation comes
//!   back, cleared; or it uses a no-op reset hook (as `opool`'s default allocator has),
//!   with which state does survive the round trip.
//! * **`get` never fails**: an empty pool makes a new object with its `make` function.
//!   There is no `try_get`/`try_pull` that answers `None`; the peer tests' "pool
//!   empty" cases check that a new object is made (a miss) instead.
//! * **No prefilling constructor** (`object-pool`'s `Pool::new(n, ..)`, `lifeguard`'s
//!   `with_size`/`StartingSize`, `opool`'s `new_prefilled`): a pool starts empty, and
//!   `attach` adds ready-made objects up front.
//! * **`attach` files the object at once** (reset, then kept or dropped like any
//!   returned object); it returns no guard, unlike `lifeguard`'s `attach`, and it
//!   cannot wrap a foreign object in a guard, unlike `object-pool`'s `Reusable::new`.
//! * **`shared_len()` counts the shared store only**, not the objects a thread keeps
//!   in its own cache. The peers' `len()`/`size()` count everything; tests that check
//!   those counts build the pool with `local_capacity(0)`, where the shared store is
//!   the whole pool.
//! * **An owned guard holds the pool**: the objects of a pool whose `Pool` handles
//!   are all gone live until its last owned guard returns.
//! * `object-pool`'s `mem::forget` of a guard (which leaks its object) is `detach`
//!   here: the safe way to keep an object out of the pool.
//!
//! # Peer tests not translated
//!
//! * `lifeguard` `test_as_ref`, `test_as_ref_rc`, `test_as_mut`, `test_as_mut_rc`:
//!   guards implement `Deref`/`DerefMut`, not `AsRef`/`AsMut`.
//! * `lifeguard` `test_clone`, `test_rc_clone`: guards are not `Clone`.
//! * `lifeguard` `new_from`/`new_rc_from` (`InitializeWith`): no initialize-on-get; the
//!   tests that use it only for setup are translated with the data written after `get`.
//! * `lifeguard` `test_builder`'s `StartingSize` and `max_size()`: no prefill and no
//!   getter for the setting; the cap it sets is checked by its effect instead.
//! * `opool` `test_try_get`, `test_try_get_rc`: no `try_get` (see above).
//! * `opool` `tests/thread_local.rs` (`LocalPool`, a single-thread pool that is not
//!   `Send`): no such type; every `Pool` has a per-thread cache instead, and the
//!   behaviours of that file are those of `tests/concurrent.rs`, translated here.
//! * `object-pool` experimental `size_check`: checks the free-list bitset's layout,
//!   `capacity()` and building a pool from an iterator, none of which we have.

use poolside_bufpool::{BufPool, Pool, PoolBuilder};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A pool whose reset does nothing (`opool`'s default), counting calls of `make`.
fn keeping_pool<T: Send + 'static>(
    make: impl Fn() -> T + Send + Sync + 'static,
    made: &Arc<AtomicUsize>,
    local_capacity: usize,
) -> Pool<T> {
    let made = made.clone();
    PoolBuilder::with_reset(
        move || {
            made.fetch_add(1, Ordering::SeqCst);
            make()
        },
        |_| {},
    )
    .local_capacity(local_capacity)
    .build()
    .unwrap()
}

/// An object that counts its own drops in a shared table, by index.
struct Numbered {
    index: usize,
    drops: Arc<Mutex<Vec<usize>>>,
}

impl Drop for Numbered {
    fn drop(&mut self) {
        self.drops.lock().unwrap()[self.index] += 1;
    }
}

/// A pool of `Numbered` objects (indices in the order made, fewer than `n`) and its
/// table of drops.
fn numbered_pool(n: usize) -> (Pool<Numbered>, Arc<Mutex<Vec<usize>>>) {
    let drops = Arc::new(Mutex::new(vec![0; n]));
    let next = AtomicUsize::new(0);
    let table = drops.clone();
    let pool = PoolBuilder::with_reset(
        move || Numbered { index: next.fetch_add(1, Ordering::SeqCst), drops: table.clone() },
        |_| {},
    )
    .build()
    .unwrap();
    (pool, drops)
}

/// The indices of the objects dropped so far, each checked to be dropped only once.
fn dropped_indices(table: &Mutex<Vec<usize>>) -> Vec<usize> {
    let table = table.lock().unwrap();
    assert!(table.iter().all(|&d| d <= 1), "an object was dropped twice: {table:?}");
    table.iter().enumerate().filter(|(_, d)| **d == 1).map(|(i, _)| i).collect()
}

// object-pool: detach_then_attach, detach
#[test]
fn a_detached_object_attached_back_is_handed_out_again_reset() {
    let pool: Pool<Vec<u32>> = Pool::new(|| Vec::with_capacity(8));
    let mut guard = pool.get();
    guard.push(1);
    let object = guard.detach();
    assert_eq!(object, [1]);
    let allocation = object.as_ptr();
    pool.attach(object);
    let again = pool.get();
    assert_eq!(again.as_ptr(), allocation, "the attached object itself is handed out");
    assert!(again.is_empty(), "reset on attach (object-pool would hand out [1])");
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.hits, stats.returns), (1, 1, 1));
}

// object-pool: detach_then_attach (for byte buffers)
#[test]
fn a_detached_buffer_attached_back_is_reused_by_its_class() {
    let pool = BufPool::builder().local_capacity(0).build().unwrap();
    let mut buf = pool.get(100);
    buf.extend_from_slice(b"payload");
    let owned = buf.detach();
    assert_eq!(owned, b"payload");
    assert_eq!(pool.class_stats()[0].1.returns, 0, "a detached buffer is not returned");
    let allocation = owned.as_ptr();
    pool.attach(owned);
    assert_eq!(pool.class_stats()[0].1.retained_shared, 1, "filed with the 4 KiB class");
    let again = pool.get(100);
    assert_eq!(again.as_ptr(), allocation);
    assert!(again.is_empty());
    assert_eq!(pool.class_stats()[0].1.hits, 1);
}

// object-pool: pull
#[test]
fn a_get_on_an_empty_pool_makes_an_object_and_both_come_back() {
    let made = Arc::new(AtomicUsize::new(0));
    let pool = keeping_pool(Vec::<u8>::new, &made, 0);
    pool.attach(Vec::new()); // a pool of one
    let first = pool.get();
    assert_eq!(made.load(Ordering::SeqCst), 0, "the attached object served the first get");
    assert_eq!(pool.shared_len(), 0);
    let second = pool.get(); // object-pool's try_pull answers None here; pull falls back
    assert_eq!(made.load(Ordering::SeqCst), 1, "an empty pool makes a new object");
    drop(first);
    drop(second);
    assert_eq!(pool.shared_len(), 2, "the made object is kept too: the pool grew");
    let stats = pool.stats();
    assert_eq!((stats.hits, stats.misses, stats.returns), (1, 1, 3), "attach counts as a return");
}

// object-pool: e2e
#[test]
fn objects_return_to_the_thread_cache_and_come_back_last_in_first_out() {
    let pool: Pool<Vec<usize>> =
        Pool::builder(|| Vec::with_capacity(4)).local_capacity(10).build().unwrap();
    let mut held = Vec::new();
    for i in 0..10 {
        let mut object = pool.get();
        object.push(i);
        held.push(object);
    }
    let allocations: Vec<*const usize> = held.iter().map(|o| o.as_ptr()).collect();
    // All ten are out: object-pool's try_pull answers None; `get` makes an eleventh.
    let extra = pool.get().detach();
    assert!(extra.is_empty());
    assert_eq!(pool.stats().misses, 11);
    drop(held); // returned in order 0..10: the thread's stack has 9 on top
    let mut again = Vec::new();
    for i in (0..10).rev() {
        let object = pool.get();
        assert_eq!(object.as_ptr(), allocations[i], "object {i} comes back in LIFO order");
        assert!(object.is_empty(), "reset (object-pool would hand out [{i}])");
        again.push(object);
    }
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.hits, stats.returns), (11, 10, 10));
}

// object-pool: experimental::full_and_partial_drop
#[test]
fn dropping_the_pool_drops_the_objects_it_holds_and_no_detached_one() {
    const N: usize = 64;
    // Full: every object is in the pool (in this thread's cache and the shared store).
    let (pool, dropped) = numbered_pool(N);
    drop((0..N).map(|_| pool.get()).collect::<Vec<_>>());
    assert!(dropped_indices(&dropped).is_empty());
    drop(pool);
    assert_eq!(dropped_indices(&dropped), (0..N).collect::<Vec<_>>());

    // Partial: half are detached first (object-pool forgets their guards).
    let (pool, dropped) = numbered_pool(N);
    drop((0..N).map(|_| pool.get()).collect::<Vec<_>>());
    let detached: Vec<Numbered> = (0..N / 2).map(|_| pool.get().detach()).collect();
    let mut kept: Vec<usize> = detached.iter().map(|o| o.index).collect();
    kept.sort_unstable();
    kept.dedup();
    assert_eq!(kept.len(), N / 2, "each detached object is a different one");
    drop(pool);
    let expected: Vec<usize> = (0..N).filter(|i| !kept.contains(i)).collect();
    assert_eq!(dropped_indices(&dropped), expected, "exactly the objects left in the pool");
    drop(detached);
    assert_eq!(dropped_indices(&dropped).len(), N, "the detached ones are the caller's to drop");
}

// object-pool: experimental::full_and_partial_drop (with the objects out on owned guards)
#[test]
fn objects_out_on_owned_guards_keep_the_pool_until_the_last_comes_back() {
    const N: usize = 5;
    let (pool, dropped) = numbered_pool(N);
    let mut out: Vec<_> = (0..N).map(|_| pool.get_owned()).collect();
    let last = out.pop().unwrap();
    drop(out); // four back in the pool, in this thread's cache
    drop(pool); // the last `Pool` handle: the owned guard still holds the pool
    assert!(dropped_indices(&dropped).is_empty(), "nothing freed while a guard is out");
    std::thread::spawn(move || drop(last)).join().unwrap(); // the last handle of all
    assert_eq!(dropped_indices(&dropped), [N - 1], "the returning thread freed its object");
    // This thread frees what it cached for the pool at its next operation on any pool.
    let other: Pool<String> = Pool::new(String::new);
    drop(other.get());
    assert_eq!(dropped_indices(&dropped), (0..N).collect::<Vec<_>>());

    // Detaching from the guard that holds the pool's last handle keeps the object.
    let (pool, dropped) = numbered_pool(2);
    let guard = pool.get_owned();
    drop(pool.get()); // one more object, back in the pool
    drop(pool);
    let kept = guard.detach(); // the pool goes with the guard
    assert_eq!(dropped_indices(&dropped), [1], "the pool's object went with the pool");
    assert_eq!(kept.index, 0);
    drop(kept);
    assert_eq!(dropped_indices(&dropped), [0, 1]);
}

// object-pool: experimental::pull_set_return
#[test]
fn with_a_no_op_reset_each_objects_state_survives_the_round_trip() {
    const N: usize = 100;
    let made = Arc::new(AtomicUsize::new(0));
    let next = AtomicUsize::new(0);
    let pool = keeping_pool(move || next.fetch_add(1, Ordering::SeqCst), &made, 8);
    let mut held: Vec<_> = (0..N).map(|_| pool.get()).collect();
    let mut first: Vec<usize> = held.iter().map(|o| **o).collect();
    first.sort_unstable();
    assert_eq!(first, (0..N).collect::<Vec<_>>(), "each object as made");
    for object in &mut held {
        **object += 1000;
    }
    drop(held);
    let again: Vec<_> = (0..N).map(|_| pool.get()).collect();
    let mut values: Vec<usize> = again.iter().map(|o| **o).collect();
    values.sort_unstable();
    assert_eq!(values, (1000..1000 + N).collect::<Vec<_>>(), "every write came back");
    assert_eq!(made.load(Ordering::SeqCst), N, "the second round made nothing");
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.hits), (N as u64, N as u64));
}

// object-pool: experimental loom_tests::concurrent_pull_mutate
#[test]
fn threads_sharing_a_pool_hold_each_object_alone_and_lose_no_write() {
    const THREADS: usize = 2;
    const ROUNDS: u64 = 500;
    for local_capacity in [0, 8] {
        let made = Arc::new(AtomicUsize::new(0));
        let pool = keeping_pool(|| 0u64, &made, local_capacity);
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let pool = pool.clone();
                // Joined, not scoped: a joined thread's cache is in the shared store.
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let mut object = pool.get();
                        let seen = *object;
                        std::thread::yield_now();
                        *object = seen + 1; // lost if another thread held it meanwhile
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        let made = made.load(Ordering::SeqCst);
        assert!((1..=THREADS).contains(&made), "local {local_capacity}: made {made}");
        assert_eq!(pool.shared_len(), made, "local {local_capacity}: every object came back");
        let all: Vec<_> = (0..made).map(|_| pool.get()).collect();
        let writes: u64 = all.iter().map(|o| **o).sum();
        assert_eq!(writes, THREADS as u64 * ROUNDS, "local {local_capacity}: a write was lost");
        let stats = pool.stats();
        assert_eq!(stats.misses, made as u64, "local {local_capacity}");
        assert_eq!(stats.hits + stats.misses, THREADS as u64 * ROUNDS + made as u64);
        assert_eq!(stats.returns, THREADS as u64 * ROUNDS, "local {local_capacity}");
    }
}

// lifeguard: test_deref, test_deref_mut; opool: test_new, test_get (concurrent.rs)
#[test]
fn a_guard_derefs_to_the_object() {
    let made = Arc::new(AtomicUsize::new(0));
    let boxes = keeping_pool(|| Box::new(10usize), &made, 8);
    assert_eq!(**boxes.get(), 10, "made by the pool's make function");
    assert_eq!(made.load(Ordering::SeqCst), 1);

    let strings: Pool<String> = Pool::new(String::new);
    let mut s = strings.get();
    s.push_str("cat");
    assert_eq!(*s, "cat");
    s.push_str("s love eating mice");
    assert_eq!(*s, "cats love eating mice");
    assert_eq!(s.len(), 21, "methods of the object through the guard");
}

// lifeguard: test_deref_rc, test_deref_mut_rc; opool: test_get_rc (concurrent.rs)
#[test]
fn an_owned_guard_derefs_to_the_object() {
    let made = Arc::new(AtomicUsize::new(0));
    let boxes = keeping_pool(|| Box::new(10usize), &made, 8);
    assert_eq!(**boxes.get_owned(), 10);
    assert_eq!(made.load(Ordering::SeqCst), 1);

    let strings: Pool<String> = Pool::new(String::new);
    let mut s = strings.get_owned();
    s.push_str("cat");
    assert_eq!(*s, "cat");
    s.push_str("s love eating mice");
    assert_eq!(*s, "cats love eating mice");
}

// opool: test_new_prefilled, test_get (concurrent.rs)
#[test]
fn objects_attached_up_front_are_handed_out_without_making_any() {
    let made = Arc::new(AtomicUsize::new(0));
    let pool = keeping_pool(|| Box::new(0usize), &made, 0);
    for _ in 0..10 {
        pool.attach(Box::new(10));
    }
    assert_eq!(pool.shared_len(), 10);
    let guards: Vec<_> = (0..10).map(|_| pool.get()).collect();
    assert!(guards.iter().all(|g| ***g == 10));
    assert_eq!(made.load(Ordering::SeqCst), 0, "make was never called");
    assert_eq!((pool.stats().hits, pool.stats().misses), (10, 0));
}

// lifeguard: test_recycle, test_recycle_rc
#[test]
fn a_borrowed_object_leaves_the_pool_and_its_return_puts_it_back() {
    let pool: Pool<String> = Pool::builder(String::new).local_capacity(0).build().unwrap();
    pool.attach(String::new());
    assert_eq!(pool.shared_len(), 1);
    {
        let _s = pool.get();
        assert_eq!(pool.shared_len(), 0);
    }
    assert_eq!(pool.shared_len(), 1);
    {
        let _s = pool.get_owned();
        assert_eq!(pool.shared_len(), 0);
    }
    assert_eq!(pool.shared_len(), 1);
    assert_eq!((pool.stats().hits, pool.stats().misses), (2, 0));

    // With a thread cache, a return stays in this thread's cache: not in
    // `shared_len`, yet the next get reuses it.
    let cached: Pool<String> = Pool::new(String::new);
    drop(cached.get());
    assert_eq!(cached.shared_len(), 0);
    drop(cached.get_owned());
    assert_eq!((cached.stats().misses, cached.stats().hits), (1, 1));
}

// lifeguard: test_recycle (for byte buffers)
#[test]
fn a_borrowed_buffer_leaves_its_class_and_its_return_puts_it_back() {
    let pool = BufPool::builder().local_capacity(0).build().unwrap();
    drop(pool.get(10));
    let retained = |pool: &BufPool| pool.class_stats()[0].1.retained_shared;
    assert_eq!(retained(&pool), 1);
    {
        let _buf = pool.get(10);
        assert_eq!(retained(&pool), 0);
    }
    assert_eq!(retained(&pool), 1);
    let stats = pool.class_stats()[0].1;
    assert_eq!((stats.misses, stats.hits, stats.returns), (1, 1, 2));
}

// lifeguard: test_size_cap
#[test]
fn returns_beyond_max_retained_are_dropped() {
    let pool: Pool<String> =
        Pool::builder(String::new).max_retained(1).local_capacity(0).build().unwrap();
    pool.attach(String::new());
    {
        let _dog = pool.get();
        let _cat = pool.get(); // made: the pool was empty
        assert_eq!(pool.shared_len(), 0);
    }
    assert_eq!(pool.shared_len(), 1, "only one kept");
    assert_eq!(pool.stats().dropped_full, 1);
    pool.attach(String::new()); // attach obeys the cap too
    assert_eq!(pool.shared_len(), 1);
    assert_eq!(pool.stats().dropped_full, 2);
}

// lifeguard: test_size_cap (for byte buffers)
#[test]
fn buffers_beyond_max_retained_per_class_are_dropped() {
    let pool = BufPool::builder().max_retained_per_class(1).local_capacity(0).build().unwrap();
    {
        let _a = pool.get(10);
        let _b = pool.get(10);
    }
    let stats = pool.class_stats()[0].1;
    assert_eq!((stats.retained_shared, stats.dropped_full, stats.returns), (1, 1, 2));
}

// lifeguard: test_detach, test_detach_rc
#[test]
fn a_detached_object_never_comes_back() {
    let pool: Pool<String> = Pool::builder(String::new).local_capacity(0).build().unwrap();
    pool.attach(String::new());
    {
        let _s: String = pool.get().detach();
        assert_eq!(pool.shared_len(), 0);
    }
    assert_eq!(pool.shared_len(), 0);
    pool.attach(String::new());
    {
        let _s: String = pool.get_owned().detach();
        assert_eq!(pool.shared_len(), 0);
    }
    assert_eq!(pool.shared_len(), 0);
    assert_eq!(pool.stats().returns, 2, "the two attaches, no return");
}

// lifeguard: test_attach, test_attach_rc
#[test]
fn attach_puts_a_detached_object_back() {
    let pool: Pool<String> = Pool::builder(String::new).local_capacity(0).build().unwrap();
    pool.attach(String::new());
    let s = pool.get().detach();
    assert_eq!(pool.shared_len(), 0);
    pool.attach(s);
    assert_eq!(pool.shared_len(), 1);
    let s = pool.get_owned().detach();
    assert_eq!(pool.shared_len(), 0);
    pool.attach(s);
    assert_eq!(pool.shared_len(), 1);
    assert_eq!(pool.stats().misses, 0, "the same object throughout");
}

// lifeguard: test_builder
#[test]
fn the_builders_make_function_and_cap_take_effect() {
    const CAP: usize = 1_024;
    let pool = Pool::builder(|| String::with_capacity(16_000))
        .max_retained(CAP)
        .local_capacity(0)
        .build()
        .unwrap();
    assert!(pool.get().capacity() >= 16_000);
    drop((0..=CAP).map(|_| pool.get()).collect::<Vec<_>>());
    assert_eq!(pool.shared_len(), CAP);
    assert_eq!(pool.stats().dropped_full, 1);
}

// lifeguard: test_new_from_iter
#[test]
fn a_reused_object_is_cleared_before_it_is_filled_again() {
    let pool: Pool<Vec<i32>> = Pool::new(Vec::new);
    {
        let mut four = pool.get();
        four.extend(0..4);
        assert_eq!(four.len(), 4);
    }
    {
        let mut three = pool.get();
        three.extend(0..3);
        assert_eq!(*three, [0, 1, 2], "not appended to the previous borrower's four");
    }
    assert_eq!((pool.stats().misses, pool.stats().hits), (1, 1));
}

// opool: test_get_into_inner, test_get_rc_into_inner (concurrent.rs)
#[test]
fn detach_hands_over_the_pooled_object_itself() {
    let made = Arc::new(AtomicUsize::new(0));
    let pool = keeping_pool(|| Box::new(10usize), &made, 8);
    let pooled = Box::new(10usize);
    let allocation: *const usize = &*pooled;
    pool.attach(pooled);
    let inner: Box<usize> = pool.get().detach();
    assert_eq!(*inner, 10);
    assert!(std::ptr::eq(&*inner, allocation), "the same box, not a copy");
    let owned: Box<usize> = pool.get_owned().detach();
    assert_eq!(*owned, 10);
    assert_eq!(made.load(Ordering::SeqCst), 1, "the pool was empty for the second");
    assert_eq!(pool.stats().returns, 1, "the attach only");
}
