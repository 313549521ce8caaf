//! The PostgreSQL adapter against a real server (feature `postgres`): one binary,
//! whose tests `.config/nextest.toml` runs one at a time, apart from
//! `postgres_restart`, which restarts the shared server. Each test skips when
//! `POOLSIDE_PG_URL` is unset, except under `CI=true`.

mod common;

mod adapter;
mod blocking;
mod cache;
mod hooks;
mod outage;
mod peers;
mod tls;
