//! Many threads borrowing and returning at once: every object made is dropped exactly
//! once, and no object is ever held by two borrowers at the same time.

use poolside_bufpool::{Pool, PoolBuilder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static MADE: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Tracks its own lifetime and whether someone holds it.
struct Tracked {
    in_use: Arc<AtomicBool>,
    scribble: Vec<u64>,
}

impl Tracked {
    fn new() -> Self {
        MADE.fetch_add(1, Ordering::SeqCst);
        Tracked { in_use: Arc::new(AtomicBool::new(false)), scribble: Vec::with_capacity(8) }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

fn pool() -> Pool<Tracked> {
    PoolBuilder::with_reset(Tracked::new, |t| t.scribble.clear())
        .max_retained(16)
        .local_capacity(4)
        .build()
        .unwrap()
}

#[test]
fn objects_are_exclusive_clean_and_dropped_exactly_once() {
    let pool = pool();
    let workers: Vec<_> = (0..8u64)
        .map(|thread| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..5_000u64 {
                    if i % 7 == 0 {
                        // A short borrow through the borrowing guard.
                        let mut quick = pool.get();
                        assert!(quick.scribble.is_empty(), "handed out dirty");
                        assert!(
                            !quick.in_use.swap(true, Ordering::SeqCst),
                            "handed out twice at once"
                        );
                        quick.scribble.push(i);
                        quick.in_use.store(false, Ordering::SeqCst);
                    }
                    let mut object = pool.get_owned();
                    assert!(object.scribble.is_empty(), "handed out dirty");
                    assert!(
                        !object.in_use.swap(true, Ordering::SeqCst),
                        "handed out twice at once"
                    );
                    object.scribble.push(thread * 1_000_000 + i);
                    object.in_use.store(false, Ordering::SeqCst);
                    // Hold a few objects across iterations to force sharing between threads.
                    if i % 3 == 0 {
                        held.push(object);
                    }
                    if held.len() > 5 {
                        held.clear();
                    }
                    if i % 1000 == 999 {
                        // Some objects leave the pool for good.
                        let detached = pool.get().detach();
                        drop(detached);
                    }
                }
            })
        })
        .collect();
    // `join` waits for the whole OS thread, thread-local destructors included (a
    // scoped thread may still be running them when its scope ends).
    for worker in workers {
        worker.join().unwrap();
    }
    drop(pool);
    // Objects of the workers went to the shared store when they exited; the pool is
    // gone, so everything made has been dropped.
    assert_eq!(MADE.load(Ordering::SeqCst), DROPPED.load(Ordering::SeqCst));
    assert!(MADE.load(Ordering::SeqCst) > 0);
}
