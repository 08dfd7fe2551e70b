//! The opening of a truncated product (`Rep3Mal::truncated_product`): the product's terms
//! go straight into the opening of `c`, masked, and each is proved as a product's message is.

use super::*;

impl Rep3Mal {
    /// The fused opening of [`Rep3Mal::truncated_product`]: `c` per frame at its parties 0
    /// and 1 (empty at the helper), the product's records kept with their claims.
    pub(super) fn open_terms(
        &mut self,
        z: &[u64],
        records: Vec<Record>,
        frames: &mut [FrameMask],
        f: usize,
    ) -> Result<Vec<Vec<u64>>> {
        let (prev, next) = (self.base.prev(), self.base.next_party());
        // nu (key of frame parties 0 and 2) and nu' (1 and 2), frame by frame after the masks.
        let mut nu: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        let mut nu2: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (k, fr) in frames.iter().enumerate() {
            let len = fr.range.len();
            match fr.me {
                0 => nu[k] = self.base.draw(Stream::Own, len),
                1 => nu2[k] = self.base.draw(Stream::Next, len),
                _ => {
                    nu[k] = self.base.draw(Stream::Next, len);
                    nu2[k] = self.base.draw(Stream::Own, len);
                }
            }
        }
        let add = |a: &[u64], b: &[u64], c: &[u64]| -> Vec<u64> {
            a.iter().zip(b).zip(c).map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c)).collect()
        };
        let sub =
            |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(a, b)| a.wrapping_sub(*b)).collect() };
        // `c` plus a test harness's error (none outside the tests).
        let shifted = |mut c: Vec<u64>, by: &[u64]| -> Vec<u64> {
            for (v, d) in c.iter_mut().zip(by) {
                *v = v.wrapping_add(*d);
            }
            c
        };
        // Sends, in this order on each link: as the helper, its inputs and `mh` to party 1 (its
        // previous) in one message, then `mh'` to party 0 (its next); as party 0, `m0` to
        // party 1 (its next); as party 1, `m1` to party 0 (its previous).
        if let Some(k) = frame_as(frames, 2) {
            let zr = &z[frames[k].range.clone()];
            let mut to_party_1 = std::mem::take(&mut frames[k].to_party_1);
            let mut mh = sub(zr, &nu[k]);
            let mut mh2 = sub(zr, &nu2[k]);
            if self.cheat.is_some() {
                // The test harness's errors: first one in both messages (both openers' c move
                // alike, so only the proof of `mh` can catch it), then one in the copy alone
                // (only the openers' comparison can).
                let before = mh.clone();
                self.tamper(Target::TruncatedProduct, &mut mh);
                for ((c, m), b) in mh2.iter_mut().zip(&mh).zip(&before) {
                    *c = c.wrapping_add(m.wrapping_sub(*b));
                }
                self.tamper(Target::TruncatedProduct, &mut mh2);
            }
            to_party_1.extend_from_slice(&mh);
            self.base.net.send_u64s(prev, &to_party_1)?;
            self.base.net.send_u64s(next, &mh2)?;
        }
        let mut shift: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (role, to) in [(0, next), (1, prev)] {
            if let Some(k) = frame_as(frames, role) {
                let fr = &frames[k];
                let zr = &z[fr.range.clone()];
                let mut m = if role == 0 { add(zr, &fr.r.a, &nu[k]) } else { add(zr, &fr.r.b, &nu2[k]) };
                if self.cheat.is_some() {
                    // The test harness's error, in this party's own c too (so that the openers'
                    // copies agree and only the proof of the message can catch it).
                    let before = m.clone();
                    self.tamper(Target::TruncatedProduct, &mut m);
                    shift[k] = m.iter().zip(&before).map(|(m, b)| m.wrapping_sub(*b)).collect();
                }
                self.base.net.send_u64s(to, &m)?;
            }
        }
        // Reads, in the order of the sends: from the previous party the carries of the frame
        // whose helper it is (sent with the mask) and its `mh'`, then its `m0`; from the next
        // party its inputs and `mh`, then its `m1`.
        let mut got_h: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        let mut got_o: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        if let Some(k) = frame_as(frames, 0) {
            got_h[k] = self.read_carries(frames, f, frames[k].range.len())?;
        }
        if let Some(k) = frame_as(frames, 1) {
            got_o[k] = self.base.net.recv_u64s(prev, frames[k].range.len())?;
            got_h[k] = self.read_party_1_inputs(frames, f, frames[k].range.len())?;
        }
        if let Some(k) = frame_as(frames, 0) {
            got_o[k] = self.base.net.recv_u64s(next, frames[k].range.len())?;
        }
        // c at the openers, compared by digest (party 0's `vouched` with party 1's
        // `received`, party 1's `vouched_for_prev` with party 0's `received_from_prev`);
        // each party's claim fields over all the elements, frame by frame (see `fill_claims`).
        let n = z.len();
        let (mut theirs, mut own) = (vec![0u64; n], vec![0u64; n]);
        let mut cs: Vec<Vec<u64>> = vec![Vec::new(); frames.len()];
        for (k, fr) in frames.iter().enumerate() {
            let range = fr.range.clone();
            let zr = &z[range.clone()];
            let public = |v: u64| v.wrapping_add(1u64 << 62);
            match fr.me {
                0 | 1 => {
                    let half = if fr.me == 0 { &fr.r.a } else { &fr.r.b };
                    let c: Vec<u64> = add(&got_o[k], &got_h[k], zr)
                        .iter()
                        .zip(half)
                        .map(|(v, r)| public(v.wrapping_add(*r)))
                        .collect();
                    let c = shifted(c, &shift[k]);
                    // Both of this opener's digests take c's own digest (one pass over c, not
                    // two); the other opener's take the same.
                    let digest = ring::digest::digest(&ring::digest::SHA256, &musket_net::le_bytes(&c));
                    let bytes = digest.as_ref();
                    if fr.me == 0 {
                        self.vouched.update(bytes);
                        self.received_from_prev.update(bytes);
                        // As A of party 1's statement (received m1), as B of the helper's (nu).
                        theirs[range.clone()].copy_from_slice(&got_o[k]);
                        own[range].copy_from_slice(&nu[k]);
                    } else {
                        self.received.update(bytes);
                        self.vouched_for_prev.update(bytes);
                        // As A of the helper's statement (received mh), as B of party 0's (m0).
                        theirs[range.clone()].copy_from_slice(&got_h[k]);
                        own[range].copy_from_slice(&got_o[k]);
                    }
                    cs[k] = c;
                }
                _ => {
                    // As A of party 0's statement (-(r_a + nu), its mask), as B of party 1's
                    // (-(r_b + nu')).
                    for (o, (r, v)) in theirs[range.clone()].iter_mut().zip(fr.r.a.iter().zip(&nu[k])) {
                        *o = r.wrapping_add(*v).wrapping_neg();
                    }
                    for (o, (r, v)) in own[range].iter_mut().zip(fr.r.b.iter().zip(&nu2[k])) {
                        *o = r.wrapping_add(*v).wrapping_neg();
                    }
                }
            }
        }
        self.unchecked_openings += 1;
        self.unchecked_from_prev += 1;
        self.fill_claims(records, &theirs, &own)?;
        Ok(cs)
    }

    /// Keeps a truncated product's records with their claim shares (as `A` in `theirs`, as `B`
    /// in `own`), each record's elements following the previous one's. The three provers'
    /// messages are their product terms less a mask (see [`Rep3Mal::truncated_product`]):
    /// frame party 0's `m0` goes to party 1 (its `B`: `own`) with its mask at the helper (its
    /// `A`: `theirs = -(r_a + nu)`); party 1's `m1` goes to party 0 (its `A`: `theirs`) with
    /// its mask at the helper (its `B`: `own = -(r_b + nu')`); the helper's `mh` to party 1
    /// (its `A`: `theirs`) with `nu` at party 0 (its `B`: `own`).
    fn fill_claims(&mut self, records: Vec<Record>, theirs: &[u64], own: &[u64]) -> Result<()> {
        let mut at = 0;
        for mut rec in records {
            let outputs = rec.outputs();
            rec.theirs = theirs[at..at + outputs].to_vec();
            rec.own = own[at..at + outputs].to_vec();
            at += outputs;
            self.pending_words += rec.words();
            self.arith.push(rec);
        }
        debug_assert_eq!(at, theirs.len(), "the records cover every element once");
        self.check_pending()
    }
}
