//! `Protocol` for [`Rep3Mal`]: the operations, each in its checked form (see the module
//! documentation of `malicious`).

use super::*;
use musket_net::NetError;
use musket_ring::{LinearOp, LinearOp2};

/// One recorded product of a resharing: an elementwise piece, a matrix product, or one item
/// of a batched matrix product (whose items share one message).
pub(super) struct Part<'a> {
    pub(super) gate: Gate,
    pub(super) x: (&'a [u64], &'a [u64]),
    pub(super) y: (&'a [u64], &'a [u64]),
    /// Its outputs within the resharing.
    pub(super) out: std::ops::Range<usize>,
}

impl Rep3Mal {
    /// Reshares `z` (product terms of `parts`, concatenated) in one message and records
    /// each part for verification.
    pub(super) fn reshare_parts(
        &mut self,
        zv: ZeroDraws,
        parts: &[Part<'_>],
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let ZeroDraws { z, own_at, nxt, binary } = zv;
        let records = parts
            .iter()
            .map(|p| {
                let mut at = own_at.snapshot();
                at.skip(p.out.start);
                Record {
                    gate: p.gate,
                    xc: p.x.0.to_vec(),
                    xn: p.x.1.to_vec(),
                    yc: p.y.0.to_vec(),
                    yn: p.y.1.to_vec(),
                    theirs: Vec::new(),
                    own: Vec::new(),
                    nxt: nxt[p.out.clone()].to_vec(),
                    own_at: Some(at),
                }
            })
            .collect();
        self.reshare_records(z, records, binary)
    }

    /// Reshares `z` in one message and keeps `records` (their `theirs` filled from the
    /// message received, in order: each record's elements follow the previous one's) for
    /// verification.
    pub(super) fn reshare_records(
        &mut self,
        mut z: Vec<u64>,
        records: Vec<Record>,
        binary: bool,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let target = match records.first().map(|r| r.gate) {
            _ if binary => Target::And,
            Some(Gate::Matmul { .. }) => Target::Matmul,
            _ => Target::Mul,
        };
        self.tamper(target, &mut z);
        let (cur, theirs) = self.base.reshare(z)?;
        let mut at = 0;
        for mut rec in records {
            let n = rec.outputs();
            rec.theirs = theirs[at..at + n].to_vec();
            rec.fold_nxt(binary);
            at += n;
            self.pending_words += rec.words();
            if binary {
                self.binary.push(rec);
            } else {
                self.arith.push(rec);
            }
        }
        self.check_pending()?;
        Ok((cur, theirs))
    }

    /// `(x_c (y_c + y_n) + x_n y_c)` for `[m, k] x [k, n]` matrices.
    /// The prover's term `x_c (y_c + y_n) + x_n y_c`, the semi-honest back end's: one local
    /// product instead of two where a component is all zero (a weight's), the same value.
    /// `x` may be a matrix of rows with more dimensions (shapes checked by the caller).
    fn matmul_term(xc: &RingTensor, xn: &RingTensor, yc: &RingTensor, yn: &RingTensor) -> Result<RingTensor> {
        Rep3::matmul_terms_of(xc, xn, yc, yn)
    }

    /// A matrix product of `a` read as `[m, k]` (its first dimension, and the product of the
    /// others) and `b` `[k, n]`, recorded for the proofs as the matrix product it is.
    fn matmul_of_rows(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        let (m, k, n) = rows_dims(a.shape(), b.shape())?;
        let z = Self::matmul_term(&a.cur, &a.next, &b.cur, &b.next)?;
        let zd = z.data();
        let zv = self.draws(m * n, false, |i| zd[i]);
        let part = Part {
            gate: Gate::Matmul { m, k, n },
            x: (a.cur.data(), a.next.data()),
            y: (b.cur.data(), b.next.data()),
            out: 0..m * n,
        };
        let (cur, next) = self.reshare_parts(zv, &[part])?;
        self.base.share(&[m, n], cur, next)
    }

    /// The terms of a matrix product of `a` read as `[m, k]` and `b` `[k, n]` (as
    /// [`Rep3Mal::matmul_of_rows`]), not reshared: a truncated product's.
    fn matmul_rows_terms(&mut self, a: &RShare, b: &RShare) -> Result<ProductTerms> {
        let (m, k, n) = rows_dims(a.shape(), b.shape())?;
        let z = Self::matmul_term(&a.cur, &a.next, &b.cur, &b.next)?.into_data();
        let record = Record {
            gate: Gate::Matmul { m, k, n },
            xc: a.cur.data().to_vec(),
            xn: a.next.data().to_vec(),
            yc: b.cur.data().to_vec(),
            yn: b.next.data().to_vec(),
            ..Record::default()
        };
        Ok(ProductTerms { shape: vec![m, n], z, records: vec![record] })
    }

    /// The terms of a batched matrix product (as [`Protocol::matmul_batched`]), not reshared.
    fn matmul_batched_terms(&mut self, a: &RShare, b: &RShare) -> Result<ProductTerms> {
        let (bt, m, k, n) = batched_dims(a.shape(), b.shape())?;
        let mut z = Vec::with_capacity(bt * m * n);
        let mut records = Vec::with_capacity(bt);
        let (ad, and, bd, bnd) = (a.cur.data(), a.next.data(), b.cur.data(), b.next.data());
        for i in 0..bt {
            let (ac, an) = (batch_item(&a.cur, i, m, k), batch_item(&a.next, i, m, k));
            let (bc, bn) = (batch_item(&b.cur, i, k, n), batch_item(&b.next, i, k, n));
            z.extend_from_slice(Self::matmul_term(&ac, &an, &bc, &bn)?.data());
            let (xs, ys) = (i * m * k..(i + 1) * m * k, i * k * n..(i + 1) * k * n);
            records.push(Record {
                gate: Gate::Matmul { m, k, n },
                xc: ad[xs.clone()].to_vec(),
                xn: and[xs].to_vec(),
                yc: bd[ys.clone()].to_vec(),
                yn: bnd[ys].to_vec(),
                ..Record::default()
            });
        }
        Ok(ProductTerms { shape: vec![bt, m, n], z, records })
    }

    /// The terms of elementwise products (as [`Protocol::mul`]), not reshared.
    fn mul_terms(&mut self, a: &RShare, b: &RShare) -> ProductTerms {
        let (z, records) =
            self.elementwise_terms(a.cur.data(), a.next.data(), b.cur.data(), b.next.data(), false, false);
        ProductTerms { shape: a.shape().to_vec(), z, records }
    }

    /// Keeps a [`Gate::Cross`] record for verification, in pieces of at most a plain batch
    /// (so that no batch outgrows its soundness bound), and verifies early past the limit.
    pub(super) fn keep_cross(&mut self, rec: Record) -> Result<()> {
        let (wp, wa, wb) =
            (rec.cross_width(Role::Prover), rec.cross_width(Role::A), rec.cross_width(Role::B));
        // Whole blocks of 64 elements a piece, so that full batches of wide records do not
        // round past a power of two of block terms.
        let piece = (BATCH_TERMS_ARITH / rec.widest()) & !63;
        let n = rec.theirs.len();
        // Elements a..b of a vector holding `width` values per element.
        let cut = |v: &[u64], width: usize, a: usize, b: usize| v[a * width..b * width].to_vec();
        let parts: Vec<Record> = if n <= piece {
            // One piece: the record itself, not a copy.
            vec![rec]
        } else {
            (0..n)
                .step_by(piece)
                .map(|a| {
                    let b = (a + piece).min(n);
                    Record {
                        gate: rec.gate,
                        xc: cut(&rec.xc, wp, a, b),
                        yc: cut(&rec.yc, wp, a, b),
                        xn: cut(&rec.xn, wa, a, b),
                        theirs: cut(&rec.theirs, 1, a, b),
                        yn: cut(&rec.yn, wb, a, b),
                        own: cut(&rec.own, 1, a, b),
                        nxt: Vec::new(),
                        own_at: None,
                    }
                })
                .collect()
        };
        for part in parts {
            self.pending_words += part.words();
            self.arith.push(part);
            // Per piece, as for products, so that one large conversion cannot overshoot the limit.
            self.check_pending()?;
        }
        Ok(())
    }
}

impl Protocol for Rep3Mal {
    type Share = RShare;
    type Bits = RBits;

    fn name(&self) -> &'static str {
        "3pc"
    }
    fn security(&self) -> &'static str {
        "malicious"
    }
    fn party_id(&self) -> usize {
        self.base.id
    }
    fn compute_parties(&self) -> usize {
        3
    }
    fn stats(&self) -> CommStats {
        self.base.stats()
    }
    fn finish(&mut self) -> Result<()> {
        self.verify_all()
    }
    fn verify(&mut self) -> Result<()> {
        self.verify_all()
    }
    fn abort(&mut self, reason: &str) {
        self.base.abort(reason);
    }
    /// A peer's departure or abort while verifications run beside the computation may be
    /// the peers stopping after one of them caught cheating (this party's, which aborted, or
    /// a peer's): waits a moment for them (they end soon, their peers gone too) and returns
    /// their failure, if one says more than that a peer left.
    fn explain_failure(&mut self, err: MpcError) -> MpcError {
        let peers_stopped =
            matches!(err, MpcError::Net(NetError::Disconnected { .. } | NetError::Aborted { .. }));
        if let (true, Some(worker)) = (peers_stopped, self.worker.as_mut()) {
            match worker.failure_within(EXPLAIN_WAIT) {
                Some(cause) if !matches!(cause, MpcError::Net(NetError::Disconnected { .. })) => {
                    return cause
                }
                _ => {}
            }
        }
        err
    }

    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<RShare> {
        if owner > 2 {
            return Err(MpcError::Usage(format!("input owner {owner} is not a compute party")));
        }
        let n = element_count(shape)?;
        let id = self.base.id;
        if id == owner {
            let v = value.ok_or_else(|| MpcError::Usage("the input owner must supply the value".into()))?;
            if v.shape() != shape {
                return Err(MpcError::Usage(format!("input has shape {:?}, expected {shape:?}", v.shape())));
            }
            let mask = self.base.draw(Stream::Own, n);
            let masked: Vec<u64> = v.data().iter().zip(&mask).map(|(a, m)| a.wrapping_sub(*m)).collect();
            let mut sent = masked.clone();
            self.tamper(Target::Input, &mut sent);
            let next = self.base.next_party();
            self.base.net.send_u64s(next, &sent)?;
            self.base.share(shape, mask, masked)
        } else if id == (owner + 1) % 3 {
            let got = self.base.net.recv_u64s(owner, n)?;
            self.base.share(shape, got, vec![0; n])
        } else {
            let mask = self.base.draw(Stream::Next, n);
            self.base.share(shape, vec![0; n], mask)
        }
    }

    fn reveal_to(&mut self, x: &RShare, receiver: usize) -> Result<Option<RingTensor>> {
        if receiver > 2 {
            return Err(MpcError::Usage(format!("receiver {receiver} is not a compute party")));
        }
        self.verify_all()?;
        let id = self.base.id;
        // The receiver lacks s_{r+2}: party r+1 sends it, party r+2 vouches for it.
        let mut missing = None;
        if id == receiver {
            let got = self.base.net.recv_u64s(self.base.next_party(), x.len())?;
            self.received.update(&musket_net::le_bytes(&got));
            missing = Some(got);
        } else if id == (receiver + 1) % 3 {
            let mut sent = x.next.data().to_vec();
            self.tamper(Target::Reveal, &mut sent);
            self.base.net.send_u64s(receiver, &sent)?;
        } else {
            self.vouched.update(&musket_net::le_bytes(x.cur.data()));
        }
        self.unchecked_openings += 1;
        self.check_openings()?;
        self.agree()?;
        match missing {
            Some(m) => {
                let mut v = x.cur.add(&x.next)?;
                v.add_assign(&RingTensor::new(x.shape().to_vec(), m)?)?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    fn reveal(&mut self, x: &RShare) -> Result<RingTensor> {
        self.verify_all()?;
        let missing = self.open_unverified(x.cur.data(), x.next.data(), Target::Reveal)?;
        self.check_openings()?;
        self.agree()?;
        let mut v = x.cur.add(&x.next)?;
        v.add_assign(&RingTensor::new(x.shape().to_vec(), missing)?)?;
        Ok(v)
    }

    fn linear(&self, x: &RShare, f: &dyn LinearOp) -> Result<RShare> {
        self.base.linear(x, f)
    }
    fn linear2(&self, a: &RShare, b: &RShare, f: &dyn LinearOp2) -> Result<RShare> {
        self.base.linear2(a, b, f)
    }
    fn add_public(&self, x: &RShare, c: &RingTensor) -> Result<RShare> {
        self.base.add_public(x, c)
    }

    fn mul(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        Rep3::check_same(a, b, "mul")?;
        let (cur, next) = self.products(a.cur.data(), a.next.data(), b.cur.data(), b.next.data(), false)?;
        self.base.share(a.shape(), cur, next)
    }

    fn matmul(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        matrix_dims(a.shape(), b.shape())?;
        self.matmul_of_rows(a, b)
    }

    /// The product's terms straight into the checked truncation, as
    /// [`Protocol::mul_truncate`], without copying `a`.
    fn matmul_rows_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        rows_dims(a.shape(), b.shape())?;
        self.truncated_product(bits, |p| p.matmul_rows_terms(a, b))
    }

    fn matmul_batched(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        let (bt, m, k, n) = batched_dims(a.shape(), b.shape())?;
        let mut z = Vec::with_capacity(bt * m * n);
        for i in 0..bt {
            let (ac, an) = (batch_item(&a.cur, i, m, k), batch_item(&a.next, i, m, k));
            let (bc, bn) = (batch_item(&b.cur, i, k, n), batch_item(&b.next, i, k, n));
            z.extend_from_slice(Self::matmul_term(&ac, &an, &bc, &bn)?.data());
        }
        let zv = self.draws(bt * m * n, false, |i| z[i]);
        let (ad, and, bd, bnd) = (a.cur.data(), a.next.data(), b.cur.data(), b.next.data());
        let parts: Vec<Part<'_>> = (0..bt)
            .map(|i| Part {
                gate: Gate::Matmul { m, k, n },
                x: (&ad[i * m * k..(i + 1) * m * k], &and[i * m * k..(i + 1) * m * k]),
                y: (&bd[i * k * n..(i + 1) * k * n], &bnd[i * k * n..(i + 1) * k * n]),
                out: i * m * n..(i + 1) * m * n,
            })
            .collect();
        let (cur, next) = self.reshare_parts(zv, &parts)?;
        self.base.share(&[bt, m, n], cur, next)
    }

    /// Truncation with a mask no single party knows alone and nothing unchecked (see
    /// `truncate.rs`): the mask is `R = r_a + r_b`, where `r_a` is component 0 (drawn by
    /// parties 0 and 2 from their shared key) and `r_b` component 2 (parties 1 and 2), and
    /// `c = x + 2^62 + R` is opened to parties 0 and 1 (each copy vouched for by the other
    /// holder); neither knows `R`, since each misses one of `r_a`, `r_b`. The result is
    ///
    /// `(c >> f) - 2^(62-f) - (r_a >> f) - (r_b >> f) - A + 2^(64-f) msb(R) (1 - msb(c))`,
    ///
    /// where `A = carry_f - 2^(64-f) w` (`carry_f = [low_f(r_a) + low_f(r_b) >= 2^f]`, `w` the
    /// carry out of `r_a + r_b`) and the last term is the wrap of `x + 2^62 + R`, which is below
    /// 2^63. Party 2, which knows `R`, inputs `A`, `2^(64-f) msb(R)` and the carries of the
    /// three sums (proving the carries itself; parties 0 and 1 compare the bits they imply by
    /// digest), and parties 0 and 1 form the wrap in one exchange: 2 rounds, the opening of
    /// `c` (with party 2's inputs) and the wrap's exchange. A
    /// party can only deviate in messages the proofs and digests check, so no party is
    /// trusted. Same error as the semi-honest truncation: `floor(x / 2^bits)` or one more,
    /// for `|x| < 2^62`.
    fn truncate(&mut self, x: &RShare, bits: u32) -> Result<RShare> {
        check_truncation_bits(bits)?;
        let mask = self.truncation_mask(x.len(), bits)?;
        self.truncate_masked(x, mask)
    }

    /// The product's terms straight into the checked truncation (`bits` checked first;
    /// [`Rep3Mal::truncated_product`]): 2 rounds.
    fn mul_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        Rep3::check_same(a, b, "mul")?;
        self.truncated_product(bits, |p| Ok(p.mul_terms(a, b)))
    }

    /// As [`Protocol::mul_truncate`].
    fn matmul_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        matrix_dims(a.shape(), b.shape())?;
        self.truncated_product(bits, |p| p.matmul_rows_terms(a, b))
    }

    /// As [`Protocol::mul_truncate`].
    fn matmul_batched_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        batched_dims(a.shape(), b.shape())?;
        self.truncated_product(bits, |p| p.matmul_batched_terms(a, b))
    }

    fn bits_len(&self, x: &RBits) -> usize {
        self.base.bits_len(x)
    }
    fn bits_linear(&self, x: &RBits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> RBits {
        self.base.bits_linear(x, f)
    }
    fn bits_linear2(&self, a: &RBits, b: &RBits, f: musket_core::WordMap2<'_>) -> RBits {
        self.base.bits_linear2(a, b, f)
    }
    fn bits_concat(&self, parts: &[&RBits]) -> RBits {
        self.base.bits_concat(parts)
    }
    fn bits_xor(&self, a: &RBits, b: &RBits) -> RBits {
        self.base.bits_xor(a, b)
    }
    fn bits_xor_public(&self, a: &RBits, c: &[u64]) -> RBits {
        self.base.bits_xor_public(a, c)
    }
    fn bits_and(&mut self, a: &RBits, b: &RBits) -> Result<RBits> {
        if a.cur.len() != b.cur.len() {
            return Err(MpcError::Usage("bits_and: lengths differ".into()));
        }
        let (cur, next) = self.products(&a.cur, &a.next, &b.cur, &b.next, true)?;
        Ok(RBits { cur, next })
    }
    fn reveal_bits(&mut self, x: &RBits) -> Result<Vec<u64>> {
        self.verify_all()?;
        let missing = self.open_unverified(&x.cur, &x.next, Target::Reveal)?;
        self.check_openings()?;
        self.agree()?;
        Ok((0..x.cur.len()).map(|i| x.cur[i] ^ x.next[i] ^ missing[i]).collect())
    }

    /// A carry-save adder on the components: `s0 + s1 + s2 = (s0 ^ s1 ^ s2) + 2 maj(s0, s1, s2)`.
    /// Each component, XOR-shared alone, needs no communication, and their XOR is the share
    /// itself; the majority is one checked AND layer (`((s0^s2) & (s1^s2)) ^ s2`).
    fn a2b_operands(&mut self, x: &RShare) -> Result<(RBits, RBits)> {
        let comp = |j: usize| self.bits_component(j, x.cur.data(), x.next.data());
        let (s0, s1, s2) = (comp(0), comp(1), comp(2));
        let u = self.bits_xor(&s0, &s2);
        let v = self.bits_xor(&s1, &s2);
        let uv = self.bits_and(&u, &v)?;
        let maj = self.bits_xor(&uv, &s2);
        let carry = self.bits_linear(&maj, &|w| w.iter().map(|v| v << 1).collect());
        let sum = RBits { cur: x.cur.data().to_vec(), next: x.next.data().to_vec() };
        Ok((sum, carry))
    }

    /// The carry-save adder of [`Protocol::a2b_operands`] on bit planes, for a sign circuit
    /// of `width` bits: transposing is XOR-linear, so each party transposes its two
    /// components once (the operand `a` is their XOR, as above) and the planes of every XOR
    /// of components follow; the AND layer takes only the `width - 1` planes of the majority
    /// that the low `width` bits of the carry need (carry bit `k + 1` is majority bit `k`).
    /// Where that is not fewer AND words than the `n` of the word-wise adder (64 gates an
    /// element, whatever the width), `None`: short inputs, whose planes are mostly padding.
    fn a2b_operand_planes(&mut self, x: &RShare, width: usize) -> Result<Option<(RBits, RBits)>> {
        let n = x.len();
        let nb = n.div_ceil(64);
        if !(2..=64).contains(&width) || (width - 1) * nb >= n {
            return Ok(None);
        }
        let cur = musket_ring::low_bit_planes(x.cur.data(), n, width);
        let next = musket_ring::low_bit_planes(x.next.data(), n, width);
        let ands = (width - 1) * nb;
        let comp = |j: usize| self.bits_component(j, &cur[..ands], &next[..ands]);
        let (s0, s1, s2) = (comp(0), comp(1), comp(2));
        let u = self.bits_xor(&s0, &s2);
        let v = self.bits_xor(&s1, &s2);
        let uv = self.bits_and(&u, &v)?;
        let maj = self.bits_xor(&uv, &s2);
        let carry = self.bits_linear(&maj, &|w| {
            let mut planes = vec![0u64; nb];
            planes.extend_from_slice(w);
            planes
        });
        Ok(Some((RBits { cur, next }, carry)))
    }

    fn b2a_packed(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        self.bits_to_arith(bits, shape)
    }

    fn mul_bits(&mut self, x: &RShare, bits: &RBits) -> Result<RShare> {
        self.mul_bits_checked(x, bits)
    }
}
