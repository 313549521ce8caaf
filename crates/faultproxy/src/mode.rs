//! The fault a proxy injects.

use std::time::Duration;

/// What a [`FaultProxy`](crate::FaultProxy) does to the traffic it relays.
///
/// The mode is switched at runtime with
/// [`FaultHandle::set_mode`](crate::FaultHandle::set_mode). New connections always see
/// the current mode; what a switch does to connections that are already open is
/// described on each variant.
///
/// ```
/// use poolside_faultproxy::FaultMode;
/// use std::time::Duration;
///
/// let mode = FaultMode::Latency(Duration::from_millis(20));
/// assert_ne!(mode, FaultMode::Pass);
/// assert_eq!(FaultMode::default(), FaultMode::Pass);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultMode {
    /// Plain forwarding in both directions, closes and half-closes propagated at once.
    #[default]
    Pass,
    /// Every chunk read from either side is held for the duration before it is written
    /// to the other side. Connection setup and closes are not delayed. The mode is
    /// sampled per chunk, so a switch applies to open connections from their next
    /// chunk on. A round trip through the proxy therefore takes at least twice the
    /// delay. One chunk (up to 16 KiB) is in flight per direction, so throughput is
    /// capped at one chunk per delay per direction.
    Latency(Duration),
    /// Connections are accepted but never answered: bytes from the client are read and
    /// discarded (counted in [`ProxyStats::bytes_blackholed`](crate::ProxyStats)), nothing
    /// is sent to the client and nothing is forwarded, not even a close.
    ///
    /// A connection accepted while blackholed does not dial the upstream until the
    /// mode leaves `Blackhole`; if the client closes before that, the connection just
    /// ends. On an open, forwarding connection, chunks read in either direction while
    /// blackholed are discarded, and a close seen while blackholed is held back until
    /// the mode changes. When the mode changes back, forwarding resumes with the next
    /// chunk: discarded bytes are lost for good.
    Blackhole,
    /// Every connection, open or new, is aborted with a TCP RST (`SO_LINGER` set to
    /// zero before the socket is dropped): the client's next read fails with
    /// [`std::io::ErrorKind::ConnectionReset`] (a client whose connect is still
    /// completing when the RST arrives sees the connect itself fail with it). The
    /// upstream side of an open connection
    /// is closed normally (FIN). New connections are accepted and reset at once.
    /// [`FaultHandle::set_mode`](crate::FaultHandle::set_mode) returns once every
    /// connection that was open has been reset.
    Reset,
    /// The listener is closed, so connection attempts fail with
    /// [`std::io::ErrorKind::ConnectionRefused`]. Connections that are already open keep
    /// being forwarded as in [`Pass`](Self::Pass) (call
    /// [`FaultHandle::kill_all`](crate::FaultHandle::kill_all) to drop them too). Leaving
    /// `Refuse` re-binds the same port with `SO_REUSEADDR`.
    Refuse,
    /// Forwarding as in [`Pass`](Self::Pass), but when one side closes its sending half
    /// (EOF), the proxy waits for the duration before it half-closes the other side.
    /// The mode is sampled when the EOF is read. Errors (such as a reset) are
    /// propagated at once.
    SlowClose(Duration),
}
