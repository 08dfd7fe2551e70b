use musket_net::NetError;
use musket_ring::{RangeError, ShapeError};
use thiserror::Error;

/// Why a secure computation stopped. Messages name parties, shapes and operations, never
/// values.
#[derive(Debug, Error)]
pub enum MpcError {
    /// The network failed; the error names the peer.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Tensor shapes do not fit the operation.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// An input could not be encoded.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The operation was called wrongly (e.g. the input owner has no value).
    #[error("{0}")]
    Usage(String),
    /// A value is outside the range the computation handles correctly, so there is no right
    /// answer to give: `detail` is for this party (it may name its own tensors and their
    /// magnitudes), `public` is what the other parties are told.
    #[error("{detail}")]
    OutOfRange {
        /// The full explanation, for this party only.
        detail: String,
        /// The explanation without private facts, for the peers.
        public: String,
    },
    /// A malicious-secure back end found that a party deviated from the protocol: a
    /// multiplication proof failed or two copies of an opened value differ. Nothing further
    /// is opened. `party` names the deviating party when the check can tell, which it cannot
    /// when two parties' words disagree and either could be lying.
    #[error("cheating detected in {phase}{}", party.map(|p| format!(" (by party {p})")).unwrap_or_default())]
    CheatingDetected {
        /// Which check failed.
        phase: String,
        /// The party that must have cheated, when the check can tell.
        party: Option<usize>,
    },
}

/// Result alias for protocol operations.
pub type Result<T> = std::result::Result<T, MpcError>;

impl MpcError {
    /// The reason told to the other parties when this party gives up: the error text, except
    /// for an input that cannot be encoded, where even the position of the bad element is
    /// private to its owner.
    pub fn public_reason(&self) -> String {
        match self {
            MpcError::Range(_) => "an input value is not finite or is outside the fixed-point range".into(),
            MpcError::OutOfRange { public, .. } => public.clone(),
            other => other.to_string(),
        }
    }

    /// True when this error only relays another party's abort (so it need not be announced).
    pub fn is_peer_abort(&self) -> bool {
        matches!(self, MpcError::Net(NetError::Aborted { .. }))
    }

    /// True when this party detected cheating, or a peer aborted because it did.
    pub fn is_cheating_detected(&self) -> bool {
        match self {
            MpcError::CheatingDetected { .. } => true,
            MpcError::Net(NetError::Aborted { reason, .. }) => reason.starts_with("cheating detected"),
            _ => false,
        }
    }
}

/// Runs `f` on `net`; if it fails with an error of this party's own, tells every peer before
/// returning it, so that nobody waits out a timeout for a party that has given up.
pub fn or_abort<T>(
    net: &mut musket_net::Net,
    f: impl FnOnce(&mut musket_net::Net) -> Result<T>,
) -> Result<T> {
    let res = f(net);
    if let Err(e) = &res {
        if !e.is_peer_abort() {
            net.abort(&e.public_reason());
        }
    }
    res
}

/// The number of elements of `shape`, or an error if it overflows.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| MpcError::Usage(format!("shape {shape:?} has too many elements")))
}
