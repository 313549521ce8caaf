//! A `tokio-postgres` adapter (feature `postgres`), without TLS.

use crate::manager::Manager;
use tokio_postgres::{Client, Config, Error, NoTls};

/// Opens `tokio-postgres` clients; each connection's I/O task is spawned on the
/// current runtime and ends when the client is dropped. The health check runs an
/// empty simple query; a client whose connection task ended is broken.
///
/// ```no_run
/// use poolside_connpool::{Builder, PgManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = PgManager::new("postgres://postgres@127.0.0.1:5432/postgres".parse()?);
/// let pool = Builder::new().max_size(16).build(manager)?;
/// let row = pool.get().await?.query_one("SELECT 1", &[]).await?;
/// assert_eq!(row.get::<_, i32>(0), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgManager {
    config: Config,
}

impl PgManager {
    /// Connects with `config` (parse one from a URL with `str::parse`).
    pub fn new(config: Config) -> Self {
        PgManager { config }
    }
}

impl Manager for PgManager {
    type Connection = Client;
    type Error = Error;

    async fn connect(&self) -> Result<Client, Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "poolside-connpool: postgres connection ended");
            }
        });
        Ok(client)
    }

    async fn check(&self, conn: &mut Client) -> Result<(), Error> {
        conn.simple_query("").await.map(|_| ())
    }

    fn is_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}
