//! The checked truncation (see `Protocol::truncate` on [`Rep3Mal`]) in three steps: the mask
//! with what the helper inputs about it ([`Rep3Mal::truncation_mask`]), the opening of `c`
//! (of a shared value, `open_masked`, or straight from a product's terms, `open_terms` in
//! `fused.rs`: [`Rep3Mal::truncated_product`]), and the rest (`finish_truncation`). Two
//! rounds: the opening of `c` with the helper's messages, then one exchange between parties
//! 0 and 1 for the wrap.
//!
//! The code names the parties of one truncation in its *frame*: the helper, which knows the
//! whole mask, inputs what it knows of it and proves its carries, is party 2 of the frame,
//! and the masked value opens to parties 0 and 1. Each third of a truncation's elements has
//! its own frame, each party the helper of one third (since the eighteenth session; before,
//! one frame took all the elements and frames rotated from one truncation to the next), so
//! that every party sends and proves the same in every truncation; the frames share their
//! rounds. Every step is written with the frame's ids and components and with messages to
//! the next or previous party, which a rotation leaves as they are.
//!
//! **The mask and its correction.** The mask is `R = r_a + r_b`, `r_a` frame component 0
//! (drawn by parties 0 and 2 from their key) and `r_b` component 2 (parties 1 and 2), so
//! that neither opener knows it. With `c = x + 2^62 + R` (below `2^63 + R`, as `|x| < 2^62`),
//!
//! `(c >> f) - 2^(62-f) - (r_a >> f) - (r_b >> f) - A + 2^(64-f) W = x >> f` or `(x >> f) + 1`,
//!
//! where `A = k_f - 2^(64-f) k_w` with `k_f` the carry into bit `f` and `k_w` the carry out
//! of `r_a + r_b`, and `W = msb(R) (1 - msb(c))` the wrap of `x + 2^62 + R`. The helper
//! knows `A` and `M = msb(R)` and inputs them arithmetically, `A` as `a_a + a_b` and
//! `2^(64-f) M` (only its value mod `2^f` matters) as `m_a + m_b`, the `a` halves from the
//! key it shares with party 0 and the `b` halves sent to party 1; it also inputs the carries
//! of `r_a + r_b`, `a_a + a_b` and `m_a + m_b`, XOR-shared between components 0 and 2. It
//! proves the carries itself (`keep_helper_products`: it knows every component), so the bits
//! of the three sums are XOR-linear in what parties 0 and 1 hold, and the bits of `A` and
//! `2^(64-f) M` must be those that the carries of `R` determine: parties 0 and 1 compare their
//! halves of that difference by digest, as they compare the copies of an opening
//! (`check_helper_inputs`). No product is proved for `A` or `M`: until the eighteenth session
//! they were converted from bits (three ring terms from the helper, `-2 u v` for two carry
//! bits and one for the wrap's conversion) after an AND layer for `W`.
//!
//! **The wrap.** `msb(c)` is known to parties 0 and 1 (`n = 1 - msb(c)`), `M` to the helper,
//! so `2^(64-f) W = m_a n + m_b n`: party 0 knows `m_a n`, party 1 `m_b n`, and each sends
//! the other its term less a mask from its key with the helper (one round, `f` bits a value),
//! one checked product each ([`Gate::Cross`]; the helper proves nothing here).

use super::*;

mod checks;
mod fields;
mod fused;
use fields::{fields_len, high_aligned, high_mask, pack_high, unpack_high};

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

/// Which half of a helper's value, frame component 0 (`A`) or 2 (`B`), frame party `me` holds
/// on `side` (0: its `cur` component, 1: its `next`); `None` for component 1.
#[derive(Clone, Copy, PartialEq)]
enum Half {
    A,
    B,
}

fn half_at(me: usize, side: usize) -> Option<Half> {
    match (me, side) {
        (0, 0) | (2, 1) => Some(Half::A),
        (1, 1) | (2, 0) => Some(Half::B),
        _ => None,
    }
}

/// A value of the helper's as its halves, frame components 0 (`a`) and 2 (`b`), each empty
/// where this party does not hold it (arithmetic for the mask and the inputs, XOR for their
/// carries).
#[derive(Default)]
struct Halves {
    a: Vec<u64>,
    b: Vec<u64>,
}

impl Halves {
    /// This party's copy of the half it holds on `side`, if any.
    fn side(&self, me: usize, side: usize) -> Option<&[u64]> {
        match half_at(me, side)? {
            Half::A => Some(&self.a),
            Half::B => Some(&self.b),
        }
    }
    /// The half this party holds when it holds one and is not the helper (party 0: `a`,
    /// party 1: `b`).
    fn opener_half(&self, me: usize) -> &[u64] {
        if me == 0 {
            &self.a
        } else {
            &self.b
        }
    }
}

/// The carries of `a + b` per element: bit `i` is the carry into bit `i + 1`, bit 63 the
/// carry out (so the bits of the sum are `a ^ b ^ (carries << 1)`).
fn carries_of(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let (sum, out) = a.overflowing_add(*b);
            ((a ^ b ^ sum) >> 1) | ((out as u64) << 63)
        })
        .collect()
}

/// `A = k_f - 2^(64-f) k_w` as the carries `k` of `r_a + r_b` determine it: bit 0 is `k_f`
/// (bit `f - 1` of `k`), bits `64 - f` and up are `k_w` (bit 63), the rest zero. XOR-linear in
/// `k`, so halves of `k` give halves of it.
fn correction_bits(k: u64, f: usize) -> u64 {
    ((k >> (f - 1)) & 1) | (((k >> 63) & 1).wrapping_neg() & high_mask(f))
}

/// One frame's part of a truncation mask (a third of the elements, `range`), with the
/// helper's inputs: the halves this party holds of `R`, `A`, `2^(64-f) M` and of the three
/// sums' carries (see the module documentation). What the helper sends party 0 (the
/// carries' component 0, sent with the mask) and party 1 (the `b` halves of `A` and `M`,
/// sent with the opening, before the openers' messages on that link; in a truncated product
/// in one message with the helper's product term) is read by the opening (`open_masked`,
/// `open_terms`), after this party's own messages are out.
struct FrameMask {
    /// This party's id in the frame.
    me: usize,
    range: Range<usize>,
    r: Halves,
    a: Halves,
    m: Halves,
    kr: Halves,
    ka: Halves,
    km: Halves,
    /// The helper's message to party 1 (sent with the opening's copies).
    to_party_1: Vec<u64>,
}

/// A truncation mask for `n` values: one frame per third of the elements, each with another
/// helper (thirds with no element have none), so that every party sends and proves the
/// same in one truncation.
pub(super) struct TruncationMask {
    bits: u32,
    n: usize,
    frames: Vec<FrameMask>,
}

/// A product's terms before any resharing, for [`Rep3Mal::truncated_product`].
pub(super) struct ProductTerms {
    /// The product's shape.
    pub(super) shape: Vec<usize>,
    /// This party's additive term per element, `x_c (y_c + y_n) + x_n y_c` (no zero share).
    pub(super) z: Vec<u64>,
    /// Its records, each over the elements after the previous one's, their claim fields
    /// (`theirs`, `own`, `nxt`) empty.
    pub(super) records: Vec<Record>,
}

/// Truncation by `bits` works for 1 to 61 bits (the value lies below 2^62).
pub(super) fn check_truncation_bits(bits: u32) -> Result<()> {
    if bits == 0 || bits >= 62 {
        return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
    }
    Ok(())
}

/// A peer's truncation message with bits outside its fields.
fn stray_bits(peer: usize) -> MpcError {
    MpcError::CheatingDetected {
        phase: "a truncation message: bits set outside its fields".into(),
        party: Some(peer),
    }
}

/// The frame (by index into `frames`) in which this party has id `role`, if any.
fn frame_as(frames: &[FrameMask], role: usize) -> Option<usize> {
    frames.iter().position(|fr| fr.me == role)
}

impl Rep3Mal {
    /// Draws a mask for `n` values truncated by `bits`: third `t` of the elements in frame
    /// `truncations + t`, so that each party is the helper of one third. Each helper sends its
    /// frame's party 0 the carries' component 0 (component 2 is from the helper's key with
    /// party 1): one message, so no copy can differ from another. What the helpers claim is
    /// checked after the opening (`finish_truncation`), so no helper is trusted.
    pub(super) fn truncation_mask(&mut self, n: usize, bits: u32) -> Result<TruncationMask> {
        let base = self.truncations;
        self.truncations = (self.truncations + 1) % 3;
        let mut frames = Vec::with_capacity(3);
        for t in 0..3 {
            let range = t * n / 3..(t + 1) * n / 3;
            if !range.is_empty() {
                let me = Frame::new(base + t).me(self.base.id);
                frames.push(self.frame_mask(me, range, bits as usize)?);
            }
        }
        Ok(TruncationMask { bits, n, frames })
    }

    /// One frame's mask for the elements `range`, this party being frame party `me`.
    fn frame_mask(&mut self, me: usize, range: Range<usize>, f: usize) -> Result<FrameMask> {
        let n = range.len();
        let high = |v| high_aligned(v, f);
        let mut mask = FrameMask {
            me,
            range,
            r: Halves::default(),
            a: Halves::default(),
            m: Halves::default(),
            kr: Halves::default(),
            ka: Halves::default(),
            km: Halves::default(),
            to_party_1: Vec::new(),
        };
        // Component 0 is party 0's `cur` and party 2's `next`, drawn from their shared key;
        // component 2 party 2's `cur` and party 1's `next`. Each stream's draws come in the
        // same order at both of its holders (frames in the same order everywhere).
        match me {
            0 => {
                mask.r.a = self.base.draw(Stream::Own, n);
                mask.a.a = self.base.draw(Stream::Own, n);
                mask.m.a = high(self.base.draw(Stream::Own, n));
            }
            1 => {
                mask.r.b = self.base.draw(Stream::Next, n);
                mask.kr.b = self.base.draw(Stream::Next, n);
                mask.ka.b = self.base.draw(Stream::Next, n);
                mask.km.b = high(self.base.draw(Stream::Next, n));
            }
            _ => {
                let (r_a, a_a, m_a) = (
                    self.base.draw(Stream::Next, n),
                    self.base.draw(Stream::Next, n),
                    high(self.base.draw(Stream::Next, n)),
                );
                let r_b = self.base.draw(Stream::Own, n);
                let (kr_b, ka_b, km_b) = (
                    self.base.draw(Stream::Own, n),
                    self.base.draw(Stream::Own, n),
                    high(self.base.draw(Stream::Own, n)),
                );
                let kr = carries_of(&r_a, &r_b);
                let a_b: Vec<u64> =
                    kr.iter().zip(&a_a).map(|(k, a)| correction_bits(*k, f).wrapping_sub(*a)).collect();
                let m_b: Vec<u64> = r_a
                    .iter()
                    .zip(&r_b)
                    .zip(&m_a)
                    .map(|((x, y), m)| ((x.wrapping_add(*y) >> 63) << (64 - f)).wrapping_sub(*m))
                    .collect();
                let (a_b, m_b) = self.tamper_inputs(a_b, m_b, f);
                let (ka, km) = (carries_of(&a_a, &a_b), carries_of(&m_a, &m_b));
                let xor =
                    |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(a, b)| a ^ b).collect() };
                let (kr_a, ka_a, km_a) = (xor(&kr, &kr_b), xor(&ka, &ka_b), xor(&km, &km_b));
                let mut message = Vec::with_capacity(2 * n + fields_len(n, f));
                message.extend_from_slice(&kr_a);
                message.extend_from_slice(&ka_a);
                message.extend(pack_high(&km_a, f));
                if self.cheat.is_some() {
                    // The test harness's error in the mask's, the correction's or the sign's
                    // carries (its next three messages of the kind), as party 0 receives them.
                    let (mask_part, rest) = message.split_at_mut(n);
                    let (correction_part, sign_part) = rest.split_at_mut(n);
                    for part in [mask_part, correction_part, sign_part] {
                        self.tamper(Target::Carries, part);
                    }
                }
                // To party 0, the helper's next.
                self.base.net.send_u64s(self.base.next_party(), &message)?;
                let mut to_party_1 = Vec::with_capacity(n + fields_len(n, f));
                to_party_1.extend_from_slice(&a_b);
                to_party_1.extend(pack_high(&m_b, f));
                mask.to_party_1 = to_party_1;
                mask.r = Halves { a: r_a, b: r_b };
                mask.a = Halves { a: a_a, b: a_b };
                mask.m = Halves { a: m_a, b: m_b };
                mask.kr = Halves { a: kr_a, b: kr_b };
                mask.ka = Halves { a: ka_a, b: ka_b };
                mask.km = Halves { a: km_a, b: km_b };
            }
        }
        Ok(mask)
    }

    /// `truncate(product, bits)`, `bits` checked before the product, with the product's
    /// terms going straight into the opening of `c` (its replicated shares are never formed):
    /// 2 rounds, the opening and the wrap's exchange, where the product's resharing took one
    /// more (until the twenty-third session), and a word less per element in each frame.
    /// Frame party 0 sends party 1 `m0 = z_0 + r_a + nu`, party 1 sends party 0 `m1 = z_1 +
    /// r_b + nu'`, and the helper sends party 1 `mh = z_2 - nu` and party 0 `mh' = z_2 - nu'`
    /// (`z_j` the frame parties' product terms, `nu` from the key of parties 0 and 2, `nu'`
    /// from that of parties 1 and 2), so that each opener adds up `c = z_0 + z_1 + z_2 +
    /// 2^62 + R` and sees nothing else unmasked. `m0`, `m1` and `mh` are each its sender's
    /// product term less a mask one verifier holds, proved as every product is
    /// (`fill_claims`); `mh'` is not proved, but the openers compare their `c` by digest, and
    /// with the other three messages right only a right `mh'` gives party 0 party 1's `c`.
    pub(super) fn truncated_product(
        &mut self,
        bits: u32,
        terms: impl FnOnce(&mut Self) -> Result<ProductTerms>,
    ) -> Result<RShare> {
        check_truncation_bits(bits)?;
        let ProductTerms { shape, z, records } = terms(self)?;
        let mut mask = self.truncation_mask(z.len(), bits)?;
        let cs = self.open_terms(&z, records, &mut mask.frames, bits as usize)?;
        self.finish_truncation(&shape, mask, cs)
    }

    /// Truncates `x` with a mask from [`Rep3Mal::truncation_mask`] for its length (see the
    /// module documentation), all frames at once, so that they share their rounds: the
    /// helpers' inputs and the openings of `c = x + 2^62 + R` (each party sends every message
    /// of the round before it reads any; on a link, a helper's message before an opener's),
    /// the checks recorded, the wrap's exchange, and the result.
    pub(super) fn truncate_masked(&mut self, x: &RShare, mut mask: TruncationMask) -> Result<RShare> {
        if mask.n != x.len() {
            return Err(MpcError::Usage(format!(
                "truncation: a mask for {} values, not {}",
                mask.n,
                x.len()
            )));
        }
        let cs = self.open_masked(x, &mut mask.frames, mask.bits as usize)?;
        self.finish_truncation(x.shape(), mask, cs)
    }

    /// The opening of `c = x + 2^62 + R` at each frame's parties 0 and 1, with the helpers'
    /// inputs to them; `c` per frame (empty where this party is the helper).
    ///
    /// Written with this party's two components (frame components `me` and `me + 1`) as
    /// plain vectors, each value formed in one pass where it is needed.
    fn open_masked(&mut self, x: &RShare, frames: &mut [FrameMask], f: usize) -> Result<Vec<Vec<u64>>> {
        let (prev, next) = (self.base.prev(), self.base.next_party());
        let id = self.base.id;
        let (xc, xn) = (x.cur.data(), x.next.data());
        // c's parts of frame `fr` on `side`: x's component plus the mask's half held there,
        // and the public 2^62 in component 0 (not the frame's: party 0's cur and party 2's
        // next, as `add_public`).
        let masked = |fr: &FrameMask, side: usize| -> Vec<u64> {
            let words = &[xc, xn][side][fr.range.clone()];
            let public = if (side == 0 && id == 0) || (side == 1 && id == 2) { 1u64 << 62 } else { 0 };
            match fr.r.side(fr.me, side) {
                Some(r) => {
                    words.iter().zip(r).map(|(w, r)| w.wrapping_add(*r).wrapping_add(public)).collect()
                }
                None => words.iter().map(|w| w.wrapping_add(public)).collect(),
            }
        };
        // Sends, in this order on each link: as the helper, its inputs to party 1 (its
        // previous); as party 0, c's component 0 to party 1 (its next); as party 1, c's
        // component 2 to party 0 (its previous). Party 2 (the helper) vouches for both.
        if let Some(k) = frame_as(frames, 2) {
            let to_party_1 = std::mem::take(&mut frames[k].to_party_1);
            self.base.net.send_u64s(prev, &to_party_1)?;
        }
        let mut kept = Vec::with_capacity(2);
        for (role, to, side) in [(0, next, 0), (1, prev, 1)] {
            if let Some(k) = frame_as(frames, role) {
                let sent = masked(&frames[k], side);
                if self.cheat.is_some() {
                    // The test harness's error goes into the message, not into this party's c.
                    let mut tampered = sent.clone();
                    self.tamper(Target::Truncate, &mut tampered);
                    self.base.net.send_u64s(to, &tampered)?;
                } else {
                    self.base.net.send_u64s(to, &sent)?;
                }
                kept.push((k, sent, masked(&frames[k], 1 - side)));
            }
        }
        // Reads, in the order of the sends: from the previous party the carries of the frame
        // whose helper it is (sent with the mask), then its copy of c as party 0; from the
        // next party its inputs as helper, then its copy of c as party 1.
        self.read_carries(frames, f, 0)?;
        let mut missing = [None, None];
        if let Some(k) = frame_as(frames, 1) {
            missing[1] = Some(self.base.net.recv_u64s(prev, frames[k].range.len())?);
            self.read_party_1_inputs(frames, f, 0)?;
        }
        if let Some(k) = frame_as(frames, 0) {
            missing[0] = Some(self.base.net.recv_u64s(next, frames[k].range.len())?);
        }
        // c at parties 0 and 1 of each frame; the copies' digests, frame by frame.
        let mut cs: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (k, sent, other) in kept {
            let role = frames[k].me;
            let got = missing[role].take().expect("the copy of c was read");
            if role == 0 {
                self.received.update(&musket_net::le_bytes(&got));
            } else {
                self.received_from_prev.update(&musket_net::le_bytes(&got));
            }
            cs[k] = (0..got.len()).map(|i| sent[i].wrapping_add(other[i]).wrapping_add(got[i])).collect();
        }
        if let Some(k) = frame_as(frames, 2) {
            self.vouched.update(&musket_net::le_bytes(&masked(&frames[k], 0)));
            self.vouched_for_prev.update(&musket_net::le_bytes(&masked(&frames[k], 1)));
        }
        // Every party counts both directions, so that all of them compare digests together.
        self.unchecked_openings += 1;
        self.unchecked_from_prev += 1;
        Ok(cs)
    }

    /// As party 0 of a frame: the helper's carries (sent with the mask), then `extra` words
    /// more from it, returned.
    fn read_carries(&mut self, frames: &mut [FrameMask], f: usize, extra: usize) -> Result<Vec<u64>> {
        let prev = self.base.prev();
        let Some(k) = frame_as(frames, 0) else { return Ok(Vec::new()) };
        let fr = &mut frames[k];
        let len = fr.range.len();
        let words = self.base.net.recv_u64s(prev, 2 * len + fields_len(len, f))?;
        fr.km.a = unpack_high(&words[2 * len..], len, f).ok_or_else(|| stray_bits(prev))?;
        fr.ka.a = words[len..2 * len].to_vec();
        fr.kr.a = words[..len].to_vec();
        if extra == 0 {
            return Ok(Vec::new());
        }
        Ok(self.base.net.recv_u64s(prev, extra)?)
    }

    /// As party 1 of a frame: the helper's inputs of the `b` halves, followed in the same
    /// message by `extra` words, returned.
    fn read_party_1_inputs(&mut self, frames: &mut [FrameMask], f: usize, extra: usize) -> Result<Vec<u64>> {
        let next = self.base.next_party();
        let Some(k) = frame_as(frames, 1) else { return Ok(Vec::new()) };
        let fr = &mut frames[k];
        let len = fr.range.len();
        let words = self.base.net.recv_u64s(next, len + fields_len(len, f) + extra)?;
        let inputs = len + fields_len(len, f);
        fr.m.b = unpack_high(&words[len..inputs], len, f).ok_or_else(|| stray_bits(next))?;
        fr.a.b = words[..len].to_vec();
        Ok(words[inputs..].to_vec())
    }

    /// What follows the opening of `c` in both truncations: each helper proves its three
    /// sums' carries, without a message, so that the bits of `A` and `2^(64-f) M` are
    /// XOR-linear in the halves and its parties 0 and 1 compare theirs; the wrap's exchange;
    /// the result.
    fn finish_truncation(
        &mut self,
        shape: &[usize],
        mask: TruncationMask,
        cs: Vec<Vec<u64>>,
    ) -> Result<RShare> {
        let TruncationMask { bits, n, mut frames } = mask;
        let f = bits as usize;
        for fr in &frames {
            self.keep_helper_products(fr.me, &fr.r, &fr.kr, None)?;
            self.keep_helper_products(fr.me, &fr.a, &fr.ka, None)?;
            self.keep_helper_products(fr.me, &fr.m, &fr.km, Some(f))?;
        }
        for fr in &frames {
            self.check_helper_inputs(fr.me, f, [&fr.r, &fr.kr, &fr.a, &fr.ka, &fr.m, &fr.km]);
        }
        let wraps = self.wraps(f, &mut frames, &cs)?;
        // The result, a third at a time: (c >> f) - 2^(62-f) in component 1 (frame party 0's
        // next, 1's cur), minus r_a >> f and a_a in component 0, r_b >> f and a_b in
        // component 2, plus 2^(64-f) W's components.
        let public = |v: u64| (v >> f).wrapping_sub(1u64 << (62 - f));
        // Frames hold consecutive thirds in order, so each side is their parts appended.
        let (mut cur, mut nxt) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for ((fr, c), w) in frames.iter().zip(&cs).zip(wraps) {
            for (side, (out, w)) in [&mut cur, &mut nxt].into_iter().zip(w).enumerate() {
                match half_at(fr.me, side) {
                    None => out.extend(w.iter().zip(c).map(|(w, v)| w.wrapping_add(public(*v)))),
                    Some(_) => {
                        let (rs, as_) = (fr.r.side(fr.me, side), fr.a.side(fr.me, side));
                        let (rs, as_) = (rs.expect("the mask's half"), as_.expect("the correction's half"));
                        out.extend(
                            w.iter()
                                .zip(rs)
                                .zip(as_)
                                .map(|((w, r), a)| w.wrapping_sub(r >> f).wrapping_sub(*a)),
                        );
                    }
                }
            }
        }
        self.base.share(shape, cur, nxt)
    }

    /// The components `[cur, next]` of `2^(64-f) W`, `W = msb(R) (1 - msb(c))`, per frame,
    /// from `2^(64-f) M = m_a + m_b` (high-aligned halves) and `n = 1 - msb(c)`, which the
    /// frame's parties 0 and 1 know: party 0 sends party 1 `e0 = m_a n - z0` and party 1
    /// sends party 0 `e1 = m_b n - z2` (`z0`, `z2` from each one's key with the helper,
    /// high-aligned, so the messages are their top `f` bits), and the components are `z0`,
    /// `e0 + e1`, `z2`. Each message is one product, `m_a * n` with `m_a` known to party 0's
    /// previous (the helper) and `n` to its next, `n * m_b` with `n` known to party 1's
    /// previous and `m_b` to its next ([`Gate::Cross`], the helper's statement empty). One
    /// round for all frames: a party sends its term as party 0 (to its next) and as party 1
    /// (to its previous), then reads the other two.
    /// The frames' sign halves are moved into the records: nothing after the wrap reads them.
    fn wraps(&mut self, f: usize, frames: &mut [FrameMask], cs: &[Vec<u64>]) -> Result<Vec<[Vec<u64>; 2]>> {
        let high = |v| high_aligned(v, f);
        let (prev, next) = (self.base.prev(), self.base.next_party());
        // 1 - msb(c), a 0/1 word per element, at parties 0 and 1.
        let mut positive: Vec<Vec<u64>> = cs.iter().map(|c| c.iter().map(|v| !v >> 63).collect()).collect();
        // Draws and terms, frame by frame: party 0 z0 (its own stream), party 1 z2 (its
        // next), the helper both.
        let mut draws: Vec<[Vec<u64>; 2]> = Vec::with_capacity(frames.len());
        let mut sent: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (k, fr) in frames.iter().enumerate() {
            let len = fr.range.len();
            let z = match fr.me {
                0 => [high(self.base.draw(Stream::Own, len)), Vec::new()],
                1 => [Vec::new(), high(self.base.draw(Stream::Next, len))],
                _ => [high(self.base.draw(Stream::Next, len)), high(self.base.draw(Stream::Own, len))],
            };
            if fr.me < 2 {
                let (half, z) = if fr.me == 0 { (&fr.m.a, &z[0]) } else { (&fr.m.b, &z[1]) };
                sent[k] =
                    (0..len).map(|i| (half[i] & positive[k][i].wrapping_neg()).wrapping_sub(z[i])).collect();
            }
            draws.push(z);
        }
        for (role, to) in [(0, next), (1, prev)] {
            if let Some(k) = frame_as(frames, role) {
                // The test harness's error, in this party's own term too, so that only the
                // proof of the message can catch it.
                self.tamper_fields(Target::Convert, &mut sent[k], f);
                self.base.net.send_u64s(to, &pack_high(&sent[k], f))?;
            }
        }
        let mut received: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (role, from) in [(1, prev), (0, next)] {
            if let Some(k) = frame_as(frames, role) {
                let len = frames[k].range.len();
                let got = self.base.net.recv_u64s(from, fields_len(len, f))?;
                received[k] = unpack_high(&got, len, f).ok_or_else(|| stray_bits(from))?;
            }
        }
        let mut out = Vec::with_capacity(frames.len());
        for (k, (fr, [z0, z2])) in frames.iter_mut().zip(draws).enumerate() {
            let len = fr.range.len();
            let zeros = || vec![0u64; len];
            let theirs = std::mem::take(&mut received[k]);
            let mine = std::mem::take(&mut sent[k]);
            let sum = |a: &[u64], b: &[u64]| -> Vec<u64> {
                a.iter().zip(b).map(|(a, b)| a.wrapping_add(*b)).collect()
            };
            let positive = std::mem::take(&mut positive[k]);
            let (record, comps) = match fr.me {
                0 => {
                    let z1 = sum(&mine, &theirs);
                    let rec = Record {
                        gate: Gate::Cross { prover: 1, a: 1, b: 0 },
                        xc: std::mem::take(&mut fr.m.a),
                        yc: positive.clone(),
                        xn: positive,
                        theirs,
                        yn: Vec::new(),
                        own: zeros(),
                        nxt: Vec::new(),
                        own_at: None,
                    };
                    (rec, [z0, z1])
                }
                1 => {
                    let z1 = sum(&theirs, &mine);
                    let rec = Record {
                        gate: Gate::Cross { prover: 1, a: 0, b: 1 },
                        xc: positive.clone(),
                        yc: std::mem::take(&mut fr.m.b),
                        xn: Vec::new(),
                        theirs: zeros(),
                        yn: positive,
                        own: theirs,
                        nxt: Vec::new(),
                        own_at: None,
                    };
                    (rec, [z1, z2])
                }
                _ => {
                    let rec = Record {
                        gate: Gate::Cross { prover: 0, a: 1, b: 1 },
                        xc: Vec::new(),
                        yc: Vec::new(),
                        xn: std::mem::take(&mut fr.m.a),
                        theirs: z0.clone(),
                        yn: std::mem::take(&mut fr.m.b),
                        own: z2.clone(),
                        nxt: Vec::new(),
                        own_at: None,
                    };
                    (rec, [z2, z0])
                }
            };
            self.keep_cross(record)?;
            out.push(comps);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_bits_are_the_carries_arithmetic() {
        // A = k_f - 2^(64-f) k_w, for each of the four pairs of carry bits and several f.
        for f in [1usize, 2, 16, 40, 61] {
            for (kf, kw) in [(0u64, 0u64), (0, 1), (1, 0), (1, 1)] {
                let k = (kf << (f - 1)) | (kw << 63);
                let want = kf.wrapping_sub(kw << (64 - f));
                assert_eq!(correction_bits(k, f), want, "f {f} k_f {kf} k_w {kw}");
            }
        }
    }

    #[test]
    fn the_sum_of_halves_has_the_bits_the_carries_say() {
        let (a, b) = ([u64::MAX, 1 << 63, 12345], [1u64, 1 << 63, u64::MAX - 5]);
        for ((x, y), k) in a.iter().zip(&b).zip(carries_of(&a, &b)) {
            assert_eq!(x ^ y ^ (k << 1), x.wrapping_add(*y));
            assert_eq!(k >> 63, u64::from(x.checked_add(*y).is_none()));
        }
    }
}
