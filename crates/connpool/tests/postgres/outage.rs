//! A real PostgreSQL that this test starts, restarts, stops and starts itself (feature
//! `postgres`): its own throwaway cluster, so the shared server of the other tests is
//! never touched.
//!
//! - Idle pool, server restarted: every pooled connection is dead, and the very first
//!   `get` succeeds (dead connections are discarded at checkout, a fresh one dialled).
//! - Server stopped under load: the pool sends at most 50 dials a second while it is
//!   down, and serves again within 1 s of the server accepting connections.
//!
//! Needs the PostgreSQL server binaries: `POOLSIDE_PG_BIN_DIR`, else
//! `/usr/lib/postgresql/*/bin`. As root, the server runs as `POOLSIDE_PG_RUN_AS` (default
//! `postgres`) through `runuser`. Without binaries the test is skipped with a notice,
//! except under `CI=true`, where it fails.
#![cfg(feature = "postgres")]

use poolside_connpool::{Builder, WaitPolicy, postgres::PgManager};
use poolside_core::Snapshot;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Config, NoTls};

/// A throwaway cluster in a temporary folder: stopped and removed on drop.
struct Cluster {
    bin_dir: PathBuf,
    dir: PathBuf,
    run_as: Option<String>,
    port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("POOLSIDE_PG_BIN_DIR") {
        return Some(dir.into());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl Cluster {
    /// Starts a cluster, or `None` (after a notice) where no server binaries exist.
    fn start() -> Option<Cluster> {
        let Some(bin_dir) = bin_dir() else {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!in_ci, "no PostgreSQL server binaries under CI: set POOLSIDE_PG_BIN_DIR");
            eprintln!("NOTICE: no PostgreSQL server binaries found; skipping the outage tests");
            return None;
        };
        let run_as = is_root()
            .then(|| std::env::var("POOLSIDE_PG_RUN_AS").unwrap_or_else(|_| "postgres".into()))
            .filter(|user| !user.is_empty());
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("poolside-outage-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(user) = &run_as {
            let status = Command::new("chown").arg(format!("{user}:")).arg(&dir).status().unwrap();
            assert!(status.success(), "chown {user} {}", dir.display());
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Cluster { bin_dir, dir, run_as, port };
        cluster.tool("initdb", &["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], true);
        cluster.pg_ctl("start");
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, tool: &str, args: &[&str], with_data: bool) {
        let program = self.bin_dir.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        if with_data {
            command.arg("-D").arg(self.data());
        }
        let status = command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(status.success(), "{tool} {args:?} failed: {status}");
    }

    /// `pg_ctl start|stop|restart`, waiting for it to finish.
    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let log = log.to_str().unwrap();
        match action {
            "stop" => self.tool("pg_ctl", &["-m", "fast", "-w", "-t", "30", "stop"], true),
            _ => self.tool(
                "pg_ctl",
                &["-l", log, "-o", &options, "-m", "fast", "-w", "-t", "30", action],
                true,
            ),
        }
    }

    fn config(&self) -> Config {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port).parse().unwrap()
    }

    async fn accepts(&self) -> bool {
        match tokio::time::timeout(Duration::from_secs(1), self.config().connect(NoTls)).await {
            Ok(Ok((client, connection))) => {
                drop(client);
                let _ = connection.await;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let program = self.bin_dir.join("pg_ctl");
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let _ = command
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a blocking `pg_ctl` off the runtime's threads.
async fn pg_ctl(cluster: &Arc<Cluster>, action: &'static str) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.pg_ctl(action)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_outages_of_a_real_server() {
    let Some(cluster) = Cluster::start() else { return };
    let cluster = Arc::new(cluster);

    // 1. An idle pool across a restart: the first get succeeds.
    let pool = Builder::new().max_size(4).build(PgManager::new(cluster.config())).unwrap();
    assert_eq!(pool.warm(4).await.unwrap(), 4);
    pg_ctl(&cluster, "restart").await;
    // Past the health-check window too: a stale connection is checked, not trusted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let conn = pool.get().await.expect("the first get after a restart succeeds");
    let row = conn.query_one("SELECT 1", &[]).await.expect("on a live connection");
    assert_eq!(row.get::<_, i32>(0), 1);
    drop(conn);
    let snap = Snapshot::of(&pool);
    assert!(snap.value("closed_broken") >= Some(1), "dead connections were discarded");
    pool.close();

    // 2. Stopped under load: a trickle of dials, full service within 1 s of the start.
    let pool = Builder::new()
        .max_size(8)
        .min_idle(2)
        .connect_timeout(Duration::from_secs(2))
        .wait(WaitPolicy::Timeout(Duration::from_millis(300)))
        .build(PgManager::new(cluster.config()))
        .unwrap();
    pool.warm(2).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (pool, stop, served) = (pool.clone(), stop.clone(), served.clone());
            tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    match pool.get().await {
                        Ok(mut conn) => match conn.query_one("SELECT 1", &[]).await {
                            Ok(_) => {
                                served.fetch_add(1, SeqCst);
                            }
                            Err(_) => conn.mark_broken(),
                        },
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    pg_ctl(&cluster, "stop").await;
    let down = Instant::now();
    let dials_at_stop = Snapshot::of(&pool).value("dials").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let dials = Snapshot::of(&pool).value("dials").unwrap() - dials_at_stop;
    let outage = down.elapsed().as_secs_f64();
    assert!(
        dials as f64 <= 50.0 * outage,
        "{dials} dials in {outage:.2} s of outage: more than 50 a second"
    );
    pg_ctl(&cluster, "start").await;
    let accepting = Instant::now();
    let served_at_start = served.load(SeqCst);
    while served.load(SeqCst) == served_at_start {
        assert!(
            accepting.elapsed() < Duration::from_secs(1),
            "not serving 1 s after the server accepted again"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let healed = accepting.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);
    for caller in callers {
        caller.await.expect("no caller panicked");
    }
    println!("outage: {dials} dials in {outage:.2} s; serving {healed:?} after the start");
    assert!(cluster.accepts().await);
    pool.close();
}
