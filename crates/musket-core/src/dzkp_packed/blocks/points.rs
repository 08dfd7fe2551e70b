//! A chunk of ring groups at the extended points: where its corner rows lie
//! ([`CornerSpan`]) and their rows at every point of `{0, 1, inf}^k` ([`InfRows`]), for the
//! packed levels of [`super::PackedBlocks`].

use crate::ext::EXT_DEGREE;

/// Where a chunk's corner rows lie: groups `from..to` of the low half, `g` groups a member.
pub(super) struct CornerSpan {
    pub(super) corners: usize,
    pub(super) g: usize,
    pub(super) half: usize,
    pub(super) from: usize,
    pub(super) to: usize,
}

impl CornerSpan {
    /// The corners' rows of `v` (corner `u = 2 s + X`: member `s`'s groups in the low, `X =
    /// 0`, or the high half), `None` where wholly past `end` (zero).
    pub(super) fn rows<'a>(&self, v: &'a [u64], end: usize) -> Vec<Option<&'a [u64]>> {
        let d = EXT_DEGREE;
        (0..self.corners)
            .map(|u| {
                let first = (u >> 1) * self.g + (u & 1) * self.half + self.from;
                (first < end).then(|| &v[first * d..(first + self.to - self.from) * d])
            })
            .collect()
    }
}

/// Scratch for a chunk's rows at the extended points: per digit, its rows at `inf` (the
/// corners' differences, `2^(k-1)` rows for `k` digits left).
pub(super) struct InfRows {
    x: Vec<Vec<u64>>,
    y: Vec<Vec<u64>>,
}

impl InfRows {
    pub(super) fn new(digits: usize, row: usize) -> Self {
        let bufs = || (0..digits).map(|k| vec![0u64; (1 << (digits - k - 1)) * row]).collect();
        Self { x: bufs(), y: bufs() }
    }

    /// `f(points, x_e, y_e)` for every extended point `e` of the corners `xs`, `ys` (`2^k`
    /// rows of one length each, corner `u`'s most significant bit the first digit) where
    /// both rows are nonzero; `points` are `e` and the points whose products equal `e`'s
    /// ([`Walk::points`]). With `skip_last_one`, no point whose last digit is 1 (a prover
    /// that knows the claim derives those sums, [`crate::dzkp_packed::Packed::level_given`]).
    pub(super) fn visit<F: FnMut(&[usize], &[u64], &[u64])>(
        &mut self,
        xs: &[Option<&[u64]>],
        ys: &[Option<&[u64]>],
        skip_last_one: bool,
        f: &mut F,
    ) {
        let len = xs.iter().chain(ys).flatten().map(|r| r.len()).next().unwrap_or(0);
        let mut walk = Walk { len, skip_last_one, f };
        walk.points(xs, ys, &[0], &mut self.x, &mut self.y);
    }
}

/// The recursion of [`InfRows::visit`]: its row length, whether to skip points whose last
/// digit is 1, and what to call at each point.
struct Walk<'f, F> {
    len: usize,
    skip_last_one: bool,
    f: &'f mut F,
}

impl<F: FnMut(&[usize], &[u64], &[u64])> Walk<'_, F> {
    /// The first digit at 0 (the low corners), 1 (the high ones) and `inf` (their
    /// differences, written to the first scratch rows), then the rest, for every prefix in
    /// `points`. Where both operands' high corners are all zero (the padding, past the live
    /// blocks), the rows at `inf` are the low ones negated, so their products are the low
    /// ones' and are computed once, for both digits (a batch padded by two fifths had its
    /// first level cost more than the member pairs did). (Corners are zero only past the live
    /// blocks, whose indices grow with the corner's, so low corners are never zero where the
    /// high ones are not.)
    fn points(
        &mut self,
        xs: &[Option<&[u64]>],
        ys: &[Option<&[u64]>],
        points: &[usize],
        bx: &mut [Vec<u64>],
        by: &mut [Vec<u64>],
    ) {
        if xs.len() == 1 {
            if let (Some(x), Some(y)) = (xs[0], ys[0]) {
                (self.f)(points, x, y);
            }
            return;
        }
        let h = xs.len() / 2;
        // The last digit's 1 left out where asked.
        let skip_one = self.skip_last_one && h == 1;
        let digit = |ds: &[usize]| -> Vec<usize> {
            points
                .iter()
                .flat_map(|p| ds.iter().filter(|&&d| !(skip_one && d == 1)).map(move |d| 3 * p + d))
                .collect()
        };
        let zero = |rows: &[Option<&[u64]>]| rows.iter().all(Option::is_none);
        let (bx0, bx_rest) = bx.split_first_mut().expect("a scratch row set per digit");
        let (by0, by_rest) = by.split_first_mut().expect("a scratch row set per digit");
        if zero(&xs[h..]) && zero(&ys[h..]) {
            self.points(&xs[..h], &ys[..h], &digit(&[0, 2]), bx_rest, by_rest);
            return;
        }
        self.points(&xs[..h], &ys[..h], &digit(&[0]), bx_rest, by_rest);
        if !skip_one {
            self.points(&xs[h..], &ys[h..], &digit(&[1]), bx_rest, by_rest);
        }
        let dx = differences(&xs[..h], &xs[h..], bx0, self.len);
        let dy = differences(&ys[..h], &ys[h..], by0, self.len);
        self.points(&dx, &dy, &digit(&[2]), bx_rest, by_rest);
    }
}

/// `hi - lo` row by row (`None` for zero), written to `buf` where both are not zero.
fn differences<'b>(
    lo: &[Option<&'b [u64]>],
    hi: &[Option<&'b [u64]>],
    buf: &'b mut [u64],
    len: usize,
) -> Vec<Option<&'b [u64]>> {
    let mut rest = buf;
    let mut out = Vec::with_capacity(lo.len());
    for (l, h) in lo.iter().zip(hi) {
        let (row, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        out.push(match (l, h) {
            (None, None) => None,
            (None, Some(h)) => Some(*h),
            (Some(l), h) => {
                match h {
                    Some(h) => {
                        for ((o, a), b) in row.iter_mut().zip(*h).zip(*l) {
                            *o = a.wrapping_sub(*b);
                        }
                    }
                    None => {
                        for (o, b) in row.iter_mut().zip(*l) {
                            *o = b.wrapping_neg();
                        }
                    }
                }
                Some(&*row)
            }
        });
    }
    out
}
