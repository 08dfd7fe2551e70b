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
use musket_ring::{matmul, unpack_bits, RingMap, Tensor};

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

/// Words read as u128s, two a value, low word first.
pub(crate) fn wide(words: &[u64]) -> Vec<u128> {
    words.chunks_exact(2).map(|p| u128::from(p[0]) | (u128::from(p[1]) << 64)).collect()
}

/// u128s as words, two a value, low word first.
pub(crate) fn narrow(values: &[u128]) -> Vec<u64> {
    values.iter().flat_map(|&v| [v as u64, (v >> 64) as u64]).collect()
}

/// The modulo-2^128 sum of both parties' parts (u128s in words).
fn wide_sum(a: &[u64], b: &[u64]) -> Vec<u128> {
    wide(a).into_iter().zip(wide(b)).map(|(x, y)| x.wrapping_add(y)).collect()
}

/// [`minus`] for u128s in words: `c <- value - c` modulo 2^128, for consecutive blocks of
/// `c`, one per value list, in order.
fn minus_wide(c: &mut [u64], blocks: &[&[u128]]) {
    let mut at = 0;
    for values in blocks {
        let block = &mut c[at..at + 2 * values.len()];
        for (pair, v) in block.chunks_exact_mut(2).zip(values.iter()) {
            let own = u128::from(pair[0]) | (u128::from(pair[1]) << 64);
            let r = v.wrapping_sub(own);
            pair[0] = r as u64;
            pair[1] = (r >> 64) as u64;
        }
        at += 2 * values.len();
    }
}

/// The MAC keys of a malicious run, known to the dealer alone: `alpha` for arithmetic values
/// modulo 2^128, `delta` in GF(2^64) for bits (a bit's MAC is `delta` or 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub(crate) alpha: u128,
    pub(crate) delta: u64,
}

impl Keys {
    /// The keys from both parties' [`Request::MacKey`] parts (`alpha_p`, `delta_p`).
    pub(crate) fn from_shares(k0: &[u64], k1: &[u64]) -> Self {
        Keys { alpha: u128::from(k0[0]) + u128::from(k1[0]), delta: k0[1] ^ k1[1] }
    }
}

/// The MAC planes of the bits `y` under `delta`: plane `j` (of `y.len()` words) holds bit `j`
/// of every bit's MAC `delta y_i`, so it is `y` where bit `j` of `delta` is set and 0 elsewhere.
pub(crate) fn planes(delta: u64, y: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; 64 * y.len()];
    for (j, plane) in out.chunks_exact_mut(y.len().max(1)).enumerate().take(64) {
        if delta >> j & 1 == 1 {
            plane.copy_from_slice(y);
        }
    }
    out
}

/// `c <- value xor c` for consecutive blocks of `c`, one per value list, in order: the
/// correction of XOR-shared material.
fn xor_blocks(c: &mut [u64], blocks: &[&[u64]]) {
    let mut at = 0;
    for values in blocks {
        for (c, v) in c[at..at + values.len()].iter_mut().zip(values.iter()) {
            *c ^= v;
        }
        at += values.len();
    }
}

/// `alpha v` modulo 2^128, elementwise.
fn times(alpha: u128, v: &[u128]) -> Vec<u128> {
    v.iter().map(|x| x.wrapping_mul(alpha)).collect()
}

/// The im2col matrix of images (`cols`'s `[N, C, H, W]`, as words of either ring), for a
/// convolution triple: a party maps its share of the images' mask with the same map.
pub(crate) fn images_map<W: musket_ring::Word>(cols: &musket_ring::Im2col, images: Vec<W>) -> Vec<W> {
    let shape = vec![cols.n, cols.c, cols.h, cols.wd];
    let images = Tensor::new(shape, images).expect("a layout's images have the map's size");
    cols.map(&images).expect("a checked map applies to its images").into_data()
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
            // A [m, k], images B; C = A cols(B).
            Request::ConvTriple { m, cols } => {
                (vec![w(m) * cols.taps(), cols.image_len()], w(m) * cols.positions())
            }
            // r; shares of (r mod 2^63) >> bits, then of 2^(63 - bits) msb(r).
            Request::Trunc { n, .. } => (vec![w(n)], 2 * w(n)),
            // u, v (words of bits); w = u AND v.
            Request::BitTriple { words } => (vec![w(words), w(words)], w(words)),
            // t (packed bits); additive shares of t as 0/1.
            Request::RandomBits { n } => (vec![w(n).div_ceil(64)], w(n)),
            // t (packed bits), a; additive shares of t, then of a t.
            Request::BitMul { n } => (vec![w(n).div_ceil(64), w(n)], 2 * w(n)),
            // The MAC'd kinds count two words an element (a u128, low word first); every MAC
            // is a correction (party 0's share random, party 1's from the dealer).
            // alpha_p, delta_p.
            Request::MacKey => (vec![2], 0),
            // r (the owner's draw; the other party's is unused); alpha r.
            Request::MacInput { n, .. } => (vec![2 * w(n)], 2 * w(n)),
            // a, b; c = a b, alpha a, alpha b, alpha c.
            Request::MacTriple { n } => (vec![2 * w(n), 2 * w(n)], 8 * w(n)),
            // A, B; C = A B, alpha A, alpha B, alpha C.
            Request::MacMatTriple { m, k, n } => {
                (vec![2 * w(m * k), 2 * w(k * n)], 2 * (2 * w(m * n) + w(m * k) + w(k * n)))
            }
            // A, images B; C = A cols(B), alpha A, alpha B, alpha C.
            Request::MacConvTriple { m, cols } => {
                let (a, b, c) = (w(m) * cols.taps(), cols.image_len(), w(m) * cols.positions());
                (vec![2 * a, 2 * b], 2 * (2 * c + a + b))
            }
            // r; low = (r mod 2^63) >> bits, high = 2^(63 - bits) bit63(r), alpha r, alpha
            // low, alpha high.
            Request::MacTrunc { n, .. } => (vec![2 * w(n)], 10 * w(n)),
            // t (one word an element); 2^64 t, alpha 2^64 t.
            Request::MacMask { n } => (vec![w(n)], 4 * w(n)),
            Request::MacCheck => (vec![], 0),
            // The XOR-shared kinds: every MAC plane (64 words a word) is a correction.
            // u, v; w = u AND v, the planes of u, v and w.
            Request::MacBitTriple { words } => (vec![w(words), w(words)], w(words) + 3 * 64 * w(words)),
            // r; alpha r, s = -r mod 2^64 (a word an element), the planes of s.
            Request::MacEdaBits { n } => (vec![2 * w(n)], 2 * w(n) + w(n) + 64 * w(n)),
            // t (packed bits); the planes of t, t as 0/1 modulo 2^128, alpha t.
            Request::MacDaBits { n } => {
                let words = w(n).div_ceil(64);
                (vec![words], 64 * words + 4 * w(n))
            }
            // t (packed bits), a; the planes of t, then t as 0/1 modulo 2^128, alpha t, alpha a,
            // a t, alpha a t.
            Request::MacBitMul { n } => {
                let words = w(n).div_ceil(64);
                (vec![words, 2 * w(n)], 64 * words + 10 * w(n))
            }
        };
        Layout { parts, correction }
    }

    /// Words of party 1's correction for this request: what it holds for the request once a
    /// plan is preprocessed (party 0 holds nothing).
    pub fn correction_words(&self) -> u64 {
        self.layout().correction as u64
    }

    /// The dealer's formula: party 1's correction, from both parties' material (`m0`, `m1`)
    /// and party 0's correction share `c0`, which it overwrites. `keys` are the MAC keys (of
    /// [`Request::MacKey`]; unused by the semi-honest kinds).
    pub(crate) fn correction(&self, m0: &Material, m1: &Material, mut c0: Vec<u64>, keys: Keys) -> Vec<u64> {
        let (alpha, delta) = (keys.alpha, keys.delta);
        match *self {
            Request::Done | Request::MacKey | Request::MacCheck => {}
            Request::MacInput { owner, .. } => {
                let r = wide(if owner == 0 { m0.part(0) } else { m1.part(0) });
                minus_wide(&mut c0, &[&times(alpha, &r)]);
            }
            Request::MacTriple { .. } => {
                let (a, b) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
                let c: Vec<u128> = a.iter().zip(&b).map(|(x, y)| x.wrapping_mul(*y)).collect();
                minus_wide(&mut c0, &[&c, &times(alpha, &a), &times(alpha, &b), &times(alpha, &c)]);
            }
            Request::MacMatTriple { m, k, n } => {
                let (a, b) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
                let c = musket_ring::matmul_wide(&a, &b, m as usize, k as usize, n as usize);
                minus_wide(&mut c0, &[&c, &times(alpha, &a), &times(alpha, &b), &times(alpha, &c)]);
            }
            Request::MacConvTriple { m, cols } => {
                let (a, b) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
                let c = musket_ring::matmul_wide(
                    &a,
                    &images_map(&cols, b.clone()),
                    m as usize,
                    cols.taps(),
                    cols.positions(),
                );
                minus_wide(&mut c0, &[&c, &times(alpha, &a), &times(alpha, &b), &times(alpha, &c)]);
            }
            Request::MacTrunc { bits, .. } => {
                let r = wide_sum(m0.part(0), m1.part(0));
                let low: Vec<u128> =
                    r.iter().map(|&r| u128::from(((r as u64) & (u64::MAX >> 1)) >> bits)).collect();
                let high: Vec<u128> =
                    r.iter().map(|&r| u128::from(((r as u64) >> 63) << (63 - bits))).collect();
                let macs = [times(alpha, &r), times(alpha, &low), times(alpha, &high)];
                minus_wide(&mut c0, &[&low, &high, &macs[0], &macs[1], &macs[2]]);
            }
            Request::MacMask { .. } => {
                let v: Vec<u128> = sum(m0.part(0), m1.part(0)).map(|t| u128::from(t) << 64).collect();
                minus_wide(&mut c0, &[&v, &times(alpha, &v)]);
            }
            Request::MacBitTriple { words } => {
                let xor =
                    |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(x, y)| x ^ y).collect() };
                let (u, v) = (xor(m0.part(0), m1.part(0)), xor(m0.part(1), m1.part(1)));
                let w: Vec<u64> = u.iter().zip(&v).map(|(a, b)| a & b).collect();
                debug_assert_eq!(w.len(), words as usize);
                xor_blocks(&mut c0, &[&w, &planes(delta, &u), &planes(delta, &v), &planes(delta, &w)]);
            }
            Request::MacEdaBits { n } => {
                let r = wide_sum(m0.part(0), m1.part(0));
                let n = n as usize;
                minus_wide(&mut c0[..2 * n], &[&times(alpha, &r)]);
                let s: Vec<u64> = r.iter().map(|&r| (r as u64).wrapping_neg()).collect();
                xor_blocks(&mut c0[2 * n..], &[&s, &planes(delta, &s)]);
            }
            Request::MacDaBits { n } => {
                let n = n as usize;
                let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
                let bit_planes = planes(delta, &t);
                xor_blocks(&mut c0[..bit_planes.len()], &[&bit_planes]);
                let arith: Vec<u128> = unpack_bits(&t, n).into_iter().map(u128::from).collect();
                minus_wide(&mut c0[bit_planes.len()..], &[&arith, &times(alpha, &arith)]);
            }
            Request::MacBitMul { n } => {
                let n = n as usize;
                let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
                let bit_planes = planes(delta, &t);
                xor_blocks(&mut c0[..bit_planes.len()], &[&bit_planes]);
                let t: Vec<u128> = unpack_bits(&t, n).into_iter().map(u128::from).collect();
                let a = wide_sum(m0.part(1), m1.part(1));
                let at: Vec<u128> = a.iter().zip(&t).map(|(a, t)| a.wrapping_mul(*t)).collect();
                let blocks = [&t[..], &times(alpha, &t), &times(alpha, &a), &at, &times(alpha, &at)];
                minus_wide(&mut c0[bit_planes.len()..], &blocks);
            }
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
            Request::ConvTriple { m, cols } => {
                let a: Vec<u64> = sum(m0.part(0), m1.part(0)).collect();
                let b = images_map(&cols, sum(m0.part(1), m1.part(1)).collect());
                minus(&mut c0, matmul(&a, &b, m as usize, cols.taps(), cols.positions()).into_iter());
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

    /// A MAC key for the tests (above 2^64, as `alpha_0 + alpha_1` can be).
    const ALPHA: u128 = (1 << 64) + 0x9E37_79B9_7F4A_7C15;
    const KEYS: Keys = Keys { alpha: ALPHA, delta: 0xC3A5_C85C_97CB_3127 };

    /// Party 0's and party 1's material and correction shares for `req`, drawn as the parties
    /// draw them, plus the dealer's correction.
    fn deal(req: Request) -> (Material, Vec<u64>, Material, Vec<u64>) {
        let layout = req.layout();
        let (mut p0, mut p1) = (Prg::from_seed([1; 16]), Prg::from_seed([2; 16]));
        let m0 = Material::draw(&layout, |n| p0.words(n));
        let c0 = p0.words(layout.correction);
        let m1 = Material::draw(&layout, |n| p1.words(n));
        let c1 = req.correction(&m0, &m1, c0.clone(), KEYS);
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

    /// A convolution with padding, stride 2 and two images, for the convolution triples.
    const CONV: musket_ring::Im2col = musket_ring::Im2col {
        n: 2,
        c: 3,
        h: 5,
        wd: 4,
        kh: 3,
        kw: 3,
        oh: 3,
        ow: 2,
        stride: [2, 2],
        dilation: [1, 1],
        pads: [1, 1],
    };

    #[test]
    fn convolution_triples_multiply_by_the_images_im2col_matrix() {
        let m = 4;
        let (m0, c0, m1, c1) = deal(Request::ConvTriple { m: m as u64, cols: CONV });
        let (a, images) = (add(m0.part(0), m1.part(0)), add(m0.part(1), m1.part(1)));
        assert_eq!(images.len(), CONV.image_len());
        let b = CONV.map(&musket_ring::RingTensor::new(vec![2, 3, 5, 4], images).unwrap()).unwrap();
        let want = musket_ring::matmul_naive(&a, b.data(), m, CONV.taps(), CONV.positions());
        assert_eq!(add(&c0, &c1), want);
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

    /// `alpha v` and `v` agree for every value of a MAC'd kind: each block of the summed
    /// corrections, in order.
    fn mac_blocks(c0: &[u64], c1: &[u64], lens: &[usize]) -> Vec<Vec<u128>> {
        let all = wide_sum(c0, c1);
        assert_eq!(all.len(), lens.iter().sum::<usize>());
        let mut at = 0;
        lens.iter()
            .map(|&l| {
                at += l;
                all[at - l..at].to_vec()
            })
            .collect()
    }

    #[test]
    fn mac_triples_multiply_and_every_value_has_its_mac() {
        let n = 7;
        let (m0, c0, m1, c1) = deal(Request::MacTriple { n: n as u64 });
        let (a, b) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
        let v = mac_blocks(&c0, &c1, &[n; 4]);
        for i in 0..n {
            assert_eq!(v[0][i], a[i].wrapping_mul(b[i]));
        }
        assert_eq!(v[1], times(ALPHA, &a));
        assert_eq!(v[2], times(ALPHA, &b));
        assert_eq!(v[3], times(ALPHA, &v[0]));

        let (m, k, n) = (3, 4, 2);
        let (m0, c0, m1, c1) = deal(Request::MacMatTriple { m: 3, k: 4, n: 2 });
        let (a, b) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
        let v = mac_blocks(&c0, &c1, &[m * n, m * k, k * n, m * n]);
        assert_eq!(v[0], naive_wide_product(&a, &b, m, k, n));
        assert_eq!(
            (v[1].clone(), v[2].clone(), v[3].clone()),
            (times(ALPHA, &a), times(ALPHA, &b), times(ALPHA, &v[0]))
        );
    }

    /// `[m, k] x [k, n]` modulo 2^128 by the definition, against `matmul_wide`.
    fn naive_wide_product(a: &[u128], b: &[u128], m: usize, k: usize, n: usize) -> Vec<u128> {
        (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k).fold(0u128, |s, l| s.wrapping_add(a[i * k + l].wrapping_mul(b[l * n + j])))
            })
            .collect()
    }

    #[test]
    fn mac_convolution_triples_multiply_and_every_value_has_its_mac() {
        let (m, k, n) = (2, CONV.taps(), CONV.positions());
        let (m0, c0, m1, c1) = deal(Request::MacConvTriple { m: m as u64, cols: CONV });
        let (a, images) = (wide_sum(m0.part(0), m1.part(0)), wide_sum(m0.part(1), m1.part(1)));
        let b = images_map(&CONV, images.clone());
        let v = mac_blocks(&c0, &c1, &[m * n, m * k, CONV.image_len(), m * n]);
        assert_eq!(v[0], naive_wide_product(&a, &b, m, k, n));
        assert_eq!(
            (v[1].clone(), v[2].clone(), v[3].clone()),
            (times(ALPHA, &a), times(ALPHA, &images), times(ALPHA, &v[0]))
        );
    }

    #[test]
    fn mac_inputs_truncation_masks_and_high_masks_hold_their_values_and_macs() {
        let n = 9;
        for owner in 0..2u64 {
            let (m0, c0, m1, c1) = deal(Request::MacInput { n: n as u64, owner });
            let r = wide(if owner == 0 { m0.part(0) } else { m1.part(0) });
            assert_eq!(mac_blocks(&c0, &c1, &[n])[0], times(ALPHA, &r));
        }
        let bits = 16;
        let (m0, c0, m1, c1) = deal(Request::MacTrunc { n: n as u64, bits });
        let r = wide_sum(m0.part(0), m1.part(0));
        let v = mac_blocks(&c0, &c1, &[n; 5]);
        for i in 0..n {
            let low = r[i] as u64;
            assert_eq!(v[0][i], u128::from((low & (u64::MAX >> 1)) >> bits));
            assert_eq!(v[1][i], u128::from((low >> 63) << (63 - bits)));
        }
        assert_eq!(v[2], times(ALPHA, &r));
        assert_eq!(v[3], times(ALPHA, &v[0]));
        assert_eq!(v[4], times(ALPHA, &v[1]));

        let (m0, c0, m1, c1) = deal(Request::MacMask { n: n as u64 });
        let v = mac_blocks(&c0, &c1, &[n; 2]);
        for i in 0..n {
            assert_eq!(v[0][i], u128::from(m0.part(0)[i].wrapping_add(m1.part(0)[i])) << 64);
        }
        assert_eq!(v[1], times(ALPHA, &v[0]));
    }

    #[test]
    fn mac_bit_triples_edabits_and_dabits_hold_their_values_and_planes() {
        let xor = |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(x, y)| x ^ y).collect() };
        let delta = KEYS.delta;
        let words = 3;
        let (m0, c0, m1, c1) = deal(Request::MacBitTriple { words: words as u64 });
        let (u, v, c) = (xor(m0.part(0), m1.part(0)), xor(m0.part(1), m1.part(1)), xor(&c0, &c1));
        let w: Vec<u64> = u.iter().zip(&v).map(|(a, b)| a & b).collect();
        assert_eq!(&c[..words], &w[..]);
        let plane_blocks: Vec<&[u64]> = c[words..].chunks(64 * words).collect();
        assert_eq!(
            plane_blocks,
            [planes(delta, &u), planes(delta, &v), planes(delta, &w)]
                .iter()
                .map(|p| &p[..])
                .collect::<Vec<_>>()
        );
        // A plane is the bits or zero, by the key's bit; the MAC of bit i is delta y_i.
        let p = planes(delta, &u);
        for i in 0..64 * words {
            let mac = (0..64).fold(0u64, |m, j| m | ((p[j * words + i / 64] >> (i % 64) & 1) << j));
            assert_eq!(mac, if u[i / 64] >> (i % 64) & 1 == 1 { delta } else { 0 });
        }

        let n = 5;
        let (m0, c0, m1, c1) = deal(Request::MacEdaBits { n: n as u64 });
        let r = wide_sum(m0.part(0), m1.part(0));
        assert_eq!(wide_sum(&c0[..2 * n], &c1[..2 * n]), times(ALPHA, &r));
        let s = xor(&c0[2 * n..3 * n], &c1[2 * n..3 * n]);
        for i in 0..n {
            assert_eq!(s[i].wrapping_add(r[i] as u64), 0, "s = -r modulo 2^64");
        }
        assert_eq!(xor(&c0[3 * n..], &c1[3 * n..]), planes(delta, &s));

        let n = 70;
        let (m0, c0, m1, c1) = deal(Request::MacDaBits { n: n as u64 });
        let t = xor(m0.part(0), m1.part(0));
        let pl = 64 * t.len();
        assert_eq!(xor(&c0[..pl], &c1[..pl]), planes(delta, &t));
        let arith = wide_sum(&c0[pl..pl + 2 * n], &c1[pl..pl + 2 * n]);
        assert_eq!(arith, unpack_bits(&t, n).into_iter().map(u128::from).collect::<Vec<_>>());
        assert_eq!(wide_sum(&c0[pl + 2 * n..], &c1[pl + 2 * n..]), times(ALPHA, &arith));
    }

    #[test]
    fn mac_bit_products_hold_their_bits_values_and_macs() {
        let n = 70;
        let (m0, c0, m1, c1) = deal(Request::MacBitMul { n: n as u64 });
        let t: Vec<u64> = m0.part(0).iter().zip(m1.part(0)).map(|(a, b)| a ^ b).collect();
        let a = wide_sum(m0.part(1), m1.part(1));
        let pl = 64 * t.len();
        let plane_words: Vec<u64> = c0[..pl].iter().zip(&c1[..pl]).map(|(x, y)| x ^ y).collect();
        assert_eq!(plane_words, planes(KEYS.delta, &t));
        let v = mac_blocks(&c0[pl..], &c1[pl..], &[n; 5]);
        let tv: Vec<u128> = unpack_bits(&t, n).into_iter().map(u128::from).collect();
        let at: Vec<u128> = a.iter().zip(&tv).map(|(a, t)| a.wrapping_mul(*t)).collect();
        assert_eq!(v, vec![tv.clone(), times(ALPHA, &tv), times(ALPHA, &a), at.clone(), times(ALPHA, &at)]);
    }
}
