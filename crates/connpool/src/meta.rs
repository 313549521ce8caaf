//! What the pool knows about each connection: [`ConnMeta`], and why one was closed:
//! [`CloseReason`].

use std::time::Duration;
use tokio::time::Instant;

/// Facts about one pooled connection, as the pool records them. Read it from a guard
/// ([`PooledConn::meta`](crate::PooledConn::meta)); the hooks and
/// [`Pool::retain`](crate::Pool::retain) receive it too.
///
/// Times are on tokio's clock (so paused time in tests applies). `last_used` is the
/// last checkout; a pool with `max_idle_time` or `max_lifetime`, or with a
/// `before_acquire` or `after_release` hook, also stamps it on every return, so the
/// hooks see [`idle_for`](Self::idle_for) as sqlx's metadata has it: the time spent
/// idle in `before_acquire`, zero in `after_release`.
///
/// ```
/// use poolside_connpool::{Manager, Pool};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::new(Noop);
/// let first = pool.get().await.unwrap().meta();
/// let again = pool.get().await.unwrap().meta();
/// assert_eq!(first.id, again.id); // the same connection, reused
/// assert_eq!((first.checkouts, again.checkouts), (1, 2));
/// assert!(again.last_used >= first.created_at);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMeta {
    /// Unique within its pool, in the order the connections were opened (or added),
    /// starting at 1.
    pub id: u64,
    /// When the connection was opened (or adopted by [`Pool::add`](crate::Pool::add)).
    pub created_at: Instant,
    /// When it was last checked out, or returned (see above).
    pub last_used: Instant,
    /// How many times it has been handed to a caller: read from a guard, this
    /// checkout included; in `before_acquire`, the checkouts before the one being
    /// decided; in `after_release` and `on_close`, all of them.
    pub checkouts: u64,
}

impl ConnMeta {
    /// How long ago the connection was opened.
    ///
    /// ```
    /// # use poolside_connpool::ConnMeta;
    /// let now = tokio::time::Instant::now();
    /// let meta = ConnMeta { id: 1, created_at: now, last_used: now, checkouts: 0 };
    /// assert!(meta.age() < std::time::Duration::from_secs(60));
    /// ```
    pub fn age(&self) -> Duration {
        self.created_at.elapsed()
    }

    /// How long ago the connection was last used (see [`last_used`](Self::last_used)).
    ///
    /// ```
    /// # use poolside_connpool::ConnMeta;
    /// let now = tokio::time::Instant::now();
    /// let meta = ConnMeta { id: 1, created_at: now, last_used: now, checkouts: 0 };
    /// assert!(meta.idle_for() <= meta.age());
    /// ```
    pub fn idle_for(&self) -> Duration {
        self.last_used.elapsed()
    }
}

/// Why the pool closed a connection; passed to the `on_close` hook.
///
/// ```
/// use poolside_connpool::CloseReason;
/// assert_eq!(CloseReason::Hook.to_string(), "a hook rejected it");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Older than `max_lifetime` (on checkout, on return or in the janitor's sweep).
    Lifetime,
    /// Idle for longer than `max_idle_time`.
    Idle,
    /// Marked broken, judged broken by [`Manager::is_broken`](crate::Manager::is_broken),
    /// failed its health check, or user code panicked while it was involved.
    Broken,
    /// `after_connect`, `before_acquire` or `after_release` returned an error or
    /// `false` (or panicked).
    Hook,
    /// The pool shrank ([`Pool::resize`](crate::Pool::resize)) below its open count.
    Resize,
    /// [`Pool::retain`](crate::Pool::retain) rejected it.
    Retain,
    /// The pool was closed.
    PoolClosed,
    /// The `get` (or return task) that held it was dropped while the connection was
    /// being checked or prepared, so its state is unknown.
    Cancelled,
}

impl CloseReason {
    /// A stable snake_case name (`"lifetime"`, `"pool_closed"`, ...), as reported in
    /// [`ConnEvent::Close`](crate::events::ConnEvent::Close).
    ///
    /// ```
    /// assert_eq!(poolside_connpool::CloseReason::PoolClosed.name(), "pool_closed");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            CloseReason::Lifetime => "lifetime",
            CloseReason::Idle => "idle",
            CloseReason::Broken => "broken",
            CloseReason::Hook => "hook",
            CloseReason::Resize => "resize",
            CloseReason::Retain => "retain",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::Lifetime => "past its max lifetime",
            CloseReason::Idle => "idle for too long",
            CloseReason::Broken => "broken",
            CloseReason::Hook => "a hook rejected it",
            CloseReason::Resize => "the pool shrank",
            CloseReason::Retain => "retain rejected it",
            CloseReason::PoolClosed => "the pool closed",
            CloseReason::Cancelled => "cancelled mid-checkout",
        })
    }
}
