//! Secure comparison, protocol-generic: arithmetic-to-binary conversion by a bit-sliced
//! parallel-prefix adder that computes only the carry into the sign bit.
//!
//! The two operands from [`Protocol::a2b_operands`] are transposed into 64 bit planes (one
//! word holds one bit position of 64 elements), so every AND gate below is evaluated for 64
//! elements at once and only the gates the sign bit needs are paid for. Generate/propagate
//! pairs of the low 63 bits are combined in a binary tree, `log2(63)` = 6 levels of one round
//! each after the first AND layer: 7 rounds and [`MSB_CIRCUIT_ANDS`] AND gates per element.

use crate::protocol::{Protocol, Share};
use crate::Result;
use musket_ring::{transpose64, RingTensor};

/// AND gates per element in the sign-bit circuit: 63 generate bits plus the carry tree
/// (61 + 31 + 15 + 7 + 3 + 1, skipping the propagate bit of the lowest group at every level,
/// which a carry-in of zero never needs).
pub const MSB_CIRCUIT_ANDS: usize = 181;

/// Transposes `n` words into 64 bit planes of `ceil(n/64)` words each.
pub(crate) fn to_planes(words: &[u64], n: usize) -> Vec<u64> {
    to_low_planes(words, n, 64)
}

/// The lowest `planes` bit planes of `n` words (the others are dropped while transposing).
fn to_low_planes(words: &[u64], n: usize, planes: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    let mut out = vec![0u64; planes * nb];
    let mut block = [0u64; 64];
    for b in 0..nb {
        let chunk = &words[b * 64..((b + 1) * 64).min(n)];
        // Zero blocks are common (an operand that is one party's component in a third of
        // the elements) and their planes are already zero. Skipping them reveals nothing: a
        // component of a secret's share is uniformly random, so only public structure zeroes
        // a whole block.
        if chunk.iter().all(|&w| w == 0) {
            continue;
        }
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (bit, &w) in block.iter().take(planes).enumerate() {
            out[bit * nb + b] = w;
        }
    }
    out
}

/// The sign bit of every element of `x`, as packed bits (element `i` is bit `i % 64` of word
/// `i / 64`), XOR-shared.
pub fn msb<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Bits> {
    let (a, b) = p.a2b_operands(x)?;
    sum_bit(p, &a, &b, x.len(), 64)
}

/// `[x < 0]` for inputs known to satisfy `|x| < 2^(bits - 1)`, by a `bits`-wide circuit:
/// `y = x + 2^(bits-1)` lies in `[0, 2^bits)`, so `x < 0` exactly when bit `bits - 1` of `y`
/// is clear, and that bit depends only on the operands' low `bits` bits. At 32 bits it costs
/// [`msb_within_ands`]`(32)` = 89 AND gates per element instead of 181, and 6 rounds instead
/// of 7.
///
/// Outside the domain the bit is meaningless, so the caller must have the bound guaranteed:
/// it is declared through [`Protocol::assume_within`], which the range audit checks on every
/// element; the secure range check's plan bounds the value before it gets here (an op that
/// calls this declares the bound in `Op::operand_bounds`). `bits` must be in 2..=64 (64 is
/// [`msb`]).
pub fn msb_within<P: Protocol>(p: &mut P, x: &P::Share, bits: u32, what: &str) -> Result<P::Bits> {
    if !(2..=64).contains(&bits) {
        return Err(crate::MpcError::Usage(format!("{what}: a sign circuit of {bits} bits")));
    }
    if bits == 64 {
        return msb(p, x);
    }
    let half = 1u64 << (bits - 1);
    p.assume_within(x, half, what)?;
    let n = x.len();
    let y = p.add_public(x, &RingTensor::filled(x.shape(), half))?;
    let (a, b) = p.a2b_operands(&y)?;
    let top = sum_bit(p, &a, &b, n, bits as usize)?;
    // [x < 0] = NOT bit (bits - 1) of y, on the n valid bits only (padding stays zero).
    let mut ones = vec![u64::MAX; n.div_ceil(64)];
    if n % 64 != 0 {
        *ones.last_mut().expect("n > 0 when n % 64 != 0") = (1u64 << (n % 64)) - 1;
    }
    Ok(p.bits_xor_public(&top, &ones))
}

/// AND gates per element of the `bits`-wide sign circuit: `bits - 1` generate bits plus the
/// carry tree over `bits - 1` groups (`2 pairs - 1` gates a level, the lowest group's
/// propagate bit skipped).
pub fn msb_within_ands(bits: usize) -> usize {
    let mut ands = bits - 1;
    let mut groups = bits - 1;
    while groups > 1 {
        let pairs = groups / 2;
        ands += 2 * pairs - 1;
        groups = pairs + groups % 2;
    }
    ands
}

/// Bit `width - 1` (2 to 64) of `a + b`, the ring sum of two XOR-shared operands of one word
/// per element, for `n` elements, as packed bits: generate bits of the low `width - 1`
/// positions (one AND layer), then a carry tree over those groups (`ceil(log2(width - 1))`
/// layers, [`msb_within_ands`]`(width)` AND gates per element); the bit is `a ^ b ^ carry`
/// there.
pub fn sum_bit<P: Protocol>(p: &mut P, a: &P::Bits, b: &P::Bits, n: usize, width: usize) -> Result<P::Bits> {
    Ok(carry_tree(p, a, b, n, width, Extras::default())?.top)
}

/// [`sum_bit`], and also the carry into bit `carry_at` (1 to `width - 2`) of `a + b`, taken
/// from the same carry tree: the generate bit of `[0, carry_at)` is combined from the tree's
/// aligned groups along the binary digits of `carry_at` (`[0, 16)` is one of them, so at 16
/// it costs nothing), one AND per further digit, carried in the tree's later AND layers: no
/// extra round while the tree has layers left, which in a 64-bit tree holds for every
/// `carry_at` up to 22 (each fixed-point scale); beyond, up to three more AND layers.
pub fn sum_bit_and_carry<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    width: usize,
    carry_at: usize,
) -> Result<(P::Bits, P::Bits)> {
    if carry_at == 0 || carry_at + 1 >= width {
        return Err(crate::MpcError::Usage(format!("sum_bit_and_carry: carry into {carry_at} of {width}")));
    }
    let out = carry_tree(p, a, b, n, width, Extras { carry_at: Some(carry_at), ..Extras::default() })?;
    Ok((out.top, out.carry.expect("requested")))
}

/// `[a + b >= 2^k]` for the ring sum `a + b mod 2^64` read as unsigned, `k` in 1 to 62, of two
/// XOR-shared operands of one word per element, for `n` elements: two packed bit vectors
/// whose OR it is, bit `k` of the sum and the OR of its bits `k + 1..=63`. Bit `k` is a
/// `k + 1`-wide carry tree ([`sum_bit`]); the bits above need no carries of their own (see
/// the comment in the tree), one AND per bit and an OR tree whose layers ride along with the
/// carry tree's: [`sum_reaches_ands`]`(k)` AND gates per element (163 at `k = 46`, where two
/// full sign circuits take 362), in the rounds of the carry tree (and of the OR tree where it
/// is deeper, for `k` below 32).
pub fn sum_reaches<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    k: usize,
) -> Result<(P::Bits, P::Bits)> {
    if !(1..=62).contains(&k) {
        return Err(crate::MpcError::Usage(format!("sum_reaches: 2^{k}")));
    }
    let [bit, above, _] = sum_reaches_blocks(p, a, b, n, k, &vec![0; n.div_ceil(64)], 0)?;
    Ok((bit, above))
}

/// [`sum_reaches`] with a threshold per block of 64 elements: block `i` (elements `64 i` to
/// `64 i + 63`) is tested against `2^(k - shifts[i])`, each exponent in 1 to 63, in one
/// circuit. Each block's operands enter the carry tree `shifts[i]` bits up (a relabelling of
/// its bit planes), so one `k + 1`-wide tree gives every block's bit; the bits above run up
/// to `63 + max(shifts)`, each block's beyond its own bit 63 left out. A block tested
/// against 2^63 is a sign test (its second vector is zero there). [`sum_reaches_ands`] of
/// the largest exponent per element, plus two per element for each step of shift beyond it.
///
/// Returns bit `k - shifts[i]` of each sum, the OR of the bits above it, and, for the first
/// `low_blocks` blocks (zero elsewhere), the OR of the bits below it: whether the sum is
/// not zero there, given the first two are zero (the range check's windows that leave out
/// their bottom value); another OR tree riding along with the carry tree, `k - 1` AND gates
/// per element of those blocks.
pub fn sum_reaches_blocks<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    k: usize,
    shifts: &[usize],
    low_blocks: usize,
) -> Result<[P::Bits; 3]> {
    let bad = shifts.len() != n.div_ceil(64) || shifts.iter().any(|&s| s >= k || k - s > 63);
    if bad || !(1..=63).contains(&k) || low_blocks > shifts.len() {
        return Err(crate::MpcError::Usage(format!("sum_reaches: 2^{k} less {} shifts", shifts.len())));
    }
    let out = carry_tree(p, a, b, n, k + 1, Extras { carry_at: None, high: Some(shifts), low_blocks })?;
    let high = out.high.expect("requested");
    let low = match out.low {
        Some(low) => low,
        None => p.bits_linear(&high, &|w| vec![0; w.len()]),
    };
    Ok([out.top, high, low])
}

/// AND gates per element of [`sum_reaches`]`(k)`.
pub fn sum_reaches_ands(k: usize) -> usize {
    msb_within_ands(k + 1) + 2 * (63 - k) - 1
}

/// The lowest `planes` bit planes of `n` words, each block of 64 words (`shifts[i]` for
/// block `i`) moved up by its shift: plane `t` of block `i` is its bit `t - shifts[i]`, zero
/// where there is none.
fn to_shifted_planes(words: &[u64], n: usize, shifts: &[usize], planes: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    let mut out = vec![0u64; planes * nb];
    let mut block = [0u64; 64];
    for (b, &shift) in shifts.iter().enumerate() {
        let chunk = &words[b * 64..((b + 1) * 64).min(n)];
        if chunk.iter().all(|&w| w == 0) {
            continue; // as in `to_low_planes`
        }
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (bit, &w) in block.iter().enumerate().take(planes.saturating_sub(shift)) {
            out[(bit + shift) * nb + b] = w;
        }
    }
    out
}

/// The generate/propagate bits of one aligned group, saved while the tree passes its level.
struct Block<B> {
    level: usize,
    group: usize,
    g: Option<B>,
    prop: Option<B>,
}

/// Planes `from..to` of the bit-plane form of `n` words (see [`to_low_planes`]).
fn plane_range(planes: &[u64], n: usize, from: usize, to: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    planes[from * nb..to * nb].to_vec()
}

/// Planes to be OR-reduced to one, a pair of halves per AND layer of the carry tree they ride
/// along with (so that their layers cost no rounds of their own while the tree has layers).
struct OrRider<B> {
    planes: B,
    count: usize,
    /// Words per plane.
    plane_words: usize,
}

impl<B> OrRider<B> {
    fn done(&self) -> bool {
        self.count <= 1
    }
}

/// One AND layer: `left & right`, with each rider's next reduction (where it has one left) in
/// the same call: its lower half of planes with its upper half, OR as `x ^ y ^ (x & y)`, an
/// odd last plane passing through.
fn and_with_riders<P: Protocol>(
    p: &mut P,
    left: &P::Bits,
    right: &P::Bits,
    riders: &mut [OrRider<P::Bits>],
) -> Result<P::Bits> {
    let active: Vec<usize> = (0..riders.len()).filter(|&i| !riders[i].done()).collect();
    if active.is_empty() {
        return p.bits_and(left, right);
    }
    let (mut xs, mut ys) = (vec![left.clone()], vec![right.clone()]);
    for &i in &active {
        let r = &riders[i];
        let (lo, hi) = (r.count / 2 * r.plane_words, r.count / 2 * 2 * r.plane_words);
        xs.push(p.bits_linear(&r.planes, &|w| w[..lo].to_vec()));
        ys.push(p.bits_linear(&r.planes, &|w| w[lo..hi].to_vec()));
    }
    let both = p.bits_and(
        &p.bits_concat(&xs.iter().collect::<Vec<_>>()),
        &p.bits_concat(&ys.iter().collect::<Vec<_>>()),
    )?;
    let main = p.bits_len(left);
    let mut at = main;
    for &i in &active {
        let r = &mut riders[i];
        let nb = r.plane_words;
        let half = r.count / 2;
        let (lo, hi) = (half * nb, 2 * half * nb);
        let odd = r.count % 2 == 1;
        let count = r.count;
        let start = at;
        r.planes = p.bits_linear2(&r.planes, &both, &|pw, bw| {
            let mut v: Vec<u64> = (0..lo).map(|i| pw[i] ^ pw[lo + i] ^ bw[start + i]).collect();
            if odd {
                v.extend_from_slice(&pw[hi..count * nb]);
            }
            v
        });
        r.count = half + odd as usize;
        at += lo;
    }
    Ok(p.bits_linear(&both, &|w| w[..main].to_vec()))
}

/// A rider's single plane (its OR), widened with zeros to `nb` words; zero if it had none.
fn rider_result<P: Protocol>(p: &P, r: &OrRider<P::Bits>, nb: usize) -> P::Bits {
    let kept = if r.count == 0 { 0 } else { r.plane_words };
    p.bits_linear(&r.planes, &|w| {
        let mut v = w[..kept].to_vec();
        v.resize(nb, 0);
        v
    })
}

/// What [`carry_tree`] computes besides bit `width - 1` of the sum.
#[derive(Clone, Copy, Default)]
struct Extras<'s> {
    /// Also the carry into this bit (1 to `width - 2`), see [`sum_bit_and_carry`].
    carry_at: Option<usize>,
    /// Also the OR of the bits above, with each block of 64 elements shifted up by its entry
    /// first, see [`sum_reaches_blocks`].
    high: Option<&'s [usize]>,
    /// With `high`: also, for this many leading blocks, the OR of the bits below.
    low_blocks: usize,
}

/// The carry tree's outputs: bit `width - 1` of the sum and what [`Extras`] asked for.
struct TreeOut<B> {
    top: B,
    carry: Option<B>,
    high: Option<B>,
    low: Option<B>,
}

fn carry_tree<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    width: usize,
    extras: Extras<'_>,
) -> Result<TreeOut<P::Bits>> {
    let carry_at = extras.carry_at;
    if !(2..=64).contains(&width) || p.bits_len(a) != n || p.bits_len(b) != n {
        return Err(crate::MpcError::Usage(format!("sum_bit: width {width} of {n} words")));
    }
    let nb = n.div_ceil(64);
    // [0, carry_at) as aligned groups, largest first: [0, 2^l1), [2^l1, 2^l1 + 2^l2), ...
    let mut blocks: Vec<Block<P::Bits>> = Vec::new();
    if let Some(c) = carry_at {
        let mut start = 0;
        for level in (0..usize::BITS as usize).rev() {
            if (c >> level) & 1 == 1 {
                blocks.push(Block { level, group: start >> level, g: None, prop: None });
                start += 1 << level;
            }
        }
    }
    // The generate bit of [0, end) combined so far, and the next block to fold in.
    let mut acc: Option<P::Bits> = None;
    let mut next_block = 1;
    // The low `width - 1` planes feed the tree; bit `width - 1` only the final XOR.
    let top = width - 1;
    let mut riders: Vec<OrRider<P::Bits>> = Vec::new();
    let (sum_top, mut g, mut prop) = if let Some(shifts) = extras.high {
        // Bits `width..=63` of the sum are all zero, given bit `width - 1` is, exactly when
        // every p_j = a_j ^ b_j there equals a_(j-1) | b_(j-1) (the carry into j is then
        // a_(j-1) | b_(j-1), by induction from the carry into `width - 1` equal to
        // p_(width-1)). So their OR is that of the planes p_j ^ a_(j-1) ^ b_(j-1) ^
        // (a_(j-1) & b_(j-1)): one AND per plane, in the generate bits' layer, then an OR
        // tree riding along with the carry tree's layers. With shifted blocks the planes run
        // to `63 + max shift`, and a block's planes past its own bit 63 are left out.
        let planes = 64 + shifts.iter().copied().max().unwrap_or(0);
        let a_all = p.bits_linear(a, &|w| to_shifted_planes(w, n, shifts, planes));
        let b_all = p.bits_linear(b, &|w| to_shifted_planes(w, n, shifts, planes));
        let sum_top =
            p.bits_linear2(&a_all, &b_all, &|x, y| (top * nb..width * nb).map(|i| x[i] ^ y[i]).collect());
        let a_low = p.bits_linear(&a_all, &|w| plane_range(w, n, 0, top));
        let b_low = p.bits_linear(&b_all, &|w| plane_range(w, n, 0, top));
        // Only blocks with bits left above need those planes: with `width = 64` (sign tests
        // among the blocks), the blocks up to the last shifted one.
        let high_words =
            if width == 64 { shifts.iter().rposition(|&s| s > 0).map_or(0, |i| i + 1) } else { nb };
        let high_planes = planes - width;
        let high_part = |w: &[u64], from: usize, to: usize| -> Vec<u64> {
            (from..to).flat_map(|t| w[t * nb..t * nb + high_words].iter().copied()).collect()
        };
        let a_high = p.bits_linear(&a_all, &|w| high_part(w, top, planes - 1));
        let b_high = p.bits_linear(&b_all, &|w| high_part(w, top, planes - 1));
        let both = p.bits_and(&p.bits_concat(&[&a_low, &a_high]), &p.bits_concat(&[&b_low, &b_high]))?;
        let low_len = top * nb;
        let linear = p.bits_linear2(&a_all, &b_all, &|x, y| {
            (width..planes)
                .flat_map(|t| (0..high_words).map(move |b| t * nb + b))
                .map(|i| x[i] ^ y[i] ^ x[i - nb] ^ y[i - nb])
                .collect()
        });
        let above = p.bits_linear2(&linear, &both, &|l, bw| {
            let kept = |i: usize| width + i / high_words <= 63 + shifts[i % high_words];
            (0..l.len()).map(|i| if kept(i) { l[i] ^ bw[low_len + i] } else { 0 }).collect()
        });
        riders.push(OrRider { planes: above, count: high_planes, plane_words: high_words });
        let g = p.bits_linear(&both, &|w| w[..low_len].to_vec());
        let prop = p.bits_xor(&a_low, &b_low);
        if extras.low_blocks > 0 {
            // The bits below are all zero exactly when the sum's low part is: as above with no
            // carry in, every p_t equals a_(t-1) | b_(t-1) = p_(t-1) ^ g_(t-1) (p_0 zero). Their
            // OR is that of p_t ^ p_(t-1) ^ g_(t-1), for the leading blocks only.
            let lb = extras.low_blocks;
            let low = p.bits_linear2(&prop, &g, &|pw, gw| {
                (0..top)
                    .flat_map(|t| (0..lb).map(move |b| (t, b)))
                    .map(|(t, b)| {
                        let i = t * nb + b;
                        if t == 0 {
                            pw[i]
                        } else {
                            pw[i] ^ pw[i - nb] ^ gw[i - nb]
                        }
                    })
                    .collect()
            });
            riders.push(OrRider { planes: low, count: top, plane_words: lb });
        }
        (sum_top, g, prop)
    } else {
        let sum_top = p.bits_linear2(a, b, &|x, y| xor_bit_plane(x, y, n, top));
        let a_low = p.bits_linear(a, &|w| to_low_planes(w, n, top));
        let b_low = p.bits_linear(b, &|w| to_low_planes(w, n, top));
        (sum_top, p.bits_and(&a_low, &b_low)?, p.bits_xor(&a_low, &b_low))
    };
    let mut groups = width - 1;
    let mut level = 0;
    loop {
        for blk in blocks.iter_mut().filter(|blk| blk.level == level) {
            let at = blk.group * nb;
            blk.g = Some(p.bits_linear(&g, &|w| w[at..at + nb].to_vec()));
            if blk.group > 0 {
                blk.prop = Some(p.bits_linear(&prop, &|w| w[at..at + nb].to_vec()));
            }
        }
        if let Some(first) = blocks.first() {
            if first.level == level {
                acc = first.g.clone();
            }
        }
        // One combination step rides along with this level's AND layer, if any is due.
        let step = match (&acc, blocks.get(next_block)) {
            (Some(acc), Some(blk)) => Some((blk.prop.clone().expect("saved"), acc.clone())),
            _ => None,
        };
        if groups <= 1 {
            // The tree is done: any remaining combinations take their own AND layers.
            while let (Some(acc_now), Some(blk)) = (acc.clone(), blocks.get(next_block)) {
                let prod = and_with_riders(p, blk.prop.as_ref().expect("saved"), &acc_now, &mut riders)?;
                acc = Some(p.bits_xor(blk.g.as_ref().expect("saved"), &prod));
                next_block += 1;
            }
            // So does what is left of the riders' OR trees.
            while let Some(r) = riders.iter().find(|r| !r.done()) {
                let empty = p.bits_linear(&r.planes, &|_| Vec::new());
                and_with_riders(p, &empty, &empty, &mut riders)?;
            }
            break;
        }
        // Pair j joins groups 2j (low) and 2j+1 (high): its generate bit is
        // g_hi ^ (p_hi & g_lo), its propagate bit p_hi & p_lo (not needed for pair 0, whose
        // carry-in is zero). One AND layer: [p_hi(j) for all j, p_hi(j) for j >= 1] with
        // [g_lo(j) for all j, p_lo(j) for j >= 1]. An odd last group passes through.
        let pairs = groups / 2;
        let odd = groups % 2 == 1;
        let plane = |k: usize| k * nb..(k + 1) * nb;
        let left = p.bits_linear(&prop, &|w| {
            musket_ring::gather_planes(w, (0..pairs).chain(1..pairs).map(|j| 2 * j + 1), nb)
        });
        let right = p.bits_linear2(&g, &prop, &|gw, pw| {
            let mut v = Vec::with_capacity((2 * pairs - 1) * nb);
            for j in 0..pairs {
                v.extend_from_slice(&gw[plane(2 * j)]);
            }
            for j in 1..pairs {
                v.extend_from_slice(&pw[plane(2 * j)]);
            }
            v
        });
        let tree_len = (2 * pairs - 1) * nb;
        let prod = match &step {
            Some((blk_p, acc_now)) => {
                let both = and_with_riders(
                    p,
                    &p.bits_concat(&[&left, blk_p]),
                    &p.bits_concat(&[&right, acc_now]),
                    &mut riders,
                )?;
                let extra = p.bits_linear(&both, &|w| w[tree_len..].to_vec());
                let blk = &blocks[next_block];
                acc = Some(p.bits_xor(blk.g.as_ref().expect("saved"), &extra));
                next_block += 1;
                both
            }
            None => and_with_riders(p, &left, &right, &mut riders)?,
        };
        drop((left, right));
        let new_g = p.bits_linear2(&g, &prod, &|gw, qw| {
            let mut v = Vec::with_capacity((pairs + odd as usize) * nb);
            for j in 0..pairs {
                let (hi, carry) = (&gw[plane(2 * j + 1)], &qw[plane(j)]);
                v.extend(hi.iter().zip(carry).map(|(x, y)| x ^ y));
            }
            if odd {
                v.extend_from_slice(&gw[plane(groups - 1)]);
            }
            v
        });
        // Group 0's propagate bit is never used (carry-in is zero): any placeholder will do.
        let new_p = p.bits_linear2(&prop, &prod, &|pw, qw| {
            let mut v = Vec::with_capacity((pairs + odd as usize) * nb);
            v.extend_from_slice(&pw[..nb]);
            v.extend_from_slice(&qw[pairs * nb..tree_len]);
            if odd {
                v.extend_from_slice(&pw[plane(groups - 1)]);
            }
            v
        });
        g = new_g;
        prop = new_p;
        groups = pairs + groups % 2;
        level += 1;
    }
    let carry = if carry_at.is_some() { Some(acc.expect("the first block is a tree level")) } else { None };
    // No planes above (every block tested against 2^63): nothing is above; blocks without
    // planes above have nothing there either.
    let high = extras.high.map(|_| rider_result(p, &riders[0], nb));
    let low = (extras.low_blocks > 0).then(|| rider_result(p, &riders[1], nb));
    Ok(TreeOut { top: p.bits_xor(&sum_top, &g), carry, high, low })
}

/// Bit `k` of `x[i] ^ y[i]` for the `n` words, packed (element `i` is bit `i % 64` of word
/// `i / 64`): the plane `k` that [`to_low_planes`] would give of the XOR, without the others.
fn xor_bit_plane(x: &[u64], y: &[u64], n: usize, k: usize) -> Vec<u64> {
    x[..n]
        .chunks(64)
        .zip(y[..n].chunks(64))
        .map(|(xs, ys)| {
            xs.iter().zip(ys).enumerate().fold(0u64, |w, (i, (a, b))| w | (((a ^ b) >> k) & 1) << i)
        })
        .collect()
}

/// `[x < y]` elementwise as arithmetic shares of 0/1 (requires `|x - y| < 2^63`, always true
/// for encoded fixed-point values).
pub fn lt<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    let d = p.sub(x, y)?;
    let m = msb(p, &d)?;
    p.b2a_packed(&m, d.shape())
}

/// `[x >= 0]` elementwise as arithmetic shares of 0/1 (the derivative of ReLU).
pub fn drelu<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = msb(p, x)?;
    let neg = p.b2a_packed(&m, x.shape())?;
    let one = RingTensor::filled(x.shape(), 1);
    let minus = p.neg(&neg)?;
    p.add_public(&minus, &one)
}

/// `max(x, 0)` elementwise: `x - x [x < 0]`, exact (no truncation is needed); the product with
/// the sign bit is [`Protocol::mul_bits`], so 2PC takes one round after the sign circuit.
pub fn relu<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = msb(p, x)?;
    let x_neg = p.mul_bits(x, &m)?;
    p.sub(x, &x_neg)
}

#[cfg(test)]
mod tests;
