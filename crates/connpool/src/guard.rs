//! The checked-out connection guard: returns to the pool on `Drop`.

use crate::manager::Manager;
use crate::meta::ConnMeta;
use crate::pool::{CloseReason, Conn, Pool, Shared};
use std::fmt;
use std::ops::{Deref, DerefMut};
use tokio::time::Instant;

/// A connection checked out of a [`Pool`]. Derefs to the connection; dropping it
/// returns the connection synchronously (no task is spawned), to the oldest waiter if
/// there is one.
///
/// On return the pool closes the connection instead of keeping it when it was marked
/// broken, [`Manager::is_broken`] says so, it outlived `max_lifetime`, the pool is
/// closed, or the guard is dropped while its thread panics.
///
/// ```
/// use poolside_connpool::{Builder, Manager, Pool};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = Vec<u8>;
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
/// #     async fn check(&self, _: &mut Vec<u8>) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::new(Noop);
/// let mut conn = pool.get().await.unwrap();
/// conn.push(1); // DerefMut to the connection
/// conn.mark_broken(); // closed instead of reused
/// drop(conn);
/// assert_eq!(pool.status().open, 0);
/// # }
/// ```
pub struct PooledConn<'a, M: Manager> {
    pool: PoolHandle<'a, M>,
    conn: Option<Conn<M::Connection>>,
    broken: bool,
}

impl<'a, M: Manager> PooledConn<'a, M> {
    pub(crate) fn new(pool: &'a Pool<M>, mut conn: Conn<M::Connection>) -> Self {
        conn.checkouts += 1;
        PooledConn { pool: PoolHandle::Borrowed(pool), conn: Some(conn), broken: false }
    }

    /// Turns this guard into one that owns a handle to its pool, so it is `'static`:
    /// it can move into `tokio::spawn` or be stored in a struct. Costs one reference
    /// count increment. [`Pool::get_owned`] does the same in one call.
    ///
    /// ```
    /// # use poolside_connpool::{Manager, OwnedConn, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u8;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(3) }
    /// #     async fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::new(Noop);
    /// let owned: OwnedConn<Noop> = pool.get().await.unwrap().into_owned();
    /// let task = tokio::spawn(async move { *owned + 1 }); // moved; returned when the task ends
    /// assert_eq!(task.await.unwrap(), 4);
    /// assert_eq!(pool.status().idle, 1);
    /// # }
    /// ```
    pub fn into_owned(mut self) -> OwnedConn<M> {
        let conn = self.conn.take();
        PooledConn { pool: PoolHandle::Owned(self.pool.get().clone()), conn, broken: self.broken }
    }

    /// Closes the connection instead of returning it to the pool.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Takes the connection out of the pool for good; its slot is freed (and handed
    /// to a waiter, if any).
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u8;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(5) }
    /// #     async fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::new(Noop);
    /// let raw: u8 = pool.get().await.unwrap().detach();
    /// assert_eq!(raw, 5);
    /// assert_eq!(pool.status().open, 0);
    /// # }
    /// ```
    pub fn detach(mut self) -> M::Connection {
        let conn = self.take();
        self.pool.get().shared.release_slot();
        conn.raw
    }

    /// When this connection was opened (tokio clock).
    pub fn created_at(&self) -> Instant {
        self.conn_ref().created
    }

    /// This connection's metadata: id, when it was opened and last checked out, and
    /// how many checkouts it served (this one included).
    ///
    /// ```
    /// # use poolside_connpool::{Manager, Pool};
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
    /// let conn = pool.get().await.unwrap();
    /// let meta = conn.meta();
    /// assert_eq!((meta.id, meta.checkouts), (1, 1));
    /// assert_eq!(meta.created_at, conn.created_at());
    /// # }
    /// ```
    pub fn meta(&self) -> ConnMeta {
        self.conn_ref().meta()
    }

    fn take(&mut self) -> Conn<M::Connection> {
        self.conn.take().expect("the connection is present until drop or detach")
    }

    fn conn_ref(&self) -> &Conn<M::Connection> {
        self.conn.as_ref().expect("the connection is present until drop or detach")
    }
}

/// A connection guard that owns a handle to its pool: `'static`, so it can move into a
/// spawned task or live in a struct (like deadpool's `Object` or bb8's
/// `PooledConnection<'static, _>`). Get one with [`Pool::get_owned`] or
/// [`PooledConn::into_owned`]; it behaves exactly like a borrowed [`PooledConn`].
pub type OwnedConn<M> = PooledConn<'static, M>;

/// How a guard reaches its pool: borrowed (the common, free case) or owned.
enum PoolHandle<'a, M: Manager> {
    Borrowed(&'a Pool<M>),
    Owned(Pool<M>),
}

impl<M: Manager> PoolHandle<'_, M> {
    fn get(&self) -> &Pool<M> {
        match self {
            PoolHandle::Borrowed(pool) => pool,
            PoolHandle::Owned(pool) => pool,
        }
    }
}

impl<M: Manager> Deref for PooledConn<'_, M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        &self.conn_ref().raw
    }
}

impl<M: Manager> DerefMut for PooledConn<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn.as_mut().expect("the connection is present until drop or detach").raw
    }
}

impl<M: Manager> Drop for PooledConn<'_, M> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let shared = &*self.pool.get().shared;
        if shared.events.connections_enabled() {
            // `last_used` is the checkout's stamp until the lines below restamp it.
            let held = conn.last_used.elapsed();
            shared.events.connection(poolside_core::ConnEvent::Checkin { id: conn.id, held });
        }
        let config = &shared.config;
        // The clock is read only when a limit or a hook needs it (see
        // `Conn::last_used`): hooks are shown `ConnMeta::idle_for`, which must be
        // the time the connection sat idle, not the time since its checkout.
        let hooks = &shared.hooks;
        let time_limits = config.max_lifetime.is_some() || config.max_idle_time.is_some();
        let now = (time_limits || hooks.before_acquire.is_some() || hooks.after_release.is_some())
            .then(Instant::now);
        if time_limits {
            // Its sweeps enforce the limits on idle connections.
            crate::janitor::revive(shared);
        }
        // `is_broken` is user code: a panic in it counts as broken (and is logged), so
        // the slot below is given back either way.
        let verdict = if self.broken
            || std::thread::panicking()
            || crate::unwind::guard("is_broken", || shared.manager.is_broken(&mut conn.raw))
                .unwrap_or(true)
        {
            Some(CloseReason::Broken)
        } else if now
            .zip(config.max_lifetime)
            .is_some_and(|(now, limit)| now.duration_since(conn.created) >= limit)
        {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        match verdict {
            Some(reason) => {
                shared.close_conn(conn, reason);
                shared.release_slot();
            }
            None => {
                if let Some(now) = now {
                    conn.last_used = now;
                }
                if shared.hooks.after_release.is_none() {
                    shared.put_back(conn, true);
                } else {
                    release_after_hook(self.pool.get(), conn);
                }
            }
        }
    }
}

/// Runs `after_release` on a returned connection in a task on the current runtime,
/// then puts it back (or closes it when the hook refuses it). The dropping caller
/// only spawns. Until the hook answers the connection keeps its slot (counted in
/// use); if the task is dropped unfinished (runtime shutdown) the connection is
/// closed and the slot given back. Outside a runtime the hook cannot run, and the
/// connection is closed rather than reused unreset.
fn release_after_hook<M: Manager>(pool: &Pool<M>, conn: Conn<M::Connection>) {
    let shared = &*pool.shared;
    shared.counters.releases.bump();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "poolside-connpool: a connection returned outside a tokio runtime cannot run after_release; closing it"
        );
        shared.close_conn(conn, CloseReason::Hook);
        shared.release_slot();
        return;
    };
    let mut returning = Returning { shared: pool.shared.clone(), conn: Some(conn) };
    runtime.spawn(async move {
        let shared = returning.shared.clone();
        let Some(hook) = &shared.hooks.after_release else { return };
        let Some(conn) = returning.conn.as_mut() else { return };
        let meta = conn.meta();
        let limit = || shared.config.connect_timeout;
        let verdict = crate::hooks::run("after_release", hook, &mut conn.raw, meta, limit).await;
        let Some(conn) = returning.conn.take() else { return };
        match verdict {
            Ok(_) => shared.put_back(conn, false),
            Err(_) => {
                shared.close_conn(conn, CloseReason::Hook);
                shared.release_slot();
            }
        }
    });
}

/// A returned connection whose `after_release` hook has not answered yet.
struct Returning<M: Manager> {
    shared: std::sync::Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Returning<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_conn(conn, CloseReason::Cancelled);
            self.shared.release_slot();
        }
    }
}

impl<M: Manager> fmt::Debug for PooledConn<'_, M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConn")
            .field("conn", &self.conn.as_ref().map(|c| &c.raw))
            .field("broken", &self.broken)
            .finish()
    }
}
