//! Configuration as data (feature `serde`): TOML round trips, environment variables,
//! and a typed error naming every bad value and unknown key.
#![cfg(feature = "serde")]

use poolside_connpool::{
    BuildError, Builder, Manager, WaitPolicy, config::BackoffConfig, config::Config,
    config::ConfigError,
};
use std::time::Duration;

struct Noop;

impl Manager for Noop {
    type Connection = ();
    type Error = std::convert::Infallible;
    async fn connect(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    async fn check(&self, _: &mut ()) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn full() -> Config {
    Config {
        max_size: Some(16),
        min_idle: Some(2),
        max_lifetime: Some(Duration::from_secs(30 * 60)),
        max_idle_time: Some(Duration::from_secs(90)),
        health_check_after: Some(Duration::from_millis(250)),
        max_health_retries: Some(4),
        connect_timeout: Some(Duration::from_secs(5)),
        connect_retries: Some(3),
        dial_backoff: Some(BackoffConfig {
            min: Duration::from_millis(10),
            max: Duration::from_secs(1),
        }),
        wait: Some(WaitPolicy::Timeout(Duration::from_millis(1500))),
        janitor_interval: Some(Duration::from_secs(10)),
    }
}

#[test]
fn toml_round_trips_with_humantime_durations() {
    let cfg = full();
    let text = toml::to_string(&cfg).unwrap();
    assert!(text.contains("max_lifetime = \"30m\""), "{text}");
    assert!(text.contains("wait = \"1s 500ms\""), "{text}");
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), cfg);
    for wait in [WaitPolicy::Queue, WaitPolicy::FailFast] {
        let cfg = Config { wait: Some(wait), ..Config::default() };
        let back: Config = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back.wait, Some(wait));
    }
    assert_eq!(toml::from_str::<Config>("").unwrap(), Config::default());
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    for (text, key) in [
        ("max_sise = 3", "max_sise"),
        ("dial_backoff = { min = \"1ms\", max = \"2ms\", jitter = true }", "jitter"),
        ("[pool]\nmax_size = 3", "pool"),
    ] {
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("unknown field"), "{text}: {err}");
    }
}

#[test]
fn bad_values_are_errors_naming_the_setting() {
    for (text, key) in [
        ("max_lifetime = \"forever\"", "max_lifetime"),
        ("connect_timeout = 5", "connect_timeout"),
        ("wait = \"sometimes\"", "wait"),
        ("max_size = -1", "max_size"),
        ("max_health_retries = 99999999999", "max_health_retries"),
        ("dial_backoff = { min = \"1ms\" }", "dial_backoff"),
    ] {
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn environment_variables_set_every_setting() {
    let vars = [
        ("APP_DB__MAX_SIZE", "16"),
        ("APP_DB__MIN_IDLE", "2"),
        ("APP_DB__MAX_LIFETIME", "30m"),
        ("APP_DB__MAX_IDLE_TIME", "1m 30s"),
        ("APP_DB__HEALTH_CHECK_AFTER", "250ms"),
        ("APP_DB__MAX_HEALTH_RETRIES", "4"),
        ("APP_DB__CONNECT_TIMEOUT", "5s"),
        ("APP_DB__CONNECT_RETRIES", "3"),
        ("APP_DB__DIAL_BACKOFF__MIN", "10ms"),
        ("APP_DB__DIAL_BACKOFF__MAX", "1s"),
        ("APP_DB__WAIT", "1500ms"),
        ("APP_DB__JANITOR_INTERVAL", "10s"),
        // Other prefixes are not ours.
        ("APP_DBX__MAX_SIZE", "nonsense"),
        ("PATH", "/usr/bin"),
    ];
    assert_eq!(Config::from_vars("APP_DB", vars).unwrap(), full());
    let queue = Config::from_vars("P", [("P__WAIT", "queue")]).unwrap();
    assert_eq!(queue.wait, Some(WaitPolicy::Queue));
}

#[test]
fn every_bad_variable_is_a_typed_error_naming_it() {
    let unknown = Config::from_vars("P", [("P__MAX_SIZ", "3")]).unwrap_err();
    assert_eq!(unknown, ConfigError::UnknownKey { key: "P__MAX_SIZ".into() });
    assert!(unknown.to_string().contains("P__MAX_SIZ"));
    for (key, value) in [
        ("P__MAX_SIZE", "-1"),
        ("P__MAX_SIZE", "lots"),
        ("P__MIN_IDLE", "1.5"),
        ("P__MAX_LIFETIME", "forever"),
        ("P__MAX_IDLE_TIME", ""),
        ("P__HEALTH_CHECK_AFTER", "5"),
        ("P__MAX_HEALTH_RETRIES", "99999999999"),
        ("P__CONNECT_TIMEOUT", "soon"),
        ("P__CONNECT_RETRIES", "x"),
        ("P__DIAL_BACKOFF__MIN", "1 parsec"),
        ("P__WAIT", "sometimes"),
        ("P__JANITOR_INTERVAL", "-1s"),
    ] {
        let err = Config::from_vars("P", [(key, value)]).unwrap_err();
        assert_eq!(err.key(), key, "{key}={value}");
        assert!(matches!(err, ConfigError::BadValue { .. }), "{key}={value}: {err:?}");
        assert!(err.to_string().contains(key));
    }
    let half = Config::from_vars("P", [("P__DIAL_BACKOFF__MAX", "1s")]).unwrap_err();
    assert_eq!(half.key(), "P__DIAL_BACKOFF__MAX");
}

#[tokio::test(flavor = "current_thread")]
async fn from_config_applies_the_settings_and_build_checks_them() {
    let pool = Builder::from_config(&full()).build(Noop).unwrap();
    assert_eq!(pool.max_size(), 16);
    // Unset settings keep the defaults.
    assert_eq!(Builder::from_config(&Config::default()).build(Noop).unwrap().max_size(), 10);
    // Absurd values are typed build errors, as for the builder's own methods.
    for (cfg, expected) in [
        (Config { max_size: Some(0), ..Config::default() }, BuildError::ZeroMaxSize),
        (
            Config { max_size: Some(usize::MAX), ..Config::default() },
            BuildError::OutOfRange { setting: "max_size" },
        ),
        (
            Config { connect_timeout: Some(Duration::ZERO), ..Config::default() },
            BuildError::ZeroDuration { setting: "connect_timeout" },
        ),
        (
            Config {
                dial_backoff: Some(BackoffConfig { min: Duration::MAX, max: Duration::ZERO }),
                ..Config::default()
            },
            BuildError::BackoffRange { min: Duration::MAX, max: Duration::ZERO },
        ),
    ] {
        assert_eq!(Builder::from_config(&cfg).build(Noop).unwrap_err(), expected);
    }
    // Duration::MAX lifetimes build and never overflow a deadline.
    let huge = Config {
        max_lifetime: Some(Duration::MAX),
        wait: Some(WaitPolicy::Timeout(Duration::MAX)),
        ..Config::default()
    };
    let pool = Builder::from_config(&huge).build(Noop).unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(pool.status().idle, 1);
}
