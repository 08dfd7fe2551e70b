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

/// Packs the low `width` bits of each value, `64 / width` values per word.
fn pack(values: &[u64], width: u32) -> Vec<u64> {
    let per = (64 / width) as usize;
    let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    values
        .chunks(per)
        .map(|group| group.iter().enumerate().fold(0u64, |w, (k, &v)| w | ((v & mask) << (k as u32 * width))))
        .collect()
}

/// Inverse of [`pack`] for `n` values.
fn unpack(words: &[u64], width: u32, n: usize) -> Vec<u64> {
    let per = (64 / width) as usize;
    let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    (0..n).map(|i| (words[i / per] >> ((i % per) as u32 * width)) & mask).collect()
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
    /// Component B of the result (A and B).
    rho: Vec<u64>,
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
            if role(h) == Role::Helper {
                d.r_b = self.draw(with_other, m);
            }
            if role(h) == Role::B {
                d.r_b = self.draw(with_helper, m);
            }
            if role(h) != Role::Helper {
                d.rho = self.draw(with_other, m);
                d.sigma = [self.draw(with_other, m), self.draw(with_other, m)];
                d.order = self.draw(with_other, m.div_ceil(64));
            }
        }
        let (helper_chunk, a_chunk, b_chunk) = (self.id, (self.id + 2) % 3, (self.id + 1) % 3);
        let (da, db, dh) = (&draws[a_chunk], &draws[b_chunk], &draws[helper_chunk]);
        let bit = |words: &[u64], k: usize| ((words[k / 64] >> (k % 64)) & 1) as usize;
        let wrap_term = |msb_c: usize, m: u64| if msb_c == 0 { m << (64 - bits) } else { 0 };
        // A's additive part of the result, given msb(c): -t_a + [msb(c) = 0] m_a 2^(64-f).
        let part_a = |k: usize, msb_c: usize| wrap_term(msb_c, da.m_a[k]).wrapping_sub(da.t_a[k]);

        // Round 1. A sends B its share of c (its word plus r_a, plus for product terms the
        // mask of the helper's term) and the helper its two candidates for component A, in
        // the order of the bit it shares with B. The helper sends B its masked term (product
        // terms), T - t_a and the packed msb(r) - m_a. B sends nothing.
        let (na, nb, nh) = (len(a_chunk), len(b_chunk), len(helper_chunk));
        let to_next: Vec<u64> = range(a_chunk)
            .enumerate()
            .map(|(k, i)| xc[i].wrapping_add(da.r_a[k]).wrapping_add(da.to_b.get(k).copied().unwrap_or(0)))
            .collect();
        let extra = usize::from(terms);
        let mut to_prev = Vec::with_capacity(2 * na + (1 + extra) * nh + packed_len(nh, width));
        for k in 0..na {
            let first = bit(&da.order, k);
            for choice in [first, 1 - first] {
                to_prev.push(part_a(k, choice).wrapping_add(da.sigma[choice][k]));
            }
        }
        if terms {
            to_prev.extend(range(helper_chunk).zip(&dh.to_b).map(|(i, m)| xc[i].wrapping_sub(*m)));
        }
        let mut msb_share = Vec::with_capacity(nh);
        for k in 0..nh {
            let r = dh.r_a[k].wrapping_add(dh.r_b[k]);
            to_prev.push((r >> bits).wrapping_sub(dh.t_a[k]));
            msb_share.push((r >> 63).wrapping_sub(dh.m_a[k]));
        }
        to_prev.extend(pack(&msb_share, width));
        let (prev, next) = (self.prev(), self.next_party());
        self.net.send_u64s(next, &to_next)?;
        self.net.send_u64s(prev, &to_prev)?;
        // From the next party: as our A (we are the helper), the two candidates; as our helper
        // (we are B), its masked term, T - t_a and the packed msb(r) - m_a. From the previous
        // party, our A when we are B: its share of c.
        let from_next = self.net.recv_u64s(next, 2 * nh + (1 + extra) * nb + packed_len(nb, width))?;
        let a_share = self.net.recv_u64s(prev, nb)?;
        let candidates = &from_next[..2 * nh];
        let helper_term = &from_next[2 * nh..2 * nh + extra * nb];
        let t_b = &from_next[2 * nh + extra * nb..2 * nh + (1 + extra) * nb];
        let m_b = unpack(&from_next[2 * nh + (1 + extra) * nb..], width, nb);

        // As B: c = our word(s) + A's share + r_b (+ the helper's masked term) + 2^62, and
        // B's part of the result, high(c) - t_b + [msb(c) = 0] m_b 2^(64-f).
        let offset = 1u64 << 62;
        let mut msb_c = vec![0u64; nb];
        let mut s_h = Vec::with_capacity(nb);
        for (k, i) in range(b_chunk).enumerate() {
            let own = if terms { xc[i] } else { xc[i].wrapping_add(xn[i]) };
            let c = own
                .wrapping_add(a_share[k])
                .wrapping_add(db.r_b[k])
                .wrapping_add(helper_term.get(k).copied().unwrap_or(0))
                .wrapping_add(offset);
            let top = (c >> 63) as usize;
            msb_c[k] = top as u64;
            let high = (c >> bits).wrapping_sub(1u64 << (62 - bits));
            let part_b = high.wrapping_sub(t_b[k]).wrapping_add(wrap_term(top, m_b[k]));
            // Component h = part_b - sigma_msb(c) - rho, so that with A's candidate the three
            // components sum to the result.
            s_h.push(part_b.wrapping_sub(db.sigma[top][k]).wrapping_sub(db.rho[k]));
        }
        // Round 2. B sends A msb(c), and the helper component h and which candidate to keep
        // (msb(c) XOR the order bit, which the helper cannot undo).
        let msb_bits = musket_ring::pack_bits(&msb_c);
        let pick: Vec<u64> = msb_bits.iter().zip(&db.order).map(|(m, o)| m ^ o).collect();
        s_h.extend(pick);
        self.net.send_u64s(prev, &msb_bits)?;
        self.net.send_u64s(next, &s_h)?;
        let msb_for_a = self.net.recv_u64s(next, na.div_ceil(64))?;
        let from_b = self.net.recv_u64s(prev, nh + nh.div_ceil(64))?;
        let (got_h, picks) = from_b.split_at(nh);

        // Party i holds components (i, i+1). As A: (A, B) = (candidate for msb(c), rho); as B:
        // (B, h) = (rho, s_h); as the helper: (h, A) = (s_h, the candidate B picked).
        let mut cur = vec![0u64; n];
        let mut nxt = vec![0u64; n];
        for (k, i) in range(a_chunk).enumerate() {
            let top = bit(&msb_for_a, k);
            cur[i] = part_a(k, top).wrapping_add(da.sigma[top][k]);
        }
        nxt[range(a_chunk)].copy_from_slice(&da.rho);
        cur[range(b_chunk)].copy_from_slice(&db.rho);
        nxt[range(b_chunk)].copy_from_slice(&s_h[..nb]);
        cur[range(helper_chunk)].copy_from_slice(got_h);
        for (k, i) in range(helper_chunk).enumerate() {
            nxt[i] = candidates[2 * k + bit(picks, k)];
        }
        self.share(shape, cur, nxt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_at_every_width() {
        for bits in [1u32, 8, 9, 16, 17, 32, 33, 61] {
            let width = packed_width(bits);
            let values: Vec<u64> = (0..37u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            let words = pack(&values, width);
            assert_eq!(words.len(), packed_len(values.len(), width));
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            let back = unpack(&words, width, values.len());
            assert!(back.iter().zip(&values).all(|(b, v)| *b == v & mask), "bits {bits}");
        }
    }
}
