use crate::ahead::Ahead;
use crate::correlations::Material;
use crate::dealer::{decode_plan, encode_plan, Request};
use crate::DEALER;
use musket_core::{
    batch_item, batched_dims, element_count, im2col_dims, matrix_dims, or_abort, os_seed, rows_dims,
    MpcError, Prg, Protocol, Result, Share,
};
use musket_net::{CommStats, Net, NetError, Words};
use musket_ring::{unpack_bits, Im2col, LinearOp, LinearOp2, RingMap, RingTensor};

/// One party's additive share of a tensor.
#[derive(Clone)]
pub struct AShare(pub RingTensor);

impl std::fmt::Debug for AShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AShare{:?}", self.0.shape())
    }
}

impl Share for AShare {
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn parts(&self) -> Vec<Vec<u64>> {
        vec![self.0.data().to_vec()]
    }
}

/// One party's XOR share of a vector of words.
#[derive(Clone)]
pub struct BShare(pub Vec<u64>);

impl std::fmt::Debug for BShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BShare[{}]", self.0.len())
    }
}

/// A compute party (0 or 1) of the dealer-assisted 2PC protocol.
pub struct Dealer2pc {
    net: Net,
    id: usize,
    dealer_prg: Prg,
    pair_prg: Prg,
    finished: bool,
    /// Every request made so far (the source of preprocessing plans).
    log: Vec<Request>,
    /// Material produced ahead of time by [`Protocol::preprocess`].
    ahead: Ahead,
}

impl std::fmt::Debug for Dealer2pc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dealer2pc").field("id", &self.id).finish()
    }
}

/// A 16-byte seed received from `peer`, or a malformed-message error.
pub(crate) fn seed_from(bytes: Vec<u8>, peer: usize) -> Result<[u8; 16]> {
    bytes
        .try_into()
        .map_err(|_| MpcError::Net(NetError::Malformed { peer, reason: "expected a 16-byte seed".into() }))
}

fn zip_words(a: &[u64], b: &[u64], f: impl Fn(u64, u64) -> u64) -> Vec<u64> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

/// A compute party's set-up on a 2PC transport (parties 0 and 1, the dealer 2), whose
/// traffic with the dealer then counts as preprocessing: returns this party's id, the seed
/// the dealer sent it, and a seed shared with the other party (party 0 chooses it).
pub(crate) fn join(net: &mut Net) -> Result<(usize, [u8; 16], [u8; 16])> {
    let id = net.party_id();
    if id > 1 || net.n_parties() != 3 {
        return Err(MpcError::Usage("2PC needs parties 0 and 1 plus the dealer as party 2".into()));
    }
    net.set_preprocessing_peer(DEALER);
    or_abort(net, |net| {
        let dealer_seed = seed_from(net.recv_bytes(DEALER)?, DEALER)?;
        let pair_seed = if id == 0 {
            let s = os_seed();
            net.send_bytes(1, &s)?;
            s
        } else {
            seed_from(net.recv_bytes(0)?, 0)?
        };
        Ok((id, dealer_seed, pair_seed))
    })
}

impl Dealer2pc {
    /// Joins the computation: receives the dealer's seed and agrees on a seed with the other
    /// compute party. `net` must connect parties 0, 1 and the dealer (party 2).
    pub fn new(mut net: Net) -> Result<Self> {
        let (id, dealer_seed, pair_seed) = join(&mut net)?;
        Ok(Self {
            net,
            id,
            dealer_prg: Prg::from_seed(dealer_seed),
            pair_prg: Prg::from_seed(pair_seed),
            finished: false,
            log: Vec::new(),
            ahead: Ahead::default(),
        })
    }

    fn other(&self) -> usize {
        1 - self.id
    }

    fn request(&mut self, req: Request) -> Result<()> {
        // Both parties check, so that an oversized operation fails the same way on each.
        req.check().map_err(|e| MpcError::Usage(format!("operation too large for the dealer: {e}")))?;
        if req != Request::Done {
            self.log.push(req);
            if let Some(planned) = self.ahead.planned.pop_front() {
                if planned != req {
                    return Err(MpcError::Usage(
                        "the operations differ from the preprocessed plan (prepared for another computation)"
                            .into(),
                    ));
                }
                return Ok(());
            }
        }
        if self.id == 0 {
            self.net.send_bytes(DEALER, &req.encode())?;
        }
        Ok(())
    }

    /// Asks for `req` (or finds it in the plan) and draws this party's random parts of it.
    fn draw(&mut self, req: Request) -> Result<Material> {
        self.request(req)?;
        Ok(Material::draw(&req.layout(), |n| self.seed_words(n)))
    }

    /// Words from the seed shared with the dealer, timed as preprocessing (they do not depend
    /// on the inputs).
    fn seed_words(&mut self, n: usize) -> Vec<u64> {
        let started = std::time::Instant::now();
        let words = self.dealer_prg.words(n);
        self.net.add_preprocessing_time(started.elapsed());
        words
    }

    /// This party's share of `req`'s correlated value (after its parts): party 0 draws it from
    /// its dealer seed; party 1 receives it from the dealer (or takes the one received ahead
    /// of time).
    fn correction(&mut self, req: Request) -> Result<Vec<u64>> {
        let n = req.layout().correction;
        if self.id == 0 {
            return Ok(self.seed_words(n));
        }
        match self.ahead.corrections.pop_front() {
            Some(c) if c.len() == n => Ok(c),
            Some(_) => Err(MpcError::Usage("preprocessed correction of the wrong size".into())),
            None => Ok(self.net.recv_u64s(DEALER, n)?),
        }
    }

    /// Sends our words to the other party and returns theirs.
    fn exchange(&mut self, mine: &[u64]) -> Result<Vec<u64>> {
        let other = self.other();
        self.net.send_u64s(other, mine)?;
        Ok(self.net.recv_u64s(other, mine.len())?)
    }

    /// Sends the other party `n` words that `fill` writes straight into the message, and
    /// returns its `n` words, read in place (see [`Net::send_u64s_with`] and
    /// [`Net::recv_words`]): for masked operands, which each side recomputes where it needs
    /// them rather than keeping a copy.
    fn exchange_with(&mut self, n: usize, fill: impl FnOnce(&mut [u64])) -> Result<Words> {
        let other = self.other();
        self.net.send_u64s_with(other, n, fill)?;
        Ok(self.net.recv_words(other, n)?)
    }

    /// A Beaver matrix product of `a` read as `[m, k]` (its first dimension, and the product
    /// of the others) and `b` `[k, n]`, or, with `cols`, of `a` and the im2col matrix of the
    /// images `b`: then the masked images are opened, not their matrix (`kh kw` times larger
    /// at stride 1), and both parties apply the map to the opened difference and to their
    /// share of the images' mask.
    fn matmul_of_rows(&mut self, a: &AShare, b: &AShare, cols: Option<&Im2col>) -> Result<AShare> {
        let (m, k, n, req) = match cols {
            None => {
                let (m, k, n) = rows_dims(a.shape(), b.shape())?;
                (m, k, n, Request::MatTriple { m: m as u64, k: k as u64, n: n as u64 })
            }
            Some(cols) => {
                let (m, k, n) = im2col_dims(a.shape(), b.shape(), cols)?;
                (m, k, n, Request::ConvTriple { m: m as u64, cols: *cols })
            }
        };
        let [ta, tb]: [Vec<u64>; 2] = self.draw(req)?.into_parts().try_into().expect("two parts");
        let (x, y) = (a.0.data(), b.0.data());
        let theirs = self.exchange_with(m * k + y.len(), |out| {
            let (d, e) = out.split_at_mut(m * k);
            for ((o, v), t) in d.iter_mut().zip(x).zip(&ta).chain(e.iter_mut().zip(y).zip(&tb)) {
                *o = v.wrapping_sub(*t);
            }
        })?;
        let tc = RingTensor::new(vec![m, n], self.correction(req)?)?;
        // The opened masked operands, ours recomputed plus theirs.
        let open = |v: &[u64], t: &[u64], th: &[u64]| -> Vec<u64> {
            v.iter().zip(t).zip(th).map(|((v, t), th)| v.wrapping_sub(*t).wrapping_add(*th)).collect()
        };
        let (d_theirs, e_theirs) = theirs.split_at(m * k);
        let d = RingTensor::new(vec![m, k], open(x, &ta, d_theirs))?;
        let e = RingTensor::new(b.shape().to_vec(), open(y, &tb, e_theirs))?;
        let tb = RingTensor::new(b.shape().to_vec(), tb)?;
        let (e, tb) = match cols {
            None => (e, tb),
            Some(cols) => (cols.map(&e)?, cols.map(&tb)?),
        };
        let ta = RingTensor::new(vec![m, k], ta)?;
        // z_i = c_i + D (B_i [+ E for party 0]) + A_i E: two local products per party.
        let mut z = tc;
        let right = if self.id == 0 { tb.add(&e)? } else { tb };
        z.add_assign(&d.matmul(&right)?)?;
        z.add_assign(&ta.matmul(&e)?)?;
        Ok(AShare(z))
    }

    fn check_same(a: &RingTensor, b: &RingTensor, op: &str) -> Result<()> {
        if a.shape() != b.shape() {
            return Err(MpcError::Usage(format!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape())));
        }
        Ok(())
    }
}

impl Drop for Dealer2pc {
    fn drop(&mut self) {
        if !self.finished && self.id == 0 {
            let _ = self.net.send_bytes(DEALER, &Request::Done.encode());
        }
    }
}

impl Protocol for Dealer2pc {
    type Share = AShare;
    type Bits = BShare;

    fn name(&self) -> &'static str {
        "2pc"
    }
    fn party_id(&self) -> usize {
        self.id
    }
    fn compute_parties(&self) -> usize {
        2
    }
    fn stats(&self) -> CommStats {
        self.net.stats().clone()
    }
    fn material_requests(&self) -> usize {
        self.log.len()
    }
    fn material_plan(&self, from: usize) -> Vec<u8> {
        encode_plan(&self.log[from.min(self.log.len())..])
    }
    fn preprocess(&mut self, plan: &[u8]) -> Result<()> {
        let requests =
            decode_plan(plan).map_err(|e| MpcError::Usage(format!("bad preprocessing plan: {e}")))?;
        if requests.contains(&Request::Done) {
            return Err(MpcError::Usage("bad preprocessing plan: it ends the dealer".into()));
        }
        if self.id == 0 {
            for r in &requests {
                self.net.send_bytes(DEALER, &r.encode())?;
            }
        }
        let mut corrections = std::collections::VecDeque::new();
        if self.id == 1 {
            // One message per request, empty ones included (as `correction` reads them online).
            for r in &requests {
                corrections.push_back(self.net.recv_u64s(DEALER, r.layout().correction)?);
            }
        }
        self.ahead.load(requests, corrections);
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        if !self.finished {
            self.finished = true;
            self.request(Request::Done)?;
        }
        Ok(())
    }
    fn abort(&mut self, reason: &str) {
        self.finished = true;
        self.net.abort(reason);
    }

    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<AShare> {
        if owner > 1 {
            return Err(MpcError::Usage(format!("input owner {owner} is not a compute party")));
        }
        let n = element_count(shape)?;
        // Both parties draw the same mask from their common seed: the non-owner's share is
        // the mask, the owner's is value - mask. No message is needed.
        let mask = self.pair_prg.words(n);
        let data = if self.id == owner {
            let v = value.ok_or_else(|| MpcError::Usage("the input owner must supply the value".into()))?;
            if v.shape() != shape {
                return Err(MpcError::Usage(format!("input has shape {:?}, expected {shape:?}", v.shape())));
            }
            zip_words(v.data(), &mask, u64::wrapping_sub)
        } else {
            mask
        };
        Ok(AShare(RingTensor::new(shape.to_vec(), data)?))
    }

    fn reveal_to(&mut self, x: &AShare, receiver: usize) -> Result<Option<RingTensor>> {
        if receiver > 1 {
            return Err(MpcError::Usage(format!("receiver {receiver} is not a compute party")));
        }
        let other = self.other();
        if self.id == receiver {
            let theirs = self.net.recv_u64s(other, x.len())?;
            let data = zip_words(x.0.data(), &theirs, u64::wrapping_add);
            Ok(Some(RingTensor::new(x.shape().to_vec(), data)?))
        } else {
            self.net.send_u64s(other, x.0.data())?;
            Ok(None)
        }
    }

    fn reveal(&mut self, x: &AShare) -> Result<RingTensor> {
        let theirs = self.exchange(x.0.data())?;
        Ok(RingTensor::new(x.shape().to_vec(), zip_words(x.0.data(), &theirs, u64::wrapping_add))?)
    }

    fn linear(&self, x: &AShare, f: &dyn LinearOp) -> Result<AShare> {
        Ok(AShare(f.apply(&x.0)?))
    }
    fn linear2(&self, a: &AShare, b: &AShare, f: &dyn LinearOp2) -> Result<AShare> {
        Ok(AShare(f.apply2(&a.0, &b.0)?))
    }
    fn add_public(&self, x: &AShare, c: &RingTensor) -> Result<AShare> {
        if self.id == 0 {
            Ok(AShare(x.0.add(c)?))
        } else {
            Self::check_same(&x.0, c, "add_public")?;
            Ok(x.clone())
        }
    }

    fn mul(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        Self::check_same(&a.0, &b.0, "mul")?;
        let n = a.len();
        let req = Request::Triple { n: n as u64 };
        let material = self.draw(req)?;
        let (ta, tb) = (material.part(0), material.part(1));
        let (x, y) = (a.0.data(), b.0.data());
        let theirs = self.exchange_with(2 * n, |out| {
            let (d, e) = out.split_at_mut(n);
            for ((o, v), t) in d.iter_mut().zip(x).zip(ta).chain(e.iter_mut().zip(y).zip(tb)) {
                *o = v.wrapping_sub(*t);
            }
        })?;
        let tc = self.correction(req)?;
        // d e is added by party 0 alone.
        let first = if self.id == 0 { u64::MAX } else { 0 };
        let (d_theirs, e_theirs) = theirs.split_at(n);
        let z = (0..n)
            .map(|i| {
                let d = x[i].wrapping_sub(ta[i]).wrapping_add(d_theirs[i]);
                let e = y[i].wrapping_sub(tb[i]).wrapping_add(e_theirs[i]);
                let z = tc[i].wrapping_add(d.wrapping_mul(tb[i])).wrapping_add(e.wrapping_mul(ta[i]));
                z.wrapping_add(d.wrapping_mul(e) & first)
            })
            .collect();
        Ok(AShare(RingTensor::new(a.shape().to_vec(), z)?))
    }

    fn matmul(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        matrix_dims(a.shape(), b.shape())?;
        self.matmul_of_rows(a, b, None)
    }

    /// As the default (a product, then the truncation), without copying `a`.
    fn matmul_rows_truncate(&mut self, a: &AShare, b: &AShare, bits: u32) -> Result<AShare> {
        let prod = self.matmul_of_rows(a, b, None)?;
        self.truncate(&prod, bits)
    }

    /// The images opened masked, not their im2col matrix (a convolution triple).
    fn matmul_im2col_truncate(
        &mut self,
        a: &AShare,
        images: &AShare,
        cols: &Im2col,
        bits: u32,
    ) -> Result<AShare> {
        let prod = self.matmul_of_rows(a, images, Some(cols))?;
        self.truncate(&prod, bits)
    }

    fn matmul_batched(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        let (bt, m, k, n) = batched_dims(a.shape(), b.shape())?;
        // Material per item in the dealer's order: A, B, then C (party 0 draws it now).
        let mut mats = Vec::with_capacity(bt);
        let mut masked = Vec::with_capacity(bt * (m * k + k * n));
        for i in 0..bt {
            let req = Request::MatTriple { m: m as u64, k: k as u64, n: n as u64 };
            let [ta, tb]: [Vec<u64>; 2] = self.draw(req)?.into_parts().try_into().expect("two parts");
            let (ta, tb) = (RingTensor::new(vec![m, k], ta)?, RingTensor::new(vec![k, n], tb)?);
            let tc = if self.id == 0 { Some(self.correction(req)?) } else { None };
            masked.extend(
                batch_item(&a.0, i, m, k).data().iter().zip(ta.data()).map(|(x, t)| x.wrapping_sub(*t)),
            );
            masked.extend(
                batch_item(&b.0, i, k, n).data().iter().zip(tb.data()).map(|(x, t)| x.wrapping_sub(*t)),
            );
            mats.push((req, ta, tb, tc));
        }
        let theirs = self.exchange(&masked)?;
        let per = m * k + k * n;
        let mut out = Vec::with_capacity(bt * m * n);
        for (i, (req, ta, tb, tc)) in mats.into_iter().enumerate() {
            let tc = match tc {
                Some(c) => c,
                None => self.correction(req)?,
            };
            let opened = zip_words(
                &masked[i * per..(i + 1) * per],
                &theirs[i * per..(i + 1) * per],
                u64::wrapping_add,
            );
            let d = RingTensor::new(vec![m, k], opened[..m * k].to_vec())?;
            let e = RingTensor::new(vec![k, n], opened[m * k..].to_vec())?;
            let mut z = RingTensor::new(vec![m, n], tc)?;
            let right = if self.id == 0 { tb.add(&e)? } else { tb };
            z.add_assign(&d.matmul(&right)?)?;
            z.add_assign(&ta.matmul(&e)?)?;
            out.extend_from_slice(z.data());
        }
        Ok(AShare(RingTensor::new(vec![bt, m, n], out)?))
    }

    fn truncate(&mut self, x: &AShare, bits: u32) -> Result<AShare> {
        if bits == 0 || bits >= 62 {
            return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
        }
        let n = x.len();
        let req = Request::Trunc { n: n as u64, bits: bits as u64 };
        let material = self.draw(req)?;
        let r = material.part(0);
        // Shift the value into [0, 2^63) so that the mask's top bit tells whether c wrapped.
        let offset = if self.id == 0 { 1u64 << 62 } else { 0 };
        let xs = x.0.data();
        let theirs = self.exchange_with(n, |out| {
            for ((o, v), r) in out.iter_mut().zip(xs).zip(r) {
                *o = v.wrapping_add(offset).wrapping_add(*r);
            }
        })?;
        let corr = self.correction(req)?;
        let (sh_a, sh_b) = corr.split_at(n);
        // The public part is added by party 0 alone.
        let first = if self.id == 0 { u64::MAX } else { 0 };
        let out = (0..n)
            .map(|i| {
                let c = xs[i].wrapping_add(offset).wrapping_add(r[i]).wrapping_add(theirs[i]);
                let c_msb = c >> 63;
                // -sh_a + sh_b when msb(c) = 0, -sh_a - sh_b when it is 1.
                let sign = 0u64.wrapping_sub(c_msb);
                let v = sh_a[i].wrapping_neg().wrapping_add((sh_b[i] ^ sign).wrapping_sub(sign));
                let public = ((c & (u64::MAX >> 1)) >> bits)
                    .wrapping_sub(1u64 << (62 - bits))
                    .wrapping_add(c_msb << (63 - bits));
                v.wrapping_add(public & first)
            })
            .collect();
        Ok(AShare(RingTensor::new(x.shape().to_vec(), out)?))
    }

    fn bits_len(&self, x: &BShare) -> usize {
        x.0.len()
    }
    fn bits_linear(&self, x: &BShare, f: &dyn Fn(&[u64]) -> Vec<u64>) -> BShare {
        BShare(f(&x.0))
    }
    fn bits_linear2(&self, a: &BShare, b: &BShare, f: musket_core::WordMap2<'_>) -> BShare {
        BShare(f(&a.0, &b.0))
    }
    fn bits_concat(&self, parts: &[&BShare]) -> BShare {
        BShare(musket_ring::concat_words(parts.iter().map(|p| p.0.as_slice())))
    }
    fn bits_xor(&self, a: &BShare, b: &BShare) -> BShare {
        BShare(zip_words(&a.0, &b.0, |x, y| x ^ y))
    }
    fn bits_xor_public(&self, a: &BShare, c: &[u64]) -> BShare {
        if self.id == 0 {
            BShare(zip_words(&a.0, c, |x, y| x ^ y))
        } else {
            a.clone()
        }
    }
    fn bits_and(&mut self, a: &BShare, b: &BShare) -> Result<BShare> {
        if a.0.len() != b.0.len() {
            return Err(MpcError::Usage("bits_and: lengths differ".into()));
        }
        let w = a.0.len();
        let req = Request::BitTriple { words: w as u64 };
        let material = self.draw(req)?;
        let (u, v) = (material.part(0), material.part(1));
        let (x, y) = (&a.0, &b.0);
        let theirs = self.exchange_with(2 * w, |out| {
            let (d, e) = out.split_at_mut(w);
            for ((o, p), m) in d.iter_mut().zip(x).zip(u).chain(e.iter_mut().zip(y).zip(v)) {
                *o = p ^ m;
            }
        })?;
        let t = self.correction(req)?;
        // d AND e is added by party 0 alone.
        let first = if self.id == 0 { u64::MAX } else { 0 };
        let (d_theirs, e_theirs) = theirs.split_at(w);
        let z = (0..w)
            .map(|i| {
                let d = x[i] ^ u[i] ^ d_theirs[i];
                let e = y[i] ^ v[i] ^ e_theirs[i];
                t[i] ^ (d & v[i]) ^ (e & u[i]) ^ (d & e & first)
            })
            .collect();
        Ok(BShare(z))
    }
    fn reveal_bits(&mut self, x: &BShare) -> Result<Vec<u64>> {
        let other = self.other();
        self.net.send_u64s(other, &x.0)?;
        let theirs = self.net.recv_u64s(other, x.0.len())?;
        Ok(zip_words(&x.0, &theirs, |a, b| a ^ b))
    }
    fn a2b_operands(&mut self, x: &AShare) -> Result<(BShare, BShare)> {
        // x = x0 + x1: party 0 alone knows x0, party 1 alone knows x1, so each is already a
        // valid XOR sharing (the other party's share is zero). No communication.
        let zeros = vec![0u64; x.len()];
        let mine = x.0.data().to_vec();
        Ok(if self.id == 0 { (BShare(mine), BShare(zeros)) } else { (BShare(zeros), BShare(mine)) })
    }
    fn mul_bits(&mut self, x: &AShare, bits: &BShare) -> Result<AShare> {
        let n = x.len();
        let nb = n.div_ceil(64);
        if bits.0.len() != nb {
            return Err(MpcError::Usage("mul_bits: packed length does not match the shape".into()));
        }
        let req = Request::BitMul { n: n as u64 };
        let material = self.draw(req)?;
        let (t, a) = (material.part(0), material.part(1));
        // Open c = b xor t and e = x - a together (one round). With b = c + t - 2ct:
        // x b = (1 - 2c) x t + c x, and x t = e t + a t from the dealer's shares of t and a t.
        let mut masked = zip_words(&bits.0, t, |u, v| u ^ v);
        masked.extend(x.0.data().iter().zip(a).map(|(v, a)| v.wrapping_sub(*a)));
        let theirs = self.exchange(&masked)?;
        let corr = self.correction(req)?;
        let (t_sh, at_sh) = corr.split_at(n);
        let c = unpack_bits(&zip_words(&masked[..nb], &theirs[..nb], |u, v| u ^ v), n);
        let xs = x.0.data();
        let out = (0..n)
            .map(|i| {
                let e = masked[nb + i].wrapping_add(theirs[nb + i]);
                let xt = e.wrapping_mul(t_sh[i]).wrapping_add(at_sh[i]);
                if c[i] == 1 {
                    xs[i].wrapping_sub(xt)
                } else {
                    xt
                }
            })
            .collect();
        Ok(AShare(RingTensor::new(x.shape().to_vec(), out)?))
    }
    fn b2a_packed(&mut self, bits: &BShare, shape: &[usize]) -> Result<AShare> {
        let n = element_count(shape)?;
        let nb = n.div_ceil(64);
        if bits.0.len() != nb {
            return Err(MpcError::Usage("b2a: packed length does not match the shape".into()));
        }
        let req = Request::RandomBits { n: n as u64 };
        let material = self.draw(req)?;
        // Open c = b xor t, then b = c + (1 - 2c) t with t's additive share.
        let masked = zip_words(&bits.0, material.part(0), |a, b| a ^ b);
        let other = self.other();
        self.net.send_u64s(other, &masked)?;
        let theirs = self.net.recv_u64s(other, nb)?;
        let big_t = self.correction(req)?;
        let c = unpack_bits(&zip_words(&masked, &theirs, |a, b| a ^ b), n);
        let first = self.id == 0;
        let out = (0..n)
            .map(|i| {
                let v = if c[i] == 1 { big_t[i].wrapping_neg() } else { big_t[i] };
                if first {
                    v.wrapping_add(c[i])
                } else {
                    v
                }
            })
            .collect();
        Ok(AShare(RingTensor::new(shape.to_vec(), out)?))
    }
}
