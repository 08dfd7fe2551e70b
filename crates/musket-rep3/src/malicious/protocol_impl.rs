//! `Protocol` for [`Rep3Mal`]: the operations, each in its checked form (see the module
//! documentation of `malicious`).

use super::*;

/// Party 2, the truncation helper whose mask bits are checked.
const HELPER: usize = 2;

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
        let ZeroDraws { mut z, own, nxt, binary } = zv;
        let target = match parts.first().map(|p| p.gate) {
            _ if binary => Target::And,
            Some(Gate::Matmul { .. }) => Target::Matmul,
            _ => Target::Mul,
        };
        self.tamper(target, &mut z);
        let (cur, theirs) = self.base.reshare(z)?;
        for p in parts {
            let rec = Record {
                gate: p.gate,
                xc: p.x.0.to_vec(),
                xn: p.x.1.to_vec(),
                yc: p.y.0.to_vec(),
                yn: p.y.1.to_vec(),
                theirs: theirs[p.out.clone()].to_vec(),
                own: own[p.out.clone()].to_vec(),
                nxt: nxt[p.out.clone()].to_vec(),
            };
            if binary {
                self.binary.push(rec);
            } else {
                self.arith.push(rec);
            }
        }
        Ok((cur, theirs))
    }

    /// `(x_c (y_c + y_n) + x_n y_c)` for `[m, k] x [k, n]` matrices.
    fn matmul_term(xc: &RingTensor, xn: &RingTensor, yc: &RingTensor, yn: &RingTensor) -> Result<RingTensor> {
        let mut z = xc.matmul(&yc.add(yn)?)?;
        z.add_assign(&xn.matmul(yc)?)?;
        Ok(z)
    }

    /// The arithmetic 0/1 value of XOR-shared packed bits: `b0 xor b1 xor b2` from the
    /// components (each a sharing without communication), two checked products.
    fn bits_to_arith(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        let n = element_count(shape)?;
        if bits.cur.len() != n.div_ceil(64) {
            return Err(MpcError::Usage("b2a: packed length does not match the shape".into()));
        }
        let (cur, next) = (unpack_bits(&bits.cur, n), unpack_bits(&bits.next, n));
        let b: Vec<RShare> = (0..3).map(|j| self.component(j, &cur, &next, shape)).collect::<Result<_>>()?;
        let xor = |p: &mut Self, a: &RShare, c: &RShare| -> Result<RShare> {
            let prod = p.mul(a, c)?;
            let sum = p.add(a, c)?;
            p.sub(&sum, &p.scale(&prod, 2)?)
        };
        let t = xor(self, &b[0], &b[1])?;
        xor(self, &t, &b[2])
    }
}

/// `sum_b weight[b] * plane_b[e]` for each element `e < n` of 64 planes of `n` values.
fn weighted_planes(
    t: &RingTensor,
    n: usize,
    weight: &[u64; 64],
) -> std::result::Result<RingTensor, musket_ring::ShapeError> {
    let stride = n;
    let d = t.data();
    let v = (0..n)
        .map(|e| (0..64).fold(0u64, |acc, b| acc.wrapping_add(weight[b].wrapping_mul(d[b * stride + e]))))
        .collect();
    RingTensor::new(vec![n], v)
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
            self.received.update(&words_bytes(&got));
            missing = Some(got);
        } else if id == (receiver + 1) % 3 {
            let mut sent = x.next.data().to_vec();
            self.tamper(Target::Reveal, &mut sent);
            self.base.net.send_u64s(receiver, &sent)?;
        } else {
            self.vouched.update(&words_bytes(x.cur.data()));
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

    fn linear(&self, x: &RShare, f: LinearMap<'_>) -> Result<RShare> {
        self.base.linear(x, f)
    }
    fn linear2(&self, a: &RShare, b: &RShare, f: LinearMap2<'_>) -> Result<RShare> {
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
        let (m, k, n) = match (a.shape(), b.shape()) {
            ([m, k], [k2, n]) if k == k2 => (*m, *k, *n),
            (sa, sb) => {
                return Err(MpcError::Usage(format!("matmul: shapes {sa:?} and {sb:?} do not conform")))
            }
        };
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

    /// Probabilistic truncation with a checked helper. Party 2 draws the mask `r` and inputs
    /// its 64 bits as arithmetic shares, each proved to be a bit (`b (b - 1) = 0`, in party 2's
    /// proof): whatever bits it picks, `r`, `A = (r mod 2^63) >> bits` and `msb(r)` are linear
    /// in them and so consistent, which is all the result's correctness needs. `c = x + 2^62 +
    /// r` is opened to parties 0 and 1 only (each copy vouched for by the other holder), who
    /// put the public part of the semi-honest formula into the component they share; the
    /// sign term `±2^(63-bits) msb(r)` is one checked product. Same error as the semi-honest
    /// truncation: `floor(x / 2^bits)` or one more, for `|x| < 2^62`.
    fn truncate(&mut self, x: &RShare, bits: u32) -> Result<RShare> {
        if bits == 0 || bits >= 62 {
            return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
        }
        let n = x.len();
        let shape = x.shape().to_vec();
        let id = self.base.id;
        let count = 64 * n;
        // Bit t of element e at t * n + e. Party 2 holds components 2 (the mask it shares
        // with party 1) and 0 (bit minus mask, sent to party 0).
        let zeros = vec![0u64; count];
        let (cur, next, kept) = match id {
            HELPER => {
                let r = self.base.private.words(n);
                let beta: Vec<u64> = (0..64).flat_map(|t| r.iter().map(move |v| (v >> t) & 1)).collect();
                let mask = self.base.draw(Stream::Own, count);
                let rest: Vec<u64> = beta.iter().zip(&mask).map(|(b, m)| b.wrapping_sub(*m)).collect();
                let mut sent = rest.clone();
                self.tamper(Target::Input, &mut sent);
                self.base.net.send_u64s(0, &sent)?;
                (mask, rest, beta)
            }
            0 => {
                let got = self.base.net.recv_u64s(HELPER, count)?;
                (got.clone(), zeros, got)
            }
            _ => {
                let mask = self.base.draw(Stream::Next, count);
                (zeros, mask.clone(), mask)
            }
        };
        // Recorded in pieces of at most a proof batch (a piece is one party's statement).
        for piece in kept.chunks(BATCH_TERMS_ARITH) {
            let rec = Record {
                gate: Gate::BitInput { prover: HELPER },
                xc: piece.to_vec(),
                xn: Vec::new(),
                yc: Vec::new(),
                yn: Vec::new(),
                theirs: Vec::new(),
                own: Vec::new(),
                nxt: Vec::new(),
            };
            self.arith.push(rec);
        }
        let beta = self.base.share(&[count], cur, next)?;
        let weights = |f: &dyn Fn(usize) -> u64| -> [u64; 64] { std::array::from_fn(f) };
        let r_all = self.linear(&beta, &|t| weighted_planes(t, n, &weights(&|b| 1u64 << b)))?;
        let low = bits as usize;
        let high_w = weights(&|b| if (low..63).contains(&b) { 1u64 << (b - low) } else { 0 });
        let high = self.linear(&beta, &|t| weighted_planes(t, n, &high_w))?;
        let msb = self.linear(&beta, &|t| weighted_planes(t, n, &weights(&|b| u64::from(b == 63))))?;
        let flat = self.reshape(x, &[n])?;
        let masked = self.add(&flat, &r_all)?;
        let masked = self.add_public(&masked, &RingTensor::new(vec![n], vec![1u64 << 62; n])?)?;
        // Open to parties 0 and 1: party 1 sends party 0 component 2 (party 2 vouches for
        // it), party 2 sends party 1 component 0 (party 0 vouches for it).
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
        let (public, sign): (Vec<u64>, Vec<u64>) = match &missing {
            Some(m) => (0..n)
                .map(|i| {
                    let c = mc[i].wrapping_add(mn[i]).wrapping_add(m[i]);
                    let public = ((c & (u64::MAX >> 1)) >> bits)
                        .wrapping_sub(1u64 << (62 - bits))
                        .wrapping_add((c >> 63) << (63 - bits));
                    let sign =
                        if c >> 63 == 1 { (1u64 << (63 - bits)).wrapping_neg() } else { 1u64 << (63 - bits) };
                    (public, sign)
                })
                .unzip(),
            None => (vec![0; n], vec![0; n]),
        };
        // Component 1 is held by parties 0 and 1, the two that know c.
        let public = self.component(1, &public, &public, &[n])?;
        let sign = self.component(1, &sign, &sign, &[n])?;
        let b_term = self.mul(&sign, &msb)?;
        let y = self.sub(&b_term, &high)?;
        let y = self.add(&y, &public)?;
        self.reshape(&y, &shape)
    }

    fn bits_len(&self, x: &RBits) -> usize {
        self.base.bits_len(x)
    }
    fn bits_linear(&self, x: &RBits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> RBits {
        self.base.bits_linear(x, f)
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
        let n = x.len();
        let id = self.base.id;
        let zeros = vec![0u64; n];
        let comp = |j: usize| -> RBits {
            if j == id {
                RBits { cur: x.cur.data().to_vec(), next: zeros.clone() }
            } else if j == (id + 1) % 3 {
                RBits { cur: zeros.clone(), next: x.next.data().to_vec() }
            } else {
                RBits { cur: zeros.clone(), next: zeros.clone() }
            }
        };
        let (s0, s1, s2) = (comp(0), comp(1), comp(2));
        let u = self.bits_xor(&s0, &s2);
        let v = self.bits_xor(&s1, &s2);
        let uv = self.bits_and(&u, &v)?;
        let maj = self.bits_xor(&uv, &s2);
        let carry = self.bits_linear(&maj, &|w| w.iter().map(|v| v << 1).collect());
        let sum = RBits { cur: x.cur.data().to_vec(), next: x.next.data().to_vec() };
        Ok((sum, carry))
    }

    fn b2a_packed(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        self.bits_to_arith(bits, shape)
    }
}
