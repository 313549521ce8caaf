//! `Config::from_env` reads the process environment (one test per binary: setting
//! variables while other threads read the environment is not sound).
#![cfg(feature = "serde")]

use poolside_connpool::{config::Config, config::ConfigError};

#[test]
fn from_env_reads_prefixed_variables_and_names_a_bad_one() {
    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe {
        std::env::set_var("POOLSIDE_CFG_TEST__MAX_SIZE", "12");
        std::env::set_var("POOLSIDE_CFG_TEST__CONNECT_TIMEOUT", "3s");
    }
    let cfg = Config::from_env("POOLSIDE_CFG_TEST").unwrap();
    assert_eq!(cfg.max_size, Some(12));
    assert_eq!(cfg.connect_timeout, Some(std::time::Duration::from_secs(3)));
    // SAFETY: as above.
    unsafe { std::env::set_var("POOLSIDE_CFG_TEST__MAX_SIZ", "3") };
    assert_eq!(
        Config::from_env("POOLSIDE_CFG_TEST").unwrap_err(),
        ConfigError::UnknownKey { key: "POOLSIDE_CFG_TEST__MAX_SIZ".into() }
    );
}
