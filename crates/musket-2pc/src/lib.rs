//! Two-party computation with a trusted dealer (CrypTen's trusted-third-party model),
//! semi-honest, and malicious-secure with the dealer honest. Parties 0 and 1 hold additive
//! shares in Z_2^64 and XOR shares of words; party 2 is the dealer, who only produces
//! correlated randomness.
//!
//! The dealer shares a PRG seed with each party: party 0 draws all of its material from its
//! seed, party 1 draws the random halves from its seed, and the dealer sends party 1 only the
//! one correcting share per item (`c1 = a*b - c0` for a triple). Dealer traffic is marked as
//! preprocessing: it does not depend on the inputs and does not count as online rounds.
//!
//! [`Spdz2k`] is the malicious-secure form for the same parties (either compute party a
//! cheater, the dealer honest, [`run_dealer_malicious`]): arithmetic shares modulo 2^128 and
//! bits, each with a MAC, checked through the dealer before anything is revealed.

mod ahead;
mod correlations;
mod dealer;
mod party;
mod spdz2k;
mod trace;

pub use dealer::{decode_plan, encode_plan, run_dealer, run_dealer_malicious, Request};
pub use party::{AShare, BShare, Dealer2pc};
pub use spdz2k::{MacBits, MacShare, Spdz2k};
pub use trace::PlanTracer;

/// Party id of the dealer on a 2PC transport.
pub const DEALER: usize = 2;
