//! A [`Manager`] for rusqlite connections (feature `sqlite`), with SQLite bundled: it
//! works on any machine with no server and no system library, which makes it the
//! embedded default for examples and tests.
//!
//! File databases and shared-cache in-memory databases, a busy timeout on every
//! connection (so writers wait for each other instead of failing with
//! `SQLITE_BUSY`), WAL mode, and `PRAGMA` setup through the pool's
//! [`after_connect`](super::Builder::after_connect) hook:
//!
//! ```
//! use poolside_connpool::blocking::{Builder, sqlite::SqliteManager};
//! use std::time::Duration;
//!
//! let dir = std::env::temp_dir().join(format!("poolside-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let manager = SqliteManager::file(dir.join("app.db"))
//!     .busy_timeout(Duration::from_secs(5))
//!     .wal(true);
//! let pool = Builder::new()
//!     .max_size(4)
//!     .after_connect(|conn: &mut rusqlite::Connection| {
//!         conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
//!     })
//!     .build(manager)
//!     .unwrap();
//! let conn = pool.get().unwrap();
//! conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)").unwrap();
//! conn.execute("INSERT INTO t (v) VALUES (?1)", ["hello"]).unwrap();
//! let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
//! assert_eq!(mode, "wal");
//! # drop(conn); drop(pool); std::fs::remove_dir_all(&dir).unwrap();
//! ```

use super::Manager;
use rusqlite::{Connection, OpenFlags};

/// The rusqlite this adapter is built on, so callers need no version of their own.
pub use rusqlite;
use std::path::PathBuf;
use std::time::Duration;

/// Opens rusqlite connections to one database. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SqliteManager {
    target: PathBuf,
    flags: OpenFlags,
    busy_timeout: Duration,
    wal: bool,
}

impl SqliteManager {
    /// Connections to the database file at `path` (created if missing), with a
    /// 5 s busy timeout.
    ///
    /// ```
    /// # use poolside_connpool::blocking::sqlite::SqliteManager;
    /// let manager = SqliteManager::file("/tmp/poolside-example.db");
    /// # let _ = manager;
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteManager {
            target: path.into(),
            flags: OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            busy_timeout: Duration::from_secs(5),
            wal: false,
        }
    }

    /// Connections to one in-memory database named `name`, shared by every
    /// connection of the pool (SQLite's shared cache). The database lives while at
    /// least one connection is open: keep `min_idle` at 1 or more (or hold a
    /// connection) if it must survive idle periods.
    ///
    /// ```
    /// use poolside_connpool::blocking::{Builder, sqlite::SqliteManager};
    ///
    /// let pool = Builder::new().min_idle(1).build(SqliteManager::memory("doc-mem")).unwrap();
    /// pool.maintain(); // the janitor keeps one open: the database stays alive
    /// let a = pool.get().unwrap();
    /// a.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);").unwrap();
    /// let b = pool.get().unwrap(); // another connection, same database
    /// let x: i64 = b.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    /// assert_eq!(x, 7);
    /// ```
    pub fn memory(name: &str) -> Self {
        let mut manager = Self::file(format!("file:{name}?mode=memory&cache=shared"));
        manager.flags |= OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        manager
    }

    /// How long a statement waits for another connection's lock before it fails
    /// with `SQLITE_BUSY` (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Puts file databases in write-ahead-log mode (`PRAGMA journal_mode = WAL`):
    /// readers do not block the writer nor the writer them.
    pub fn wal(mut self, on: bool) -> Self {
        self.wal = on;
        self
    }

    /// Replaces the flags the database is opened with.
    pub fn flags(mut self, flags: OpenFlags) -> Self {
        self.flags = flags;
        self
    }
}

impl Manager for SqliteManager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(&self.target, self.flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        if self.wal {
            let _mode: String =
                conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        }
        Ok(conn)
    }

    fn check(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.query_row("SELECT 1", [], |_| Ok(()))
    }

    /// A connection handed back inside an open transaction is closed (which rolls the
    /// transaction back) rather than passed to the next caller mid-transaction.
    fn is_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_autocommit()
    }
}
