//! Arithmetic in the ring Z_2^64 for Musket: tensors of wrapping `u64` (and of `u128`, for
//! linear maps on MAC'd shares), fixed-point encoding of real numbers, the u64
//! matrix-multiplication kernel and the bit-slicing helpers used by the boolean circuits. No
//! cryptography and no IO live here.

mod bits;
mod fixed;
mod gf64;
mod im2col;
mod kernels;
pub mod maps;
mod tensor;
mod word;

pub use bits::{concat_words, gather_planes, low_bit_planes, pack_bits, transpose64, unpack_bits};
pub use fixed::{FixedPoint, RangeError, DEFAULT_FRAC_BITS};
pub use gf64::{gf64_words, gf64_words_mut, Gf64};
pub use im2col::Im2col;
pub use kernels::{
    add_coefficient_rows, add_rows_by_bits, add_rows_by_bits_with, add_times_binary_poly,
    add_times_binary_poly_with, clmul, clmul_dot, clmul_dot_and, clmul_dot_and_extended, clmul_portable,
    coefficient_rows, coefficient_rows_of_differences, gf64_fold_into, gf64_reduce, gf64_times_x_lanes,
    lane_bytes, lane_bytes_portable, local_party_kernels, matmul, matmul_naive, matmul_tn,
    matmul_tn_strided_add, matmul_with, parallel_allowed, prefetch, proof_parallel_allowed, row_times_x_pow,
    rows_times_x_pows, rows_times_x_pows_with, select_rows_by_bits, serial_kernels, tn_hadamard64,
    tn_hadamard64_with, xor_member_lookups, xor_nibble_lookups, BitWeightedSum, BitWeightedSums, Kernel,
    KernelSpread, MemberTables, PolyProductSum, PolyProductSums, BINARY_POLY_CHUNK, POLY_COEFFS,
    PRODUCT_COEFFS, TILE,
};
pub use maps::{LinearOp, LinearOp2, RingMap, RingMap2};
pub use tensor::{matmul_wide, rows_shape, RingTensor, ShapeError, Tensor, WideTensor};
pub use word::Word;
