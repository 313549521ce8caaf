//! The `Manager` trait: how a pool opens, checks and judges its connections.

use std::future::Future;

/// Opens and health-checks connections for a [`Pool`](crate::Pool).
///
/// The methods return `impl Future + Send` directly (native async functions in
/// traits), so the pool never boxes a future on its hot path.
///
/// ```
/// use poolside_connpool::Manager;
/// use std::convert::Infallible;
///
/// /// Hands out numbers; a stand-in for a real network connection.
/// struct Counter(std::sync::atomic::AtomicU64);
///
/// impl Manager for Counter {
///     type Connection = u64;
///     type Error = Infallible;
///
///     async fn connect(&self) -> Result<u64, Infallible> {
///         Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
///     }
///
///     async fn check(&self, _conn: &mut u64) -> Result<(), Infallible> {
///         Ok(())
///     }
/// }
/// # let _ = Counter(Default::default());
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The connection type the pool hands out.
    type Connection: Send + 'static;
    /// What `connect` and `check` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens one new connection. The pool bounds it with its connect timeout.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Pings a connection before it is handed out (skipped for connections used
    /// within the pool's `health_check_after` window). An error closes the connection.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A cheap, synchronous test run when a connection comes back to the pool and
    /// again before it is handed out (before any health check, so a connection whose
    /// server went away is discarded without a round trip); `true` closes it. The
    /// default keeps every connection.
    ///
    /// Like every method here it may panic: the pool catches and logs the panic and
    /// treats the connection as broken.
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }
}
