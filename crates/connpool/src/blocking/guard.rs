//! The checked-out connection guard.

use super::manager::Manager;
use super::pool::Pool;
use super::shared::Conn;
use crate::CloseReason;
use poolside_core::ConnEvent;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// A connection checked out of a blocking [`Pool`]. Derefs to the connection; goes
/// back to the pool when dropped.
///
/// On drop the connection is closed instead of reused when it was
/// [marked broken](Self::mark_broken), when the thread is panicking (it may be
/// half-way through a transaction), when [`Manager::is_broken`] says so (or
/// panics), or when it is past its lifetime.
///
/// ```
/// use poolside_connpool::blocking::{Manager, Pool};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = String;
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<String, Self::Error> { Ok(String::new()) }
/// #     fn check(&self, _: &mut String) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let pool = Pool::new(Noop);
/// let mut conn = pool.get().unwrap();
/// conn.push_str("hello");
/// drop(conn);
/// assert_eq!(*pool.get().unwrap(), "hello");
/// ```
pub struct PooledConn<'a, M: Manager> {
    pool: &'a Pool<M>,
    conn: Option<Conn<M::Connection>>,
    broken: bool,
}

impl<'a, M: Manager> PooledConn<'a, M> {
    pub(crate) fn new(pool: &'a Pool<M>, conn: Conn<M::Connection>) -> Self {
        PooledConn { pool, conn: Some(conn), broken: false }
    }

    fn conn_ref(&self) -> &Conn<M::Connection> {
        self.conn.as_ref().expect("the connection is present until drop or detach")
    }

    /// Closes the connection when the guard drops instead of returning it.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// let mut conn = pool.get().unwrap();
    /// conn.mark_broken();
    /// drop(conn);
    /// assert_eq!(pool.status().open, 0);
    /// ```
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Takes the connection out of the pool for good; its slot is freed.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u8;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<u8, Self::Error> { Ok(3) }
    /// #     fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// let raw: u8 = pool.get().unwrap().detach();
    /// assert_eq!(raw, 3);
    /// assert_eq!(pool.status().open, 0);
    /// ```
    pub fn detach(mut self) -> M::Connection {
        let conn = self.conn.take().expect("the connection is present until drop or detach");
        self.pool.shared.release_slot();
        conn.raw
    }

    /// When the connection was opened.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// let conn = pool.get().unwrap();
    /// assert!(conn.created_at() <= std::time::Instant::now());
    /// ```
    pub fn created_at(&self) -> Instant {
        self.conn_ref().created
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
        let shared = &*self.pool.shared;
        if shared.events.connections_enabled() {
            // `last_used` is still the checkout's stamp: it is restamped below.
            let held = conn.last_used.elapsed();
            shared.events.connection(ConnEvent::Checkin { id: conn.id, held });
        }
        // `is_broken` is user code: a panic in it counts as broken (and is logged).
        let broken = self.broken || std::thread::panicking() || shared.judged_broken(&mut conn);
        // The clock is read only when a limit needs it: without idle or lifetime
        // limits, `last_used` keeps the checkout time, which can only bring a health
        // check forward, never skip one.
        let now = shared.config.options.has_time_limits().then(Instant::now);
        let verdict = if broken {
            Some(CloseReason::Broken)
        } else {
            now.and_then(|now| shared.expired(&conn, now)).filter(|r| *r == CloseReason::Lifetime)
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
                shared.counters.releases.bump();
                shared.put_back(conn);
            }
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
