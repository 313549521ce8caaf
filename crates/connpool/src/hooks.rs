//! Lifecycle hooks: user code the pool runs when a connection opens, before it is
//! handed out, after it comes back, and when it closes.
//!
//! Each hook is optional. An unset hook is a `None` the pool checks once where the
//! hook would run: nothing is boxed and no atomic is touched on the get/return path
//! of a pool without hooks. A set hook returns a boxed future (the price of a hook
//! that borrows the connection across `.await`s, as in sqlx).
//!
//! Every hook call is user code and follows the pool's panic rule: a panic (or an
//! error, `false`, or running past `connect_timeout`) closes the affected connection
//! with [`CloseReason::Hook`], gives its slot back and is
//! logged; counts stay exact.

use crate::meta::{CloseReason, ConnMeta};
use crate::unwind::{self, Panicked};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// What a hook fails with: any error (`?` converts most).
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a connection hook returns: `Box::pin(async move { ... })`, borrowing
/// the connection for its lifetime `'a`.
///
/// ```
/// use poolside_connpool::{ConnMeta, hooks::HookFuture};
/// fn reset(conn: &mut Vec<u8>, _meta: ConnMeta) -> HookFuture<'_, bool> {
///     Box::pin(async move {
///         conn.clear();
///         Ok(true)
///     })
/// }
/// let mut conn = vec![1, 2];
/// # let now = tokio::time::Instant::now();
/// # let meta = ConnMeta { id: 1, created_at: now, last_used: now, checkouts: 1 };
/// let kept = block_on(reset(&mut conn, meta));
/// assert!(kept.unwrap());
/// assert!(conn.is_empty());
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HookError>> + Send + 'a>>;

/// A hook on a connection (`after_connect`, `before_acquire`, `after_release`).
pub(crate) type ConnHook<C, T> =
    Arc<dyn for<'a> Fn(&'a mut C, ConnMeta) -> HookFuture<'a, T> + Send + Sync>;

/// The `on_close` hook.
pub(crate) type CloseHook = Arc<dyn Fn(ConnMeta, CloseReason) + Send + Sync>;

/// The connection hooks of one pool, typed by its connection.
pub(crate) struct Hooks<C> {
    pub(crate) after_connect: Option<ConnHook<C, ()>>,
    pub(crate) before_acquire: Option<ConnHook<C, bool>>,
    pub(crate) after_release: Option<ConnHook<C, bool>>,
    pub(crate) on_close: Option<CloseHook>,
}

impl<C> Default for Hooks<C> {
    fn default() -> Self {
        Hooks { after_connect: None, before_acquire: None, after_release: None, on_close: None }
    }
}

impl<C> Clone for Hooks<C> {
    fn clone(&self) -> Self {
        Hooks {
            after_connect: self.after_connect.clone(),
            before_acquire: self.before_acquire.clone(),
            after_release: self.after_release.clone(),
            on_close: self.on_close.clone(),
        }
    }
}

/// The hooks as a builder holds them, whether or not it has its manager yet: the
/// connection hooks type-erased. Invariant: they are only ever set through
/// `Builder<M>` methods typed by `M::Connection`, and a builder's manager type never
/// changes once given, so `typed::<M::Connection>()` always finds them.
#[derive(Clone, Default)]
pub(crate) struct ErasedHooks {
    /// A `Hooks<C>` for the manager's connection type `C`.
    typed: Option<Arc<dyn Any + Send + Sync>>,
    on_close: Option<CloseHook>,
}

impl fmt::Debug for ErasedHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("connection_hooks", &self.typed.is_some())
            .field("on_close", &self.on_close.is_some())
            .finish()
    }
}

impl ErasedHooks {
    /// Changes the typed hooks for connection type `C` with `set`.
    pub(crate) fn update<C: 'static>(&mut self, set: impl FnOnce(&mut Hooks<C>)) {
        let mut hooks = self.connection_hooks::<C>();
        set(&mut hooks);
        self.typed = Some(Arc::new(hooks));
    }

    pub(crate) fn set_on_close(&mut self, hook: CloseHook) {
        self.on_close = Some(hook);
    }

    /// The hooks for a pool of `C` connections.
    pub(crate) fn typed<C: 'static>(&self) -> Hooks<C> {
        let mut hooks = self.connection_hooks::<C>();
        hooks.on_close = self.on_close.clone();
        hooks
    }

    /// The connection hooks set so far (none yet: the defaults). By the invariant
    /// above they are a `Hooks<C>` whenever they exist.
    fn connection_hooks<C: 'static>(&self) -> Hooks<C> {
        self.typed
            .as_ref()
            .and_then(|any| any.downcast_ref::<Hooks<C>>())
            .cloned()
            .unwrap_or_default()
    }
}

/// Why a connection hook did not approve its connection.
pub(crate) enum Refusal {
    /// It returned `false`.
    Declined,
    Failed(HookError),
    Panicked(Panicked),
    TimedOut(Duration),
}

impl Refusal {
    /// Logs the refusal of hook `during` (a panic was logged where it was caught).
    pub(crate) fn log(&self, during: &'static str) {
        match self {
            Refusal::Declined => {
                tracing::debug!(hook = during, "poolside-connpool: a hook declined the connection")
            }
            Refusal::Failed(e) => {
                tracing::warn!(hook = during, error = %e, "poolside-connpool: a hook failed")
            }
            Refusal::Panicked(_) => {}
            Refusal::TimedOut(after) => {
                tracing::warn!(hook = during, ?after, "poolside-connpool: a hook timed out")
            }
        }
    }
}

/// How a hook that approved its connection answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// On its first poll, without waiting: no time passed that the caller must
    /// account for (beyond the hook's own synchronous code).
    AtOnce,
    /// After waiting at least once.
    AfterWaiting,
}

/// Runs a connection hook on `conn`, guarded and bounded by `limit`; `Ok` when it
/// approved the connection (`Ok(())` or `Ok(true)`).
///
/// The hook is polled once before any timer exists: a hook that answers at once (a
/// flag or counter check, no I/O) costs no timer and no clock reading. `limit` is
/// asked for only when the hook first waits, and bounds it from then on (a timer
/// could not cut the synchronous first poll short anyway).
pub(crate) async fn run<C, T: Approves>(
    during: &'static str,
    hook: &ConnHook<C, T>,
    conn: &mut C,
    meta: ConnMeta,
    limit: impl FnOnce() -> Duration,
) -> Result<Answered, Refusal> {
    let call = unwind::guard_future(during, || hook(conn, meta));
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(answer) => Poll::Ready(Some(answer)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let (answer, answered) = match first {
        Some(answer) => (Ok(answer), Answered::AtOnce),
        None => {
            let limit = limit();
            (tokio::time::timeout(limit, call).await.map_err(|_| limit), Answered::AfterWaiting)
        }
    };
    let outcome = match answer {
        Err(limit) => Err(Refusal::TimedOut(limit)),
        Ok(Err(panicked)) => Err(Refusal::Panicked(panicked)),
        Ok(Ok(Err(e))) => Err(Refusal::Failed(e)),
        Ok(Ok(Ok(v))) if v.approves() => Ok(answered),
        Ok(Ok(Ok(_))) => Err(Refusal::Declined),
    };
    if let Err(refusal) = &outcome {
        refusal.log(during);
    }
    outcome
}

/// A hook's success value: `()` always approves, a `bool` when `true`.
pub(crate) trait Approves {
    fn approves(&self) -> bool;
}

impl Approves for () {
    fn approves(&self) -> bool {
        true
    }
}

impl Approves for bool {
    fn approves(&self) -> bool {
        *self
    }
}

/// Calls `on_close`, catching (and logging) a panic in it.
pub(crate) fn closed(hook: &Option<CloseHook>, meta: ConnMeta, reason: CloseReason) {
    if let Some(hook) = hook {
        let _ = unwind::guard("on_close", || hook(meta, reason));
    }
}
