use musket_core::{
    batch_item, batched_dims, element_count, matrix_dims, or_abort, os_seed, rows_dims, MpcError, Prg,
    Protocol, Result, Share,
};
use musket_net::{CommStats, Net, NetError};
use musket_ring::{LinearOp, LinearOp2, RingTensor};

use crate::truncate::Truncand;

/// One party's replicated share `(s_i, s_{i+1})` of a tensor.
#[derive(Clone)]
pub struct RShare {
    /// `s_i`.
    pub cur: RingTensor,
    /// `s_{i+1}`.
    pub next: RingTensor,
}

impl std::fmt::Debug for RShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RShare{:?}", self.cur.shape())
    }
}

impl Share for RShare {
    fn shape(&self) -> &[usize] {
        self.cur.shape()
    }
    fn parts(&self) -> Vec<Vec<u64>> {
        vec![self.cur.data().to_vec(), self.next.data().to_vec()]
    }
}

/// One party's replicated XOR share of a vector of words.
#[derive(Clone)]
pub struct RBits {
    /// `b_i`.
    pub cur: Vec<u64>,
    /// `b_{i+1}`.
    pub next: Vec<u64>,
}

impl std::fmt::Debug for RBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RBits[{}]", self.cur.len())
    }
}

/// A party of the 3PC replicated protocol.
pub struct Rep3 {
    pub(crate) net: Net,
    pub(crate) id: usize,
    /// `F(k_i)`, shared with the previous party.
    own: Prg,
    /// `F(k_{i+1})`, shared with the next party.
    nxt: Prg,
    /// Randomness known to this party alone.
    pub(crate) private: Prg,
}

impl std::fmt::Debug for Rep3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rep3").field("id", &self.id).finish()
    }
}

fn zip_words(a: &[u64], b: &[u64], f: impl Fn(u64, u64) -> u64) -> Vec<u64> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

/// Words of the next stream drawn at a time into a stack buffer when a zero share is
/// combined with cross terms (fits L1 with the operands' runs).
const ZERO_SHARE_RUN: usize = 512;

/// Party i's cross terms of one product element: `a_i (b_i + b_(i+1)) + a_(i+1) b_i`.
pub(crate) fn cross_term(ac: u64, an: u64, bc: u64, bn: u64) -> u64 {
    ac.wrapping_mul(bc.wrapping_add(bn)).wrapping_add(an.wrapping_mul(bc))
}

/// Which PRG a draw comes from.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    /// Shared with the previous party.
    Own,
    /// Shared with the next party.
    Next,
}

impl Rep3 {
    /// Joins the computation: sends our key to the previous party and receives the next
    /// party's key. `net` must connect exactly three parties.
    pub fn new(net: Net) -> Result<Self> {
        Ok(Self::with_keys(net)?.0)
    }

    /// [`Rep3::new`], also returning the seeds of `k_i` and `k_{i+1}` (from which the
    /// malicious back end derives its proof streams).
    pub(crate) fn with_keys(mut net: Net) -> Result<(Self, [u8; 16], [u8; 16])> {
        let id = net.party_id();
        if net.n_parties() != 3 {
            return Err(MpcError::Usage("3PC needs exactly three parties".into()));
        }
        let own_seed = os_seed();
        let next_seed: [u8; 16] = or_abort(&mut net, |net| {
            net.send_bytes((id + 2) % 3, &own_seed)?;
            net.recv_bytes((id + 1) % 3)?.try_into().map_err(|_| {
                MpcError::Net(NetError::Malformed {
                    peer: (id + 1) % 3,
                    reason: "expected a 16-byte key".into(),
                })
            })
        })?;
        let party = Self {
            net,
            id,
            own: Prg::from_seed(own_seed),
            nxt: Prg::from_seed(next_seed),
            private: Prg::from_os(),
        };
        Ok((party, own_seed, next_seed))
    }

    pub(crate) fn prev(&self) -> usize {
        (self.id + 2) % 3
    }
    pub(crate) fn next_party(&self) -> usize {
        (self.id + 1) % 3
    }

    /// `n` words from one of this party's PRG streams, timed as preprocessing (the zero
    /// shares, masks and truncation material are input-independent).
    pub(crate) fn draw(&mut self, stream: Stream, n: usize) -> Vec<u64> {
        let started = std::time::Instant::now();
        let words = match stream {
            Stream::Own => self.own.words(n),
            Stream::Next => self.nxt.words(n),
        };
        self.net.add_preprocessing_time(started.elapsed());
        words
    }

    /// A copy of `stream` at its current position ([`musket_core::Prg::snapshot`]).
    pub(crate) fn stream_snapshot(&self, stream: Stream) -> musket_core::Prg {
        match stream {
            Stream::Own => self.own.snapshot(),
            Stream::Next => self.nxt.snapshot(),
        }
    }

    /// [`Rep3::draw`] into a buffer: the same words the stream would give a `draw`.
    pub(crate) fn draw_into(&mut self, stream: Stream, out: &mut [u64]) {
        let started = std::time::Instant::now();
        match stream {
            Stream::Own => self.own.fill(out),
            Stream::Next => self.nxt.fill(out),
        }
        self.net.add_preprocessing_time(started.elapsed());
    }

    /// This party's additive term of `a * b` (its cross terms plus a zero share), which
    /// [`Rep3::reshare`] turns into a replicated share.
    pub(crate) fn product_term(&mut self, a: &RShare, b: &RShare) -> Vec<u64> {
        let (ac, an, bc, bn) = (a.cur.data(), a.next.data(), b.cur.data(), b.next.data());
        self.term_with_zero_share(a.len(), |at, zs, next| {
            let to = at + zs.len();
            let operands = ac[at..to].iter().zip(&an[at..to]).zip(bc[at..to].iter().zip(&bn[at..to]));
            for ((t, o), ((&ac, &an), (&bc, &bn))) in zs.iter_mut().zip(next).zip(operands) {
                *t = t.wrapping_sub(*o).wrapping_add(cross_term(ac, an, bc, bn));
            }
        })
    }

    /// This party's term of a product with a zero share folded in, without a full-length
    /// buffer for the second stream: `z` starts as our own stream's words and
    /// `combine(at, z_run, next_run)` folds in, run by run from element `at`, the next
    /// stream's words and the cross terms (the zero share is the streams' difference, or
    /// XOR). The next stream's words go through a cache-sized stack buffer.
    fn term_with_zero_share(&mut self, n: usize, combine: impl Fn(usize, &mut [u64], &[u64])) -> Vec<u64> {
        let mut z = self.draw(Stream::Own, n);
        let mut other = [0u64; ZERO_SHARE_RUN];
        for (run, zs) in z.chunks_mut(ZERO_SHARE_RUN).enumerate() {
            let next = &mut other[..zs.len()];
            self.draw_into(Stream::Next, next);
            combine(run * ZERO_SHARE_RUN, zs, next);
        }
        z
    }

    /// This party's unmasked additive term of `a * b`: the cross terms it can compute.
    fn cross_terms(a: &RShare, b: &RShare) -> Vec<u64> {
        let (ac, an, bc, bn) = (a.cur.data(), a.next.data(), b.cur.data(), b.next.data());
        (0..a.len()).map(|i| cross_term(ac[i], an[i], bc[i], bn[i])).collect()
    }

    /// This party's unmasked additive term of the matrix product `a b`.
    fn matmul_terms(a: &RShare, b: &RShare) -> Result<RingTensor> {
        Self::matmul_terms_of(&a.cur, &a.next, &b.cur, &b.next)
    }

    /// `a_i (b_i + b_{i+1}) + a_{i+1} b_i`, in one matrix product where a component is zero.
    /// A value input by one party has a zero component (the owner's `s_(owner+2)`): every
    /// weight a model owner shares, and a data owner's input, so that two of the three parties
    /// form a weight product with one matrix product instead of two.
    /// Whether a component is all zero is public: a component of a secret's share is
    /// otherwise uniformly random (and the scan stops at its first nonzero word).
    pub(crate) fn matmul_terms_of(
        ac: &RingTensor,
        an: &RingTensor,
        bc: &RingTensor,
        bn: &RingTensor,
    ) -> Result<RingTensor> {
        // `x` may be a matrix of rows with more dimensions (`matmul_rows_truncate`): callers
        // have checked the shapes.
        let product = |x: &RingTensor, y: &RingTensor| -> Result<RingTensor> { Ok(x.matmul_rows(y)?) };
        let zero = |t: &RingTensor| t.data().iter().all(|&w| w == 0);
        if zero(bc) {
            return product(ac, bn);
        }
        if zero(bn) {
            return product(&ac.add(an)?, bc);
        }
        if zero(ac) {
            return product(an, bc);
        }
        if zero(an) {
            return product(ac, &bc.add(bn)?);
        }
        let mut z = product(ac, &bc.add(bn)?)?;
        z.add_assign(&product(an, bc)?)?;
        Ok(z)
    }

    /// This party's unmasked additive terms of a batch of matrix products.
    fn matmul_batched_terms(a: &RShare, b: &RShare) -> Result<(Vec<usize>, Vec<u64>)> {
        let (bt, m, k, n) = batched_dims(a.shape(), b.shape())?;
        let mut z = Vec::with_capacity(bt * m * n);
        for i in 0..bt {
            let (ac, an) = (batch_item(&a.cur, i, m, k), batch_item(&a.next, i, m, k));
            let (bc, bn) = (batch_item(&b.cur, i, k, n), batch_item(&b.next, i, k, n));
            let zi = Self::matmul_terms_of(&ac, &an, &bc, &bn)?;
            z.extend_from_slice(zi.data());
        }
        Ok((vec![bt, m, n], z))
    }

    fn check_matmul(a: &RShare, b: &RShare) -> Result<[usize; 2]> {
        let (m, _, n) = matrix_dims(a.shape(), b.shape())?;
        Ok([m, n])
    }

    pub(crate) fn zero_share(&mut self, n: usize, xor: bool) -> Vec<u64> {
        let (a, b) = (self.draw(Stream::Own, n), self.draw(Stream::Next, n));
        if xor {
            zip_words(&a, &b, |x, y| x ^ y)
        } else {
            zip_words(&a, &b, u64::wrapping_sub)
        }
    }

    /// Turns this party's additive term `z_i` (the terms sum to the secret) into a replicated
    /// share: send `z_i` to the previous party, receive `z_{i+1}` from the next.
    pub(crate) fn reshare(&mut self, z: Vec<u64>) -> Result<(Vec<u64>, Vec<u64>)> {
        let (prev, next) = (self.prev(), self.next_party());
        self.net.send_u64s(prev, &z)?;
        let theirs = self.net.recv_u64s(next, z.len())?;
        Ok((z, theirs))
    }

    /// Shares `n` words owned by `owner`, with `combine(value, mask)` and its inverse implied:
    /// component `owner` is a PRF mask, component `owner+2` is zero, component `owner+1` is
    /// `combine(value, mask)` sent by the owner to the next party. One message of n words.
    pub(crate) fn input_words(
        &mut self,
        owner: usize,
        value: Option<&[u64]>,
        n: usize,
        combine: fn(u64, u64) -> u64,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        if self.id == owner {
            let v = value.ok_or_else(|| MpcError::Usage("the input owner must supply the value".into()))?;
            let mask = self.draw(Stream::Own, n);
            let masked = zip_words(v, &mask, combine);
            self.net.send_u64s(self.next_party(), &masked)?;
            Ok((mask, masked))
        } else if self.id == (owner + 1) % 3 {
            Ok((self.net.recv_u64s(owner, n)?, vec![0; n]))
        } else {
            Ok((vec![0; n], self.draw(Stream::Next, n)))
        }
    }

    pub(crate) fn share(&self, shape: &[usize], cur: Vec<u64>, next: Vec<u64>) -> Result<RShare> {
        Ok(RShare {
            cur: RingTensor::new(shape.to_vec(), cur)?,
            next: RingTensor::new(shape.to_vec(), next)?,
        })
    }

    /// The secret: our two components plus the `missing` third, in one pass.
    fn sum_of_components(x: &RShare, missing: &[u64]) -> Result<RingTensor> {
        let sum = x.cur.data().iter().zip(x.next.data()).zip(missing);
        let words = sum.map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c)).collect();
        Ok(RingTensor::new(x.shape().to_vec(), words)?)
    }

    pub(crate) fn check_same(a: &RShare, b: &RShare, op: &str) -> Result<()> {
        if a.shape() != b.shape() {
            return Err(MpcError::Usage(format!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape())));
        }
        Ok(())
    }
}

impl Protocol for Rep3 {
    type Share = RShare;
    type Bits = RBits;

    fn name(&self) -> &'static str {
        "3pc"
    }
    fn party_id(&self) -> usize {
        self.id
    }
    fn compute_parties(&self) -> usize {
        3
    }
    fn stats(&self) -> CommStats {
        self.net.stats().clone()
    }
    fn abort(&mut self, reason: &str) {
        self.net.abort(reason);
    }

    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<RShare> {
        if owner > 2 {
            return Err(MpcError::Usage(format!("input owner {owner} is not a compute party")));
        }
        let n = element_count(shape)?;
        if let Some(v) = value.filter(|_| self.id == owner) {
            if v.shape() != shape {
                return Err(MpcError::Usage(format!("input has shape {:?}, expected {shape:?}", v.shape())));
            }
        }
        let (cur, next) = self.input_words(owner, value.map(|v| v.data()), n, u64::wrapping_sub)?;
        self.share(shape, cur, next)
    }

    fn reveal_to(&mut self, x: &RShare, receiver: usize) -> Result<Option<RingTensor>> {
        if receiver > 2 {
            return Err(MpcError::Usage(format!("receiver {receiver} is not a compute party")));
        }
        // The receiver lacks s_{r+2}; party r+1 holds it as its `next` and alone sends it.
        if self.id == receiver {
            let missing = self.net.recv_words(self.next_party(), x.len())?;
            Ok(Some(Self::sum_of_components(x, &missing)?))
        } else {
            if self.id == (receiver + 1) % 3 {
                self.net.send_u64s(receiver, x.next.data())?;
            }
            Ok(None)
        }
    }

    fn reveal(&mut self, x: &RShare) -> Result<RingTensor> {
        // Our `next` is the previous party's missing component; ours comes from the next.
        self.net.send_u64s(self.prev(), x.next.data())?;
        let missing = self.net.recv_words(self.next_party(), x.len())?;
        Self::sum_of_components(x, &missing)
    }

    fn linear(&self, x: &RShare, f: &dyn LinearOp) -> Result<RShare> {
        Ok(RShare { cur: f.apply(&x.cur)?, next: f.apply(&x.next)? })
    }
    fn linear2(&self, a: &RShare, b: &RShare, f: &dyn LinearOp2) -> Result<RShare> {
        Ok(RShare { cur: f.apply2(&a.cur, &b.cur)?, next: f.apply2(&a.next, &b.next)? })
    }
    fn add_public(&self, x: &RShare, c: &RingTensor) -> Result<RShare> {
        // The constant goes into component 0, held by party 0 (as cur) and party 2 (as next).
        match self.id {
            0 => Ok(RShare { cur: x.cur.add(c)?, next: x.next.clone() }),
            2 => Ok(RShare { cur: x.cur.clone(), next: x.next.add(c)? }),
            _ => {
                if x.shape() != c.shape() {
                    return Err(MpcError::Usage("add_public: shapes differ".into()));
                }
                Ok(x.clone())
            }
        }
    }

    fn mul(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        Self::check_same(a, b, "mul")?;
        let z = self.product_term(a, b);
        let (cur, next) = self.reshare(z)?;
        self.share(a.shape(), cur, next)
    }

    /// The lookup of an owner's plaintext one-hot rows in a secret table, in two local
    /// products instead of six. The owner `o` holds table components `s_o` and `s_(o+1)`, and
    /// computes `onehot (s_o + s_(o+1))` alone by gathering rows. The missing `onehot s_(o+2)`
    /// is computed by the two parties that hold `s_(o+2)`: the owner splits the one-hot into a
    /// PRF mask it shares with party `o+2` and the rest, which it sends to party `o+1`; each
    /// multiplies its part by `s_(o+2)`. Neither learns the one-hot (each sees a uniformly
    /// random part). The three terms are then reshared as a product's are.
    fn onehot_matmul(
        &mut self,
        owner: usize,
        onehot: Option<&RingTensor>,
        rows: usize,
        table: &RShare,
    ) -> Result<RShare> {
        let (depth, k) = match table.shape() {
            [d, k] => (*d, *k),
            s => return Err(MpcError::Usage(format!("lookup in a table of shape {s:?}"))),
        };
        if owner > 2 {
            return Err(MpcError::Usage(format!("lookup owner {owner} is not a compute party")));
        }
        let n = element_count(&[rows, depth])?;
        element_count(&[rows, k])?;
        let z = if self.id == owner {
            let o = onehot
                .ok_or_else(|| MpcError::Usage("the lookup owner must supply the one-hot rows".into()))?;
            if o.shape() != [rows, depth] {
                return Err(MpcError::Usage(format!(
                    "one-hot rows of shape {:?}, expected [{rows}, {depth}]",
                    o.shape()
                )));
            }
            let mask = self.draw(Stream::Own, n);
            let rest = zip_words(o.data(), &mask, u64::wrapping_sub);
            self.net.send_u64s(self.next_party(), &rest)?;
            // Our term is onehot (s_i + s_{i+1}): only the rows the one-hot selects are read,
            // and the two components are added row by row, not as whole tables.
            let (cur, next) = (table.cur.data(), table.next.data());
            let mut z = vec![0u64; rows * k];
            for (r, row) in o.data().chunks(depth.max(1)).enumerate() {
                let dst = &mut z[r * k..(r + 1) * k];
                for (j, &v) in row.iter().enumerate().filter(|(_, &v)| v != 0) {
                    let (c, nx) = (&cur[j * k..(j + 1) * k], &next[j * k..(j + 1) * k]);
                    for ((d, &a), &b) in dst.iter_mut().zip(c).zip(nx) {
                        *d = d.wrapping_add(v.wrapping_mul(a.wrapping_add(b)));
                    }
                }
            }
            z
        } else if self.id == (owner + 1) % 3 {
            let part = RingTensor::new(vec![rows, depth], self.net.recv_u64s(owner, n)?)?;
            part.matmul(&table.next)?.into_data()
        } else {
            let part = RingTensor::new(vec![rows, depth], self.draw(Stream::Next, n))?;
            part.matmul(&table.cur)?.into_data()
        };
        let alpha = self.zero_share(rows * k, false);
        let (cur, next) = self.reshare(zip_words(&z, &alpha, u64::wrapping_add))?;
        self.share(&[rows, k], cur, next)
    }

    fn matmul(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        let shape = Self::check_matmul(a, b)?;
        let alpha = RingTensor::new(shape.to_vec(), self.zero_share(shape[0] * shape[1], false))?;
        let mut z = Self::matmul_terms(a, b)?;
        z.add_assign(&alpha)?;
        let (cur, next) = self.reshare(z.into_data())?;
        self.share(&shape, cur, next)
    }

    fn matmul_batched(&mut self, a: &RShare, b: &RShare) -> Result<RShare> {
        let (shape, mut z) = Self::matmul_batched_terms(a, b)?;
        let alpha = self.zero_share(z.len(), false);
        for (v, a) in z.iter_mut().zip(&alpha) {
            *v = v.wrapping_add(*a);
        }
        let (cur, next) = self.reshare(z)?;
        self.share(&shape, cur, next)
    }

    // The fused forms open the product's terms, masked, straight into the truncation: two
    // rounds instead of three, and no re-sharing of the untruncated product.
    fn mul_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        Self::check_same(a, b, "mul")?;
        let z = Self::cross_terms(a, b);
        self.truncate_rotating(Truncand::Terms(&z), a.shape(), bits)
    }

    fn dot_truncate(
        &mut self,
        pairs: &[(&RShare, &RShare)],
        extra: Option<&RShare>,
        bits: u32,
    ) -> Result<RShare> {
        let (first, _) =
            pairs.first().ok_or_else(|| MpcError::Usage("dot_truncate of no products".into()))?;
        let mut z = vec![0u64; first.len()];
        for (a, b) in pairs {
            Self::check_same(first, a, "dot_truncate")?;
            Self::check_same(a, b, "dot_truncate")?;
            for (v, t) in z.iter_mut().zip(Self::cross_terms(a, b)) {
                *v = v.wrapping_add(t);
            }
        }
        // Our additive term of a replicated share is its component s_i.
        if let Some(e) = extra {
            Self::check_same(first, e, "dot_truncate")?;
            for (v, t) in z.iter_mut().zip(e.cur.data()) {
                *v = v.wrapping_add(*t);
            }
        }
        self.truncate_rotating(Truncand::Terms(&z), first.shape(), bits)
    }

    fn matmul_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        let shape = Self::check_matmul(a, b)?;
        let z = Self::matmul_terms(a, b)?;
        self.truncate_rotating(Truncand::Terms(z.data()), &shape, bits)
    }

    /// The components multiplied as they are (`RingTensor::matmul_rows`), not reshaped.
    fn matmul_rows_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        let (m, _, n) = rows_dims(a.shape(), b.shape())?;
        let z = Self::matmul_terms(a, b)?;
        self.truncate_rotating(Truncand::Terms(z.data()), &[m, n], bits)
    }

    fn matmul_batched_truncate(&mut self, a: &RShare, b: &RShare, bits: u32) -> Result<RShare> {
        let (shape, z) = Self::matmul_batched_terms(a, b)?;
        self.truncate_rotating(Truncand::Terms(&z), &shape, bits)
    }

    fn truncate(&mut self, x: &RShare, bits: u32) -> Result<RShare> {
        self.truncate_rotating(Truncand::Replicated(x), x.shape(), bits)
    }

    fn bits_len(&self, x: &RBits) -> usize {
        x.cur.len()
    }
    fn bits_linear(&self, x: &RBits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> RBits {
        RBits { cur: f(&x.cur), next: f(&x.next) }
    }
    fn bits_linear2(&self, a: &RBits, b: &RBits, f: musket_core::WordMap2<'_>) -> RBits {
        RBits { cur: f(&a.cur, &b.cur), next: f(&a.next, &b.next) }
    }
    fn bits_concat(&self, parts: &[&RBits]) -> RBits {
        RBits {
            cur: musket_ring::concat_words(parts.iter().map(|p| p.cur.as_slice())),
            next: musket_ring::concat_words(parts.iter().map(|p| p.next.as_slice())),
        }
    }
    fn bits_xor(&self, a: &RBits, b: &RBits) -> RBits {
        RBits {
            cur: zip_words(&a.cur, &b.cur, |x, y| x ^ y),
            next: zip_words(&a.next, &b.next, |x, y| x ^ y),
        }
    }
    fn bits_xor_public(&self, a: &RBits, c: &[u64]) -> RBits {
        match self.id {
            0 => RBits { cur: zip_words(&a.cur, c, |x, y| x ^ y), next: a.next.clone() },
            2 => RBits { cur: a.cur.clone(), next: zip_words(&a.next, c, |x, y| x ^ y) },
            _ => a.clone(),
        }
    }
    fn bits_and(&mut self, a: &RBits, b: &RBits) -> Result<RBits> {
        if a.cur.len() != b.cur.len() {
            return Err(MpcError::Usage("bits_and: lengths differ".into()));
        }
        // Our term: the cross terms plus the XOR zero share own ^ next, in one pass.
        let (ac, an, bc, bn) = (&a.cur, &a.next, &b.cur, &b.next);
        let z = self.term_with_zero_share(a.cur.len(), |at, zs, next| {
            let to = at + zs.len();
            let operands = ac[at..to].iter().zip(&an[at..to]).zip(bc[at..to].iter().zip(&bn[at..to]));
            for ((t, o), ((ac, an), (bc, bn))) in zs.iter_mut().zip(next).zip(operands) {
                *t ^= o ^ (ac & (bc ^ bn)) ^ (an & bc);
            }
        });
        let (cur, next) = self.reshare(z)?;
        Ok(RBits { cur, next })
    }
    fn reveal_bits(&mut self, x: &RBits) -> Result<Vec<u64>> {
        let (_, missing) = self.reshare(x.next.clone())?;
        Ok((0..x.cur.len()).map(|i| x.cur[i] ^ x.next[i] ^ missing[i]).collect())
    }
    fn a2b_operands(&mut self, x: &RShare) -> Result<(RBits, RBits)> {
        self.a2b_rotating(x)
    }
    fn bits_and_with_a2b_planes(
        &mut self,
        a: &RBits,
        b: &RBits,
        n: usize,
        planes_len: usize,
    ) -> Result<RBits> {
        self.and_with_split_planes(a, b, n, planes_len)
    }
    fn mul_bits(&mut self, x: &RShare, bits: &RBits) -> Result<RShare> {
        self.mul_bits_rotating(x, bits)
    }
    fn b2a_packed(&mut self, bits: &RBits, shape: &[usize]) -> Result<RShare> {
        self.b2a_rotating(bits, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_product_terms_skip_zero_components_exactly() {
        let word = |i: usize, salt: u64| (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ salt);
        let tensor = |r: usize, c: usize, salt: u64| {
            RingTensor::new(vec![r, c], (0..r * c).map(|i| word(i, salt)).collect())
        };
        let (m, k, n) = (3, 5, 4);
        let full = [
            tensor(m, k, 1).unwrap(),
            tensor(m, k, 2).unwrap(),
            tensor(k, n, 3).unwrap(),
            tensor(k, n, 4).unwrap(),
        ];
        // Each component zero in turn (and none): the shortcut equals the general formula.
        for zeroed in [None, Some(0), Some(1), Some(2), Some(3)] {
            let mut parts = full.clone();
            if let Some(z) = zeroed {
                parts[z] = RingTensor::new(parts[z].shape().to_vec(), vec![0; parts[z].len()]).unwrap();
            }
            let [ac, an, bc, bn] = &parts;
            let mut general = ac.matmul(&bc.add(bn).unwrap()).unwrap();
            general.add_assign(&an.matmul(bc).unwrap()).unwrap();
            assert_eq!(Rep3::matmul_terms_of(ac, an, bc, bn).unwrap(), general, "component {zeroed:?} zero");
        }
    }
}
