//! Where a test server is: `cargo xtask test` starts throwaway PostgreSQL and Redis
//! servers and names them in environment variables. Without one a test fails under
//! `CI=true` (the server must be there) and elsewhere prints a notice and skips.
//! Shared by the test binaries that need a server (included with `#[path]`).

/// The URL in the variable `var`, or `None` (after a notice naming the `what` test
/// that skips).
pub(crate) fn service_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI: run the tests with `cargo xtask test`")
        }
        Err(_) => {
            eprintln!(
                "NOTICE: {var} is not set; skipping the {what} test \
                 (`cargo xtask test` starts a server and sets it)"
            );
            None
        }
    }
}
