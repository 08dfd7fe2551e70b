use crate::Result;
use musket_net::CommStats;
use musket_ring::maps::{self, LinearOp, LinearOp2};
use musket_ring::{Im2col, RingTensor};

/// What every arithmetic share type can tell without communication.
pub trait Share: Clone + Send + Sync + 'static {
    /// Shape of the shared tensor.
    fn shape(&self) -> &[usize];
    /// This party's share components' words (one component for additive sharing, two for
    /// replicated, value and MAC for a MAC'd share: two words an element), for serialisation
    /// and tests.
    fn parts(&self) -> Vec<Vec<u64>>;
    /// Number of shared elements.
    fn len(&self) -> usize {
        self.shape().iter().product()
    }
    /// True when no element is shared.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An XOR-linear map of two binary shares' words to one (see [`Protocol::bits_linear2`]).
pub type WordMap2<'a> = &'a dyn Fn(&[u64], &[u64]) -> Vec<u64>;

/// Checks `[B, m, k] x [B, k, n]` and returns `(B, m, k, n)`.
pub fn batched_dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize, usize)> {
    match (a, b) {
        ([b1, m, k], [b2, k2, n]) if b1 == b2 && k == k2 => Ok((*b1, *m, *k, *n)),
        _ => Err(crate::MpcError::Usage(format!("batched matmul: shapes {a:?} and {b:?} do not conform"))),
    }
}

/// Checks `[m, k] x [k, n]` and returns `(m, k, n)`.
pub fn matrix_dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
    match a {
        [_, _] => rows_dims(a, b),
        _ => Err(crate::MpcError::Usage(format!("matmul: shapes {a:?} and {b:?} do not conform"))),
    }
}

/// Checks `a` read as the matrix `[m, k]` (its first dimension, and the product of the
/// others; see [`Protocol::matmul_rows_truncate`]) against `b` `[k, n]`; returns `(m, k, n)`.
pub fn rows_dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
    match (musket_ring::rows_shape(a), b) {
        (Ok([m, k]), [k2, n]) if k == *k2 => Ok((m, k, *n)),
        _ => Err(crate::MpcError::Usage(format!("matmul: shapes {a:?} and {b:?} do not conform"))),
    }
}

/// Checks a convolution's product ([`Protocol::matmul_im2col_truncate`]): `a` read as `[m, k]`
/// with `k` the map's taps, `images` the map's `[N, C, H, W]`; returns `(m, k, n)` with `n` the
/// map's output positions.
pub fn im2col_dims(a: &[usize], images: &[usize], cols: &Im2col) -> Result<(usize, usize, usize)> {
    match musket_ring::rows_shape(a) {
        Ok([m, k]) if k == cols.taps() && images == [cols.n, cols.c, cols.h, cols.wd] => {
            Ok((m, k, cols.positions()))
        }
        _ => Err(crate::MpcError::Usage(format!(
            "convolution: weights {a:?} and images {images:?} do not fit the map {cols:?}"
        ))),
    }
}

/// The `i`-th `[rows, cols]` matrix of a `[B, rows, cols]` tensor.
pub fn batch_item(t: &RingTensor, i: usize, rows: usize, cols: usize) -> RingTensor {
    RingTensor::new(vec![rows, cols], t.data()[i * rows * cols..(i + 1) * rows * cols].to_vec())
        .expect("consistent batch shape")
}

/// A secret-sharing MPC back end, seen from one compute party.
///
/// Arithmetic shares live in Z_2^64; binary shares (`Bits`) are XOR-shared `u64` words, used for
/// comparison circuits. Local operations take `&self`; interactive ones take `&mut self`, send
/// one batch of messages per round for the whole tensor, and fail with a [`crate::MpcError`]
/// naming the peer when the network does. Every party of a computation calls the same
/// operations in the same order with the same public arguments (shapes, owners, bit counts).
pub trait Protocol {
    /// Arithmetic share of a tensor.
    type Share: Share;
    /// XOR share of a vector of 64-bit words.
    type Bits: Clone + Send + Sync + 'static;

    /// Short name of the back end ("2pc", "3pc", "plain").
    fn name(&self) -> &'static str;
    /// The adversary the back end is secure against: `"semi-honest"` (parties follow the
    /// protocol) or `"malicious"` (one party may deviate; the others abort).
    fn security(&self) -> &'static str {
        "semi-honest"
    }
    /// This party's id among the compute parties.
    fn party_id(&self) -> usize;
    /// Number of compute parties (the dealer, if any, is not one).
    fn compute_parties(&self) -> usize;
    /// Communication counts so far.
    fn stats(&self) -> CommStats;
    /// Ends the computation cleanly (releases a dealer); call once at the end.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// Requests for dealer material made so far (a position for [`Protocol::material_plan`]);
    /// 0 for back ends without a dealer.
    fn material_requests(&self) -> usize {
        0
    }
    /// The dealer-material requests made since position `from`, encoded: the plan with which
    /// [`Protocol::preprocess`] prepares an identical later computation. Empty without a dealer.
    fn material_plan(&self, _from: usize) -> Vec<u8> {
        Vec::new()
    }
    /// The preprocessing phase: has the dealer produce now, before the inputs exist, all the
    /// material that the operations of `plan` will need, so that they then never wait for it.
    /// The following operations must be those of the plan, in order (an error otherwise). A
    /// no-op without a dealer. Party 1 holds the dealer's corrections for the whole plan and
    /// returns only when the dealer has sent all of them: the peers' receive timeout must
    /// cover that. (The parties' own random parts still come from their seeds when used.)
    fn preprocess(&mut self, _plan: &[u8]) -> Result<()> {
        Ok(())
    }
    /// Checks everything computed so far: a malicious-secure back end verifies its pending
    /// products and openings here (it also does before every opening). A no-op otherwise.
    fn verify(&mut self) -> Result<()> {
        Ok(())
    }
    /// Tells all peers this party is stopping; `reason` must not contain secrets.
    fn abort(&mut self, reason: &str);
    /// The cause of this party's failure `err`, where the back end may know better: the
    /// malicious back end's verification running beside the protocol may have caught
    /// cheating and aborted, whereupon the peers left, so that this party's own operation
    /// fails with a lost peer. Returns that cause, or `err`. Drivers call it once an
    /// operation has failed, before reporting or announcing the error.
    fn explain_failure(&mut self, err: crate::MpcError) -> crate::MpcError {
        err
    }

    /// Called by the model executor before each layer with the layer's name, so that a range
    /// audit can say where a value left its domain. Back ends ignore it.
    fn begin_layer(&mut self, _name: &str) {}
    /// Integer 0/1 shares (any shape) flagging the elements for which a secure function's input
    /// was outside its accurate domain, so that its result is the documented saturated value
    /// rather than the exact one. Back ends ignore the flags (computing them costs nothing
    /// extra: they are bits the function has anyway); the plaintext [`crate::Audit`] records
    /// the layer, and [`crate::RangeChecked`] adds them to its secret count.
    fn note_out_of_range(&mut self, _flags: &Self::Share, _what: &str) -> Result<()> {
        Ok(())
    }
    /// Asks a secure range check to verify `x < upper` and `x > -lower` (ring units; a side
    /// that is `None` is not checked) for every element of `x`. The executor calls it where
    /// its check plan says (`musket-graph`'s `range_plan`); which values it checks, and on
    /// which sides, depends on the architecture only. Back ends and the audit, which checks
    /// every product exactly, ignore it.
    fn check_bound(
        &mut self,
        _x: &Self::Share,
        _upper: Option<u64>,
        _lower: Option<u64>,
        _what: &str,
    ) -> Result<()> {
        Ok(())
    }

    /// Declares that every element of `x` has magnitude below `bound` (ring units), which the
    /// step about to run relies on for a correct result (a narrow sign circuit:
    /// [`crate::msb_within`]). Back ends cannot see the values and ignore it; the
    /// range audit counts every element at or beyond the bound as a finding (`what` names the
    /// function); the secure range check relies on its plan, which bounds such a value where
    /// it is produced (`Op::operand_bounds`).
    fn assume_within(&mut self, _x: &Self::Share, _bound: u64, _what: &str) -> Result<()> {
        Ok(())
    }

    /// Secret-shares a tensor held by compute party `owner`: the owner passes `Some(value)`,
    /// the others `None`; all pass the same shape.
    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<Self::Share>;
    /// Opens `x` to compute party `receiver` only: it gets `Some`, the others `None`, and no
    /// other party receives anything about `x` (the malicious 2PC back end opens a masked
    /// value to both parties, which its MAC check needs; the mask is the receiver's alone).
    fn reveal_to(&mut self, x: &Self::Share, receiver: usize) -> Result<Option<RingTensor>>;
    /// Opens `x` to every compute party.
    fn reveal(&mut self, x: &Self::Share) -> Result<RingTensor>;

    /// Applies a homogeneous linear map to the secret (every share component mapped alike). The
    /// map is described ([`musket_ring::RingMap`]: reshape, transpose, sum, product with a
    /// public tensor, selection...), not a closure on `u64` tensors, so that a back end whose
    /// shares live in another ring (a MAC'd share modulo 2^128) can apply it there.
    fn linear(&self, x: &Self::Share, f: &dyn LinearOp) -> Result<Self::Share>;
    /// Applies a described linear map of two secrets ([`musket_ring::RingMap2`]: sums,
    /// concatenations); see [`Protocol::linear`].
    fn linear2(&self, a: &Self::Share, b: &Self::Share, f: &dyn LinearOp2) -> Result<Self::Share>;
    /// Adds a public tensor.
    fn add_public(&self, x: &Self::Share, c: &RingTensor) -> Result<Self::Share>;

    /// Elementwise ring product of two secrets (no truncation).
    fn mul(&mut self, a: &Self::Share, b: &Self::Share) -> Result<Self::Share>;
    /// Ring matrix product of secrets `[m, k] x [k, n]` (no truncation).
    fn matmul(&mut self, a: &Self::Share, b: &Self::Share) -> Result<Self::Share>;
    /// Batched ring matrix product `[B, m, k] x [B, k, n] -> [B, m, n]` of secrets, with one
    /// message per party for the whole batch (attention's products).
    fn matmul_batched(&mut self, a: &Self::Share, b: &Self::Share) -> Result<Self::Share>;

    /// `onehot @ table` where `onehot` (`[rows, depth]`, integer entries, usually 0/1 rows
    /// selecting table rows: an embedding lookup) is known in plaintext to `owner` alone and
    /// `table` is secret. Exact: no truncation (the one-hot is integer, the table fixed point).
    /// The default shares the one-hot and multiplies; a back end can do better because the
    /// owner knows it.
    fn onehot_matmul(
        &mut self,
        owner: usize,
        onehot: Option<&RingTensor>,
        rows: usize,
        table: &Self::Share,
    ) -> Result<Self::Share> {
        let depth = *table
            .shape()
            .first()
            .ok_or_else(|| crate::MpcError::Usage("lookup in a scalar table".into()))?;
        let x = self.input(owner, onehot, &[rows, depth])?;
        self.matmul(&x, table)
    }
    /// Divides by 2^bits with an error below one unit in the last place: the result is
    /// `floor(x / 2^bits)` or one more. Requires `|x| < 2^62` as a signed ring element; larger
    /// values give unspecified results. Never fails with a large error inside that range
    /// (unlike SecureML-style local truncation).
    fn truncate(&mut self, x: &Self::Share, bits: u32) -> Result<Self::Share>;
    /// `truncate(mul(a, b), bits)`, which a back end may fuse (3PC: two rounds instead of
    /// three). Same domain and error as the two steps.
    fn mul_truncate(&mut self, a: &Self::Share, b: &Self::Share, bits: u32) -> Result<Self::Share> {
        let prod = self.mul(a, b)?;
        self.truncate(&prod, bits)
    }
    /// `truncate(matmul(a, b), bits)`, fused where the back end can.
    fn matmul_truncate(&mut self, a: &Self::Share, b: &Self::Share, bits: u32) -> Result<Self::Share> {
        let prod = self.matmul(a, b)?;
        self.truncate(&prod, bits)
    }
    /// [`Protocol::matmul_truncate`] with `a` read as the matrix `[m, k]`, `m` its first
    /// dimension and `k` the product of the others (a convolution's weights `[O, C, kh, kw]`
    /// as `[O, C kh kw]`). The default reshapes `a` (a copy of every component), then
    /// multiplies; a back end can multiply the components as they are.
    fn matmul_rows_truncate(&mut self, a: &Self::Share, b: &Self::Share, bits: u32) -> Result<Self::Share> {
        let rows = musket_ring::rows_shape(a.shape())?;
        let a = self.reshape(a, &rows)?;
        self.matmul_truncate(&a, b, bits)
    }
    /// A convolution's product: [`Protocol::matmul_rows_truncate`] of the weights `a` and
    /// `cols` applied to the images `images` (`[N, C, H, W]`). The default applies the map,
    /// then multiplies. A back end whose product opens its masked operands (Beaver triples:
    /// 2PC) opens the masked images instead of their im2col matrix, which is `kh kw` times
    /// larger at stride 1, with a triple whose matrix is the map of the images' mask.
    fn matmul_im2col_truncate(
        &mut self,
        a: &Self::Share,
        images: &Self::Share,
        cols: &Im2col,
        bits: u32,
    ) -> Result<Self::Share> {
        let b = self.linear(images, cols)?;
        self.matmul_rows_truncate(a, &b, bits)
    }
    /// `truncate(sum_k a_k * b_k + extra, bits)` for elementwise products of shares of one
    /// shape, where a back end may skip re-sharing the products (3PC: the cost of one
    /// `mul_truncate`, whatever the number of products). The default takes the products in
    /// one round, then truncates. Same domain as `truncate` for the sum.
    fn dot_truncate(
        &mut self,
        pairs: &[(&Self::Share, &Self::Share)],
        extra: Option<&Self::Share>,
        bits: u32,
    ) -> Result<Self::Share> {
        let (first, _) =
            pairs.first().ok_or_else(|| crate::MpcError::Usage("dot_truncate of no products".into()))?;
        let shape = first.shape().to_vec();
        if pairs.iter().any(|(a, b)| a.shape() != shape.as_slice() || b.shape() != shape.as_slice())
            || extra.is_some_and(|e| e.shape() != shape.as_slice())
        {
            return Err(crate::MpcError::Usage("dot_truncate: operands of different shapes".into()));
        }
        let lefts: Vec<&Self::Share> = pairs.iter().map(|(a, _)| *a).collect();
        let rights: Vec<&Self::Share> = pairs.iter().map(|(_, b)| *b).collect();
        let (a, b) = (crate::concat_shares(self, &lefts)?, crate::concat_shares(self, &rights)?);
        let prod = self.mul(&a, &b)?;
        let parts = crate::split_share(self, &prod, &vec![shape.clone(); pairs.len()])?;
        let mut sum = parts[0].clone();
        for part in &parts[1..] {
            sum = self.add(&sum, part)?;
        }
        if let Some(e) = extra {
            sum = self.add(&sum, e)?;
        }
        self.truncate(&sum, bits)
    }
    /// `truncate(matmul_batched(a, b), bits)`, fused where the back end can.
    fn matmul_batched_truncate(
        &mut self,
        a: &Self::Share,
        b: &Self::Share,
        bits: u32,
    ) -> Result<Self::Share> {
        let prod = self.matmul_batched(a, b)?;
        self.truncate(&prod, bits)
    }

    /// Number of words in a binary share.
    fn bits_len(&self, x: &Self::Bits) -> usize;
    /// Applies an XOR-linear, homogeneous map on words (bit permutations, selections).
    fn bits_linear(&self, x: &Self::Bits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> Self::Bits;
    /// Applies an XOR-linear, homogeneous map of two binary shares' words (selections from
    /// both, XORs of one's words with the other's) in one pass, where a concatenation then
    /// [`Protocol::bits_linear`] would copy both first.
    fn bits_linear2(&self, a: &Self::Bits, b: &Self::Bits, f: WordMap2<'_>) -> Self::Bits;
    /// Concatenates binary shares.
    fn bits_concat(&self, parts: &[&Self::Bits]) -> Self::Bits;
    /// XOR of two binary shares.
    fn bits_xor(&self, a: &Self::Bits, b: &Self::Bits) -> Self::Bits;
    /// XOR with a public word vector.
    fn bits_xor_public(&self, a: &Self::Bits, c: &[u64]) -> Self::Bits;
    /// Bitwise AND of two binary shares of equal length (one round).
    fn bits_and(&mut self, a: &Self::Bits, b: &Self::Bits) -> Result<Self::Bits>;
    /// [`Protocol::bits_and`] where the first `planes_len` words of `b` are bit planes
    /// (`n.div_ceil(64)` words each, element `i` at bit `i % 64` of word `i / 64` of a plane) of
    /// the second operand that this back end's [`Protocol::a2b_operands`] returned for those
    /// `n` elements, so that a back end can use what it knows of that operand's sharing (3PC:
    /// in each third of the elements one component, so one party's terms are zero there and
    /// need no message). The sign circuits' generate layer calls it; the default is `bits_and`.
    fn bits_and_with_a2b_planes(
        &mut self,
        a: &Self::Bits,
        b: &Self::Bits,
        n: usize,
        planes_len: usize,
    ) -> Result<Self::Bits> {
        let _ = (n, planes_len);
        self.bits_and(a, b)
    }
    /// Opens a binary share to every compute party.
    fn reveal_bits(&mut self, x: &Self::Bits) -> Result<Vec<u64>>;
    /// Splits `x` into two XOR-shared operands `(a, b)`, one word per element, whose ring sum
    /// `a + b mod 2^64` is the secret: the input of the bit-decomposition adder.
    fn a2b_operands(&mut self, x: &Self::Share) -> Result<(Self::Bits, Self::Bits)>;
    /// Two XOR-shared operands whose ring sum agrees with the secret `x` modulo `2^width`
    /// (`width` 2 to 64), as their low `width` bit planes (`width` times `n.div_ceil(64)`
    /// words, plane `k` holding bit `k` of 64 elements a word, as
    /// [`musket_ring::low_bit_planes`] lays them out), where the back end makes them with
    /// less than [`Protocol::a2b_operands`] costs: the sign circuits ([`crate::msb`],
    /// [`crate::msb_within`]) take the low bits only. `None` (the default) where it does not;
    /// the caller then uses `a2b_operands`. The malicious 3PC back end's carry-save adder
    /// then ANDs `width - 1` planes instead of 64 bits an element.
    fn a2b_operand_planes(
        &mut self,
        x: &Self::Share,
        width: usize,
    ) -> Result<Option<(Self::Bits, Self::Bits)>> {
        let _ = (x, width);
        Ok(None)
    }
    /// Converts packed bits (element `i` is bit `i % 64` of word `i / 64`) to arithmetic shares
    /// of 0/1 of shape `shape`.
    fn b2a_packed(&mut self, bits: &Self::Bits, shape: &[usize]) -> Result<Self::Share>;
    /// `x * b` elementwise, for packed XOR-shared bits `b` (element `i` is bit `i % 64` of word
    /// `i / 64`): bit injection and product together. The default converts, then multiplies;
    /// back ends override it with fewer rounds (2PC: one).
    fn mul_bits(&mut self, x: &Self::Share, bits: &Self::Bits) -> Result<Self::Share> {
        let b = self.b2a_packed(bits, x.shape())?;
        self.mul(x, &b)
    }

    /// `a + b`.
    fn add(&self, a: &Self::Share, b: &Self::Share) -> Result<Self::Share> {
        self.linear2(a, b, &maps::Add)
    }
    /// `a - b`.
    fn sub(&self, a: &Self::Share, b: &Self::Share) -> Result<Self::Share> {
        self.linear2(a, b, &maps::Sub)
    }
    /// `-x`.
    fn neg(&self, x: &Self::Share) -> Result<Self::Share> {
        self.linear(x, &maps::Neg)
    }
    /// `c * x` for a public ring constant.
    fn scale(&self, x: &Self::Share, c: u64) -> Result<Self::Share> {
        self.linear(x, &maps::Scale(c))
    }
    /// Elementwise product with a public tensor of the same shape (no truncation).
    fn mul_public(&self, x: &Self::Share, c: &RingTensor) -> Result<Self::Share> {
        self.linear(x, &maps::MulPublic(c))
    }
    /// Sum along `axis`.
    fn sum_axis(&self, x: &Self::Share, axis: usize) -> Result<Self::Share> {
        self.linear(x, &maps::SumAxis(axis))
    }
    /// Reshape.
    fn reshape(&self, x: &Self::Share, shape: &[usize]) -> Result<Self::Share> {
        self.linear(x, &maps::Reshape(shape))
    }
}
