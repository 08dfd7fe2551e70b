//! Fixed-point helpers on top of any protocol.

use crate::protocol::Protocol;
use crate::Result;
use musket_ring::{FixedPoint, RingTensor};

/// Encodes real values (owner only) and secret-shares them.
pub fn share_fixed<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    owner: usize,
    values: Option<&[f64]>,
    shape: &[usize],
) -> Result<P::Share> {
    let tensor = match values {
        Some(v) => Some(RingTensor::new(shape.to_vec(), fp.encode(v)?)?),
        None => None,
    };
    p.input(owner, tensor.as_ref(), shape)
}

/// Opens a fixed-point tensor to every compute party and decodes it.
pub fn reveal_fixed<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<Vec<f64>> {
    Ok(fp.decode(p.reveal(x)?.data()))
}

/// Fixed-point product: ring product, then truncation by the fractional bits. The result is
/// within one unit in the last place of the exact product of the encodings when
/// `|a * b| < 2^(62 - 2f)`.
pub fn mul_fixed<P: Protocol>(p: &mut P, fp: FixedPoint, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    p.mul_truncate(a, b, fp.frac_bits())
}
