//! Errors of the proxy.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a proxy operation failed.
///
/// ```
/// use poolside_faultproxy::ProxyError;
///
/// assert_eq!(ProxyError::ShutDown.to_string(), "the fault proxy has been shut down");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy could not bind its loopback listener when it was started.
    Bind {
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// Leaving [`FaultMode::Refuse`](crate::FaultMode::Refuse), the proxy could not bind
    /// its port again within its retry window (another socket took the port). The proxy
    /// keeps refusing and tries again on the next mode switch.
    Rebind {
        /// The address the proxy tried to bind again.
        addr: SocketAddr,
        /// The last OS error.
        source: Arc<io::Error>,
    },
    /// The proxy has been shut down or dropped.
    ShutDown,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { source } => {
                write!(f, "the fault proxy could not bind a loopback port: {source}")
            }
            Self::Rebind { addr, source } => {
                write!(f, "the fault proxy could not bind {addr} again: {source}")
            }
            Self::ShutDown => f.write_str("the fault proxy has been shut down"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source } | Self::Rebind { source, .. } => Some(&**source),
            Self::ShutDown => None,
        }
    }
}
