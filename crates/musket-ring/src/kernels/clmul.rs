//! Carry-less (GF(2)[x]) products of 64-bit words, for the binary-field proofs of the
//! malicious-secure back end. No maintained crate exposes batched carry-less products; on
//! x86-64 with PCLMULQDQ one instruction does each, chosen at run time; elsewhere a portable
//! 4-bit-window version.

/// Carry-less product of two words, portable.
pub fn clmul_portable(a: u64, b: u64) -> u128 {
    let mut table = [0u128; 16];
    for i in 1..16usize {
        table[i] = if i & 1 == 1 { table[i - 1] ^ a as u128 } else { table[i >> 1] << 1 };
    }
    let mut acc = 0u128;
    for k in (0..16).rev() {
        acc = (acc << 4) ^ table[((b >> (4 * k)) & 15) as usize];
    }
    acc
}

fn has_pclmul() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("sse2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// XOR of the carry-less products `a_i * b_i`.
pub fn clmul_dot(a: &[u64], b: &[u64]) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_dot_pclmul(a, b);
    }
    a.iter().zip(b).fold(0, |acc, (x, y)| acc ^ clmul_portable(*x, *y))
}

/// XOR of the carry-less products `w_i * (x_i AND y_i)`: a weighted sum of AND words, the
/// step of the packed binary proof that replaces one product per bit by one per word.
pub fn clmul_dot_and(w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_dot_and_pclmul(w, x, y);
    }
    w.iter().zip(x).zip(y).fold(0, |acc, ((c, a), b)| acc ^ clmul_portable(*c, a & b))
}

/// Carry-less product of two words (PCLMULQDQ where the CPU has it).
pub fn clmul(a: u64, b: u64) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_pclmul(a, b);
    }
    clmul_portable(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn masked_and_single_products_match_the_portable_one() {
        let mut rng = rand::thread_rng();
        let w: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let x: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let y: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let want = (0..77).fold(0u128, |acc, i| acc ^ clmul_portable(w[i], x[i] & y[i]));
        assert_eq!(clmul_dot_and(&w, &x, &y), want);
        for i in 0..77 {
            assert_eq!(clmul(w[i], x[i]), clmul_portable(w[i], x[i]));
        }
    }

    #[test]
    fn batched_products_match_the_portable_one() {
        let mut rng = rand::thread_rng();
        let a: Vec<u64> = (0..100).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..100).map(|_| rng.gen()).collect();
        let want = a.iter().zip(&b).fold(0u128, |acc, (x, y)| acc ^ clmul_portable(*x, *y));
        assert_eq!(clmul_dot(&a, &b), want);
        assert_eq!(clmul_portable(3, 3), 5);
        assert_eq!(clmul_portable(u64::MAX, 2), (u64::MAX as u128) << 1);
    }
}
