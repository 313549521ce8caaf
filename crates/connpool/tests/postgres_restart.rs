//! A real PostgreSQL restarted mid-load (feature `postgres`): the pool heals within
//! 1 s of the server accepting connections again.
//!
//! `cargo xtask test` starts a throwaway server and passes its URL, binaries, data
//! folder and user (`POOLSIDE_PG_URL`, `POOLSIDE_PG_BIN_DIR`, `POOLSIDE_PG_DATA_DIR`,
//! `POOLSIDE_PG_RUN_AS`). Restarting it would break the other PostgreSQL tests, so
//! `.config/nextest.toml` runs the PostgreSQL test binaries one test at a time.
#![cfg(feature = "postgres")]

use poolside_connpool::{Builder, WaitPolicy, postgres::PgManager};
use poolside_core::Snapshot;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Config, NoTls};

const CALLERS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The server to restart, or `None` (after a notice) outside `cargo xtask test`.
struct Server {
    config: Config,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    run_as: Option<String>,
}

fn server() -> Option<Server> {
    let vars = ["POOLSIDE_PG_URL", "POOLSIDE_PG_BIN_DIR", "POOLSIDE_PG_DATA_DIR"]
        .map(|name| std::env::var(name).ok());
    match vars {
        [Some(url), Some(bin_dir), Some(data_dir)] => Some(Server {
            config: url.parse().expect("POOLSIDE_PG_URL is a PostgreSQL URL"),
            bin_dir: bin_dir.into(),
            data_dir: data_dir.into(),
            run_as: std::env::var("POOLSIDE_PG_RUN_AS").ok().filter(|user| !user.is_empty()),
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the POOLSIDE_PG_* variables are not set under CI: run `cargo xtask test`")
        }
        _ => {
            eprintln!(
                "NOTICE: POOLSIDE_PG_URL/BIN_DIR/DATA_DIR are not set; skipping the restart \
                 test (`cargo xtask test` starts a server and sets them)"
            );
            None
        }
    }
}

impl Server {
    /// `pg_ctl restart -m fast`: backends are terminated, the server stops and starts
    /// again with its original options. Output goes nowhere, so the new server process
    /// holds no pipe of this test's.
    fn restart(&self) {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&pg_ctl);
                c
            }
            None => Command::new(&pg_ctl),
        };
        command.arg("-D").arg(&self.data_dir).args(["-m", "fast", "-w", "-t", "60", "restart"]);
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running pg_ctl");
        assert!(status.success(), "pg_ctl restart failed: {status}");
    }

    async fn accepts(&self) -> bool {
        match self.config.connect(NoTls).await {
            Ok((client, connection)) => {
                drop(client);
                let _ = connection.await;
                true
            }
            Err(_) => false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_heals_within_a_second_of_a_server_restart() {
    let Some(server) = server() else { return };
    let server = Arc::new(server);
    let pool = Builder::new()
        .max_size(8)
        .connect_timeout(Duration::from_millis(500))
        .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
        .build(PgManager::new(server.config.clone()))
        .unwrap();
    pool.warm(8).await.unwrap();

    // (completed at, succeeded) of every request.
    let outcomes: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (pool, outcomes, stop) = (pool.clone(), outcomes.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let ok = match pool.get().await {
                    Ok(mut conn) => {
                        let answer =
                            tokio::time::timeout(REQUEST_TIMEOUT, conn.query_one("SELECT 1", &[]))
                                .await;
                        let ok = matches!(&answer, Ok(Ok(row)) if row.get::<_, i32>(0) == 1);
                        if !ok {
                            conn.mark_broken();
                        }
                        ok
                    }
                    Err(_) => false,
                };
                outcomes.lock().unwrap().push((Instant::now(), ok));
                // A failed request is retried at once by real callers; pace it a little.
                if !ok {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarting = Instant::now();
    let restart = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || server.restart())
    };
    // The moment the server accepts again: first seen down, then seen up.
    while server.accepts().await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let went_down = Instant::now();
    while !server.accepts().await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let accepting = Instant::now();
    restart.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, SeqCst);
    for caller in callers {
        caller.await.expect("no caller panicked");
    }

    let outcomes = outcomes.lock().unwrap().clone();
    let failed_after: Vec<Duration> = outcomes
        .iter()
        .filter(|(at, ok)| !ok && *at > accepting)
        .map(|(at, _)| *at - accepting)
        .collect();
    let healed_after = failed_after.iter().max().copied().unwrap_or(Duration::ZERO);
    let served_after = outcomes.iter().filter(|(at, ok)| *ok && *at > accepting).count();
    let failed_total = outcomes.iter().filter(|(_, ok)| !ok).count();
    let snapshot = Snapshot::of(&pool);
    println!(
        "server down {:?} after the restart began, accepting again {:?} later; \
         {failed_total} requests failed in all, {} after it accepted again, the last \
         {healed_after:?} after; {served_after} served after; closed_broken {:?}",
        went_down - restarting,
        accepting - went_down,
        failed_after.len(),
        snapshot.value("closed_broken"),
    );
    assert!(failed_total > 0, "the restart was felt");
    assert!(healed_after <= Duration::from_secs(1), "healed only after {healed_after:?}");
    assert!(served_after > 100, "load resumed: {served_after}");
    assert!(snapshot.value("closed_broken").unwrap() > 0, "dead connections were closed");
    let status = pool.status();
    assert!(status.open <= 8 && status.in_use == 0, "{status:?}");
    pool.close();
}
