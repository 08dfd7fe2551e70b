//! The extension rings in which multiplications are verified (see [`crate::dzkp`]).
//!
//! A check that holds for random challenges from Z_2^64 proves little: a polynomial such as
//! `2^63 X` vanishes at every even point, so an error in the top bit would pass half the time.
//! The proof therefore runs in extensions with large *exceptional sets* (sets whose pairwise
//! differences are units), where a nonzero polynomial of degree `D` vanishes on at most `D` of
//! the set's points (Schwartz–Zippel; for Galois rings see Abspoel, Cramer, Damgård,
//! Escudero, Yuan, TCC 2019):
//! - [`Gr64`]: the Galois ring GR(2^64, 64) = Z_2^64\[x\] / (f), for arithmetic shares;
//! - [`Gf64`]: the field GF(2^64) = F_2\[x\] / (f), for XOR-shared bits;
//!
//! both with `f = x^64 + x^4 + x^3 + x + 1`, irreducible over F_2 (a test checks it). The
//! exceptional set of GR(2^64, 64) is the 2^64 polynomials with 0/1 coefficients (their
//! differences are nonzero modulo 2, hence units); for GF(2^64) it is the whole field.
//!
//! Hand-written because no maintained crate provides Galois-ring arithmetic over Z_2^64.

use crate::Prg;

/// Degree of both extensions.
pub const EXT_DEGREE: usize = 64;

/// An extension ring of Z_2^64 or F_2 in which the proofs run.
pub trait Ext: Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// Words on the wire per element.
    const WORDS: usize;
    /// The additive identity.
    fn zero() -> Self;
    /// The multiplicative identity.
    fn one() -> Self;
    /// Embeds a base-ring element (for [`Gf64`], only the low bit counts).
    fn from_base(v: u64) -> Self;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self - o`.
    fn sub(self, o: Self) -> Self;
    /// `self * o`.
    fn mul(self, o: Self) -> Self;
    /// `self * v` for a base-ring element `v` (cheaper than [`Ext::mul`]).
    fn mul_base(self, v: u64) -> Self;
    /// A uniformly random element (for masks and shares).
    fn random(prg: &mut Prg) -> Self;
    /// A uniformly random element of the exceptional set (for challenges); never zero.
    fn challenge(prg: &mut Prg) -> Self;
    /// The element of the exceptional set that a random word selects (zero included): for
    /// drawing many combination weights from one PRG call.
    fn exceptional(word: u64) -> Self;
    /// Appends the wire form.
    fn write(&self, out: &mut Vec<u64>);
    /// Reads the wire form (`words.len() == WORDS`).
    fn read(words: &[u64]) -> Self;
    /// True when the element lies in the base ring (a constant).
    fn is_base(&self) -> bool;
    /// The inverse of a unit, `None` for an element that is not one. The units are the
    /// elements nonzero modulo 2, so every nonzero element of the exceptional set (every
    /// challenge) is one.
    fn inverse(self) -> Option<Self>;

    /// `sum_i a_i b_i`. Back ends of the proof call this and [`Ext::fold_into`] on whole
    /// vectors, so that a ring can batch them.
    fn dot(a: &[Self], b: &[Self]) -> Self {
        a.iter().zip(b).fold(Self::zero(), |acc, (x, y)| acc.add(x.mul(*y)))
    }
    /// `lo_i += t (hi_i - lo_i)` for every `i`.
    fn fold_into(lo: &mut [Self], hi: &[Self], t: Self) {
        for (l, h) in lo.iter_mut().zip(hi) {
            *l = l.add(t.mul(h.sub(*l)));
        }
    }
    /// `acc_i += t v_i` for every `i` (a quartering level's fold, by Horner).
    fn add_times_into(acc: &mut [Self], v: &[Self], t: Self) {
        for (a, x) in acc.iter_mut().zip(v) {
            *a = a.add(t.mul(*x));
        }
    }
    /// A proof level's three inner products `[<a0, b0>, <a1, b1>, <a1 - a0, b1 - b0>]`, where
    /// `a1` and `b1` are at most as long as `a0` and `b0` (their missing entries are zero).
    fn level_sums(a0: &[Self], a1: &[Self], b0: &[Self], b1: &[Self]) -> [Self; 3] {
        level_sums_by_dots(a0, a1, b0, b1)
    }
    /// `out_i = a_i + b_i` for every `i` of `out` (`a` and `b` at least as long).
    fn add_slices(out: &mut [Self], a: &[Self], b: &[Self]) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = x.add(*y);
        }
    }
}

/// [`Ext::level_sums`] as three [`Ext::dot`]s, the differences formed in full.
fn level_sums_by_dots<E: Ext>(a0: &[E], a1: &[E], b0: &[E], b1: &[E]) -> [E; 3] {
    let diff = |x: &[E], y: &[E]| -> Vec<E> {
        x.iter().enumerate().map(|(i, v)| y.get(i).copied().unwrap_or_else(E::zero).sub(*v)).collect()
    };
    let (da, db) = (diff(a0, a1), diff(b0, b1));
    [E::dot(a0, b0), E::dot(a1, b1), E::dot(&da, &db)]
}

/// Elements per chunk of the Galois ring's vector operations: a chunk's operands (64 words an
/// element, 16 KiB an operand) stay in cache between the copy and the products.
const CHUNK: usize = 32;

/// An element of GR(2^64, 64): coefficients of `1, x, ..., x^63` in Z_2^64.
///
/// `repr(transparent)` with `zerocopy`'s layout derives, so that a slice of elements is its
/// coefficient words in place ([`gr64_words`]): the kernels take strided words, and copying
/// each chunk of elements to words first cost about a quarter of a plain level's inner products.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
#[repr(transparent)]
pub struct Gr64(pub [u64; EXT_DEGREE]);

/// The elements' coefficient words in place, 64 an element (element `i`'s at `64 i..`).
pub fn gr64_words(v: &[Gr64]) -> &[u64] {
    use zerocopy::{FromBytes, IntoBytes};
    <[u64]>::ref_from_bytes(v.as_bytes()).expect("Gr64 has the size and alignment of its words")
}

/// The elements' coefficient words in place, mutably.
pub fn gr64_words_mut(v: &mut [Gr64]) -> &mut [u64] {
    use zerocopy::{FromBytes, IntoBytes};
    <[u64]>::mut_from_bytes(v.as_mut_bytes()).expect("Gr64 has the size and alignment of its words")
}

impl std::fmt::Debug for Gr64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gr64[{:#x}, ..]", self.0[0])
    }
}

/// Exponents of the low terms of `f` (`x^64 = -(x^4 + x^3 + x + 1)` in the Galois ring).
pub(crate) const REDUCTION_TAPS: [usize; 4] = [0, 1, 3, 4];

impl Ext for Gr64 {
    const WORDS: usize = EXT_DEGREE;
    fn zero() -> Self {
        Gr64([0; EXT_DEGREE])
    }
    fn one() -> Self {
        Self::from_base(1)
    }
    fn from_base(v: u64) -> Self {
        let mut c = [0; EXT_DEGREE];
        c[0] = v;
        Gr64(c)
    }
    fn add(self, o: Self) -> Self {
        let mut c = self.0;
        for (a, b) in c.iter_mut().zip(o.0) {
            *a = a.wrapping_add(b);
        }
        Gr64(c)
    }
    fn sub(self, o: Self) -> Self {
        let mut c = self.0;
        for (a, b) in c.iter_mut().zip(o.0) {
            *a = a.wrapping_sub(b);
        }
        Gr64(c)
    }
    fn mul(self, o: Self) -> Self {
        if o.is_base() {
            return self.mul_base(o.0[0]);
        }
        if self.is_base() {
            return o.mul_base(self.0[0]);
        }
        let mut prod = [0u64; 2 * EXT_DEGREE];
        for (i, &a) in self.0.iter().enumerate() {
            for (p, &b) in prod[i..i + EXT_DEGREE].iter_mut().zip(&o.0) {
                *p = p.wrapping_add(a.wrapping_mul(b));
            }
        }
        // Fold the high coefficients down from the top, so that a fold landing above x^63
        // is folded again.
        reduce_wide(prod)
    }
    fn mul_base(self, v: u64) -> Self {
        let mut c = self.0;
        for a in c.iter_mut() {
            *a = a.wrapping_mul(v);
        }
        Gr64(c)
    }
    fn random(prg: &mut Prg) -> Self {
        let mut c = [0u64; EXT_DEGREE];
        prg.fill(&mut c);
        Gr64(c)
    }
    fn challenge(prg: &mut Prg) -> Self {
        loop {
            let bits = prg.words(1)[0];
            if bits != 0 {
                return Self::exceptional(bits);
            }
        }
    }
    fn exceptional(bits: u64) -> Self {
        let mut c = [0u64; EXT_DEGREE];
        for (i, x) in c.iter_mut().enumerate() {
            *x = (bits >> i) & 1;
        }
        Gr64(c)
    }
    fn write(&self, out: &mut Vec<u64>) {
        out.extend_from_slice(&self.0);
    }
    fn read(words: &[u64]) -> Self {
        let mut c = [0u64; EXT_DEGREE];
        c.copy_from_slice(&words[..EXT_DEGREE]);
        Gr64(c)
    }
    fn is_base(&self) -> bool {
        self.0[1..].iter().all(|&c| c == 0)
    }
    /// Modulo 2 the ring is GF(2^64) with the same `f`, where the inverse is a power; Newton's
    /// iteration `y <- y (2 - a y)` then doubles the bits of precision each step (1 to 64 in
    /// six).
    fn inverse(self) -> Option<Self> {
        let low_bits = self.0.iter().enumerate().fold(0u64, |acc, (i, c)| acc | ((c & 1) << i));
        let mut y = Gr64::exceptional(Gf64(low_bits).inverse()?.0);
        let two = Gr64::from_base(2);
        for _ in 0..6 {
            y = y.mul(two.sub(self.mul(y)));
        }
        Some(y)
    }

    /// The coefficient polynomials' products summed unreduced by Karatsuba and reduced once
    /// ([`Gr64::dot_words`]). Constant `b` (a whole vector of base
    /// elements, as at a proof's first level) is a matrix-vector product instead.
    fn dot(a: &[Self], b: &[Self]) -> Self {
        let n = a.len().min(b.len());
        if n < 16 {
            return a.iter().zip(b).fold(Self::zero(), |acc, (x, y)| acc.add(x.mul(*y)));
        }
        if b[..n].iter().all(Gr64::is_base) {
            let mut out = [0u64; EXT_DEGREE];
            for (x, y) in a.iter().zip(b) {
                let v = y.0[0];
                for (o, c) in out.iter_mut().zip(&x.0) {
                    *o = o.wrapping_add(c.wrapping_mul(v));
                }
            }
            return Gr64(out);
        }
        Gr64::dot_words(gr64_words(&a[..n]), gr64_words(&b[..n]))
    }

    /// A chunk of elements at a time: `hi - lo` (transposed: a row per coefficient) times
    /// `t`, added to `lo`. A challenge from the exceptional set (0/1 coefficients, as every
    /// fold of a proof has) multiplies by shifted additions
    /// (`musket_ring::add_times_binary_poly`, about half the vector operations and no
    /// `vpmullq`); any other `t` by the 64 x 64 matrix of multiplication by `t`. The chunk's
    /// words stay in cache (a whole-vector product copied every operand to memory twice: once
    /// as words, once packed).
    fn fold_into(lo: &mut [Self], hi: &[Self], t: Self) {
        let n = lo.len().min(hi.len());
        let all_base = lo[..n].iter().zip(&hi[..n]).all(|(l, h)| l.is_base() && h.is_base());
        if n < 16 || all_base {
            for (l, h) in lo.iter_mut().zip(hi) {
                let d = h.sub(*l);
                *l = l.add(if d.is_base() { t.mul_base(d.0[0]) } else { t.mul(d) });
            }
            return;
        }
        let d = EXT_DEGREE;
        if let Some(bits) = t.binary_bits() {
            // t (hi - lo), a chunk's differences at a time.
            add_binary_poly_times(&mut lo[..n], bits, |lo, start, rows| {
                musket_ring::coefficient_rows_of_differences(
                    gr64_words(lo),
                    gr64_words(&hi[start..start + lo.len()]),
                    rows,
                )
            });
            return;
        }
        let m = t.mul_matrix();
        let (mut diffs_t, mut prod) = (vec![0u64; d * CHUNK], vec![0u64; CHUNK * d]);
        for (lo, hi) in lo[..n].chunks_mut(CHUNK).zip(hi[..n].chunks(CHUNK)) {
            musket_ring::coefficient_rows_of_differences(gr64_words(lo), gr64_words(hi), &mut diffs_t);
            prod.fill(0);
            musket_ring::matmul_tn_strided_add(&diffs_t, CHUNK, &m, d, &mut prod, d, (CHUNK, d, d));
            for (l, row) in lo.iter_mut().zip(prod.chunks_exact(d)) {
                for (c, &p) in l.0.iter_mut().zip(row) {
                    *c = c.wrapping_add(p);
                }
            }
        }
    }

    /// A challenge (0/1 coefficients) by shifted additions as in [`Ext::fold_into`], any
    /// other `t` element by element.
    fn add_times_into(acc: &mut [Self], v: &[Self], t: Self) {
        let n = acc.len().min(v.len());
        // Base-ring `v` (a plain proof's first level) is cheaper element by element: 64
        // products where the shifted additions would take a chunk's 64 rows.
        match t.binary_bits() {
            Some(bits) if n >= 16 && !v[..n].iter().all(Gr64::is_base) => {
                add_binary_poly_times(&mut acc[..n], bits, |acc, start, rows| {
                    musket_ring::coefficient_rows(gr64_words(&v[start..start + acc.len()]), rows)
                });
            }
            _ => {
                for (a, x) in acc.iter_mut().zip(v) {
                    *a = a.add(if x.is_base() { t.mul_base(x.0[0]) } else { t.mul(*x) });
                }
            }
        }
    }

    /// Word by word in place ([`gr64_words`]): element by element, each sum was a 512-byte
    /// value copied into its place.
    fn add_slices(out: &mut [Self], a: &[Self], b: &[Self]) {
        let n = out.len();
        let out = gr64_words_mut(out);
        for ((o, x), y) in out.iter_mut().zip(gr64_words(&a[..n])).zip(gr64_words(&b[..n])) {
            *o = x.wrapping_add(*y);
        }
    }

    /// In one pass, a chunk at a time: each chunk's operands are read in place as words
    /// ([`gr64_words`]), its differences formed in cache-resident words, and their products
    /// added to three sums of coefficient-polynomial products (Karatsuba,
    /// `musket_ring::PolyProductSum`), reduced once at the end.
    /// Base-ring `b0` (a plain proof's first level) goes through [`Ext::dot`]'s
    /// matrix-vector form.
    fn level_sums(a0: &[Self], a1: &[Self], b0: &[Self], b1: &[Self]) -> [Self; 3] {
        let n = a0.len().min(b0.len());
        let n1 = a1.len().min(b1.len()).min(n);
        if n < 16 || b0[..n].iter().all(Gr64::is_base) {
            return level_sums_by_dots(&a0[..n], &a1[..n1], &b0[..n], &b1[..n1]);
        }
        let d = EXT_DEGREE;
        let mut sums: [musket_ring::PolyProductSum; 3] =
            std::array::from_fn(|_| musket_ring::PolyProductSum::new());
        let (x0, y0) = (gr64_words(&a0[..n]), gr64_words(&b0[..n]));
        let (x1, y1) = (gr64_words(&a1[..n1]), gr64_words(&b1[..n1]));
        let mut words = vec![0u64; 2 * CHUNK * d];
        for start in (0..n).step_by(CHUNK) {
            // Rows past `len` are not read: no clearing needed.
            let len = CHUNK.min(n - start);
            let live = n1.saturating_sub(start).min(len);
            let (dx, dy) = words.split_at_mut(CHUNK * d);
            let span = start * d..(start + len) * d;
            let (p0, q0) = (&x0[span.clone()], &y0[span]);
            // Past `n1` the second halves are zero: the differences are `-a0`, `-b0`.
            let (p1, q1) = if live > 0 {
                (&x1[start * d..(start + live) * d], &y1[start * d..(start + live) * d])
            } else {
                (&[][..], &[][..])
            };
            let (dx, dy) = (&mut dx[..len * d], &mut dy[..len * d]);
            let (dx_live, dx_past) = dx.split_at_mut(p1.len());
            let (dy_live, dy_past) = dy.split_at_mut(q1.len());
            for ((o, &u1), &u) in dx_live.iter_mut().zip(p1).zip(p0) {
                *o = u1.wrapping_sub(u);
            }
            for ((o, &v1), &v) in dy_live.iter_mut().zip(q1).zip(q0) {
                *o = v1.wrapping_sub(v);
            }
            for (o, &u) in dx_past.iter_mut().zip(&p0[p1.len()..]) {
                *o = u.wrapping_neg();
            }
            for (o, &v) in dy_past.iter_mut().zip(&q0[q1.len()..]) {
                *o = v.wrapping_neg();
            }
            sums[0].add_products(p0, d, q0, d, len);
            sums[1].add_products(p1, d, q1, d, live);
            sums[2].add_products(dx, d, dy, d, len);
        }
        sums.each_ref().map(Gr64::from_product_sum)
    }
}

/// `lo += t w` for the 0/1 polynomial `t` (bit `j` the coefficient of `x^j`), a chunk of
/// [`CHUNK`] elements at a time in coefficient-major form: `operand(chunk, start, rows)`
/// writes the chunk's `w` (the chunk of `lo` starting at element `start`) as rows.
fn add_binary_poly_times(lo: &mut [Gr64], t: u64, operand: impl Fn(&[Gr64], usize, &mut [u64])) {
    const _: () = assert!(CHUNK == musket_ring::BINARY_POLY_CHUNK);
    let d = EXT_DEGREE;
    let (mut rows, mut prod_t) = (vec![0u64; d * CHUNK], vec![0u64; d * CHUNK]);
    for (i, lo) in lo.chunks_mut(CHUNK).enumerate() {
        operand(lo, i * CHUNK, &mut rows);
        prod_t.fill(0);
        musket_ring::add_times_binary_poly(&rows, t, &REDUCTION_TAPS, &mut prod_t);
        musket_ring::add_coefficient_rows(&prod_t, gr64_words_mut(lo));
    }
}

/// Reduces a product's 127 coefficients modulo `f`.
fn reduce_wide(mut prod: [u64; 2 * EXT_DEGREE]) -> Gr64 {
    for j in (EXT_DEGREE..2 * EXT_DEGREE - 1).rev() {
        let c = prod[j];
        if c != 0 {
            for t in REDUCTION_TAPS {
                prod[j - EXT_DEGREE + t] = prod[j - EXT_DEGREE + t].wrapping_sub(c);
            }
        }
    }
    let mut out = [0u64; EXT_DEGREE];
    out.copy_from_slice(&prod[..EXT_DEGREE]);
    Gr64(out)
}

/// `out = v x^k` reduced, for the coefficient words `v` of an element and `k < 64` (see
/// `musket_ring::row_times_x_pow`; whole 64-row blocks go through
/// `musket_ring::rows_times_x_pows`, vectorised). Writes into `out` so that callers
/// building matrices of such rows need no element copies.
pub(crate) fn times_x_pow_words(v: &[u64], k: usize, out: &mut [u64]) {
    musket_ring::row_times_x_pow(v, k, &REDUCTION_TAPS, out);
}

impl Gr64 {
    /// The element as a word of bits (bit `j` the coefficient of `x^j`) when every
    /// coefficient is 0 or 1, as a challenge's are.
    pub(crate) fn binary_bits(&self) -> Option<u64> {
        self.0.iter().enumerate().try_fold(0u64, |m, (j, &c)| (c <= 1).then_some(m | (c << j)))
    }
    /// `sum_i a_i b_i` for elements given as their coefficient words, 64 per element (the same
    /// count in both): the coefficient polynomials' products summed unreduced by Karatsuba
    /// (`musket_ring::PolyProductSum`), reduced once.
    pub fn dot_words(a: &[u64], b: &[u64]) -> Self {
        let n = a.len().min(b.len()) / EXT_DEGREE;
        let mut sum = musket_ring::PolyProductSum::new();
        sum.add_products(a, EXT_DEGREE, b, EXT_DEGREE, n);
        Self::from_product_sum(&sum)
    }

    /// `sum_i a_i b_i` for `a_i` from the exceptional set given as bit words (bit `j` the
    /// coefficient of `x^j`, as [`Ext::exceptional`] reads them) and `b_i` as coefficient words,
    /// 64 per element: the sums of the `b_i` each bit selects (`musket_ring::BitWeightedSum`:
    /// additions only), reduced once.
    pub fn dot_bits(a: &[u64], b: &[u64]) -> Self {
        let n = a.len().min(b.len() / EXT_DEGREE);
        let mut sum = musket_ring::BitWeightedSum::new();
        sum.add_rows(&a[..n], b, EXT_DEGREE);
        Self::from_product_coefficients(sum.coefficients())
    }

    /// `sum_i a_i P(x_i, y_i)` for `a_i` from the exceptional set given as bit words (as in
    /// [`Gr64::dot_bits`]) and `P(x, y) = sum_b X^b x_b y_b` the packed product of two
    /// 64-word blocks, formed on the fly.
    ///
    /// # Panics
    /// If `x` or `y` is not 64 words per weight.
    pub fn dot_hadamard_bits(a: &[u64], x: &[u64], y: &[u64]) -> Self {
        let mut sum = musket_ring::BitWeightedSum::new();
        sum.add_hadamard_rows(a, x, y);
        Self::from_product_coefficients(sum.coefficients())
    }

    /// The element a sum of coefficient-polynomial products stands for: its 127 coefficients
    /// reduced modulo `f`.
    pub(crate) fn from_product_sum(sum: &musket_ring::PolyProductSum) -> Self {
        Self::from_product_coefficients(sum.coefficients())
    }

    /// The element whose unreduced coefficients (of `x^0` to `x^126`) are `coefficients`.
    pub(crate) fn from_product_coefficients(coefficients: [u64; 2 * EXT_DEGREE]) -> Self {
        reduce_wide(coefficients)
    }

    /// `self * x^k` for `k < 64`: a shift of the coefficients and one reduction.
    pub fn times_x_pow(self, k: usize) -> Self {
        let mut out = [0u64; EXT_DEGREE];
        times_x_pow_words(&self.0, k, &mut out);
        Gr64(out)
    }

    /// `self * x`.
    fn times_x(self) -> Self {
        let mut c = [0u64; EXT_DEGREE];
        c[1..].copy_from_slice(&self.0[..EXT_DEGREE - 1]);
        let top = self.0[EXT_DEGREE - 1];
        for t in REDUCTION_TAPS {
            c[t] = c[t].wrapping_sub(top);
        }
        Gr64(c)
    }

    /// The matrix `M` of multiplication by `self`: row `u` holds the coefficients of
    /// `self * x^u`, so a row vector of coefficients `y` times `M` is `self * y`.
    pub(crate) fn mul_matrix(self) -> Vec<u64> {
        let mut m = Vec::with_capacity(EXT_DEGREE * EXT_DEGREE);
        let mut row = self;
        for _ in 0..EXT_DEGREE {
            m.extend_from_slice(&row.0);
            row = row.times_x();
        }
        m
    }
}

/// An element of GF(2^64): bit `i` is the coefficient of `x^i`. Defined in `musket_ring`,
/// beside the kernels that take slices of it as words in place.
pub use musket_ring::Gf64;

/// Reduces a 128-bit carry-less product modulo `f`.
pub(crate) fn reduce(p: u128) -> u64 {
    musket_ring::gf64_reduce(p)
}

impl Ext for Gf64 {
    const WORDS: usize = 1;
    fn zero() -> Self {
        Gf64(0)
    }
    fn one() -> Self {
        Gf64(1)
    }
    fn from_base(v: u64) -> Self {
        Gf64(v & 1)
    }
    fn add(self, o: Self) -> Self {
        Gf64(self.0 ^ o.0)
    }
    fn sub(self, o: Self) -> Self {
        Gf64(self.0 ^ o.0)
    }
    fn mul(self, o: Self) -> Self {
        Gf64(reduce(musket_ring::clmul_portable(self.0, o.0)))
    }
    fn mul_base(self, v: u64) -> Self {
        if v & 1 == 1 {
            self
        } else {
            Gf64(0)
        }
    }
    fn random(prg: &mut Prg) -> Self {
        Gf64(prg.words(1)[0])
    }
    fn challenge(prg: &mut Prg) -> Self {
        loop {
            let v = prg.words(1)[0];
            if v != 0 {
                return Gf64(v);
            }
        }
    }
    fn exceptional(word: u64) -> Self {
        Gf64(word)
    }
    fn write(&self, out: &mut Vec<u64>) {
        out.push(self.0);
    }
    fn read(words: &[u64]) -> Self {
        Gf64(words[0])
    }
    fn is_base(&self) -> bool {
        self.0 <= 1
    }
    /// `a^(2^64 - 2)`, by squaring and multiplying.
    fn inverse(self) -> Option<Self> {
        if self.0 == 0 {
            return None;
        }
        let (mut out, mut power) = (Gf64(1), self);
        for bit in 0..64 {
            if ((u64::MAX - 1) >> bit) & 1 == 1 {
                out = out.mul(power);
            }
            power = power.mul(power);
        }
        Some(out)
    }

    /// Batched carry-less products (PCLMULQDQ where the CPU has it), reduced once.
    fn dot(a: &[Self], b: &[Self]) -> Self {
        let n = a.len().min(b.len());
        if b[..n].iter().all(Gf64::is_base) {
            return Gf64(a.iter().zip(b).fold(0, |acc, (x, y)| if y.0 == 1 { acc ^ x.0 } else { acc }));
        }
        Gf64(reduce(musket_ring::clmul_dot(
            musket_ring::gf64_words(&a[..n]),
            musket_ring::gf64_words(&b[..n]),
        )))
    }

    /// One carry-less product and reduction an element (`musket_ring::gf64_fold_into`:
    /// eight an instruction pair with VPCLMULQDQ; it was eight table lookups an element), on
    /// the elements' words in place.
    fn fold_into(lo: &mut [Self], hi: &[Self], t: Self) {
        let n = lo.len().min(hi.len());
        musket_ring::gf64_fold_into(
            musket_ring::gf64_words_mut(&mut lo[..n]),
            musket_ring::gf64_words(&hi[..n]),
            t.0,
        );
    }

    /// As [`Ext::fold_into`] at `hi = acc + v`, a chunk at a time.
    fn add_times_into(acc: &mut [Self], v: &[Self], t: Self) {
        const STEP: usize = 256;
        let n = acc.len().min(v.len());
        let mut hi = [0u64; STEP];
        for (acc, v) in acc[..n].chunks_mut(STEP).zip(v[..n].chunks(STEP)) {
            for ((h, a), x) in hi.iter_mut().zip(acc.iter()).zip(v) {
                *h = a.0 ^ x.0;
            }
            musket_ring::gf64_fold_into(musket_ring::gf64_words_mut(acc), &hi[..v.len()], t.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` is irreducible over F_2 (Rabin's test for degree 64 = 2^6): x^(2^64) = x mod f,
    /// and gcd(x^(2^32) - x, f) = 1.
    #[test]
    fn the_modulus_is_irreducible() {
        let x = Gf64(2);
        let mut p = x;
        let mut at32 = Gf64(0);
        for i in 1..=64 {
            p = p.mul(p);
            if i == 32 {
                at32 = p;
            }
        }
        assert_eq!(p, x);
        // gcd over F_2[x] of (x^(2^32) + x) and f, with f as a 65-bit polynomial.
        let (mut a, mut b) = ((1u128 << 64) | 0b11011, (at32.0 ^ 2) as u128);
        while b != 0 {
            while a != 0 && 127 - a.leading_zeros() >= 127 - b.leading_zeros() {
                a ^= b << ((127 - a.leading_zeros()) - (127 - b.leading_zeros()));
            }
            std::mem::swap(&mut a, &mut b);
        }
        assert_eq!(a, 1, "gcd must be 1");
    }

    fn naive_gf(a: u64, b: u64) -> u64 {
        let mut acc = 0u128;
        for i in 0..64 {
            if (b >> i) & 1 == 1 {
                acc ^= (a as u128) << i;
            }
        }
        for i in (64..128).rev() {
            if (acc >> i) & 1 == 1 {
                acc ^= ((1u128 << 64) | 0b11011) << (i - 64);
            }
        }
        acc as u64
    }

    #[test]
    fn gf_multiplication_matches_the_definition() {
        let mut prg = Prg::from_seed([7; 16]);
        for _ in 0..200 {
            let (a, b) = (prg.words(1)[0], prg.words(1)[0]);
            assert_eq!(Gf64(a).mul(Gf64(b)).0, naive_gf(a, b));
        }
        assert_eq!(Gf64(u64::MAX).mul(Gf64(u64::MAX)).0, naive_gf(u64::MAX, u64::MAX));
    }

    #[test]
    fn galois_ring_laws_hold() {
        let mut prg = Prg::from_seed([9; 16]);
        for _ in 0..20 {
            let (a, b, c) = (Gr64::random(&mut prg), Gr64::random(&mut prg), Gr64::random(&mut prg));
            assert_eq!(a.mul(b), b.mul(a));
            assert_eq!(a.mul(b).mul(c), a.mul(b.mul(c)));
            assert_eq!(a.mul(b.add(c)), a.mul(b).add(a.mul(c)));
            assert_eq!(a.mul(Gr64::one()), a);
            assert_eq!(a.mul_base(5), a.mul(Gr64::from_base(5)));
        }
        // Modulo 2 the ring is GF(2^64): the low bits of the coefficients multiply as there.
        let (a, b) = (Gr64::challenge(&mut prg), Gr64::challenge(&mut prg));
        let bits = |g: Gr64| g.0.iter().enumerate().fold(0u64, |acc, (i, c)| acc | ((c & 1) << i));
        assert_eq!(bits(a.mul(b)), Gf64(bits(a)).mul(Gf64(bits(b))).0);
    }

    #[test]
    fn batch_operations_match_elementwise_ones() {
        let mut prg = Prg::from_seed([5; 16]);
        for n in [3usize, 40, 129] {
            let a: Vec<Gr64> = (0..n).map(|_| Gr64::random(&mut prg)).collect();
            let b: Vec<Gr64> = (0..n).map(|_| Gr64::random(&mut prg)).collect();
            let base: Vec<Gr64> = (0..n).map(|_| Gr64::from_base(prg.words(1)[0])).collect();
            let naive =
                |x: &[Gr64], y: &[Gr64]| x.iter().zip(y).fold(Gr64::zero(), |acc, (p, q)| acc.add(p.mul(*q)));
            assert_eq!(Gr64::dot(&a, &b), naive(&a, &b));
            assert_eq!(Gr64::dot(&a, &base), naive(&a, &base));
            // Sums into a shorter output, from longer operands.
            let mut sum = vec![Gr64::zero(); n - 1];
            Gr64::add_slices(&mut sum, &a, &b);
            assert_eq!(sum, a.iter().zip(&b).take(n - 1).map(|(x, y)| x.add(*y)).collect::<Vec<_>>());
            // A challenge (0/1 coefficients: shifted additions) and any element (the matrix).
            for t in [Gr64::challenge(&mut prg), Gr64::random(&mut prg)] {
                for hi in [&b, &base] {
                    let mut lo = a.clone();
                    Gr64::fold_into(&mut lo, hi, t);
                    let want: Vec<Gr64> =
                        a.iter().zip(hi.iter()).map(|(l, h)| l.add(t.mul(h.sub(*l)))).collect();
                    assert_eq!(lo, want);
                    let mut acc = a.clone();
                    Gr64::add_times_into(&mut acc, hi, t);
                    let want: Vec<Gr64> = a.iter().zip(hi.iter()).map(|(l, h)| l.add(t.mul(*h))).collect();
                    assert_eq!(acc, want);
                }
            }
        }
    }

    /// An element slice's words are its coefficients in place, element after element, and
    /// writing them writes the elements.
    #[test]
    fn words_are_the_coefficients_in_place() {
        let mut prg = Prg::from_seed([9; 16]);
        let mut v: Vec<Gr64> = (0..3).map(|_| Gr64::random(&mut prg)).collect();
        let expected: Vec<u64> = v.iter().flat_map(|e| e.0).collect();
        assert_eq!(gr64_words(&v), &expected[..]);
        assert!(gr64_words(&[]).is_empty());
        gr64_words_mut(&mut v)[EXT_DEGREE + 5] = 42;
        assert_eq!(v[1].0[5], 42);
        assert_eq!(v[0].0, expected[..EXT_DEGREE]);
    }

    /// A level's three inner products, chunk by chunk, equal their definition: lengths across
    /// chunk edges, the second halves shorter (padding), base-ring `b0` (the other path).
    #[test]
    fn level_sums_match_their_definition() {
        let mut prg = Prg::from_seed([6; 16]);
        let naive =
            |x: &[Gr64], y: &[Gr64]| x.iter().zip(y).fold(Gr64::zero(), |acc, (p, q)| acc.add(p.mul(*q)));
        for (n, n1) in [(3usize, 3usize), (20, 7), (32, 32), (33, 1), (100, 64), (129, 0)] {
            let v = |len: usize, prg: &mut Prg| (0..len).map(|_| Gr64::random(prg)).collect::<Vec<_>>();
            let (a0, a1, b0, b1) = (v(n, &mut prg), v(n1, &mut prg), v(n, &mut prg), v(n1, &mut prg));
            let base: Vec<Gr64> = (0..n).map(|_| Gr64::from_base(prg.words(1)[0])).collect();
            for b0 in [&b0, &base] {
                let diff = |x: &[Gr64], y: &[Gr64]| -> Vec<Gr64> {
                    (0..n).map(|i| y.get(i).copied().unwrap_or_else(Gr64::zero).sub(x[i])).collect()
                };
                let want = [naive(&a0, b0), naive(&a1, &b1), naive(&diff(&a0, &a1), &diff(b0, &b1))];
                assert_eq!(Gr64::level_sums(&a0, &a1, b0, &b1), want, "{n} and {n1} elements");
            }
        }
    }

    #[test]
    fn times_x_pow_is_the_product_by_x_pow() {
        let mut prg = Prg::from_seed([12; 16]);
        let v = Gr64(prg.words(EXT_DEGREE).try_into().unwrap());
        for k in 0..EXT_DEGREE {
            let mut x_k = [0u64; EXT_DEGREE];
            x_k[k] = 1;
            // x^0 = 1 is a base element: mul takes its scalar path; every other k the full product.
            assert_eq!(v.times_x_pow(k), v.mul(Gr64(x_k)), "x^{k}");
        }
    }

    #[test]
    fn binary_field_batch_operations_match_elementwise_ones() {
        let mut prg = Prg::from_seed([6; 16]);
        let a: Vec<Gf64> = (0..777).map(|_| Gf64::random(&mut prg)).collect();
        let b: Vec<Gf64> = (0..777).map(|_| Gf64::random(&mut prg)).collect();
        let bits: Vec<Gf64> = (0..777).map(|_| Gf64::from_base(prg.words(1)[0])).collect();
        for other in [&b, &bits] {
            let naive = a.iter().zip(other.iter()).fold(Gf64::zero(), |acc, (p, q)| acc.add(p.mul(*q)));
            assert_eq!(Gf64::dot(&a, other), naive);
            let t = Gf64::challenge(&mut prg);
            let mut lo = a.clone();
            Gf64::fold_into(&mut lo, other, t);
            let want: Vec<Gf64> = a.iter().zip(other.iter()).map(|(l, h)| l.add(t.mul(h.sub(*l)))).collect();
            assert_eq!(lo, want);
            let mut acc = a.clone();
            Gf64::add_times_into(&mut acc, other, t);
            let want: Vec<Gf64> = a.iter().zip(other.iter()).map(|(l, h)| l.add(t.mul(*h))).collect();
            assert_eq!(acc, want);
        }
    }

    #[test]
    fn units_have_inverses_and_others_none() {
        let mut prg = Prg::from_seed([21; 16]);
        for _ in 0..20 {
            let (a, b) = (Gr64::challenge(&mut prg), Gf64::challenge(&mut prg));
            assert_eq!(a.mul(a.inverse().expect("a challenge is a unit")), Gr64::one());
            assert_eq!(b.mul(b.inverse().expect("nonzero")), Gf64::one());
            // Any element odd modulo 2 somewhere is a unit too; an even one is not.
            let mut c = Gr64::random(&mut prg);
            c.0[5] |= 1;
            assert_eq!(c.inverse().expect("a unit").mul(c), Gr64::one());
            let even = Gr64(std::array::from_fn(|i| c.0[i] << 1));
            assert_eq!(even.inverse(), None);
        }
        assert_eq!(Gf64(0).inverse(), None);
        assert_eq!(Gr64::one().inverse(), Some(Gr64::one()));
    }

    #[test]
    fn challenges_differ_by_units() {
        // A difference of two exceptional points is nonzero modulo 2, so an element that
        // kills it must be zero: 2^63 * (a - b) != 0.
        let mut prg = Prg::from_seed([3; 16]);
        for _ in 0..50 {
            let (a, b) = (Gr64::challenge(&mut prg), Gr64::challenge(&mut prg));
            if a != b {
                assert_ne!(a.sub(b).mul_base(1 << 63), Gr64::zero());
            }
        }
    }
}
