//! Exact 3PC truncation with a rotating helper.
//!
//! For `|x| < 2^62`, `v = x + 2^62` lies in `[0, 2^63)`. Two parties ("A" and "B") open
//! `c = v + r` for a 64-bit mask `r = r_a + r_b` that neither of them knows: `r_a` is a PRF
//! draw A shares with the third party (the helper), `r_b` one B shares with the helper. With
//! `T = r >> f` and `wrap = msb(r) (1 - msb(c))` (the sum `v + r` wrapped past 2^64 exactly
//! then, because `v < 2^63`),
//!
//! `trunc(x) = (c >> f) - 2^(62-f) + wrap 2^(64-f) - T`, which is `floor(x / 2^f)` or one more
//! (the borrow of the discarded low bits).
//!
//! Only the helper knows `T` and `msb(r)`: it sends B its share of `T` (one word) and of
//! `msb(r)` modulo `2^f` (f bits, since it is multiplied by `2^(64-f)`); A's shares come from
//! the PRF it shares with the helper. A and B then hold an additive sharing of the result and
//! re-share it to three parties with masks the helper lacks.
//!
//! Messages per element: A and B send each other one word (round 1), the helper sends B one word
//! and `w` bits (round 1; `w` is f rounded up to 8, 16, 32 or 64), and A and B each send the
//! helper one word (round 2). The elements are cut into three chunks and each party is the
//! helper of one, A of another and B of the third, so every party sends about `(5 + w/64) / 3`
//! words per element (1.75 at f = 16), in the same two rounds. With a fixed helper it sent four
//! words per element and the others one. From product terms the helper also sends its masked
//! term to A and to B: `(7 + w/64) / 3` words (2.42), and the product's own re-sharing (one
//! word each) is not needed.

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
    /// Masks of the helper's term on its way to B (A and the helper) and to A (B and the
    /// helper); product terms only.
    to_b: Vec<u64>,
    to_a: Vec<u64>,
    /// B's part of the mask (B and the helper).
    r_b: Vec<u64>,
    /// The two re-sharing masks (A and B).
    z1: Vec<u64>,
    z2: Vec<u64>,
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
                if terms {
                    d.to_a = self.draw(with_other, m);
                }
            }
            if role(h) == Role::B {
                d.r_b = self.draw(with_helper, m);
                if terms {
                    d.to_a = self.draw(with_helper, m);
                }
            }
            if role(h) != Role::Helper {
                d.z1 = self.draw(with_other, m);
                d.z2 = self.draw(with_other, m);
            }
        }
        let (helper_chunk, a_chunk, b_chunk) = (self.id, (self.id + 2) % 3, (self.id + 1) % 3);
        let (da, db, dh) = (&draws[a_chunk], &draws[b_chunk], &draws[helper_chunk]);

        // Round 1. To the next party: as A, our share of c for B (s_A + r_a, or z_A + r_a plus
        // a mask the helper removes); as the helper, our masked term for A. To the previous
        // party: as B, our share of c for A; as the helper, our masked term for B, then
        // T - t_a and the packed msb(r) - m_a.
        // Our word plus our part of r, plus (for product terms) the mask the helper removes.
        let share_of_c = |words: &[u64], at: std::ops::Range<usize>, r: &[u64], mask: &[u64]| -> Vec<u64> {
            at.enumerate()
                .map(|(k, i)| words[i].wrapping_add(r[k]).wrapping_add(mask.get(k).copied().unwrap_or(0)))
                .collect()
        };
        let mut to_next = share_of_c(xc, range(a_chunk), &da.r_a, &da.to_b);
        let mut to_prev = share_of_c(if terms { xc } else { xn }, range(b_chunk), &db.r_b, &db.to_a);
        if terms {
            to_next.extend(range(helper_chunk).zip(&dh.to_a).map(|(i, m)| xc[i].wrapping_sub(*m)));
            to_prev.extend(range(helper_chunk).zip(&dh.to_b).map(|(i, m)| xc[i].wrapping_sub(*m)));
        }
        let mut msb_share = Vec::with_capacity(len(helper_chunk));
        for k in 0..len(helper_chunk) {
            let r = dh.r_a[k].wrapping_add(dh.r_b[k]);
            to_prev.push((r >> bits).wrapping_sub(dh.t_a[k]));
            msb_share.push((r >> 63).wrapping_sub(dh.m_a[k]));
        }
        to_prev.extend(pack(&msb_share, width));
        let (prev, next) = (self.prev(), self.next_party());
        self.net.send_u64s(next, &to_next)?;
        self.net.send_u64s(prev, &to_prev)?;
        // From the next party: B's share of c (we are its A), then as our helper (we are its
        // B) its masked term, T - t_a and the packed msb(r) - m_a. From the previous party:
        // A's share of c (we are its B), then as our helper (we are its A) its masked term.
        let (na, nb) = (len(a_chunk), len(b_chunk));
        let extra = usize::from(terms);
        let from_next = self.net.recv_u64s(next, na + (1 + extra) * nb + packed_len(nb, width))?;
        let from_prev = self.net.recv_u64s(prev, nb + extra * na)?;
        let helper_to_b = &from_next[na..na + extra * nb];
        let (t_b, m_b) = (
            &from_next[na + extra * nb..na + (1 + extra) * nb],
            unpack(&from_next[na + (1 + extra) * nb..], width, nb),
        );
        let helper_to_a = &from_prev[nb..];

        // c for each element where we are A or B: our word(s) + the other's share of c + our
        // part of r + (for product terms) the helper's masked term; then our additive term of
        // the result.
        let offset = 1u64 << 62;
        let open_c = |i: usize, theirs: u64, r: u64, helper: Option<&u64>| {
            let own = if terms { xc[i] } else { xc[i].wrapping_add(xn[i]) };
            own.wrapping_add(theirs)
                .wrapping_add(r)
                .wrapping_add(helper.copied().unwrap_or(0))
                .wrapping_add(offset)
        };
        let high = |c: u64| (c >> bits).wrapping_sub(1u64 << (62 - bits));
        let wrap_term = |c: u64, m: u64| if c >> 63 == 0 { m << (64 - bits) } else { 0 };
        let u_a: Vec<u64> = range(a_chunk)
            .enumerate()
            .map(|(k, i)| {
                let c = open_c(i, from_next[k], da.r_a[k], helper_to_a.get(k));
                high(c).wrapping_sub(da.t_a[k]).wrapping_add(wrap_term(c, da.m_a[k]))
            })
            .collect();
        let u_b: Vec<u64> = range(b_chunk)
            .enumerate()
            .map(|(k, i)| {
                let c = open_c(i, from_prev[k], db.r_b[k], helper_to_b.get(k));
                wrap_term(c, m_b[k]).wrapping_sub(t_b[k])
            })
            .collect();

        // Round 2: re-share. Component B (held by A and B) is z1; A sends the helper
        // component A = u_a - z1 - z2, B sends it component h = u_b + z2.
        let y_a: Vec<u64> =
            (0..u_a.len()).map(|k| u_a[k].wrapping_sub(da.z1[k]).wrapping_sub(da.z2[k])).collect();
        let y_h: Vec<u64> = (0..u_b.len()).map(|k| u_b[k].wrapping_add(db.z2[k])).collect();
        self.net.send_u64s(prev, &y_a)?;
        self.net.send_u64s(next, &y_h)?;
        let got_a = self.net.recv_u64s(next, len(helper_chunk))?;
        let got_h = self.net.recv_u64s(prev, len(helper_chunk))?;

        // Party i holds components (i, i+1). As A: (A, B) = (y_a, z1); as B: (B, h) = (z1, y_h);
        // as the helper: (h, A) = (got_h, got_a).
        let mut cur = vec![0u64; n];
        let mut nxt = vec![0u64; n];
        cur[range(a_chunk)].copy_from_slice(&y_a);
        nxt[range(a_chunk)].copy_from_slice(&da.z1);
        cur[range(b_chunk)].copy_from_slice(&db.z1);
        nxt[range(b_chunk)].copy_from_slice(&y_h);
        cur[range(helper_chunk)].copy_from_slice(&got_h);
        nxt[range(helper_chunk)].copy_from_slice(&got_a);
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
