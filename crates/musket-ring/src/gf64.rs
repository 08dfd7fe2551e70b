//! The element type of GF(2^64), defined beside its kernels ([`crate::gf64_fold_into`],
//! [`crate::clmul_dot`]) so that they can take slices of elements as words in place: the
//! proof code above keeps its vectors as elements, and copying them to words for every
//! fold cost as much as the carry-less products themselves.

/// An element of GF(2^64): bit `i` is the coefficient of `x^i` (its arithmetic is
/// `musket_core`'s `Ext` implementation).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Gf64(pub u64);

impl std::fmt::Debug for Gf64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gf64({:#x})", self.0)
    }
}

/// The elements' words, in place.
#[allow(unsafe_code)]
pub fn gf64_words(v: &[Gf64]) -> &[u64] {
    // SAFETY: `Gf64` is `repr(transparent)` over `u64`, so a slice of it has the layout of a
    // slice of `u64` of the same length; the borrow is carried over.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u64>(), v.len()) }
}

/// The elements' words, in place, mutably.
#[allow(unsafe_code)]
pub fn gf64_words_mut(v: &mut [Gf64]) -> &mut [u64] {
    // SAFETY: as in `gf64_words`; the exclusive borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u64>(), v.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_elements_in_place() {
        let mut v = vec![Gf64(1), Gf64(u64::MAX), Gf64(0x1234)];
        assert_eq!(gf64_words(&v), &[1, u64::MAX, 0x1234]);
        gf64_words_mut(&mut v)[1] = 7;
        assert_eq!(v[1], Gf64(7));
        assert!(gf64_words(&[]).is_empty());
    }
}
