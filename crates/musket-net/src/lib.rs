//! Musket's transport layer. Protocol code talks to a [`Net`], which wraps any [`Transport`]
//! (in-process channels for tests and local runs, mutual TLS over TCP for deployments) and
//! counts bytes, messages and rounds.
//!
//! Guarantees every implementation keeps: messages between a pair of parties arrive in order;
//! `send` never waits for the peer to read (so two parties exchanging large tensors cannot
//! deadlock); every receive has a timeout; a peer that disconnects, aborts, or sends a malformed
//! or oversized frame produces an error that names the peer.

mod error;
mod frame;
mod inbox;
mod local;
mod meter;
mod tls;
mod transport;

pub use error::NetError;
pub use frame::{FrameError, FrameHeader, FrameKind, FRAME_HEADER_LEN};
pub use local::{local_mesh, LocalTransport};
pub use meter::{
    bytes_to_u64s, le_bytes, u64s_to_bytes, CommStats, HandOver, Net, RoundClock, Words, CHUNK_WORDS,
};
pub use tls::{
    certificate_from_pem, decode_frames, generate_identity, PartyIdentity, PeerAddress, TlsConfig,
    TlsTransport,
};
pub use transport::{Transport, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_FRAME, DEFAULT_TIMEOUT};
