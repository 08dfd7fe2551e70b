//! Conversions between arithmetic and binary sharings, each with its input role rotated:
//! the elements are cut into three chunks and in chunk `j` party `j` is the one that knows
//! the sum (or XOR) of its two components and shares it, so each party sends a third of the
//! words the conversion needs instead of party 0 sending them all.

use musket_core::{element_count, MpcError, Protocol, Result, Share};
use musket_ring::RingTensor;

use crate::party::{cross_term, Rep3, Stream};
use crate::{RBits, RShare};

/// Element ranges of the three chunks: chunk `j` is `bounds[j]..bounds[j + 1]`.
pub(crate) fn thirds(n: usize) -> [usize; 4] {
    [0, n / 3, 2 * n / 3, n]
}

/// An input of chunk owners' words whose message to the next party is sent and whose message
/// from the previous party is still to be received.
pub(crate) struct PendingInput {
    cur: Vec<u64>,
    next: Vec<u64>,
    bounds: [usize; 4],
}

impl Rep3 {
    /// Sends this party's part of an input in which party `j` owns the words of chunk `j`
    /// (`mine`, as many as that chunk has): component `j` is a PRF mask party `j` draws with
    /// its previous party, component `j+1` is `combine(value, mask)`, sent to the next party,
    /// and component `j+2` is zero. Finish with [`Rep3::finish_input`] after any other sends
    /// of the same round.
    pub(crate) fn start_input(
        &mut self,
        mine: &[u64],
        n: usize,
        combine: fn(u64, u64) -> u64,
    ) -> Result<PendingInput> {
        let bounds = thirds(n);
        let range = |j: usize| bounds[j]..bounds[j + 1];
        let (me, after) = (self.id, (self.id + 1) % 3);
        let (mut cur, mut next) = (vec![0u64; n], vec![0u64; n]);
        let mask = self.draw(Stream::Own, range(me).len());
        let masked: Vec<u64> = mine.iter().zip(&mask).map(|(&v, &m)| combine(v, m)).collect();
        self.net.send_u64s(self.next_party(), &masked)?;
        cur[range(me)].copy_from_slice(&mask);
        next[range(me)].copy_from_slice(&masked);
        // Chunk `after`'s owner is our next party: its mask is component `after`, our `next`.
        let theirs = self.draw(Stream::Next, range(after).len());
        next[range(after)].copy_from_slice(&theirs);
        Ok(PendingInput { cur, next, bounds })
    }

    /// Receives the previous party's masked words (component `j+1` of its chunk `j`, which is
    /// our `cur`) and returns our components.
    pub(crate) fn finish_input(&mut self, mut input: PendingInput) -> Result<(Vec<u64>, Vec<u64>)> {
        let before = (self.id + 2) % 3;
        let range = input.bounds[before]..input.bounds[before + 1];
        let got = self.net.recv_u64s(self.prev(), range.len())?;
        input.cur[range].copy_from_slice(&got);
        Ok((input.cur, input.next))
    }

    /// Splits a value's components into the two operands of a binary adder: in chunk `j`,
    /// `a = s_j + s_(j+1)`, XOR-shared by party `j` (one message of a third of the words), and
    /// `b = s_(j+2)`, already a sharing with component `j+2` and the others zero.
    pub(crate) fn a2b_rotating(&mut self, x: &RShare) -> Result<(RBits, RBits)> {
        let n = x.len();
        let bounds = thirds(n);
        let range = |j: usize| bounds[j]..bounds[j + 1];
        let (xc, xn) = (x.cur.data(), x.next.data());
        let mine: Vec<u64> = range(self.id).map(|i| xc[i].wrapping_add(xn[i])).collect();
        let pending = self.start_input(&mine, n, |v, m| v ^ m)?;
        let (cur, next) = self.finish_input(pending)?;
        // Component j+2 is our `next` in chunk j = id - 1 and our `cur` in chunk j = id + 1.
        let (mut bc, mut bn) = (vec![0u64; n], vec![0u64; n]);
        let (before, after) = (range((self.id + 2) % 3), range((self.id + 1) % 3));
        bn[before.clone()].copy_from_slice(&xn[before]);
        bc[after.clone()].copy_from_slice(&xc[after]);
        Ok((RBits { cur, next }, RBits { cur: bc, next: bn }))
    }

    /// `a & b` where the first `planes_len` words of `b` are bit planes (`n.div_ceil(64)` words
    /// each) of the `b` operand of [`Rep3::a2b_rotating`] for `n` elements, whose chunk `j`
    /// has only component `j + 2`. In a plane word whose elements all lie in chunk `j`, party
    /// `j`'s term `a_j (b_j ^ b_(j+1)) ^ a_(j+1) b_j` is zero, so it sends nothing for that
    /// word, the zero share being as in [`Rep3::product_with_split`] (with XOR): component `j`
    /// is `F(k_j)`, party `j + 1` masks its term with `F(k_(j+2))` alone and party `j + 2` with
    /// both of its keys. Words across a chunk boundary, and the words past `planes_len`, take
    /// the usual resharing. In the sign circuits' generate layer this saves each party a
    /// third of that layer's words.
    pub(crate) fn and_with_split_planes(
        &mut self,
        a: &RBits,
        b: &RBits,
        n: usize,
        planes_len: usize,
    ) -> Result<RBits> {
        let len = a.cur.len();
        let nb = n.div_ceil(64);
        if len != b.cur.len()
            || planes_len > len
            || (planes_len > 0 && (nb == 0 || !planes_len.is_multiple_of(nb)))
        {
            return Err(MpcError::Usage("bits_and: planes do not match the operands".into()));
        }
        let bounds = thirds(n);
        // The chunk holding every element of plane word k, if one does, as runs of words of
        // one role: the words of one plane, then every plane the same, then the rest.
        let holder = |k: usize| {
            let (lo, hi) = (64 * k, (64 * k + 64).min(n));
            (0..3).find(|&j| bounds[j] <= lo && hi <= bounds[j + 1])
        };
        let mut plane_runs: Vec<(std::ops::Range<usize>, Option<usize>)> = Vec::new();
        for k in 0..nb {
            match plane_runs.last_mut() {
                Some((r, role)) if *role == holder(k) => r.end = k + 1,
                _ => plane_runs.push((k..k + 1, holder(k))),
            }
        }
        let planes = planes_len.checked_div(nb).unwrap_or(0);
        let mut runs: Vec<(std::ops::Range<usize>, Option<usize>)> = (0..planes)
            .flat_map(|p| plane_runs.iter().map(move |(r, role)| (p * nb + r.start..p * nb + r.end, *role)))
            .collect();
        if planes_len < len {
            runs.push((planes_len..len, None));
        }
        let (me, before, after) = (self.id, (self.id + 2) % 3, (self.id + 1) % 3);
        let (ac, an, bc, bn) = (&a.cur, &a.next, &b.cur, &b.next);
        let (mut cur, mut next) = (vec![0u64; len], vec![0u64; len]);
        let mut sent = Vec::with_capacity(len);
        let mut other = [0u64; 512];
        for (run, role) in &runs {
            // Our term is zero in our own words: component `me` is `F(k_me)`, nothing sent.
            if *role == Some(me) {
                self.draw_into(Stream::Own, &mut cur[run.clone()]);
                continue;
            }
            // In party `me - 1`'s words our key with it is left out; elsewhere both keys.
            if *role != Some(before) {
                self.draw_into(Stream::Own, &mut cur[run.clone()]);
            }
            for at in run.clone().step_by(other.len()) {
                let to = (at + other.len()).min(run.end);
                let mask = &mut other[..to - at];
                self.draw_into(Stream::Next, mask);
                for (w, m) in (at..to).zip(mask.iter()) {
                    cur[w] ^= (ac[w] & (bc[w] ^ bn[w])) ^ (an[w] & bc[w]) ^ m;
                }
                // The next party's words: its component is `F(k_(me+1))`, not sent.
                if *role == Some(after) {
                    next[at..to].copy_from_slice(mask);
                }
            }
            sent.extend_from_slice(&cur[run.clone()]);
        }
        self.net.send_u64s(self.prev(), &sent)?;
        let theirs_len = runs.iter().filter(|(_, role)| *role != Some(after)).map(|(r, _)| r.len()).sum();
        let theirs = self.net.recv_u64s(self.next_party(), theirs_len)?;
        let mut at = 0;
        for (run, _) in runs.iter().filter(|(_, role)| *role != Some(after)) {
            next[run.clone()].copy_from_slice(&theirs[at..at + run.len()]);
            at += run.len();
        }
        Ok(RBits { cur, next })
    }

    /// Splits packed XOR-shared bits `b = b_j ^ b_(j+1) ^ b_(j+2)` per chunk `j` into
    /// `d = b_j ^ b_(j+1)`, which party `j` alone knows (returned unpacked for our own chunk),
    /// and `b_(j+2)` as an arithmetic sharing of 0/1 in component `j+2`.
    fn split_bits_rotating(&self, bits: &RBits, shape: &[usize], n: usize) -> Result<(Vec<u64>, RShare)> {
        let bounds = thirds(n);
        let range = |j: usize| bounds[j]..bounds[j + 1];
        let bit = |words: &[u64], i: usize| (words[i / 64] >> (i % 64)) & 1;
        let d = range(self.id).map(|i| bit(&bits.cur, i) ^ bit(&bits.next, i)).collect();
        let (mut bc, mut bn) = (vec![0u64; n], vec![0u64; n]);
        for i in range((self.id + 2) % 3) {
            bn[i] = bit(&bits.next, i);
        }
        for i in range((self.id + 1) % 3) {
            bc[i] = bit(&bits.cur, i);
        }
        Ok((d, self.share(shape, bc, bn)?))
    }

    fn check_packed(bits: &RBits, n: usize, op: &str) -> Result<()> {
        if bits.cur.len() != n.div_ceil(64) {
            return Err(MpcError::Usage(format!("{op}: packed length does not match the shape")));
        }
        Ok(())
    }

    /// `b2a`: the owners input `d` arithmetically; then `d xor b = d + b - 2 d b` costs one
    /// multiplication, of two thirds of a product's words ([`Rep3::product_with_split`]).
    pub(crate) fn b2a_rotating(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        let n = element_count(shape)?;
        Self::check_packed(bits, n, "b2a")?;
        let (d, b) = self.split_bits_rotating(bits, shape, n)?;
        let pending = self.start_input(&d, n, u64::wrapping_sub)?;
        let (dc, dn) = self.finish_input(pending)?;
        let d = self.share(shape, dc, dn)?;
        let prod = self.product_with_split(&d, &b)?;
        let sum = self.add(&d, &b)?;
        let twice = self.scale(&prod, 2)?;
        self.sub(&sum, &twice)
    }

    /// `x * bit`: with the bit split as `d xor b` (above), `x (d xor b) = u + d (x - 2u)` with
    /// `u = x b`. Round 1 carries both the re-sharing of `u` and the input of `d`; round 2 the
    /// product with `d`. b2a then a product would take three.
    pub(crate) fn mul_bits_rotating(&mut self, x: &RShare, bits: &RBits) -> Result<RShare> {
        let n = x.len();
        Self::check_packed(bits, n, "mul_bits")?;
        let shape = x.shape().to_vec();
        let (d, b) = self.split_bits_rotating(bits, &shape, n)?;
        let pending = self.start_input(&d, n, u64::wrapping_sub)?;
        let u = self.product_with_split(x, &b)?;
        let (dc, dn) = self.finish_input(pending)?;
        let d = self.share(&shape, dc, dn)?;
        // v = x - 2u, both components in one pass each.
        let minus_twice = |x: &RingTensor, u: &RingTensor| {
            let v = x.data().iter().zip(u.data()).map(|(&x, &u)| x.wrapping_sub(u.wrapping_add(u))).collect();
            RingTensor::new(shape.clone(), v)
        };
        let v = RShare { cur: minus_twice(&x.cur, &u.cur)?, next: minus_twice(&x.next, &u.next)? };
        let dv = self.mul(&d, &v)?;
        self.add(&u, &dv)
    }

    /// `x * b` for a `b` whose chunk `j` (of [`thirds`]) has only component `j + 2` set, as
    /// [`Rep3::split_bits_rotating`] returns it, in one round of two thirds of a product's
    /// words. In chunk `j` party `j`'s product term `x_j (b_j + b_(j+1)) + x_(j+1) b_j` is
    /// zero, so it sends nothing there: the zero share leaves out the key of parties `j` and
    /// `j + 1`, component `j` is `F(k_j)` (which parties `j` and `j + 2` draw), component
    /// `j + 1` is party `j + 1`'s term `- F(k_(j+2))`, sent to party `j`, and component `j + 2`
    /// party `j + 2`'s term `+ F(k_(j+2)) - F(k_j)`, sent to party `j + 1`. Each message is
    /// masked by a key its receiver lacks (`k_(j+2)` for party `j`, `k_j` for party `j + 1`),
    /// and the components add up to the sum of the terms, `x b`.
    fn product_with_split(&mut self, x: &RShare, b: &RShare) -> Result<RShare> {
        let n = x.len();
        let bounds = thirds(n);
        let range = |j: usize| bounds[j]..bounds[j + 1];
        let me = self.id;
        let (before, after) = ((me + 2) % 3, (me + 1) % 3);
        let (xc, xn, bc, bn) = (x.cur.data(), x.next.data(), b.cur.data(), b.next.data());
        let (mut cur, mut next) = (vec![0u64; n], vec![0u64; n]);
        let mut sent = Vec::with_capacity(range(before).len() + range(after).len());
        // Chunks in order, so that each key's two holders draw the same words for the same
        // chunks: this party's own key (with its previous party) serves chunks `me` and
        // `me + 1`, the next party's key chunks `me - 1` and `me + 1`.
        for chunk in 0..3 {
            let r = range(chunk);
            let term = |i: usize| cross_term(xc[i], xn[i], bc[i], bn[i]);
            if chunk == me {
                let own = self.draw(Stream::Own, r.len());
                cur[r].copy_from_slice(&own);
            } else if chunk == before {
                let nxt = self.draw(Stream::Next, r.len());
                sent.extend(r.clone().zip(&nxt).map(|(i, h)| term(i).wrapping_sub(*h)));
            } else {
                let own = self.draw(Stream::Own, r.len());
                let nxt = self.draw(Stream::Next, r.len());
                sent.extend(
                    r.clone()
                        .zip(own.iter().zip(&nxt))
                        .map(|(i, (g, h))| term(i).wrapping_add(*g).wrapping_sub(*h)),
                );
                // Component `me + 1` is the next party's chunk's `F(k_(me+1))`.
                next[r].copy_from_slice(&nxt);
            }
        }
        self.net.send_u64s(self.prev(), &sent)?;
        // Our terms of chunks `me - 1` and `me + 1`, in that order of chunk index.
        let mut at = 0;
        for chunk in [0, 1, 2].into_iter().filter(|&c| c != me) {
            let r = range(chunk);
            cur[r.clone()].copy_from_slice(&sent[at..at + r.len()]);
            at += r.len();
        }
        // The next party's terms of its chunks `me + 1 - 1 = me` and `me + 2 = me - 1`.
        let theirs_len = range(me).len() + range(before).len();
        let theirs = self.net.recv_u64s(self.next_party(), theirs_len)?;
        let mut at = 0;
        for chunk in [0, 1, 2].into_iter().filter(|&c| c != after) {
            let r = range(chunk);
            next[r.clone()].copy_from_slice(&theirs[at..at + r.len()]);
            at += r.len();
        }
        self.share(x.shape(), cur, next)
    }
}
