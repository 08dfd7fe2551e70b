//! The checked truncation (see `Protocol::truncate` on [`Rep3Mal`]) in two steps: the mask
//! and party 2's claimed carries of its halves, which do not depend on the value and so
//! travel in the same round as the product that makes it (`mul_truncate` and the matrix
//! forms), and the rest. Rounds after the product: the opening of `c` (with the carries when
//! there is no product), one AND layer for the carries' check and `msb(R) & [msb(c) = 0]`
//! together, and the two of the bits' conversion.

use super::*;

/// Party 2, which knows the whole truncation mask (both of its halves), inputs the carries
/// of its halves and sends party 1 its copy of component 0 of the masked value.
const HELPER: usize = 2;

/// A truncation mask drawn before the value it masks: `r_a` (component 0) and `r_b`
/// (component 2) as this party holds them (zeros where it holds neither), and party 2's
/// carries of `r_a + r_b` as an XOR-shared input, whose message party 0 has not read yet
/// (`carries_due`), so that reading it waits until this party's next messages are out.
pub(super) struct TruncationMask {
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
    /// Draws a mask for `n` values and sends party 2's carries of its halves: bit `i` of a
    /// word per element is the carry into bit `i + 1`, bit 63 the carry out. Component 2 is a
    /// mask from party 2's key with party 1, component 0 the carries XOR the mask, sent to
    /// party 0, component 1 zero: one message, so no copy can differ from another. What
    /// party 2 claims is checked in [`Rep3Mal::truncate_masked`], so it is not trusted.
    pub(super) fn truncation_mask(&mut self, n: usize) -> Result<TruncationMask> {
        // Component j is party j's `cur` and party j-1's `next`, drawn from their shared key.
        let (r_a, r_b) = match self.base.id {
            0 => (self.base.draw(Stream::Own, n), vec![0; n]),
            1 => (vec![0; n], self.base.draw(Stream::Next, n)),
            _ => {
                let r_a = self.base.draw(Stream::Next, n);
                (r_a, self.base.draw(Stream::Own, n))
            }
        };
        let (carries, carries_due) = match self.base.id {
            HELPER => {
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
                self.base.net.send_u64s(0, &masked)?;
                (RBits { cur: mask, next: masked }, false)
            }
            0 => (RBits { cur: Vec::new(), next: vec![0; n] }, true),
            _ => (RBits { cur: vec![0; n], next: self.base.draw(Stream::Next, n) }, false),
        };
        Ok(TruncationMask { r_a, r_b, carries, carries_due })
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
    pub(super) fn truncate_masked(&mut self, x: &RShare, bits: u32, mask: TruncationMask) -> Result<RShare> {
        let n = x.len();
        let TruncationMask { r_a, r_b, mut carries, carries_due } = mask;
        if r_a.len() != n {
            return Err(MpcError::Usage(format!("truncation: a mask for {} values, not {n}", r_a.len())));
        }
        let shape = x.shape().to_vec();
        let id = self.base.id;
        let f = bits as usize;
        // c = x + 2^62 + R, opened to parties 0 and 1: party 1 sends party 0 component 2
        // (party 2 vouches for it), party 2 sends party 1 component 0 (party 0 vouches). It
        // goes first, so that it shares a round with the carries when nothing came between.
        let r_mask =
            self.add(&self.component(0, &r_a, &r_a, &[n])?, &self.component(2, &r_b, &r_b, &[n])?)?;
        let flat = self.reshape(x, &[n])?;
        let masked = self.add(&flat, &r_mask)?;
        let masked = self.add_public(&masked, &RingTensor::new(vec![n], vec![1u64 << 62; n])?)?;
        let (mc, mn) = (masked.cur.data(), masked.next.data());
        let missing = match id {
            0 => {
                self.vouched.update(&words_bytes(mc));
                Some(self.base.net.recv_u64s(1, n)?)
            }
            1 => {
                let mut sent = mn.to_vec();
                self.tamper(Target::Truncate, &mut sent);
                self.base.net.send_u64s(0, &sent)?;
                Some(self.base.net.recv_u64s(HELPER, n)?)
            }
            _ => {
                let mut sent = mn.to_vec();
                self.tamper(Target::Truncate, &mut sent);
                self.base.net.send_u64s(1, &sent)?;
                self.vouched.update(&words_bytes(mc));
                None
            }
        };
        if let Some(m) = &missing {
            self.received.update(&words_bytes(m));
        }
        self.unchecked_openings += 1;
        let c: Vec<u64> = match &missing {
            Some(m) => (0..n).map(|i| mc[i].wrapping_add(mn[i]).wrapping_add(m[i])).collect(),
            None => vec![0; n],
        };
        if carries_due {
            carries.cur = self.base.net.recv_u64s(HELPER, n)?;
        }
        // r_a and r_b alone, XOR-shared as components 0 and 2 (no communication).
        let bits_a = self.bits_component(0, &r_a, &r_a);
        let bits_b = self.bits_component(2, &r_b, &r_b);
        // The carry into each bit (none into bit 0).
        let carry_in = self.bits_linear(&carries, &|w| w.iter().map(|v| v << 1).collect());
        let plane =
            |k: usize| move |w: &[u64]| pack_bits(&w.iter().map(|v| (v >> k) & 1).collect::<Vec<_>>());
        // msb(R) = a_63 ^ b_63 ^ c_63; the carry into bit f; the carry out w of r_a + r_b.
        let sum = self.bits_xor(&self.bits_xor(&bits_a, &bits_b), &carry_in);
        let msb_r = self.bits_linear(&sum, &plane(63));
        let carry_f = self.bits_linear(&carry_in, &plane(f));
        let wrap_r = self.bits_linear(&carries, &plane(63));
        // [msb(c) = 0] as component 1 (parties 0 and 1).
        let c_pos = pack_bits(&c.iter().map(|w| !w >> 63).collect::<Vec<_>>());
        let c_pos = self.bits_component(1, &c_pos, &c_pos);
        // One AND layer for both: the check of the carries (the carry out of bit i must be
        // maj(a_i, b_i, c_i) = ((a_i ^ c_i) & (b_i ^ c_i)) ^ c_i, 64 gates per element, and its
        // XOR with the claimed carries zero: by induction from c_0 = 0, every carry is then
        // right) and msb(R) & [msb(c) = 0], the wrap of x + 2^62 + R.
        let and_x = self.bits_xor(&bits_a, &carry_in);
        let and_y = self.bits_xor(&bits_b, &carry_in);
        let both =
            self.bits_and(&self.bits_concat(&[&and_x, &c_pos]), &self.bits_concat(&[&and_y, &msb_r]))?;
        let maj = self.bits_linear(&both, &|w| w[..n].to_vec());
        let wrap_c = self.bits_linear(&both, &|w| w[n..].to_vec());
        let error = self.bits_xor(&self.bits_xor(&maj, &carries), &carry_in);
        self.expect_zero(&error);
        // The three bits in arithmetic, one checked conversion.
        let all = self.bits_concat(&[&carry_f, &wrap_r, &wrap_c]);
        let all = self.bits_linear(&all, &|w| planes_to_packed(w, 3, n));
        let all = self.bits_to_arith(&all, &[3 * n])?;
        let pick =
            |k: usize| move |t: &RingTensor| RingTensor::new(vec![n], t.data()[k * n..(k + 1) * n].to_vec());
        let (carry_f, wrap_r, wrap_c) =
            (self.linear(&all, &pick(0))?, self.linear(&all, &pick(1))?, self.linear(&all, &pick(2))?);
        // The components: (c >> f) - 2^(62-f) in component 1, r_a >> f in 0, r_b >> f in 2.
        let public: Vec<u64> = c.iter().map(|v| (v >> f).wrapping_sub(1u64 << (62 - f))).collect();
        let public = self.component(1, &public, &public, &[n])?;
        let high = |v: &[u64]| v.iter().map(|w| w >> f).collect::<Vec<u64>>();
        let (high_a, high_b) = (high(&r_a), high(&r_b));
        let r_high = self
            .add(&self.component(0, &high_a, &high_a, &[n])?, &self.component(2, &high_b, &high_b, &[n])?)?;
        let k = self.add(&wrap_r, &wrap_c)?;
        let k = self.scale(&k, 1u64 << (64 - f))?;
        let y = self.sub(&public, &r_high)?;
        let y = self.sub(&y, &carry_f)?;
        let y = self.add(&y, &k)?;
        self.reshape(&y, &shape)
    }
}
