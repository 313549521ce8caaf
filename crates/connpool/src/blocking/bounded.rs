//! Bounding a blocking call by a timeout: the call runs on a short-lived helper
//! thread while the caller waits at most the limit.
//!
//! A synchronous call cannot be interrupted, so on timeout the caller walks away and
//! the helper keeps the call's outcome: when the call finishes it runs the `orphan`
//! handler (which returns a late connection to the pool, or gives back its slot).
//! Exactly one of the two sides consumes the outcome: the state is decided under one
//! mutex, so a result that arrives just as the caller gives up is never lost.

use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What the caller learned.
pub(crate) enum Outcome<R> {
    Done(R),
    Panicked(Box<dyn Any + Send>),
    /// The limit passed; the orphan handler will see the outcome.
    TimedOut,
}

enum State<R> {
    Running,
    Done(thread::Result<R>),
    Abandoned,
}

struct Cell<R> {
    state: Mutex<State<R>>,
    done: Condvar,
}

/// Runs `f` on a helper thread and waits at most `limit` for it. If the thread
/// cannot be started, runs `f` inline (unbounded) rather than failing the call.
pub(crate) fn call<R, F, O>(limit: Duration, f: F, orphan: O) -> Outcome<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
    O: FnOnce(thread::Result<R>) + Send + 'static,
{
    let cell = Arc::new(Cell { state: Mutex::new(State::Running), done: Condvar::new() });
    let job = Arc::new(Mutex::new(Some((f, orphan))));
    let spawned = {
        let cell = cell.clone();
        let job = job.clone();
        thread::Builder::new().name("poolside-dial".into()).spawn(move || {
            let Some((f, orphan)) = job.lock().take() else { return };
            let outcome = catch_unwind(AssertUnwindSafe(f));
            let mut state = cell.state.lock();
            match *state {
                State::Abandoned => {
                    drop(state);
                    orphan(outcome);
                }
                _ => {
                    *state = State::Done(outcome);
                    cell.done.notify_one();
                }
            }
        })
    };
    let helper = match spawned {
        Ok(helper) => helper,
        Err(_) => {
            let Some((f, _)) = job.lock().take() else { return Outcome::TimedOut };
            return match catch_unwind(AssertUnwindSafe(f)) {
                Ok(r) => Outcome::Done(r),
                Err(p) => Outcome::Panicked(p),
            };
        }
    };
    let deadline = Instant::now().checked_add(limit);
    let mut state = cell.state.lock();
    loop {
        let finished = match std::mem::replace(&mut *state, State::Running) {
            State::Done(Ok(r)) => Outcome::Done(r),
            State::Done(Err(p)) => Outcome::Panicked(p),
            State::Running | State::Abandoned => Outcome::TimedOut,
        };
        if !matches!(finished, Outcome::TimedOut) {
            drop(state);
            // The helper is past its call: join it, so no thread (nor the pool
            // handle it holds) outlives a call that finished in time.
            let _ = helper.join();
            return finished;
        }
        let timed_out = match deadline {
            Some(deadline) => cell.done.wait_until(&mut state, deadline).timed_out(),
            None => {
                cell.done.wait(&mut state);
                false
            }
        };
        if timed_out {
            if let State::Done(outcome) = std::mem::replace(&mut *state, State::Abandoned) {
                // It finished just as the limit passed: take it after all.
                drop(state);
                let _ = helper.join();
                return match outcome {
                    Ok(r) => Outcome::Done(r),
                    Err(p) => Outcome::Panicked(p),
                };
            }
            return Outcome::TimedOut;
        }
    }
}

/// The text of a panic payload, for the log.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn fast_calls_return_their_value() {
        match call(Duration::from_secs(5), || 7, |_| panic!("not orphaned")) {
            Outcome::Done(v) => assert_eq!(v, 7),
            _ => panic!("expected a value"),
        }
    }

    #[test]
    fn panics_come_back_to_the_caller() {
        match call(Duration::from_secs(5), || -> u8 { panic!("boom") }, |_| {}) {
            Outcome::Panicked(p) => assert_eq!(panic_message(&*p), "boom"),
            _ => panic!("expected the panic"),
        }
    }

    #[test]
    fn late_results_go_to_the_orphan_handler() {
        let orphaned = Arc::new(AtomicUsize::new(0));
        let seen = orphaned.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = call(
            Duration::from_millis(20),
            move || {
                thread::sleep(Duration::from_millis(100));
                5usize
            },
            move |r| {
                seen.store(r.unwrap(), Ordering::SeqCst);
                tx.send(()).unwrap();
            },
        );
        assert!(matches!(outcome, Outcome::TimedOut));
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(orphaned.load(Ordering::SeqCst), 5);
    }
}
