//! Stack room for the jobs a worker runs while it waits inside another job.
//!
//! A worker waiting for a scope (or for room in a full queue, submitting from a job)
//! runs queued jobs meanwhile, on top of the waiting job's frames; each of those may
//! wait and help in turn. So the jobs piled on one worker's stack are bounded only by
//! the jobs queued, not by any recursion depth the user chose: one scope per node of a
//! quicksort piles up thousands. [`NestedStack::run`] keeps that from overflowing: a
//! helped job starts with at least half a worker stack free, and when less is left it
//! runs on a fresh stack of a worker stack's size, allocated for it and freed after it
//! (the `stacker` crate; the pile goes on there).

/// The stack std gives a thread when none is requested.
const STD_DEFAULT_STACK: usize = 2 * 1024 * 1024;

/// How much stack a job run by a waiting worker gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NestedStack {
    /// Below this much free stack, the job runs on a fresh one.
    red_zone: usize,
    /// The size of a fresh stack: a worker's.
    fresh: usize,
}

impl NestedStack {
    /// For workers started with `worker_stack` bytes (`None`: std's default, which
    /// `RUST_MIN_STACK` sets).
    pub(crate) fn new(worker_stack: Option<usize>) -> NestedStack {
        let fresh = worker_stack.unwrap_or_else(|| {
            std::env::var("RUST_MIN_STACK")
                .ok()
                .and_then(|bytes| bytes.trim().parse().ok())
                .unwrap_or(STD_DEFAULT_STACK)
        });
        NestedStack { red_zone: fresh / 2, fresh }
    }

    /// Runs `job` on the current stack if at least half a worker stack is free there,
    /// else on a fresh stack of a worker's size. A panic unwinds out as usual.
    #[inline]
    pub(crate) fn run<R>(&self, job: impl FnOnce() -> R) -> R {
        // Miri cannot switch stacks; its interpreted stacks are not the OS's either.
        #[cfg(miri)]
        {
            job()
        }
        #[cfg(not(miri))]
        {
            stacker::maybe_grow(self.red_zone, self.fresh, job)
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::NestedStack;

    /// Recurses `depth` times through `NestedStack::run`, each frame holding `FRAME`
    /// bytes, and returns a checksum of the frames.
    fn recurse(stack: &NestedStack, depth: usize) -> u64 {
        const FRAME: usize = 4096;
        let frame = std::hint::black_box([depth as u8; FRAME]);
        if depth == 0 {
            return u64::from(frame[0]);
        }
        let below = stack.run(|| recurse(stack, depth - 1));
        below + u64::from(frame[FRAME - 1])
    }

    #[test]
    fn a_recursion_far_deeper_than_the_thread_stack_completes() {
        // 64 KiB of thread stack, 4 MiB of frames: only fresh stacks make room.
        let depth = 1024;
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || recurse(&NestedStack::new(Some(64 * 1024)), depth))
            .unwrap();
        let expected: u64 = (0..=depth).map(|d| u64::from(d as u8)).sum();
        assert_eq!(handle.join().unwrap(), expected);
    }

    #[test]
    fn a_panic_on_a_fresh_stack_unwinds_to_the_caller() {
        fn panic_at_the_bottom(stack: &NestedStack, depth: usize) {
            let frame = std::hint::black_box([0u8; 4096]);
            if depth == 0 {
                panic!("deep");
            }
            stack.run(|| panic_at_the_bottom(stack, depth - 1));
            std::hint::black_box(frame);
        }
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let stack = NestedStack::new(Some(64 * 1024));
                std::panic::catch_unwind(|| panic_at_the_bottom(&stack, 256)).is_err()
            })
            .unwrap();
        assert!(handle.join().unwrap(), "the panic reached the top");
    }

    #[test]
    fn the_red_zone_is_half_a_worker_stack() {
        let stack = NestedStack::new(Some(1 << 20));
        assert_eq!((stack.red_zone, stack.fresh), (1 << 19, 1 << 20));
    }
}
