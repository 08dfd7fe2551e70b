//! Carry-less kernels and GF(2^64) lane arithmetic on wide vectors: VPCLMULQDQ with AVX-512
//! F (eight words a vector) or with AVX2 (four words: Zen 3, Alder Lake and other CPUs
//! without AVX-512). Each kernel is written once, generic over [`Lanes`], in the manner of
//! memchr's generic vector searchers: the generic body is `#[inline(always)]` and each entry
//! point a `#[target_feature]` function that instantiates it for one width, so the intrinsics
//! are compiled with that entry's features. An entry is only reached after run-time
//! detection ([`Width::is_supported`]; the lane weights, which need no carry-less product,
//! detect AVX-512 F or AVX2 alone), which is what makes calling it sound. Leftover words go
//! to the 128-bit PCLMULQDQ kernels.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// A width of carry-less vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Width {
    /// 256-bit vectors: AVX2 with VPCLMULQDQ.
    W256,
    /// 512-bit vectors: AVX-512 F with VPCLMULQDQ.
    W512,
}

impl Width {
    /// Both widths, narrowest first.
    pub(super) const ALL: [Width; 2] = [Width::W256, Width::W512];

    /// Whether this CPU runs this width's kernels (and the 128-bit ones for leftover words).
    pub(super) fn is_supported(self) -> bool {
        let clmul = is_x86_feature_detected!("pclmulqdq") && is_x86_feature_detected!("vpclmulqdq");
        clmul
            && match self {
                Width::W256 => is_x86_feature_detected!("avx2"),
                Width::W512 => is_x86_feature_detected!("avx512f"),
            }
    }

    /// The widest this CPU runs, if any.
    pub(super) fn best() -> Option<Width> {
        Width::ALL.into_iter().rev().find(|w| w.is_supported())
    }
}

/// A vector of 64-bit words in 128-bit lanes. Every method is only sound on a CPU with the
/// implementing width's features, inlined into a function compiled with them.
trait Lanes: Copy {
    /// Words a vector holds.
    const WORDS: usize;
    unsafe fn load(p: *const u64) -> Self;
    unsafe fn store(self, p: *mut u64);
    unsafe fn splat(w: u64) -> Self;
    unsafe fn zero() -> Self;
    unsafe fn xor(self, o: Self) -> Self;
    unsafe fn and(self, o: Self) -> Self;
    /// Per 128-bit lane, the carry-less product of a word of `self` and one of `o`, chosen as
    /// VPCLMULQDQ's immediate chooses (bit 0: `self`'s high word, bit 4: `o`'s).
    unsafe fn clmul<const IMM: i32>(self, o: Self) -> Self;
    /// Each lane's low words of `self` and `o`, in that order.
    unsafe fn unpack_lo(self, o: Self) -> Self;
    /// Each lane's high words of `self` and `o`, in that order.
    unsafe fn unpack_hi(self, o: Self) -> Self;
    /// Each word shifted left by `n` bits.
    unsafe fn shl(self, n: i32) -> Self;
    /// Each word shifted right by `n` bits.
    unsafe fn shr(self, n: i32) -> Self;
    /// Word by word, `self - o` (wrapping).
    unsafe fn sub_words(self, o: Self) -> Self;
    /// Each word shifted left by its own count (a count of 64 or more gives zero).
    unsafe fn shlv(self, counts: Self) -> Self;
    /// Each word shifted right by its own count (a count of 64 or more gives zero).
    unsafe fn shrv(self, counts: Self) -> Self;

    /// The XOR of the lanes, as a `u128` (low word first).
    #[inline(always)]
    unsafe fn xor_lanes(self) -> u128 {
        let mut words = [0u64; 8];
        self.store(words.as_mut_ptr());
        let (mut lo, mut hi) = (0, 0);
        for pair in words[..Self::WORDS].chunks_exact(2) {
            lo ^= pair[0];
            hi ^= pair[1];
        }
        ((hi as u128) << 64) | lo as u128
    }

    /// The XOR of the products of the even words and of the odd words, lane by lane.
    #[inline(always)]
    unsafe fn clmul_pairs(self, o: Self) -> Self {
        self.clmul::<0x00>(o).xor(self.clmul::<0x11>(o))
    }
}

impl Lanes for __m256i {
    const WORDS: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const u64) -> Self {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut u64) {
        _mm256_storeu_si256(p.cast(), self)
    }
    #[inline(always)]
    unsafe fn splat(w: u64) -> Self {
        _mm256_set1_epi64x(w as i64)
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn xor(self, o: Self) -> Self {
        _mm256_xor_si256(self, o)
    }
    #[inline(always)]
    unsafe fn and(self, o: Self) -> Self {
        _mm256_and_si256(self, o)
    }
    #[inline(always)]
    unsafe fn clmul<const IMM: i32>(self, o: Self) -> Self {
        _mm256_clmulepi64_epi128::<IMM>(self, o)
    }
    #[inline(always)]
    unsafe fn unpack_lo(self, o: Self) -> Self {
        _mm256_unpacklo_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn unpack_hi(self, o: Self) -> Self {
        _mm256_unpackhi_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn shl(self, n: i32) -> Self {
        _mm256_sll_epi64(self, _mm_cvtsi32_si128(n))
    }
    #[inline(always)]
    unsafe fn shr(self, n: i32) -> Self {
        _mm256_srl_epi64(self, _mm_cvtsi32_si128(n))
    }
    #[inline(always)]
    unsafe fn sub_words(self, o: Self) -> Self {
        _mm256_sub_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn shlv(self, counts: Self) -> Self {
        _mm256_sllv_epi64(self, counts)
    }
    #[inline(always)]
    unsafe fn shrv(self, counts: Self) -> Self {
        _mm256_srlv_epi64(self, counts)
    }
}

impl Lanes for __m512i {
    const WORDS: usize = 8;
    #[inline(always)]
    unsafe fn load(p: *const u64) -> Self {
        _mm512_loadu_si512(p.cast())
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut u64) {
        _mm512_storeu_si512(p.cast(), self)
    }
    #[inline(always)]
    unsafe fn splat(w: u64) -> Self {
        _mm512_set1_epi64(w as i64)
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn xor(self, o: Self) -> Self {
        _mm512_xor_si512(self, o)
    }
    #[inline(always)]
    unsafe fn and(self, o: Self) -> Self {
        _mm512_and_si512(self, o)
    }
    #[inline(always)]
    unsafe fn clmul<const IMM: i32>(self, o: Self) -> Self {
        _mm512_clmulepi64_epi128::<IMM>(self, o)
    }
    #[inline(always)]
    unsafe fn unpack_lo(self, o: Self) -> Self {
        _mm512_unpacklo_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn unpack_hi(self, o: Self) -> Self {
        _mm512_unpackhi_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn shl(self, n: i32) -> Self {
        _mm512_sll_epi64(self, _mm_cvtsi32_si128(n))
    }
    #[inline(always)]
    unsafe fn shr(self, n: i32) -> Self {
        _mm512_srl_epi64(self, _mm_cvtsi32_si128(n))
    }
    #[inline(always)]
    unsafe fn sub_words(self, o: Self) -> Self {
        _mm512_sub_epi64(self, o)
    }
    #[inline(always)]
    unsafe fn shlv(self, counts: Self) -> Self {
        _mm512_sllv_epi64(self, counts)
    }
    #[inline(always)]
    unsafe fn shrv(self, counts: Self) -> Self {
        _mm512_srlv_epi64(self, counts)
    }
}

/// `clmul_dot_and` a vector at a time: two carry-less products give the products of the even
/// and the odd words, XORed into one accumulator.
#[inline(always)]
unsafe fn dot_and<V: Lanes>(w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    let n = w.len().min(x.len()).min(y.len());
    let full = n - n % V::WORDS;
    let mut acc = V::zero();
    for i in (0..full).step_by(V::WORDS) {
        // i + WORDS <= full <= the length of every slice.
        let a = V::load(x.as_ptr().add(i)).and(V::load(y.as_ptr().add(i)));
        acc = acc.xor(V::load(w.as_ptr().add(i)).clmul_pairs(a));
    }
    acc.xor_lanes() ^ super::x86::clmul_dot_and_pclmul(&w[full..n], &x[full..n], &y[full..n])
}

/// `clmul_dot` a vector at a time, as [`dot_and`].
#[inline(always)]
unsafe fn dot<V: Lanes>(a: &[u64], b: &[u64]) -> u128 {
    let n = a.len().min(b.len());
    let full = n - n % V::WORDS;
    let mut acc = V::zero();
    for i in (0..full).step_by(V::WORDS) {
        // i + WORDS <= full <= the length of both slices.
        acc = acc.xor(V::load(a.as_ptr().add(i)).clmul_pairs(V::load(b.as_ptr().add(i))));
    }
    acc.xor_lanes() ^ super::x86::clmul_dot_pclmul(&a[full..n], &b[full..n])
}

/// `lo_i ^= t * (lo_i ^ hi_i)` in GF(2^64) modulo `x^64 + x^4 + x^3 + x + 1`, a vector at a
/// time: the products of even and odd words, their low and high halves regrouped in order,
/// and the high half folded back by shifts (once more for the bits it pushes past `x^63`).
/// Returns the elements done (a multiple of the vector's words).
#[inline(always)]
unsafe fn fold<V: Lanes>(lo: &mut [u64], hi: &[u64], t: u64) -> usize {
    let n = lo.len().min(hi.len());
    let full = n - n % V::WORDS;
    let tv = V::splat(t);
    for i in (0..full).step_by(V::WORDS) {
        // i + WORDS <= full <= the length of both slices.
        let l = V::load(lo.as_ptr().add(i));
        let d = l.xor(V::load(hi.as_ptr().add(i)));
        let (even, odd) = (d.clmul::<0x00>(tv), d.clmul::<0x01>(tv));
        let r = reduce(even.unpack_lo(odd), even.unpack_hi(odd));
        l.xor(r).store(lo.as_mut_ptr().add(i));
    }
    full
}

/// Products' low and high words reduced modulo `x^64 + x^4 + x^3 + x + 1`: the high word
/// folded back by shifts, once more for the bits it pushes past `x^63`.
#[inline(always)]
unsafe fn reduce<V: Lanes>(low: V, high: V) -> V {
    let times_x4_x3_x_1 = |v: V| v.xor(v.shl(1)).xor(v.shl(3)).xor(v.shl(4));
    let spill = high.shr(63).xor(high.shr(61)).xor(high.shr(60));
    low.xor(times_x4_x3_x_1(high)).xor(times_x4_x3_x_1(spill))
}

/// `v[b] = v[b] X^b` in GF(2^64) for 64 lanes, a vector at a time: variable shifts give the
/// low and high words of the product, then [`reduce`].
#[inline(always)]
unsafe fn times_x_lanes<V: Lanes>(v: &mut [u64; 64]) {
    let mut counts = [0u64; 8];
    for i in (0..64).step_by(V::WORDS) {
        for (j, c) in counts[..V::WORDS].iter_mut().enumerate() {
            *c = (i + j) as u64;
        }
        let c = V::load(counts.as_ptr());
        let x = V::load(v.as_ptr().add(i));
        // A count of 64 (lane 0) gives zero, as the high word of x X^0 is.
        let high = x.shrv(V::splat(64).sub_words(c));
        reduce(x.shlv(c), high).store(v.as_mut_ptr().add(i));
    }
}

/// `v[b] = v[b] X^b` for the 64 lanes of a block: AVX-512's or AVX2's shifts (no carry-less
/// product needed) where the CPU has them; returns false where it has neither.
pub(super) fn gf64_times_x_lanes_wide(v: &mut [u64; 64]) -> bool {
    #[target_feature(enable = "avx512f")]
    unsafe fn wide(v: &mut [u64; 64]) {
        times_x_lanes::<__m512i>(v)
    }
    #[target_feature(enable = "avx2")]
    unsafe fn narrow(v: &mut [u64; 64]) {
        times_x_lanes::<__m256i>(v)
    }
    // SAFETY: each body runs only where its feature was detected; the loads and stores stay
    // within the 64 lanes (WORDS divides 64).
    unsafe {
        if is_x86_feature_detected!("avx512f") {
            wide(v);
        } else if is_x86_feature_detected!("avx2") {
            narrow(v);
        } else {
            return false;
        }
    }
    true
}

/// A point that is a corner: `(point, corner)`.
type CornerPoint = (usize, usize);
/// A point that is the XOR of two smaller ones: `(point, a, b)`.
type SumPoint = (usize, usize, usize);

/// How each point of `{0, 1, inf}^digits` (base 3, digit 0 most significant) is formed, in
/// increasing order: the corners `(e, u)` (point `e` is corner `u`), and the sums `(e, a, b)`
/// (point `e` is the XOR of points `a` and `b`: its last `inf` digit set to 0 and to 1, both
/// smaller than `e`, so formed before it).
fn point_recipes(digits: u32) -> (Vec<CornerPoint>, Vec<SumPoint>) {
    let points = 3usize.pow(digits);
    let mut corner_points = Vec::with_capacity(1 << digits);
    let mut sums = Vec::with_capacity(points);
    for e in 0..points {
        let (mut rest, mut u, mut last_inf) = (e, 0usize, None);
        for k in 0..digits {
            let digit = rest % 3;
            rest /= 3;
            if digit == 2 && last_inf.is_none() {
                last_inf = Some(3usize.pow(k));
            }
            u |= (digit & 1) << k;
        }
        match last_inf {
            None => corner_points.push((e, u)),
            Some(step) => sums.push((e, e - 2 * step, e - step)),
        }
    }
    (corner_points, sums)
}

/// The 9 points of two digits from their 4 corners (corner bit 1 on the first digit): the
/// last digit's values at 0, 1 and their XOR for each value of the first, then the first's.
#[inline(always)]
unsafe fn extend_two_digits<V: Lanes>(v: [V; 4]) -> [V; 9] {
    let one = |a: V, b: V| [a, b, a.xor(b)];
    let (lo, hi) = (one(v[0], v[1]), one(v[2], v[3]));
    std::array::from_fn(|e| {
        let (d, s) = (e / 3, e % 3);
        one(lo[s], hi[s])[d]
    })
}

/// `clmul_dot_and_extended` a vector at a time for one or two digits (`C` corners, `P`
/// points): every accumulator stays in a register across the words, as the plain weighted
/// sum's does (through tables in memory, one digit took a third longer than the two sums of
/// the member pairs it replaces). Returns the words done (a multiple of the vector's).
#[inline(always)]
unsafe fn extended_in_registers<V: Lanes, const C: usize, const P: usize, const SKIP: bool>(
    w: &[u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
    out: &mut [u128],
) -> usize {
    let full = w.len() - w.len() % V::WORDS;
    let mut acc = [V::zero(); P];
    for i in (0..full).step_by(V::WORDS) {
        // i + WORDS <= full <= w.len(), and every row holds at least `w.len()` words (checked
        // by the caller).
        let x: [V; C] = std::array::from_fn(|u| V::load(xs[u].as_ptr().add(i)));
        let y: [V; C] = std::array::from_fn(|u| V::load(ys[u].as_ptr().add(i)));
        let wv = V::load(w.as_ptr().add(i));
        let extend = |v: [V; C]| -> [V; P] {
            if C == 2 {
                let one = [v[0], v[1], v[0].xor(v[1])];
                std::array::from_fn(|e| one[e])
            } else {
                let two = extend_two_digits(std::array::from_fn(|c| v[c]));
                std::array::from_fn(|e| two[e])
            }
        };
        let (xe, ye) = (extend(x), extend(y));
        for e in 0..P {
            // The last digit at 1, where left out (its sum stays zero).
            if SKIP && e % 3 == 1 {
                continue;
            }
            acc[e] = acc[e].xor(wv.clmul_pairs(xe[e].and(ye[e])));
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o ^= a.xor_lanes();
    }
    full
}

/// Vectors a block of [`extended`] takes: its tables of the digits before the last two hold
/// `4 * 3^(digits - 2) * BLOCK` vectors a side (166 KiB at six digits and 512 bits).
const EXTENDED_BLOCK: usize = 8;

/// `clmul_dot_and_extended` a vector at a time. One or two digits keep every accumulator in a
/// register across the words ([`extended_in_registers`]); from three on, the words go in
/// blocks of [`EXTENDED_BLOCK`] vectors: the digits but the last two are extended into
/// tables of the last two digits' 4 corners (each point in increasing order a corner loaded
/// or the XOR of two smaller points, [`point_recipes`]), then per point of those digits the
/// last two digits' 9 points are formed in registers and summed over the block in 9
/// accumulators kept in registers. (With the last three digits' 27 points formed per eight
/// words and each sum folded to one lane and added in memory every time, it took 1.3-1.5
/// times as long: `cargo bench -p musket-ring --bench kernels -- binary_level_sums`, three to
/// six digits.) Returns the words done (a multiple of the vector's).
#[inline(always)]
unsafe fn extended<V: Lanes, const SKIP: bool>(
    w: &[u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
    out: &mut [u128],
) -> usize {
    const B: usize = EXTENDED_BLOCK;
    let corners = xs.len();
    let digits = corners.trailing_zeros();
    match digits {
        1 => return extended_in_registers::<V, 2, 3, SKIP>(w, xs, ys, out),
        2 => return extended_in_registers::<V, 4, 9, SKIP>(w, xs, ys, out),
        // No digit: the one point is a plain weighted sum, left to the portable loop (the
        // proofs' levels always have a digit).
        0 => return 0,
        _ => {}
    }
    let high_points = 3usize.pow(digits - 2);
    let (corner_points, sums) = point_recipes(digits - 2);
    let vectors = w.len() / V::WORDS;
    let zero = V::zero();
    // Table entry (point, low corner, vector of the block) at (4 point + corner) B + vector.
    let (mut xt, mut yt) = (vec![zero; 4 * B * high_points], vec![zero; 4 * B * high_points]);
    let mut acc = vec![zero; out.len()];
    for first in (0..vectors).step_by(B) {
        let count = B.min(vectors - first);
        for &(e, u) in &corner_points {
            for c in 0..4 {
                let (xr, yr) = (xs[4 * u + c], ys[4 * u + c]);
                for k in 0..count {
                    // at + WORDS <= WORDS * vectors <= w.len(), and every row holds at least
                    // `w.len()` words (checked by the caller).
                    let at = V::WORDS * (first + k);
                    xt[(4 * e + c) * B + k] = V::load(xr.as_ptr().add(at));
                    yt[(4 * e + c) * B + k] = V::load(yr.as_ptr().add(at));
                }
            }
        }
        for &(e, a, b) in &sums {
            let (to, from_a, from_b) = (4 * B * e, 4 * B * a, 4 * B * b);
            for t in [&mut xt, &mut yt] {
                let (head, tail) = t.split_at_mut(to);
                for (o, (u, v)) in
                    tail[..4 * B].iter_mut().zip(head[from_a..][..4 * B].iter().zip(&head[from_b..]))
                {
                    *o = u.xor(*v);
                }
            }
        }
        for (h, acc) in acc.chunks_exact_mut(9).enumerate() {
            let mut sums9 = [zero; 9];
            let (xh, yh) = (&xt[4 * B * h..][..4 * B], &yt[4 * B * h..][..4 * B]);
            for k in 0..count {
                // WORDS (first + k) + WORDS <= w.len() (above).
                let wv = V::load(w.as_ptr().add(V::WORDS * (first + k)));
                let xc: [V; 4] = std::array::from_fn(|c| xh[c * B + k]);
                let yc: [V; 4] = std::array::from_fn(|c| yh[c * B + k]);
                let (xe, ye) = (extend_two_digits(xc), extend_two_digits(yc));
                for (e, (s, (xv, yv))) in sums9.iter_mut().zip(xe.iter().zip(&ye)).enumerate() {
                    // The last digit at 1, where left out (its sum stays zero).
                    if SKIP && e % 3 == 1 {
                        continue;
                    }
                    *s = s.xor(wv.clmul_pairs(xv.and(*yv)));
                }
            }
            for (a, s) in acc.iter_mut().zip(sums9) {
                *a = a.xor(s);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o ^= a.xor_lanes();
    }
    V::WORDS * vectors
}

/// One kernel's entry points, one per width: each a `#[target_feature]` function that
/// instantiates the generic body for its vector type.
macro_rules! entry_points {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:ident$(::<$($extra:tt),*>)?;)*) => {
        $(
            fn $name(width: Width, $($arg: $ty),*) -> $ret {
                assert!(width.is_supported(), "{:?} carry-less kernel on a CPU without it", width);
                #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq")]
                unsafe fn narrow($($arg: $ty),*) -> $ret {
                    $body::<__m256i $($(, $extra)*)?>($($arg),*)
                }
                #[target_feature(enable = "avx512f,vpclmulqdq,pclmulqdq")]
                unsafe fn wide($($arg: $ty),*) -> $ret {
                    $body::<__m512i $($(, $extra)*)?>($($arg),*)
                }
                // SAFETY: the width's features were detected just above; the bodies bound
                // their loads by the slices' lengths (and the callers check the rows').
                unsafe {
                    match width {
                        Width::W256 => narrow($($arg),*),
                        Width::W512 => wide($($arg),*),
                    }
                }
            }
        )*
    };
}

entry_points! {
    fn dot_and_entry(w: &[u64], x: &[u64], y: &[u64]) -> u128 = dot_and;
    fn dot_entry(a: &[u64], b: &[u64]) -> u128 = dot;
    fn fold_entry(lo: &mut [u64], hi: &[u64], t: u64) -> usize = fold;
    fn extended_skipping(w: &[u64], xs: &[&[u64]], ys: &[&[u64]], out: &mut [u128]) -> usize = extended::<true>;
    fn extended_all(w: &[u64], xs: &[&[u64]], ys: &[&[u64]], out: &mut [u128]) -> usize = extended::<false>;
}

/// XOR of the carry-less products `w_i * (x_i AND y_i)`, `width`'s vectors at a time.
pub(super) fn clmul_dot_and_wide(width: Width, w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    dot_and_entry(width, w, x, y)
}

/// XOR of the carry-less products `a_i * b_i`, `width`'s vectors at a time.
pub(super) fn clmul_dot_wide(width: Width, a: &[u64], b: &[u64]) -> u128 {
    dot_entry(width, a, b)
}

/// `lo_i ^= t * (lo_i ^ hi_i)` in GF(2^64), `width`'s vectors at a time; returns how many
/// leading elements it folded (a multiple of the vector's words), the rest left to the caller.
pub(super) fn gf64_fold_wide(width: Width, lo: &mut [u64], hi: &[u64], t: u64) -> usize {
    fold_entry(width, lo, hi, t)
}

/// `clmul_dot_and_extended`'s sums, `width`'s vectors at a time; returns the words done (a
/// multiple of the vector's words), the rest left to the caller.
pub(super) fn clmul_dot_and_extended_wide(
    width: Width,
    w: &[u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
    skip_last_one: bool,
    acc: &mut [u128],
) -> usize {
    // The bounds the unchecked loads rely on (the caller checks them too).
    let corners = xs.len();
    assert!(corners.is_power_of_two() && ys.len() == corners, "clmul_dot_and_extended: rows");
    assert_eq!(acc.len(), 3usize.pow(corners.trailing_zeros()), "clmul_dot_and_extended: sums");
    assert!(xs.iter().chain(ys).all(|r| r.len() >= w.len()), "clmul_dot_and_extended: row lengths");
    if skip_last_one {
        extended_skipping(width, w, xs, ys, acc)
    } else {
        extended_all(width, w, xs, ys, acc)
    }
}
