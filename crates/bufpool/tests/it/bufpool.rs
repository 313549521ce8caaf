//! BufPool: classes, filing by capacity, caps, bad configurations, JSON.

use poolside_bufpool::{BufPool, BuildError};
use poolside_core::Snapshot;
use std::io::Write;

#[test]
fn gets_pick_the_smallest_class_that_fits() {
    let pool = BufPool::new();
    assert!(pool.get(1).capacity() >= 4096 && pool.get(1).capacity() < 64 * 1024);
    assert!(pool.get(4096).capacity() < 64 * 1024);
    assert!(pool.get(4097).capacity() >= 64 * 1024);
    assert!(pool.get(1024 * 1024).capacity() >= 1024 * 1024);
    let huge = pool.get(3 * 1024 * 1024);
    assert!(huge.capacity() >= 3 * 1024 * 1024);
    drop(huge);
    assert_eq!(pool.rejected(), 1, "an unpooled get is not kept");
}

#[test]
fn a_returned_buffer_is_filed_by_its_capacity() {
    let pool = BufPool::builder().local_capacity(0).build().unwrap();
    let mut grown = pool.get(100); // small class
    grown.extend_from_slice(&vec![1u8; 70 * 1024]); // grew into the medium range
    drop(grown);
    let stats = pool.class_stats();
    assert_eq!(stats[0].1.retained_shared, 0);
    assert_eq!(stats[1].1.retained_shared, 1, "filed with the 64 KiB class");
    let reused = pool.get(60 * 1024);
    assert!(reused.is_empty() && reused.capacity() >= 70 * 1024);
    assert_eq!(pool.class_stats()[1].1.hits, 1);
}

#[test]
fn with_a_64_kib_cap_a_1_mib_buffer_is_dropped_not_pooled() {
    let pool = BufPool::builder().max_capacity(64 * 1024).build().unwrap();
    let mut big = pool.get(1024 * 1024);
    big.write_all(&vec![7u8; 1024 * 1024]).unwrap();
    drop(big);
    assert_eq!(pool.rejected(), 1);
    assert_eq!(pool.class_stats().iter().map(|(_, s)| s.retained_shared_bytes).sum::<u64>(), 0);
}

#[test]
fn buffers_come_back_clean_and_io_write_works() {
    let pool = BufPool::new();
    {
        let mut buf = pool.get(64);
        let (user, token) = ("alice", "s3cr3t");
        write!(buf, "user={user} token={token}").unwrap();
        buf.flush().unwrap();
    }
    let buf = pool.get(64);
    assert!(buf.is_empty(), "no stale bytes");
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn bad_class_configurations_are_rejected() {
    assert_eq!(BufPool::builder().classes(&[]).build().unwrap_err(), BuildError::NoClasses);
    assert_eq!(BufPool::builder().classes(&[0, 10]).build().unwrap_err(), BuildError::ZeroClass);
    assert_eq!(
        BufPool::builder().classes(&[64, 32]).build().unwrap_err(),
        BuildError::UnorderedClasses { larger: 64, smaller: 32 }
    );
    assert_eq!(
        BufPool::builder().classes(&[64, 64]).build().unwrap_err(),
        BuildError::UnorderedClasses { larger: 64, smaller: 64 }
    );
    let err = BufPool::builder().classes(&[1024, 4096]).max_capacity(512).build().unwrap_err();
    assert_eq!(err, BuildError::CapBelowSmallestClass { cap: 512, smallest: 1024 });
    assert_eq!(
        err.to_string(),
        "the capacity cap of 512 bytes is below the smallest class (1024 bytes)"
    );
}

#[test]
fn per_class_stats_carry_a_class_label() {
    let pool = BufPool::new();
    drop(pool.get(10));
    drop(pool.get(100_000));
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.labeled("misses", &[("class", "4KiB")]), Some(1));
    assert_eq!(snap.labeled("misses", &[("class", "1MiB")]), Some(1));
    assert_eq!(snap.labeled("returns", &[("class", "64KiB")]), Some(0));
    assert_eq!(snap.sum("returns"), 2);
}

#[cfg(feature = "json")]
#[test]
fn json_is_serialized_into_pooled_buffers() {
    let pool = BufPool::new();
    let doc = serde_json::json!({"name": "poolside", "tags": ["a", "b"]});
    let bytes = pool.to_json_vec(&doc).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(), doc);
    let guard = pool.to_json(&doc).unwrap();
    assert_eq!(&guard[..], &bytes[..]);
    drop(guard);
    let stats = pool.class_stats();
    assert_eq!(stats[0].1.misses, 1, "the second serialization reused the first buffer");
}

mod class_selection {
    use poolside_bufpool::BufPool;
    use proptest::prelude::*;

    /// 1 to 6 strictly increasing class sizes, from 1 byte to 1 MiB.
    fn classes() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::btree_set(1usize..=1 << 20, 1..=6)
            .prop_map(|set| set.into_iter().collect())
    }

    /// Gets served by each class so far, from the shared store or new.
    fn gets_per_class(pool: &BufPool) -> Vec<u64> {
        pool.class_stats().iter().map(|(_, s)| s.hits + s.misses).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A get is served by the smallest class that fits, wherever the hint falls
        /// (on a class size, one past it, on a power of two, above the top class); a
        /// buffer that comes back is filed with the largest class its capacity reaches.
        #[test]
        fn gets_take_the_smallest_fitting_class_and_returns_file_by_capacity(
            classes in classes(),
            hints in proptest::collection::vec(0usize..=(1 << 21), 1..24),
            growth in proptest::collection::vec(0usize..=(1 << 20), 1..24),
        ) {
            let pool = BufPool::builder().classes(&classes).local_capacity(0).build().unwrap();
            let edges = classes.iter().flat_map(|&c| [c - 1, c, c + 1, c.next_power_of_two()]);
            for (hint, extra) in hints.into_iter().chain(edges).zip(growth.into_iter().cycle()) {
                let expected = classes.iter().position(|&c| c >= hint);
                let gets_before = gets_per_class(&pool);
                let mut buf = pool.get(hint);
                prop_assert!(buf.capacity() >= hint);
                for (index, (b, a)) in gets_before.iter().zip(&gets_per_class(&pool)).enumerate() {
                    prop_assert_eq!(a - b, u64::from(expected == Some(index)), "hint {} class {}", hint, index);
                }
                let before: Vec<u64> = pool.class_stats().iter().map(|(_, s)| s.returns).collect();
                buf.reserve_exact(extra);
                let capacity = buf.capacity();
                drop(buf);
                let filed = classes.iter().rposition(|&c| c <= capacity);
                let kept = capacity <= *classes.last().unwrap();
                let after: Vec<u64> = pool.class_stats().iter().map(|(_, s)| s.returns).collect();
                for (index, (b, a)) in before.iter().zip(&after).enumerate() {
                    let expected_returns = u64::from(kept && filed == Some(index));
                    prop_assert_eq!(a - b, expected_returns, "capacity {} class {}", capacity, index);
                }
            }
        }
    }
}

#[test]
fn a_buffer_below_the_smallest_class_is_dropped_not_filed() {
    let pool = BufPool::builder().classes(&[1024, 4096]).local_capacity(0).build().unwrap();
    pool.attach(Vec::with_capacity(10));
    for (size, stats) in pool.class_stats() {
        assert_eq!((stats.returns, stats.retained_shared), (0, 0), "class {size} kept it");
    }
    assert_eq!(pool.rejected(), 0, "only buffers above the cap count as rejected");
    assert!(pool.get(10).capacity() >= 1024, "a get still gets a class-sized buffer");
    assert_eq!(pool.class_stats()[0].1.misses, 1);
}

#[test]
#[allow(deprecated)]
fn the_former_names_still_work_for_one_release() {
    let pool = BufPool::builder().max_capacity(64 * 1024).build().unwrap();
    let mut buf: poolside_bufpool::BufGuard<'_> = pool.get(100);
    buf.reserve(1 << 20);
    drop(buf);
    assert_eq!(pool.rejected(), 1);
    assert_eq!(pool.dropped_oversized(), pool.rejected());
}
