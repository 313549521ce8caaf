//! Helpers shared by the test binaries.
#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `future` on this thread, parking between wake-ups.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Threads of this process, from /proc/self/task.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Polls `condition` for up to ten seconds. Every caller waits for something that must
/// come true, so the bound only decides how long a failing test takes; it is generous
/// because a test machine running many test binaries at once may leave a worker thread
/// unscheduled for a long while.
pub(crate) fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    condition()
}

/// rayon's quicksort: partitions around the last element, then sorts one half in a
/// scoped job and the other on the calling thread, a scope per node down to single
/// elements.
pub(crate) fn quick_sort<T: PartialOrd + Send>(
    pool: &poolside_workerpool::WorkerPool,
    v: &mut [T],
) {
    if v.len() <= 1 {
        return;
    }
    let pivot = v.len() - 1;
    let mut mid = 0;
    for j in 0..pivot {
        if v[j] <= v[pivot] {
            v.swap(mid, j);
            mid += 1;
        }
    }
    v.swap(mid, pivot);
    let (lo, hi) = v.split_at_mut(mid);
    pool.scope(|s| {
        s.spawn(|_| quick_sort(pool, hi)).unwrap();
        quick_sort(pool, lo);
    });
}

/// `len` pseudo-random numbers (xorshift), the same every run.
pub(crate) fn seeded_data(len: usize) -> Vec<u32> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32
        })
        .collect()
}
