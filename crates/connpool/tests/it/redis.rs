//! The Redis adapter against real servers (feature `redis`).
//!
//! `cargo xtask test` starts a throwaway redis-server and passes its URL in
//! `POOLSIDE_REDIS_URL` and its binary in `POOLSIDE_REDIS_SERVER`; tests that need a
//! password, a restart or an exact client count start servers of their own with that
//! binary. Without the URL these tests fail under CI (`CI=true`) and print a notice
//! and pass elsewhere.
#![cfg(feature = "redis")]

use crate::common::redis_server::{
    OwnServer, admin_conn, both_links, client_id, command, kill_client, server, set_get_del, unique,
};
use poolside_connpool::{Builder, GetError, Pool, redis::RedisManager};
use redis::{AsyncCommands, Value};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// How many clients the server sees (the asking connection included).
async fn client_count(admin: &mut redis::aio::MultiplexedConnection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(admin).await.unwrap();
    list.lines().filter(|l| !l.trim().is_empty()).count()
}

async fn eventually(mut pred: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if pred().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn get_set_and_pipelines() {
    let Some(url) = server() else { return };
    let pool = Builder::new().max_size(4).build(RedisManager::new(url.as_str()).unwrap()).unwrap();
    let key = unique("poolside:getset");
    {
        let mut conn = pool.get().await.unwrap();
        let () = conn.set(&key, "value").await.unwrap();
        let got: String = conn.get(&key).await.unwrap();
        assert_eq!(got, "value");
        let missing: Option<String> = conn.get(unique("poolside:missing")).await.unwrap();
        assert_eq!(missing, None);
        let (a, b): (i64, i64) = redis::pipe()
            .incr(format!("{key}:n"), 1)
            .incr(format!("{key}:n"), 1)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!(b, a + 1);
        let () = conn.del(&[key.as_str(), &format!("{key}:n")]).await.unwrap();
        assert!(!conn.is_broken());
    }
    assert_eq!(pool.status().open, 1);
    assert_eq!(pool.status().idle, 1);
}

#[tokio::test]
async fn database_number_from_the_url_is_selected() {
    let Some(url) = server() else { return };
    // scheme://authority, without the path (the database number).
    let authority = url.find("://").unwrap() + 3;
    let base = match url[authority..].find('/') {
        Some(slash) => &url[..authority + slash],
        None => url.as_str(),
    };
    let pool =
        Builder::new().max_size(2).build(RedisManager::new(format!("{base}/5")).unwrap()).unwrap();
    let key = unique("poolside:db");
    let mut conn = pool.get().await.unwrap();
    let () = conn.set(&key, "in five").await.unwrap();
    let mut db0 = admin_conn(&format!("{base}/0")).await;
    let there: Option<String> = db0.get(&key).await.unwrap();
    assert_eq!(there, None, "db 0 does not see db 5's key");
    let mut db5 = admin_conn(&format!("{base}/5")).await;
    let there: Option<String> = db5.get(&key).await.unwrap();
    assert_eq!(there.as_deref(), Some("in five"));
    let () = db5.del(&key).await.unwrap();
}

#[tokio::test]
async fn auth_with_a_password() {
    if server().is_none() {
        return;
    }
    let own = OwnServer::start(&["--requirepass", "s3cret pass"]);
    let pool = Builder::new()
        .max_size(2)
        .build(RedisManager::new(own.url(Some("s3cret%20pass"), 0)).unwrap())
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let () = conn.set("k", "v").await.unwrap();
    let got: String = conn.get("k").await.unwrap();
    assert_eq!(got, "v");
    drop(conn);

    // ACL form: user `default`.
    let acl = format!("redis://default:s3cret%20pass@127.0.0.1:{}/0", own.port);
    let pool = Builder::new().max_size(1).build(RedisManager::new(acl).unwrap()).unwrap();
    let got: String = pool.get().await.unwrap().get("k").await.unwrap();
    assert_eq!(got, "v");

    // A wrong password fails the connect with the server's own words.
    let wrong = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_secs(1))
        .build(RedisManager::new(own.url(Some("wrong"), 0)).unwrap())
        .unwrap();
    let err = wrong.get().await.expect_err("a wrong password is refused");
    // Dials are retried with the backoff until the connect timeout; the error carries
    // the last one's cause.
    let (GetError::Connect(e) | GetError::ConnectFailed { last: e, .. }) = &err else {
        panic!("not a connect error: {err:?}")
    };
    assert_eq!(e.kind(), redis::ErrorKind::AuthenticationFailed, "{e}");
    assert_eq!(wrong.status().open, 0);
}

#[tokio::test]
async fn client_list_count_equals_open() {
    if server().is_none() {
        return;
    }
    let own = OwnServer::start(&[]);
    let mut admin = admin_conn(&own.url(None, 0)).await;
    let pool: Pool<RedisManager> =
        Builder::new().max_size(8).build(RedisManager::new(own.url(None, 0)).unwrap()).unwrap();
    pool.warm(3).await.unwrap();
    assert_eq!(client_count(&mut admin).await - 1, pool.status().open);
    let held: Vec<_> = futures_join(&pool, 6).await;
    assert_eq!(pool.status().open, 6);
    assert_eq!(client_count(&mut admin).await - 1, 6);
    drop(held);
    assert_eq!(client_count(&mut admin).await - 1, pool.status().open);
    pool.close();
    assert!(
        eventually(async || client_count(&mut admin).await == 1).await,
        "closed connections leave the server"
    );
}

/// Checks out `n` connections at once.
async fn futures_join(
    pool: &Pool<RedisManager>,
    n: usize,
) -> Vec<poolside_connpool::PooledConn<'_, RedisManager>> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut conn = pool.get().await.unwrap();
        let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
        assert_eq!(pong, "PONG");
        held.push(conn);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_load_heals_within_a_second() {
    if server().is_none() {
        return;
    }
    let mut own = OwnServer::start(&[]);
    let pool: Pool<RedisManager> = Builder::new()
        .max_size(8)
        .connect_timeout(Duration::from_millis(500))
        .build(RedisManager::new(own.url(None, 0)).unwrap())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // Nanoseconds since `started` of the latest successful round trip.
    let last_ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (pool, stop, last_ok, errors) =
            (pool.clone(), stop.clone(), last_ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("load:{t}");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let result = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    n += 1;
                    let () = conn.set(&key, n).await.map_err(|e| e.to_string())?;
                    let got: u64 = conn.get(&key).await.map_err(|e| e.to_string())?;
                    assert_eq!(got, n);
                    Ok::<(), String>(())
                }
                .await;
                match result {
                    Ok(()) => {
                        last_ok.fetch_max(started.elapsed().as_nanos() as u64, Ordering::Relaxed)
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(last_ok.load(Ordering::Relaxed) > 0, "the load runs");
    assert_eq!(errors.load(Ordering::Relaxed), 0);

    own.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepting = tokio::task::block_in_place(|| own.restart());
    let accepting_ns = accepting.duration_since(started).as_nanos() as u64;
    let healed = eventually(async || last_ok.load(Ordering::Relaxed) > accepting_ns).await;
    assert!(healed, "no successful round trip after the restart");
    let first_ok =
        Duration::from_nanos(last_ok.load(Ordering::Relaxed).saturating_sub(accepting_ns));
    assert!(
        first_ok < Duration::from_secs(1),
        "healed {first_ok:?} after the server accepted again"
    );
    assert!(errors.load(Ordering::Relaxed) > 0, "the outage was seen");

    // Steady again: every task keeps succeeding, no error for a while.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let errors_after = errors.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(errors.load(Ordering::Relaxed), errors_after, "errors after healing");
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(pool.status().open <= 8);
    let mut admin = admin_conn(&own.url(None, 0)).await;
    assert_eq!(
        client_count(&mut admin).await - 1,
        pool.status().open,
        "no dead connection is counted"
    );
}

#[test]
fn bad_urls_are_typed_errors() {
    assert!(RedisManager::new("http://127.0.0.1:6379").is_err());
    assert!(RedisManager::new("redis://127.0.0.1:6379/not-a-db").is_err());
    assert!(RedisManager::new("redis://127.0.0.1:99999/0").is_err());
    let err = RedisManager::new("nonsense").unwrap_err();
    assert!(err.to_string().starts_with("invalid Redis connection settings"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_connection_that_saw_an_io_error_is_closed_on_return() {
    if server().is_none() {
        return;
    }
    let own = OwnServer::start(&[]);
    let mut admin = admin_conn(&own.url(None, 0)).await;
    let pool: Pool<RedisManager> =
        Builder::new().max_size(2).build(RedisManager::new(own.url(None, 0)).unwrap()).unwrap();
    let first_id: i64 = {
        let mut conn = pool.get().await.unwrap();
        let id = client_id(&mut *conn).await;
        assert_eq!(kill_client(&mut admin, id).await, 1);
        // The server hung up: the next command fails at the I/O level.
        let mut failed = false;
        for _ in 0..50 {
            if conn.get::<_, Option<String>>("k").await.is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(failed, "a command on a killed connection fails");
        assert!(conn.is_broken());
        id
    };
    assert_eq!(pool.status().open, 0, "the broken connection was closed, not kept");
    let mut conn = pool.get().await.unwrap();
    assert_ne!(client_id(&mut *conn).await, first_id, "a fresh connection replaced it");
    assert!(!conn.is_broken());
}

/// `rediss://` against a redis-server with TLS on, using the certificate the test
/// tooling made (`POOLSIDE_TLS_CERT_FILE`, `POOLSIDE_TLS_KEY_FILE`, CA in
/// `POOLSIDE_PG_CA_FILE`).
#[cfg(feature = "redis-rustls")]
#[tokio::test]
async fn rediss_urls_connect_over_tls() {
    if server().is_none() {
        return;
    }
    let var = std::env::var;
    let (Ok(ca), Ok(cert), Ok(key)) =
        (var("POOLSIDE_PG_CA_FILE"), var("POOLSIDE_TLS_CERT_FILE"), var("POOLSIDE_TLS_KEY_FILE"))
    else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the TLS files are not set under CI: run the tests with `cargo xtask test`"
        );
        eprintln!("NOTICE: TLS files not set; skipping the rediss:// test");
        return;
    };
    let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let own = OwnServer::start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}/1");
    let certificates =
        redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(&ca).unwrap()) };
    let client = redis::Client::build_with_tls(url.as_str(), certificates).unwrap();
    let pool = Builder::new().max_size(2).build(RedisManager::from_client(client)).unwrap();
    let mut conn = pool.get().await.unwrap();
    let () = conn.set("tls", "yes").await.unwrap();
    let got: String = conn.get("tls").await.unwrap();
    assert_eq!(got, "yes");
    drop(conn);
    // The plain port of the same server sees the key: the TLS client really talked
    // to it, in database 1.
    let mut plain = admin_conn(&own.url(None, 1)).await;
    let seen: String = plain.get("tls").await.unwrap();
    assert_eq!(seen, "yes");

    // Public web roots do not trust the throwaway CA: the handshake fails.
    let untrusted = Builder::new()
        .max_size(1)
        .connect_timeout(Duration::from_secs(1))
        .build(RedisManager::new(url.as_str()).unwrap())
        .unwrap();
    let err = untrusted.get().await.expect_err("an untrusted certificate is refused");
    assert!(matches!(err, GetError::Connect(_) | GetError::ConnectFailed { .. }), "{err:?}");
    assert_eq!(untrusted.status().open, 0);
}

#[tokio::test]
async fn both_links_run_commands_server_errors_pipelines_and_transactions() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        assert_eq!(manager.uses_multiplexed(), multiplexed);
        let pool = Builder::new().max_size(1).build(manager).unwrap();
        let mut conn = pool.get().await.unwrap();
        assert_eq!(conn.multiplexed().is_some(), multiplexed);
        let key = unique("poolside:links");

        // A server error is the caller's error; the connection stays in service.
        let () = conn.set(&key, "text").await.unwrap();
        let err = conn.incr::<_, _, i64>(&key, 1).await.expect_err("INCR on text");
        assert!(err.to_string().contains("not an integer"), "{err}");
        assert!(!conn.is_broken(), "a server error does not break the connection");
        let got: String = conn.get(&key).await.unwrap();
        assert_eq!(got, "text", "the reply after an error belongs to its own command");

        // Pipelines: every reply in order, errors in place.
        let (a, b, c): (String, i64, i64) = redis::pipe()
            .get(&key)
            .incr(format!("{key}:n"), 5)
            .incr(format!("{key}:n"), 1)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!((a.as_str(), b, c), ("text", 5, 6));

        // A transaction returns the replies of the queued commands.
        let (x, y): (i64, i64) = redis::pipe()
            .atomic()
            .incr(format!("{key}:t"), 2)
            .incr(format!("{key}:t"), 3)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!((x, y), (2, 5));

        // A transaction whose watched key changed is aborted: nil, not an error.
        let watched = format!("{key}:w");
        let () = redis::cmd("WATCH").arg(&watched).query_async(&mut *conn).await.unwrap();
        let mut other = admin_conn(&url).await;
        let () = other.set(&watched, 1).await.unwrap();
        let aborted: Option<(i64,)> =
            redis::pipe().atomic().incr(&watched, 1).query_async(&mut *conn).await.unwrap();
        assert_eq!(aborted, None);

        // A command refused while queueing fails the transaction with an error.
        let refused = redis::pipe()
            .atomic()
            .incr(format!("{key}:q"), 1)
            .cmd("INCR") // no key: wrong number of arguments
            .query_async::<(i64, i64)>(&mut *conn)
            .await;
        assert!(refused.is_err(), "{refused:?}");
        assert!(!conn.is_broken());
        let n: Option<i64> = conn.get(format!("{key}:q")).await.unwrap();
        assert_eq!(n, None, "nothing of the refused transaction ran");

        let () = conn
            .del(&[key.clone(), format!("{key}:n"), format!("{key}:t"), watched])
            .await
            .unwrap();
        assert!(!conn.is_broken(), "multiplexed: {multiplexed}");
        drop(conn);
        assert_eq!(pool.status().open, 1, "multiplexed: {multiplexed}");
    }
}

/// A request cut off at any point of its exchange (its future dropped) never hands
/// its reply to the next command: on the same checkout the next command reads the
/// owed replies away first, and a connection that goes back still owing
/// replies is closed.
#[tokio::test]
async fn requests_cut_off_at_any_point_never_mix_up_replies() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let pool = Builder::new().max_size(1).build(manager).unwrap();
        let key = unique("poolside:cut");
        let mut cut = 0;
        for round in 0..300u64 {
            let mut conn = pool.get().await.unwrap();
            // Cut a SET + GET off after `round % 12` polls (each followed by a yield,
            // so the socket makes progress between them): before it starts, after its
            // write, between its two commands, while a reply is half read...
            let value = format!("v{round}");
            let finished = {
                let exchange = async {
                    let () = conn.set(&key, &value).await?;
                    conn.get::<_, String>(&key).await
                };
                let mut exchange = std::pin::pin!(exchange);
                let mut finished = false;
                for _ in 0..round % 12 {
                    let poll = std::future::poll_fn(|cx| Poll::Ready(exchange.as_mut().poll(cx)));
                    if let Poll::Ready(reply) = poll.await {
                        assert_eq!(reply.unwrap(), value);
                        finished = true;
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                finished
            };
            if !finished && round % 12 > 0 {
                cut += 1;
            }
            // The next exchange on the same checkout sees its own replies.
            let after = format!("after{round}");
            let () = conn.set(&key, &after).await.unwrap();
            let got: String = conn.get(&key).await.unwrap();
            assert_eq!(got, after, "round {round}, multiplexed: {multiplexed}");
            assert!(!conn.is_broken(), "drained: round {round}");
        }
        assert!(cut > 0, "some exchanges were cut off");

        // Going back to the pool while a reply is owed closes the connection.
        let mut conn = pool.get().await.unwrap();
        let blocked = redis::cmd("BLPOP").arg(unique("poolside:empty")).arg(0.3).clone();
        let pending = tokio::time::timeout(
            Duration::from_millis(20),
            blocked.query_async::<Option<(String, String)>>(&mut *conn),
        )
        .await;
        assert!(pending.is_err(), "BLPOP waits on an empty list");
        if !multiplexed {
            assert!(conn.is_broken(), "a reply is owed");
            drop(conn);
            assert_eq!(pool.status().open, 0, "closed on return");
        } else {
            drop(conn);
        }
        let mut conn = pool.get().await.unwrap();
        assert_eq!(set_get_del(&mut conn, &key, "fresh").await, "fresh");
    }
}

#[tokio::test]
async fn a_reply_slower_than_the_response_timeout_fails_and_the_connection_closes() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let manager = manager.response_timeout(Some(Duration::from_millis(100)));
        let pool = Builder::new().max_size(1).build(manager).unwrap();
        let mut conn = pool.get().await.unwrap();
        let started = Instant::now();
        let err = redis::cmd("BLPOP")
            .arg(unique("poolside:empty"))
            .arg(1)
            .query_async::<Option<(String, String)>>(&mut *conn)
            .await
            .expect_err("the reply takes a second");
        assert!(err.is_timeout(), "multiplexed {multiplexed}: {err}");
        assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
        assert!(
            conn.is_broken(),
            "multiplexed {multiplexed}: a timed-out connection is not reused"
        );
        drop(conn);
        assert_eq!(pool.status().open, 0);
        let pong: String =
            redis::cmd("PING").query_async(&mut *pool.get().await.unwrap()).await.unwrap();
        assert_eq!(pong, "PONG");
    }
    // No limit: the same command waits for its reply.
    let pool = Builder::new()
        .max_size(1)
        .build(RedisManager::new(url.as_str()).unwrap().response_timeout(None))
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let reply: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(unique("poolside:empty"))
        .arg(0.6)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(reply, None);
    assert!(!conn.is_broken());
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_urls_get_a_direct_link() {
    if server().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("poolside-redis-sock").replace(':', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let own = OwnServer::start(&["--unixsocket", socket.to_str().unwrap(), "--requirepass", "pw"]);
    let url = format!("redis+unix://{}?pass=pw&db=3", socket.display());
    let manager = RedisManager::new(url.as_str()).unwrap();
    assert!(!manager.uses_multiplexed());
    let pool = Builder::new().max_size(2).build(manager).unwrap();
    let mut conn = pool.get().await.unwrap();
    assert_eq!(redis::aio::ConnectionLike::get_db(&*conn), 3);
    let () = conn.set("over-unix", "yes").await.unwrap();
    drop(conn);
    // Database 3 over TCP sees it: the socket link authenticated and selected.
    let mut tcp = admin_conn(&format!("redis://:pw@127.0.0.1:{}/3", own.port)).await;
    let seen: String = tcp.get("over-unix").await.unwrap();
    assert_eq!(seen, "yes");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Duration::MAX` is no limit in practice; `Duration::ZERO` ends at the timer's next
/// tick (tokio's meaning), so a command or dial either finishes before it or fails with
/// a timeout. Typed errors, no panic, nothing broken left open.
#[tokio::test]
async fn extreme_timeouts_are_limits_not_panics() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let far = manager
            .clone()
            .connect_timeout(Some(Duration::MAX))
            .response_timeout(Some(Duration::MAX));
        let pool = Builder::new().max_size(1).build(far).unwrap();
        let pong: String =
            redis::cmd("PING").query_async(&mut *pool.get().await.unwrap()).await.unwrap();
        assert_eq!(pong, "PONG", "multiplexed {multiplexed}");

        let none = manager.clone().response_timeout(Some(Duration::ZERO));
        let pool = Builder::new().max_size(1).build(none).unwrap();
        for _ in 0..20 {
            let mut conn = pool.get().await.unwrap();
            match redis::cmd("PING").query_async::<String>(&mut *conn).await {
                Ok(pong) => assert_eq!(pong, "PONG"),
                Err(err) => {
                    assert!(err.is_timeout(), "multiplexed {multiplexed}: {err}");
                    assert!(conn.is_broken());
                    drop(conn);
                    assert_eq!(pool.status().open, 0, "the timed-out connection is closed");
                }
            }
        }

        // A zero connect limit: a connection only if the dial needs no wait.
        let none = manager.connect_timeout(Some(Duration::ZERO));
        let pool = Builder::new()
            .max_size(1)
            .connect_timeout(Duration::from_millis(200))
            .build(none)
            .unwrap();
        if let Err(err) = pool.get().await {
            let (GetError::Connect(e) | GetError::ConnectFailed { last: e, .. }) = &err else {
                panic!("multiplexed {multiplexed}: not a connect error: {err:?}")
            };
            assert!(e.is_timeout(), "multiplexed {multiplexed}: {e}");
            assert_eq!(pool.status().open, 0);
        }
    }
}

/// After `SUBSCRIBE` or `MONITOR` a RESP2 server pushes messages nobody asked for,
/// after `CLIENT REPLY OFF` it stops answering, and `HELLO 3` changes the protocol: a
/// pooled connection would hand its next commands (its next caller's) replies that
/// are not theirs. Both links refuse those commands, alone or in a pipeline, before
/// anything is sent.
#[tokio::test]
async fn commands_that_would_make_replies_go_astray_are_refused() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let pool = Builder::new().max_size(1).build(manager).unwrap();
        let mut conn = pool.get().await.unwrap();
        let refused: [&[&str]; 6] = [
            &["SUBSCRIBE", "poolside:channel"],
            &["psubscribe", "poolside:*"],
            &["SSubscribe", "poolside:channel"],
            &["MONITOR"],
            &["CLIENT", "REPLY", "OFF"],
            &["HELLO", "3"],
        ];
        for words in refused {
            let err = command(words).query_async::<Value>(&mut *conn).await.expect_err(words[0]);
            assert_eq!(
                err.kind(),
                redis::ErrorKind::Client,
                "{words:?}, multiplexed {multiplexed}"
            );
        }
        let err = redis::pipe()
            .cmd("PING")
            .cmd("SUBSCRIBE")
            .arg("poolside:channel")
            .query_async::<Value>(&mut *conn)
            .await
            .expect_err("a pipeline with SUBSCRIBE");
        assert_eq!(err.kind(), redis::ErrorKind::Client);
        // Nothing was sent: the connection is as it was.
        assert!(!conn.is_broken());
        let key = unique("poolside:after-subscribe");
        assert_eq!(
            set_get_del(&mut conn, &key, "plain").await,
            "plain",
            "multiplexed {multiplexed}"
        );
    }
}

/// Session state one caller leaves behind never reaches the next: a connection
/// returned inside `MULTI` or `WATCH`, on another database, or after `AUTH` or a
/// `CLIENT` setting is closed; balanced transactions and a `SELECT` of its own
/// database keep it in service.
#[tokio::test]
async fn session_state_left_behind_closes_the_connection_on_return() {
    let Some(url) = server() else { return };
    let key = unique("poolside:session");
    let leave_behind: [&[&[&str]]; 6] = [
        &[&["MULTI"], &["INCR", "poolside:session:n"]],
        &[&["WATCH", "poolside:session:w"]],
        &[&["SELECT", "7"]],
        &[&["CLIENT", "SETNAME", "someone"]],
        &[&["AUTH", "default", "nopass"]],
        &[&["MULTI"], &["EXEC"], &["WATCH", "poolside:session:w"]],
    ];
    let harmless: [&[&[&str]]; 4] = [
        &[&["MULTI"], &["INCR", "poolside:session:n"], &["EXEC"]],
        &[&["WATCH", "poolside:session:w"], &["UNWATCH"]],
        &[&["WATCH", "poolside:session:w"], &["MULTI"], &["DISCARD"]],
        &[&["SELECT", "0"], &["CLIENT", "ID"]],
    ];
    for (manager, multiplexed) in both_links(&url) {
        let pool = Builder::new().max_size(1).build(manager).unwrap();
        for (commands, closes) in
            leave_behind.iter().map(|c| (c, true)).chain(harmless.iter().map(|c| (c, false)))
        {
            let mut conn = pool.get().await.unwrap();
            for words in commands.iter() {
                // Some fail on the server (AUTH without a password set): still closed.
                let _ = command(words).query_async::<Value>(&mut *conn).await;
            }
            assert_eq!(conn.is_broken(), closes, "{commands:?}, multiplexed {multiplexed}");
            drop(conn);
            assert_eq!(pool.status().open, usize::from(!closes), "{commands:?}");
            // The next caller starts clean: not queued in a transaction, database 0.
            let mut conn = pool.get().await.unwrap();
            let reply: Value =
                redis::cmd("SET").arg(&key).arg("v").query_async(&mut *conn).await.unwrap();
            assert_eq!(reply, Value::Okay, "{commands:?}: not QUEUED");
            let mut db0 = admin_conn(&url).await;
            let seen: Option<String> = db0.get(&key).await.unwrap();
            assert_eq!(seen.as_deref(), Some("v"), "{commands:?}: written to database 0");
            let () = db0.del(&key).await.unwrap();
            assert!(!conn.is_broken());
        }
        // An atomic pipeline after a WATCH ends the watch (its EXEC).
        let mut conn = pool.get().await.unwrap();
        let () = redis::cmd("WATCH").arg(&key).query_async(&mut *conn).await.unwrap();
        let _: Option<(i64,)> =
            redis::pipe().atomic().incr(&key, 1).query_async(&mut *conn).await.unwrap();
        assert!(!conn.is_broken(), "multiplexed {multiplexed}");
        let () = conn.del(&key).await.unwrap();
    }
}
