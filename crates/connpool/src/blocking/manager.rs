//! The synchronous `Manager` trait: how a blocking pool opens, checks and judges its
//! connections.

/// Opens and health-checks connections for a blocking [`Pool`](super::Pool).
///
/// Every method is an ordinary blocking call; the pool runs `connect` and `check` on
/// a short-lived helper thread so it can bound them with its connect timeout and the
/// caller's wait limit (a black-holed server cannot hang `get`). A method may panic,
/// and so may the connection's `Drop`: the pool catches and logs the panic and gives
/// the slot back. A panicking `connect` fails the `get` with
/// [`GetError::Panicked`](crate::GetError::Panicked); a panicking `check` counts as a
/// failed check and a panicking `is_broken` as broken, so the connection is closed.
///
/// ```
/// use poolside_connpool::blocking::Manager;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Hands out numbers; a stand-in for a real connection.
/// struct Counter(AtomicU64);
///
/// impl Manager for Counter {
///     type Connection = u64;
///     type Error = std::io::Error;
///
///     fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(self.0.fetch_add(1, Ordering::Relaxed))
///     }
///
///     fn check(&self, _conn: &mut u64) -> Result<(), std::io::Error> {
///         Ok(())
///     }
/// }
/// # let m = Counter(AtomicU64::new(0));
/// # assert_eq!(m.connect().unwrap(), 0);
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The connection type the pool hands out.
    type Connection: Send + 'static;
    /// What `connect` and `check` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens one new connection. The pool bounds it with its connect timeout.
    fn connect(&self) -> Result<Self::Connection, Self::Error>;

    /// Pings a connection before it is handed out (skipped for connections used
    /// within the pool's `health_check_after` window). An error closes the connection.
    fn check(&self, conn: &mut Self::Connection) -> Result<(), Self::Error>;

    /// A cheap test run when a connection comes back to the pool and when an idle one
    /// is checked out; `true` closes it instead of keeping it or handing it out. The
    /// default keeps every connection.
    ///
    /// It runs on the calling thread and is not bounded by any timeout: keep it to
    /// looking at the connection's own state, without I/O (`check` is the place for a
    /// round trip).
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }
}
