//! What the helper's inputs are checked by: its own proof of the three sums' carries
//! ([`Rep3Mal::keep_helper_products`]) and the openers' comparison of the bits they imply
//! ([`Rep3Mal::check_helper_inputs`]); and the test harness's consistent deviation.

use super::fields::{high_aligned, pack_high, pack_high_from};
use super::{correction_bits, Halves};
use crate::malicious::record::{Gate, Record, Role};
use crate::malicious::{Rep3Mal, Target, BATCH_TERMS_BINARY};
use musket_core::Result;

impl Rep3Mal {
    /// The test harness's deviation of a cheating helper in its inputs `A` and `2^(64-f) M`
    /// (their `b` halves, as one message: the first word is `a_b`'s, the last `m_b`'s), made
    /// before their carries are computed, so that the helper is consistent with itself and
    /// only the comparison of the bits they imply can catch it (`check_helper_inputs`).
    /// `m_b` stays high-aligned: an error below its top `f` bits is no deviation.
    pub(super) fn tamper_inputs(&mut self, a_b: Vec<u64>, m_b: Vec<u64>, f: usize) -> (Vec<u64>, Vec<u64>) {
        if self.cheat.is_none() {
            return (a_b, m_b);
        }
        let n = a_b.len();
        let mut both = a_b;
        both.extend_from_slice(&m_b);
        self.tamper(Target::MaskInput, &mut both);
        let m_b = high_aligned(both.split_off(n), f);
        (both, m_b)
    }

    /// The test harness's deviation in a message of high-aligned `f`-bit values (`values`,
    /// before packing): its error folded into the top `f` bits (its low bit and its top
    /// `f` bits, so that 1 and 2^63 both change the value) and added to the first or the last
    /// value, which stays high-aligned, so that the deviation is in the message whatever
    /// the value's place in a packed word.
    pub(super) fn tamper_fields(&mut self, target: Target, values: &mut [u64], f: usize) {
        if values.is_empty() {
            return;
        }
        // The harness adds its error to this word when this is the message it targets.
        let mut error = [0u64];
        self.tamper(target, &mut error);
        if error[0] == 0 {
            return;
        }
        let folded = ((error[0] | (error[0] >> (64 - f))) & (u64::MAX >> (64 - f))) << (64 - f);
        let at = if self.cheat.is_some_and(|c| c.last_word) { values.len() - 1 } else { 0 };
        values[at] = values[at].wrapping_add(folded);
    }

    /// The check that the helper input `A` and `2^(64-f) M` as the mask's carries determine
    /// them: with the carries proved (`keep_helper_products`), the bits of `a_a + a_b` are
    /// `a_a ^ a_b ^ (ka << 1)` and must equal [`correction_bits`] of the carries of `R`, and
    /// the top `f` bits of `m_a + m_b` must be `msb(R) = r_a63 ^ r_b63 ^ (carry into bit 63)`
    /// at bit `64 - f`, the lowest of them, and zeros above it. Both differences are
    /// XOR-linear, so party 0 forms its half from component 0, party 1 from component 2, and
    /// the two halves must be equal: party 0 adds
    /// its half to the digest it sends party 1 (`vouched`), party 1 to the one it compares it
    /// with (`received`), as for an opening's copies, without a message. A false claim by the
    /// helper makes the halves differ; a party that lies about its half can only cause an
    /// abort.
    pub(super) fn check_helper_inputs(&mut self, me: usize, f: usize, halves: [&Halves; 6]) {
        let [r, kr, a, ka, m, km] = halves.map(|h| h.opener_half(me));
        if me == 2 {
            // Counted at every party, so that all compare digests together.
            self.unchecked_openings += 1;
            return;
        }
        let mut words: Vec<u64> =
            (0..a.len()).map(|i| a[i] ^ (ka[i] << 1) ^ correction_bits(kr[i], f)).collect();
        let sign: Vec<u64> = (0..m.len())
            .map(|i| m[i] ^ (km[i] << 1) ^ (((r[i] >> 63) ^ ((kr[i] >> 62) & 1)) << (64 - f)))
            .collect();
        words.extend(pack_high(&sign, f));
        let bytes = musket_net::le_bytes(&words);
        if me == 0 {
            self.vouched.update(&bytes);
        } else {
            self.received.update(&bytes);
        }
        self.unchecked_openings += 1;
    }

    /// Records the statement `x & y = z` for XOR-shared words whose component 1 is zero in
    /// all three (so party 2 knows every component) for party 2 to prove, with no message: a
    /// [`Gate::OneProver`] record (binary), in party 2's statement only, whose claim shares
    /// are what the verifiers hold of `z`, not a received product. Party 2's term
    /// `(x_2 ^ x_0) (y_2 ^ y_0) = x & y` must equal `z_0 ^ z_2`, its verifier A (party 1)
    /// holding `z_2` and B (party 0) `z_0` (as `z_0 ^ x_0 y_0` in `own`, to which a product's
    /// B adds `x_0 y_0`): true exactly when `x & y = z`, bit by bit. Here `x = a ^ carry_in`,
    /// `y = b ^ carry_in` and `z = carries ^ carry_in`, with `carry_in = carries << 1`, for a
    /// sum `a + b` of halves (`v`) and its claimed carries (`carries`): by induction from the
    /// carry into bit 0, zero, every carry is then right. With `fields` (`f`), the values are
    /// high-aligned and only their top `f` bits are proved, packed end to end (the
    /// bits below are zero in every half, and so is the carry into the lowest of the `f`).
    /// `me` is this party's id in the truncation's frame (the helper is frame party 2).
    ///
    /// Each party keeps only what its role reads (twenty-fourth session): party 2 its
    /// factors `x`, `y` whole (in `xc`, `yc`), party 1 (A) its `x_2`, `y_2`, `z_2` (in `xn`,
    /// `yn`, `theirs`), party 0 (B) its `x_0`, `y_0` and claim (in `xc`, `yc`, `own`), each
    /// formed in one pass: three words a gate word at the verifiers and two at the prover,
    /// where each party kept six (at the verifiers half of them zeros, at the prover two,
    /// which no statement read).
    pub(super) fn keep_helper_products(
        &mut self,
        me: usize,
        v: &Halves,
        carries: &Halves,
        fields: Option<usize>,
    ) -> Result<()> {
        let n = v.a.len().max(v.b.len());
        // The halves (the value's and its carries') this party holds on `side`.
        let at = |side: usize| -> (&[u64], &[u64]) {
            (
                v.side(me, side).expect("the value's half on this side"),
                carries.side(me, side).expect("the carries' half on this side"),
            )
        };
        // About BATCH_TERMS_BINARY / 128 words a piece, packed or not.
        let piece = (BATCH_TERMS_BINARY / 128) * fields.map_or(1, |f| 64 / f);
        for start in (0..n).step_by(piece.max(1)) {
            let range = start..(start + piece).min(n);
            let len = range.len();
            let rec = match me {
                // B holds half A on its `cur` side: its shares x_0 = a ^ (k_a << 1) and
                // y_0 = k_a << 1 (the carry-in's share), z_0 = k_a ^ (k_a << 1).
                0 => {
                    let (own, k) = at(0);
                    let (own, k) = (&own[range.clone()], &k[range]);
                    let xc = emit(own.iter().zip(k).map(|(o, k)| o ^ (k << 1)), len, fields);
                    let yc = emit(k.iter().map(|k| k << 1), len, fields);
                    // z ^ (x & y), the claim share before B adds its own product.
                    let claim = emit(
                        own.iter().zip(k).map(|(o, k)| (k ^ (k << 1)) ^ ((o ^ (k << 1)) & (k << 1))),
                        len,
                        fields,
                    );
                    Record {
                        gate: Gate::OneProver { role: Role::B },
                        xc,
                        yc,
                        own: claim,
                        ..Default::default()
                    }
                }
                // A holds half B on its `next` side: x_2 = k_b << 1, y_2 = b ^ (k_b << 1),
                // z_2 = k_b ^ (k_b << 1).
                1 => {
                    let (own, k) = at(1);
                    let (own, k) = (&own[range.clone()], &k[range]);
                    let xn = emit(k.iter().map(|k| k << 1), len, fields);
                    let yn = emit(own.iter().zip(k).map(|(o, k)| o ^ (k << 1)), len, fields);
                    let theirs = emit(k.iter().map(|k| k ^ (k << 1)), len, fields);
                    Record { gate: Gate::OneProver { role: Role::A }, xn, yn, theirs, ..Default::default() }
                }
                // The prover holds both: half B on `cur`, half A on `next`; its factors are the
                // XOR of the two sides' shares, `x = a ^ carry_in`, `y = b ^ carry_in` with the
                // whole carry-in `carry_in = (k_a ^ k_b) << 1`.
                _ => {
                    let ((b, kb), (a, ka)) = (at(0), at(1));
                    let (b, kb, a, ka) =
                        (&b[range.clone()], &kb[range.clone()], &a[range.clone()], &ka[range]);
                    let carry_in = |i: usize| (kb[i] << 1) ^ (ka[i] << 1);
                    let xc = emit((0..len).map(|i| carry_in(i) ^ a[i]), len, fields);
                    let yc = emit((0..len).map(|i| carry_in(i) ^ b[i]), len, fields);
                    Record { gate: Gate::OneProver { role: Role::Prover }, xc, yc, ..Default::default() }
                }
            };
            self.pending_words += rec.words();
            self.binary.push(rec);
        }
        self.check_pending()?;
        Ok(())
    }
}

/// The `n` values of `values`, as they are (`fields` `None`) or packed into `f`-bit fields
/// from their top bits ([`pack_high_from`]).
fn emit(values: impl Iterator<Item = u64>, n: usize, fields: Option<usize>) -> Vec<u64> {
    match fields {
        Some(f) => pack_high_from(values, n, f),
        None => values.take(n).collect(),
    }
}
