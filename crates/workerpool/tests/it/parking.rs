//! The parking protocol under real threads: no lost wake-up when workers park between
//! bursts, and no job left waiting behind another while a worker sleeps.

use poolside_workerpool::WorkerPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A lost wake-up fails the test after this long instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(5);

/// Spins (yielding) until `counter` reaches `target` or `PATIENCE` runs out.
fn reaches(counter: &AtomicUsize, target: usize) -> bool {
    let until = Instant::now() + PATIENCE;
    while counter.load(Ordering::Acquire) < target {
        if Instant::now() > until {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// Busy-waits `pause`: `thread::sleep` cannot wait less than the timer slack (about
/// 50 µs), and the race with a worker going to park is narrower than that.
fn pause_for(pause: Duration) {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn pool(workers: usize, searching: usize) -> WorkerPool {
    WorkerPool::builder().workers(workers).max_searching_workers(searching).build().unwrap()
}

#[test]
fn bursts_separated_by_pauses_run_every_job() {
    // One worker makes the race with its parking the narrowest and the most frequent.
    // (workers, searching workers)
    let settings = [(1, 0), (1, 1), (4, 0), (4, 1), (4, 2), (4, 4)];
    for (workers, searching) in settings {
        let pool = pool(workers, searching);
        let ran = Arc::new(AtomicUsize::new(0));
        let mut random = Lcg((workers * 100 + searching * 10) as u64);
        let mut submitted = 0;
        for burst in 0..2000 {
            for _ in 0..=random.below(4) {
                let ran = ran.clone();
                pool.submit(move |_| {
                    ran.fetch_add(1, Ordering::Release);
                })
                .unwrap();
                submitted += 1;
            }
            assert!(
                reaches(&ran, submitted),
                "{workers} workers, max_searching_workers({searching}), burst {burst}: {} of {submitted} jobs ran",
                ran.load(Ordering::Acquire)
            );
            // Mostly pauses around the length of a worker's spin, so the next burst
            // meets workers searching, registering as asleep, or parked; sometimes one
            // long enough for all of them to park.
            if random.below(16) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            } else {
                pause_for(Duration::from_micros(random.below(20)));
            }
        }
        let report = pool.shutdown(Duration::from_secs(5)).unwrap();
        assert!(report.is_clean());
        assert_eq!(report.completed, 0, "every job had run before shutdown");
    }
}

/// Spawns one job per worker, each waiting (up to `PATIENCE`) until all of them run
/// at once; whether every one of them saw the others.
fn one_job_per_worker_meets(pool: &WorkerPool, workers: usize) -> bool {
    let arrived = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let arrived = arrived.clone();
            pool.spawn(move |_| {
                arrived.fetch_add(1, Ordering::AcqRel);
                reaches(&arrived, workers)
            })
            .unwrap()
        })
        .collect();
    handles.into_iter().map(|handle| handle.join()).fold(true, |all, met| all & (met == Ok(true)))
}

#[test]
fn jobs_waiting_for_each_other_each_get_a_worker() {
    // Each round's jobs wait until all of them run at once, which needs every worker
    // awake: the first job wakes a sleeper, the rest are handed on by the searcher that
    // found a job while more were queued, or by the submitter when nobody searches.
    let workers = 4;
    for searching in [0, 1, 2] {
        let pool = pool(workers, searching);
        for round in 0..20 {
            // Long enough for every worker to stop spinning and park.
            std::thread::sleep(Duration::from_millis(2));
            assert!(
                one_job_per_worker_meets(&pool, workers),
                "max_searching_workers({searching}), round {round}: a job waited behind another"
            );
        }
    }
}

#[test]
fn jobs_waiting_for_each_other_get_workers_that_were_just_going_to_sleep() {
    // As above, with no pause for the workers to settle: a round starts while the
    // workers of the last one stop searching and go to park, so some see the new jobs
    // on their last look before parking. Such a worker must take up the search again,
    // or the jobs whose submitters woke nobody (it was still counted searching) wait
    // beside sleeping workers and the round never meets.
    let workers = 3;
    let pool = pool(workers, 1);
    let mut random = Lcg(7);
    for round in 0..3000 {
        // A pause of varying length moves where in the workers' way to sleep the
        // round's jobs arrive.
        pause_for(Duration::from_micros(random.below(100)));
        assert!(
            one_job_per_worker_meets(&pool, workers),
            "round {round}: a job waited beside a sleeper"
        );
    }
}
