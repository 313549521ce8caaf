//! Where a [`FailoverPool`] routes checkouts, and which backend a connection came from.

use std::fmt;

/// Which pool a connection came from.
///
/// ```
/// assert_eq!(poolside_connpool::failover::Backend::Spare.to_string(), "spare");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The preferred pool.
    Primary,
    /// The warm standby.
    Spare,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Primary => "primary",
            Backend::Spare => "spare",
        })
    }
}

/// Where a [`FailoverPool`](super::FailoverPool) sends checkouts now: the circuit breaker's state.
///
/// ```
/// use poolside_connpool::failover::FailoverState;
/// assert_eq!(FailoverState::Probing.to_string(), "probing");
/// assert_eq!(FailoverState::Primary as u64, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailoverState {
    /// Breaker closed: checkouts go to the primary.
    #[default]
    Primary = 0,
    /// Breaker open: checkouts go to the spare until the next probe is due.
    Spare = 1,
    /// Half-open: a probe is testing the primary; checkouts still go to the spare.
    Probing = 2,
}

impl FailoverState {
    pub(super) fn from_u8(raw: u8) -> Self {
        match raw {
            0 => FailoverState::Primary,
            1 => FailoverState::Spare,
            _ => FailoverState::Probing,
        }
    }
}

impl fmt::Display for FailoverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverState::Primary => "primary",
            FailoverState::Spare => "spare",
            FailoverState::Probing => "probing",
        })
    }
}
