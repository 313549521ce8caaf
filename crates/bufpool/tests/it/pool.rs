//! Pool<T>: clean objects, caps, detach/attach, thread exit, trim, idle release, stats.

use poolside_bufpool::{BuildError, Pool, PoolBuilder};
use poolside_core::Snapshot;
use std::time::Duration;

#[test]
fn the_previous_borrowers_bytes_are_never_observed() {
    let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(256));
    for round in 0..100u8 {
        let mut buf = pool.get();
        assert!(buf.is_empty(), "round {round}: the buffer was handed out dirty");
        buf.extend_from_slice(&[round; 200]);
    }
    let stats = pool.stats();
    assert_eq!(stats.misses, 1, "one allocation served every round");
    assert_eq!(stats.hits, 99);
    assert_eq!(stats.returns, 100);
}

#[test]
fn a_capacity_cap_drops_oversized_buffers_instead_of_pinning_them() {
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(1024))
        .retain(|v| v.capacity() <= 64 * 1024)
        .build()
        .unwrap();
    let mut big = pool.get();
    big.reserve(1024 * 1024);
    drop(big);
    assert_eq!(pool.stats().rejected, 1);
    assert!(pool.get().capacity() < 64 * 1024, "the 1 MiB buffer was not pooled");
    assert_eq!(pool.stats().misses, 2);
}

#[test]
fn detach_keeps_the_object_and_attach_adds_one() {
    let pool: Pool<String> = Pool::new(String::new);
    let mut s = pool.get();
    s.push_str("mine now");
    let owned: String = s.detach();
    assert_eq!(owned, "mine now");
    assert_eq!(pool.stats().returns, 0, "a detached object never comes back");

    pool.attach(String::from("made elsewhere, dirty"));
    let s = pool.get();
    assert!(s.is_empty(), "attached objects are reset too");
    assert!(s.capacity() >= "made elsewhere, dirty".len());
}

#[test]
fn owned_guards_move_across_threads_and_come_back() {
    let pool: Pool<Vec<u32>> = Pool::new(Vec::new);
    let mut guard = pool.get_owned();
    guard.push(1);
    let handle = std::thread::spawn(move || {
        guard.push(2);
        guard.len()
    });
    assert_eq!(handle.join().unwrap(), 2);
    // Returned on the other thread; that thread's exit moved it to the shared store.
    assert_eq!(pool.shared_len(), 1);
    assert!(pool.get().is_empty());
}

#[test]
fn a_exiting_thread_hands_its_cached_objects_to_the_shared_store() {
    let pool: Pool<Vec<u8>> =
        Pool::builder(|| Vec::with_capacity(64)).local_capacity(8).build().unwrap();
    let worker_pool = pool.clone();
    std::thread::spawn(move || {
        let guards: Vec<_> = (0..5).map(|_| worker_pool.get()).collect();
        drop(guards); // all five land in this thread's cache
        assert_eq!(worker_pool.shared_len(), 0);
    })
    .join()
    .unwrap();
    assert_eq!(pool.shared_len(), 5, "thread exit moved its cache to the shared store");
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.returns), (5, 5), "the exited thread's counters are kept");
}

#[test]
fn objects_of_a_dropped_pool_are_freed_by_threads_that_cached_them() {
    let pool: Pool<Vec<u8>> = Pool::new(Vec::new);
    drop(pool.get());
    drop(pool);
    // The stale slot is reclaimed by the next pool on this thread without panicking.
    let other: Pool<Vec<u8>> = Pool::new(Vec::new);
    drop(other.get());
    assert_eq!(other.stats().returns, 1);
}

#[test]
fn max_retained_bounds_the_shared_store() {
    let pool: Pool<Vec<u8>> =
        Pool::builder(Vec::new).max_retained(3).local_capacity(0).build().unwrap();
    let guards: Vec<_> = (0..10).map(|_| pool.get()).collect();
    drop(guards);
    assert_eq!(pool.shared_len(), 3);
    assert_eq!(pool.stats().dropped_full, 7);
}

#[test]
fn trim_frees_everything_retained() {
    let pool: Pool<Vec<u8>> = Pool::builder(Vec::new).local_capacity(2).build().unwrap();
    let guards: Vec<_> = (0..6).map(|_| pool.get()).collect();
    drop(guards);
    assert_eq!(pool.shared_len(), 4);
    assert_eq!(pool.trim(), 6);
    assert_eq!(pool.shared_len(), 0);
    assert_eq!(pool.stats().released_idle, 6);
    pool.get();
    assert_eq!(pool.stats().misses, 7, "nothing was left to reuse");
}

#[test]
fn idle_objects_are_released_after_a_full_interval_unused() {
    let pool: Pool<Vec<u8>> = Pool::builder(Vec::new)
        .local_capacity(0)
        .idle_release(Duration::from_millis(20))
        .build()
        .unwrap();
    let guards: Vec<_> = (0..4).map(|_| pool.get()).collect();
    drop(guards);
    assert_eq!(pool.shared_len(), 4);
    // First interval: the sweep learns the low-water mark (4 objects stayed unused).
    std::thread::sleep(Duration::from_millis(25));
    drop(pool.get()); // a slow-path operation runs the sweep
    // Second interval: the objects unused the whole time are freed.
    std::thread::sleep(Duration::from_millis(25));
    drop(pool.get());
    assert!(pool.stats().released_idle >= 3, "{:?}", pool.stats());
    assert!(pool.shared_len() <= 1);
}

#[test]
fn stats_are_reported_through_instrumented() {
    let pool: Pool<Vec<u8>> =
        Pool::builder(Vec::new).retain(|v| v.capacity() < 100).build().unwrap();
    drop(pool.get());
    drop(pool.get());
    let mut big = pool.get();
    big.reserve(1000);
    drop(big);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.kind, "bufpool");
    assert_eq!(snap.value("misses"), Some(1));
    assert_eq!(snap.value("hits"), Some(2));
    assert_eq!(snap.value("rejected"), Some(1));
    assert_eq!(snap.value("returns"), Some(2));
}

#[test]
fn invalid_settings_are_rejected() {
    assert_eq!(
        Pool::builder(Vec::<u8>::new).max_retained(0).build().unwrap_err(),
        BuildError::ZeroRetained
    );
    assert!(matches!(
        Pool::builder(Vec::<u8>::new).local_capacity(1000).build(),
        Err(BuildError::LocalCapacityTooLarge { requested: 1000 })
    ));
    assert!(matches!(
        Pool::builder(Vec::<u8>::new).idle_release(Duration::ZERO).build(),
        Err(BuildError::ZeroIdleInterval(_))
    ));
    let custom = PoolBuilder::with_reset(
        || (0u32, Vec::<u8>::new()),
        |o| {
            o.0 = 0;
            o.1.clear();
        },
    )
    .build()
    .unwrap();
    let mut o = custom.get();
    o.0 = 9;
    drop(o);
    assert_eq!(custom.get().0, 0);
}

#[test]
fn the_catalogue_lists_exactly_what_a_visit_reports_in_the_same_order() {
    use poolside_bufpool::{BufPool, Instrumented};

    fn visited_names(pool: &dyn Instrumented) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        pool.visit_metrics(&mut |m: poolside_core::Metric<'_>| {
            if !names.contains(&m.desc.name) {
                names.push(m.desc.name);
            }
        });
        names
    }
    fn catalogue_names(pool: &dyn Instrumented) -> Vec<&'static str> {
        pool.catalogue().iter().map(|d| d.name).collect()
    }

    let pool: Pool<Vec<u8>> = Pool::new(Vec::new);
    drop(pool.get());
    assert_eq!(visited_names(&pool), catalogue_names(&pool));
    assert!(catalogue_names(&pool).contains(&"rejected"));

    let bufs = BufPool::new();
    drop(bufs.get(10));
    assert_eq!(visited_names(&bufs), catalogue_names(&bufs));
    assert_eq!(catalogue_names(&bufs).len(), 11);
    // Every class reports every pool metric, each under its class label.
    let snap = Snapshot::of(&bufs);
    assert_eq!(snap.entries.len(), 3 * 9 + 2);
}
