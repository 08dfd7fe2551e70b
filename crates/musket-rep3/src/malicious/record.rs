//! What a party keeps of each reshared product until it is verified, and how the three
//! inner-product statements of a verification (one per prover) are built from it.
//!
//! Party `P` sends `z_P = x_P (y_P + y_{P+1}) + x_{P+1} y_P + F(k_P) - F(k_{P+1})` to `P - 1`.
//! Its verifiers are `A = P - 1`, which holds `x_P`, `y_P`, the received `z_P` and `F(k_P)`,
//! and `B = P + 1`, which holds `x_{P+1}`, `y_{P+1}` and `F(k_{P+1})`. Since
//! `x_P (y_P + y_{P+1}) + x_{P+1} y_P = (x_P + x_{P+1}) (y_P + y_{P+1}) - x_{P+1} y_{P+1}` and
//! `B` knows the last product, the claim
//! `z_P - F(k_P) + F(k_{P+1}) + x_{P+1} y_{P+1} = (x_P + x_{P+1}) (y_P + y_{P+1})` is one
//! product per gate with both sides additively shared between `A` and `B` (`A` holds
//! `x_P`, `y_P`, `B` holds `x_{P+1}`, `y_{P+1}` of the factors), and `P` knows everything: a
//! statement for [`musket_core::dzkp`]. (Until the tenth session each gate was two
//! products, `<(x_P, x_{P+1}), (y_P + y_{P+1}, y_P)>`: twice the prover's terms.) Each party
//! builds the prover's vectors for its own messages and its shares as `A` (of the next
//! party's statement) and as `B` (of the previous party's).
//! Many products are combined into one claim with random weights from the seed of that
//! statement; a matrix product's outputs with Freivalds' weights `rho_i sigma_j`, which
//! turns `m x n` inner products of length `k` into one of length `k` (`2k` with two terms).

use musket_core::dzkp::{Prover, ProverSteps, Verifier, VerifierSteps};
use musket_core::dzkp_packed::{
    BlockWeights, Packed, PackedBlocks, PackedProver, PackedVerifier, PackedWords, WordWeights,
};
use musket_core::ext::{gr64_words, Ext, Gf64, Gr64, EXT_DEGREE};
use musket_core::Prg;

/// The shape of a recorded product.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum Gate {
    /// Elementwise products (arithmetic) or ANDs of words (binary); the default, an empty
    /// record's (what a record taken out of its list leaves behind).
    #[default]
    Elementwise,
    /// `[m, k] x [k, n]`.
    Matmul { m: usize, k: usize, n: usize },
    /// A sum of products per element and prover, `sum_t x_t * y_t` with every `x_t` known to
    /// verifier `A` and every `y_t` to verifier `B` (arithmetic only): the checked conversions
    /// of bits (see `Rep3Mal::bits_to_arith`) and a truncation's wrap terms, whose messages are
    /// each such a sum plus terms the verifiers hold. The fields count the products per
    /// element of this party's statement, of the next party's (verified as `A`) and of the
    /// previous party's (as `B`): provers may differ (in a truncation's wrap the helper proves
    /// none, its two openers one each; from the eighth to the seventeenth session the helper
    /// proved three), and the set of the three is the same at every party. Its [`Record`] stores, element by
    /// element (the `t` terms of element `g` at `g * terms + t`), the prover's `x_t` and `y_t`
    /// in `xc` and `yc`; as `A` of the next party's statement, its `x_t` in `xn` and the claim
    /// share in `theirs`; as `B` of the previous party's, its `y_t` in `yn` and the claim share
    /// in `own`.
    Cross {
        /// Products per element of this party's statement.
        prover: usize,
        /// Of the next party's.
        a: usize,
        /// Of the previous party's.
        b: usize,
    },
    /// Elementwise products (or ANDs of words) in one prover's statement only, with no
    /// message: a party that knows every component of both factors proves that they multiply
    /// to what the verifiers hold (truncation's check of the helper's carries, see
    /// `Rep3Mal::keep_helper_products`). `role` is this party's role in that statement; its
    /// other two statements get no terms from the record. Each role keeps only the fields it
    /// reads (twenty-fourth session): the prover its factors' sums in `xc` and `yc` (`xn`,
    /// `yn` empty), A its components in `xn`, `yn` and its claim share in `theirs`, B its
    /// components in `xc`, `yc` and in `own` its claim share less, as for every product,
    /// B's `x_(P+1) y_(P+1)`.
    OneProver {
        /// This party's role in the statement that holds the gates.
        role: Role,
    },
}

impl Gate {
    /// The cross gate whose three provers each prove one product per element.
    pub(crate) const CROSS_ONE: Gate = Gate::Cross { prover: 1, a: 1, b: 1 };
}

/// One reshared product as this party saw it (the field docs are a product's; a
/// [`Gate::Cross`] record uses the same fields as its documentation says, `nxt` empty).
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) gate: Gate,
    /// This party's operand components: `x_i`, `x_{i+1}`, `y_i`, `y_{i+1}` (a
    /// [`Gate::OneProver`] record keeps only those its role reads, its prover the sums in
    /// `xc` and `yc`).
    pub(crate) xc: Vec<u64>,
    pub(crate) xn: Vec<u64>,
    pub(crate) yc: Vec<u64>,
    pub(crate) yn: Vec<u64>,
    /// `z_{i+1}`, received from the next party; once kept, less `nxt` (the claim share as
    /// `A`), `nxt` then dropped. (A truncated product's records hold the claim shares its
    /// fused opening gives instead, `truncate/fused.rs`: a message received or a mask's
    /// negation here, a message or a mask in `own`.)
    pub(crate) theirs: Vec<u64>,
    /// `F(k_i)` and `F(k_{i+1})` as drawn for the zero share; `own` empty where `own_at`
    /// draws it again.
    pub(crate) own: Vec<u64>,
    pub(crate) nxt: Vec<u64>,
    /// The own stream where `own` was drawn, kept instead of its words (twenty-third session:
    /// a product's record is five words an element instead of seven, so the pending limit
    /// holds more products and a verification covers more of the computation).
    pub(crate) own_at: Option<musket_core::Prg>,
}

impl Record {
    /// `own`, drawn again from `own_at` where the record kept that instead.
    pub(crate) fn own_words(&self) -> std::borrow::Cow<'_, [u64]> {
        let own = match &self.own_at {
            Some(at) => std::borrow::Cow::Owned(at.snapshot().words(self.outputs())),
            None => std::borrow::Cow::Borrowed(&self.own[..]),
        };
        debug_assert!(
            matches!(self.gate, Gate::Cross { .. }) || own.len() == self.outputs(),
            "a claim word per output"
        );
        own
    }

    /// The outputs of the recorded products (a matrix product's `m n`), or a cross record's
    /// claims.
    pub(crate) fn outputs(&self) -> usize {
        match self.gate {
            Gate::Matmul { m, n, .. } => m * n,
            Gate::Cross { .. } => self.theirs.len(),
            _ => self.products(),
        }
    }

    /// Products (AND words) of an elementwise or one-prover record: the length of its
    /// operand vectors (a one-prover record keeps only those its role reads, `xc` or `xn`).
    pub(crate) fn products(&self) -> usize {
        self.xc.len().max(self.xn.len())
    }

    /// Subtracts `nxt` from `theirs` (XOR for bits), the claim share as `A`, and drops `nxt`.
    pub(crate) fn fold_nxt(&mut self, binary: bool) {
        if self.nxt.is_empty() {
            return;
        }
        for (t, n) in self.theirs.iter_mut().zip(&self.nxt) {
            *t = if binary { *t ^ n } else { t.wrapping_sub(*n) };
        }
        self.nxt = Vec::new();
    }

    /// Words this record holds, or for a cross gate a bound on them, for a one-prover record
    /// a count shared by the three (either way the same at every party, which compare it
    /// with the pending limit in step).
    pub(crate) fn words(&self) -> usize {
        match self.gate {
            Gate::Cross { .. } => self.theirs.len() * (4 * self.widest() + 2),
            // Three vectors at its verifiers, two at its prover (see
            // `Rep3Mal::keep_helper_products`): counted as three at every party.
            Gate::OneProver { .. } => 3 * self.products(),
            _ => [&self.xc, &self.xn, &self.yc, &self.yn, &self.theirs, &self.own, &self.nxt]
                .iter()
                .map(|v| v.len())
                .sum(),
        }
    }
    /// The size of this record for batching: its largest statement's terms (the same at every
    /// party).
    pub(crate) fn terms(&self, binary: bool) -> usize {
        match self.gate {
            Gate::Cross { .. } => self.cross_terms(binary, self.widest()),
            Gate::OneProver { role } => self.terms_as(binary, role),
            _ => self.terms_as(binary, Role::Prover),
        }
    }
    /// Terms this record gives `role`'s statement: one per product (an AND word's 64 bits
    /// are 64), `k` for a matrix product's Freivalds statement.
    pub(crate) fn terms_as(&self, binary: bool, role: Role) -> usize {
        match self.gate {
            Gate::Elementwise => self.xc.len() * if binary { 64 } else { 1 },
            Gate::OneProver { role: r } if r == role => self.products() * if binary { 64 } else { 1 },
            Gate::OneProver { .. } => 0,
            Gate::Cross { .. } => self.cross_terms(binary, self.cross_width(role)),
            Gate::Matmul { k, .. } => k,
        }
    }
    /// Elements (products of a product record, claims of a cross record).
    pub(crate) fn elements(&self) -> usize {
        match self.gate {
            Gate::Cross { .. } => self.theirs.len(),
            _ => self.products(),
        }
    }
    fn cross_terms(&self, binary: bool, per_element: usize) -> usize {
        self.theirs.len() * per_element * if binary { 64 } else { 1 }
    }
    /// The most products per element of the three statements (the same at every party).
    pub(crate) fn widest(&self) -> usize {
        [Role::Prover, Role::A, Role::B].map(|role| self.cross_width(role)).into_iter().max().unwrap_or(1)
    }
    /// Products per element of `role`'s statement in a cross record (1 for other gates).
    pub(crate) fn cross_width(&self, role: Role) -> usize {
        match (self.gate, role) {
            (Gate::Cross { prover, .. }, Role::Prover) => prover,
            (Gate::Cross { a, .. }, Role::A) => a,
            (Gate::Cross { b, .. }, Role::B) => b,
            _ => 1,
        }
    }
}

/// Which statement a party builds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Role {
    /// Its own: the whole vectors.
    Prover,
    /// Verifier `A` of the next party.
    A,
    /// Verifier `B` of the previous party.
    B,
}

/// Vectors and claim share of one statement.
pub(crate) struct Statement<E> {
    pub(crate) l: Vec<E>,
    pub(crate) r: Vec<E>,
    pub(crate) claim: E,
}

/// How base values enter the extension: arithmetic words, or the bits of binary words.
pub(crate) trait Lift: Ext {
    /// True for XOR-shared words, whose gates are their 64 bits.
    const BINARY: bool;
    /// The packed form of an elementwise batch ([`musket_core::dzkp_packed`]).
    type Packed: Packed<Self> + 'static;
    /// `a + b` in the base (wrapping add or XOR).
    fn base_add(a: u64, b: u64) -> u64;
    /// `a * b` in the base (wrapping multiplication or AND).
    fn base_mul(a: u64, b: u64) -> u64;
    /// `role`'s statement over `records` in packed form with its claim share, or `None` when
    /// the batch proves in plain form.
    fn packed(records: &[Record], role: Role, len: usize, weights: &mut Prg) -> Option<(Self::Packed, Self)>;
    /// `sum_i rho_i x[i, t]` for every column `t` of an `[m, k]` matrix of base values.
    fn left_fold(x: &[u64], m: usize, k: usize, rho: &[Self]) -> Vec<Self> {
        let mut out = vec![Self::zero(); k];
        for i in 0..m {
            for (o, &v) in out.iter_mut().zip(&x[i * k..(i + 1) * k]) {
                *o = o.add(rho[i].mul_base(v));
            }
        }
        out
    }
    /// `sum_j y[t, j] sigma_j` for every row `t` of a `[k, n]` matrix of base values.
    fn right_fold(y: &[u64], k: usize, n: usize, sigma: &[Self]) -> Vec<Self> {
        (0..k)
            .map(|t| {
                y[t * n..(t + 1) * n]
                    .iter()
                    .zip(sigma)
                    .fold(Self::zero(), |acc, (&v, s)| acc.add(s.mul_base(v)))
            })
            .collect()
    }
    /// The prover of this party's statement over `records`, padded to `len` terms.
    fn prover(records: &[Record], len: usize, weights: &mut Prg) -> Box<dyn ProverSteps<Self>> {
        match Self::packed(records, Role::Prover, len, weights) {
            Some((terms, _)) => Box::new(PackedProver::new(terms)),
            None => {
                let st = build::<Self>(records, Role::Prover, weights);
                Box::new(Prover::new(st.l, st.r, len))
            }
        }
    }
    /// This party's verifier as `role` (A or B) of a neighbour's statement.
    fn verifier(
        records: &[Record],
        role: Role,
        len: usize,
        weights: &mut Prg,
    ) -> Box<dyn VerifierSteps<Self>> {
        match Self::packed(records, role, len, weights) {
            Some((terms, claim)) => Box::new(PackedVerifier::new(terms, claim)),
            None => {
                let st = build::<Self>(records, role, weights);
                Box::new(Verifier::new(st.l, st.r, st.claim, len))
            }
        }
    }
}

/// Elementwise products prove in packed form, 64 to a block, from 1024 products a batch;
/// matrix products (one Freivalds statement each, already short) in plain form.
impl Lift for Gr64 {
    const BINARY: bool = false;
    type Packed = PackedBlocks;
    fn base_add(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    fn base_mul(a: u64, b: u64) -> u64 {
        a.wrapping_mul(b)
    }
    fn packed(
        records: &[Record],
        role: Role,
        _len: usize,
        weights: &mut Prg,
    ) -> Option<(PackedBlocks, Gr64)> {
        // The block count is exact from the records; `len` only rounds it.
        build_packed_ring(records, role, weights)
    }
    /// Weights from the exceptional set (0/1 coefficients, as the Freivalds weights are): the
    /// sums of the rows each coefficient selects (`musket_ring::add_rows_by_bits`, about a
    /// third of the additions of a matrix product and no multiplications; the matrix product
    /// was most of ResNet-18's proof time). Other weights: one matrix product, `x^T` times
    /// their coefficient words (`[m, 64]`).
    fn left_fold(x: &[u64], m: usize, k: usize, rho: &[Gr64]) -> Vec<Gr64> {
        match bit_words(&rho[..m]) {
            Some(bits) => to_elements(&musket_ring::add_rows_by_bits(&x[..m * k], m, k, &bits)),
            None => {
                to_elements(&musket_ring::matmul_tn(&x[..m * k], gr64_words(&rho[..m]), k, m, EXT_DEGREE))
            }
        }
    }
    /// As one matrix product: `y` times the weights' coefficient words (`[n, 64]`). (The
    /// subset sums of [`Lift::left_fold`] need `y`'s transpose here: twice the time of the
    /// matrix product at an early ResNet-50 convolution's 576 x 3136, `cargo bench -p
    /// musket-ring -- fold_by_binary_weights`.)
    fn right_fold(y: &[u64], k: usize, n: usize, sigma: &[Gr64]) -> Vec<Gr64> {
        to_elements(&musket_ring::matmul(&y[..k * n], gr64_words(&sigma[..n]), k, n, EXT_DEGREE))
    }
}

/// The weights as words of their coefficient bits when every coefficient is 0 or 1 (the
/// exceptional set's elements), else `None`.
fn bit_words(weights: &[Gr64]) -> Option<Vec<u64>> {
    weights
        .iter()
        .map(|w| w.0.iter().enumerate().try_fold(0u64, |acc, (c, &v)| (v <= 1).then_some(acc | v << c)))
        .collect()
}

/// Elements from their coefficient words, 64 each.
fn to_elements(words: &[u64]) -> Vec<Gr64> {
    words.chunks_exact(EXT_DEGREE).map(|c| Gr64(c.try_into().expect("64 words"))).collect()
}

/// AND words prove in packed form unless a batch holds another gate shape (none does today:
/// binary products are elementwise).
impl Lift for Gf64 {
    const BINARY: bool = true;
    type Packed = PackedWords;
    fn base_add(a: u64, b: u64) -> u64 {
        a ^ b
    }
    fn base_mul(a: u64, b: u64) -> u64 {
        a & b
    }
    fn packed(records: &[Record], role: Role, len: usize, weights: &mut Prg) -> Option<(PackedWords, Gf64)> {
        build_packed(records, role, len, weights)
    }
}

/// The term of `role`'s statement for one elementwise product (as in [`build`]): the
/// `(x, y)` pair `(x_P + x_{P+1}, y_P + y_{P+1})` or its verifiers' shares (the claim words
/// come from [`claim_words`]).
fn product_term(role: Role, xc: u64, xn: u64, yc: u64, yn: u64, add: fn(u64, u64) -> u64) -> (u64, u64) {
    match role {
        Role::Prover => (add(xc, xn), add(yc, yn)),
        // A holds x_P, y_P as its `next` components; B holds x_{P+1}, y_{P+1} as `cur`.
        Role::A => (xn, yn),
        Role::B => (xc, yc),
    }
}

/// The components behind `role`'s `x` and `y` terms of an elementwise `rec` (as
/// [`product_term`] picks them): for each, one component, or two that add up to the term
/// (the prover's, unless its record holds the sums in `xc` and `yc` with `xn` and `yn`
/// empty, as a one-prover record does).
fn product_operands(role: Role, rec: &Record) -> [(&[u64], Option<&[u64]>); 2] {
    fn second(v: &[u64]) -> Option<&[u64]> {
        (!v.is_empty()).then_some(v)
    }
    match role {
        Role::Prover => [(&rec.xc, second(&rec.xn)), (&rec.yc, second(&rec.yn))],
        Role::A => [(&rec.xn, None), (&rec.yn, None)],
        Role::B => [(&rec.xc, None), (&rec.yc, None)],
    }
}

/// [`product_term`] for every product of an elementwise `rec` (the role chosen once, so that
/// each is a copy or one vectorised pass, `add` the sharing's addition: XOR or wrapping),
/// appended to `xs` and `ys` rather than written into zeroed space, which was one more pass
/// over every statement's words (`perf` put 3% of a malicious ReLU of 10^6 in that zeroing
/// for binary statements, most of it the pages' first touch, which the appends now pay: ReLU
/// measured level; for ring statements, in the twenty-first session, 1.9% of a malicious
/// multiplication of 10^6, where the memory is reused).
fn product_terms_extend(
    role: Role,
    rec: &Record,
    xs: &mut Vec<u64>,
    ys: &mut Vec<u64>,
    add: impl Fn(u64, u64) -> u64,
) {
    for (out, (a, b)) in [xs, ys].into_iter().zip(product_operands(role, rec)) {
        match b {
            Some(b) => out.extend(a.iter().zip(b).map(|(a, b)| add(*a, *b))),
            None => out.extend_from_slice(a),
        }
    }
}

/// Term `i` (element `i / width`, product `i % width`) of `role`'s statement in a
/// [`Gate::Cross`] record.
fn cross_term(rec: &Record, role: Role, i: usize) -> (u64, u64) {
    match role {
        Role::Prover => (rec.xc[i], rec.yc[i]),
        Role::A => (rec.xn[i], 0),
        Role::B => (0, rec.yn[i]),
    }
}

/// A verifier's claim words of `rec`, written into `out` (`rec.outputs()` words; nothing
/// for the prover). For an elementwise product, `B` adds the product of its components
/// `x_{P+1} y_{P+1}` (see the module docs).
fn claim_into<E: Lift>(rec: &Record, role: Role, out: &mut [u64]) {
    match (role, rec.gate) {
        (Role::Prover, _) => {}
        // A product's received message was folded with `nxt` when kept (`Record::fold_nxt`).
        (Role::A, _) => {
            debug_assert!(rec.nxt.is_empty(), "a record kept for verification has `nxt` folded");
            out.copy_from_slice(&rec.theirs)
        }
        (Role::B, Gate::Elementwise | Gate::OneProver { .. }) => {
            let own = rec.own_words();
            for (o, ((f, x), y)) in out.iter_mut().zip(own.iter().zip(&rec.xc).zip(&rec.yc)) {
                *o = E::base_add(*f, E::base_mul(*x, *y));
            }
        }
        (Role::B, _) => out.copy_from_slice(&rec.own_words()),
    }
}

/// [`claim_into`] as a new vector (none for the prover).
fn claim_words<E: Lift>(rec: &Record, role: Role) -> Option<Vec<u64>> {
    (role != Role::Prover).then(|| {
        let mut out = vec![0u64; rec.outputs()];
        claim_into::<E>(rec, role, &mut out);
        out
    })
}

/// Below this many products (and claims without terms, [`build_packed_ring`]) a ring batch
/// proves in plain form: a cost choice (plain proofs are cheap at that size; under 32
/// products, blocks of 64 would also pad to more levels). AND words always pack.
pub(crate) const PACKED_MIN_PRODUCTS: usize = 1024;

/// `role`'s packed statement over arithmetic elementwise `records`, 64 gates to a block,
/// weighted as [`BlockWeights`] says: the products first, one block term per block (until
/// the tenth session two, the two products of the resharing message), then the
/// [`Gate::Cross`] gates' elements, one product each. A cross record with no product in this
/// statement (truncation's wrap in its helper's statement) gives it no terms; its claims
/// (today the verifiers' own zero shares, by construction) get weights of their own from the
/// exceptional set, one per 64 as a block's, added to the claim, so that no claim goes
/// unchecked whatever a record puts there: a nonzero one is a false claim as a wrong product
/// is (at most `2^-64` more). With them a statement of no terms packs as one zero block. `None` when a record is a matrix product or a one-prover
/// record, a cross record gives this statement two or more products per element (whose
/// planes would have to share a block's weight, which weights fixed by position do not give:
/// no protocol step makes such records since the eighteenth session), or the batch has fewer
/// than [`PACKED_MIN_PRODUCTS`] gates and claims.
fn build_packed_ring(records: &[Record], role: Role, weights: &mut Prg) -> Option<(PackedBlocks, Gr64)> {
    const D: usize = EXT_DEGREE;
    if records.iter().any(|r| {
        matches!(r.gate, Gate::Matmul { .. } | Gate::OneProver { .. })
            || (matches!(r.gate, Gate::Cross { .. }) && r.cross_width(role) > 1)
    }) {
        return None;
    }
    let is_cross = |r: &Record| matches!(r.gate, Gate::Cross { .. });
    let products: usize = records.iter().filter(|r| !is_cross(r)).map(|r| r.xc.len()).sum();
    let crossing: Vec<&Record> = records.iter().filter(|r| is_cross(r) && r.cross_width(role) == 1).collect();
    let claim_only: Vec<&Record> =
        records.iter().filter(|r| is_cross(r) && r.cross_width(role) == 0).collect();
    let crosses: usize = crossing.iter().map(|r| r.theirs.len()).sum();
    let claim_only_len: usize = claim_only.iter().map(|r| r.theirs.len()).sum();
    // Claims without terms count: a statement of them alone packs (no terms, one block).
    if products + crosses + claim_only_len < PACKED_MIN_PRODUCTS {
        return None;
    }
    // Block terms in order: the product blocks, then the cross blocks (from a whole block on),
    // zero-padded to a power of two of blocks. A verifier's claims lie as its terms do.
    let cross = products.div_ceil(D) * D;
    let terms = (cross + crosses).div_ceil(D);
    let len = terms.next_power_of_two() * D;
    // Appended, zeros only where nothing else goes (see `product_terms_extend`).
    let (mut x, mut y) = (Vec::with_capacity(len), Vec::with_capacity(len));
    let mut claims = if role == Role::Prover { Vec::new() } else { Vec::with_capacity(terms * D) };
    // A verifier's `n` claims of `rec`, beside its terms.
    let claims_of = |rec: &Record, n: usize, claims: &mut Vec<u64>| {
        if role != Role::Prover {
            let at = claims.len();
            claims.resize(at + n, 0);
            claim_into::<Gr64>(rec, role, &mut claims[at..]);
        }
    };
    for rec in records.iter().filter(|r| !is_cross(r)) {
        product_terms_extend(role, rec, &mut x, &mut y, u64::wrapping_add);
        claims_of(rec, rec.xc.len(), &mut claims);
    }
    debug_assert!(
        x.len() == products && y.len() == products && (claims.is_empty() || claims.len() == products)
    );
    // The cross blocks start at a whole block.
    x.resize(cross, 0);
    y.resize(cross, 0);
    if role != Role::Prover {
        claims.resize(cross, 0);
    }
    for rec in crossing {
        let n = rec.theirs.len();
        // The vectors' other side is zero for a verifier ([`cross_term`]).
        match role {
            Role::Prover => {
                x.extend_from_slice(&rec.xc[..n]);
                y.extend_from_slice(&rec.yc[..n]);
            }
            Role::A => {
                x.extend_from_slice(&rec.xn[..n]);
                y.resize(y.len() + n, 0);
            }
            Role::B => {
                x.resize(x.len() + n, 0);
                y.extend_from_slice(&rec.yn[..n]);
            }
        }
        claims_of(rec, n, &mut claims);
    }
    x.resize(len, 0);
    y.resize(len, 0);
    if role != Role::Prover {
        claims.resize(terms * D, 0);
    }
    let padded = len / D;
    // Drawn for the padded length whatever this party's share of it (see `BlockWeights`).
    let block_weights = BlockWeights::draw(padded, weights);
    let claim_only_weights = weights.words(claim_only_len.div_ceil(D));
    let claim = if role == Role::Prover {
        Gr64::zero()
    } else {
        // Whole blocks of claims, the last zero-padded (a partial block would be left out).
        let mut rest = Vec::with_capacity(claim_only_len.next_multiple_of(D));
        for rec in claim_only {
            rest.extend(claim_words::<Gr64>(rec, role).expect("a verifier's claim words"));
        }
        rest.resize(claim_only_len.next_multiple_of(D), 0);
        block_weights.claim(&claims).add(Gr64::dot_bits(&claim_only_weights, &rest))
    };
    Some((PackedBlocks::new(x, y, block_weights, padded), claim))
}

/// `role`'s packed statement over binary elementwise `records`: one word term per AND word
/// (as in [`build`]; two until the tenth session), weighted as [`WordWeights`] says; `None` when a
/// record is not elementwise. `len` counts bit terms.
fn build_packed(
    records: &[Record],
    role: Role,
    len: usize,
    weights: &mut Prg,
) -> Option<(PackedWords, Gf64)> {
    if records.iter().any(|r| !matches!(r.gate, Gate::Elementwise | Gate::OneProver { .. })) {
        return None;
    }
    // A one-prover record gives the other statements nothing (and draws no weights there).
    let records: Vec<&Record> = records.iter().filter(|r| r.terms_as(true, role) > 0).collect();
    // One word term per AND word, appended (not written into zeroed vectors: their zeroing
    // was a few percent of a large model's time); `PackedWords::new` pads them.
    let words: usize = records.iter().map(|r| r.products()).sum();
    let padded = (len / 64).max(words).max(1).next_power_of_two();
    // Drawn for the padded length whatever this party's share of it (see `WordWeights`).
    let word_weights = WordWeights::draw(padded, weights);
    let (mut lw, mut rw) = (Vec::with_capacity(padded), Vec::with_capacity(padded));
    let mut claims = Vec::new();
    for rec in records {
        product_terms_extend(role, rec, &mut lw, &mut rw, |a, b| a ^ b);
        if role != Role::Prover {
            let at = claims.len();
            claims.resize(at + rec.products(), 0);
            claim_into::<Gf64>(rec, role, &mut claims[at..]);
        }
    }
    let claim = if role == Role::Prover { Gf64(0) } else { word_weights.claim(&claims) };
    Some((PackedWords::new(lw, rw, word_weights, len / 64), claim))
}

/// `rho^T c sigma` for an `[m, n]` matrix, folded by `rho` first: for weights from the
/// exceptional set that is sums of the rows their bits select ([`Lift::left_fold`]), about a
/// third of the additions of the product by `sigma`'s coefficient words and no
/// multiplications, then `n` products of elements (until the twenty-fourth session the
/// product by `sigma` first, `64 m n` multiply-adds).
fn both_fold<E: Lift>(c: &[u64], m: usize, n: usize, rho: &[E], sigma: &[E]) -> E {
    E::dot(&E::left_fold(c, m, n, rho), &sigma[..n])
}

/// Builds `role`'s statement over `records`, drawing the combination weights from `weights`
/// (the statement's seed: every party building the same statement draws the same ones).
pub(crate) fn build<E: Lift>(records: &[Record], role: Role, weights: &mut Prg) -> Statement<E> {
    let terms: usize = records.iter().map(|r| r.terms(E::BINARY)).sum();
    let mut st = Statement { l: Vec::with_capacity(terms), r: Vec::with_capacity(terms), claim: E::zero() };
    for rec in records {
        match rec.gate {
            // A one-prover record gives the other statements nothing (and draws no weights).
            Gate::OneProver { role: r } if r != role => {}
            Gate::Elementwise | Gate::OneProver { .. } => {
                let bits = if E::BINARY { 64 } else { 1 };
                let thetas = weights.words(rec.products() * bits);
                debug_assert!(
                    [&rec.xc, &rec.xn, &rec.yc, &rec.yn]
                        .iter()
                        .all(|v| v.is_empty() || v.len() == rec.products()),
                    "an operand vector is whole or empty"
                );
                let claims = claim_words::<E>(rec, role);
                for g in 0..rec.products() {
                    for t in 0..bits {
                        // A vector this role does not read may be empty (a one-prover
                        // record's); the prover's `xn` and `yn` then add nothing. Any other
                        // vector is whole (asserted in debug builds, above).
                        let at = |v: &[u64]| {
                            let w = v.get(g).copied().unwrap_or(0);
                            if E::BINARY {
                                (w >> t) & 1
                            } else {
                                w
                            }
                        };
                        let theta = E::exceptional(thetas[g * bits + t]);
                        let (x, y) = product_term(
                            role,
                            at(&rec.xc),
                            at(&rec.xn),
                            at(&rec.yc),
                            at(&rec.yn),
                            E::base_add,
                        );
                        st.l.push(theta.mul_base(x));
                        st.r.push(E::from_base(y));
                        if let Some(c) = &claims {
                            st.claim = st.claim.add(theta.mul_base(at(c)));
                        }
                    }
                }
            }
            Gate::Cross { .. } => {
                let bits = if E::BINARY { 64 } else { 1 };
                let (n, width) = (rec.theirs.len(), rec.cross_width(role));
                let thetas = weights.words(n * bits);
                let claims = claim_words::<E>(rec, role);
                for g in 0..n {
                    for t in 0..bits {
                        let at = |v: u64| if E::BINARY { (v >> t) & 1 } else { v };
                        let theta = E::exceptional(thetas[g * bits + t]);
                        // The element's products share its weight: their sum is what it claims.
                        for i in g * width..(g + 1) * width {
                            let (x, y) = cross_term(rec, role, i);
                            st.l.push(theta.mul_base(at(x)));
                            st.r.push(E::from_base(at(y)));
                        }
                        if let Some(c) = &claims {
                            st.claim = st.claim.add(theta.mul_base(at(c[g])));
                        }
                    }
                }
            }
            Gate::Matmul { m, k, n } => {
                let rho: Vec<E> = weights.words(m).into_iter().map(E::exceptional).collect();
                let sigma: Vec<E> = weights.words(n).into_iter().map(E::exceptional).collect();
                // One product of folds: `(rho^T (X_P + X_(P+1))) . ((Y_P + Y_(P+1)) sigma)`, B's
                // claim adding `(rho^T X_(P+1)) . (Y_(P+1) sigma)` (as for elementwise products).
                let (l, r) = match role {
                    Role::Prover => {
                        let add = |a: &[u64], b: &[u64]| -> Vec<u64> {
                            a.iter().zip(b).map(|(a, b)| E::base_add(*a, *b)).collect()
                        };
                        (
                            E::left_fold(&add(&rec.xc, &rec.xn), m, k, &rho),
                            E::right_fold(&add(&rec.yc, &rec.yn), k, n, &sigma),
                        )
                    }
                    Role::A => {
                        // `theirs` is A's claim share (`nxt` folded when kept).
                        debug_assert!(rec.nxt.is_empty(), "a record kept for verification has `nxt` folded");
                        st.claim = st.claim.add(both_fold(&rec.theirs, m, n, &rho, &sigma));
                        (E::left_fold(&rec.xn, m, k, &rho), E::right_fold(&rec.yn, k, n, &sigma))
                    }
                    Role::B => {
                        let (l, r) =
                            (E::left_fold(&rec.xc, m, k, &rho), E::right_fold(&rec.yc, k, n, &sigma));
                        st.claim =
                            st.claim.add(both_fold(&rec.own_words(), m, n, &rho, &sigma)).add(E::dot(&l, &r));
                        (l, r)
                    }
                };
                st.l.extend(l);
                st.r.extend(r);
            }
        }
    }
    st
}

#[cfg(test)]
mod tests;
