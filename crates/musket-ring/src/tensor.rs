use crate::Word;
use thiserror::Error;

/// A shape mismatch between tensors, or a shape that does not fit the data.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("shape error: {0}")]
pub struct ShapeError(pub String);

/// A dense row-major tensor over Z_2^64 (`W = u64`, [`RingTensor`]) or Z_2^128 (`W = u128`,
/// [`WideTensor`]): every operation wraps modulo the word's range.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Tensor<W: Word = u64> {
    shape: Vec<usize>,
    data: Vec<W>,
}

/// A tensor over Z_2^64, the ring every back end computes in.
pub type RingTensor = Tensor<u64>;

/// A tensor over Z_2^128: the ring of a MAC'd share (SPDZ2k's Z_2^(64+s), s = 64), which
/// described linear maps ([`Word`]) can act on as they act on [`RingTensor`]s.
pub type WideTensor = Tensor<u128>;

// Tensors may hold secret shares: Debug prints the shape only, so that a `{:?}` in a log or an
// error can never leak values.
impl<W: Word> std::fmt::Debug for Tensor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", W::TENSOR_NAME, self.shape)
    }
}

fn element_count(shape: &[usize]) -> Result<usize, ShapeError> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d).ok_or_else(|| ShapeError(format!("shape {shape:?} overflows usize")))
    })
}

impl<W: Word> Tensor<W> {
    /// Wraps `data` in a tensor of `shape`; fails if the element counts differ.
    pub fn new(shape: Vec<usize>, data: Vec<W>) -> Result<Self, ShapeError> {
        let n = element_count(&shape)?;
        if n != data.len() {
            return Err(ShapeError(format!("shape {shape:?} needs {n} elements, got {}", data.len())));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        let n = element_count(shape).expect("shape overflows usize");
        Self { shape: shape.to_vec(), data: vec![W::ZERO; n] }
    }

    /// A one-dimensional tensor holding `data`.
    pub fn from_vec(data: Vec<W>) -> Self {
        Self { shape: vec![data.len()], data }
    }

    /// A tensor whose every element is `value`.
    pub fn filled(shape: &[usize], value: W) -> Self {
        let n = element_count(shape).expect("shape overflows usize");
        Self { shape: shape.to_vec(), data: vec![value; n] }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[W] {
        &self.data
    }

    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [W] {
        &mut self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_data(self) -> Vec<W> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, ShapeError> {
        Self::new(shape.to_vec(), self.data.clone())
    }

    fn check_same(&self, other: &Self, op: &str) -> Result<(), ShapeError> {
        if self.shape != other.shape {
            return Err(ShapeError(format!("{op}: shapes {:?} and {:?} differ", self.shape, other.shape)));
        }
        Ok(())
    }

    /// Applies `f` to corresponding elements of two tensors of the same shape.
    pub fn zip_with(&self, other: &Self, op: &str, f: impl Fn(W, W) -> W) -> Result<Self, ShapeError> {
        self.check_same(other, op)?;
        let data = self.data.iter().zip(&other.data).map(|(&a, &b)| f(a, b)).collect();
        Ok(Self { shape: self.shape.clone(), data })
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(W) -> W) -> Self {
        Self { shape: self.shape.clone(), data: self.data.iter().map(|&a| f(a)).collect() }
    }

    /// Elementwise wrapping sum.
    pub fn add(&self, other: &Self) -> Result<Self, ShapeError> {
        self.zip_with(other, "add", W::wadd)
    }

    /// Elementwise wrapping difference.
    pub fn sub(&self, other: &Self) -> Result<Self, ShapeError> {
        self.zip_with(other, "sub", W::wsub)
    }

    /// Elementwise wrapping product.
    pub fn mul(&self, other: &Self) -> Result<Self, ShapeError> {
        self.zip_with(other, "mul", W::wmul)
    }

    /// In-place elementwise wrapping sum.
    pub fn add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.check_same(other, "add")?;
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a = a.wadd(b);
        }
        Ok(())
    }

    /// In-place elementwise wrapping difference.
    pub fn sub_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.check_same(other, "sub")?;
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a = a.wsub(b);
        }
        Ok(())
    }

    /// Wrapping negation.
    pub fn neg(&self) -> Self {
        self.map(W::wneg)
    }

    /// Multiplies every element by the ring constant `c` (for a [`WideTensor`], by its lift
    /// [`Word::lift`]).
    pub fn scale(&self, c: u64) -> Self {
        let c = W::lift(c);
        self.map(|a| a.wmul(c))
    }

    /// Sum along `axis`, removing that axis.
    pub fn sum_axis(&self, axis: usize) -> Result<Self, ShapeError> {
        if axis >= self.shape.len() {
            return Err(ShapeError(format!("sum: axis {axis} out of range for {:?}", self.shape)));
        }
        let outer: usize = self.shape[..axis].iter().product();
        let len = self.shape[axis];
        let inner: usize = self.shape[axis + 1..].iter().product();
        let mut out = vec![W::ZERO; outer * inner];
        for o in 0..outer {
            for l in 0..len {
                let src = &self.data[(o * len + l) * inner..][..inner];
                for (d, &s) in out[o * inner..][..inner].iter_mut().zip(src) {
                    *d = d.wadd(s);
                }
            }
        }
        let mut shape = self.shape.clone();
        shape.remove(axis);
        Ok(Self { shape, data: out })
    }

    /// The entries `picks` (in that order, repeats allowed) along `axis`, each with the block
    /// of elements below it: ONNX Gather, a comparison tree's candidates.
    pub fn take_along(&self, axis: usize, picks: &[usize]) -> Result<Self, ShapeError> {
        let shape = &self.shape;
        let Some(&n) = shape.get(axis) else {
            return Err(ShapeError(format!("axis {axis} of {shape:?}")));
        };
        if let Some(&bad) = picks.iter().find(|&&i| i >= n) {
            return Err(ShapeError(format!("entry {bad} of axis {axis} of {shape:?}")));
        }
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        let mut data = Vec::with_capacity(outer * picks.len() * inner);
        // (No elements at all where a block is empty; `chunks_exact` needs a nonzero size.)
        for block in self.data.chunks_exact((n * inner).max(1)).filter(|_| n * inner > 0) {
            if inner == 1 {
                // The last axis: element by element, not slices of one.
                data.extend(picks.iter().map(|&i| block[i]));
            } else {
                for &i in picks {
                    data.extend_from_slice(&block[i * inner..][..inner]);
                }
            }
        }
        let mut out_shape = shape.clone();
        out_shape[axis] = picks.len();
        Ok(Self { shape: out_shape, data })
    }

    /// The concatenation with `other` along `axis` (the shapes equal elsewhere).
    pub fn concat_axis(&self, other: &Self, axis: usize) -> Result<Self, ShapeError> {
        let (sa, sb) = (self.shape(), other.shape());
        if sa.len() != sb.len() || axis >= sa.len() || (0..sa.len()).any(|d| d != axis && sa[d] != sb[d]) {
            return Err(ShapeError(format!("cannot concatenate {sa:?} and {sb:?} on axis {axis}")));
        }
        let outer: usize = sa[..axis].iter().product();
        let (ia, ib) = (sa[axis..].iter().product::<usize>(), sb[axis..].iter().product::<usize>());
        let mut data = Vec::with_capacity(self.len() + other.len());
        for o in 0..outer {
            data.extend_from_slice(&self.data[o * ia..][..ia]);
            data.extend_from_slice(&other.data[o * ib..][..ib]);
        }
        let mut shape = sa.to_vec();
        shape[axis] += sb[axis];
        Ok(Self { shape, data })
    }

    /// Transpose of a 2-D tensor.
    pub fn transpose2(&self) -> Result<Self, ShapeError> {
        let [r, c] = self.shape[..] else {
            return Err(ShapeError(format!("transpose2 needs 2-D, got {:?}", self.shape)));
        };
        let mut out = vec![W::ZERO; r * c];
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = self.data[i * c + j];
            }
        }
        Ok(Self { shape: vec![c, r], data: out })
    }
}

impl WideTensor {
    /// Every element of `t` sign-extended ([`Word::lift`]).
    pub fn lift(t: &RingTensor) -> Self {
        Self { shape: t.shape.clone(), data: t.data.iter().map(|&v| <u128 as Word>::lift(v)).collect() }
    }

    /// Every element modulo 2^64.
    pub fn low(&self) -> RingTensor {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|&v| v as u64).collect() }
    }
}

impl RingTensor {
    /// Arithmetic (sign-extending) shift right of every element, i.e. floor division by 2^bits
    /// of the two's-complement value.
    pub fn shr_signed(&self, bits: u32) -> Self {
        self.map(|a| ((a as i64) >> bits) as u64)
    }

    /// Ring matrix product of 2-D tensors, `[m, k] x [k, n] -> [m, n]`.
    pub fn matmul(&self, other: &Self) -> Result<Self, ShapeError> {
        let (m, k, n) = matmul_dims(self.shape(), other.shape())?;
        let data = crate::kernels::matmul(&self.data, &other.data, m, k, n);
        Ok(Self { shape: vec![m, n], data })
    }

    /// [`RingTensor::matmul`] with `self` read as the matrix `[m, k]`, `m` its first dimension
    /// and `k` the product of the others (a convolution's weights `[O, C, kh, kw]` as
    /// `[O, C kh kw]`), without reshaping (copying) it first. The same as `matmul` for 2-D.
    pub fn matmul_rows(&self, other: &Self) -> Result<Self, ShapeError> {
        let (m, k, n) = matmul_dims(&rows_shape(self.shape())?, other.shape())?;
        let data = crate::kernels::matmul(&self.data, &other.data, m, k, n);
        Ok(Self { shape: vec![m, n], data })
    }
}

/// The wrapping matrix product `[m, k] x [k, n]` of u128s (row-major): modulo 2^128, for MAC'd
/// matrix triples. A plain loop (no crate multiplies u128 matrices; the u64 kernel's
/// tiling would do for speed, once malicious 2PC needs it).
pub fn matmul_wide(a: &[u128], b: &[u128], m: usize, k: usize, n: usize) -> Vec<u128> {
    assert!(a.len() == m * k && b.len() == k * n, "matmul_wide: operands do not fit [{m}, {k}] x [{k}, {n}]");
    let mut out = vec![0u128; m * n];
    for (row, a_row) in out.chunks_exact_mut(n.max(1)).zip(a.chunks_exact(k.max(1))) {
        for (&x, b_row) in a_row.iter().zip(b.chunks_exact(n.max(1))) {
            for (o, &y) in row.iter_mut().zip(b_row) {
                *o = o.wrapping_add(x.wrapping_mul(y));
            }
        }
    }
    out
}

/// `[m, k]` for a shape `[m, ...]`: its first dimension, and the product of the others.
pub fn rows_shape(shape: &[usize]) -> Result<[usize; 2], ShapeError> {
    match shape {
        [m, rest @ ..] if !rest.is_empty() => Ok([*m, rest.iter().product()]),
        _ => Err(ShapeError(format!("a matrix of rows needs 2 or more dimensions, got {shape:?}"))),
    }
}

/// Checks that `a` and `b` are 2-D and conformable; returns `(m, k, n)`.
pub(crate) fn matmul_dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize), ShapeError> {
    match (a, b) {
        ([m, k], [k2, n]) if k == k2 => Ok((*m, *k, *n)),
        _ => Err(ShapeError(format!("matmul: shapes {a:?} and {b:?} do not conform"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_of_rows_is_the_product_of_the_reshaped_matrix() {
        let a = RingTensor::new(
            vec![3, 2, 2, 1],
            (0..12u64).map(|v| v.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect(),
        )
        .unwrap();
        let b = RingTensor::new(vec![4, 5], (0..20u64).map(|v| v.wrapping_sub(7)).collect()).unwrap();
        let want = a.reshape(&[3, 4]).unwrap().matmul(&b).unwrap();
        assert_eq!(a.matmul_rows(&b).unwrap(), want);
        assert!(a.matmul_rows(&a).is_err());
        assert!(RingTensor::new(vec![4], vec![0; 4]).unwrap().matmul_rows(&b).is_err());
        assert_eq!(rows_shape(&[2, 3, 4]).unwrap(), [2, 12]);
    }

    #[test]
    fn wrapping_ops_and_shapes() {
        let a = RingTensor::new(vec![2, 2], vec![u64::MAX, 1, 2, 3]).unwrap();
        let b = RingTensor::new(vec![2, 2], vec![1, 1, 1, 1]).unwrap();
        assert_eq!(a.add(&b).unwrap().data(), &[0, 2, 3, 4]);
        assert_eq!(a.sub(&b).unwrap().data(), &[u64::MAX - 1, 0, 1, 2]);
        assert!(a.add(&RingTensor::zeros(&[4])).is_err());
        assert!(RingTensor::new(vec![3], vec![1]).is_err());
        assert_eq!(a.sum_axis(0).unwrap().data(), &[1, 4]);
        assert_eq!(a.sum_axis(1).unwrap().data(), &[0, 5]);
        assert_eq!(a.transpose2().unwrap().data(), &[u64::MAX, 2, 1, 3]);
        assert_eq!(format!("{a:?}"), "RingTensor[2, 2]");
    }

    #[test]
    fn signed_shift_floors() {
        let t = RingTensor::from_vec(vec![(-5i64) as u64, 5, (-4i64) as u64]);
        let s = t.shr_signed(1);
        assert_eq!(s.data(), &[(-3i64) as u64, 2, (-2i64) as u64]);
    }
}
