//! The checked truncation (see `Protocol::truncate` on [`Rep3Mal`]) in two steps: the mask
//! and the helper's claimed carries of its halves, which do not depend on the value and so
//! travel in the same round as the product that makes it (`mul_truncate` and the matrix
//! forms), and the rest. Rounds after the product: the opening of `c` (with the carries when
//! there is no product), one AND layer for `msb(R) & [msb(c) = 0]`, and the two of the bits'
//! conversion.
//!
//! The code names the parties of one truncation in its *frame*: the helper, which knows the
//! whole mask, inputs the carries of its halves and proves their check, is party 2 of the
//! frame, and the masked value opens to parties 0 and 1. Frames rotate from one truncation
//! to the next (the helper is party 2, then 0, then 1, ...), so that over a model each party
//! proves about as much (the helper's conversion message is three products per element,
//! the others' one). Every step is written with the frame's ids and components and with
//! messages to the next or previous party, which a rotation leaves as they are.

use super::*;

/// One truncation's naming of the parties: frame party `j` is party `(j + shift) % 3`, and
/// frame component `j` component `(j + shift) % 3` (so frame party `j` holds frame components
/// `j` and `j + 1`).
#[derive(Clone, Copy)]
pub(super) struct Frame {
    shift: usize,
}

impl Frame {
    /// The frame whose helper (frame party 2) is party `(shift + 2) % 3`.
    fn new(shift: usize) -> Self {
        Self { shift: shift % 3 }
    }
    /// This party's id in the frame.
    fn me(&self, id: usize) -> usize {
        (id + 3 - self.shift) % 3
    }
}

/// A truncation mask drawn before the value it masks: `r_a` (component 0) and `r_b`
/// (component 2) as this party holds them (zeros where it holds neither), and party 2's
/// carries of `r_a + r_b` as an XOR-shared input, whose message party 0 has not read yet
/// (`carries_due`), so that reading it waits until this party's next messages are out.
pub(super) struct TruncationMask {
    frame: Frame,
    r_a: Vec<u64>,
    r_b: Vec<u64>,
    carries: RBits,
    carries_due: bool,
}

/// Truncation by `bits` works for 1 to 61 bits (the value lies below 2^62).
pub(super) fn check_truncation_bits(bits: u32) -> Result<()> {
    if bits == 0 || bits >= 62 {
        return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
    }
    Ok(())
}

impl Rep3Mal {
    /// Draws a mask for `n` values in the next frame and sends the helper's carries of its
    /// halves (frame ids and components from here on): bit `i` of a word per element is the
    /// carry into bit `i + 1`, bit 63 the carry out. Component 2 is a mask from party 2's key
    /// with party 1, component 0 the carries XOR the mask, sent to party 0, component 1 zero:
    /// one message, so no copy can differ from another. What party 2 claims is checked in
    /// [`Rep3Mal::truncate_masked`], so it is not trusted.
    pub(super) fn truncation_mask(&mut self, n: usize) -> Result<TruncationMask> {
        let frame = Frame::new(self.truncations);
        self.truncations = (self.truncations + 1) % 3;
        let me = frame.me(self.base.id);
        // Component j is party j's `cur` and party j-1's `next`, drawn from their shared key.
        let (r_a, r_b) = match me {
            0 => (self.base.draw(Stream::Own, n), vec![0; n]),
            1 => (vec![0; n], self.base.draw(Stream::Next, n)),
            _ => {
                let r_a = self.base.draw(Stream::Next, n);
                (r_a, self.base.draw(Stream::Own, n))
            }
        };
        let (carries, carries_due) = match me {
            2 => {
                let mask = self.base.draw(Stream::Own, n);
                let mut masked: Vec<u64> = r_a
                    .iter()
                    .zip(&r_b)
                    .zip(&mask)
                    .map(|((a, b), m)| {
                        let (sum, out) = a.overflowing_add(*b);
                        // Bit i of a ^ b ^ sum is the carry into bit i.
                        (((a ^ b ^ sum) >> 1) | ((out as u64) << 63)) ^ m
                    })
                    .collect();
                self.tamper(Target::Carries, &mut masked);
                // To party 0, the helper's next.
                self.base.net.send_u64s(self.base.next_party(), &masked)?;
                (RBits { cur: mask, next: masked }, false)
            }
            0 => (RBits { cur: Vec::new(), next: vec![0; n] }, true),
            _ => (RBits { cur: vec![0; n], next: self.base.draw(Stream::Next, n) }, false),
        };
        Ok(TruncationMask { frame, r_a, r_b, carries, carries_due })
    }

    /// `truncate(product(self), bits)` for a product of `n` values, the mask's carries sent
    /// before the product so that they share its round. No verification runs during the
    /// product (party 0 reads the carries after it, and a verification would read party 2's
    /// proof messages from the same link first); the next one past the pending limit runs it.
    pub(super) fn truncated_product(
        &mut self,
        n: usize,
        bits: u32,
        product: impl FnOnce(&mut Self) -> Result<RShare>,
    ) -> Result<RShare> {
        check_truncation_bits(bits)?;
        let mask = self.truncation_mask(n)?;
        self.hold_verification = true;
        let prod = product(self);
        self.hold_verification = false;
        self.truncate_masked(&prod?, bits, mask)
    }

    /// Truncates `x` with a mask from [`Rep3Mal::truncation_mask`] for its length: the
    /// opening of `c = x + 2^62 + R` to parties 0 and 1, the check of the carries, and the
    /// result from the three bits (see `Protocol::truncate`). `bits` was checked by the
    /// caller, before the mask was drawn.
    ///
    /// Written with this party's two components (frame components `me` and `me + 1`) as
    /// plain vectors, each value formed in one pass where it is needed: built from shares of
    /// single components, added and reshaped (the first form), the steps outside the proofs
    /// took about as long as the semi-honest multiplication seven times over.
    pub(super) fn truncate_masked(&mut self, x: &RShare, bits: u32, mask: TruncationMask) -> Result<RShare> {
        let n = x.len();
        let TruncationMask { frame, r_a, r_b, mut carries, carries_due } = mask;
        if r_a.len() != n {
            return Err(MpcError::Usage(format!("truncation: a mask for {} values, not {n}", r_a.len())));
        }
        let me = frame.me(self.base.id);
        let f = bits as usize;
        // Where this party holds r_a (frame component 0) and r_b (component 2) among its
        // components `[cur, next]`: r_a as cur at frame party 0 and as next at 2, r_b as next
        // at 1 and as cur at 2.
        let (ra_at, rb_at) = match me {
            0 => ([Some(&r_a[..]), None], [None, None]),
            1 => ([None, None], [None, Some(&r_b[..])]),
            _ => ([None, Some(&r_a[..])], [Some(&r_b[..]), None]),
        };
        // c = x + 2^62 + R, opened to parties 0 and 1: party 1 sends party 0 component 2
        // (party 2 vouches for it), party 0 sends party 1 component 0 (party 2 vouches for it
        // too; party 2, which knows R and sends the carries, sends no copy, so that every
        // party sends three words per truncated product). It goes first, so that it shares a
        // round with the carries when nothing came between. The public 2^62 goes into
        // component 0 (not the frame's), party 0's cur and party 2's next, as `add_public`.
        let id = self.base.id;
        let masked = |side: usize, words: &[u64]| -> Vec<u64> {
            let public = if (side == 0 && id == 0) || (side == 1 && id == 2) { 1u64 << 62 } else { 0 };
            match ra_at[side].or(rb_at[side]) {
                Some(r) => {
                    words.iter().zip(r).map(|(w, r)| w.wrapping_add(*r).wrapping_add(public)).collect()
                }
                None => words.iter().map(|w| w.wrapping_add(public)).collect(),
            }
        };
        let (prev, next) = (self.base.prev(), self.base.next_party());
        let (xc, xn) = (x.cur.data(), x.next.data());
        // c itself at parties 0 and 1 (party 2 does not learn it).
        let c: Vec<u64> = match me {
            0 | 1 => {
                let (sent, kept) =
                    if me == 0 { (masked(0, xc), masked(1, xn)) } else { (masked(1, xn), masked(0, xc)) };
                let to = if me == 0 { next } else { prev };
                if self.cheat.is_some() {
                    // The test harness's error goes into the message, not into this party's c.
                    let mut tampered = sent.clone();
                    self.tamper(Target::Truncate, &mut tampered);
                    self.base.net.send_u64s(to, &tampered)?;
                } else {
                    self.base.net.send_u64s(to, &sent)?;
                }
                let missing = self.base.net.recv_u64s(to, n)?;
                if me == 0 {
                    self.received.update(&musket_net::u64s_to_bytes(&missing));
                } else {
                    self.received_from_prev.update(&musket_net::u64s_to_bytes(&missing));
                }
                (0..n).map(|i| sent[i].wrapping_add(kept[i]).wrapping_add(missing[i])).collect()
            }
            _ => {
                self.vouched.update(&musket_net::u64s_to_bytes(&masked(0, xc)));
                self.vouched_for_prev.update(&musket_net::u64s_to_bytes(&masked(1, xn)));
                Vec::new()
            }
        };
        // Every party counts both directions, so that all of them compare digests together.
        self.unchecked_openings += 1;
        self.unchecked_from_prev += 1;
        if carries_due {
            // From the helper, party 0's previous.
            carries.cur = self.base.net.recv_u64s(prev, n)?;
        }
        let sides = [&carries.cur, &carries.next];
        // r_a and r_b alone are XOR-shared as components 0 and 2 (no communication), and
        // bit i of the carries word is the carry into bit i + 1. msb(R) = a_63 ^ b_63 ^ c_63
        // (the carry into bit f and the carry out of r_a + r_b are read from the carries in
        // `truncation_correction`).
        let word = |at: Option<&[u64]>, i: usize| at.map_or(0, |r| r[i]);
        let msb_r = RBits {
            cur: pack_top_bits(n, |i| word(ra_at[0], i) ^ word(rb_at[0], i) ^ (sides[0][i] << 1)),
            next: pack_top_bits(n, |i| word(ra_at[1], i) ^ word(rb_at[1], i) ^ (sides[1][i] << 1)),
        };
        // [msb(c) = 0] as component 1 (parties 0 and 1): frame party 0's next, 1's cur.
        let c_pos = pack_top_bits(c.len(), |i| !c[i]);
        let zeros = || vec![0u64; n.div_ceil(64)];
        let c_pos = match me {
            0 => RBits { cur: zeros(), next: c_pos },
            1 => RBits { cur: c_pos, next: zeros() },
            _ => RBits { cur: zeros(), next: zeros() },
        };
        // The check of the carries: the carry out of bit i must be maj(a_i, b_i, c_i) =
        // ((a_i ^ c_i) & (b_i ^ c_i)) ^ c_i, 64 gates per element, so `x & y = z` with
        // x = a ^ carry_in, y = b ^ carry_in and z = carries ^ carry_in (by induction from
        // c_0 = 0, every carry is then right). Party 2 knows every component of all three, so
        // it proves it without a message (`keep_helper_products`): no AND layer.
        self.keep_helper_products(me, &ra_at, &rb_at, &carries)?;
        // msb(R) & [msb(c) = 0], the wrap of x + 2^62 + R: one AND layer of one gate per
        // element.
        let wrap_c = self.bits_and(&c_pos, &msb_r)?;
        // -carry_f + 2^(64-f) (wrap_r + wrap_c) in arithmetic, one checked conversion.
        let (mut cur, mut nxt) = self.truncation_correction(me, &carries, &wrap_c, f)?;
        // The result: (c >> f) - 2^(62-f) in component 1 (frame party 0's next, 1's cur), and
        // minus r_a >> f in component 0 and r_b >> f in component 2, added to the correction.
        let public = |v: u64| (v >> f).wrapping_sub(1u64 << (62 - f));
        for (side, out) in [&mut cur, &mut nxt].into_iter().enumerate() {
            if (me, side) == (0, 1) || (me, side) == (1, 0) {
                for (o, v) in out.iter_mut().zip(&c) {
                    *o = o.wrapping_add(public(*v));
                }
            }
            for r in [ra_at[side], rb_at[side]].into_iter().flatten() {
                for (o, v) in out.iter_mut().zip(r) {
                    *o = o.wrapping_sub(v >> f);
                }
            }
        }
        self.base.share(x.shape(), cur, nxt)
    }

    /// Records the statement `x & y = z` for XOR-shared words whose component 1 is zero in
    /// all three (so party 2 knows every component) for party 2 to prove, with no message: a
    /// [`Gate::OneProver`] record (binary), in party 2's statement only, whose claim shares
    /// are what the verifiers hold of `z`, not a received product. Party 2's term
    /// `(x_2 ^ x_0) (y_2 ^ y_0) = x & y` must equal `z_0 ^ z_2`, its verifier A (party 1)
    /// holding `z_2` and B (party 0) `z_0` (as `z_0 ^ x_0 y_0` in `own`, to which a product's
    /// B adds `x_0 y_0`): true exactly when `x & y = z`, bit by bit. It replaced an AND layer
    /// (one word per element from each party) whose result was checked to be zero.
    /// Here `x = a ^ carry_in`, `y = b ^ carry_in` and `z = carries ^ carry_in`, with
    /// `carry_in = carries << 1` and `a`, `b` the mask's halves where this party holds them
    /// (`ra_at`, `rb_at`: per component, cur and next), formed a record piece at a time.
    /// `me` is this party's id in the truncation's frame (the helper is frame party 2).
    fn keep_helper_products(
        &mut self,
        me: usize,
        ra_at: &[Option<&[u64]>; 2],
        rb_at: &[Option<&[u64]>; 2],
        carries: &RBits,
    ) -> Result<()> {
        let n = carries.next.len();
        let sides = [&carries.cur, &carries.next];
        // x ^ carry_in (or y, z) of elements `range` on side `side`, for `at` a or b (None:
        // zero), or the carries themselves for z.
        let xored = |at: Option<&[u64]>, side: usize, range: Range<usize>| -> Vec<u64> {
            let carries = &sides[side][range.clone()];
            match at {
                Some(r) => r[range].iter().zip(carries).map(|(r, c)| r ^ (c << 1)).collect(),
                None => carries.iter().map(|c| c << 1).collect(),
            }
        };
        let piece = BATCH_TERMS_BINARY / 128;
        for start in (0..n).step_by(piece.max(1)) {
            let end = (start + piece).min(n);
            let range = start..end;
            let zeros = vec![0u64; end - start];
            let claimed = |side: usize| -> Vec<u64> {
                sides[side][range.clone()].iter().map(|c| c ^ (c << 1)).collect()
            };
            let (xc, yc) = (xored(ra_at[0], 0, range.clone()), xored(rb_at[0], 0, range.clone()));
            // This party's role in party 2's statement, the only one the gates go into, and
            // its claim shares there: as A (`theirs`, party 1) and as B (`own`, party 0).
            let (role, theirs, own) = match me {
                0 => {
                    let own =
                        claimed(0).iter().zip(xc.iter().zip(&yc)).map(|(z, (x, y))| z ^ (x & y)).collect();
                    (Role::B, zeros.clone(), own)
                }
                1 => (Role::A, claimed(1), zeros.clone()),
                _ => (Role::Prover, zeros.clone(), zeros.clone()),
            };
            let rec = Record {
                gate: Gate::OneProver { role },
                xc,
                xn: xored(ra_at[1], 1, range.clone()),
                yc,
                yn: xored(rb_at[1], 1, range),
                theirs,
                own,
                nxt: zeros,
            };
            self.pending_words += rec.words();
            self.binary.push(rec);
        }
        if self.pending_words > self.pending_limit && !self.hold_verification {
            self.verify_all()?;
        }
        Ok(())
    }

    /// `V = -carry_f + 2^(64-f) (wrap_r + wrap_c)` as an arithmetic share of `n` values, from
    /// the checked carries (XOR-shared in components 0 and 2 only, `u ^ v`: the carry into
    /// bit `f` is bit `f - 1`, the wrap of `R` bit 63) and `wrap_c` (packed, any components).
    /// Two rounds, one word per element from each party, where converting the three bits
    /// one by one sent three:
    /// - `wrap_c = t ^ b2`, `t = b0 ^ b1`, as in [`Rep3Mal::bits_to_arith`]: party 0 sends
    ///   party 1 `s = t - m`, party 1 sends party 0 `z1 = s (1 - 2 b2) - f2`, and party 2's
    ///   `z2 = m (1 - 2 b2) + b2 + f2 - f0` goes into its message below;
    /// - a carry bit `u ^ v` is `u + v - 2 u v`, where `u` (component 0) and `v` (component 2)
    ///   are known together to party 2 only, which sends party 1
    ///   `E = w_c z2 + sum_k w_k (-2 u_k v_k) - F` (`w_c = w_w = 2^(64-f)`, `w_f = -1`, `F`
    ///   from the key of parties 0 and 2, hiding the products from party 1).
    ///
    /// Components of `V`: 0 is `w_c f0 + F + sum_k w_k u_k`, 1 is `w_c z1`, 2 is
    /// `E + sum_k w_k v_k`. Each message is a sum of products `x * y`, `x` known to the
    /// sender's previous party and `y` to its next, plus terms those verifiers hold
    /// ([`Gate::Cross`]): one for parties 0 and 1 (as in `bits_to_arith`), three for party 2
    /// (`w_c (1 - 2 b2) * m`, `-2 w_k v_k * u_k`), whose sum is `E - w_c (b2 + f2) + w_c f0
    /// + F`. Party 1 sees `s` and `E`, masked by `m` and `F`; party 0 sees `z1`, masked by `f2`.
    ///
    /// `me` is this party's id in the truncation's frame.
    fn truncation_correction(
        &mut self,
        me: usize,
        carries: &RBits,
        wrap_c: &RBits,
        f: usize,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let n = carries.next.len();
        let w_high = 1u64 << (64 - f);
        // (w_f, w_w) and the positions of the carry bits in the carries word: the carry into
        // bit f, the wrap of R. The bits are read where they are used, not copied out.
        let weights = [u64::MAX, w_high];
        let positions = [f - 1, 63];
        let bit = |words: &[u64], k: usize, i: usize| (words[i] >> positions[k]) & 1;
        // Sum over the carry bits of w_k * bits_k.
        let weighted = |words: &[u64], i: usize| {
            weights[0].wrapping_mul(bit(words, 0, i)).wrapping_add(weights[1].wrapping_mul(bit(words, 1, i)))
        };
        // Each element's three right factors in party 2's message: `m`, then the carry bits
        // of component 0.
        let interleaved = |m: &[u64], u: &[u64]| -> Vec<u64> {
            let mut out = Vec::with_capacity(3 * n);
            for i in 0..n {
                out.extend_from_slice(&[m[i], bit(u, 0, i), bit(u, 1, i)]);
            }
            out
        };
        let (cur, next) = (unpack_bits(&wrap_c.cur, n), unpack_bits(&wrap_c.next, n));
        let (mine, theirs) = match me {
            0 => {
                let (b0, b1) = (cur, next);
                let u = &carries.cur;
                let m = self.base.draw(Stream::Own, n);
                let f0 = self.base.draw(Stream::Own, n);
                let mask = self.base.draw(Stream::Own, n);
                let (s, z1) = self.conversion_at_0(&b0, &b1, &m)?;
                let claim_b: Vec<u64> =
                    (0..n).map(|i| w_high.wrapping_mul(f0[i]).wrapping_add(mask[i])).collect();
                let comp0: Vec<u64> = (0..n).map(|i| claim_b[i].wrapping_add(weighted(u, i))).collect();
                let comp1: Vec<u64> = z1.iter().map(|v| w_high.wrapping_mul(*v)).collect();
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 1, a: 1, b: 3 },
                    xc: b0.iter().map(|v| v.wrapping_neg() << 1).collect(),
                    yc: b1,
                    xn: s,
                    theirs: z1,
                    yn: interleaved(&m, u),
                    own: claim_b,
                    nxt: Vec::new(),
                })?;
                (comp0, comp1)
            }
            1 => {
                let (b1, b2) = (cur, &next);
                let v = &carries.next;
                let f2 = self.base.draw(Stream::Next, n);
                let (s, e, c, z1) = self.conversion_at_1(b2, &f2)?;
                let comp1: Vec<u64> = z1.iter().map(|x| w_high.wrapping_mul(*x)).collect();
                let comp2: Vec<u64> = (0..n).map(|i| e[i].wrapping_add(weighted(v, i))).collect();
                let claim_a: Vec<u64> = (0..n)
                    .map(|i| e[i].wrapping_sub(w_high.wrapping_mul(b2[i].wrapping_add(f2[i]))))
                    .collect();
                let claim_b: Vec<u64> = (0..n).map(|i| s[i].wrapping_sub(b1[i])).collect();
                let x2 = party2_left(&c, v, f, w_high, &weights);
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 1, a: 3, b: 1 },
                    xc: s,
                    yc: c,
                    xn: x2,
                    theirs: claim_a,
                    yn: b1,
                    own: claim_b,
                    nxt: Vec::new(),
                })?;
                (comp1, comp2)
            }
            _ => {
                let (b2, b0) = (&cur, &next);
                let (v, u) = (&carries.cur, &carries.next);
                let m = self.base.draw(Stream::Next, n);
                let f0 = self.base.draw(Stream::Next, n);
                let mask = self.base.draw(Stream::Next, n);
                let f2 = self.base.draw(Stream::Own, n);
                let c = one_minus_twice(b2);
                let mut e: Vec<u64> = (0..n)
                    .map(|i| {
                        let z2 = m[i]
                            .wrapping_mul(c[i])
                            .wrapping_add(b2[i])
                            .wrapping_add(f2[i])
                            .wrapping_sub(f0[i]);
                        // The carry bits' products u_k v_k: (u & v) of the two words.
                        let both = u[i] & v[i];
                        let products = (0..2).fold(0u64, |acc, k| {
                            acc.wrapping_sub(weights[k].wrapping_mul(bit(&[both], k, 0)).wrapping_shl(1))
                        });
                        w_high.wrapping_mul(z2).wrapping_add(products).wrapping_sub(mask[i])
                    })
                    .collect();
                self.tamper(Target::Convert, &mut e);
                // To party 1, the helper's previous.
                self.base.net.send_u64s(self.base.prev(), &e)?;
                let comp2: Vec<u64> = (0..n).map(|i| e[i].wrapping_add(weighted(v, i))).collect();
                let comp0: Vec<u64> = (0..n)
                    .map(|i| w_high.wrapping_mul(f0[i]).wrapping_add(mask[i]).wrapping_add(weighted(u, i)))
                    .collect();
                let theirs = (0..n).map(|i| m[i].wrapping_sub(b0[i])).collect();
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 3, a: 1, b: 1 },
                    xc: party2_left(&c, v, f, w_high, &weights),
                    yc: interleaved(&m, u),
                    xn: b0.iter().map(|x| x.wrapping_neg() << 1).collect(),
                    theirs,
                    yn: c,
                    own: f2,
                    nxt: Vec::new(),
                })?;
                (comp2, comp0)
            }
        };
        Ok((mine, theirs))
    }
}

/// The top bits of `n` words `word(i)`, packed (bit `j` of word `k` is that of element
/// `64 k + j`), without the words themselves.
fn pack_top_bits(n: usize, word: impl Fn(usize) -> u64) -> Vec<u64> {
    (0..n.div_ceil(64))
        .map(|k| {
            (64 * k..(64 * k + 64).min(n)).enumerate().fold(0u64, |p, (j, i)| p | ((word(i) >> 63) << j))
        })
        .collect()
}

/// Party 2's left factors in its conversion message, three per element:
/// `w_c (1 - 2 b2)` (with `c = 1 - 2 b2`) and `-2 w_k v_k` for the two carry bits (bits
/// `f - 1` and 63 of the carries words `v`).
fn party2_left(c: &[u64], v: &[u64], f: usize, w_high: u64, weights: &[u64; 2]) -> Vec<u64> {
    let mut out = Vec::with_capacity(3 * c.len());
    for (c, v) in c.iter().zip(v) {
        let (low, high) = ((v >> (f - 1)) & 1, v >> 63);
        out.extend_from_slice(&[
            w_high.wrapping_mul(*c),
            weights[0].wrapping_mul(low).wrapping_neg().wrapping_shl(1),
            weights[1].wrapping_mul(high).wrapping_neg().wrapping_shl(1),
        ]);
    }
    out
}
