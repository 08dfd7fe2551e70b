use crate::NetError;
use std::time::Duration;

/// Default receive timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default largest frame accepted from a peer (1 GiB).
pub const DEFAULT_MAX_FRAME: u64 = 1 << 30;
/// Default cap on bytes received from one peer and not yet consumed by the protocol (4 GiB):
/// a peer that floods a party fails instead of exhausting its memory.
pub const DEFAULT_MAX_BUFFERED: u64 = 4 << 30;

/// Point-to-point messaging between the parties of one computation.
///
/// Implementations keep messages between a pair in order, never block `send` on the peer
/// reading, bound every `recv` by a timeout, and report failures with the peer's id.
pub trait Transport: Send {
    /// This party's id, in `0..n_parties()`.
    fn party_id(&self) -> usize;
    /// The number of parties connected by this transport (dealer included, when there is one).
    fn n_parties(&self) -> usize;
    /// Queues `payload` for party `to`; returns without waiting for it to be read.
    fn send(&mut self, to: usize, payload: Vec<u8>) -> Result<(), NetError>;
    /// The next message from party `from`, waiting at most the transport's timeout.
    fn recv(&mut self, from: usize) -> Result<Vec<u8>, NetError>;
    /// Tells every peer, best effort, that this party is stopping and why. The reason must not
    /// contain secret values.
    fn abort(&mut self, reason: &str);
    /// A second channel on the same links, once: messages on it keep their order among
    /// themselves and are independent of this channel's, so that one thread can run an
    /// exchange (the malicious back end's proofs) while another runs the protocol. Failures
    /// and aborts reach both channels; an abort on either reaches the peers' both. `None`
    /// once taken, or for a transport without one.
    fn second_channel(&mut self) -> Option<Box<dyn Transport>> {
        None
    }
}
