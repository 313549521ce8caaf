//! A throwaway `redis-server` on loopback for the tests that need a real server.
//!
//! A free port on 127.0.0.1, no persistence, a fresh temporary working folder.
//! Dropping the handle kills the server and removes the folder, so it goes away even
//! when tests fail. Tests receive the URL in `POOLSIDE_REDIS_URL` and the binary in
//! `POOLSIDE_REDIS_SERVER` (for tests that start servers of their own, e.g. to
//! restart one or to require a password).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable through which tests receive the server's URL.
pub(crate) const URL_VAR: &str = "POOLSIDE_REDIS_URL";
/// The environment variable through which tests receive the `redis-server` binary.
pub(crate) const SERVER_VAR: &str = "POOLSIDE_REDIS_SERVER";

/// A running throwaway server; killed and deleted on drop.
pub(crate) struct Redis {
    child: Child,
    binary: PathBuf,
    dir: PathBuf,
    url: String,
}

impl Redis {
    /// Starts a server, or explains why it could not.
    pub(crate) fn start() -> Result<Redis, String> {
        let binary = find_binary().ok_or(
            "no redis-server found (looked in PATH and /usr/bin, /usr/local/bin); install \
             it, e.g. `apt-get install redis-server`",
        )?;
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("poolside-redis-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let port = free_port()?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut redis = Redis { child, binary, dir, url: format!("redis://127.0.0.1:{port}/") };
        wait_until_accepting(&mut redis.child, port, Duration::from_secs(30))?;
        eprintln!("redis-server is up: {}={}", URL_VAR, redis.url);
        Ok(redis)
    }

    /// The connection URL (`redis://127.0.0.1:PORT/`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The `redis-server` binary, for tests that start servers of their own.
    pub(crate) fn binary(&self) -> &Path {
        &self.binary
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("warning: stopping redis-server: {e}");
        }
        let _ = self.child.wait();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: removing {}: {e}", self.dir.display());
        } else {
            eprintln!("redis-server stopped and {} removed", self.dir.display());
        }
    }
}

fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|p| p.join("redis-server").exists()));
    on_path.map(|dir| dir.join("redis-server")).or_else(|| {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    })
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("finding a free port: {e}"))
}

fn wait_until_accepting(child: &mut Child, port: u16, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited at start ({status})"));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("redis-server did not accept connections on port {port} within {limit:?}"))
}
