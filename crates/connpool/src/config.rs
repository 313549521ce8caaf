//! Pool settings as data (feature `serde`): [`Config`] deserializes from any serde
//! format, with durations in humantime form (`"30s"`, `"1m 30s"`, `"250ms"`), or is
//! read from environment variables with [`Config::from_env`]; then
//! [`Builder::from_config`] turns it into a builder. Every setting is optional (unset
//! keeps the builder's default); unknown keys are errors naming the key.

use crate::builder::{Builder, WaitPolicy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A pool's settings as data. Deserialize it (TOML, JSON, YAML, ...) or read it from
/// the environment, then build with [`Builder::from_config`]. Unset fields keep the
/// builder's defaults; all checks happen in [`Builder::build`] as usual.
///
/// `wait` is `"queue"`, `"fail_fast"`, or a duration (wait at most that long).
///
/// ```
/// use poolside_connpool::{Builder, config::Config, WaitPolicy};
/// use std::time::Duration;
///
/// let cfg: Config = toml::from_str(r#"
///     max_size = 16
///     min_idle = 2
///     max_lifetime = "30m"
///     connect_timeout = "5s"
///     wait = "250ms"
///     dial_backoff = { min = "10ms", max = "1s" }
/// "#).unwrap();
/// assert_eq!(cfg.max_lifetime, Some(Duration::from_secs(1800)));
/// assert_eq!(cfg.wait, Some(WaitPolicy::Timeout(Duration::from_millis(250))));
/// let builder = Builder::from_config(&cfg);
/// # let _ = builder;
///
/// let err = toml::from_str::<Config>("max_sise = 3").unwrap_err();
/// assert!(err.to_string().contains("max_sise"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// [`Builder::max_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<usize>,
    /// [`Builder::min_idle`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_idle: Option<usize>,
    /// [`Builder::max_lifetime`].
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<Duration>,
    /// [`Builder::max_idle_time`].
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub max_idle_time: Option<Duration>,
    /// [`Builder::health_check_after`].
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub health_check_after: Option<Duration>,
    /// [`Builder::max_health_retries`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_health_retries: Option<u32>,
    /// [`Builder::connect_timeout`].
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// [`Builder::connect_retries`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_retries: Option<u32>,
    /// [`Builder::dial_backoff`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_backoff: Option<BackoffConfig>,
    /// [`Builder::wait`]: `"queue"`, `"fail_fast"` or a duration.
    #[serde(with = "opt_wait", skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitPolicy>,
    /// [`Builder::janitor_interval`].
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub janitor_interval: Option<Duration>,
}

/// The dial backoff's range, as in [`Builder::dial_backoff`].
///
/// ```
/// use poolside_connpool::config::BackoffConfig;
/// let b: BackoffConfig = toml::from_str(r#"min = "5ms"
/// max = "2s""#).unwrap();
/// assert_eq!(b.max, std::time::Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// The first delay.
    #[serde(with = "duration")]
    pub min: Duration,
    /// The longest delay.
    #[serde(with = "duration")]
    pub max: Duration,
}

/// A setting [`Config::from_env`] could not use: the variable is named in every case.
///
/// ```
/// use poolside_connpool::{config::Config, config::ConfigError};
/// let err = Config::from_vars("DB", [("DB__MAX_SIZE", "many")]).unwrap_err();
/// assert_eq!(err.key(), "DB__MAX_SIZE");
/// assert!(matches!(err, ConfigError::BadValue { .. }));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No setting has this name.
    UnknownKey {
        /// The variable, e.g. `DB__MAX_SIZ`.
        key: String,
    },
    /// The value does not parse for this setting.
    BadValue {
        /// The variable.
        key: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl ConfigError {
    /// The variable the error is about.
    ///
    /// ```
    /// # use poolside_connpool::config::ConfigError;
    /// assert_eq!(ConfigError::UnknownKey { key: "P__X".into() }.key(), "P__X");
    /// ```
    pub fn key(&self) -> &str {
        match self {
            ConfigError::UnknownKey { key } | ConfigError::BadValue { key, .. } => key,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownKey { key } => write!(f, "unknown pool setting `{key}`"),
            ConfigError::BadValue { key, value, expected } => {
                write!(f, "`{key}` = {value:?} is not {expected}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

const A_COUNT: &str = "a whole number";
const A_DURATION: &str = "a duration such as \"30s\" or \"250ms\"";
const A_WAIT: &str = "\"queue\", \"fail_fast\" or a duration";

impl Config {
    /// Reads `PREFIX__SETTING` variables (the setting's name in upper case:
    /// `DB__MAX_SIZE=16`, `DB__CONNECT_TIMEOUT=5s`, `DB__WAIT=queue`,
    /// `DB__DIAL_BACKOFF__MIN=10ms`), like deadpool's `Config::from_env`. A variable
    /// that starts with `PREFIX__` but names no setting, or whose value does not
    /// parse, is a [`ConfigError`] naming it; other variables are ignored.
    ///
    /// ```
    /// use poolside_connpool::config::Config;
    /// // No variable starts with this prefix: every setting stays unset.
    /// let cfg = Config::from_env("POOLSIDE_DOC_EXAMPLE_UNSET").unwrap();
    /// assert_eq!(cfg, Config::default());
    /// ```
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        Self::from_vars(
            prefix,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// [`from_env`](Self::from_env) over the given `(name, value)` pairs instead of
    /// the process environment.
    ///
    /// ```
    /// use poolside_connpool::{config::Config, WaitPolicy};
    /// let cfg = Config::from_vars("DB", [("DB__MAX_SIZE", "8"), ("DB__WAIT", "fail_fast")]).unwrap();
    /// assert_eq!(cfg.max_size, Some(8));
    /// assert_eq!(cfg.wait, Some(WaitPolicy::FailFast));
    /// ```
    pub fn from_vars<K, V>(
        prefix: &str,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let head = format!("{prefix}__");
        let mut cfg = Config::default();
        let mut backoff_min = None;
        let mut backoff_max = None;
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            let Some(name) = key.strip_prefix(&head) else { continue };
            let bad = |expected| ConfigError::BadValue {
                key: key.to_owned(),
                value: value.to_owned(),
                expected,
            };
            let count = || value.parse::<usize>().map_err(|_| bad(A_COUNT));
            let small = || value.parse::<u32>().map_err(|_| bad(A_COUNT));
            let duration = || parse_duration(value).ok_or_else(|| bad(A_DURATION));
            match name.to_ascii_lowercase().as_str() {
                "max_size" => cfg.max_size = Some(count()?),
                "min_idle" => cfg.min_idle = Some(count()?),
                "max_lifetime" => cfg.max_lifetime = Some(duration()?),
                "max_idle_time" => cfg.max_idle_time = Some(duration()?),
                "health_check_after" => cfg.health_check_after = Some(duration()?),
                "max_health_retries" => cfg.max_health_retries = Some(small()?),
                "connect_timeout" => cfg.connect_timeout = Some(duration()?),
                "connect_retries" => cfg.connect_retries = Some(small()?),
                "janitor_interval" => cfg.janitor_interval = Some(duration()?),
                "wait" => cfg.wait = Some(parse_wait(value).ok_or_else(|| bad(A_WAIT))?),
                "dial_backoff__min" => backoff_min = Some((key.to_owned(), duration()?)),
                "dial_backoff__max" => backoff_max = Some((key.to_owned(), duration()?)),
                _ => return Err(ConfigError::UnknownKey { key: key.to_owned() }),
            }
        }
        match (backoff_min, backoff_max) {
            (Some((_, min)), Some((_, max))) => cfg.dial_backoff = Some(BackoffConfig { min, max }),
            (None, None) => {}
            (Some((key, _)), None) | (None, Some((key, _))) => {
                return Err(ConfigError::BadValue {
                    key,
                    value: String::new(),
                    expected: "set together with the other end of the dial backoff",
                });
            }
        }
        Ok(cfg)
    }
}

impl Builder {
    /// A builder with the settings `cfg` sets, the defaults for the rest. Checked,
    /// like every setting, by [`build`](Self::build).
    ///
    /// ```
    /// use poolside_connpool::{BuildError, Builder, config::Config};
    /// # use poolside_connpool::Manager;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let cfg = Config { max_size: Some(0), ..Config::default() };
    /// assert_eq!(Builder::from_config(&cfg).build(Noop).unwrap_err(), BuildError::ZeroMaxSize);
    /// ```
    pub fn from_config(cfg: &Config) -> Builder {
        let mut b = Builder::new();
        if let Some(v) = cfg.max_size {
            b = b.max_size(v);
        }
        if let Some(v) = cfg.min_idle {
            b = b.min_idle(v);
        }
        if let Some(v) = cfg.max_lifetime {
            b = b.max_lifetime(v);
        }
        if let Some(v) = cfg.max_idle_time {
            b = b.max_idle_time(v);
        }
        if let Some(v) = cfg.health_check_after {
            b = b.health_check_after(v);
        }
        if let Some(v) = cfg.max_health_retries {
            b = b.max_health_retries(v);
        }
        if let Some(v) = cfg.connect_timeout {
            b = b.connect_timeout(v);
        }
        if let Some(v) = cfg.connect_retries {
            b = b.connect_retries(v);
        }
        if let Some(v) = cfg.dial_backoff {
            b = b.dial_backoff(v.min, v.max);
        }
        if let Some(v) = cfg.wait {
            b = b.wait(v);
        }
        if let Some(v) = cfg.janitor_interval {
            b = b.janitor_interval(v);
        }
        b
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

fn parse_wait(text: &str) -> Option<WaitPolicy> {
    match text.trim().to_ascii_lowercase().as_str() {
        "queue" => Some(WaitPolicy::Queue),
        "fail_fast" | "fail-fast" | "failfast" => Some(WaitPolicy::FailFast),
        other => parse_duration(other).map(WaitPolicy::Timeout),
    }
}

fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A required humantime duration.
mod duration {
    use super::*;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).ok_or_else(|| {
            serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &A_DURATION)
        })
    }
}

/// An optional humantime duration.
mod opt_duration {
    use super::*;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

/// An optional wait policy: `"queue"`, `"fail_fast"` or a duration.
mod opt_wait {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        w: &Option<WaitPolicy>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match w {
            Some(WaitPolicy::Queue) => s.serialize_str("queue"),
            Some(WaitPolicy::FailFast) => s.serialize_str("fail_fast"),
            Some(WaitPolicy::Timeout(d)) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<WaitPolicy>, D::Error> {
        let text = String::deserialize(d)?;
        parse_wait(&text).map(Some).ok_or_else(|| {
            serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &A_WAIT)
        })
    }
}
