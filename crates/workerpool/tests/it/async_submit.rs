//! Async submission: it never blocks the runtime, it is cancel-safe at every await
//! point, waiting submitters are served first come first served, and handles cancel.
// tokio is not a dev-dependency under `--cfg loom` (it reads the flag as its own).
#![cfg(not(loom))]

use crate::common::eventually;
use poolside_core::Snapshot;
use poolside_workerpool::{JobError, SubmitError, WorkerPool};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

#[test]
fn a_current_thread_runtime_keeps_serving_while_submissions_wait_for_room() {
    let pool = Arc::new(WorkerPool::builder().workers(2).queue_depth(4).build().unwrap());
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..1000).map(|_| AtomicUsize::new(0)).collect());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let period = Duration::from_millis(5);
    let (ticks, max_gap) = runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let (mut ticks, mut last, mut max_gap) = (0u32, Instant::now(), Duration::ZERO);
                while !stop.load(Ordering::SeqCst) {
                    interval.tick().await;
                    let now = Instant::now();
                    max_gap = max_gap.max(now - last);
                    last = now;
                    ticks += 1;
                }
                (ticks, max_gap)
            })
        };
        let mut handles = Vec::new();
        for n in 0..1000 {
            let runs = runs.clone();
            // Each job holds its worker ~0.5 ms: the queue of 4 is full almost always.
            let handle = pool
                .spawn_async(move |_| {
                    std::thread::sleep(Duration::from_micros(500));
                    runs[n].fetch_add(1, Ordering::SeqCst);
                    n
                })
                .await
                .unwrap();
            handles.push(handle);
        }
        for (n, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.await, Ok(n));
        }
        stop.store(true, Ordering::SeqCst);
        ticker.await.unwrap()
    });
    assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1), "every job ran exactly once");
    // A submission that blocked the runtime thread would stall the ticker for as long as
    // the queue stays full (here, the whole run, hundreds of milliseconds). The bound
    // leaves room for a busy machine's scheduling delays.
    assert!(ticks > 10, "the ticker ran {ticks} times");
    assert!(max_gap < period * 2 + Duration::from_millis(60), "the ticker stalled {max_gap:?}");
}

/// Wakes by raising a flag: a future is polled again only when it was woken, so a lost
/// wake-up leaves it pending forever (and the test fails on its deadline).
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

type Pending<'a> = Pin<
    Box<dyn Future<Output = Result<poolside_workerpool::JobHandle<usize>, SubmitError<Job>>> + 'a>,
>;
type Job = Box<dyn FnOnce(&poolside_workerpool::JobContext<'_>) -> usize + Send>;

#[test]
fn aborted_spawn_async_futures_never_run_and_never_swallow_a_slot() {
    for seed in 1..=6u64 {
        let mut random = Lcg(seed);
        let depth = 1 + random.below(3) as usize;
        let pool = WorkerPool::builder().workers(2).queue_depth(depth).build().unwrap();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut waiting: Vec<(usize, Pending<'_>, Arc<Flag>)> = Vec::new();
        let (mut accepted, mut aborted) = (HashSet::new(), HashSet::new());
        let mut handles = Vec::new();
        let mut next = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while next < 300 || !waiting.is_empty() {
            assert!(Instant::now() < deadline, "seed {seed}: a waiting submission was never woken");
            if next < 300 && waiting.len() < 8 {
                let id = next;
                next += 1;
                let ran = ran.clone();
                let pause = random.below(300);
                let job: Job = Box::new(move |_| {
                    std::thread::sleep(Duration::from_micros(pause));
                    ran.lock().unwrap().push(id);
                    id
                });
                let flag = Arc::new(Flag(AtomicBool::new(true)));
                waiting.push((id, Box::pin(pool.spawn_async(job)), flag));
            }
            // Poll the woken ones; abort some at random, wherever they stand.
            let mut i = 0;
            while i < waiting.len() {
                if random.below(10) == 0 {
                    let (id, future, _) = waiting.swap_remove(i);
                    drop(future);
                    aborted.insert(id);
                    continue;
                }
                let (id, future, flag) = &mut waiting[i];
                if flag.0.swap(false, Ordering::SeqCst) {
                    let waker = Waker::from(flag.clone());
                    if let Poll::Ready(result) =
                        future.as_mut().poll(&mut Context::from_waker(&waker))
                    {
                        handles.push(result.expect("the pool is open"));
                        accepted.insert(*id);
                        drop(waiting.swap_remove(i));
                        continue;
                    }
                }
                i += 1;
            }
            std::thread::yield_now();
        }
        for handle in handles {
            assert!(handle.join().is_ok());
        }
        pool.join().unwrap();
        let ran: HashSet<usize> = ran.lock().unwrap().iter().copied().collect();
        assert_eq!(ran, accepted, "seed {seed}: exactly the accepted jobs ran");
        assert!(ran.is_disjoint(&aborted));
        assert_eq!(accepted.len() + aborted.len(), 300);
        let stats = Snapshot::of(&pool);
        assert_eq!(stats.value("submitted"), Some(accepted.len() as u64));
        assert_eq!(stats.value("completed"), Some(accepted.len() as u64));
        // Every slot came back: the whole depth can be filled again at once.
        let (release, held) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..2 {
            let held = held.clone();
            pool.submit(move |_| {
                let _ = held.recv();
            })
            .unwrap();
        }
        assert!(
            eventually(|| Snapshot::of(&pool).value("active") == Some(2)),
            "seed {seed}: both workers should be running a held job; {:?}",
            {
                let counts = Snapshot::of(&pool);
                ["workers", "active", "queued", "submitted", "completed"]
                    .map(|name| (name, counts.value(name)))
            }
        );
        for _ in 0..depth {
            pool.try_submit(|_| {}).unwrap();
        }
        assert!(matches!(pool.try_submit(|_| {}), Err(SubmitError::Full(_))));
        drop(release);
        assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
    }
}

#[test]
fn waiting_async_submitters_are_served_in_order() {
    let pool = WorkerPool::builder().workers(1).queue_depth(1).build().unwrap();
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    pool.submit(move |_| {
        let _ = held.recv();
    })
    .unwrap();
    assert!(eventually(|| Snapshot::of(&pool).value("active") == Some(1)));
    pool.submit(|_| {}).unwrap(); // the queue is full now
    let order = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..5 {
            let (pool, order) = (&pool, order.clone());
            tasks.push(async move {
                pool.submit_async(move |_| order.lock().unwrap().push(n)).await.unwrap();
            });
        }
        let all = futures_join(tasks);
        // Released once every submitter waits in line.
        let release = async {
            tokio::task::yield_now().await;
            drop(release);
        };
        let ((), ()) = tokio::join!(all, release);
    });
    pool.join().unwrap();
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

/// Polls every future in order until all are done (a `join_all` without a crate).
async fn futures_join<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(move |cx| {
        let mut done = true;
        for slot in futures.iter_mut() {
            if let Some(future) = slot {
                if future.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    done = false;
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await
}

#[test]
fn submissions_waiting_when_the_pool_shuts_down_get_their_job_back() {
    let pool = WorkerPool::builder().workers(1).queue_depth(1).build().unwrap();
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    pool.submit(move |_| {
        let _ = held.recv();
    })
    .unwrap();
    assert!(eventually(|| Snapshot::of(&pool).value("active") == Some(1)));
    pool.submit(|_| {}).unwrap();
    let mut waiting = Box::pin(pool.submit_async(|_| {}));
    let waker = Waker::noop();
    assert!(waiting.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            drop(release);
        });
        pool.shutdown(Duration::from_secs(5)).unwrap();
    });
    match waiting.as_mut().poll(&mut Context::from_waker(waker)) {
        Poll::Ready(Err(SubmitError::Closed(_job))) => {}
        other => panic!("expected Closed, got {:?}", other.map(|r| r.is_ok())),
    }
}

#[test]
fn cancel_on_drop_skips_queued_jobs_and_stops_running_ones() {
    let pool = WorkerPool::builder().workers(1).queue_depth(8).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let running = {
        let started = started.clone();
        pool.spawn(move |ctx| {
            started.fetch_add(1, Ordering::SeqCst);
            ctx.wait_cancelled(Duration::from_secs(30))
        })
        .unwrap()
        .cancel_on_drop()
    };
    assert!(eventually(|| started.load(Ordering::SeqCst) == 1));
    let queued: Vec<_> = (0..3)
        .map(|_| {
            let started = started.clone();
            pool.spawn(move |_| started.fetch_add(1, Ordering::SeqCst)).unwrap().cancel_on_drop()
        })
        .collect();
    let kept = pool.spawn(|_| "kept").unwrap().cancel_on_drop();
    drop(queued);
    drop(running); // the running job sees its token and returns
    assert_eq!(kept.join(), Ok("kept"));
    pool.join().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 1, "no cancelled queued job started");
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("cancelled"), Some(4), "3 skipped + 1 stopped");
    assert_eq!(stats.value("completed"), Some(1));
    let handle = pool.spawn(|_| 1).unwrap();
    handle.cancel(); // may be queued or done: either way, exactly one outcome
    match handle.join() {
        Ok(1) | Err(JobError::Cancelled) => {}
        other => panic!("unexpected {other:?}"),
    }
    let report = pool.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.is_clean());
}

#[test]
fn an_aborted_await_of_a_cancel_on_drop_handle_cancels_the_job() {
    let pool = WorkerPool::builder().workers(1).build().unwrap();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let saw = saw_cancel.clone();
        let handle = pool
            .spawn_async(move |ctx| {
                saw.store(ctx.wait_cancelled(Duration::from_secs(30)), Ordering::SeqCst)
            })
            .await
            .unwrap()
            .cancel_on_drop();
        // A client that goes away: the await is abandoned after 20 ms.
        let result = tokio::time::timeout(Duration::from_millis(20), handle).await;
        assert!(result.is_err());
    });
    pool.join().unwrap();
    assert!(saw_cancel.load(Ordering::SeqCst));
}

#[test]
fn dropping_a_pool_inside_a_task_returns_at_once() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let in_drop = runtime.block_on(async {
        let pool = WorkerPool::builder().workers(2).build().unwrap();
        let running = pool.spawn(|ctx| ctx.wait_cancelled(Duration::from_millis(300))).unwrap();
        for _ in 0..20 {
            let ran = ran.clone();
            pool.submit_async(move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
        }
        let dropped = tokio::spawn(async move {
            let started = Instant::now();
            drop(pool);
            started.elapsed()
        });
        let in_drop = dropped.await.unwrap();
        assert_eq!(running.await, Ok(false), "drop cancels no running job");
        in_drop
    });
    assert!(in_drop < Duration::from_millis(20), "drop took {in_drop:?}");
    assert!(eventually(|| ran.load(Ordering::SeqCst) == 20), "queued jobs still ran");
}
