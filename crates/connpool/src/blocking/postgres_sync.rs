//! A [`Manager`] for the synchronous [`postgres`] crate (feature `postgres-sync`).
//!
//! Generic over the TLS connector like the crate itself (`postgres::NoTls`, or a
//! rustls / native-tls `MakeTlsConnect`). The checkout health check sends an empty
//! simple query; a connection whose socket closed (a restarted server, a
//! terminated backend) is found broken on return and replaced.
//!
//! ```no_run
//! use poolside_connpool::blocking::{Builder, postgres_sync::PostgresManager};
//! use postgres::NoTls;
//!
//! let config: postgres::Config = "host=127.0.0.1 user=postgres".parse().unwrap();
//! let pool = Builder::new().max_size(8).build(PostgresManager::new(config, NoTls)).unwrap();
//! let mut client = pool.get().unwrap();
//! let row = client.query_one("SELECT 1::INT4", &[]).unwrap();
//! assert_eq!(row.get::<_, i32>(0), 1);
//! ```

use super::Manager;
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::{Client, Config, Socket};

/// Opens `postgres::Client`s with one configuration and TLS connector.
///
/// ```
/// use poolside_connpool::blocking::postgres_sync::PostgresManager;
/// let config: postgres::Config = "host=127.0.0.1 user=postgres connect_timeout=5".parse().unwrap();
/// let manager = PostgresManager::new(config, postgres::NoTls);
/// # let _ = manager;
/// ```
#[derive(Debug, Clone)]
pub struct PostgresManager<T> {
    config: Config,
    tls: T,
}

impl<T> PostgresManager<T> {
    /// A manager that connects with `config` through `tls`. Set the config's own
    /// `connect_timeout` as well: it bounds the socket connect itself, while the
    /// pool's connect timeout bounds how long a caller waits for it.
    pub fn new(config: Config, tls: T) -> Self {
        PostgresManager { config, tls }
    }
}

impl<T> Manager for PostgresManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = Client;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }

    fn check(&self, conn: &mut Client) -> Result<(), postgres::Error> {
        conn.simple_query("").map(|_| ())
    }

    fn is_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}
