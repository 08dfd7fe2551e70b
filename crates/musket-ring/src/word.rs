//! The words of the power-of-two rings a [`crate::Tensor`] holds.

/// A word of Z_2^64 (`u64`) or Z_2^128 (`u128`), with wrapping arithmetic.
///
/// Linear maps written once, generic over the word, act on shares modulo 2^64 (every back end)
/// and modulo 2^128 (a MAC'd share, whose MAC relation `m = alpha x` must survive the map there:
/// a map known only modulo 2^64 would keep it modulo 2^64 alone).
pub trait Word: Copy + Default + PartialEq + Eq + Send + Sync + std::hash::Hash + 'static {
    /// Zero.
    const ZERO: Self;
    /// How a tensor of these words names itself in `Debug` (never its values).
    const TENSOR_NAME: &'static str;
    /// Wrapping sum.
    fn wadd(self, other: Self) -> Self;
    /// Wrapping difference.
    fn wsub(self, other: Self) -> Self;
    /// Wrapping product.
    fn wmul(self, other: Self) -> Self;
    /// Wrapping negation.
    fn wneg(self) -> Self;
    /// The public ring constant `c` of Z_2^64 as a word of this ring: sign-extended (read as a
    /// two's-complement `i64`). Any lift would keep a linear map Z-linear with its result
    /// modulo 2^64 unchanged (it depends on `c` modulo 2^64 only); this one also keeps a small
    /// negative constant (-1, a negative fixed-point weight) small modulo 2^128, so that a
    /// value computed there stays the exact signed integer while it is below 2^127, which a
    /// MAC'd back end's truncation can use (its 64 bits of headroom). Fixed, so that every
    /// party and every share component (value and MAC alike) uses the same.
    fn lift(c: u64) -> Self;
    /// The word modulo 2^64.
    fn low(self) -> u64;
}

/// The two rings' words differ only in width: one implementation, written once.
macro_rules! wrapping_word {
    ($t:ty, $name:literal) => {
        impl Word for $t {
            const ZERO: Self = 0;
            const TENSOR_NAME: &'static str = $name;
            #[inline]
            fn wadd(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            #[inline]
            fn wsub(self, other: Self) -> Self {
                self.wrapping_sub(other)
            }
            #[inline]
            fn wmul(self, other: Self) -> Self {
                self.wrapping_mul(other)
            }
            #[inline]
            fn wneg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            fn lift(c: u64) -> Self {
                // Sign extension (the identity for u64).
                c as i64 as $t
            }
            #[inline]
            fn low(self) -> u64 {
                // Truncation (the identity for u64).
                self as u64
            }
        }
    };
}

wrapping_word!(u64, "RingTensor");
wrapping_word!(u128, "WideTensor");
