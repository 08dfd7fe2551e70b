use std::time::Duration;
use thiserror::Error;

/// A transport failure. Every variant that concerns a peer names it, so that an operator can
/// tell which organisation's server failed. Messages never contain payload bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NetError {
    /// No message arrived within the timeout. `peer` is the party the computation is stuck
    /// on: the one we waited on, or, following the peers' own waiting notices, the party they
    /// were waiting on (`via` is then the peer we waited on).
    #[error("party {peer} sent nothing for {}s (timeout{})", .after.as_secs_f64(), timeout_detail(*.via, *.waits_on_us))]
    Timeout {
        /// The silent party.
        peer: usize,
        /// How long we waited.
        after: Duration,
        /// The peer we waited on, when the blame was passed along by waiting notices.
        via: Option<usize>,
        /// The chain of waiting notices led back to us: the peer is waiting on us while we wait
        /// on it, so a link between us is not delivering.
        waits_on_us: bool,
    },
    /// The peer closed the connection or its process ended.
    #[error("party {peer} disconnected")]
    Disconnected {
        /// The peer that went away.
        peer: usize,
    },
    /// The peer stopped the computation and said why.
    #[error("party {peer} aborted: {reason}")]
    Aborted {
        /// The peer that aborted.
        peer: usize,
        /// Its stated reason.
        reason: String,
    },
    /// The peer sent bytes that do not form a valid frame or message.
    #[error("malformed message from party {peer}: {reason}")]
    Malformed {
        /// The peer at fault.
        peer: usize,
        /// What was wrong.
        reason: String,
    },
    /// An operating-system or TLS error on the link to a peer.
    #[error("connection to party {peer} failed: {reason}")]
    Link {
        /// The peer on the other end.
        peer: usize,
        /// The underlying error.
        reason: String,
    },
    /// A party id outside the cluster, or sending to oneself.
    #[error("invalid party id {0}")]
    BadParty(usize),
    /// A set-up problem (certificates, addresses, configuration).
    #[error("network set-up failed: {0}")]
    Setup(String),
}

impl NetError {
    /// The peer this error is about, if any.
    pub fn peer(&self) -> Option<usize> {
        match self {
            NetError::Timeout { peer, .. }
            | NetError::Disconnected { peer }
            | NetError::Aborted { peer, .. }
            | NetError::Malformed { peer, .. }
            | NetError::Link { peer, .. } => Some(*peer),
            NetError::BadParty(_) | NetError::Setup(_) => None,
        }
    }
}

fn timeout_detail(via: Option<usize>, waits_on_us: bool) -> String {
    match (via, waits_on_us) {
        (Some(v), _) => format!("; party {v}, which we waited on, reported waiting on it"),
        (None, true) => "; it reports waiting on us: messages between us are not getting through".into(),
        (None, false) => String::new(),
    }
}
