//! A thread-per-request server on `std::net` with a blocking pool of SQLite
//! connections: every request thread checks out a connection, answers from the
//! database and gives it back by dropping the guard. Six request threads share
//! three connections and wait for them in arrival order.
//!
//! Run with `cargo run -p poolside-connpool --features sqlite --example thread_per_request`.

use poolside_connpool::WaitPolicy;
use poolside_connpool::blocking::sqlite::SqliteManager;
use poolside_connpool::blocking::{Builder, Pool};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// Answers one request line (`GET <key>`) from the database.
fn handle(pool: &Pool<SqliteManager>, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let key = line.trim().strip_prefix("GET ").unwrap_or("").to_owned();
    let answer = match pool.get() {
        Ok(conn) => {
            // Hold the connection a moment, like a real request would.
            thread::sleep(Duration::from_millis(20));
            conn.query_row("SELECT value FROM kv WHERE key = ?1", [&key], |r| r.get::<_, String>(0))
                .unwrap_or_else(|_| "not found".to_owned())
        }
        Err(e) => format!("busy: {e}"),
    };
    let mut stream = stream;
    writeln!(stream, "{answer}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Builder::new()
        .max_size(3)
        .min_idle(1) // keeps the shared in-memory database alive between requests
        .wait(WaitPolicy::Timeout(Duration::from_secs(5)))
        .build(SqliteManager::memory(&format!("kv-{}", std::process::id())))?;
    pool.maintain();
    pool.get()?.execute_batch(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO kv VALUES ('alpha', 'first'), ('beta', 'second'), ('gamma', 'third');",
    )?;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    const REQUESTS: usize = 6;
    let answers = thread::scope(|s| {
        // The server: one thread per accepted connection.
        let pool = &pool;
        let listener = &listener;
        s.spawn(move || {
            thread::scope(|requests| {
                for stream in listener.incoming().take(REQUESTS) {
                    let stream = stream.expect("accept");
                    requests.spawn(move || handle(pool, stream).expect("answer"));
                }
            });
        });
        // The clients: all requests at once.
        let clients: Vec<_> = ["alpha", "beta", "gamma", "alpha", "delta", "beta"]
            .into_iter()
            .map(|key| {
                s.spawn(move || -> std::io::Result<String> {
                    let mut stream = TcpStream::connect(addr)?;
                    writeln!(stream, "GET {key}")?;
                    let mut answer = String::new();
                    BufReader::new(stream).read_line(&mut answer)?;
                    Ok(format!("{key} -> {}", answer.trim()))
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().expect("client thread")).collect::<Vec<_>>()
    });
    for answer in answers {
        println!("{}", answer?);
    }
    let status = pool.status();
    println!("pool after the requests: {status:?}");
    assert!(status.open <= 3 && status.in_use == 0);
    Ok(())
}
