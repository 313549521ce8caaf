//! Redis servers for the tests that need one: the shared throwaway server `cargo xtask
//! test` starts (`POOLSIDE_REDIS_URL`), and servers of a test's own, started with its
//! binary (`POOLSIDE_REDIS_SERVER`), for passwords, restarts and exact client counts.
#![cfg(feature = "redis")]

use poolside_connpool::redis::RedisManager;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../../support/service_url.rs"]
mod service_url;

/// The shared server's URL, or `None` (after a notice).
pub(crate) fn server() -> Option<String> {
    service_url::service_url("POOLSIDE_REDIS_URL", "Redis")
}

pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}:{}:{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A redis-server owned by one test; killed on drop.
pub(crate) struct OwnServer {
    child: Child,
    pub(crate) port: u16,
    args: Vec<String>,
    dir: PathBuf,
}

impl OwnServer {
    fn binary() -> PathBuf {
        std::env::var_os("POOLSIDE_REDIS_SERVER")
            .map_or_else(|| "redis-server".into(), PathBuf::from)
    }

    pub(crate) fn start(args: &[&str]) -> OwnServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(unique("poolside-redis-test").replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = OwnServer::spawn(port, &args, &dir);
        let server = OwnServer { child, port, args, dir };
        server.wait_accepting();
        server
    }

    fn spawn(port: u16, args: &[String], dir: &PathBuf) -> Child {
        Command::new(OwnServer::binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting redis-server (POOLSIDE_REDIS_SERVER or PATH)")
    }

    /// Returns when the port accepts connections.
    fn wait_accepting(&self) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the server again on the same port; returns when it accepts.
    pub(crate) fn restart(&mut self) -> Instant {
        self.child = OwnServer::spawn(self.port, &self.args, &self.dir);
        self.wait_accepting()
    }

    pub(crate) fn url(&self, password: Option<&str>, db: u32) -> String {
        match password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn admin_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// The server's id for the connection (`CLIENT ID`).
pub(crate) async fn client_id(conn: &mut impl redis::aio::ConnectionLike) -> i64 {
    redis::cmd("CLIENT").arg("ID").query_async(conn).await.unwrap()
}

/// Has the server drop the connection `id` (`CLIENT KILL ID`), through `admin`;
/// returns how many connections it dropped.
pub(crate) async fn kill_client(admin: &mut redis::aio::MultiplexedConnection, id: i64) -> i64 {
    redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(admin).await.unwrap()
}

/// The command `words` spell: its name, then its arguments.
pub(crate) fn command(words: &[&str]) -> redis::Cmd {
    redis::cmd(words[0]).arg(&words[1..]).clone()
}

/// The two links a manager opens: a socket the connection owns, and the `redis`
/// crate's multiplexed connection.
pub(crate) fn both_links(url: &str) -> [(RedisManager, bool); 2] {
    let direct = RedisManager::new(url).unwrap();
    [(direct.clone(), false), (direct.multiplexed(), true)]
}

/// Sets `key` to `value` on `conn`, reads it back and deletes it: what a connection
/// in service must do. Returns what was read.
pub(crate) async fn set_get_del(
    conn: &mut poolside_connpool::redis::RedisConnection,
    key: &str,
    value: &str,
) -> String {
    use redis::AsyncCommands;
    let () = conn.set(key, value).await.unwrap();
    let got: String = conn.get(key).await.unwrap();
    let () = conn.del(key).await.unwrap();
    got
}
