//! The checked conversions of XOR-shared bits to arithmetic: `b2a_packed`
//! ([`Rep3Mal::bits_to_arith`]) and
//! `mul_bits` ([`Rep3Mal::mul_bits_checked`]).

use super::*;

/// What party 1's conversion step returns: `s`, party 2's message, `1 - 2 b2`, `z1`.
pub(super) type ConversionAt1 = (Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>);

/// `1 - 2 b` for every bit `b` (the arithmetic factor of an XOR with `b`).
pub(super) fn one_minus_twice(bits: &[u64]) -> Vec<u64> {
    bits.iter().map(|v| 1u64.wrapping_sub(v << 1)).collect()
}

/// `-2 b` for every bit `b`.
fn minus_twice(bits: &[u64]) -> Vec<u64> {
    bits.iter().map(|v| v.wrapping_neg() << 1).collect()
}

impl Rep3Mal {
    /// The arithmetic 0/1 value of XOR-shared packed bits `b = b0 ^ b1 ^ b2` (components),
    /// checked, in two rounds and three words per element in all:
    ///
    /// 1. Party 0, which holds `b0` and `b1`, inputs `t = b0 ^ b1`: it sends party 1
    ///    `s = t - m`, with `m` from the key it shares with party 2 (component 0 of `t`, `s`
    ///    component 1). Party 2 sends party 1 `z2 = m (1 - 2 b2) + b2 + f2 - f0` at the same
    ///    time (`f0` from the key of parties 0 and 2, `f2` from that of 1 and 2).
    /// 2. Party 1 sends party 0 `z1 = s (1 - 2 b2) - f2`.
    ///
    /// Then `f0 + z1 + z2 = t (1 - 2 b2) + b2 = t ^ b2`, with components `f0`, `z1`, `z2`.
    /// Each message is one product per element, `x * y` with `x` known to the sender and its
    /// previous party and `y` to the sender and its next party, plus terms those verifiers
    /// hold: `-2 b0 * b1 = s + m - b0 - b1` for party 0, `s (1 - 2 b2) = z1 + f2` for party 1,
    /// `(1 - 2 b2) m = z2 - b2 - f2 + f0` for party 2 ([`Gate::Cross`]). Each party thus proves
    /// one term per element, where XOR by two checked products proved four.
    /// Party 1 sees `s` and `z2`, masked by `m` and `f0`; party 0 sees `z1`, masked by `f2`.
    pub(super) fn bits_to_arith(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        let n = element_count(shape)?;
        if bits.cur.len() != n.div_ceil(64) {
            return Err(MpcError::Usage("b2a: packed length does not match the shape".into()));
        }
        let (cur, next) = (unpack_bits(&bits.cur, n), unpack_bits(&bits.next, n));
        let id = self.base.id;
        let (mine, theirs) = match id {
            0 => {
                let (b0, b1) = (&cur, &next);
                let m = self.base.draw(Stream::Own, n);
                let f0 = self.base.draw(Stream::Own, n);
                let (s, z1) = self.conversion_at_0(b0, b1, &m)?;
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: minus_twice(b0),
                    yc: b1.clone(),
                    xn: s,
                    theirs: z1.clone(),
                    yn: m,
                    own: f0.clone(),
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                (f0, z1)
            }
            1 => {
                let (b1, b2) = (&cur, &next);
                let f2 = self.base.draw(Stream::Next, n);
                let (s, z2, c, z1) = self.conversion_at_1(b2, &f2)?;
                let claim_a: Vec<u64> =
                    (0..n).map(|i| z2[i].wrapping_sub(b2[i]).wrapping_sub(f2[i])).collect();
                let claim_b: Vec<u64> = (0..n).map(|i| s[i].wrapping_sub(b1[i])).collect();
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: s,
                    yc: c.clone(),
                    xn: c,
                    theirs: claim_a,
                    yn: b1.clone(),
                    own: claim_b,
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                (z1, z2)
            }
            _ => {
                let (b2, b0) = (&cur, &next);
                let m = self.base.draw(Stream::Next, n);
                let f0 = self.base.draw(Stream::Next, n);
                let f2 = self.base.draw(Stream::Own, n);
                let c = one_minus_twice(b2);
                let mut z2: Vec<u64> = (0..n)
                    .map(|i| {
                        m[i].wrapping_mul(c[i]).wrapping_add(b2[i]).wrapping_add(f2[i]).wrapping_sub(f0[i])
                    })
                    .collect();
                self.tamper(Target::Convert, &mut z2);
                self.base.net.send_u64s(1, &z2)?;
                let claim_a: Vec<u64> = (0..n).map(|i| m[i].wrapping_sub(b0[i])).collect();
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: c.clone(),
                    yc: m,
                    xn: minus_twice(b0),
                    theirs: claim_a,
                    yn: c,
                    own: f2,
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                (z2, f0)
            }
        };
        self.base.share(shape, mine, theirs)
    }

    /// Party 0's step of a bit conversion (written with messages to the next or previous
    /// party, as truncation's steps are): sends party 1
    /// `s = (b0 ^ b1) - m` and reads party 1's `z1`; returns both.
    pub(super) fn conversion_at_0(
        &mut self,
        b0: &[u64],
        b1: &[u64],
        m: &[u64],
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let n = b0.len();
        let mut s: Vec<u64> = (0..n).map(|i| (b0[i] ^ b1[i]).wrapping_sub(m[i])).collect();
        self.tamper(Target::Convert, &mut s);
        let next = self.base.next_party();
        self.base.net.send_u64s(next, &s)?;
        let z1 = self.base.net.recv_u64s(next, n)?;
        Ok((s, z1))
    }

    /// Party 1's step: reads `s` from party 0 and party 2's message, sends party 0
    /// `z1 = s (1 - 2 b2) - f2`; returns `s`, party 2's message, `1 - 2 b2` and `z1`.
    pub(super) fn conversion_at_1(&mut self, b2: &[u64], f2: &[u64]) -> Result<ConversionAt1> {
        let n = b2.len();
        let (prev, next) = (self.base.prev(), self.base.next_party());
        let s = self.base.net.recv_u64s(prev, n)?;
        let from_2 = self.base.net.recv_u64s(next, n)?;
        let c = one_minus_twice(b2);
        let mut z1: Vec<u64> = (0..n).map(|i| s[i].wrapping_mul(c[i]).wrapping_sub(f2[i])).collect();
        self.tamper(Target::Convert, &mut z1);
        self.base.net.send_u64s(prev, &z1)?;
        Ok((s, from_2, c, z1))
    }

    /// `x * b` for XOR-shared packed bits `b = b0 ^ b1 ^ b2` (components) and an arithmetic
    /// `x`, checked, in two rounds and six words per element in all (the conversion of
    /// [`Rep3Mal::bits_to_arith`] and a product took three rounds for the same words):
    ///
    /// 1. Party 0 inputs `d = b0 ^ b1` as in `bits_to_arith` (`s = d - m` to party 1;
    ///    components `m`, `s`, 0), while `u = x * b2` is formed from the two parties that
    ///    hold `b2`, whose products are `x1 b2` (party 1) and `(x2 + x0) b2` (party 2):
    ///    party 1 sends party 0 `u1 = x1 b2 + g2` and party 2 sends party 1
    ///    `u2 = (x2 + x0) b2 - g2 + g0`, with `g2` from the key of parties 1 and 2 and `g0`
    ///    from that of parties 0 and 2; `u`'s components are `-g0`, `u1`, `u2`.
    /// 2. `d * (x - 2 u)`, a checked product; the result is `u + d (x - 2 u) = x (d ^ b2)`.
    ///
    /// The first round's messages are one cross term each ([`Gate::Cross`]): party 0's
    /// `-2 b0 * b1 = s + m - b0 - b1` (A = 2 holds `b0` and `m`, B = 1 holds `b1` and `s`),
    /// party 1's `x1 * b2 = u1 - g2` (A = 0 holds `x1` and `u1`, B = 2 `b2` and `g2`), party 2's
    /// `b2 * x0 = u2 - x2 b2 + g2 - g0` (A = 1 holds `b2`, `x2`, `g2` and `u2`, B = 0 holds
    /// `x0` and `g0`). Party 0 sees `u1`, masked by `g2`; party 1 sees `s` and `u2`, masked
    /// by `m` and `g0`; party 2 sees nothing until the product, whose messages are masked as
    /// every product's.
    pub(super) fn mul_bits_checked(&mut self, x: &RShare, bits: &RBits) -> Result<RShare> {
        let n = x.len();
        if bits.cur.len() != n.div_ceil(64) {
            return Err(MpcError::Usage("mul_bits: packed length does not match the shape".into()));
        }
        let shape = x.shape().to_vec();
        let (cur, next) = (unpack_bits(&bits.cur, n), unpack_bits(&bits.next, n));
        let (xc, xn) = (x.cur.data(), x.next.data());
        let negated = |v: &[u64]| v.iter().map(|w| w.wrapping_neg()).collect::<Vec<u64>>();
        let zeros = || vec![0u64; n];
        // This party's components of d and of u.
        let (d, u) = match self.base.id {
            0 => {
                let (b0, b1) = (&cur, &next);
                let m = self.base.draw(Stream::Own, n);
                let g0 = self.base.draw(Stream::Own, n);
                let mut s: Vec<u64> = (0..n).map(|i| (b0[i] ^ b1[i]).wrapping_sub(m[i])).collect();
                self.tamper(Target::Convert, &mut s);
                self.base.net.send_u64s(1, &s)?;
                let u1 = self.base.net.recv_u64s(1, n)?;
                let u0 = negated(&g0);
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: minus_twice(b0),
                    yc: b1.clone(),
                    xn: xn.to_vec(),
                    theirs: u1.clone(),
                    yn: xc.to_vec(),
                    own: u0.clone(),
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                ((m, s), (u0, u1))
            }
            1 => {
                let (b1, b2) = (&cur, &next);
                let g2 = self.base.draw(Stream::Next, n);
                let mut u1: Vec<u64> =
                    (0..n).map(|i| xc[i].wrapping_mul(b2[i]).wrapping_add(g2[i])).collect();
                self.tamper(Target::Convert, &mut u1);
                self.base.net.send_u64s(0, &u1)?;
                let s = self.base.net.recv_u64s(0, n)?;
                let u2 = self.base.net.recv_u64s(2, n)?;
                let claim_a: Vec<u64> = (0..n)
                    .map(|i| u2[i].wrapping_sub(xn[i].wrapping_mul(b2[i])).wrapping_add(g2[i]))
                    .collect();
                let claim_b: Vec<u64> = (0..n).map(|i| s[i].wrapping_sub(b1[i])).collect();
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: xc.to_vec(),
                    yc: b2.clone(),
                    xn: b2.clone(),
                    theirs: claim_a,
                    yn: b1.clone(),
                    own: claim_b,
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                ((s, zeros()), (u1, u2))
            }
            _ => {
                let (b2, b0) = (&cur, &next);
                let m = self.base.draw(Stream::Next, n);
                let g0 = self.base.draw(Stream::Next, n);
                let g2 = self.base.draw(Stream::Own, n);
                let mut u2: Vec<u64> = (0..n)
                    .map(|i| {
                        xc[i].wrapping_add(xn[i]).wrapping_mul(b2[i]).wrapping_sub(g2[i]).wrapping_add(g0[i])
                    })
                    .collect();
                self.tamper(Target::Convert, &mut u2);
                self.base.net.send_u64s(1, &u2)?;
                let claim_a: Vec<u64> = (0..n).map(|i| m[i].wrapping_sub(b0[i])).collect();
                self.keep_cross(Record {
                    gate: Gate::CROSS_ONE,
                    xc: b2.clone(),
                    yc: xn.to_vec(),
                    xn: minus_twice(b0),
                    theirs: claim_a,
                    yn: b2.clone(),
                    own: negated(&g2),
                    nxt: Vec::new(),
                    own_at: None,
                })?;
                ((zeros(), m), (u2, negated(&g0)))
            }
        };
        let d = self.base.share(&shape, d.0, d.1)?;
        let u = self.base.share(&shape, u.0, u.1)?;
        // v = x - 2u, both components in one pass each.
        let minus_twice_u = |x: &[u64], u: &[u64]| -> Vec<u64> {
            x.iter().zip(u).map(|(&x, &u)| x.wrapping_sub(u.wrapping_add(u))).collect()
        };
        let v = self.base.share(&shape, minus_twice_u(xc, u.cur.data()), minus_twice_u(xn, u.next.data()))?;
        let dv = self.mul(&d, &v)?;
        self.add(&u, &dv)
    }
}
