//! Counters of a proxy.

/// A consistent snapshot of a proxy's counters.
///
/// All counters are exact: they are updated under one lock, and
/// [`FaultHandle::wait_for_stats`](crate::FaultHandle::wait_for_stats) lets a test
/// await a condition on them instead of sleeping.
///
/// ```
/// use poolside_faultproxy::ProxyStats;
///
/// let stats = ProxyStats::default();
/// assert_eq!(stats.accepted, 0);
/// assert_eq!(stats.open, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Connections accepted from clients, including those reset at once in
    /// [`FaultMode::Reset`](crate::FaultMode::Reset).
    pub accepted: u64,
    /// Connections currently being served (accepted and not yet closed).
    pub open: u64,
    /// Bytes written to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes written to clients.
    pub bytes_to_client: u64,
    /// Bytes read in either direction and discarded by
    /// [`FaultMode::Blackhole`](crate::FaultMode::Blackhole).
    pub bytes_blackholed: u64,
    /// Client connections aborted with a TCP RST by
    /// [`FaultMode::Reset`](crate::FaultMode::Reset).
    pub resets: u64,
    /// Failed attempts to connect to the upstream (the client connection is then
    /// closed).
    pub upstream_connect_failures: u64,
}
