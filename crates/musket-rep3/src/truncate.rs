//! Exact 3PC truncation with a rotating helper.
//!
//! For `|x| < 2^62`, `v = x + 2^62` lies in `[0, 2^63)`. Party "B" opens `c = v + r` for a
//! 64-bit mask `r = r_a + r_b` that neither it nor party "A" knows: `r_a` is a PRF draw A
//! shares with the third party (the helper), `r_b` one B shares with the helper. With
//! `T = r >> f` and `wrap = msb(r) (1 - msb(c))` (the sum `v + r` wrapped past 2^64 exactly
//! then, because `v < 2^63`),
//!
//! `trunc(x) = (c >> f) - 2^(62-f) + wrap 2^(64-f) - T`, which is `floor(x / 2^f)` or one more
//! (the borrow of the discarded low bits).
//!
//! Only the helper knows `T` and `msb(r)`: it sends B its share of `T` (one word) and of
//! `msb(r)` modulo `2^f` (f bits, since it is multiplied by `2^(64-f)`); A's shares `t_a`,
//! `m_a` come from the PRF it shares with the helper. Only B opens `c`: A sends it its share
//! (and for product terms, the helper its term masked by a PRF word of A and the helper that
//! A's share carries the other way). The result is then B's part
//! `y_B = (c >> f) - 2^(62-f) - t_b + [msb(c) = 0] m_b 2^(64-f)` plus A's part
//! `y_A(msb(c)) = -t_a + [msb(c) = 0] m_a 2^(64-f)`, which depends on c only through its top
//! bit. The three components of the replicated result are then
//! - component B (A and B): `rho`, a PRF word of A and B;
//! - component A (A and the helper): `y_A(msb(c)) + sigma_msb(c)`, with `sigma_0`, `sigma_1`
//!   PRF words of A and B. A sends the helper both candidates in round 1, ordered by a PRF
//!   bit `o` of A and B; in round 2 B tells A `msb(c)` and the helper `msb(c) xor o`, which
//!   picks the right one without telling the helper which it is;
//! - component h (B and the helper): `y_B - sigma_msb(c) - rho`, sent by B in round 2.
//!
//! Each message is masked by a PRF word its receiver lacks: the helper sees two candidates
//! under independent masks, a uniformly random pick bit, and component h under `rho`; A sees
//! only `msb(c)`; B sees `c` (as before) and the helper's shares. Waiting for `msb(c)` costs A
//! no round: its candidates leave in round 1.
//!
//! Messages per element: A sends B one word and the helper two (round 1), the helper sends B
//! one word and `w` bits (round 1; `w` is f rounded up to 8, 16, 32 or 64) and from product
//! terms its masked term (one word), and B sends A one bit and the helper one word and one bit
//! (round 2). The elements are cut into three chunks and each party is the helper of one, A of
//! another and B of the third, so every party sends about `(5 + (w + 2)/64) / 3` words per
//! element (1.76 at f = 16), and from product terms `(6 + (w + 2)/64) / 3` (2.09; the
//! product's own re-sharing, one word each, is not needed). When A and B both opened `c` and
//! re-shared their additive parts, product terms cost `(7 + w/64) / 3` (2.42) in as many
//! rounds.

use musket_core::{MpcError, Result};

use crate::conversions::thirds;
use crate::party::{Rep3, Stream};
use crate::RShare;

/// Bits of each packed share of `msb(r)`: the smallest of 8, 16, 32, 64 that holds `bits`.
fn packed_width(bits: u32) -> u32 {
    bits.next_power_of_two().clamp(8, 64)
}

/// Value `k` of words packed `width` bits each, `64 / width` values per word, value `k` at
/// bit `(k % per) * width` of word `k / per` (as [`pack_msb_shares`] packs them).
fn packed_value(words: &[u64], k: usize, width: u32) -> u64 {
    let per = (64 / width) as usize;
    (words[k >> per.trailing_zeros()] >> ((k & (per - 1)) as u32 * width)) & width_mask(width)
}

/// The low `width` bits.
fn width_mask(width: u32) -> u64 {
    if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

fn packed_len(n: usize, width: u32) -> usize {
    n.div_ceil((64 / width) as usize)
}

/// What is truncated: a replicated sharing, or this party's additive term of a product
/// before its re-sharing (the terms of the three parties sum to the value).
pub(crate) enum Truncand<'a> {
    /// `(s_i, s_{i+1})`.
    Replicated(&'a RShare),
    /// `z_i`, with `z_0 + z_1 + z_2` the value.
    Terms(&'a [u64]),
}

/// Randomness of one chunk, drawn up front in a fixed order so that each pair of parties
/// reads its shared PRF in step.
#[derive(Default)]
struct ChunkDraws {
    /// A's part of the mask (A and the helper).
    r_a: Vec<u64>,
    /// A's shares of `T` and `msb(r)` (A and the helper).
    t_a: Vec<u64>,
    m_a: Vec<u64>,
    /// The mask of the helper's term on its way to B (A and the helper); product terms only.
    to_b: Vec<u64>,
    /// B's part of the mask (B and the helper).
    r_b: Vec<u64>,
    /// The masks of A's two candidates, for `msb(c)` = 0 and 1 (A and B).
    sigma: [Vec<u64>; 2],
    /// The order of A's candidates, one bit an element, packed (A and B).
    order: Vec<u64>,
}

/// This party's role in a chunk.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Helper,
    A,
    B,
}

impl Rep3 {
    /// See the module documentation. `shape` is the result's.
    ///
    /// The loops go 64 elements at a time (one word of packed bits), branch-free, and write
    /// the messages and the result's components in place: component B's PRF words are drawn
    /// straight into the result, B's component h is computed there, and the round-1 messages
    /// are written into their frames.
    pub(crate) fn truncate_rotating(
        &mut self,
        x: Truncand<'_>,
        shape: &[usize],
        bits: u32,
    ) -> Result<RShare> {
        if bits == 0 || bits >= 62 {
            return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
        }
        let terms = matches!(x, Truncand::Terms(_));
        // Our two words of each element: the components, or our term and zero.
        let (xc, xn): (&[u64], &[u64]) = match x {
            Truncand::Replicated(s) => (s.cur.data(), s.next.data()),
            Truncand::Terms(z) => (z, &[]),
        };
        let n = xc.len();
        let width = packed_width(bits);
        // Chunk h (helper h) covers elements bounds[h]..bounds[h+1].
        let bounds = thirds(n);
        let len = |h: usize| bounds[h + 1] - bounds[h];
        let range = |h: usize| bounds[h]..bounds[h + 1];
        let id = self.id;
        let role = |h: usize| match (id + 3 - h) % 3 {
            0 => Role::Helper,
            1 => Role::A,
            _ => Role::B,
        };
        // The result's components. Component B (rho, a PRF word of A and B) is drawn into
        // place: A's `next`, B's `cur`.
        let mut cur = vec![0u64; n];
        let mut nxt = vec![0u64; n];
        // The helper is our previous party when we are A, our next when we are B. A's and the
        // helper's stream: A's `own`, the helper's `next`; B's and the helper's: B's `next`,
        // the helper's `own`; A's and B's: A's `next`, B's `own`.
        let mut draws: [ChunkDraws; 3] = Default::default();
        for (h, d) in draws.iter_mut().enumerate() {
            let m = len(h);
            let (with_helper, with_other) = match role(h) {
                Role::Helper => (Stream::Next, Stream::Own),
                Role::A => (Stream::Own, Stream::Next),
                Role::B => (Stream::Next, Stream::Own),
            };
            if role(h) != Role::B {
                d.r_a = self.draw(with_helper, m);
                d.t_a = self.draw(with_helper, m);
                d.m_a = self.draw(with_helper, m);
                if terms {
                    d.to_b = self.draw(with_helper, m);
                }
            }
            match role(h) {
                Role::Helper => d.r_b = self.draw(with_other, m),
                Role::B => {
                    d.r_b = self.draw(with_helper, m);
                    self.draw_into(with_other, &mut cur[range(h)]);
                }
                Role::A => self.draw_into(with_other, &mut nxt[range(h)]),
            }
            if role(h) != Role::Helper {
                d.sigma = [self.draw(with_other, m), self.draw(with_other, m)];
                d.order = self.draw(with_other, m.div_ceil(64));
            }
        }
        let (helper_chunk, a_chunk, b_chunk) = (self.id, (self.id + 2) % 3, (self.id + 1) % 3);
        let (da, db, dh) = (&draws[a_chunk], &draws[b_chunk], &draws[helper_chunk]);
        let shift = 64 - bits;

        // Round 1. A sends B its share of c (its word plus r_a, plus for product terms the
        // mask of the helper's term) and the helper its two candidates for component A, in
        // the order of the bit it shares with B. The helper sends B its masked term (product
        // terms), T - t_a and the packed msb(r) - m_a. B sends nothing.
        let (na, nb, nh) = (len(a_chunk), len(b_chunk), len(helper_chunk));
        let extra = usize::from(terms);
        let (prev, next) = (self.prev(), self.next_party());
        let x_a = &xc[range(a_chunk)];
        self.net.send_u64s_with(next, na, |out| {
            if terms {
                for (((o, x), r), m) in out.iter_mut().zip(x_a).zip(&da.r_a).zip(&da.to_b) {
                    *o = x.wrapping_add(*r).wrapping_add(*m);
                }
            } else {
                for ((o, x), r) in out.iter_mut().zip(x_a).zip(&da.r_a) {
                    *o = x.wrapping_add(*r);
                }
            }
        })?;
        let x_h = &xc[range(helper_chunk)];
        self.net.send_u64s_with(prev, 2 * na + (1 + extra) * nh + packed_len(nh, width), |out| {
            let (candidates, rest) = out.split_at_mut(2 * na);
            write_candidates(candidates, da, shift);
            let (masked, rest) = rest.split_at_mut(extra * nh);
            for ((o, x), m) in masked.iter_mut().zip(x_h).zip(&dh.to_b) {
                *o = x.wrapping_sub(*m);
            }
            let (high_r, msb_packed) = rest.split_at_mut(nh);
            for (((o, ra), rb), t) in high_r.iter_mut().zip(&dh.r_a).zip(&dh.r_b).zip(&dh.t_a) {
                *o = (ra.wrapping_add(*rb) >> bits).wrapping_sub(*t);
            }
            pack_msb_shares(msb_packed, dh, width);
        })?;
        // From the next party: as our A (we are the helper), the two candidates; as our helper
        // (we are B), its masked term, T - t_a and the packed msb(r) - m_a. From the previous
        // party, our A when we are B: its share of c.
        let from_next = self.net.recv_words(next, 2 * nh + (1 + extra) * nb + packed_len(nb, width))?;
        let a_share = self.net.recv_words(prev, nb)?;
        let (candidates, rest) = from_next.split_at(2 * nh);
        let (helper_term, rest) = rest.split_at(extra * nb);
        let (t_b, m_b_packed) = rest.split_at(nb);

        // As B: c = our word(s) + A's share + r_b (+ the helper's masked term) + 2^62, and
        // B's part of the result, high(c) - t_b + [msb(c) = 0] m_b 2^(64-f); component h =
        // part_b - sigma_msb(c) - rho goes into our `next`, so that with A's candidate the
        // three components sum to the result.
        let b_in = BInputs {
            own: &xc[range(b_chunk)],
            other: if terms { helper_term } else { &xn[range(b_chunk)] },
            a_share: &a_share,
            t_b,
            m_b_packed,
            rho: &cur[range(b_chunk)],
        };
        let msb_bits = b_component_h(&b_in, db, &mut nxt[range(b_chunk)], bits, width);

        // Round 2. B sends A msb(c), and the helper component h and which candidate to keep
        // (msb(c) XOR the order bit, which the helper cannot undo).
        self.net.send_u64s(prev, &msb_bits)?;
        let s_h = &nxt[range(b_chunk)];
        self.net.send_u64s_with(next, nb + msb_bits.len(), |out| {
            let (h, pick) = out.split_at_mut(nb);
            h.copy_from_slice(s_h);
            for ((p, m), o) in pick.iter_mut().zip(&msb_bits).zip(&db.order) {
                *p = m ^ o;
            }
        })?;
        let msb_for_a = self.net.recv_words(next, na.div_ceil(64))?;
        let from_b = self.net.recv_words(prev, nh + nh.div_ceil(64))?;
        let (got_h, picks) = from_b.split_at(nh);

        // Party i holds components (i, i+1). As A: (A, B) = (candidate for msb(c), rho); as B:
        // (B, h) = (rho, s_h); as the helper: (h, A) = (s_h, the candidate B picked).
        a_component(&mut cur[range(a_chunk)], da, &msb_for_a, shift);
        cur[range(helper_chunk)].copy_from_slice(got_h);
        for ((out, pairs), pick) in
            nxt[range(helper_chunk)].chunks_mut(64).zip(candidates.chunks(128)).zip(picks)
        {
            for (j, (o, pair)) in out.iter_mut().zip(pairs.chunks_exact(2)).enumerate() {
                *o = pair[((pick >> j) & 1) as usize];
            }
        }
        self.share(shape, cur, nxt)
    }
}

/// All ones when `bit` (0 or 1) is 1, zero otherwise.
fn all_if(bit: u64) -> u64 {
    0u64.wrapping_sub(bit)
}

/// A's two candidates for component A of one element, for `msb(c)` = 0 and 1:
/// `part_a(b) + sigma_b` with `part_a(b) = -t_a + [b = 0] m_a 2^(64-f)`.
fn candidates(m_a: u64, t_a: u64, sigma_0: u64, sigma_1: u64, shift: u32) -> [u64; 2] {
    [(m_a << shift).wrapping_sub(t_a).wrapping_add(sigma_0), sigma_1.wrapping_sub(t_a)]
}

/// A's two [`candidates`] of every element, in the order of the shared bit: `(b = 0, b = 1)`,
/// swapped when the order bit is 1.
fn write_candidates(out: &mut [u64], d: &ChunkDraws, shift: u32) {
    let words = d.m_a.chunks(64).zip(d.t_a.chunks(64)).zip(d.sigma[0].chunks(64)).zip(d.sigma[1].chunks(64));
    for ((pairs, (((m_a, t_a), s0), s1)), order) in out.chunks_mut(128).zip(words).zip(&d.order) {
        for (j, pair) in pairs.chunks_exact_mut(2).enumerate() {
            let [first, second] = candidates(m_a[j], t_a[j], s0[j], s1[j], shift);
            let swap = (first ^ second) & all_if((order >> j) & 1);
            pair[0] = first ^ swap;
            pair[1] = second ^ swap;
        }
    }
}

/// The helper's shares of `msb(r)`, `msb(r_a + r_b) - m_a`, packed `width` bits each.
fn pack_msb_shares(out: &mut [u64], d: &ChunkDraws, width: u32) {
    let per = (64 / width) as usize;
    let mask = width_mask(width);
    let groups = d.r_a.chunks(per).zip(d.r_b.chunks(per)).zip(d.m_a.chunks(per));
    for (word, ((r_a, r_b), m_a)) in out.iter_mut().zip(groups) {
        *word = r_a.iter().zip(r_b).zip(m_a).enumerate().fold(0u64, |w, (j, ((a, b), m))| {
            w | (((a.wrapping_add(*b) >> 63).wrapping_sub(*m) & mask) << (j as u32 * width))
        });
    }
}

/// What B combines into `c` and its component h (one chunk's elements).
struct BInputs<'a> {
    /// B's word of each element (its term, or its first component).
    own: &'a [u64],
    /// The helper's masked term (product terms) or B's second component.
    other: &'a [u64],
    /// A's share of `c`.
    a_share: &'a [u64],
    /// The helper's `T - t_a`, B's share of `T`.
    t_b: &'a [u64],
    /// The helper's packed `msb(r) - m_a`.
    m_b_packed: &'a [u64],
    /// Component B of the result.
    rho: &'a [u64],
}

/// B's side: opens `c`, writes component h into `s_h` and returns `msb(c)` packed.
fn b_component_h(inp: &BInputs<'_>, d: &ChunkDraws, s_h: &mut [u64], bits: u32, width: u32) -> Vec<u64> {
    let offset = 1u64 << 62;
    let shift = 64 - bits;
    let mut msb_bits = vec![0u64; s_h.len().div_ceil(64)];
    for (block, (out, word)) in s_h.chunks_mut(64).zip(msb_bits.iter_mut()).enumerate() {
        let span = block * 64..block * 64 + out.len();
        // c, in place.
        let sums = inp.own[span.clone()].iter().zip(&inp.other[span.clone()]).zip(&inp.a_share[span.clone()]);
        for ((o, ((x, y), a)), r) in out.iter_mut().zip(sums).zip(&d.r_b[span.clone()]) {
            *o = x.wrapping_add(*y).wrapping_add(*a).wrapping_add(*r).wrapping_add(offset);
        }
        let mut top_bits = 0u64;
        for (j, o) in out.iter_mut().enumerate() {
            let k = span.start + j;
            let c = *o;
            let top = c >> 63;
            top_bits |= top << j;
            let m_b = packed_value(inp.m_b_packed, k, width);
            let high = (c >> bits).wrapping_sub(1u64 << (62 - bits));
            let part_b = high.wrapping_sub(inp.t_b[k]).wrapping_add((m_b << shift) & all_if(1 - top));
            let sigma = d.sigma[0][k] ^ ((d.sigma[0][k] ^ d.sigma[1][k]) & all_if(top));
            *o = part_b.wrapping_sub(sigma).wrapping_sub(inp.rho[k]);
        }
        *word = top_bits;
    }
    msb_bits
}

/// A's component A once B has told it `msb(c)`: its candidate for that bit.
fn a_component(out: &mut [u64], d: &ChunkDraws, msb_c: &[u64], shift: u32) {
    let words = d.m_a.chunks(64).zip(d.t_a.chunks(64)).zip(d.sigma[0].chunks(64)).zip(d.sigma[1].chunks(64));
    for ((out, (((m_a, t_a), s0), s1)), msb) in out.chunks_mut(64).zip(words).zip(msb_c) {
        for (j, o) in out.iter_mut().enumerate() {
            let top = all_if((msb >> j) & 1);
            let [first, second] = candidates(m_a[j], t_a[j], s0[j], s1[j], shift);
            *o = first ^ ((first ^ second) & top);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_at_every_width() {
        for bits in [1u32, 8, 9, 16, 17, 32, 33, 61] {
            let width = packed_width(bits);
            let word = |i: u64, c: u64| i.wrapping_mul(c).rotate_left(17) ^ c;
            let d = ChunkDraws {
                r_a: (0..37u64).map(|i| word(i, 0x9E37_79B9_7F4A_7C15)).collect(),
                r_b: (0..37u64).map(|i| word(i, 0xC2B2_AE3D_27D4_EB4F)).collect(),
                m_a: (0..37u64).map(|i| word(i, 0x1656_67B1_9E37_79F9)).collect(),
                ..Default::default()
            };
            let mut words = vec![0u64; packed_len(37, width)];
            pack_msb_shares(&mut words, &d, width);
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            for k in 0..37 {
                let share = (d.r_a[k].wrapping_add(d.r_b[k]) >> 63).wrapping_sub(d.m_a[k]);
                assert_eq!(packed_value(&words, k, width), share & mask, "bits {bits}, value {k}");
            }
        }
    }
}
