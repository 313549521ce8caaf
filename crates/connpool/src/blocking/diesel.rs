//! A [`Manager`] for diesel connections (feature `diesel`): diesel's SQLite backend,
//! with SQLite bundled (no system library needed).
//!
//! The manager is generic over any [`diesel::Connection`]; this crate enables only
//! diesel's `sqlite` backend. Diesel's PostgreSQL backend links the system `libpq`
//! (or builds it from C sources, with OpenSSL, through `pq-sys/bundled`), which this
//! crate does not impose on its users: enable `diesel/postgres` in your own
//! `Cargo.toml` and `DieselManager::<PgConnection>` works the same way.
//!
//! ```
//! use diesel::prelude::*;
//! use diesel::sqlite::SqliteConnection;
//! use poolside_connpool::blocking::{Builder, diesel::DieselManager};
//!
//! let pool = Builder::new()
//!     .max_size(4)
//!     .build(DieselManager::<SqliteConnection>::new(":memory:"))
//!     .unwrap();
//! let mut conn = pool.get().unwrap();
//! let n: i32 = diesel::select(1.into_sql::<diesel::sql_types::Integer>())
//!     .get_result(&mut *conn)
//!     .unwrap();
//! assert_eq!(n, 1);
//! ```

use super::Manager;
use diesel::connection::{Connection, TransactionManager};
use std::fmt;
use std::marker::PhantomData;

/// Establishes diesel connections of type `C` to one database URL.
pub struct DieselManager<C> {
    url: String,
    _connection: PhantomData<fn() -> C>,
}

impl<C> DieselManager<C> {
    /// A manager for `url` (for SQLite: a file path, `:memory:`, or a `file:` URI).
    ///
    /// ```
    /// use poolside_connpool::blocking::diesel::DieselManager;
    /// let manager = DieselManager::<diesel::sqlite::SqliteConnection>::new("app.db");
    /// # let _ = manager;
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        DieselManager { url: url.into(), _connection: PhantomData }
    }
}

impl<C> fmt::Debug for DieselManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DieselManager")
            .field("url", &self.url)
            .field("connection", &std::any::type_name::<C>())
            .finish()
    }
}

/// Why a diesel connection could not be opened or checked.
///
/// ```
/// use poolside_connpool::blocking::diesel::DieselError;
/// let err = DieselError::Connection(diesel::ConnectionError::BadConnection("gone".into()));
/// assert!(err.to_string().contains("gone"));
/// ```
#[derive(Debug)]
pub enum DieselError {
    /// `establish` failed.
    Connection(diesel::ConnectionError),
    /// The health-check query failed.
    Query(diesel::result::Error),
}

impl fmt::Display for DieselError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DieselError::Connection(e) => write!(f, "diesel connection failed: {e}"),
            DieselError::Query(e) => write!(f, "diesel health check failed: {e}"),
        }
    }
}

impl std::error::Error for DieselError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DieselError::Connection(e) => Some(e),
            DieselError::Query(e) => Some(e),
        }
    }
}

impl From<diesel::ConnectionError> for DieselError {
    fn from(e: diesel::ConnectionError) -> Self {
        DieselError::Connection(e)
    }
}

/// So an [`after_connect`](super::Builder::after_connect) hook can use `?` on
/// diesel queries.
impl From<diesel::result::Error> for DieselError {
    fn from(e: diesel::result::Error) -> Self {
        DieselError::Query(e)
    }
}

impl<C> Manager for DieselManager<C>
where
    C: Connection + Send + 'static,
{
    type Connection = C;
    type Error = DieselError;

    fn connect(&self) -> Result<C, DieselError> {
        C::establish(&self.url).map_err(DieselError::Connection)
    }

    fn check(&self, conn: &mut C) -> Result<(), DieselError> {
        conn.batch_execute("SELECT 1").map_err(DieselError::Query)
    }

    /// A connection whose transaction manager is broken (a transaction that could
    /// not be rolled back, e.g. after a panic inside it) is closed.
    fn is_broken(&self, conn: &mut C) -> bool {
        C::TransactionManager::is_broken_transaction_manager(conn)
    }
}
