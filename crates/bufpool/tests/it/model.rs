//! Model-based test: random sequences of get / drop / detach / attach / trim / thread
//! exit against a model of what the pool may hold.

use poolside_bufpool::Pool;
use proptest::prelude::*;

const CAP: usize = 64; // retain policy: capacity ≤ CAP
const MAX_RETAINED: usize = 4;
const LOCAL: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Get,
    /// Drop the i-th held guard after writing `len` bytes into it.
    Release {
        index: usize,
        len: usize,
    },
    Detach {
        index: usize,
    },
    Attach {
        capacity: usize,
    },
    Trim,
    /// Borrow and return from another thread, which then exits.
    OtherThread {
        count: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        4 => (0usize..8, 0usize..200).prop_map(|(index, len)| Op::Release { index, len }),
        1 => (0usize..8).prop_map(|index| Op::Detach { index }),
        1 => (0usize..200).prop_map(|capacity| Op::Attach { capacity }),
        1 => Just(Op::Trim),
        1 => (1usize..6).prop_map(|count| Op::OtherThread { count }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_pool_matches_its_model(ops in prop::collection::vec(op(), 1..60)) {
        let pool = Pool::builder(|| Vec::<u8>::with_capacity(16))
            .retain(|v| v.capacity() <= CAP)
            .max_retained(MAX_RETAINED)
            .local_capacity(LOCAL)
            .build()
            .unwrap();
        let mut held = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for op in ops {
            match op {
                Op::Get => {
                    let guard = pool.get();
                    prop_assert!(guard.is_empty(), "always reset when handed out");
                    prop_assert!(guard.capacity() <= CAP, "oversized objects are never retained");
                    prop_assert!(ids.insert(guard.as_ptr() as usize) || guard.capacity() == 0,
                        "the same buffer is never handed out twice at once");
                    held.push(guard);
                }
                Op::Release { index, len } => {
                    if !held.is_empty() {
                        let mut guard = held.swap_remove(index % held.len());
                        ids.remove(&(guard.as_ptr() as usize));
                        guard.extend(std::iter::repeat_n(0xAB, len));
                    }
                }
                Op::Detach { index } => {
                    if !held.is_empty() {
                        let guard = held.swap_remove(index % held.len());
                        ids.remove(&(guard.as_ptr() as usize));
                        let _owned: Vec<u8> = guard.detach();
                    }
                }
                Op::Attach { capacity } => {
                    let mut v = Vec::with_capacity(capacity);
                    v.push(1);
                    pool.attach(v);
                }
                Op::Trim => { pool.trim(); prop_assert_eq!(pool.shared_len(), 0); }
                Op::OtherThread { count } => {
                    let other = pool.clone();
                    std::thread::spawn(move || {
                        let guards: Vec<_> = (0..count).map(|_| other.get()).collect();
                        drop(guards);
                    }).join().unwrap();
                }
            }
            prop_assert!(pool.shared_len() <= MAX_RETAINED, "retained ≤ max");
            let s = pool.stats();
            prop_assert_eq!(s.retained_shared as usize, pool.shared_len());
        }
    }
}
