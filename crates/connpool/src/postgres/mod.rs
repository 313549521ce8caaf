//! A `tokio-postgres` adapter (feature `postgres`): any TLS connector, a choice of
//! recycling, and a per-connection statement cache.

mod client;
#[cfg(feature = "postgres-rustls")]
mod tls;

pub use client::{PgClient, PgQuery, StatementCacheStats};
#[cfg(feature = "postgres-rustls")]
pub use tls::{PgTlsConfig, TlsConfigError};

use crate::manager::Manager;
use client::SharedCounters;
use std::fmt;
use std::sync::Arc;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, Error, NoTls, Socket};

/// How a pooled PostgreSQL connection is made ready for its next user, like
/// deadpool-postgres' `RecyclingMethod`.
///
/// `Verified` (the default) and `Fast` only judge the connection. `Clean` and
/// `Custom` reset the session: the reset is due from the moment the connection comes
/// back to the pool, and runs before the next user's first statement — in the
/// checkout health check when the pool runs one, otherwise in the first call of a
/// [`PgClient`] method (or [`PgClient::ready`]).
///
/// Whatever the method, a transaction the last user opened with SQL text (`BEGIN`,
/// `START TRANSACTION`) through [`PgClient`]'s methods and left open, or aborted, is
/// rolled back the same way before the next user's first statement; deadpool-postgres
/// and bb8-postgres hand such a connection on inside the transaction unless the
/// method resets the session. A `Transaction` dropped uncommitted is rolled back by
/// tokio-postgres itself.
///
/// ```
/// use poolside_connpool::{postgres::PgManager, postgres::RecyclingMethod};
///
/// let config = "postgres://postgres@127.0.0.1:5432/postgres".parse().unwrap();
/// let manager = PgManager::new(config).recycling(RecyclingMethod::Clean);
/// assert_eq!(manager.recycling_method(), &RecyclingMethod::Clean);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecyclingMethod {
    /// Only looks at whether the connection's I/O task has ended (`is_closed`): no
    /// round trip; a server that went away is noticed by the first query instead.
    Fast,
    /// Sends an empty simple query and waits for its answer: one round trip.
    #[default]
    Verified,
    /// What `DISCARD ALL` does, after a `ROLLBACK` when the last user left a
    /// transaction open: open cursors, session settings and authorization, listeners,
    /// advisory locks, cached plans, temporary tables and sequence state are reset,
    /// and prepared statements are gone — the statement cache's are closed with it
    /// and SQL-level `PREPARE`s deallocated. Only tokio-postgres' own type-lookup
    /// statements survive: it caches them for the connection's life, and a literal
    /// `DISCARD ALL` would make every later lookup of a custom type fail.
    ///
    /// Unlike deadpool-postgres' `Clean`, which leaves prepared statements and cached
    /// plans alone, this empties the statement cache: the next user prepares again.
    Clean,
    /// Runs this SQL with the simple query protocol (after a `ROLLBACK` when the last
    /// user left a transaction open). SQL that contains `DISCARD` or `DEALLOCATE`
    /// clears the statement cache too; other statements the SQL drops are noticed by
    /// the cache's SQLSTATE `26000` retry. `DISCARD ALL` or `DEALLOCATE ALL` here also
    /// drop tokio-postgres' type-lookup statements: prefer `Clean` when custom types
    /// (enums, composites, domains) are in use.
    Custom(String),
}

impl RecyclingMethod {
    /// The SQL a reset runs, if this method resets the session.
    fn reset_sql(&self) -> Option<&str> {
        match self {
            RecyclingMethod::Fast | RecyclingMethod::Verified => None,
            RecyclingMethod::Clean => Some(CLEAN_SQL),
            RecyclingMethod::Custom(sql) => Some(sql),
        }
    }

    /// Whether a reset with this method drops the server's prepared statements.
    fn clears_statements(&self) -> bool {
        match self {
            RecyclingMethod::Fast | RecyclingMethod::Verified => false,
            RecyclingMethod::Clean => true,
            RecyclingMethod::Custom(sql) => {
                let sql = sql.to_ascii_uppercase();
                sql.contains("DISCARD") || sql.contains("DEALLOCATE")
            }
        }
    }
}

/// `DISCARD ALL` spelled out, less `DEALLOCATE ALL` (see [`RecyclingMethod::Clean`]),
/// behind a guard that fails with SQLSTATE `25001` inside a transaction block (in
/// one simple-query message, `now()` equals `statement_timestamp()` only when the
/// message began the transaction) so that the caller rolls back and runs it again.
const CLEAN_SQL: &str = "DO $poolside$ DECLARE s record; BEGIN \
    IF now() <> statement_timestamp() THEN \
    RAISE EXCEPTION 'transaction left open' USING ERRCODE = 'active_sql_transaction'; \
    END IF; \
    FOR s IN SELECT name FROM pg_prepared_statements WHERE from_sql \
    LOOP EXECUTE format('DEALLOCATE %I', s.name); END LOOP; END $poolside$; \
    CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES";

/// The statement cache's size of a new [`PgManager`].
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;

/// Opens `tokio-postgres` connections, wrapped in a [`PgClient`] with a bounded
/// statement cache. `T` is the TLS connector: [`PgManager::new`] is the `NoTls`
/// shorthand, [`PgManager::with_tls`] takes any `MakeTlsConnect` (for rustls, see
/// `PgManager::with_rustls`, feature `postgres-rustls`). The URL's or config's
/// `sslmode` is honoured: `disable` never uses TLS, `prefer` (the default) uses it
/// when the server offers it, `require` fails without it.
///
/// Each connection's I/O task is spawned on the current runtime and ends when the
/// client is dropped; a client whose I/O task ended is broken. The manager is a cheap
/// clone whose clones share the statement cache counters
/// ([`PgManager::statement_cache_stats`]).
///
/// ```no_run
/// use poolside_connpool::{Builder, postgres::PgManager, postgres::RecyclingMethod};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = PgManager::new("postgres://postgres@127.0.0.1:5432/postgres".parse()?)
///     .recycling(RecyclingMethod::Clean)
///     .statement_cache_capacity(512)
///     .automatic_statement_cache(true);
/// let pool = Builder::new().max_size(16).build(manager.clone())?;
/// // With the automatic cache a `&str` query is prepared once per connection.
/// let row = pool.get().await?.query_one("SELECT $1::int", &[&7i32]).await?;
/// assert_eq!(row.get::<_, i32>(0), 7);
/// println!("{:?}", manager.statement_cache_stats());
/// # Ok(())
/// # }
/// ```
pub struct PgManager<T = NoTls> {
    config: Config,
    tls: T,
    recycling: RecyclingMethod,
    capacity: usize,
    automatic: bool,
    counters: Arc<SharedCounters>,
}

impl<T: Clone> Clone for PgManager<T> {
    fn clone(&self) -> Self {
        PgManager {
            config: self.config.clone(),
            tls: self.tls.clone(),
            recycling: self.recycling.clone(),
            capacity: self.capacity,
            automatic: self.automatic,
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<T> fmt::Debug for PgManager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("config", &self.config)
            .field("tls", &std::any::type_name::<T>())
            .field("recycling", &self.recycling)
            .field("statement_cache_capacity", &self.capacity)
            .field("automatic_statement_cache", &self.automatic)
            .finish()
    }
}

impl PgManager<NoTls> {
    /// Connects with `config` (parse one from a URL with `str::parse`), without TLS.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let manager = PgManager::new("postgres://postgres@localhost/postgres".parse().unwrap());
    /// assert_eq!(manager.config().get_dbname(), Some("postgres"));
    /// ```
    pub fn new(config: Config) -> Self {
        PgManager::with_tls(config, NoTls)
    }
}

impl<T> PgManager<T> {
    /// Connects with `config` through the TLS connector `tls`.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    /// use tokio_postgres::NoTls;
    ///
    /// let manager = PgManager::with_tls("host=localhost user=postgres".parse().unwrap(), NoTls);
    /// assert_eq!(manager.config().get_user(), Some("postgres"));
    /// ```
    pub fn with_tls(config: Config, tls: T) -> Self {
        PgManager {
            config,
            tls,
            recycling: RecyclingMethod::default(),
            capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
            automatic: false,
            counters: Arc::default(),
        }
    }

    /// Chooses how connections are recycled (default [`RecyclingMethod::Verified`]).
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgManager, postgres::RecyclingMethod};
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap())
    ///     .recycling(RecyclingMethod::Custom("RESET ALL".into()));
    /// assert!(matches!(manager.recycling_method(), RecyclingMethod::Custom(_)));
    /// ```
    pub fn recycling(mut self, method: RecyclingMethod) -> Self {
        self.recycling = method;
        self
    }

    /// How many prepared statements each connection keeps (least recently used
    /// first out; default [`DEFAULT_STATEMENT_CACHE_CAPACITY`]). Every value is
    /// valid: `0` keeps none (each `prepare_cached` prepares anew), and memory grows
    /// only with the statements actually cached, never with the capacity.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap()).statement_cache_capacity(0);
    /// assert_eq!(manager.cache_capacity(), 0);
    /// let manager = manager.statement_cache_capacity(usize::MAX);
    /// assert_eq!(manager.cache_capacity(), usize::MAX);
    /// ```
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Opt-in: `query`, `query_one`, `query_opt` and `execute` of [`PgClient`] called
    /// with SQL text (`&str`, `String`) go through the statement cache, so a repeated
    /// query costs one round trip instead of two. Off by default.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap()).automatic_statement_cache(true);
    /// assert!(manager.is_statement_cache_automatic());
    /// ```
    pub fn automatic_statement_cache(mut self, automatic: bool) -> Self {
        self.automatic = automatic;
        self
    }

    /// The connection config.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let manager = PgManager::new("host=db.example port=6432".parse().unwrap());
    /// assert_eq!(manager.config().get_ports(), &[6432]);
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The recycling method.
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgManager, postgres::RecyclingMethod};
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap());
    /// assert_eq!(manager.recycling_method(), &RecyclingMethod::Verified);
    /// ```
    pub fn recycling_method(&self) -> &RecyclingMethod {
        &self.recycling
    }

    /// Each connection's statement cache capacity.
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgManager, postgres::DEFAULT_STATEMENT_CACHE_CAPACITY};
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap());
    /// assert_eq!(manager.cache_capacity(), DEFAULT_STATEMENT_CACHE_CAPACITY);
    /// ```
    pub fn cache_capacity(&self) -> usize {
        self.capacity
    }

    /// Whether SQL text queries go through the statement cache.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// assert!(!PgManager::new("host=localhost".parse().unwrap()).is_statement_cache_automatic());
    /// ```
    pub fn is_statement_cache_automatic(&self) -> bool {
        self.automatic
    }

    /// The statement cache counters summed over every connection this manager (and
    /// its clones) opened; `len` counts the statements cached right now.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let stats = PgManager::new("host=localhost".parse().unwrap()).statement_cache_stats();
    /// assert_eq!((stats.hits, stats.misses, stats.len), (0, 0, 0));
    /// ```
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.counters.snapshot(self.capacity)
    }

    /// Empties the statement cache of every connection this manager (and its clones)
    /// opened, like deadpool-postgres' `statement_caches.clear()`, e.g. after a
    /// migration. Each connection drops its statements (closing them on the server)
    /// at its next use of its cache — a lookup, `prepare_cached` or
    /// [`PgClient::statement_cache_stats`] — so the summed `len` of
    /// [`statement_cache_stats`](PgManager::statement_cache_stats) falls as they do.
    /// A `Statement` a caller already holds stays valid.
    ///
    /// ```no_run
    /// use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = PgManager::new("host=localhost user=postgres".parse()?);
    /// let pool = Builder::new().build(manager.clone())?;
    /// let conn = pool.get().await?;
    /// conn.prepare_cached("SELECT 1").await?;
    /// manager.clear_statement_caches();
    /// assert_eq!(conn.statement_cache_stats().len, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear_statement_caches(&self) {
        self.counters.clear_all();
    }
}

impl<T> Manager for PgManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = PgClient;
    type Error = Error;

    async fn connect(&self) -> Result<PgClient, Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "poolside-connpool: postgres connection ended");
            }
        });
        Ok(PgClient::new(
            client,
            self.capacity,
            self.automatic,
            self.recycling.reset_sql().map(Into::into),
            self.recycling.clears_statements(),
            Arc::clone(&self.counters),
        ))
    }

    async fn check(&self, conn: &mut PgClient) -> Result<(), Error> {
        match self.recycling {
            // A closed client fails any request at once with tokio-postgres' own
            // "connection closed" error, without a round trip.
            RecyclingMethod::Fast if conn.is_closed() => {
                conn.client().simple_query("").await.map(drop)
            }
            // `ready` purges statements orphaned by a cancelled prepare, if any.
            RecyclingMethod::Fast => conn.ready().await,
            RecyclingMethod::Verified => {
                conn.ready().await?;
                conn.client().simple_query("").await.map(drop)
            }
            RecyclingMethod::Clean | RecyclingMethod::Custom(_) => conn.reset().await,
        }
    }

    fn is_broken(&self, conn: &mut PgClient) -> bool {
        // Runs on every return: a resetting method owes the next user a clean session.
        conn.returned();
        conn.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_sql_that_drops_statements_clears_the_cache() {
        let custom = |sql: &str| RecyclingMethod::Custom(sql.into());
        assert!(custom("discard all").clears_statements());
        assert!(custom("RESET ALL; DEALLOCATE ALL").clears_statements());
        assert!(!custom("RESET ALL").clears_statements());
        assert!(RecyclingMethod::Clean.clears_statements());
        assert!(!RecyclingMethod::Verified.clears_statements());
        assert_eq!(RecyclingMethod::Fast.reset_sql(), None);
        assert_eq!(custom("RESET ALL").reset_sql(), Some("RESET ALL"));
    }

    #[test]
    fn clean_sql_never_deallocates_everything() {
        // A literal DEALLOCATE ALL / DISCARD ALL would drop tokio-postgres' type lookups.
        assert!(!CLEAN_SQL.contains("DEALLOCATE ALL"));
        assert!(!CLEAN_SQL.contains("DISCARD ALL"));
        for part in
            ["RESET ALL", "UNLISTEN *", "pg_advisory_unlock_all", "DISCARD TEMP", "CLOSE ALL"]
        {
            assert!(CLEAN_SQL.contains(part), "{part}");
        }
    }

    #[test]
    fn debug_output_keeps_the_password_out() {
        let manager = PgManager::new("postgres://app:hunter2@db.example/app".parse().unwrap());
        let shown = format!("{manager:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("NoTls"), "{shown}");
    }
}
