//! The dealer's correlated randomness, one definition per kind: what each compute party draws
//! from the seed it shares with the dealer (its [`Layout`]), and the formula by which the
//! dealer computes party 1's correction. The dealer's loop, a party's on-demand draws and the
//! preprocessing phase's sizes all read these two definitions, so that their draw orders
//! cannot drift apart.
//!
//! Every kind has the same shape: party `p` draws the random parts `m_p` of its material, in
//! order; party 0 then draws its share `c_0` of the correlated value `F(m_0, m_1)` from its
//! seed too, and the dealer sends party 1 the rest, `c_1 = F(m_0, m_1) - c_0` (XOR for binary
//! material). The dealer alone sees both seeds.

use crate::dealer::Request;
use musket_ring::{matmul, unpack_bits};

/// What a compute party draws from its dealer seed for one request, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Lengths of the random parts, in draw order.
    pub(crate) parts: Vec<usize>,
    /// Length of the correction: party 0 draws its share after the parts; party 1 receives
    /// its share from the dealer.
    pub(crate) correction: usize,
}

/// A compute party's random parts for one request, in its [`Layout`]'s order.
pub(crate) struct Material(Vec<Vec<u64>>);

impl Material {
    /// Draws the layout's parts, in order, from `words` (a party's dealer stream).
    pub(crate) fn draw(layout: &Layout, mut words: impl FnMut(usize) -> Vec<u64>) -> Self {
        Material(layout.parts.iter().map(|&len| words(len)).collect())
    }

    /// Part `i`.
    pub(crate) fn part(&self, i: usize) -> &[u64] {
        &self.0[i]
    }

    /// The parts, owned (for parts that become tensors without a copy).
    pub(crate) fn into_parts(self) -> Vec<Vec<u64>> {
        self.0
    }
}

/// `c <- value - c`, elementwise: a correction from the correlated value and party 0's share.
fn minus(c: &mut [u64], value: impl Iterator<Item = u64>) {
    for (c, v) in c.iter_mut().zip(value) {
        *c = v.wrapping_sub(*c);
    }
}

fn sum<'a>(a: &'a [u64], b: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y))
}

impl Request {
    /// The request's layout. `Done` draws nothing.
    pub(crate) fn layout(&self) -> Layout {
        let w = |v: u64| v as usize;
        let (parts, correction) = match *self {
            Request::Done => (vec![], 0),
            // a, b; c = a b.
            Request::Triple { n } => (vec![w(n), w(n)], w(n)),
            // A [m, k], B [k, n]; C = A B.
            Request::MatTriple { m, k, n } => (vec![w(m * k), w(k * n)], w(m * n)),
            // r; shares of (r mod 2^63) >> bits, then of 2^(63 - bits) msb(r).
            Request::Trunc { n, .. } => (vec![w(n)], 2 * w(n)),
            // u, v (words of bits); w = u AND v.
            Request::BitTriple { words } => (vec![w(words), w(words)], w(words)),
            // t (packed bits); additive shares of t as 0/1.
            Request::RandomBits { n } => (vec![w(n).div_ceil(64)], w(n)),
            // t (packed bits), a; additive shares of t, then of a t.
            Request::BitMul { n } => (vec![w(n).div_ceil(64), w(n)], 2 * w(n)),
        };
        Layout { parts, correction }
    }

    /// Words of party 1's correction for this request: what it holds for the request once a
    /// plan is preprocessed (party 0 holds nothing).
    pub fn correction_words(&self) -> u64 {
        self.layout().correction as u64
    }

    /// The dealer's formula: party 1's correction, from both parties' material (`m0`, `m1`)
    /// and party 0's correction share `c0`, which it overwrites.
    pub(crate) fn correction(&self, m0: &Material, m1: &Material, mut c0: Vec<u64>) -> Vec<u64> {
        match *self {
            Request::Done => {}
            Request::Triple { .. } => {
                let b = sum(m0.part(1), m1.part(1));
                minus(&mut c0, sum(m0.part(0), m1.part(0)).zip(b).map(|(a, b)| a.wrapping_mul(b)));
            }
            Request::MatTriple { m, k, n } => {
                let (m, k, n) = (m as usize, k as usize, n as usize);
                let a: Vec<u64> = sum(m0.part(0), m1.part(0)).collect();
                let b: Vec<u64> = sum(m0.part(1), m1.part(1)).collect();
                minus(&mut c0, matmul(&a, &b, m, k, n).into_iter());
            }
            Request::Trunc { n, bits } => {
                let r: Vec<u64> = sum(m0.part(0), m1.part(0)).collect();
                let (low, high) = c0.split_at_mut(n as usize);
                minus(low, r.iter().map(|r| (r & (u64::MAX >> 1)) >> bits));
                minus(high, r.iter().map(|r| (r >> 63) << (63 - bits)));
            }
            Request::BitTriple { .. } => {
                let (u0, v0, u1, v1) = (m0.part(0), m0.part(1), m1.part(0), m1.part(1));
                for (i, c) in c0.iter_mut().enumerate() {
                    *c ^= (u0[i] ^ u1[i]) & (v0[i] ^ v1[i]);
                }
            }
            Request::RandomBits { n } => {
                let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
                minus(&mut c0, unpack_bits(&t, n as usize).into_iter());
            }
            Request::BitMul { n } => {
                let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
                let t = unpack_bits(&t, n as usize);
                let (t_share, at_share) = c0.split_at_mut(n as usize);
                minus(t_share, t.iter().copied());
                minus(at_share, sum(m0.part(1), m1.part(1)).zip(&t).map(|(a, t)| a.wrapping_mul(*t)));
            }
        }
        c0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use musket_core::Prg;

    /// Party 0's and party 1's material and correction shares for `req`, drawn as the parties
    /// draw them, plus the dealer's correction.
    fn deal(req: Request) -> (Material, Vec<u64>, Material, Vec<u64>) {
        let layout = req.layout();
        let (mut p0, mut p1) = (Prg::from_seed([1; 16]), Prg::from_seed([2; 16]));
        let m0 = Material::draw(&layout, |n| p0.words(n));
        let c0 = p0.words(layout.correction);
        let m1 = Material::draw(&layout, |n| p1.words(n));
        let c1 = req.correction(&m0, &m1, c0.clone());
        assert_eq!(c1.len(), layout.correction);
        (m0, c0, m1, c1)
    }

    fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
        sum(a, b).collect()
    }

    #[test]
    fn triples_multiply() {
        let (m0, c0, m1, c1) = deal(Request::Triple { n: 37 });
        let (a, b, c) = (add(m0.part(0), m1.part(0)), add(m0.part(1), m1.part(1)), add(&c0, &c1));
        for i in 0..37 {
            assert_eq!(c[i], a[i].wrapping_mul(b[i]));
        }
    }

    #[test]
    fn matrix_triples_multiply() {
        let (m, k, n) = (3, 5, 2);
        let (m0, c0, m1, c1) = deal(Request::MatTriple { m: 3, k: 5, n: 2 });
        let (a, b) = (add(m0.part(0), m1.part(0)), add(m0.part(1), m1.part(1)));
        assert_eq!(add(&c0, &c1), musket_ring::matmul_naive(&a, &b, m, k, n));
    }

    #[test]
    fn truncation_pairs_hold_the_mask_parts() {
        let bits = 16;
        let (m0, c0, m1, c1) = deal(Request::Trunc { n: 40, bits });
        let r = add(m0.part(0), m1.part(0));
        let c = add(&c0, &c1);
        for i in 0..40 {
            assert_eq!(c[i], (r[i] & (u64::MAX >> 1)) >> bits);
            assert_eq!(c[40 + i], (r[i] >> 63) << (63 - bits));
        }
    }

    #[test]
    fn bit_triples_and() {
        let (m0, c0, m1, c1) = deal(Request::BitTriple { words: 9 });
        for i in 0..9 {
            let (u, v) = (m0.part(0)[i] ^ m1.part(0)[i], m0.part(1)[i] ^ m1.part(1)[i]);
            assert_eq!(c0[i] ^ c1[i], u & v);
        }
    }

    #[test]
    fn random_bits_and_bit_products_match_their_bits() {
        let n = 130;
        let (m0, c0, m1, c1) = deal(Request::RandomBits { n: n as u64 });
        let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
        assert_eq!(add(&c0, &c1), unpack_bits(&t, n));

        let (m0, c0, m1, c1) = deal(Request::BitMul { n: n as u64 });
        let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
        let (t, a, c) = (unpack_bits(&t, n), add(m0.part(1), m1.part(1)), add(&c0, &c1));
        assert_eq!(&c[..n], &t[..]);
        for i in 0..n {
            assert_eq!(c[n + i], a[i].wrapping_mul(t[i]));
        }
    }
}
