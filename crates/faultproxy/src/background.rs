//! The lifecycle of an accept loop running as a tokio task.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A spawned accept loop that ends when its token is cancelled, closing its listener
/// and its connections before it returns.
///
/// [`stop`](Self::stop) cancels and waits; dropping cancels and aborts without
/// waiting (the runtime then drops the task, and with it every connection task it
/// owns, on its next turn).
#[derive(Debug)]
pub(crate) struct Background {
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Background {
    /// Spawns `accept_loop`, which must return once `shutdown` is cancelled.
    pub(crate) fn spawn(
        shutdown: CancellationToken,
        accept_loop: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self { shutdown, task: Some(tokio::spawn(accept_loop)) }
    }

    /// Cancels the loop and waits until it has returned.
    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            // The loop only ends by observing the cancellation or by a panic, and a
            // panic in it is a bug worth surfacing in the test that hit it.
            if let Err(error) = task.await {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
