use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Block};
use rand::RngCore;

/// Words per run of counters encrypted while in cache (even: whole blocks).
const RUN: usize = 512;

/// A 128-bit PRG seed.
pub type Seed = [u8; 16];

/// AES-128 in counter mode as a PRG: parties holding the same seed draw the same stream, which
/// is how correlated randomness is derived without sending it. Block `i` of the stream is
/// `AES_seed(i)` (little-endian counter from zero, as `ctr::Ctr128LE` with a zero IV), words
/// taken little-endian. The counter blocks are written straight into the output and encrypted
/// there, rather than XORing a keystream into zeros: the `aes` crate's VAES path then does
/// nearly all the work, with no zero-filling or extra copies.
pub struct Prg {
    cipher: Aes128,
    counter: u128,
    /// The second word of a block whose first word ended the last request.
    spare: Option<u64>,
}

impl std::fmt::Debug for Prg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prg { .. }")
    }
}

impl Prg {
    /// A PRG expanding `seed`.
    pub fn from_seed(seed: Seed) -> Self {
        Self { cipher: Aes128::new(&seed.into()), counter: 0, spare: None }
    }

    /// A PRG seeded from the operating system's CSPRNG.
    pub fn from_os() -> Self {
        Self::from_seed(os_seed())
    }

    /// Writes consecutive counter blocks over `pairs` (an even number of words).
    fn write_counters(&mut self, pairs: &mut [u64]) {
        let blocks = (pairs.len() / 2) as u64;
        let (low, high) = (self.counter as u64, (self.counter >> 64) as u64);
        if low.checked_add(blocks).is_some() {
            // The high half is the same for the whole run: a loop the compiler vectorises.
            for (k, pair) in pairs.chunks_exact_mut(2).enumerate() {
                pair[0] = (low + k as u64).to_le();
                pair[1] = high.to_le();
            }
            self.counter += blocks as u128;
            return;
        }
        let mut c = self.counter;
        for pair in pairs.chunks_exact_mut(2) {
            pair[0] = (c as u64).to_le();
            pair[1] = ((c >> 64) as u64).to_le();
            c += 1;
        }
        self.counter = c;
    }

    /// Encrypts in place a run of counter blocks written by `write_counters`.
    fn encrypt_counters(&self, pairs: &mut [u64]) {
        let blocks: &mut [[u8; 16]] = bytemuck::cast_slice_mut(pairs);
        self.cipher.encrypt_blocks(Block::cast_slice_from_core_mut(blocks));
        for w in pairs.iter_mut() {
            *w = u64::from_le(*w);
        }
    }

    /// One block for an odd word at the end of a request: returns it, keeps the other half.
    fn odd_word(&mut self) -> u64 {
        let mut pair = [0u64; 2];
        self.write_counters(&mut pair);
        self.encrypt_counters(&mut pair);
        self.spare = Some(pair[1]);
        pair[0]
    }

    /// Fills `out` with pseudorandom words.
    pub fn fill(&mut self, out: &mut [u64]) {
        let mut out = out;
        if let (Some(first), Some(w)) = (out.first_mut(), self.spare) {
            *first = w;
            self.spare = None;
            out = &mut out[1..];
        }
        let (pairs, rest) = out.split_at_mut(out.len() / 2 * 2);
        // A cache-sized run at a time, as in `words`.
        for run in pairs.chunks_mut(RUN) {
            self.write_counters(run);
            self.encrypt_counters(run);
        }
        if let Some(last) = rest.first_mut() {
            *last = self.odd_word();
        }
    }

    /// `n` pseudorandom words.
    pub fn words(&mut self, n: usize) -> Vec<u64> {
        let mut v = Vec::with_capacity(n);
        if n == 0 {
            return v;
        }
        let head = match self.spare.take() {
            Some(w) => {
                v.push(w);
                1
            }
            None => 0,
        };
        // A cache-sized run at a time: its zero fill, counters and encryption stay in L1, so
        // the output is written to memory once instead of three times.
        let end = head + (n - head) / 2 * 2;
        while v.len() < end {
            let start = v.len();
            v.resize((start + RUN).min(end), 0);
            self.write_counters(&mut v[start..]);
            self.encrypt_counters(&mut v[start..]);
        }
        if v.len() < n {
            let w = self.odd_word();
            v.push(w);
        }
        v
    }

    /// A copy of this stream at its current position, which draws the same words again: a
    /// record of what the malicious back end must verify keeps one instead of the words of its
    /// zero share, and draws them again when it is verified.
    pub fn snapshot(&self) -> Prg {
        Prg { cipher: self.cipher.clone(), counter: self.counter, spare: self.spare }
    }

    /// Moves past the next `n` words without drawing them (what `words(n)` would have left).
    pub fn skip(&mut self, mut n: usize) {
        if n > 0 && self.spare.take().is_some() {
            n -= 1;
        }
        self.counter += (n / 2) as u128;
        if n % 2 == 1 {
            let _ = self.words(1);
        }
    }

    /// A fresh seed drawn from this stream.
    pub fn seed(&mut self) -> Seed {
        let w = self.words(2);
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&w[0].to_le_bytes());
        s[8..].copy_from_slice(&w[1].to_le_bytes());
        s
    }
}

/// A seed from the operating system's CSPRNG.
pub fn os_seed() -> Seed {
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_chunking_does_not_matter() {
        let mut a = Prg::from_seed([7; 16]);
        let mut b = Prg::from_seed([7; 16]);
        let whole = a.words(10);
        let mut parts = b.words(3);
        parts.extend(b.words(7));
        assert_eq!(whole, parts);
        assert_ne!(Prg::from_seed([8; 16]).words(10), whole);
        assert_ne!(Prg::from_os().words(2), Prg::from_os().words(2));
        // Odd-sized requests split blocks; the stream does not change.
        let mut c = Prg::from_seed([7; 16]);
        let mut odd = c.words(1);
        odd.extend(c.words(2));
        odd.extend(c.words(7));
        assert_eq!(odd[..10], whole[..]);
        let mut d = Prg::from_seed([7; 16]);
        let (mut first, mut rest) = (vec![0; 3], vec![0; 7]);
        d.fill(&mut first);
        d.fill(&mut rest);
        first.extend(rest);
        assert_eq!(first, whole);
    }

    #[test]
    fn stream_is_aes_ctr_with_a_little_endian_counter() {
        // FIPS-197 appendix C.1 key; block 0 encrypts the all-zero counter.
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key: Seed = core::array::from_fn(|i| i as u8);
        let mut expect = aes::Block::default();
        aes::Aes128::new(&key.into()).encrypt_block(&mut expect);
        let w = Prg::from_seed(key).words(2);
        assert_eq!(w[0].to_le_bytes(), expect[..8]);
        assert_eq!(w[1].to_le_bytes(), expect[8..]);
        let mut one = aes::Block::from(1u128.to_le_bytes());
        aes::Aes128::new(&key.into()).encrypt_block(&mut one);
        assert_eq!(Prg::from_seed(key).words(4)[2].to_le_bytes(), one[..8]);
    }

    #[test]
    fn a_snapshot_or_a_skip_draws_what_the_stream_would() {
        for first in [0usize, 1, 2, 5] {
            for gap in [0usize, 1, 2, 3, 1001] {
                let mut prg = Prg::from_seed([7; 16]);
                let _ = prg.words(first);
                let mut copy = prg.snapshot();
                let all = prg.words(gap + 9);
                assert_eq!(copy.words(gap + 9), all, "snapshot after {first}");
                let mut skipped = Prg::from_seed([7; 16]);
                let _ = skipped.words(first);
                skipped.skip(gap);
                assert_eq!(skipped.words(9), all[gap..], "skip {gap} after {first}");
            }
        }
    }

    #[test]
    fn runs_longer_than_a_cache_run_and_counters_past_two_to_the_64() {
        // Blocks u and u + 1 around the carry into the counter's high half, and a request
        // spanning several cache-sized runs, match single-block encryption.
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key: Seed = [3; 16];
        let cipher = aes::Aes128::new(&key.into());
        let block = |c: u128| {
            let mut b = aes::Block::from(c.to_le_bytes());
            cipher.encrypt_block(&mut b);
            [u64::from_le_bytes(b[..8].try_into().unwrap()), u64::from_le_bytes(b[8..].try_into().unwrap())]
        };
        for start in [0u128, (1u128 << 64) - 700] {
            let mut prg = Prg::from_seed(key);
            prg.counter = start;
            let got = prg.words(2 * 1000 + 1);
            let expect: Vec<u64> = (0..1001).flat_map(|k| block(start + k)).take(2001).collect();
            assert_eq!(got, expect, "counter from {start}");
            let mut filled = Prg::from_seed(key);
            filled.counter = start;
            let mut out = vec![0u64; 2001];
            filled.fill(&mut out);
            assert_eq!(out, expect, "fill, counter from {start}");
        }
    }
}
