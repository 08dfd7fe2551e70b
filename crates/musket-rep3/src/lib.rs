//! Three-party replicated secret sharing, semi-honest with an honest majority (ABY3 / Porthos /
//! Falcon's setting). A secret is `x = s0 + s1 + s2`; party `i` holds `(s_i, s_{i+1})`.
//!
//! Party `i` owns PRF key `k_i` and also holds `k_{i+1}`, so each key is known to exactly two
//! parties. Zero-sharings `F(k_i) - F(k_{i+1})` let a multiplication be computed locally as an
//! additive sharing and re-shared with one message of one ring element per output element:
//! one round, communication proportional to the output also for matrix products.

mod conversions;
mod malicious;
mod party;
mod truncate;

pub use malicious::{Cheat, Rep3Mal, Target};
pub use party::{RBits, RShare, Rep3};
