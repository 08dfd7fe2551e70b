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
}

/// Result alias for protocol operations.
pub type Result<T> = std::result::Result<T, MpcError>;
