//! Containing panics of user code (managers, predicates, selectors, connection drops).
//!
//! The pool calls user code while it holds a slot, a connection or a place in line.
//! Every such call goes through [`guard`] or [`guard_future`]: a panic is caught, logged
//! with what was being done, and turned into a value, so the caller can close the
//! affected connection, give its slot back and carry on. Nothing the pool owns is
//! left half-updated, because no pool state is changed inside the guarded call.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

/// A caught panic of user code: what the pool was doing, and the panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panicked {
    pub(crate) during: &'static str,
    pub(crate) message: String,
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

fn caught(during: &'static str, payload: &(dyn Any + Send)) -> Panicked {
    let message = message(payload);
    tracing::error!(during, panic = %message, "poolside-connpool: user code panicked");
    Panicked { during, message }
}

/// Runs `f`, catching (and logging) a panic.
pub(crate) fn guard<T>(during: &'static str, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| caught(during, &*payload))
}

/// Drops `value` (user code: its `Drop`), catching a panic in it.
pub(crate) fn drop_guarded<T>(during: &'static str, value: T) {
    let _ = guard(during, move || drop(value));
}

/// Creates the future with `make` and polls it to completion, catching a panic in
/// either step; the future is dropped (also guarded) where it panicked.
pub(crate) async fn guard_future<F: Future>(
    during: &'static str,
    make: impl FnOnce() -> F,
) -> Result<F::Output, Panicked> {
    let future = guard(during, make)?;
    let mut future = std::pin::pin!(future);
    let mut failed = None;
    let outcome = std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Some(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                failed = Some(caught(during, &*payload));
                Poll::Ready(None)
            }
        }
    })
    .await;
    match outcome {
        Some(value) => Ok(value),
        None => Err(failed.unwrap_or_else(|| Panicked { during, message: String::new() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_value_with_its_message() {
        let err = guard("testing", || -> u8 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(err, Panicked { during: "testing", message: "boom 7".into() });
        assert_eq!(guard("testing", || 3), Ok(3));
    }

    #[tokio::test]
    async fn a_future_panicking_while_polled_or_made_is_caught() {
        let polled = guard_future("polling", || async {
            tokio::task::yield_now().await;
            panic!("late")
        })
        .await;
        assert_eq!(polled.unwrap_err().message, "late");
        let made = guard_future("making", || -> std::future::Ready<u8> { panic!("early") }).await;
        assert_eq!(made.unwrap_err().during, "making");
        assert_eq!(guard_future("fine", || async { 5 }).await, Ok(5));
    }
}
