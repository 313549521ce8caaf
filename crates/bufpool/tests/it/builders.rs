//! Every builder option of `Pool`, `BufPool` and `BytesPool` fed its extremes: 0,
//! `usize::MAX`, `Duration::MAX` and nonsense. Each case either builds a pool that then
//! works (gets, fills, returns, trims, reports stats without a panic or an absurd
//! allocation) or returns the typed `BuildError` named in the table.

use poolside_bufpool::{
    BufPool, BufPoolBuilder, BuildError, MAX_CLASS_SIZE, MAX_LOCAL_CAPACITY, MAX_RETAINED, Pool,
    PoolBuilder,
};
use std::time::Duration;

/// What a case must produce.
#[derive(Debug)]
enum Expect {
    Works,
    Fails(fn(&BuildError) -> bool),
}

fn exercise_pool(pool: &Pool<Vec<u8>>) {
    for round in 0..3 {
        let mut held: Vec<_> = (0..5).map(|_| pool.get()).collect();
        for buf in &mut held {
            buf.extend_from_slice(&[round; 100]);
        }
        drop(held);
        assert!(pool.get().is_empty());
    }
    pool.attach(Vec::with_capacity(32));
    let stats = pool.stats();
    assert_eq!(stats.hits + stats.misses, 18, "five gets and one more per round");
    assert!(stats.retained_shared <= 6, "{stats:?}");
    assert!(stats.retained_shared_bytes < 1 << 63, "the bytes gauge overflowed: {stats:?}");
    pool.trim();
}

fn exercise_bufpool(pool: &BufPool) {
    for hint in [0, 1, 100, 4096, 4097, 70_000, 2 << 20] {
        let mut buf = pool.get(hint);
        assert!(buf.capacity() >= hint);
        buf.extend_from_slice(&[1; 64]);
        drop(buf);
        assert!(pool.get(hint).is_empty());
    }
    pool.attach(Vec::with_capacity(10));
    let _ = pool.class_stats();
    let _ = pool.rejected();
    pool.trim();
}

type PoolCase = (&'static str, fn(PoolBuilder<Vec<u8>>) -> PoolBuilder<Vec<u8>>, Expect);

#[test]
fn every_pool_option_at_its_extremes() {
    let cases: Vec<PoolCase> = vec![
        (
            "max_retained(0)",
            |b| b.max_retained(0),
            Expect::Fails(|e| *e == BuildError::ZeroRetained),
        ),
        ("max_retained(1)", |b| b.max_retained(1), Expect::Works),
        ("max_retained(MAX_RETAINED)", |b| b.max_retained(MAX_RETAINED), Expect::Works),
        (
            "max_retained(MAX_RETAINED + 1)",
            |b| b.max_retained(MAX_RETAINED + 1),
            Expect::Fails(|e| matches!(e, BuildError::RetainedTooLarge { .. })),
        ),
        (
            "max_retained(usize::MAX)",
            |b| b.max_retained(usize::MAX),
            Expect::Fails(|e| matches!(e, BuildError::RetainedTooLarge { requested: usize::MAX })),
        ),
        ("local_capacity(0)", |b| b.local_capacity(0), Expect::Works),
        ("local_capacity(1)", |b| b.local_capacity(1), Expect::Works),
        ("local_capacity(MAX)", |b| b.local_capacity(MAX_LOCAL_CAPACITY), Expect::Works),
        (
            "local_capacity(MAX + 1)",
            |b| b.local_capacity(MAX_LOCAL_CAPACITY + 1),
            Expect::Fails(|e| matches!(e, BuildError::LocalCapacityTooLarge { .. })),
        ),
        (
            "local_capacity(usize::MAX)",
            |b| b.local_capacity(usize::MAX),
            Expect::Fails(|e| {
                matches!(e, BuildError::LocalCapacityTooLarge { requested: usize::MAX })
            }),
        ),
        (
            "idle_release(ZERO)",
            |b| b.idle_release(Duration::ZERO),
            Expect::Fails(|e| matches!(e, BuildError::ZeroIdleInterval(_))),
        ),
        ("idle_release(1 ns)", |b| b.idle_release(Duration::from_nanos(1)), Expect::Works),
        ("idle_release(Duration::MAX)", |b| b.idle_release(Duration::MAX), Expect::Works),
        ("retain(never)", |b| b.retain(|_| false), Expect::Works),
        ("size_of(u64::MAX)", |b| b.size_of(|_| u64::MAX), Expect::Works),
        (
            "size_of(u64::MAX), all in the store",
            |b| b.local_capacity(0).size_of(|_| u64::MAX),
            Expect::Works,
        ),
        (
            "everything at once",
            |b| {
                b.max_retained(1)
                    .local_capacity(0)
                    .idle_release(Duration::MAX)
                    .size_of(|_| u64::MAX)
            },
            Expect::Works,
        ),
    ];
    for (name, configure, expect) in cases {
        let result = configure(Pool::builder(|| Vec::with_capacity(8))).build();
        match (&expect, result) {
            (Expect::Works, Ok(pool)) => exercise_pool(&pool),
            (Expect::Fails(is), Err(err)) => {
                assert!(is(&err), "{name}: unexpected error {err:?}");
                assert!(!err.to_string().is_empty());
            }
            (expect, Ok(_)) => panic!("{name}: built, expected {expect:?}"),
            (expect, Err(err)) => panic!("{name}: {err:?}, expected {expect:?}"),
        }
    }
}

type BufCase = (&'static str, fn(BufPoolBuilder) -> BufPoolBuilder, Expect);

#[test]
fn every_bufpool_option_at_its_extremes() {
    let cases: Vec<BufCase> = vec![
        ("classes([])", |b| b.classes(&[]), Expect::Fails(|e| *e == BuildError::NoClasses)),
        ("classes([0])", |b| b.classes(&[0]), Expect::Fails(|e| *e == BuildError::ZeroClass)),
        ("classes([1])", |b| b.classes(&[1]), Expect::Works),
        (
            "classes([usize::MAX])",
            |b| b.classes(&[usize::MAX]),
            Expect::Fails(|e| matches!(e, BuildError::ClassTooLarge { size: usize::MAX })),
        ),
        (
            "classes([4096, MAX + 1])",
            |b| b.classes(&[4096, MAX_CLASS_SIZE + 1]),
            Expect::Fails(|e| matches!(e, BuildError::ClassTooLarge { .. })),
        ),
        (
            "classes([1024, 1024])",
            |b| b.classes(&[1024, 1024]),
            Expect::Fails(|e| matches!(e, BuildError::UnorderedClasses { .. })),
        ),
        (
            "classes([4096, 1024])",
            |b| b.classes(&[4096, 1024]),
            Expect::Fails(|e| {
                matches!(e, BuildError::UnorderedClasses { larger: 4096, smaller: 1024 })
            }),
        ),
        (
            "classes([1, 2, 3, ..., 64])",
            |b| b.classes(&(1..=64).collect::<Vec<_>>()),
            Expect::Works,
        ),
        (
            "max_capacity(0)",
            |b| b.max_capacity(0),
            Expect::Fails(|e| matches!(e, BuildError::CapBelowSmallestClass { cap: 0, .. })),
        ),
        ("max_capacity(smallest)", |b| b.max_capacity(4096), Expect::Works),
        ("max_capacity(MAX_CLASS_SIZE)", |b| b.max_capacity(MAX_CLASS_SIZE), Expect::Works),
        (
            "max_capacity(usize::MAX)",
            |b| b.max_capacity(usize::MAX),
            Expect::Fails(|e| matches!(e, BuildError::CapTooLarge { cap: usize::MAX })),
        ),
        (
            "max_retained_per_class(0)",
            |b| b.max_retained_per_class(0),
            Expect::Fails(|e| *e == BuildError::ZeroRetained),
        ),
        (
            "max_retained_per_class(usize::MAX)",
            |b| b.max_retained_per_class(usize::MAX),
            Expect::Fails(|e| matches!(e, BuildError::RetainedTooLarge { .. })),
        ),
        ("local_capacity(0)", |b| b.local_capacity(0), Expect::Works),
        (
            "local_capacity(usize::MAX)",
            |b| b.local_capacity(usize::MAX),
            Expect::Fails(|e| matches!(e, BuildError::LocalCapacityTooLarge { .. })),
        ),
        (
            "idle_release(ZERO)",
            |b| b.idle_release(Duration::ZERO),
            Expect::Fails(|e| matches!(e, BuildError::ZeroIdleInterval(_))),
        ),
        ("idle_release(Duration::MAX)", |b| b.idle_release(Duration::MAX), Expect::Works),
    ];
    for (name, configure, expect) in cases {
        let result = configure(BufPool::builder()).build();
        match (&expect, result) {
            (Expect::Works, Ok(pool)) => exercise_bufpool(&pool),
            (Expect::Fails(is), Err(err)) => {
                assert!(is(&err), "{name}: unexpected error {err:?}");
                assert!(!err.to_string().is_empty());
            }
            (expect, Ok(_)) => panic!("{name}: built, expected {expect:?}"),
            (expect, Err(err)) => panic!("{name}: {err:?}, expected {expect:?}"),
        }
    }
}

#[cfg(feature = "bytes")]
#[test]
fn bytes_pool_capacity_at_its_extremes() {
    use poolside_bufpool::BytesPool;
    assert_eq!(BytesPool::new(0).unwrap_err(), BuildError::ZeroClass);
    assert!(matches!(BytesPool::new(usize::MAX), Err(BuildError::ClassTooLarge { .. })));
    assert!(matches!(BytesPool::new(MAX_CLASS_SIZE + 1), Err(BuildError::ClassTooLarge { .. })));
    for capacity in [1, 4096] {
        let pool = BytesPool::new(capacity).unwrap();
        let mut buf = pool.get();
        buf.extend_from_slice(&[1; 10_000]); // grows past 4× the capacity: dropped on return
        drop(buf);
        assert!(pool.get().capacity() >= capacity);
    }
}
