//! The carry tree behind every comparison circuit, as a state machine apart from its AND
//! layers: [`CarryTree::want`] gives the operands of its next layer and [`CarryTree::take`]
//! its product, so that one tree runs alone ([`run`]) or several run in lockstep, one AND
//! layer (one round) for all of them ([`run_lockstep`]: the range check's windows of several
//! sizes).
//!
//! A tree computes bit `width - 1` of `a + b` from the generate/propagate bits of the low
//! `width - 1` positions (one AND layer), combined pairwise (`ceil(log2(width - 1))` layers),
//! and, where asked ([`Extras`]): the carry into a lower bit, taken from the same tree; the OR
//! of the bits above (`width..=63`); the OR of the bits below (`0..width - 1`). The two ORs
//! need no carries of their own: bits `j` in a range are all zero, given the carry into the
//! range equals its lowest `p_j = a_j ^ b_j`, exactly when every further `p_j` equals
//! `a_(j-1) | b_(j-1)` (the carry into `j` is then that OR, by induction). So each is an OR of
//! planes `p_j ^ a_(j-1) ^ b_(j-1) ^ (a_(j-1) & b_(j-1))`, whose ANDs go into the generate
//! layer (below: they are the generate bits themselves) and whose OR tree rides along with the
//! carry tree's layers.

use super::{to_low_planes, to_planes, xor_bit_plane};
use crate::protocol::Protocol;
use crate::Result;

/// What a tree computes besides bit `width - 1` of the sum.
#[derive(Clone, Copy, Default)]
pub(super) struct Extras {
    /// The carry into this bit (1 to `width - 2`), see `sum_bit_and_carry`.
    pub(super) carry_at: Option<usize>,
    /// The OR of bits `width..=63` of the sum.
    pub(super) high: bool,
    /// The OR of bits `0..width - 1` of the sum.
    pub(super) low: bool,
    /// `b` is the second operand [`Protocol::a2b_operands`] returned, unchanged, so the
    /// generate layer may take [`Protocol::bits_and_with_a2b_planes`].
    pub(super) b_from_a2b: bool,
    /// `a` and `b` are given as their low `width` bit planes (`width` times `ceil(n / 64)`
    /// words, [`Protocol::a2b_operand_planes`]), not as a word per element. Not with `high`.
    pub(super) operand_planes: bool,
}

/// A tree's outputs: bit `width - 1` of the sum and what [`Extras`] asked for, each packed
/// (element `i` is bit `i % 64` of word `i / 64`).
pub(super) struct TreeOut<B> {
    pub(super) top: B,
    pub(super) carry: Option<B>,
    pub(super) high: Option<B>,
    pub(super) low: Option<B>,
}

/// The generate/propagate bits of one aligned group, saved while the tree passes its level.
struct Block<B> {
    level: usize,
    group: usize,
    g: Option<B>,
    prop: Option<B>,
}

/// Planes to be OR-reduced to one, a pair of halves per AND layer of the tree they ride along
/// with.
struct OrRider<B> {
    planes: B,
    count: usize,
}

/// What [`CarryTree::take`] does with the product of the operands [`CarryTree::want`] gave.
enum Pending {
    /// The generate bits, then the ANDs of the bits above (`high_len` words).
    Generate,
    /// A level of the tree: `pairs` pairs, an odd group passing through, `tree_len` words of
    /// the tree's own products, then (`step`) one combination step of the carry.
    Level { pairs: usize, odd: bool, tree_len: usize, step: bool },
    /// A combination step of the carry after the tree.
    Combo,
    /// Only the riders' reductions.
    Riders,
}

enum Stage {
    Generate,
    Levels,
    Combos,
    Riders,
    Done,
}

/// One carry tree (see the module documentation).
pub(super) struct CarryTree<B> {
    nb: usize,
    width: usize,
    extras: Extras,
    /// `[0, carry_at)` as aligned groups, largest first, and the generate bit of the groups
    /// combined so far.
    blocks: Vec<Block<B>>,
    acc: Option<B>,
    next_block: usize,
    sum_top: B,
    /// The generate layer's operands, until it runs.
    generate: Option<(B, B)>,
    /// `p_j ^ a_(j-1) ^ b_(j-1)` for the bits above, until their ANDs arrive.
    high_linear: Option<B>,
    g: Option<B>,
    prop: B,
    high: Option<OrRider<B>>,
    low: Option<OrRider<B>>,
    groups: usize,
    level: usize,
    stage: Stage,
    pending: Option<(usize, Pending)>,
}

impl<B: Clone> CarryTree<B> {
    /// A tree over two XOR-shared operands of one word per element, `n` elements; `width` 2 to
    /// 64.
    pub(super) fn new<P: Protocol<Bits = B>>(
        p: &P,
        a: &B,
        b: &B,
        n: usize,
        width: usize,
        extras: Extras,
    ) -> Result<Self> {
        let nb = n.div_ceil(64);
        let operand_len = if extras.operand_planes { width * nb } else { n };
        if !(2..=64).contains(&width)
            || p.bits_len(a) != operand_len
            || p.bits_len(b) != operand_len
            || (extras.operand_planes && extras.high)
        {
            return Err(crate::MpcError::Usage(format!("sum_bit: width {width} of {n} words")));
        }
        let mut blocks = Vec::new();
        if let Some(c) = extras.carry_at {
            let mut start = 0;
            for level in (0..usize::BITS as usize).rev() {
                if (c >> level) & 1 == 1 {
                    blocks.push(Block { level, group: start >> level, g: None, prop: None });
                    start += 1 << level;
                }
            }
        }
        // The low `width - 1` planes feed the tree; bit `width - 1` only the final XOR.
        let top = width - 1;
        let sum_top = if extras.operand_planes {
            p.bits_linear2(a, b, &|x, y| (top * nb..width * nb).map(|i| x[i] ^ y[i]).collect())
        } else {
            p.bits_linear2(a, b, &|x, y| xor_bit_plane(x, y, n, top))
        };
        let (generate, high_linear, prop) = if extras.operand_planes {
            let a_low = p.bits_linear(a, &|w| w[..top * nb].to_vec());
            let b_low = p.bits_linear(b, &|w| w[..top * nb].to_vec());
            let prop = p.bits_xor(&a_low, &b_low);
            (Some((a_low, b_low)), None, prop)
        } else if extras.high {
            let a_all = p.bits_linear(a, &|w| to_planes(w, n));
            let b_all = p.bits_linear(b, &|w| to_planes(w, n));
            let x = p.bits_linear(&a_all, &|w| w[..63 * nb].to_vec());
            let y = p.bits_linear(&b_all, &|w| w[..63 * nb].to_vec());
            let prop = p.bits_linear2(&a_all, &b_all, &|x, y| (0..top * nb).map(|i| x[i] ^ y[i]).collect());
            let linear = p.bits_linear2(&a_all, &b_all, &|x, y| {
                (width * nb..64 * nb).map(|i| x[i] ^ y[i] ^ x[i - nb] ^ y[i - nb]).collect()
            });
            (Some((x, y)), Some(linear), prop)
        } else {
            let a_low = p.bits_linear(a, &|w| to_low_planes(w, n, top));
            let b_low = p.bits_linear(b, &|w| to_low_planes(w, n, top));
            let prop = p.bits_xor(&a_low, &b_low);
            (Some((a_low, b_low)), None, prop)
        };
        Ok(Self {
            nb,
            width,
            extras,
            blocks,
            acc: None,
            next_block: 1,
            sum_top,
            generate,
            high_linear,
            g: None,
            prop,
            high: None,
            low: None,
            groups: width - 1,
            level: 0,
            stage: Stage::Generate,
            pending: None,
        })
    }

    fn riders(&mut self) -> impl Iterator<Item = &mut OrRider<B>> {
        self.high.iter_mut().chain(self.low.iter_mut()).filter(|r| r.count > 1)
    }

    /// The operands of the next AND layer (the riders' next reductions appended), or `None`
    /// when the tree is done.
    pub(super) fn want<P: Protocol<Bits = B>>(&mut self, p: &P) -> Option<(B, B)> {
        let nb = self.nb;
        let (left, right, pending) = match self.stage {
            Stage::Generate => {
                let (x, y) = self.generate.take().expect("the generate layer runs once");
                self.stage = Stage::Levels;
                (x, y, Pending::Generate)
            }
            Stage::Levels => {
                let (level, g, prop) = (self.level, self.g.as_ref().expect("generated"), &self.prop);
                for blk in self.blocks.iter_mut().filter(|blk| blk.level == level) {
                    let at = blk.group * nb;
                    blk.g = Some(p.bits_linear(g, &|w| w[at..at + nb].to_vec()));
                    if blk.group > 0 {
                        blk.prop = Some(p.bits_linear(prop, &|w| w[at..at + nb].to_vec()));
                    }
                }
                if let Some(first) = self.blocks.first() {
                    if first.level == level {
                        self.acc = first.g.clone();
                    }
                }
                if self.groups <= 1 {
                    // The tree is done: any remaining combinations take their own AND layers.
                    self.stage = Stage::Combos;
                    return self.want(p);
                }
                // Pair j joins groups 2j (low) and 2j+1 (high): its generate bit is
                // g_hi ^ (p_hi & g_lo), its propagate bit p_hi & p_lo (not needed for pair 0,
                // whose carry-in is zero). One AND layer: [p_hi(j) for all j, p_hi(j) for j >= 1]
                // with [g_lo(j) for all j, p_lo(j) for j >= 1]. An odd last group passes through.
                let pairs = self.groups / 2;
                let odd = self.groups % 2 == 1;
                let plane = |k: usize| k * nb..(k + 1) * nb;
                let left = p.bits_linear(prop, &|w| {
                    musket_ring::gather_planes(w, (0..pairs).chain(1..pairs).map(|j| 2 * j + 1), nb)
                });
                let right = p.bits_linear2(g, prop, &|gw, pw| {
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
                // One combination step of the carry rides along with this layer, if one is due.
                match (&self.acc, self.blocks.get(self.next_block)) {
                    (Some(acc), Some(blk)) => {
                        let left = p.bits_concat(&[&left, blk.prop.as_ref().expect("saved")]);
                        let right = p.bits_concat(&[&right, acc]);
                        (left, right, Pending::Level { pairs, odd, tree_len, step: true })
                    }
                    _ => (left, right, Pending::Level { pairs, odd, tree_len, step: false }),
                }
            }
            Stage::Combos => match (&self.acc, self.blocks.get(self.next_block)) {
                (Some(acc), Some(blk)) => (blk.prop.clone().expect("saved"), acc.clone(), Pending::Combo),
                _ => {
                    self.stage = Stage::Riders;
                    return self.want(p);
                }
            },
            Stage::Riders => {
                if self.riders().next().is_none() {
                    self.stage = Stage::Done;
                    return None;
                }
                let empty = p.bits_linear(&self.prop, &|_| Vec::new());
                (empty.clone(), empty, Pending::Riders)
            }
            Stage::Done => return None,
        };
        let main = p.bits_len(&left);
        let (mut xs, mut ys) = (vec![left], vec![right]);
        for r in self.riders() {
            let half = r.count / 2 * nb;
            xs.push(p.bits_linear(&r.planes, &|w| w[..half].to_vec()));
            ys.push(p.bits_linear(&r.planes, &|w| w[half..2 * half].to_vec()));
        }
        self.pending = Some((main, pending));
        if xs.len() == 1 {
            let (x, y) = (xs.pop().expect("one"), ys.pop().expect("one"));
            return Some((x, y));
        }
        Some((p.bits_concat(&xs.iter().collect::<Vec<_>>()), p.bits_concat(&ys.iter().collect::<Vec<_>>())))
    }

    /// How many leading words of the right operand [`Self::want`] gave last are bit planes of
    /// the second operand of `a2b_operands` (the generate layer's, when the tree was told so
    /// by [`Extras::b_from_a2b`]), or `None`.
    fn a2b_planes(&self) -> Option<usize> {
        match &self.pending {
            Some((main, Pending::Generate)) if self.extras.b_from_a2b => Some(*main),
            _ => None,
        }
    }

    /// Takes the product of the operands [`Self::want`] gave last.
    pub(super) fn take<P: Protocol<Bits = B>>(&mut self, p: &P, both: B) {
        let nb = self.nb;
        let (main, pending) = self.pending.take().expect("want before take");
        // The riders' reductions: OR as x ^ y ^ (x & y), an odd last plane passing through.
        let mut at = main;
        for r in self.riders() {
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
        let top = self.width - 1;
        match pending {
            Pending::Generate => {
                let low_len = top * nb;
                let g = match self.high_linear.take() {
                    // Without the bits above the product is the generate bits as they are (the
                    // sign circuits' path): no copy.
                    None => both,
                    Some(linear) => {
                        // The ANDs of planes `width - 1..=62` are those of the bits above's
                        // ORs; planes `top..63` of the product start at `low_len`.
                        let planes = p.bits_linear2(&linear, &both, &|l, bw| {
                            l.iter().zip(&bw[low_len..low_len + l.len()]).map(|(x, y)| x ^ y).collect()
                        });
                        self.high = Some(OrRider { planes, count: 64 - self.width });
                        p.bits_linear(&both, &|w| w[..low_len].to_vec())
                    }
                };
                if self.extras.low {
                    // Below, with no carry in: p_0, then p_t ^ p_(t-1) ^ g_(t-1).
                    let planes = p.bits_linear2(&self.prop, &g, &|pw, gw| {
                        (0..low_len)
                            .map(|i| if i < nb { pw[i] } else { pw[i] ^ pw[i - nb] ^ gw[i - nb] })
                            .collect()
                    });
                    self.low = Some(OrRider { planes, count: top });
                }
                self.g = Some(g);
            }
            Pending::Level { pairs, odd, tree_len, step } => {
                if step {
                    let extra = p.bits_linear(&both, &|w| w[tree_len..tree_len + nb].to_vec());
                    let blk = &self.blocks[self.next_block];
                    self.acc = Some(p.bits_xor(blk.g.as_ref().expect("saved"), &extra));
                    self.next_block += 1;
                }
                let groups = self.groups;
                let plane = |k: usize| k * nb..(k + 1) * nb;
                let g = self.g.as_ref().expect("generated");
                let new_g = p.bits_linear2(g, &both, &|gw, qw| {
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
                let new_p = p.bits_linear2(&self.prop, &both, &|pw, qw| {
                    let mut v = Vec::with_capacity((pairs + odd as usize) * nb);
                    v.extend_from_slice(&pw[..nb]);
                    v.extend_from_slice(&qw[pairs * nb..tree_len]);
                    if odd {
                        v.extend_from_slice(&pw[plane(groups - 1)]);
                    }
                    v
                });
                self.g = Some(new_g);
                self.prop = new_p;
                self.groups = pairs + odd as usize;
                self.level += 1;
            }
            Pending::Combo => {
                let prod = if p.bits_len(&both) == main {
                    both
                } else {
                    p.bits_linear(&both, &|w| w[..main].to_vec())
                };
                let blk = &self.blocks[self.next_block];
                self.acc = Some(p.bits_xor(blk.g.as_ref().expect("saved"), &prod));
                self.next_block += 1;
            }
            Pending::Riders => {}
        }
    }

    /// The outputs, once [`Self::want`] has returned `None`.
    pub(super) fn finish<P: Protocol<Bits = B>>(self, p: &P) -> TreeOut<B> {
        let nb = self.nb;
        let one_plane = |r: Option<OrRider<B>>| {
            r.map(|r| {
                // No planes (nothing above bit 63): zero.
                let kept = if r.count == 0 { 0 } else { nb };
                p.bits_linear(&r.planes, &|w| {
                    let mut v = w[..kept].to_vec();
                    v.resize(nb, 0);
                    v
                })
            })
        };
        let carry = if self.extras.carry_at.is_some() {
            Some(self.acc.expect("the first block is a tree level"))
        } else {
            None
        };
        TreeOut {
            top: p.bits_xor(&self.sum_top, self.g.as_ref().expect("generated")),
            carry,
            high: one_plane(self.high),
            low: one_plane(self.low),
        }
    }
}

/// Runs one tree.
pub(super) fn run<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    width: usize,
    extras: Extras,
) -> Result<TreeOut<P::Bits>> {
    let mut tree = CarryTree::new(p, a, b, n, width, extras)?;
    while let Some((x, y)) = tree.want(p) {
        let prod = match tree.a2b_planes() {
            Some(len) => p.bits_and_with_a2b_planes(&x, &y, n, len)?,
            None => p.bits_and(&x, &y)?,
        };
        tree.take(p, prod);
    }
    Ok(tree.finish(p))
}

/// Runs several trees in lockstep: each AND layer holds every unfinished tree's operands, so
/// they take the rounds of the deepest.
pub(super) fn run_lockstep<P: Protocol>(
    p: &mut P,
    mut trees: Vec<CarryTree<P::Bits>>,
) -> Result<Vec<TreeOut<P::Bits>>> {
    loop {
        let mut wants = Vec::new();
        for (i, tree) in trees.iter_mut().enumerate() {
            if let Some((x, y)) = tree.want(p) {
                wants.push((i, x, y));
            }
        }
        match wants.len() {
            0 => break,
            1 => {
                let (i, x, y) = wants.pop().expect("one");
                let prod = p.bits_and(&x, &y)?;
                trees[i].take(p, prod);
            }
            _ => {
                let xs: Vec<&P::Bits> = wants.iter().map(|(_, x, _)| x).collect();
                let ys: Vec<&P::Bits> = wants.iter().map(|(_, _, y)| y).collect();
                let both = p.bits_and(&p.bits_concat(&xs), &p.bits_concat(&ys))?;
                let mut at = 0;
                for (i, x, _) in &wants {
                    let len = p.bits_len(x);
                    let part = p.bits_linear(&both, &|w| w[at..at + len].to_vec());
                    trees[*i].take(p, part);
                    at += len;
                }
            }
        }
    }
    Ok(trees.into_iter().map(|t| t.finish(p)).collect())
}
