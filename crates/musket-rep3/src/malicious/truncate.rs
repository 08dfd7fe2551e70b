//! The checked truncation (see `Protocol::truncate` on [`Rep3Mal`]) in two steps: the mask
//! with what the helper inputs about it, which does not depend on the value and so travels
//! in the same round as the product that makes it (`mul_truncate` and the matrix forms), and
//! the rest. Rounds after the product: the opening of `c` (with the helper's message when
//! there is no product), and one exchange between parties 0 and 1 for the wrap.
//!
//! The code names the parties of one truncation in its *frame*: the helper, which knows the
//! whole mask, inputs what it knows of it and proves its carries, is party 2 of the frame,
//! and the masked value opens to parties 0 and 1. Frames rotate from one truncation to the
//! next (the helper is party 2, then 0, then 1, ...), so that over a model each party sends
//! and proves about as much. Every step is written with the frame's ids and components and
//! with messages to the next or previous party, which a rotation leaves as they are.
//!
//! **The mask and its correction.** The mask is `R = r_a + r_b`, `r_a` frame component 0
//! (drawn by parties 0 and 2 from their key) and `r_b` component 2 (parties 1 and 2), so
//! that neither opener knows it. With `c = x + 2^62 + R` (below `2^63 + R`, as `|x| < 2^62`),
//!
//! `x >> f = (c >> f) - 2^(62-f) - (r_a >> f) - (r_b >> f) - A + 2^(64-f) W` (or one more),
//!
//! where `A = k_f - 2^(64-f) k_w` with `k_f` the carry into bit `f` and `k_w` the carry out
//! of `r_a + r_b`, and `W = msb(R) (1 - msb(c))` the wrap of `x + 2^62 + R`. The helper
//! knows `A` and `M = msb(R)` and inputs them arithmetically, `A` as `a_a + a_b` and
//! `2^(64-f) M` (only its value mod `2^f` matters) as `m_a + m_b`, the `a` halves from the
//! key it shares with party 0 and the `b` halves sent to party 1; it also inputs the carries
//! of `r_a + r_b`, `a_a + a_b` and `m_a + m_b`, XOR-shared between components 0 and 2. It
//! proves the carries itself (`keep_helper_products`: it knows every component), so the bits
//! of the three sums are XOR-linear in what parties 0 and 1 hold, and the bits of `A` and
//! `2^(64-f) M` must be those that the carries of `R` determine: parties 0 and 1 compare their
//! halves of that difference by digest, as they compare the copies of an opening
//! (`check_helper_inputs`). No product is proved for `A` or `M`: until the eighteenth session
//! they were converted from bits (three ring terms from the helper, `-2 u v` for two carry
//! bits and one for the wrap's conversion) after an AND layer for `W`.
//!
//! **The wrap.** `msb(c)` is known to parties 0 and 1 (`n = 1 - msb(c)`), `M` to the helper,
//! so `2^(64-f) W = m_a n + m_b n`: party 0 knows `m_a n`, party 1 `m_b n`, and each sends
//! the other its term less a mask from its key with the helper (one round, `f` bits a value),
//! one checked product each ([`Gate::Cross`]; the helper proves nothing here).

use super::*;

mod fields;
use fields::{fields_len, high_mask, pack_high, unpack_high};

/// One truncation's naming of the parties: frame party `j` is party `(j + shift) % 3`, and
/// frame component `j` component `(j + shift) % 3` (so frame party `j` holds frame components
/// `j` and `j + 1`).
#[derive(Clone, Copy)]
pub(super) struct Frame {
    shift: usize,
}

impl Frame {
    /// The frame whose helper (frame party 2) is party `(shift + 2) % 3`.
    fn new(shift: usize) -> Self {
        Self { shift: shift % 3 }
    }
    /// This party's id in the frame.
    fn me(&self, id: usize) -> usize {
        (id + 3 - self.shift) % 3
    }
}

/// Which half of a helper's value, frame component 0 (`A`) or 2 (`B`), frame party `me` holds
/// on `side` (0: its `cur` component, 1: its `next`); `None` for component 1.
#[derive(Clone, Copy, PartialEq)]
enum Half {
    A,
    B,
}

fn half_at(me: usize, side: usize) -> Option<Half> {
    match (me, side) {
        (0, 0) | (2, 1) => Some(Half::A),
        (1, 1) | (2, 0) => Some(Half::B),
        _ => None,
    }
}

/// A value of the helper's as its halves, frame components 0 (`a`) and 2 (`b`), each empty
/// where this party does not hold it (arithmetic for the mask and the inputs, XOR for their
/// carries).
#[derive(Default)]
struct Halves {
    a: Vec<u64>,
    b: Vec<u64>,
}

impl Halves {
    /// This party's copy of the half it holds on `side`, if any.
    fn side(&self, me: usize, side: usize) -> Option<&[u64]> {
        match half_at(me, side)? {
            Half::A => Some(&self.a),
            Half::B => Some(&self.b),
        }
    }
    /// The half this party holds when it holds one and is not the helper (party 0: `a`,
    /// party 1: `b`).
    fn opener_half(&self, me: usize) -> &[u64] {
        if me == 0 {
            &self.a
        } else {
            &self.b
        }
    }
}

/// The carries of `a + b` per element: bit `i` is the carry into bit `i + 1`, bit 63 the
/// carry out (so the bits of the sum are `a ^ b ^ (carries << 1)`).
fn carries_of(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let (sum, out) = a.overflowing_add(*b);
            ((a ^ b ^ sum) >> 1) | ((out as u64) << 63)
        })
        .collect()
}

/// `A = k_f - 2^(64-f) k_w` as the carries `k` of `r_a + r_b` determine it: bit 0 is `k_f`
/// (bit `f - 1` of `k`), bits `64 - f` and up are `k_w` (bit 63), the rest zero. XOR-linear in
/// `k`, so halves of `k` give halves of it.
fn correction_bits(k: u64, f: usize) -> u64 {
    ((k >> (f - 1)) & 1) | (((k >> 63) & 1).wrapping_neg() & high_mask(f))
}

/// A truncation mask drawn before the value it masks, with the helper's inputs: the halves
/// this party holds of `R`, `A`, `2^(64-f) M` and of the three sums' carries (see the module
/// documentation). What the helper sends party 0 (the carries' component 0) and party 1 (the
/// `b` halves of `A` and `M`) is read in [`Rep3Mal::truncate_masked`] (`due`), after this
/// party's messages of the product in between are out.
pub(super) struct TruncationMask {
    frame: Frame,
    bits: u32,
    r: Halves,
    a: Halves,
    m: Halves,
    kr: Halves,
    ka: Halves,
    km: Halves,
    due: bool,
    /// The helper's message to party 1, sent after the product (it shares a link with the
    /// product's message, so it follows it).
    to_party_1: Vec<u64>,
}

/// Truncation by `bits` works for 1 to 61 bits (the value lies below 2^62).
pub(super) fn check_truncation_bits(bits: u32) -> Result<()> {
    if bits == 0 || bits >= 62 {
        return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
    }
    Ok(())
}

/// A peer's truncation message with bits outside its fields.
fn stray_bits(peer: usize) -> MpcError {
    MpcError::CheatingDetected {
        phase: "a truncation message: bits set outside its fields".into(),
        party: Some(peer),
    }
}

impl Rep3Mal {
    /// Draws a mask for `n` values truncated by `bits` in the next frame, and the helper sends
    /// party 0 the carries' component 0 (component 2 is from the helper's key with party 1):
    /// one message, so no copy can differ from another. What the helper claims is checked in
    /// [`Rep3Mal::truncate_masked`], so it is not trusted.
    pub(super) fn truncation_mask(&mut self, n: usize, bits: u32) -> Result<TruncationMask> {
        let frame = Frame::new(self.truncations);
        self.truncations = (self.truncations + 1) % 3;
        let me = frame.me(self.base.id);
        let f = bits as usize;
        let high = |v: Vec<u64>| -> Vec<u64> { v.into_iter().map(|w| w & high_mask(f)).collect() };
        let mut mask = TruncationMask {
            frame,
            bits,
            r: Halves::default(),
            a: Halves::default(),
            m: Halves::default(),
            kr: Halves::default(),
            ka: Halves::default(),
            km: Halves::default(),
            due: me != 2,
            to_party_1: Vec::new(),
        };
        // Component 0 is party 0's `cur` and party 2's `next`, drawn from their shared key;
        // component 2 party 2's `cur` and party 1's `next`. Each stream's draws come in the
        // same order at both of its holders.
        match me {
            0 => {
                mask.r.a = self.base.draw(Stream::Own, n);
                mask.a.a = self.base.draw(Stream::Own, n);
                mask.m.a = high(self.base.draw(Stream::Own, n));
            }
            1 => {
                mask.r.b = self.base.draw(Stream::Next, n);
                mask.kr.b = self.base.draw(Stream::Next, n);
                mask.ka.b = self.base.draw(Stream::Next, n);
                mask.km.b = high(self.base.draw(Stream::Next, n));
            }
            _ => {
                let (r_a, a_a, m_a) = (
                    self.base.draw(Stream::Next, n),
                    self.base.draw(Stream::Next, n),
                    high(self.base.draw(Stream::Next, n)),
                );
                let r_b = self.base.draw(Stream::Own, n);
                let (kr_b, ka_b, km_b) = (
                    self.base.draw(Stream::Own, n),
                    self.base.draw(Stream::Own, n),
                    high(self.base.draw(Stream::Own, n)),
                );
                let kr = carries_of(&r_a, &r_b);
                let a_b: Vec<u64> =
                    kr.iter().zip(&a_a).map(|(k, a)| correction_bits(*k, f).wrapping_sub(*a)).collect();
                let m_b: Vec<u64> = r_a
                    .iter()
                    .zip(&r_b)
                    .zip(&m_a)
                    .map(|((x, y), m)| ((x.wrapping_add(*y) >> 63) << (64 - f)).wrapping_sub(*m))
                    .collect();
                let (a_b, m_b) = self.tamper_inputs(a_b, m_b, f);
                let (ka, km) = (carries_of(&a_a, &a_b), carries_of(&m_a, &m_b));
                let xor =
                    |a: &[u64], b: &[u64]| -> Vec<u64> { a.iter().zip(b).map(|(a, b)| a ^ b).collect() };
                let (kr_a, ka_a, km_a) = (xor(&kr, &kr_b), xor(&ka, &ka_b), xor(&km, &km_b));
                let mut message = Vec::with_capacity(2 * n + fields_len(n, f));
                message.extend_from_slice(&kr_a);
                message.extend_from_slice(&ka_a);
                message.extend(pack_high(&km_a, f));
                self.tamper(Target::Carries, &mut message);
                // To party 0, the helper's next.
                self.base.net.send_u64s(self.base.next_party(), &message)?;
                let mut to_party_1 = Vec::with_capacity(n + fields_len(n, f));
                to_party_1.extend_from_slice(&a_b);
                to_party_1.extend(pack_high(&m_b, f));
                mask.to_party_1 = to_party_1;
                mask.r = Halves { a: r_a, b: r_b };
                mask.a = Halves { a: a_a, b: a_b };
                mask.m = Halves { a: m_a, b: m_b };
                mask.kr = Halves { a: kr_a, b: kr_b };
                mask.ka = Halves { a: ka_a, b: ka_b };
                mask.km = Halves { a: km_a, b: km_b };
            }
        }
        Ok(mask)
    }

    /// `truncate(product(self), bits)` for a product of `n` values, the mask's carries sent
    /// before the product so that they share its round. No verification runs during the
    /// product (party 0 reads the carries after it, and a verification would read party 2's
    /// proof messages from the same link first); the next one past the pending limit runs it.
    pub(super) fn truncated_product(
        &mut self,
        n: usize,
        bits: u32,
        product: impl FnOnce(&mut Self) -> Result<RShare>,
    ) -> Result<RShare> {
        check_truncation_bits(bits)?;
        let mask = self.truncation_mask(n, bits)?;
        self.hold_verification = true;
        let prod = product(self);
        self.hold_verification = false;
        self.truncate_masked(&prod?, mask)
    }

    /// Truncates `x` with a mask from [`Rep3Mal::truncation_mask`] for its length (see the
    /// module documentation): the opening of `c = x + 2^62 + R` to parties 0 and 1, the
    /// helper's inputs read, their checks recorded, the wrap's exchange, and the result.
    ///
    /// Written with this party's two components (frame components `me` and `me + 1`) as
    /// plain vectors, each value formed in one pass where it is needed.
    pub(super) fn truncate_masked(&mut self, x: &RShare, mask: TruncationMask) -> Result<RShare> {
        let n = x.len();
        let TruncationMask { frame, bits, r, mut a, mut m, mut kr, mut ka, mut km, due, to_party_1 } = mask;
        let me = frame.me(self.base.id);
        if r.a.len().max(r.b.len()) != n {
            return Err(MpcError::Usage(format!(
                "truncation: a mask for {} values, not {n}",
                r.a.len().max(r.b.len())
            )));
        }
        let f = bits as usize;
        let (prev, next) = (self.base.prev(), self.base.next_party());
        if me == 2 {
            // The helper's inputs to party 1, its previous: after the product's message on
            // that link, which party 1 reads first.
            self.base.net.send_u64s(prev, &to_party_1)?;
        }
        // c = x + 2^62 + R, opened to parties 0 and 1: party 1 sends party 0 component 2
        // (party 2 vouches for it), party 0 sends party 1 component 0 (party 2 vouches for it
        // too; party 2, which knows R, sends no copy). The public 2^62 goes into component 0
        // (not the frame's), party 0's cur and party 2's next, as `add_public`.
        let id = self.base.id;
        let masked = |side: usize, words: &[u64]| -> Vec<u64> {
            let public = if (side == 0 && id == 0) || (side == 1 && id == 2) { 1u64 << 62 } else { 0 };
            match r.side(me, side) {
                Some(r) => {
                    words.iter().zip(r).map(|(w, r)| w.wrapping_add(*r).wrapping_add(public)).collect()
                }
                None => words.iter().map(|w| w.wrapping_add(public)).collect(),
            }
        };
        let (xc, xn) = (x.cur.data(), x.next.data());
        // c itself at parties 0 and 1 (party 2 does not learn it).
        let c: Vec<u64> = match me {
            0 | 1 => {
                let (sent, kept) =
                    if me == 0 { (masked(0, xc), masked(1, xn)) } else { (masked(1, xn), masked(0, xc)) };
                let to = if me == 0 { next } else { prev };
                if self.cheat.is_some() {
                    // The test harness's error goes into the message, not into this party's c.
                    let mut tampered = sent.clone();
                    self.tamper(Target::Truncate, &mut tampered);
                    self.base.net.send_u64s(to, &tampered)?;
                } else {
                    self.base.net.send_u64s(to, &sent)?;
                }
                let missing = self.base.net.recv_u64s(to, n)?;
                if me == 0 {
                    self.received.update(&musket_net::u64s_to_bytes(&missing));
                } else {
                    self.received_from_prev.update(&musket_net::u64s_to_bytes(&missing));
                }
                (0..n).map(|i| sent[i].wrapping_add(kept[i]).wrapping_add(missing[i])).collect()
            }
            _ => {
                self.vouched.update(&musket_net::u64s_to_bytes(&masked(0, xc)));
                self.vouched_for_prev.update(&musket_net::u64s_to_bytes(&masked(1, xn)));
                Vec::new()
            }
        };
        // Every party counts both directions, so that all of them compare digests together.
        self.unchecked_openings += 1;
        self.unchecked_from_prev += 1;
        if due && me == 0 {
            // From the helper, party 0's previous: the carries' component 0.
            let words = self.base.net.recv_u64s(prev, 2 * n + fields_len(n, f))?;
            km.a = unpack_high(&words[2 * n..], n, f).ok_or_else(|| stray_bits(prev))?;
            ka.a = words[n..2 * n].to_vec();
            kr.a = words[..n].to_vec();
        }
        if due && me == 1 {
            // From the helper, party 1's next: the b halves of A and 2^(64-f) M.
            let words = self.base.net.recv_u64s(next, n + fields_len(n, f))?;
            m.b = unpack_high(&words[n..], n, f).ok_or_else(|| stray_bits(next))?;
            a.b = words[..n].to_vec();
        }
        // The helper proves the three sums' carries, without a message; then the bits of A
        // and 2^(64-f) M are XOR-linear in the halves, and parties 0 and 1 compare theirs.
        self.keep_helper_products(me, &r, &kr, None)?;
        self.keep_helper_products(me, &a, &ka, None)?;
        self.keep_helper_products(me, &m, &km, Some(f))?;
        self.check_helper_inputs(me, f, [&r, &kr, &a, &ka, &m, &km]);
        // 2^(64-f) W, its three components (frame components me and me + 1 as this party's).
        let (w_cur, w_next) = self.wrap(me, f, &c, &m)?;
        // The result: (c >> f) - 2^(62-f) in component 1 (frame party 0's next, 1's cur),
        // minus r_a >> f and a_a in component 0, r_b >> f and a_b in component 2, plus W's.
        let public = |v: u64| (v >> f).wrapping_sub(1u64 << (62 - f));
        let mut out = [w_cur, w_next];
        for (side, out) in out.iter_mut().enumerate() {
            match half_at(me, side) {
                None => {
                    for (o, v) in out.iter_mut().zip(&c) {
                        *o = o.wrapping_add(public(*v));
                    }
                }
                Some(_) => {
                    let (rs, as_) = (r.side(me, side).unwrap_or(&[]), a.side(me, side).unwrap_or(&[]));
                    for ((o, r), a) in out.iter_mut().zip(rs).zip(as_) {
                        *o = o.wrapping_sub(r >> f).wrapping_sub(*a);
                    }
                }
            }
        }
        let [cur, nxt] = out;
        self.base.share(x.shape(), cur, nxt)
    }

    /// The test harness's deviation of a cheating helper in its inputs `A` and `2^(64-f) M`
    /// (their `b` halves, as one message: the first word is `a_b`'s, the last `m_b`'s), made
    /// before their carries are computed, so that the helper is consistent with itself and
    /// only the comparison of the bits they imply can catch it (`check_helper_inputs`).
    /// `m_b` stays high-aligned: an error below its top `f` bits is no deviation.
    fn tamper_inputs(&mut self, a_b: Vec<u64>, m_b: Vec<u64>, f: usize) -> (Vec<u64>, Vec<u64>) {
        if self.cheat.is_none() {
            return (a_b, m_b);
        }
        let n = a_b.len();
        let mut both = a_b;
        both.extend_from_slice(&m_b);
        self.tamper(Target::MaskInput, &mut both);
        let m_b = both[n..].iter().map(|w| w & high_mask(f)).collect();
        both.truncate(n);
        (both, m_b)
    }

    /// The check that the helper input `A` and `2^(64-f) M` as the mask's carries determine
    /// them: with the carries proved (`keep_helper_products`), the bits of `a_a + a_b` are
    /// `a_a ^ a_b ^ (ka << 1)` and must equal [`correction_bits`] of the carries of `R`, and
    /// the top `f` bits of `m_a + m_b` must be `msb(R) = r_a63 ^ r_b63 ^ (carry into bit 63)`
    /// followed by zeros. Both differences are XOR-linear, so party 0 forms its half from
    /// component 0, party 1 from component 2, and the two halves must be equal: party 0 adds
    /// its half to the digest it sends party 1 (`vouched`), party 1 to the one it compares it
    /// with (`received`), as for an opening's copies, without a message. A false claim by the
    /// helper makes the halves differ; a party that lies about its half can only cause an
    /// abort.
    fn check_helper_inputs(&mut self, me: usize, f: usize, halves: [&Halves; 6]) {
        let [r, kr, a, ka, m, km] = halves.map(|h| h.opener_half(me));
        if me == 2 {
            // Counted at every party, so that all compare digests together.
            self.unchecked_openings += 1;
            return;
        }
        let mut words: Vec<u64> =
            (0..a.len()).map(|i| a[i] ^ (ka[i] << 1) ^ correction_bits(kr[i], f)).collect();
        let sign: Vec<u64> = (0..m.len())
            .map(|i| m[i] ^ (km[i] << 1) ^ (((r[i] >> 63) ^ ((kr[i] >> 62) & 1)) << (64 - f)))
            .collect();
        words.extend(pack_high(&sign, f));
        let bytes = musket_net::u64s_to_bytes(&words);
        if me == 0 {
            self.vouched.update(&bytes);
        } else {
            self.received.update(&bytes);
        }
        self.unchecked_openings += 1;
    }

    /// The components `(cur, next)` of `2^(64-f) W`, `W = msb(R) (1 - msb(c))`, from
    /// `2^(64-f) M = m_a + m_b` (high-aligned halves) and `n = 1 - msb(c)`, which parties 0
    /// and 1 know: party 0 sends party 1 `e0 = m_a n - z0` and party 1 sends party 0
    /// `e1 = m_b n - z2` (`z0`, `z2` from each one's key with the helper, high-aligned, so the
    /// messages are their top `f` bits), and the components are `z0`, `e0 + e1`, `z2`. Each
    /// message is one product, `m_a * n` with `m_a` known to party 0's previous (the helper)
    /// and `n` to its next, `n * m_b` with `n` known to party 1's previous and `m_b` to its
    /// next ([`Gate::Cross`], the helper's statement empty). One round.
    fn wrap(&mut self, me: usize, f: usize, c: &[u64], m: &Halves) -> Result<(Vec<u64>, Vec<u64>)> {
        let n = m.a.len().max(m.b.len());
        let high = |v: Vec<u64>| -> Vec<u64> { v.into_iter().map(|w| w & high_mask(f)).collect() };
        let (prev, next) = (self.base.prev(), self.base.next_party());
        // 1 - msb(c), as a 0/1 word per element, and the term it selects.
        let positive: Vec<u64> = c.iter().map(|v| !v >> 63).collect();
        let term = |half: &[u64], z: &[u64]| -> Vec<u64> {
            (0..n).map(|i| (half[i] & positive[i].wrapping_neg()).wrapping_sub(z[i])).collect()
        };
        // Sends this party's term's fields to `to` and reads the other's.
        let exchange = |me: &mut Self, to: usize, sent: &[u64]| -> Result<Vec<u64>> {
            let mut fields = pack_high(sent, f);
            me.tamper(Target::Convert, &mut fields);
            me.base.net.send_u64s(to, &fields)?;
            let got = me.base.net.recv_u64s(to, fields_len(n, f))?;
            unpack_high(&got, n, f).ok_or_else(|| stray_bits(to))
        };
        let zeros = || vec![0u64; n];
        match me {
            0 => {
                let z0 = high(self.base.draw(Stream::Own, n));
                let e0 = term(&m.a, &z0);
                let e1 = exchange(self, next, &e0)?;
                let z1: Vec<u64> = e0.iter().zip(&e1).map(|(a, b)| a.wrapping_add(*b)).collect();
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 1, a: 1, b: 0 },
                    xc: m.a.clone(),
                    yc: positive.clone(),
                    xn: positive,
                    theirs: e1,
                    yn: Vec::new(),
                    own: zeros(),
                    nxt: Vec::new(),
                })?;
                Ok((z0, z1))
            }
            1 => {
                let z2 = high(self.base.draw(Stream::Next, n));
                let e1 = term(&m.b, &z2);
                let e0 = exchange(self, prev, &e1)?;
                let z1: Vec<u64> = e0.iter().zip(&e1).map(|(a, b)| a.wrapping_add(*b)).collect();
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 1, a: 0, b: 1 },
                    xc: positive.clone(),
                    yc: m.b.clone(),
                    xn: Vec::new(),
                    theirs: zeros(),
                    yn: positive,
                    own: e0,
                    nxt: Vec::new(),
                })?;
                Ok((z1, z2))
            }
            _ => {
                let z0 = high(self.base.draw(Stream::Next, n));
                let z2 = high(self.base.draw(Stream::Own, n));
                self.keep_cross(Record {
                    gate: Gate::Cross { prover: 0, a: 1, b: 1 },
                    xc: Vec::new(),
                    yc: Vec::new(),
                    xn: m.a.clone(),
                    theirs: z0.clone(),
                    yn: m.b.clone(),
                    own: z2.clone(),
                    nxt: Vec::new(),
                })?;
                Ok((z2, z0))
            }
        }
    }

    /// Records the statement `x & y = z` for XOR-shared words whose component 1 is zero in
    /// all three (so party 2 knows every component) for party 2 to prove, with no message: a
    /// [`Gate::OneProver`] record (binary), in party 2's statement only, whose claim shares
    /// are what the verifiers hold of `z`, not a received product. Party 2's term
    /// `(x_2 ^ x_0) (y_2 ^ y_0) = x & y` must equal `z_0 ^ z_2`, its verifier A (party 1)
    /// holding `z_2` and B (party 0) `z_0` (as `z_0 ^ x_0 y_0` in `own`, to which a product's
    /// B adds `x_0 y_0`): true exactly when `x & y = z`, bit by bit. Here `x = a ^ carry_in`,
    /// `y = b ^ carry_in` and `z = carries ^ carry_in`, with `carry_in = carries << 1`, for a
    /// sum `a + b` of halves (`v`) and its claimed carries (`carries`): by induction from the
    /// carry into bit 0, zero, every carry is then right. With `fields` (`f`), the values are
    /// high-aligned and only their top `f` bits are proved, `64 / f` values to a word (the
    /// bits below are zero in every half, and so is the carry into the lowest of the `f`).
    /// `me` is this party's id in the truncation's frame (the helper is frame party 2).
    fn keep_helper_products(
        &mut self,
        me: usize,
        v: &Halves,
        carries: &Halves,
        fields: Option<usize>,
    ) -> Result<()> {
        let n = v.a.len().max(v.b.len());
        // x, y and z on `side` for elements `range`: what this party holds of each.
        let operands = |side: usize, range: Range<usize>| -> [Vec<u64>; 3] {
            let len = range.len();
            let Some(half) = half_at(me, side) else { return [vec![0; len], vec![0; len], vec![0; len]] };
            let k = &carries.side(me, side).expect("the carries' half on this side")[range.clone()];
            let own = &v.side(me, side).expect("the value's half on this side")[range];
            let shifted = || k.iter().map(|k| k << 1);
            let with_own = || own.iter().zip(k).map(|(o, k)| o ^ (k << 1)).collect::<Vec<u64>>();
            let (x, y) = match half {
                Half::A => (with_own(), shifted().collect()),
                Half::B => (shifted().collect(), with_own()),
            };
            [x, y, k.iter().map(|k| k ^ (k << 1)).collect()]
        };
        let per_word = fields.map_or(1, |f| 64 / f);
        let piece = (BATCH_TERMS_BINARY / 128) * per_word;
        for start in (0..n).step_by(piece.max(1)) {
            let range = start..(start + piece).min(n);
            let [mut side0, mut side1] = [operands(0, range.clone()), operands(1, range.clone())];
            if let Some(f) = fields {
                for v in side0.iter_mut().chain(side1.iter_mut()) {
                    *v = pack_high(v, f);
                }
            }
            let [xc, yc, zc] = side0;
            let [xn, yn, zn] = side1;
            let words = xc.len();
            // This party's role in party 2's statement, the only one the gates go into, and
            // its claim shares there: as A (`theirs`, party 1) and as B (`own`, party 0).
            let (role, theirs, own) = match me {
                0 => {
                    let own = zc.iter().zip(xc.iter().zip(&yc)).map(|(z, (x, y))| z ^ (x & y)).collect();
                    (Role::B, vec![0; words], own)
                }
                1 => (Role::A, zn, vec![0; words]),
                _ => (Role::Prover, vec![0; words], vec![0; words]),
            };
            let rec =
                Record { gate: Gate::OneProver { role }, xc, xn, yc, yn, theirs, own, nxt: vec![0; words] };
            self.pending_words += rec.words();
            self.binary.push(rec);
        }
        if self.pending_words > self.pending_limit && !self.hold_verification {
            self.verify_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_bits_are_the_carries_arithmetic() {
        // A = k_f - 2^(64-f) k_w, for each of the four pairs of carry bits and several f.
        for f in [1usize, 2, 16, 40, 61] {
            for (kf, kw) in [(0u64, 0u64), (0, 1), (1, 0), (1, 1)] {
                let k = (kf << (f - 1)) | (kw << 63);
                let want = kf.wrapping_sub(kw << (64 - f));
                assert_eq!(correction_bits(k, f), want, "f {f} k_f {kf} k_w {kw}");
            }
        }
    }

    #[test]
    fn the_sum_of_halves_has_the_bits_the_carries_say() {
        let (a, b) = ([u64::MAX, 1 << 63, 12345], [1u64, 1 << 63, u64::MAX - 5]);
        for ((x, y), k) in a.iter().zip(&b).zip(carries_of(&a, &b)) {
            assert_eq!(x ^ y ^ (k << 1), x.wrapping_add(*y));
            assert_eq!(k >> 63, u64::from(x.checked_add(*y).is_none()));
        }
    }
}
