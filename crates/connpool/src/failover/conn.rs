//! [`FailoverConn`], the guard of a connection checked out of a [`FailoverPool`].

use super::breaker::Failure;
use super::pool::FailoverPool;
use super::state::Backend;
use super::stats::bump;
use crate::{Manager, PooledConn};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

/// A connection checked out of a [`FailoverPool`]: derefs to the connection and goes
/// back to its pool on drop, unless its primary was demoted meanwhile (then it is
/// closed).
///
/// ```
/// # use poolside_connpool::{failover::Backend, Builder, failover::FailoverBuilder, Manager};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = u8;
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(1) }
/// #     async fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let primary = Builder::new().build(Noop)?;
/// # let spare = Builder::new().min_idle(1).build(Noop)?;
/// let pool = FailoverBuilder::new().build(primary, spare)?;
/// let conn = pool.get().await?;
/// assert_eq!(conn.backend(), Backend::Primary);
/// conn.report_failure(); // closed, and counted against the primary
/// assert_eq!(pool.primary().status().open, 0);
/// # Ok(())
/// # }
/// ```
pub struct FailoverConn<'a, M: Manager> {
    pub(super) conn: Option<PooledConn<'a, M>>,
    pub(super) pool: &'a FailoverPool<M>,
    pub(super) backend: Backend,
    pub(super) epoch: u64,
    /// Set while `run` awaits a request on it: dropped then, the connection is closed.
    pub(super) in_request: bool,
}

impl<'a, M: Manager> FailoverConn<'a, M> {
    /// Which pool this connection came from.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells the pool a request on this connection failed: the connection is closed,
    /// and a failure on the primary counts towards tripping the breaker.
    pub fn report_failure(mut self) {
        if self.backend == Backend::Primary {
            self.pool.inner.record(Failure::Request);
            // Closed below as a failure, not counted again as demoted if it tripped.
            self.epoch = self.pool.inner.epoch.load(Ordering::Acquire);
        }
        self.conn_mut().mark_broken();
    }

    /// Closes the connection on return instead of reusing it, without counting a
    /// failure.
    pub fn mark_broken(&mut self) {
        self.conn_mut().mark_broken();
    }

    /// Takes the connection out of its pool for good.
    pub fn detach(mut self) -> M::Connection {
        self.conn.take().expect("present until drop or detach").detach()
    }

    pub(super) fn conn_mut(&mut self) -> &mut PooledConn<'a, M> {
        self.conn.as_mut().expect("present until drop or detach")
    }
}

impl<M: Manager> Deref for FailoverConn<'_, M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        self.conn.as_deref().expect("present until drop or detach")
    }
}

impl<M: Manager> DerefMut for FailoverConn<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        self.conn.as_deref_mut().expect("present until drop or detach")
    }
}

impl<M: Manager> Drop for FailoverConn<'_, M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        if self.in_request {
            conn.mark_broken();
        }
        let inner = &self.pool.inner;
        if self.backend == Backend::Primary && inner.epoch.load(Ordering::Acquire) != self.epoch {
            conn.mark_broken();
            bump(&inner.counters.discarded_demoted);
        }
    }
}

impl<M: Manager> fmt::Debug for FailoverConn<'_, M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverConn")
            .field("backend", &self.backend)
            .field("conn", &self.conn.as_deref())
            .finish()
    }
}
