//! The Redis adapter tests of the two pools our users come from, translated to our
//! API: deadpool-redis (`redis/tests/redis.rs`, bikeshedder/deadpool @ 375ffee) and
//! bb8-redis (which has no tests: its manager's `is_valid` and `has_broken`, djc/bb8
//! @ 15a6c5a). Each test names, in a one-line comment, the peer test or behaviour it
//! mirrors; none of the peers' code is copied. Every test runs against the real
//! server `cargo xtask services` starts (`POOLSIDE_REDIS_URL`), on both links a
//! `RedisManager` opens (a socket the connection owns, and the `redis` crate's
//! multiplexed connection) unless it says otherwise.
//!
//! How the peers' vocabulary maps onto ours: deadpool's `Connection` / bb8's
//! `PooledConnection` is our `RedisConnection` behind a `PooledConn` (a
//! `redis::aio::ConnectionLike`, so `query_async(&mut *conn)`); deadpool's `recycle`
//! (`UNWATCH` + `PING`) and bb8's `is_valid` (`PING`) are `Manager::check` (`PING`,
//! run when a connection sat unused for `health_check_after`; zero here where the
//! peers check every checkout); bb8's `has_broken` (always `false`) is
//! `Manager::is_broken` (`RedisConnection::is_broken`).
//!
//! Design differences, documented in the crate, that the translations assert:
//!
//! - A connection returned inside a `WATCH` or a `MULTI` that no `EXEC`, `DISCARD`
//!   or `UNWATCH` ended is closed, not recycled: deadpool sends `UNWATCH` at the next
//!   checkout and keeps it (and discards a connection left in `MULTI` only because
//!   its `PING` is answered `QUEUED`). The next user gets a clean connection either
//!   way, ours a fresh one.
//! - So is a connection after `SELECT` of another database than the URL's: deadpool
//!   and bb8 hand it on, still on that database.
//! - A command cut off before its reply was read (a dropped future) closes a
//!   connection that owns its socket when it comes back; the multiplexed connection
//!   (deadpool's and bb8's only link) reads the late reply away itself and stays.
//! - `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` and `MONITOR` are refused over RESP2
//!   with an `ErrorKind::Client` error before anything is sent; over RESP3 a
//!   subscription is allowed and closes the connection on return, so no later user
//!   receives its messages. deadpool and bb8 send them and hand the connection on.
//!
//! Peer tests not translated:
//!
//! - deadpool-redis `redis_cluster.rs` and `redis_sentinel.rs`: there is no cluster
//!   or sentinel manager (a `ShardedPool` or `FailoverPool` of `RedisManager` pools
//!   is the nearest thing, tested in `tests/it/sharded.rs` and `failover.rs`).
//! - deadpool-redis `config_from_env`-style tests: the manager takes a URL or a
//!   `redis::IntoConnectionInfo`; the pool's own settings from the environment are
//!   `config::Config::from_env`, tested in `tests/config_env.rs`.
#![cfg(feature = "redis")]

use crate::common::redis_server::{admin_conn, both_links, client_id, kill_client, server, unique};
use poolside_connpool::{Builder, Pool, redis::RedisManager};
use redis::{AsyncCommands, ErrorKind, Value};
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

/// A pool of `max_size` connections on `manager`, each checked at every checkout.
fn checked_pool(manager: RedisManager, max_size: usize) -> Pool<RedisManager> {
    Builder::new().max_size(max_size).health_check_after(Duration::ZERO).build(manager).unwrap()
}

/// The shared server's URL with RESP3 asked for.
fn resp3(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}protocol=resp3")
}

// deadpool-redis: test_pipeline
#[tokio::test]
async fn a_pipeline_sets_and_gets_in_one_exchange() {
    let Some(url) = server() else { return };
    let key = unique("poolside:peers:pipeline");
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let mut conn = pool.get().await.unwrap();
        let (value,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg("42")
            .ignore()
            .cmd("GET")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!(value, "42", "multiplexed {multiplexed}");
        let () = conn.del(&key).await.unwrap();
    }
}

// deadpool-redis: test_high_level_commands
#[tokio::test]
async fn async_commands_work_on_a_pooled_connection() {
    let Some(url) = server() else { return };
    let key = unique("poolside:peers:hlc");
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let mut conn = pool.get().await.unwrap();
        let () = conn.set(&key, 42).await.unwrap();
        let value: isize = conn.get(&key).await.unwrap();
        assert_eq!(value, 42, "multiplexed {multiplexed}");
        let () = conn.del(&key).await.unwrap();
    }
}

// deadpool-redis: test_aborted_command
#[tokio::test]
async fn a_command_dropped_after_one_poll_never_answers_the_next_user() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let first_id = {
            let mut conn = pool.get().await.unwrap();
            let id = client_id(&mut *conn).await;
            // One poll sends the command; dropping the future leaves its reply unread.
            {
                let mut wrong = redis::cmd("PING");
                wrong.arg("wrong");
                let mut ping = std::pin::pin!(wrong.query_async::<String>(&mut *conn));
                let polled = ping.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                assert!(polled.is_pending(), "a reply cannot be back before the first poll ends");
            }
            // The link that owns its socket still owes the reply: closed on return.
            assert_eq!(conn.is_broken(), !multiplexed, "multiplexed {multiplexed}");
            id
        };
        assert_eq!(pool.status().open, usize::from(multiplexed), "multiplexed {multiplexed}");
        let mut conn = pool.get().await.unwrap();
        let value: String = redis::cmd("PING").arg("right").query_async(&mut *conn).await.unwrap();
        assert_eq!(value, "right", "multiplexed {multiplexed}");
        assert_eq!(client_id(&mut *conn).await == first_id, multiplexed);
    }
}

// deadpool-redis: test_recycled
#[tokio::test]
async fn a_returned_connection_is_handed_out_again() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let first = client_id(&mut *pool.get().await.unwrap()).await;
        let second = client_id(&mut *pool.get().await.unwrap()).await;
        assert_eq!(first, second, "the connection was recycled (multiplexed {multiplexed})");
    }
}

// deadpool-redis: test_recycled_with_watch
#[tokio::test]
async fn a_connection_returned_with_a_watch_is_replaced_and_never_aborts_the_next_transaction() {
    let Some(url) = server() else { return };
    let watched = unique("poolside:peers:watched");
    let txn_key = unique("poolside:peers:txn");
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 2);
        let watching_id = {
            let mut conn = pool.get().await.unwrap();
            let id = client_id(&mut *conn).await;
            let () = redis::cmd("WATCH").arg(&watched).query_async(&mut *conn).await.unwrap();
            assert!(conn.is_broken(), "a pending WATCH closes the connection on return");
            id
        };
        assert_eq!(pool.status().open, 0, "multiplexed {multiplexed}");

        let mut txn_conn = pool.get().await.unwrap();
        assert_ne!(client_id(&mut *txn_conn).await, watching_id, "a fresh connection");
        let () = redis::cmd("WATCH").arg(&txn_key).query_async(&mut *txn_conn).await.unwrap();
        {
            let mut writer = pool.get().await.unwrap();
            let () =
                redis::cmd("SET").arg(&watched).arg("v").query_async(&mut *writer).await.unwrap();
        }
        let result: Value =
            redis::pipe().atomic().set(&txn_key, "foo").query_async(&mut *txn_conn).await.unwrap();
        assert_eq!(
            result,
            Value::Array(vec![Value::Okay]),
            "not aborted (multiplexed {multiplexed})"
        );
        assert!(!txn_conn.is_broken(), "the atomic pipeline's EXEC ended the watch");
        let () = txn_conn.del(&[&watched, &txn_key]).await.unwrap();
    }
}

// deadpool-redis: recycle (an open MULTI answers PING with QUEUED; a SELECTed database)
#[tokio::test]
async fn a_connection_left_in_multi_or_on_another_database_is_replaced() {
    let Some(url) = server() else { return };
    let key = unique("poolside:peers:left");
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        for left in [&["MULTI"][..], &["SELECT", "9"]] {
            let case = format!("{left:?} multiplexed {multiplexed}");
            let id = {
                let mut conn = pool.get().await.unwrap();
                let id = client_id(&mut *conn).await;
                let () = redis::cmd(left[0]).arg(&left[1..]).query_async(&mut *conn).await.unwrap();
                id
            };
            assert_eq!(pool.status().open, 0, "{case}: closed on return");
            let mut conn = pool.get().await.unwrap();
            assert_ne!(client_id(&mut *conn).await, id, "{case}");
            let reply: Value =
                redis::cmd("SET").arg(&key).arg("v").query_async(&mut *conn).await.unwrap();
            assert_eq!(reply, Value::Okay, "{case}: not QUEUED");
            let mut db0 = admin_conn(&url).await;
            let seen: Option<String> = db0.get(&key).await.unwrap();
            assert_eq!(seen.as_deref(), Some("v"), "{case}: on the URL's database");
            let () = db0.del(&key).await.unwrap();
        }
    }
}

// deadpool-redis: recycle (a connection left subscribed)
#[tokio::test]
async fn subscribing_is_refused_over_resp2_and_closes_the_connection_over_resp3() {
    let Some(url) = server() else { return };
    let channel = unique("poolside:peers:channel");
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let mut conn = pool.get().await.unwrap();
        for name in ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"] {
            let err =
                redis::cmd(name).arg(&channel).query_async::<Value>(&mut *conn).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Client, "{name} multiplexed {multiplexed}");
        }
        assert!(!conn.is_broken(), "nothing was sent");
    }
    let pool = checked_pool(RedisManager::new(resp3(&url)).unwrap(), 1);
    for name in ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"] {
        let id = {
            let mut conn = pool.get().await.unwrap();
            let id = client_id(&mut *conn).await;
            let _: Value = redis::cmd(name).arg(&channel).query_async(&mut *conn).await.unwrap();
            assert!(conn.is_broken(), "{name}: closed on return");
            id
        };
        assert_eq!(pool.status().open, 0, "{name}");
        let mut conn = pool.get().await.unwrap();
        assert_ne!(client_id(&mut *conn).await, id, "{name}");
        let info: String = redis::cmd("CLIENT").arg("INFO").query_async(&mut *conn).await.unwrap();
        assert!(info.contains(" sub=0 ") && info.contains(" psub=0 "), "{name}: {info}");
    }
}

// bb8-redis: is_valid / has_broken (a connection the server dropped)
#[tokio::test]
async fn a_connection_the_server_killed_is_replaced_at_checkout() {
    let Some(url) = server() else { return };
    for (manager, multiplexed) in both_links(&url) {
        let pool = checked_pool(manager, 1);
        let id = client_id(&mut *pool.get().await.unwrap()).await;
        let mut admin = admin_conn(&url).await;
        assert_eq!(kill_client(&mut admin, id).await, 1);
        // The idle connection fails its PING; the caller gets a fresh one, no error.
        let mut conn = pool.get().await.unwrap();
        assert_ne!(client_id(&mut *conn).await, id, "multiplexed {multiplexed}");
        assert_eq!(pool.status().open, 1);

        // Killed while held: the holder's command fails, and the connection is
        // closed on return (bb8's `has_broken` is always false: it keeps it until
        // the next `is_valid`).
        let held = client_id(&mut *conn).await;
        kill_client(&mut admin, held).await;
        assert!(redis::cmd("PING").query_async::<String>(&mut *conn).await.is_err());
        assert!(conn.is_broken(), "multiplexed {multiplexed}");
        drop(conn);
        assert_eq!(pool.status().open, 0, "multiplexed {multiplexed}");
    }
}
