//! The heart of Musket: the [`Protocol`] trait every back end implements, the AES-CTR PRG that
//! expands shared seeds into correlated randomness, the plaintext oracle [`Plain`] that tests
//! compare the back ends against, and protocol-generic algorithms (secure comparison, ReLU,
//! fixed-point multiplication) written once for every back end.

mod audit;
mod bitdecomp;
mod compare;
pub mod dzkp;
pub mod dzkp_packed;
mod error;
pub mod ext;
mod fixed;
pub mod par;
mod plain;
mod prg;
mod protocol;
mod range_check;
mod shares;

pub use audit::{Audit, Finding};
pub use bitdecomp::{bit_planes, planes_to_packed, suffix_and, BIT_DECOMPOSITION_ANDS};
pub use compare::{
    drelu, lt, msb, msb_within, msb_within_ands, relu, relu_within, sum_bit, sum_bit_and_carry, sum_reaches,
    sum_reaches_ands, sum_reaches_many, WindowTest, MSB_CIRCUIT_ANDS,
};
pub use error::{element_count, or_abort, MpcError, Result};
pub use fixed::{mul_fixed, reveal_fixed, share_fixed};
pub use musket_ring::maps;
pub use musket_ring::{LinearOp, LinearOp2, RingMap, RingMap2};
pub use plain::Plain;
pub use prg::{os_seed, Prg, Seed};
pub use protocol::{
    batch_item, batched_dims, im2col_dims, matrix_dims, rows_dims, Protocol, Share, WordMap2,
};
pub use range_check::{RangeChecked, FLUSH_ELEMENTS};
pub use shares::{concat_shares, split_share};
