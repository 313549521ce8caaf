//! The pooled PostgreSQL connection: a `tokio_postgres::Client` with a bounded
//! statement cache and the session reset its recycling method owes.
//!
//! Longer than most files on purpose: every query method of `PgClient` goes through
//! the same cache protocol (look up, prepare on a miss, evict and close the evicted
//! statement, retry once on a stale plan), and keeping them beside the cache keeps
//! that protocol in one place.

use lru::LruCache;
use parking_lot::Mutex;
use std::fmt;
use std::fmt::Write as _;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, Row, SimpleQueryMessage, Statement, Transaction};

/// Statement cache counters: of one connection ([`PgClient::statement_cache_stats`])
/// or summed over a manager's connections
/// ([`PgManager::statement_cache_stats`](crate::postgres::PgManager::statement_cache_stats)).
///
/// ```
/// use poolside_connpool::postgres::StatementCacheStats;
///
/// let stats = StatementCacheStats::default();
/// assert_eq!(stats.hit_ratio(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to prepare the statement.
    pub misses: u64,
    /// Statements dropped to keep the cache within its capacity (the server's
    /// prepared statement is closed with it).
    pub evictions: u64,
    /// Statements dropped because the server rejected them (SQLSTATE `0A000`
    /// "cached plan must not change result type", or `26000` "prepared statement
    /// does not exist") before a transparent retry.
    pub invalidations: u64,
    /// Statements cached now.
    pub len: usize,
    /// The most statements one connection keeps.
    pub capacity: usize,
}

impl StatementCacheStats {
    /// `hits / (hits + misses)`, or `None` before the first lookup.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgManager;
    ///
    /// let manager = PgManager::new("host=localhost".parse().unwrap());
    /// assert_eq!(manager.statement_cache_stats().hit_ratio(), None);
    /// ```
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

/// Counters shared by a manager and every connection it opened.
#[derive(Debug, Default)]
pub(super) struct SharedCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
    len: AtomicUsize,
    /// Bumped by `PgManager::clear_statement_caches`: a connection that has seen an
    /// older value empties its cache before its next use of it.
    epoch: AtomicU64,
}

impl SharedCounters {
    pub(super) fn clear_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn snapshot(&self, capacity: usize) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            len: self.len.load(Ordering::Relaxed),
            capacity,
        }
    }
}

/// One connection's cache. Invariant: `lru.len() <= capacity`, and the shared `len`
/// counter includes exactly `lru.len()` for this connection.
struct Cache<V> {
    // Unbounded map, bounded by hand: `LruCache::new` would reserve room for
    // `capacity` entries up front, which a large capacity cannot afford.
    lru: LruCache<String, V>,
    capacity: usize,
    stats: StatementCacheStats,
}

impl<V: Clone> Cache<V> {
    fn new(capacity: usize) -> Self {
        Cache {
            lru: LruCache::unbounded(),
            capacity,
            stats: StatementCacheStats { capacity, ..StatementCacheStats::default() },
        }
    }

    /// The value for `key`, now the most recently used; counts a hit or a miss.
    fn lookup(&mut self, key: &str) -> Option<V> {
        let found = self.lru.get(key).cloned();
        match found {
            Some(_) => self.stats.hits += 1,
            None => self.stats.misses += 1,
        }
        found
    }

    /// Caches `value` (nothing at capacity 0) and returns what left to keep the
    /// bound, least recently used first, and whether `key` is new.
    fn insert(&mut self, key: &str, value: V) -> (bool, Vec<V>) {
        if self.capacity == 0 {
            return (false, Vec::new());
        }
        let added = self.lru.put(key.to_owned(), value).is_none();
        let mut evicted = Vec::new();
        while self.lru.len() > self.capacity {
            let Some((_, old)) = self.lru.pop_lru() else { break };
            evicted.push(old);
        }
        self.stats.evictions += evicted.len() as u64;
        (added, evicted)
    }

    /// Drops `key`'s entry (counted as an invalidation).
    fn invalidate(&mut self, key: &str) -> Option<V> {
        self.stats.invalidations += 1;
        self.lru.pop(key)
    }

    /// Drops the entry whose value `is_it` picks, if any (counted as an
    /// invalidation when there is one).
    fn invalidate_value(&mut self, is_it: impl Fn(&V) -> bool) -> Option<V> {
        let key = self.lru.iter().find(|(_, value)| is_it(value)).map(|(key, _)| key.clone())?;
        self.stats.invalidations += 1;
        self.lru.pop(&key)
    }

    /// Drops every entry.
    fn clear(&mut self) -> LruCache<String, V> {
        std::mem::replace(&mut self.lru, LruCache::unbounded())
    }
}

/// SQL text or an already prepared statement: what [`PgClient`]'s query methods take.
///
/// Implemented for `str`, `String` and `tokio_postgres::Statement`; sealed.
///
/// ```
/// fn takes<Q: poolside_connpool::postgres::PgQuery + ?Sized>(_: &Q) {}
/// takes("SELECT 1");
/// takes(&String::from("SELECT 1"));
/// ```
pub trait PgQuery: sealed::Sealed + Sync {}

mod sealed {
    use tokio_postgres::Statement;

    #[derive(Debug)]
    pub enum QueryRef<'a> {
        Sql(&'a str),
        Prepared(&'a Statement),
    }

    // Public in a private module: callers can name `PgQuery` but neither call nor
    // implement what it is built on.
    #[allow(unreachable_pub)]
    pub trait Sealed {
        fn as_query(&self) -> QueryRef<'_>;
    }

    impl Sealed for str {
        fn as_query(&self) -> QueryRef<'_> {
            QueryRef::Sql(self)
        }
    }

    impl Sealed for String {
        fn as_query(&self) -> QueryRef<'_> {
            QueryRef::Sql(self)
        }
    }

    impl Sealed for Statement {
        fn as_query(&self) -> QueryRef<'_> {
            QueryRef::Prepared(self)
        }
    }
}

impl PgQuery for str {}
impl PgQuery for String {}
impl PgQuery for Statement {}

use sealed::QueryRef;

/// Whether the server rejected a cached statement in a way a fresh prepare fixes.
fn is_stale(error: &Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED
            || *code == SqlState::INVALID_SQL_STATEMENT_NAME
    )
}

/// Whether a statement failed because the session is inside a transaction block.
fn in_transaction(error: &Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::ACTIVE_SQL_TRANSACTION
            || *code == SqlState::IN_FAILED_SQL_TRANSACTION
    )
}

/// What SQL text given to a `PgClient` method may do to the session beyond its
/// results, as far as its words tell. Every guess errs on the safe side: a false
/// alarm costs one round trip at the next checkout or one prepare again, never a
/// session handed on inside a transaction or a statement the server forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SqlEffects {
    /// A `BEGIN` or `START TRANSACTION` (or those words anywhere, e.g. in a `DO`
    /// block): a transaction may be open once it ran.
    opens_transaction: bool,
    /// A `DISCARD` or `DEALLOCATE`: the server may have dropped prepared statements.
    drops_statements: bool,
    /// The last statement is a plain `COMMIT`, `ROLLBACK` or `ABORT` (`WORK` or
    /// `TRANSACTION` may follow; not `AND CHAIN`, not `TO SAVEPOINT`): when the text
    /// ran without error, no transaction is open.
    ends_transaction: bool,
}

impl SqlEffects {
    fn of(sql: &str) -> Self {
        let mut effects = SqlEffects::default();
        // Whether the last whitespace-separated token was exactly `START`.
        let mut after_start = false;
        for token in sql.split_whitespace() {
            let mut words = token
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| !word.is_empty());
            let first = words.next();
            if after_start && first.is_some_and(|word| word.eq_ignore_ascii_case("TRANSACTION")) {
                effects.opens_transaction = true;
            }
            after_start = token.eq_ignore_ascii_case("START");
            for word in first.into_iter().chain(words) {
                let is = |keyword: &str| word.eq_ignore_ascii_case(keyword);
                if is("BEGIN") {
                    effects.opens_transaction = true;
                } else if is("DISCARD") || is("DEALLOCATE") {
                    effects.drops_statements = true;
                }
            }
        }
        let text = sql.trim_end_matches(|c: char| c.is_whitespace() || c == ';');
        let last = &text[text.rfind(';').map_or(0, |i| i + 1)..];
        let mut words = last.split_whitespace();
        let is = |word: Option<&str>, keywords: &[&str]| {
            word.is_some_and(|w| keywords.iter().any(|k| w.eq_ignore_ascii_case(k)))
        };
        effects.ends_transaction = is(words.next(), &["COMMIT", "ROLLBACK", "ABORT"])
            && match words.next() {
                None => true,
                second => is(second, &["WORK", "TRANSACTION"]) && words.next().is_none(),
            };
        effects
    }
}

/// SQL text about to run: what it may do, and the count of transaction openings
/// that a successful run of it settles.
struct TextRun {
    effects: SqlEffects,
    opened: u64,
}

/// Rolls back a transaction the last user left open: fails with SQLSTATE `25001`
/// inside a transaction block (in one simple-query message, `now()` equals
/// `statement_timestamp()` only when the message began the transaction), or with
/// `25P02` inside an aborted one, and the caller then sends `ROLLBACK`.
const TRANSACTION_GUARD_SQL: &str = "DO $poolside$ BEGIN \
    IF now() <> statement_timestamp() THEN \
    RAISE EXCEPTION 'transaction left open' USING ERRCODE = 'active_sql_transaction'; \
    END IF; END $poolside$";

/// The connection a [`PgManager`](crate::postgres::PgManager) pool hands out: a
/// `tokio_postgres::Client` (reachable through `Deref`) with a per-connection,
/// bounded LRU statement cache.
///
/// Its own `query`, `query_one`, `query_opt`, `execute`, `prepare`,
/// `prepare_cached`, `batch_execute`, `simple_query` and `transaction` first run the
/// session reset the recycling method owes (see
/// [`RecyclingMethod`](crate::postgres::RecyclingMethod)); methods of the `Client` reached
/// through `Deref` do not, so call [`PgClient::ready`] before using them on a pool
/// with `Clean` or `Custom` recycling.
///
/// With the manager's automatic mode on, SQL text given to `query`, `query_one`,
/// `query_opt` and `execute` is prepared once per connection and then executed from
/// the cache (one round trip instead of two). A cached statement that the server
/// rejects with SQLSTATE `0A000` (its result type changed, e.g. after `ALTER TABLE`)
/// or `26000` (it no longer exists, e.g. after a `DISCARD ALL`) is dropped, prepared
/// again and run once more. Inside an explicit transaction that retry cannot help:
/// the first error has already aborted the transaction.
///
/// A statement a caller runs through these methods (from `prepare_cached` or
/// `prepare_typed_cached`) is watched the same way: when the server has forgotten it
/// (`26000`) every cached statement is dropped, as a `DISCARD ALL` or `DEALLOCATE
/// ALL` dropped them all; when its result type changed (`0A000`) it leaves the
/// cache. That call still fails (the caller holds the stale statement), and the
/// next `prepare_cached` prepares it again. SQL text given to any of these methods
/// that contains `DISCARD` or `DEALLOCATE` empties the cache once it ran.
///
/// A transaction opened with SQL text (`BEGIN`, `START TRANSACTION`) through these
/// methods and not ended by the last user is rolled back before the next user's
/// first statement, whatever the recycling method (one round trip at that checkout,
/// owed only after such text ran without a plain `COMMIT`, `ROLLBACK` or `ABORT` as
/// the last statement of a later call). A [`Transaction`] dropped uncommitted is
/// rolled back by tokio-postgres itself.
///
/// ```no_run
/// use poolside_connpool::{Builder, postgres::PgManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Builder::new().build(PgManager::new("postgres://postgres@localhost/postgres".parse()?))?;
/// let conn = pool.get().await?;
/// let statement = conn.prepare_cached("SELECT $1::int + 1").await?;
/// let row = conn.query_one(&statement, &[&41i32]).await?;
/// assert_eq!(row.get::<_, i32>(0), 42);
/// assert_eq!(conn.statement_cache_stats().misses, 1);
/// # Ok(())
/// # }
/// ```
pub struct PgClient {
    client: Client,
    cache: Mutex<Cache<Statement>>,
    automatic: bool,
    reset_sql: Option<Box<str>>,
    reset_clears_statements: bool,
    /// Set when the connection comes back to the pool owing a reset or a purge;
    /// cleared by a successful one.
    reset_due: AtomicBool,
    /// A prepare was cancelled after its Parse message left: the server holds a
    /// statement no `Statement` value will ever close. Purged (`DEALLOCATE ALL`) at
    /// the next checkout, when no caller holds this connection's statements.
    orphaned_statements: AtomicBool,
    /// How many calls ran SQL text that may open a transaction, and how many of those
    /// a later `COMMIT` / `ROLLBACK` or a reset settled: a transaction may be open
    /// while they differ.
    transactions_opened: AtomicU64,
    transactions_settled: AtomicU64,
    /// Serialises the reset against concurrent calls on one borrowed connection.
    reset_lock: tokio::sync::Mutex<()>,
    counters: Arc<SharedCounters>,
    /// The manager's cache epoch this cache was last emptied for.
    seen_epoch: AtomicU64,
}

impl fmt::Debug for PgClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgClient")
            .field("closed", &self.client.is_closed())
            .field("statement_cache", &self.statement_cache_stats())
            .field("automatic_statement_cache", &self.automatic)
            .field("reset_due", &self.reset_due.load(Ordering::Relaxed))
            .finish()
    }
}

impl Deref for PgClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        let len = self.cache.get_mut().lru.len();
        self.counters.len.fetch_sub(len, Ordering::Relaxed);
    }
}

/// Deallocates every prepared statement of the session except tokio-postgres' own
/// type lookups (it caches those for the connection's life and cannot prepare them
/// again): run when no `Statement` of this connection is held, so the rest are
/// orphans of cancelled prepares or SQL-level `PREPARE`s.
const PURGE_SQL: &str = "DO $poolside$ DECLARE s record; BEGIN \
    FOR s IN SELECT name FROM pg_prepared_statements \
    WHERE statement NOT LIKE '%FROM pg_catalog.pg_type t%' \
    AND statement NOT LIKE '%FROM pg_catalog.pg_enum%' \
    AND statement NOT LIKE '%FROM pg_catalog.pg_attribute%' \
    LOOP EXECUTE format('DEALLOCATE %I', s.name); END LOOP; END $poolside$";

/// Still armed when dropped only if a prepare was cancelled midway: the server may
/// then hold a statement that no `Statement` value will ever close.
struct OrphanGuard<'a> {
    flag: &'a AtomicBool,
    armed: bool,
}

impl Drop for OrphanGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Release);
        }
    }
}

/// Runs `$run` (an expression using `$st`, the statement) with the cached statement
/// for `$sql`; a cached statement the server calls stale is replaced once.
macro_rules! through_cache {
    ($self:ident, $sql:expr, |$st:ident| $run:expr) => {{
        let sql: &str = $sql;
        let ($st, hit) = $self.cached(sql).await?;
        match $run.await {
            Err(e) if hit && is_stale(&e) => {
                tracing::debug!(error = %e, sql, "poolside-connpool: cached statement invalidated; preparing it again");
                $self.invalidate(sql);
                let ($st, _) = $self.cached(sql).await?;
                $run.await
            }
            other => other,
        }
    }};
}

/// The body of a query method `$method` of `PgClient`: runs the reset owed, then SQL
/// text through the cache (automatic mode) or as it is, with its effects noted, or
/// a prepared statement, watched for staleness.
macro_rules! dispatch {
    ($self:ident, $statement:expr, $method:ident, $params:expr) => {{
        $self.ready().await?;
        match $statement.as_query() {
            QueryRef::Sql(sql) => {
                let run = $self.before_text(sql);
                let result = async {
                    if $self.automatic {
                        through_cache!($self, sql, |st| $self.client.$method(&st, $params))
                    } else {
                        $self.client.$method(sql, $params).await
                    }
                }
                .await;
                $self.after_text(run, &result);
                result
            }
            QueryRef::Prepared(st) => {
                let result = $self.client.$method(st, $params).await;
                if let Err(e) = &result {
                    $self.forget_stale(st, e);
                }
                result
            }
        }
    }};
}

impl PgClient {
    pub(super) fn new(
        client: Client,
        capacity: usize,
        automatic: bool,
        reset_sql: Option<Box<str>>,
        reset_clears_statements: bool,
        counters: Arc<SharedCounters>,
    ) -> Self {
        PgClient {
            client,
            cache: Mutex::new(Cache::new(capacity)),
            automatic,
            reset_sql,
            reset_clears_statements,
            reset_due: AtomicBool::new(false),
            orphaned_statements: AtomicBool::new(false),
            transactions_opened: AtomicU64::new(0),
            transactions_settled: AtomicU64::new(0),
            reset_lock: tokio::sync::Mutex::new(()),
            seen_epoch: AtomicU64::new(counters.epoch.load(Ordering::Acquire)),
            counters,
        }
    }

    /// The underlying client, without running a pending reset (see [`PgClient::ready`]).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// let client: &tokio_postgres::Client = conn.client();
    /// client.batch_execute("SELECT 1").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs the session reset that the recycling method still owes this connection
    /// (`Clean`: what `DISCARD ALL` does; `Custom`: its SQL), and the purge of
    /// statements orphaned by a cancelled prepare, if any; a no-op otherwise. Every
    /// query method of `PgClient` calls it first.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager, postgres::RecyclingMethod};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let manager = PgManager::new("host=localhost user=postgres".parse()?).recycling(RecyclingMethod::Clean);
    /// # let pool = Builder::new().build(manager)?;
    /// let conn = pool.get().await?;
    /// conn.ready().await?;
    /// // The previous user's session state is gone before this raw client call.
    /// conn.client().batch_execute("LISTEN jobs").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ready(&self) -> Result<(), Error> {
        if !self.reset_due.load(Ordering::Acquire) {
            return Ok(());
        }
        let _serial = self.reset_lock.lock().await;
        if self.reset_due.load(Ordering::Acquire) {
            self.reset_now().await?;
        }
        Ok(())
    }

    /// Resets the session now (if the recycling method resets at all).
    pub(super) async fn reset(&self) -> Result<(), Error> {
        let _serial = self.reset_lock.lock().await;
        self.reset_now().await
    }

    /// Caller holds `reset_lock`. The flags are cleared only once the reset has
    /// succeeded, so a reset that fails or is cancelled midway runs again next time.
    async fn reset_now(&self) -> Result<(), Error> {
        let purge = self.orphaned_statements.load(Ordering::Acquire);
        let opened = self.transactions_opened.load(Ordering::Acquire);
        let rollback = opened != self.transactions_settled.load(Ordering::Acquire);
        self.reset_session(purge, rollback).await?;
        if purge {
            self.orphaned_statements.store(false, Ordering::Release);
        }
        self.transactions_settled.fetch_max(opened, Ordering::AcqRel);
        self.reset_due.store(false, Ordering::Release);
        Ok(())
    }

    async fn reset_session(&self, purge: bool, rollback: bool) -> Result<(), Error> {
        if purge || self.reset_clears_statements {
            // Dropping the statements queues their Close messages ahead of the reset.
            self.clear_statement_cache();
        }
        match self.reset_sql.as_deref() {
            // Every reset SQL rolls back a transaction left open itself.
            Some(sql) => self.run_outside_transaction(sql).await?,
            None if rollback => self.run_outside_transaction(TRANSACTION_GUARD_SQL).await?,
            None if !purge => return self.client.simple_query("").await.map(drop),
            None => {}
        }
        if purge {
            self.client.batch_execute(PURGE_SQL).await?;
        }
        Ok(())
    }

    /// Runs `sql`, which refuses to run inside a transaction block (SQLSTATE `25001`
    /// or `25P02`); when it refuses, rolls the transaction back and runs it again.
    async fn run_outside_transaction(&self, sql: &str) -> Result<(), Error> {
        match self.client.batch_execute(sql).await {
            Err(e) if in_transaction(&e) => {
                tracing::debug!(error = %e, "poolside-connpool: rolling back a transaction left open");
                self.client.batch_execute("ROLLBACK").await?;
                self.client.batch_execute(sql).await
            }
            other => other,
        }
    }

    /// Whether SQL text that may have opened a transaction ran since the last
    /// `COMMIT` / `ROLLBACK` text or reset.
    fn transaction_may_be_open(&self) -> bool {
        self.transactions_opened.load(Ordering::Acquire)
            != self.transactions_settled.load(Ordering::Acquire)
    }

    /// The connection came back to the pool.
    pub(super) fn returned(&mut self) {
        if self.reset_sql.is_some()
            || self.orphaned_statements.load(Ordering::Acquire)
            || self.transaction_may_be_open()
        {
            self.reset_due.store(true, Ordering::Release);
            if self.reset_clears_statements {
                self.clear_statement_cache();
            }
        }
    }

    /// Notes what `sql` may do, right before it is sent.
    fn before_text(&self, sql: &str) -> TextRun {
        let effects = SqlEffects::of(sql);
        let opened = if effects.opens_transaction {
            self.transactions_opened.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.transactions_opened.load(Ordering::Acquire)
        };
        TextRun { effects, opened }
    }

    /// Settles what `run`'s text did, once it ran (or failed).
    fn after_text<T>(&self, run: TextRun, result: &Result<T, Error>) {
        if run.effects.drops_statements {
            self.clear_statement_cache();
        }
        if run.effects.ends_transaction && result.is_ok() {
            self.transactions_settled.fetch_max(run.opened, Ordering::AcqRel);
        }
    }

    /// Drops what a failed run of `statement` shows to be stale: every cached
    /// statement when the server no longer knows it, or `statement` itself when its
    /// result type changed.
    fn forget_stale(&self, statement: &Statement, error: &Error) {
        let Some(code) = error.code() else { return };
        if *code == SqlState::INVALID_SQL_STATEMENT_NAME {
            // Statements leave the server one by one only through this cache (or a
            // caller's own DEALLOCATE by name); a forgotten one means the session's
            // statements went all at once (DISCARD ALL, DEALLOCATE ALL).
            tracing::debug!(error = %error, "poolside-connpool: prepared statement forgotten by the server; emptying the statement cache");
            self.cache.lock().stats.invalidations += 1;
            self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
            self.clear_statement_cache();
        } else if *code == SqlState::FEATURE_NOT_SUPPORTED && !statement.columns().is_empty() {
            // Clones of one statement share its column list: the pointer names it.
            let columns = statement.columns().as_ptr();
            let removed = self
                .cache
                .lock()
                .invalidate_value(|cached| std::ptr::eq(cached.columns().as_ptr(), columns));
            if removed.is_some() {
                tracing::debug!(error = %error, "poolside-connpool: cached statement invalidated");
                self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
                self.counters.len.fetch_sub(1, Ordering::Relaxed);
            }
            // The server's Close is sent here, outside the lock.
            drop(removed);
        }
    }

    /// This connection's statement cache counters.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// conn.prepare_cached("SELECT 1").await?;
    /// conn.prepare_cached("SELECT 1").await?;
    /// let stats = conn.statement_cache_stats();
    /// assert_eq!((stats.misses, stats.hits, stats.len), (1, 1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.follow_manager_clear();
        let cache = self.cache.lock();
        StatementCacheStats { len: cache.lru.len(), ..cache.stats }
    }

    /// Drops every cached statement (the server's prepared statements are closed
    /// with them).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// conn.prepare_cached("SELECT 1").await?;
    /// conn.clear_statement_cache();
    /// assert_eq!(conn.statement_cache_stats().len, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear_statement_cache(&self) {
        let dropped = self.cache.lock().clear();
        self.counters.len.fetch_sub(dropped.len(), Ordering::Relaxed);
        // The statements' Drop sends their Close messages, outside the lock.
        drop(dropped);
    }

    /// Whether the connection's I/O task has ended.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// assert!(!pool.get().await?.is_closed());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Empties the cache if the manager cleared every cache since this one last
    /// looked (`PgManager::clear_statement_caches`).
    fn follow_manager_clear(&self) {
        let epoch = self.counters.epoch.load(Ordering::Acquire);
        if self.seen_epoch.load(Ordering::Acquire) != epoch
            && self.seen_epoch.swap(epoch, Ordering::AcqRel) != epoch
        {
            self.clear_statement_cache();
        }
    }

    fn lookup(&self, sql: &str) -> Option<Statement> {
        self.follow_manager_clear();
        let found = self.cache.lock().lookup(sql);
        let counter = if found.is_some() { &self.counters.hits } else { &self.counters.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn insert(&self, sql: &str, statement: Statement) {
        let (added, evicted) = self.cache.lock().insert(sql, statement);
        self.counters.evictions.fetch_add(evicted.len() as u64, Ordering::Relaxed);
        // One update by the net change: the shared count never passes the caches'
        // bound, not even between an insert and the eviction it causes.
        let (grew, shrank) = (usize::from(added), evicted.len());
        match grew.cmp(&shrank) {
            std::cmp::Ordering::Greater => {
                self.counters.len.fetch_add(grew - shrank, Ordering::Relaxed);
            }
            std::cmp::Ordering::Less => {
                self.counters.len.fetch_sub(shrank - grew, Ordering::Relaxed);
            }
            std::cmp::Ordering::Equal => {}
        }
        // The evicted statements' Close messages are sent here, outside the lock.
        drop(evicted);
    }

    /// Drops `sql`'s entry. A concurrent caller may have replaced the stale
    /// statement already: that costs one more prepare, never a wrong statement.
    fn invalidate(&self, sql: &str) {
        let removed = self.cache.lock().invalidate(sql);
        self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
        if removed.is_some() {
            self.counters.len.fetch_sub(1, Ordering::Relaxed);
        }
        drop(removed);
    }

    /// The cached statement for `sql` (prepared on a miss) and whether it was a hit.
    async fn cached(&self, sql: &str) -> Result<(Statement, bool), Error> {
        self.cached_typed(sql, sql, &[]).await
    }

    /// The cached statement under `key` (`sql` prepared with `types` on a miss) and
    /// whether it was a hit.
    async fn cached_typed(
        &self,
        key: &str,
        sql: &str,
        types: &[Type],
    ) -> Result<(Statement, bool), Error> {
        if let Some(statement) = self.lookup(key) {
            return Ok((statement, true));
        }
        let mut guard = OrphanGuard { flag: &self.orphaned_statements, armed: true };
        let prepared = self.client.prepare_typed(sql, types).await;
        guard.armed = false;
        let statement = prepared?;
        self.insert(key, statement.clone());
        Ok((statement, false))
    }

    /// Prepares `sql` once per connection: later calls with the same text return the
    /// cached statement without a round trip. The least recently used statement
    /// leaves a full cache, and its server-side prepared statement is closed.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// let statement = conn.prepare_cached("SELECT $1::text").await?;
    /// let row = conn.query_one(&statement, &[&"hi"]).await?;
    /// assert_eq!(row.get::<_, &str>(0), "hi");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        self.ready().await?;
        self.cached(sql).await.map(|(statement, _)| statement)
    }

    /// Prepares `sql` with the given parameter types once per connection, like
    /// [`prepare_cached`](PgClient::prepare_cached): `types` may name fewer types than
    /// the statement has parameters, and the server infers the rest. The same text
    /// with other types is another entry of the cache; with no types it is
    /// `prepare_cached`'s entry.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// use tokio_postgres::types::Type;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// let statement = conn.prepare_typed_cached("SELECT 1 + $1", &[Type::INT2]).await?;
    /// assert_eq!(statement.params(), &[Type::INT2]);
    /// let row = conn.query_one(&statement, &[&41i16]).await?;
    /// assert_eq!(row.get::<_, i32>(0), 42);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn prepare_typed_cached(
        &self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        self.ready().await?;
        if types.is_empty() {
            return self.cached(sql).await.map(|(statement, _)| statement);
        }
        // SQL text never holds a NUL byte (the server refuses it): the key cannot
        // collide with untyped text.
        let mut key = String::with_capacity(sql.len() + 11 * types.len());
        key.push_str(sql);
        for ty in types {
            // Written into the key itself: one allocation per call, none per type.
            let _ = write!(key, "\0{}", ty.oid());
        }
        self.cached_typed(&key, sql, types).await.map(|(statement, _)| statement)
    }

    /// Prepares `sql` without caching it.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// let statement = conn.prepare("SELECT 1").await?;
    /// assert_eq!(statement.columns().len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.ready().await?;
        self.client.prepare(sql).await
    }

    /// Runs a statement and returns its rows. SQL text goes through the statement
    /// cache when the manager's automatic mode is on.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let rows = pool.get().await?.query("SELECT generate_series(1, $1)", &[&3i32]).await?;
    /// assert_eq!(rows.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn query<Q: PgQuery + ?Sized>(
        &self,
        statement: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        dispatch!(self, statement, query, params)
    }

    /// Runs a statement that returns exactly one row. SQL text goes through the
    /// statement cache when the manager's automatic mode is on.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let row = pool.get().await?.query_one("SELECT $1::int", &[&1i32]).await?;
    /// assert_eq!(row.get::<_, i32>(0), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn query_one<Q: PgQuery + ?Sized>(
        &self,
        statement: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        dispatch!(self, statement, query_one, params)
    }

    /// Runs a statement that returns at most one row. SQL text goes through the
    /// statement cache when the manager's automatic mode is on.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let row = pool.get().await?.query_opt("SELECT 1 WHERE false", &[]).await?;
    /// assert!(row.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn query_opt<Q: PgQuery + ?Sized>(
        &self,
        statement: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        dispatch!(self, statement, query_opt, params)
    }

    /// Runs a statement and returns the number of rows it touched. SQL text goes
    /// through the statement cache when the manager's automatic mode is on.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let conn = pool.get().await?;
    /// conn.batch_execute("CREATE TEMPORARY TABLE t (n int)").await?;
    /// assert_eq!(conn.execute("INSERT INTO t VALUES ($1), ($1)", &[&1i32]).await?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn execute<Q: PgQuery + ?Sized>(
        &self,
        statement: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        dispatch!(self, statement, execute, params)
    }

    /// Runs SQL statements with the simple query protocol, discarding rows.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// pool.get().await?.batch_execute("SET search_path TO public; SELECT 1").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.ready().await?;
        let run = self.before_text(sql);
        let result = self.client.batch_execute(sql).await;
        self.after_text(run, &result);
        result
    }

    /// Runs SQL statements with the simple query protocol, returning rows as text.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let messages = pool.get().await?.simple_query("SELECT 1").await?;
    /// assert!(!messages.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.ready().await?;
        let run = self.before_text(sql);
        let result = self.client.simple_query(sql).await;
        self.after_text(run, &result);
        result
    }

    /// Begins a transaction (rolled back when dropped uncommitted).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, postgres::PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(PgManager::new("host=localhost user=postgres".parse()?))?;
    /// let mut conn = pool.get().await?;
    /// let tx = conn.transaction().await?;
    /// tx.execute("SELECT 1", &[]).await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        self.ready().await?;
        self.client.transaction().await
    }
}

#[cfg(test)]
mod tests {
    use super::{Cache, SqlEffects};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Lookup(u8),
        Insert(u8),
        Invalidate(u8),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..8).prop_map(Op::Lookup),
            4 => (0u8..8).prop_map(Op::Insert),
            1 => (0u8..8).prop_map(Op::Invalidate),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// The cache against a plain model: a list ordered from least to most
        /// recently used, cut to the capacity from the front.
        #[test]
        fn behaves_like_an_lru_list(capacity in 0usize..5, ops in proptest::collection::vec(op(), 0..200)) {
            let mut cache: Cache<u32> = Cache::new(capacity);
            let mut model: Vec<(u8, u32)> = Vec::new();
            let (mut hits, mut misses, mut evictions, mut invalidations) = (0u64, 0u64, 0u64, 0u64);
            for (step, op) in ops.into_iter().enumerate() {
                let value = step as u32;
                match op {
                    Op::Lookup(k) => {
                        let expected = model.iter().position(|&(key, _)| key == k).map(|i| {
                            let entry = model.remove(i);
                            model.push(entry);
                            entry.1
                        });
                        if expected.is_some() { hits += 1 } else { misses += 1 }
                        prop_assert_eq!(cache.lookup(&k.to_string()), expected);
                    }
                    Op::Insert(k) => {
                        let mut expected_evicted = Vec::new();
                        if capacity > 0 {
                            model.retain(|&(key, _)| key != k);
                            model.push((k, value));
                            while model.len() > capacity {
                                expected_evicted.push(model.remove(0).1);
                            }
                        }
                        evictions += expected_evicted.len() as u64;
                        let (_, evicted) = cache.insert(&k.to_string(), value);
                        prop_assert_eq!(evicted, expected_evicted);
                    }
                    Op::Invalidate(k) => {
                        let expected = model.iter().position(|&(key, _)| key == k).map(|i| model.remove(i).1);
                        invalidations += 1;
                        prop_assert_eq!(cache.invalidate(&k.to_string()), expected);
                    }
                    Op::Clear => {
                        let cleared = cache.clear();
                        prop_assert_eq!(cleared.len(), model.len());
                        model.clear();
                    }
                }
                prop_assert!(cache.lru.len() <= capacity);
                prop_assert_eq!(cache.lru.len(), model.len());
                let s = cache.stats;
                prop_assert_eq!((s.hits, s.misses, s.evictions, s.invalidations), (hits, misses, evictions, invalidations));
            }
        }
    }

    #[test]
    fn sql_effects_read_transaction_and_statement_words() {
        let of = |sql: &str| {
            let e = SqlEffects::of(sql);
            (e.opens_transaction, e.drops_statements, e.ends_transaction)
        };
        assert_eq!(of("SELECT 1"), (false, false, false));
        assert_eq!(of("begin"), (true, false, false));
        assert_eq!(of("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"), (true, false, false));
        assert_eq!(of("SELECT start, transaction FROM t"), (false, false, false));
        assert_eq!(of("BEGIN; INSERT INTO t VALUES (1); COMMIT;\n"), (true, false, true));
        assert_eq!(of("DISCARD ALL"), (false, true, false));
        assert_eq!(of("deallocate s1; rollback work"), (false, true, true));
        for ends in ["COMMIT", "commit transaction", "ABORT", "x; Rollback ;"] {
            assert!(SqlEffects::of(ends).ends_transaction, "{ends}");
        }
        for open in
            ["COMMIT AND CHAIN", "ROLLBACK TO SAVEPOINT a", "SELECT ';COMMIT'", "COMMIT -- x"]
        {
            assert!(!SqlEffects::of(open).ends_transaction, "{open}");
        }
        // Identifiers that merely contain the words are not the words.
        assert_eq!(of("SELECT begin_at, discarded FROM t"), (false, false, false));
    }

    #[test]
    fn invalidating_by_value_drops_that_entry_only() {
        let mut cache: Cache<u32> = Cache::new(4);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.invalidate_value(|v| *v == 9), None);
        assert_eq!(cache.stats.invalidations, 0);
        assert_eq!(cache.invalidate_value(|v| *v == 2), Some(2));
        assert_eq!(cache.stats.invalidations, 1);
        assert_eq!((cache.lookup("a"), cache.lookup("b")), (Some(1), None));
    }

    #[test]
    fn huge_capacities_reserve_nothing_up_front() {
        let mut cache: Cache<u32> = Cache::new(usize::MAX);
        assert_eq!(cache.insert("a", 1), (true, Vec::new()));
        assert_eq!(cache.lookup("a"), Some(1));
    }
}
