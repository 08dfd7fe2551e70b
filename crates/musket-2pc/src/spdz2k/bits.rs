//! The binary part of the malicious 2PC protocol: XOR-shared bits, each with a MAC in
//! GF(2^64) under the key `delta = delta_0 xor delta_1` (a bit's MAC is `delta` or 0), and the
//! conversions between the two kinds of shares.
//!
//! A bit's MAC share is kept as 64 bit planes: plane `j` holds bit `j` of every bit's MAC
//! share, packed as the bits are. A map that only selects, moves and XORs bits (the back
//! ends' `bits_linear`, a closure on words) is GF(2)-linear, so applying it to the bits and
//! to every plane maps the MACs with them. Public bits' MACs are the key share where the bit
//! is set, so plane `j` of a party's share of public `c` is `c` where bit `j` of its
//! `delta_p` is set.

use super::{MacShare, Spdz2k};
use crate::correlations::{planes, wide};
use crate::dealer::Request;
use musket_core::{MpcError, Prg, Result, Share};
use musket_ring::{clmul_dot, gf64_reduce, transpose64, WideTensor};

/// One party's XOR share of a vector of words, with its MAC shares of every bit as 64 planes
/// (`planes[j * len..(j + 1) * len]` is plane `j`).
#[derive(Clone, PartialEq, Eq)]
pub struct MacBits {
    /// The share of the words.
    pub bits: Vec<u64>,
    /// The MAC planes: 64 times the words' length.
    pub planes: Vec<u64>,
    /// The words themselves where both parties know them (an opened value, such as the
    /// opened `x + r` of a conversion to binary, and what word maps make of it alone): an
    /// AND with them is local, without a triple or a message. `None` for secret words. Set
    /// only by this back end (never from outside the crate, where a party could claim as public
    /// words the other does not hold).
    pub(crate) public: Option<Vec<u64>>,
}

impl std::fmt::Debug for MacBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacBits[{}]", self.bits.len())
    }
}

impl MacBits {
    /// Number of words.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// True when there are no words.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// MAC plane `j`.
    fn plane(&self, j: usize) -> &[u64] {
        &self.planes[j * self.bits.len()..(j + 1) * self.bits.len()]
    }

    /// Applies an XOR-linear, homogeneous map on words to the words and to every MAC plane.
    pub fn map(&self, f: &dyn Fn(&[u64]) -> Vec<u64>) -> Self {
        let bits = f(&self.bits);
        let mut planes = Vec::with_capacity(64 * bits.len());
        for j in 0..64 {
            planes.extend(f(self.plane(j)));
        }
        debug_assert_eq!(planes.len(), 64 * bits.len(), "a word map's length depends on its input's");
        MacBits { bits, planes, public: self.public.as_deref().map(f) }
    }

    /// Applies an XOR-linear, homogeneous map of two shares' words, as [`MacBits::map`].
    pub fn map2(a: &Self, b: &Self, f: musket_core::WordMap2<'_>) -> Self {
        let bits = f(&a.bits, &b.bits);
        let mut planes = Vec::with_capacity(64 * bits.len());
        for j in 0..64 {
            planes.extend(f(a.plane(j), b.plane(j)));
        }
        let public = a.public.as_deref().zip(b.public.as_deref()).map(|(x, y)| f(x, y));
        MacBits { bits, planes, public }
    }

    /// The concatenation of `parts`.
    pub fn concat(parts: &[&Self]) -> Self {
        let bits = parts.iter().flat_map(|p| p.bits.iter().copied()).collect::<Vec<u64>>();
        let mut planes = Vec::with_capacity(64 * bits.len());
        for j in 0..64 {
            for p in parts {
                planes.extend_from_slice(p.plane(j));
            }
        }
        let public = parts
            .iter()
            .map(|p| p.public.as_deref())
            .collect::<Option<Vec<&[u64]>>>()
            .map(|words| words.concat());
        MacBits { bits, planes, public }
    }

    /// The XOR of two shares of the same length.
    pub fn xor(&self, other: &Self) -> Self {
        debug_assert_eq!(self.bits.len(), other.bits.len());
        let x = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(p, q)| p ^ q).collect::<Vec<u64>>();
        let public = self.public.as_deref().zip(other.public.as_deref()).map(|(p, q)| x(p, q));
        MacBits { bits: x(&self.bits, &other.bits), planes: x(&self.planes, &other.planes), public }
    }

    /// The AND with public words `c` (local: a bit's MAC times a public bit is the MAC of
    /// their product, so the bits and every plane are masked by `c`).
    fn and_public(&self, c: &[u64]) -> Self {
        let len = self.len();
        let and = |w: &[u64]| w.iter().zip(c).map(|(p, q)| p & q).collect::<Vec<u64>>();
        let mut planes = Vec::with_capacity(64 * len);
        for j in 0..64 {
            planes.extend(and(self.plane(j)));
        }
        MacBits { bits: and(&self.bits), planes, public: self.public.as_deref().map(and) }
    }
}

/// This party's share of `sum_i chi_i (m_i + delta o_i)` in GF(2^64) over every bit of every
/// binary opening (`(opened words, this party's MAC planes of them)`), with `chi_i` drawn from
/// `coefficients`: the shares XOR to zero when every opened bit carries its MAC. An error in
/// an opened bit (or in a MAC) passes with probability at most 2^-63 over `chi` and `delta`.
pub(super) fn binary_check_share(
    openings: &[(Vec<u64>, Vec<u64>)],
    delta: u64,
    coefficients: &mut Prg,
) -> u64 {
    let mut acc = 0u128;
    for (words, planes) in openings {
        let len = words.len();
        let chi = coefficients.words(64 * len);
        let mut macs = vec![0u64; 64 * len];
        for (w, &opened) in words.iter().enumerate() {
            // Word w's 64 bits' MAC shares: the planes' words w, transposed (afterwards word i
            // holds bit i's MAC share).
            let mut block = [0u64; 64];
            for (j, b) in block.iter_mut().enumerate() {
                *b = planes[j * len + w];
            }
            transpose64(&mut block);
            for (i, m) in macs[64 * w..64 * (w + 1)].iter_mut().enumerate() {
                *m = block[i] ^ if opened >> i & 1 == 1 { delta } else { 0 };
            }
        }
        acc ^= clmul_dot(&chi, &macs);
    }
    gf64_reduce(acc)
}

impl Spdz2k {
    /// The public words `c` as a share: party 0 holds them, and each party's MAC planes are
    /// `c` where its key share has a bit set.
    pub(crate) fn public_bits(&self, c: &[u64]) -> MacBits {
        let bits = if self.id == 0 { c.to_vec() } else { vec![0; c.len()] };
        MacBits { bits, planes: planes(self.delta, c), public: Some(c.to_vec()) }
    }

    /// XOR with the public words `c`.
    pub fn bits_xor_public(&self, a: &MacBits, c: &[u64]) -> MacBits {
        a.xor(&self.public_bits(c))
    }

    /// Opens binary words (this party's share `words`, its MAC planes `planes`) to both
    /// parties and records them for the next check.
    fn open_bits(&mut self, words: &[u64], planes: Vec<u64>) -> Result<Vec<u64>> {
        Ok(self.open_together(words, planes, &[], &[])?.0)
    }

    /// Bitwise AND of two shares of equal length: one MAC'd AND triple a word, one opening of
    /// `a xor u` and `b xor v`; local where either operand is public (the sign circuits'
    /// generate layer, whose first operand is the opened `x + r`).
    pub fn bits_and(&mut self, a: &MacBits, b: &MacBits) -> Result<MacBits> {
        if a.len() != b.len() || a.planes.len() != 64 * a.len() || b.planes.len() != 64 * b.len() {
            return Err(MpcError::Usage(format!("AND of {} and {} words", a.len(), b.len())));
        }
        if let Some(c) = &a.public {
            return Ok(b.and_public(c));
        }
        if let Some(c) = &b.public {
            return Ok(a.and_public(c));
        }
        let len = a.len();
        let req = Request::MacBitTriple { words: len as u64 };
        let parts = self.draw(req)?.into_parts();
        let (u, v) = (&parts[0], &parts[1]);
        let corr = self.correction_words(req)?;
        let (w, rest) = corr.split_at(len);
        let (pu, rest) = rest.split_at(64 * len);
        let (pv, pw) = rest.split_at(64 * len);
        let x = |p: &[u64], q: &[u64]| p.iter().zip(q).map(|(s, t)| s ^ t).collect::<Vec<u64>>();
        // Both masked operands in one message: plane j of the opening is plane j of a xor u,
        // then plane j of b xor v.
        let mut shares = x(&a.bits, u);
        shares.extend(x(&b.bits, v));
        let mut opened_planes = Vec::with_capacity(128 * len);
        for j in 0..64 {
            let plane = j * len..(j + 1) * len;
            opened_planes.extend(x(&a.planes[plane.clone()], &pu[plane.clone()]));
            opened_planes.extend(x(&b.planes[plane.clone()], &pv[plane]));
        }
        let opened = self.open_bits(&shares, opened_planes)?;
        let (d, e) = opened.split_at(len);
        // z = w ^ (d & v) ^ (e & u) ^ (d & e) (the last at party 0); its MAC planes are the
        // same with the triple's planes, and the key share's bits where d & e is set.
        let de: Vec<u64> = d.iter().zip(e).map(|(p, q)| p & q).collect();
        let bits = (0..len)
            .map(|i| {
                let own = w[i] ^ (d[i] & v[i]) ^ (e[i] & u[i]);
                if self.id == 0 {
                    own ^ de[i]
                } else {
                    own
                }
            })
            .collect();
        let mut planes = Vec::with_capacity(64 * len);
        for j in 0..64 {
            let key_bit = if self.delta >> j & 1 == 1 { u64::MAX } else { 0 };
            let at = j * len;
            planes.extend(
                (0..len).map(|i| pw[at + i] ^ (d[i] & pv[at + i]) ^ (e[i] & pu[at + i]) ^ (de[i] & key_bit)),
            );
        }
        Ok(MacBits { bits, planes, public: None })
    }

    /// Opens binary words to both parties: checks every earlier opening, opens, checks that
    /// opening.
    pub fn reveal_bits(&mut self, x: &MacBits) -> Result<Vec<u64>> {
        self.check()?;
        let opened = self.open_bits(&x.bits, x.planes.clone())?;
        self.check()?;
        Ok(opened)
    }

    /// Two binary operands, one word an element, whose sum modulo 2^64 is `x` modulo 2^64
    /// (the input of the sign circuits' adder): opens `c = x + r` for a dealer mask `r`
    /// uniform modulo 2^128 (edaBits), and returns `c` (public words) and the MAC'd bits of
    /// `-r mod 2^64`.
    pub fn a2b_operands(&mut self, x: &MacShare) -> Result<(MacBits, MacBits)> {
        let n = x.value.len();
        let req = Request::MacEdaBits { n: n as u64 };
        let r = wide(self.draw(req)?.part(0));
        let corr = self.correction_words(req)?;
        let mac_r = wide(&corr[..2 * n]);
        let (s, ps) = corr[2 * n..].split_at(n);
        let shares: Vec<u128> = x.value.data().iter().zip(&r).map(|(v, r)| v.wrapping_add(*r)).collect();
        let macs: Vec<u128> = x.mac.data().iter().zip(&mac_r).map(|(m, r)| m.wrapping_add(*r)).collect();
        let c: Vec<u64> = self.open(&shares, &macs)?.iter().map(|&c| c as u64).collect();
        Ok((self.public_bits(&c), MacBits { bits: s.to_vec(), planes: ps.to_vec(), public: None }))
    }

    /// `x * b` for packed bits `b` (element `i` is bit `i % 64` of word `i / 64`) in one
    /// round: opens `c = b xor t` and `e = x - a` together for the dealer's random bits `t`
    /// (MAC'd as bits and as 0/1 values), MAC'd mask `a` and MAC'd `a t`; then `b = c + t - 2
    /// c t` gives `x b = (1 - 2 c)(e t + a t) + c x`, linear in the MAC'd `t`, `a t` and `x`
    /// for the public `c` and `e`. Where a conversion and a product took two rounds and a
    /// product's two openings.
    pub fn mul_bits(&mut self, x: &MacShare, bits: &MacBits) -> Result<MacShare> {
        let n = x.len();
        let words = n.div_ceil(64);
        if bits.len() < words {
            return Err(MpcError::Usage(format!("{} words hold fewer than {n} bits", bits.len())));
        }
        let trimmed;
        let bits = if bits.len() == words {
            bits
        } else {
            trimmed = bits.map(&|w| w[..words].to_vec());
            &trimmed
        };
        let req = Request::MacBitMul { n: n as u64 };
        let parts = self.draw(req)?.into_parts();
        let (t, a) = (&parts[0], wide(&parts[1]));
        let corr = self.correction_words(req)?;
        let (pt, rest) = corr.split_at(64 * words);
        let values = wide(rest);
        let [tv, mt, ma, at, mat] = [0, 1, 2, 3, 4].map(|k| &values[k * n..(k + 1) * n]);
        let xor = |p: &[u64], q: &[u64]| p.iter().zip(q).map(|(s, t)| s ^ t).collect::<Vec<u64>>();
        let (xv, xm) = (x.value.data(), x.mac.data());
        let e_shares: Vec<u128> = xv.iter().zip(&a).map(|(v, a)| v.wrapping_sub(*a)).collect();
        let e_macs: Vec<u128> = xm.iter().zip(ma).map(|(m, a)| m.wrapping_sub(*a)).collect();
        let (c, e) = self.open_together(&xor(&bits.bits, t), xor(&bits.planes, pt), &e_shares, &e_macs)?;
        let (mut value, mut mac) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let v = e[i].wrapping_mul(tv[i]).wrapping_add(at[i]);
            let m = e[i].wrapping_mul(mt[i]).wrapping_add(mat[i]);
            let (v, m) = if c[i / 64] >> (i % 64) & 1 == 1 {
                (xv[i].wrapping_sub(v), xm[i].wrapping_sub(m))
            } else {
                (v, m)
            };
            value.push(v);
            mac.push(m);
        }
        Ok(MacShare {
            value: WideTensor::new(x.shape().to_vec(), value)?,
            mac: WideTensor::new(x.shape().to_vec(), mac)?,
        })
    }

    /// Packed bits (element `i` is bit `i % 64` of word `i / 64`) as arithmetic shares of 0/1
    /// of `shape`: opens `b xor t` for a dealer's random bits `t` with MAC'd arithmetic shares
    /// (daBits), then `b = o + t - 2 o t` is linear in `t` for the public `o`.
    pub fn b2a_packed(&mut self, bits: &MacBits, shape: &[usize]) -> Result<MacShare> {
        let n: usize = shape.iter().product();
        let words = n.div_ceil(64);
        if bits.len() < words {
            return Err(MpcError::Usage(format!("{} words hold fewer than {n} bits", bits.len())));
        }
        let bits = if bits.len() == words { bits.clone() } else { bits.map(&|w| w[..words].to_vec()) };
        let req = Request::MacDaBits { n: n as u64 };
        let t = self.draw(req)?.into_parts().remove(0);
        let corr = self.correction_words(req)?;
        let (pt, rest) = corr.split_at(64 * words);
        let (arith, mac) = (wide(&rest[..2 * n]), wide(&rest[2 * n..]));
        let x = |p: &[u64], q: &[u64]| p.iter().zip(q).map(|(s, t)| s ^ t).collect::<Vec<u64>>();
        let opened = self.open_bits(&x(&bits.bits, &t), x(&bits.planes, pt))?;
        let (mut value, mut macs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let o = opened[i / 64] >> (i % 64) & 1 == 1;
            // b = o + (1 - 2 o) t: t where o = 0, 1 - t where o = 1.
            let (v, m) =
                if o { (arith[i].wrapping_neg(), mac[i].wrapping_neg()) } else { (arith[i], mac[i]) };
            let public = u128::from(o);
            value.push(if self.id == 0 { v.wrapping_add(public) } else { v });
            macs.push(m.wrapping_add(self.alpha.wrapping_mul(public)));
        }
        Ok(MacShare {
            value: WideTensor::new(shape.to_vec(), value)?,
            mac: WideTensor::new(shape.to_vec(), macs)?,
        })
    }
}
