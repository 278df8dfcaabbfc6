//! What an election looks like from outside: the value of the state channel.

use std::sync::Arc;

use crate::{elector::ElectorError, leadership::Leadership};

/// The state of one election, as published on [`crate::ElectionHandle::state`].
///
/// It changes only when the role or the observed holder changes, never on a mere renew.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ElectionState {
    /// We do not lead. `holder` is the holder in the latest observation of the Lease (`None`: nobody, the
    /// Lease is absent, or nothing has been observed yet). This is the initial state.
    Following {
        /// The current holder identity, if any.
        holder: Option<String>,
    },
    /// We lead. The guard says until when and with which epoch; stop the guarded work when its
    /// [`Leadership::lost`] resolves.
    Leading(Leadership),
    /// We stepped down on request and sit out the cool-down before campaigning again.
    CoolingDown {
        /// The current holder identity, if any.
        holder: Option<String>,
    },
    /// The elector has ended: after [`crate::ElectionHandle::shutdown`] (`error: None`), or because it
    /// panicked or hit a fatal error (`error: Some`). It never restarts by itself; a process that needs the
    /// election should treat an error here as fatal and exit non-zero.
    Stopped {
        /// Why it stopped, if not on request.
        error: Option<Arc<ElectorError>>,
    },
}

impl ElectionState {
    /// The leadership guard, when leading.
    #[must_use]
    pub fn leadership(&self) -> Option<&Leadership> {
        match self {
            Self::Leading(l) => Some(l),
            _ => None,
        }
    }

    /// Whether this is [`ElectionState::Leading`] with a guard that is still current.
    #[must_use]
    pub fn is_leading(&self) -> bool {
        self.leadership().is_some_and(Leadership::is_current)
    }

    /// The holder as far as this process knows: us when leading, else the observed holder.
    #[must_use]
    pub fn holder(&self) -> Option<&str> {
        match self {
            Self::Leading(l) => Some(l.holder()),
            Self::Following { holder } | Self::CoolingDown { holder } => holder.as_deref(),
            Self::Stopped { .. } => None,
        }
    }

    /// Whether the elector has stopped.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped { .. })
    }

    /// Whether two states are the same for subscribers (same role, same holder, same guard).
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Following { holder: a }, Self::Following { holder: b })
            | (Self::CoolingDown { holder: a }, Self::CoolingDown { holder: b }) => a == b,
            (Self::Leading(a), Self::Leading(b)) => a == b,
            (Self::Stopped { error: a }, Self::Stopped { error: b }) => match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            },
            _ => false,
        }
    }
}

/// How an election learns about its Lease, as published on [`crate::ElectionHandle::observation`].
///
/// Followers normally watch (no requests in steady state). When the shared watch cannot list (403: a Role
/// with only get, create and update on Leases, as many client-go Roles are) or has been failing for longer
/// than LD, the election polls the Lease with GET every RP, with jitter, as client-go does, and goes back to
/// watching when the watch recovers. Operators see the mode in the agent's API and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Observation {
    /// Through the shared watch.
    #[default]
    Watching,
    /// By GET every RP, because the watch cannot list or has been failing for longer than LD.
    Polling,
}

impl Observation {
    /// `watching` or `polling`, as the agent shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watching => "watching",
            Self::Polling => "polling",
        }
    }
}
