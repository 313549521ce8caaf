//! A Redis adapter (feature `redis`) on the `redis` crate's multiplexed async
//! connection (tokio).

use crate::manager::Manager;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use std::fmt;

/// Opens Redis connections from a URL: `redis://[:password@]host[:port][/db]`,
/// `redis://user:password@host/db` (ACL), `redis+unix:///path`, and `rediss://` (TLS)
/// when the `redis-rustls` feature is on. The health check sends `PING`; a connection
/// that saw an I/O error, a dropped connection or an unrecoverable error is closed
/// when it comes back to the pool instead of being reused.
///
/// ```no_run
/// use poolside_connpool::{Builder, redis::RedisManager};
/// use redis::AsyncCommands;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = RedisManager::new("redis://:secret@127.0.0.1:6379/2")?;
/// let pool = Builder::new().max_size(16).build(manager)?;
/// let mut conn = pool.get().await?;
/// let () = conn.set("greeting", "hello").await?;
/// let value: String = conn.get("greeting").await?;
/// assert_eq!(value, "hello");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisManager {
    client: Client,
}

impl fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.client.get_connection_info();
        // The password stays out of logs.
        f.debug_struct("RedisManager")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .finish()
    }
}

/// A Redis URL or connection info the `redis` crate refused (bad scheme, port or
/// database number, or `rediss://` without TLS support compiled in).
///
/// ```
/// use poolside_connpool::redis::RedisManager;
///
/// let err = RedisManager::new("http://127.0.0.1:6379").unwrap_err();
/// assert!(err.to_string().contains("invalid Redis connection settings"));
/// ```
#[derive(Debug)]
pub struct RedisConfigError(RedisError);

impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Redis connection settings: {}", self.0)
    }
}

impl std::error::Error for RedisConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl RedisManager {
    /// Parses the URL (or takes any `redis::IntoConnectionInfo`); nothing is dialled
    /// until the pool opens its first connection.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    ///
    /// let manager = RedisManager::new("redis://:pw@127.0.0.1:6380/3").unwrap();
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 3);
    /// assert!(RedisManager::new("redis://127.0.0.1:6379/not-a-number").is_err());
    /// ```
    pub fn new(info: impl IntoConnectionInfo) -> Result<Self, RedisConfigError> {
        Client::open(info).map(RedisManager::from_client).map_err(RedisConfigError)
    }

    /// Uses an already configured `redis::Client`.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/").unwrap();
    /// let manager = RedisManager::from_client(client);
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 0);
    /// ```
    pub fn from_client(client: Client) -> Self {
        RedisManager { client }
    }

    /// The `redis::Client` connections are opened from.
    ///
    /// ```
    /// let manager = poolside_connpool::redis::RedisManager::new("redis://127.0.0.1/1").unwrap();
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 1);
    /// ```
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Manager for RedisManager {
    type Connection = RedisConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConnection, RedisError> {
        let conn = self.client.get_multiplexed_async_connection().await?;
        Ok(RedisConnection { conn, broken: false })
    }

    async fn check(&self, conn: &mut RedisConnection) -> Result<(), RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::from((redis::ErrorKind::Client, "unexpected PING reply", pong)))
        }
    }

    fn is_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.broken
    }
}

/// The connection a [`RedisManager`] pool hands out: a
/// `redis::aio::MultiplexedConnection` that remembers whether it failed at the I/O
/// level. It implements `redis::aio::ConnectionLike`, so `redis::AsyncCommands`,
/// `Cmd::query_async` and pipelines work on it directly.
///
/// ```no_run
/// # use poolside_connpool::{Builder, redis::RedisManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pool = Builder::new().build(RedisManager::new("redis://127.0.0.1/")?)?;
/// let mut conn = pool.get().await?;
/// let (a, b): (i64, i64) = redis::pipe().incr("n", 1).incr("n", 1).query_async(&mut *conn).await?;
/// assert_eq!(b, a + 1);
/// assert!(!conn.is_broken());
/// # Ok(())
/// # }
/// ```
pub struct RedisConnection {
    conn: MultiplexedConnection,
    broken: bool,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("db", &self.conn.get_db())
            .field("broken", &self.broken)
            .finish()
    }
}

impl RedisConnection {
    /// Whether a command on this connection failed at the I/O level (the pool then
    /// closes it on return).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, redis::RedisManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(RedisManager::new("redis://127.0.0.1/")?)?;
    /// assert!(!pool.get().await?.is_broken());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The underlying multiplexed connection (a cheap clone shares its socket; a
    /// failure seen only through a clone does not mark this connection broken).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, redis::RedisManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(RedisManager::new("redis://127.0.0.1/")?)?;
    /// let conn = pool.get().await?;
    /// let raw: &redis::aio::MultiplexedConnection = conn.inner();
    /// # let _ = raw;
    /// # Ok(())
    /// # }
    /// ```
    pub fn inner(&self) -> &MultiplexedConnection {
        &self.conn
    }

    fn observe<T>(broken: &mut bool, result: &Result<T, RedisError>) {
        if let Err(e) = result {
            if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                *broken = true;
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            Self::observe(&mut self.broken, &result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(cmd, offset, count).await;
            Self::observe(&mut self.broken, &result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_keeps_the_password_out() {
        let manager = RedisManager::new("redis://user:hunter2@127.0.0.1:6390/4").unwrap();
        let shown = format!("{manager:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("6390") && shown.contains('4'), "{shown}");
    }
}
