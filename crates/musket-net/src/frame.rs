//! The wire framing used over TCP: a fixed 16-byte header, then the payload.
//!
//! ```text
//! byte 0      kind (0 = data, 1 = abort, 2 = waiting notice, 3 = data of the second channel)
//! bytes 1..4  zero (anything else is a corrupt header)
//! bytes 4..8  payload length, u32 little-endian
//! bytes 8..16 sequence number of this frame on its link, u64 little-endian
//! ```
//! The sequence number lets the receiver reject a frame that is replayed, dropped or out of
//! order even if the bytes are otherwise well formed.

use thiserror::Error;

/// Size of the frame header in bytes.
pub const FRAME_HEADER_LEN: usize = 16;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Protocol data.
    Data,
    /// The sender stopped; the payload is its reason, as UTF-8.
    Abort,
    /// The sender has been blocked for a while on the party whose id (u32 LE) is the payload.
    Waiting,
    /// Protocol data of the link's second channel ([`crate::Transport::second_channel`]),
    /// ordered among itself and apart from [`FrameKind::Data`].
    SecondData,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the frame carries.
    pub kind: FrameKind,
    /// Payload length in bytes.
    pub len: u32,
    /// Position of this frame on its link, starting at 0.
    pub seq: u64,
}

/// Why a header was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Unknown kind byte.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Reserved bytes were not zero.
    #[error("corrupt frame header")]
    Corrupt,
    /// Larger than the configured maximum.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversized {
        /// Declared length.
        len: u64,
        /// Configured maximum.
        max: u64,
    },
    /// Sequence number not the one expected.
    #[error("frame {got} arrived where frame {expected} was expected (out of order or replayed)")]
    OutOfOrder {
        /// The next sequence number expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
}

impl FrameHeader {
    /// Serialises the header.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0] = match self.kind {
            FrameKind::Data => 0,
            FrameKind::Abort => 1,
            FrameKind::Waiting => 2,
            FrameKind::SecondData => 3,
        };
        out[4..8].copy_from_slice(&self.len.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out
    }

    /// Parses and validates a header: kind, reserved bytes, length against `max_len` and
    /// sequence number against `expected_seq`.
    pub fn decode(
        bytes: &[u8; FRAME_HEADER_LEN],
        max_len: u64,
        expected_seq: u64,
    ) -> Result<Self, FrameError> {
        let kind = match bytes[0] {
            0 => FrameKind::Data,
            1 => FrameKind::Abort,
            2 => FrameKind::Waiting,
            3 => FrameKind::SecondData,
            k => return Err(FrameError::UnknownKind(k)),
        };
        if bytes[1..4] != [0, 0, 0] {
            return Err(FrameError::Corrupt);
        }
        let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if len as u64 > max_len {
            return Err(FrameError::Oversized { len: len as u64, max: max_len });
        }
        let seq = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if seq != expected_seq {
            return Err(FrameError::OutOfOrder { expected: expected_seq, got: seq });
        }
        Ok(Self { kind, len, seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = FrameHeader { kind: FrameKind::Abort, len: 77, seq: 5 };
        let b = h.encode();
        assert_eq!(FrameHeader::decode(&b, 100, 5), Ok(h));
        assert_eq!(FrameHeader::decode(&b, 10, 5), Err(FrameError::Oversized { len: 77, max: 10 }));
        assert_eq!(FrameHeader::decode(&b, 100, 4), Err(FrameError::OutOfOrder { expected: 4, got: 5 }));
        let second = FrameHeader { kind: FrameKind::SecondData, len: 8, seq: 6 };
        assert_eq!(FrameHeader::decode(&second.encode(), 100, 6), Ok(second));
        let mut bad = b;
        bad[0] = 9;
        assert_eq!(FrameHeader::decode(&bad, 100, 5), Err(FrameError::UnknownKind(9)));
        let mut bad = b;
        bad[2] = 1;
        assert_eq!(FrameHeader::decode(&bad, 100, 5), Err(FrameError::Corrupt));
    }
}
