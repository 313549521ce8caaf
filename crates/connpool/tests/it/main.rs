//! The connection pool's integration tests, one module per area, in one binary (one
//! link instead of one per file). Kept apart, each in a binary of its own: `loom`
//! (built only under `--cfg poolside_loom`), `config_env` (sets process environment
//! variables, sound only with no other test thread running), the PostgreSQL tests
//! in `postgres/` and `postgres_restart` (they share one server that the latter
//! restarts; `.config/nextest.toml` runs them one at a time), and `blocking_leaks` (it counts the process's threads and file descriptors).

mod common;

mod acquire_wait;
mod add;
mod add_waiter;
mod adversity;
mod blocking;
mod blocking_diesel;
mod blocking_hooks;
mod blocking_model;
mod blocking_sqlite;
mod cancel;
mod chaos_soak;
mod config;
mod extremes;
mod failover;
mod failover_faults;
mod fairness;
mod hooks;
mod hooks_events;
mod hooks_stress;
mod immediate;
mod model;
mod owned;
mod panics;
mod peers_async;
mod peers_blocking;
mod peers_redis;
mod peers_sqlx_mobc;
mod pool;
mod redis;
mod sharded;
mod sharded_faults;
mod stress_idle;
mod tcp;
mod wait_line;
