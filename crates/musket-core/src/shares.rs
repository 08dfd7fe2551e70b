//! Moving shares around without communication: concatenation and splitting (used to run
//! several operations in one round).

use musket_ring::maps;

use crate::{MpcError, Protocol, Result, Share};

/// Flattens and concatenates shares into one 1-D share (a local operation).
pub fn concat_shares<P: Protocol + ?Sized>(p: &P, parts: &[&P::Share]) -> Result<P::Share> {
    let (first, rest) =
        parts.split_first().ok_or_else(|| MpcError::Usage("nothing to concatenate".into()))?;
    let mut acc = p.reshape(first, &[first.len()])?;
    for part in rest {
        acc = p.linear2(&acc, part, &maps::ConcatFlat)?;
    }
    Ok(acc)
}

/// Splits a 1-D share into consecutive pieces of the given shapes.
pub fn split_share<P: Protocol + ?Sized>(
    p: &P,
    x: &P::Share,
    shapes: &[Vec<usize>],
) -> Result<Vec<P::Share>> {
    let lens: Vec<usize> = shapes.iter().map(|s| crate::element_count(s)).collect::<Result<_>>()?;
    if lens.iter().try_fold(0usize, |a, &l| a.checked_add(l)) != Some(x.len()) {
        return Err(MpcError::Usage(format!("cannot split {} elements into shapes {shapes:?}", x.len())));
    }
    let mut start = 0;
    shapes
        .iter()
        .zip(lens)
        .map(|(s, len)| {
            let from = start;
            start += len;
            p.linear(x, &maps::FlatRange { from, shape: s })
        })
        .collect()
}
