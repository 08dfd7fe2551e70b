//! Malicious-secure arithmetic for two parties and an honest dealer: SPDZ2k's MAC'd shares
//! (Cramer, Damgård, Escudero, Scholl, Xing, CRYPTO 2018) with the dealer's material.
//!
//! Threat model: either compute party may deviate arbitrarily; the dealer is honest (CrypTen's
//! trusted third party, with the MACs CrypTen's issue #25 asks for). A share of `x` is a pair
//! of u128 tensors, the party's share of the value modulo 2^128 and its share of `alpha x`,
//! where the key `alpha = alpha_0 + alpha_1` (each share drawn below 2^64 from the party's
//! dealer seed) is known to the dealer alone. The value modulo 2^64 is the secret (k = 64);
//! the high half is s = 64 bits of headroom, so that an error added to an opened value passes
//! the MAC check with probability at most `2^-(s - log2(s + 1))`, about 2^-57 (SPDZ2k's
//! bound; the coefficients are 64-bit, drawn after the openings they weigh).
//!
//! Every opening is recorded; [`Spdz2k::check`] verifies all recorded openings at once: each
//! party sends its share of `sum_j chi_j (m_j - alpha o_j)` to the dealer, which answers
//! whether the shares sum to zero. [`Spdz2k::reveal`] and [`Spdz2k::reveal_to`] check before
//! they open the value (a cheater cannot learn a wrong output) and again after (the value
//! itself), and mask the value's high half, which earlier computation may have made depend on
//! secrets, with a MAC'd random `2^64 t`.
//!
//! The arithmetic is here: input, described linear maps (applied modulo 2^128 to value and
//! MAC alike), public additions, Beaver products (elementwise, matrix, batched), truncation,
//! reveal and reveal to one party; the bits and the conversions are in [`bits`], the
//! `Protocol` implementation in `protocol_impl`.

mod bits;
mod protocol_impl;

pub use bits::MacBits;

use crate::correlations::{images_map, narrow, wide, Material};
use crate::dealer::Request;
use crate::party::{join, seed_from};
use crate::DEALER;
use musket_core::{MpcError, Prg, Result, Share};
use musket_net::{CommStats, Net};
use musket_ring::{matmul_wide, Im2col, LinearOp, LinearOp2, RingTensor, WideTensor, Word};
use std::borrow::Cow;

/// Recorded openings are checked once they hold this many words (256 MiB), before the next
/// reveal would: see [`Spdz2k::check`].
const PENDING_WORDS_LIMIT: usize = 1 << 25;

/// One party's MAC'd share of a tensor: its shares of the value and of `alpha` times it,
/// both modulo 2^128.
#[derive(Clone, PartialEq, Eq)]
pub struct MacShare {
    /// The share of the value.
    pub value: WideTensor,
    /// The share of `alpha` times the value.
    pub mac: WideTensor,
}

impl std::fmt::Debug for MacShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacShare{:?}", self.value.shape())
    }
}

/// A compute party (0 or 1) of the malicious 2PC protocol with an honest dealer. An
/// operation that fails does not tell the peers: the caller aborts ([`Spdz2k::abort`]), as a
/// session does for every back end.
pub struct Spdz2k {
    net: Net,
    id: usize,
    dealer_prg: Prg,
    /// A seed shared with the other party (party 0 chose it): the zero sharings that make an
    /// input's shares fresh randomness. A cheater knows it, and learns nothing from it: it
    /// only splits a value between the owner, who knows the value, and the other party.
    pair_prg: Prg,
    /// This party's share of the arithmetic MAC key.
    alpha: u128,
    /// This party's share of the binary MAC key (GF(2^64)).
    delta: u64,
    /// What the next check needs of each arithmetic opening since the last: this party's
    /// share of every opened value's MAC discrepancy `m - alpha_p o` (zero in sum when the
    /// value carries its MAC), one vector an opening. Kept instead of the opened values and
    /// MAC shares: half the words, and no vector grown by copying over a model.
    opened_discrepancies: Vec<Vec<u128>>,
    /// The binary openings since the last check: the opened words and this party's MAC planes
    /// of them (64 planes of the words' length), one entry an opening.
    opened_bits: Vec<(Vec<u64>, Vec<u64>)>,
    /// Words of recorded openings at which the check runs early ([`PENDING_WORDS_LIMIT`]).
    pending_limit: usize,
    /// Test harness: added to this party's share in its next opening.
    /// (messages of shares still to send unchanged, the change to the next one's first word).
    #[cfg(feature = "cheat")]
    cheat: Option<Cheat>,
    /// Test harness: messages of shares sent so far (each part of a combined opening counts).
    #[cfg(feature = "cheat")]
    cheat_points: usize,
}

impl std::fmt::Debug for Spdz2k {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spdz2k").field("id", &self.id).finish()
    }
}

/// Test harness: which message of shares to change (after `skip` others), by how much, and
/// which of its shares.
#[cfg(feature = "cheat")]
#[derive(Debug, Clone, Copy)]
struct Cheat {
    skip: usize,
    delta: u128,
    word: usize,
}

fn cheating(phase: &str) -> MpcError {
    MpcError::CheatingDetected { phase: phase.into(), party: None }
}

impl Spdz2k {
    /// Joins the computation: receives the dealer's seed and draws this party's key share.
    /// `net` must connect parties 0, 1 and the dealer (party 2, running
    /// [`crate::run_dealer_malicious`]).
    pub fn new(mut net: Net) -> Result<Self> {
        let (id, seed, pair_seed) = join(&mut net)?;
        let mut party = Self {
            net,
            id,
            dealer_prg: Prg::from_seed(seed),
            pair_prg: Prg::from_seed(pair_seed),
            alpha: 0,
            opened_discrepancies: Vec::new(),
            delta: 0,
            opened_bits: Vec::new(),
            pending_limit: PENDING_WORDS_LIMIT,
            #[cfg(feature = "cheat")]
            cheat: None,
            #[cfg(feature = "cheat")]
            cheat_points: 0,
        };
        let key = party.draw(Request::MacKey)?;
        party.alpha = u128::from(key.part(0)[0]);
        party.delta = key.part(0)[1];
        Ok(party)
    }

    /// Checks the recorded openings whenever they hold more than `words` words (both parties
    /// must use the same limit), instead of [`PENDING_WORDS_LIMIT`]: less memory, more
    /// exchanges with the dealer.
    pub fn with_pending_limit(mut self, words: usize) -> Self {
        self.pending_limit = words;
        self
    }

    /// This party's id (0 or 1).
    pub fn party_id(&self) -> usize {
        self.id
    }

    /// Communication counts so far.
    pub fn stats(&self) -> CommStats {
        self.net.stats().clone()
    }

    /// Test harness: adds `delta` to the first word of the next shares this party sends (an
    /// input's masked value, an opening of masked operands, a masked value or binary words;
    /// XORed into a binary word).
    #[cfg(feature = "cheat")]
    pub fn cheat_on_next_opening(&mut self, delta: u128) {
        self.cheat_on_opening(0, delta);
    }

    /// Test harness: as [`Spdz2k::cheat_on_next_opening`], after `skip` unchanged messages.
    #[cfg(feature = "cheat")]
    pub fn cheat_on_opening(&mut self, skip: usize, delta: u128) {
        self.cheat_on_opening_at(skip, delta, 0);
    }

    /// Test harness: as [`Spdz2k::cheat_on_opening`], changing the message's share `word`
    /// (the last one where the message has fewer) instead of its first.
    #[cfg(feature = "cheat")]
    pub fn cheat_on_opening_at(&mut self, skip: usize, delta: u128, word: usize) {
        self.cheat = Some(Cheat { skip, delta, word });
    }

    /// Test harness: how many messages of shares this party has sent (the count that
    /// [`Spdz2k::cheat_on_opening`]'s `skip` runs over).
    #[cfg(feature = "cheat")]
    pub fn cheat_points(&self) -> usize {
        self.cheat_points
    }

    /// Test harness: the change to make to the message of `len` shares about to be sent, if it
    /// is the one: the amount and the share it goes to.
    #[cfg(feature = "cheat")]
    fn cheat_now(&mut self, len: usize) -> Option<(u128, usize)> {
        self.cheat_points += 1;
        match self.cheat {
            Some(Cheat { skip: 0, delta, word }) => {
                self.cheat = None;
                Some((delta, word.min(len.saturating_sub(1))))
            }
            Some(Cheat { skip, delta, word }) => {
                self.cheat = Some(Cheat { skip: skip - 1, delta, word });
                None
            }
            None => None,
        }
    }

    fn other(&self) -> usize {
        1 - self.id
    }

    /// Asks the dealer for `req` (both parties send it; the dealer checks that they agree)
    /// and draws this party's random parts of it.
    fn draw(&mut self, req: Request) -> Result<Material> {
        req.check().map_err(|e| MpcError::Usage(format!("operation too large for the dealer: {e}")))?;
        self.net.send_bytes(DEALER, &req.encode())?;
        let prg = &mut self.dealer_prg;
        Ok(Material::draw(&req.layout(), |n| prg.words(n)))
    }

    /// This party's words of the request's correction (its shares of the correlated values
    /// and their MACs, in the layout's order): party 0 draws them, party 1 receives them from
    /// the dealer.
    fn correction_words(&mut self, req: Request) -> Result<Vec<u64>> {
        let n = req.layout().correction;
        Ok(if self.id == 0 { self.dealer_prg.words(n) } else { self.net.recv_u64s(DEALER, n)? })
    }

    /// [`Spdz2k::correction_words`] of an arithmetic kind, as u128s.
    fn correction(&mut self, req: Request) -> Result<Vec<u128>> {
        Ok(wide(&self.correction_words(req)?))
    }

    /// Opens `shares` (this party's, with its MAC shares `macs` of them) to both parties:
    /// sends its shares, receives the other's, records the opened values and MAC shares for
    /// the next check, and returns the opened values.
    fn open(&mut self, shares: &[u128], macs: &[u128]) -> Result<Vec<u128>> {
        Ok(self.open_together(&[], Vec::new(), shares, macs)?.1)
    }

    /// Opens binary words (this party's share `words`, its MAC planes `planes`) and values
    /// (`shares`, MAC shares `macs`) to both parties in one message, records both for the next
    /// check, and returns the opened words and values. Either part may be empty.
    pub(super) fn open_together(
        &mut self,
        words: &[u64],
        planes: Vec<u64>,
        shares: &[u128],
        macs: &[u128],
    ) -> Result<(Vec<u64>, Vec<u128>)> {
        let mut message = Vec::with_capacity(words.len() + 2 * shares.len());
        message.extend_from_slice(words);
        message.extend(shares.iter().flat_map(|&v| [v as u64, (v >> 64) as u64]));
        // Test harness: each part counts as an opening of its own (the binary part first).
        #[cfg(feature = "cheat")]
        {
            if !words.is_empty() {
                if let Some((delta, at)) = self.cheat_now(words.len()) {
                    message[at] ^= delta as u64;
                }
            }
            if !shares.is_empty() {
                if let Some((delta, i)) = self.cheat_now(shares.len()) {
                    let at = words.len() + 2 * i;
                    let first =
                        (u128::from(message[at]) | (u128::from(message[at + 1]) << 64)).wrapping_add(delta);
                    message[at] = first as u64;
                    message[at + 1] = (first >> 64) as u64;
                }
            }
        }
        let other = self.other();
        self.net.send_u64s(other, &message)?;
        let theirs = self.net.recv_u64s(other, message.len())?;
        let (sent_words, sent_values) = message.split_at(words.len());
        let (their_words, their_values) = theirs.split_at(words.len());
        let opened_words: Vec<u64> = sent_words.iter().zip(their_words).map(|(a, b)| a ^ b).collect();
        let opened: Vec<u128> =
            wide(sent_values).iter().zip(wide(their_values)).map(|(a, b)| a.wrapping_add(b)).collect();
        if !words.is_empty() {
            self.opened_bits.push((opened_words.clone(), planes));
        }
        if !shares.is_empty() {
            let alpha = self.alpha;
            self.opened_discrepancies
                .push(opened.iter().zip(macs).map(|(o, m)| m.wrapping_sub(alpha.wrapping_mul(*o))).collect());
        }
        self.check_if_pending_is_large()?;
        Ok((opened_words, opened))
    }

    /// Runs the check early once the recorded openings hold [`PENDING_WORDS_LIMIT`] words, so
    /// that a large model's memory does not grow with its depth (a binary opening keeps 64
    /// plane words a word). Both parties record the same openings, so they check at the same
    /// point; the cost is one exchange with the dealer.
    fn check_if_pending_is_large(&mut self) -> Result<()> {
        let binary: usize = self.opened_bits.iter().map(|(w, p)| w.len() + p.len()).sum();
        let arithmetic: usize = self.opened_discrepancies.iter().map(|d| 2 * d.len()).sum();
        if arithmetic + binary > self.pending_limit {
            self.check()?;
        }
        Ok(())
    }

    /// Verifies every opening since the last check (one exchange with the dealer): fails with
    /// `cheating detected` when a party changed an opened share or a MAC'd value.
    pub fn check(&mut self) -> Result<()> {
        if self.opened_discrepancies.is_empty() && self.opened_bits.is_empty() {
            return Ok(());
        }
        self.draw(Request::MacCheck)?;
        let seed = seed_from(self.net.recv_bytes(DEALER)?, DEALER)?;
        let mut coefficients = Prg::from_seed(seed);
        let mut sigma = 0u128;
        for discrepancies in &self.opened_discrepancies {
            let chi = coefficients.words(discrepancies.len());
            sigma = discrepancies
                .iter()
                .zip(&chi)
                .fold(sigma, |s, (d, c)| s.wrapping_add(u128::from(*c).wrapping_mul(*d)));
        }
        let sigma_bits = bits::binary_check_share(&self.opened_bits, self.delta, &mut coefficients);
        // The dealer knows every mask and key share, so a party's own combination (its MAC
        // shares less its key share times the opened values) would let it solve for the
        // secrets; it needs only the sum. A zero sharing from the pair seed, which the dealer
        // never sees, hides each party's part (a cheater knows it too, but never sees the
        // honest party's message to the dealer).
        let zero = self.pair_prg.words(3);
        let rho = u128::from(zero[0]) | (u128::from(zero[1]) << 64);
        let sigma = if self.id == 0 { sigma.wrapping_add(rho) } else { sigma.wrapping_sub(rho) };
        let mut message = narrow(&[sigma]);
        message.push(sigma_bits ^ zero[2]);
        self.net.send_u64s(DEALER, &message)?;
        let verdict = self.net.recv_u64s(DEALER, 1)?;
        // The request, the coefficients' seed, the combination and the verdict: four messages
        // in a chain with the dealer, which carry no round clock.
        self.net.count_preprocessing_exchange(4);
        self.opened_discrepancies.clear();
        self.opened_bits.clear();
        if verdict[0] == 1 {
            Ok(())
        } else {
            Err(cheating("the MAC check of the 2PC openings"))
        }
    }

    /// Secret-shares a tensor held by party `owner` (it passes `Some(value)`; the other's
    /// value, if any, is ignored; both pass the shape). The owner sends `x - r` for a MAC'd mask `r` it knows.
    pub fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<MacShare> {
        // The owner passes its value; another party's is ignored (as every back end does).
        let value = if owner == self.id { value } else { None };
        if owner > 1 || (owner == self.id && value.is_none_or(|v| v.shape() != shape)) {
            return Err(MpcError::Usage("input: the owner passes a value of the shape".into()));
        }
        let n: usize = shape.iter().product();
        let req = Request::MacInput { n: n as u64, owner: owner as u64 };
        let r = wide(self.draw(req)?.part(0));
        let mac_r = self.correction(req)?;
        let d = match value {
            Some(v) => {
                let d: Vec<u128> =
                    v.data().iter().zip(&r).map(|(&x, r)| u128::lift(x).wrapping_sub(*r)).collect();
                #[cfg(feature = "cheat")]
                let sent = &{
                    let mut sent = d.clone();
                    if let Some((delta, at)) = self.cheat_now(sent.len()) {
                        if let Some(share) = sent.get_mut(at) {
                            *share = share.wrapping_add(delta);
                        }
                    }
                    sent
                };
                #[cfg(not(feature = "cheat"))]
                let sent = &d;
                self.net.send_u64s(self.other(), &narrow(sent))?;
                d
            }
            None => wide(&self.net.recv_u64s(owner, 2 * n)?),
        };
        // The value shares are x - rho (the owner's: r + d - rho) and rho, for a zero sharing
        // rho from the pair seed, so that shares are fresh randomness; the MACs are alpha (r +
        // d).
        let rho = wide(&self.pair_prg.words(2 * n));
        let value: Vec<u128> = if self.id == owner {
            r.iter().zip(&d).zip(&rho).map(|((r, d), rho)| r.wrapping_add(*d).wrapping_sub(*rho)).collect()
        } else {
            rho
        };
        let mac = mac_r.iter().zip(&d).map(|(m, d)| m.wrapping_add(self.alpha.wrapping_mul(*d))).collect();
        Ok(MacShare {
            value: WideTensor::new(shape.to_vec(), value)?,
            mac: WideTensor::new(shape.to_vec(), mac)?,
        })
    }

    /// Applies a described linear map to value and MAC alike, modulo 2^128.
    pub fn linear(&self, x: &MacShare, f: &dyn LinearOp) -> Result<MacShare> {
        Ok(MacShare { value: f.apply_wide(&x.value)?, mac: f.apply_wide(&x.mac)? })
    }

    /// Applies a described linear map of two secrets.
    pub fn linear2(&self, a: &MacShare, b: &MacShare, f: &dyn LinearOp2) -> Result<MacShare> {
        Ok(MacShare { value: f.apply2_wide(&a.value, &b.value)?, mac: f.apply2_wide(&a.mac, &b.mac)? })
    }

    /// Adds a public tensor (party 0 adds it to its value share; both add their key share
    /// times it to their MAC shares).
    pub fn add_public(&self, x: &MacShare, c: &RingTensor) -> Result<MacShare> {
        let c = WideTensor::lift(c);
        let value = if self.id == 0 { x.value.add(&c)? } else { x.value.clone() };
        let alpha = self.alpha;
        Ok(MacShare { value, mac: x.mac.add(&c.map(|v| v.wrapping_mul(alpha)))? })
    }

    /// `z = c + e b + d a + d e` from a triple's shares (`a`, `b`, `c`, each value then MAC)
    /// and the opened `d = x - a`, `e = y - b`, with `product(u, v)` the product the triple
    /// is for (elementwise or matrix).
    fn beaver(
        &self,
        t: [&[u128]; 6],
        d: &[u128],
        e: &[u128],
        product: impl Fn(&[u128], &[u128]) -> Vec<u128>,
    ) -> [Vec<u128>; 2] {
        let [a, b, c, ma, mb, mc] = t;
        let (db, ae, de) = (product(d, b), product(a, e), product(d, e));
        let (dmb, mae) = (product(d, mb), product(ma, e));
        let value = (0..c.len())
            .map(|i| {
                let own = c[i].wrapping_add(db[i]).wrapping_add(ae[i]);
                if self.id == 0 {
                    own.wrapping_add(de[i])
                } else {
                    own
                }
            })
            .collect();
        let mac = (0..c.len())
            .map(|i| {
                mc[i].wrapping_add(dmb[i]).wrapping_add(mae[i]).wrapping_add(self.alpha.wrapping_mul(de[i]))
            })
            .collect();
        [value, mac]
    }

    /// Opens `x - a` and `y - b` for a triple's `a`, `b` (value shares, then MAC shares).
    fn open_masked(
        &mut self,
        x: &MacShare,
        y: &MacShare,
        a: (&[u128], &[u128]),
        b: (&[u128], &[u128]),
    ) -> Result<(Vec<u128>, Vec<u128>)> {
        // Both differences in one message, written once (no growth, no intermediate vectors).
        let both = |u: (&[u128], &[u128]), v: (&[u128], &[u128])| -> Vec<u128> {
            let mut out = Vec::with_capacity(u.0.len() + v.0.len());
            out.extend(u.0.iter().zip(u.1).map(|(p, q)| p.wrapping_sub(*q)));
            out.extend(v.0.iter().zip(v.1).map(|(p, q)| p.wrapping_sub(*q)));
            out
        };
        let shares = both((x.value.data(), a.0), (y.value.data(), b.0));
        let macs = both((x.mac.data(), a.1), (y.mac.data(), b.1));
        let mut d = self.open(&shares, &macs)?;
        let e = d.split_off(x.value.len());
        Ok((d, e))
    }

    /// Elementwise product modulo 2^128 (no truncation): one MAC'd triple, one opening.
    pub fn mul(&mut self, x: &MacShare, y: &MacShare) -> Result<MacShare> {
        if x.shape() != y.shape() {
            return Err(MpcError::Usage(format!("mul: shapes {:?} and {:?} differ", x.shape(), y.shape())));
        }
        let n = x.value.len();
        let req = Request::MacTriple { n: n as u64 };
        let m = self.draw(req)?;
        let (a, b) = (wide(m.part(0)), wide(m.part(1)));
        let corr = self.correction(req)?;
        let [c, ma, mb, mc] = [0, 1, 2, 3].map(|i| &corr[i * n..(i + 1) * n]);
        let (d, e) = self.open_masked(x, y, (&a, ma), (&b, mb))?;
        // Beaver's formula element by element in one pass (no product vectors): value c + d b
        // + a e (+ d e at party 0), MAC mc + d mb + ma e + alpha_p d e.
        let first = self.id == 0;
        let (value, mac): (Vec<u128>, Vec<u128>) = (0..n)
            .map(|i| {
                let de = d[i].wrapping_mul(e[i]);
                let own = c[i].wrapping_add(d[i].wrapping_mul(b[i])).wrapping_add(a[i].wrapping_mul(e[i]));
                let m = mc[i]
                    .wrapping_add(d[i].wrapping_mul(mb[i]))
                    .wrapping_add(ma[i].wrapping_mul(e[i]))
                    .wrapping_add(self.alpha.wrapping_mul(de));
                (if first { own.wrapping_add(de) } else { own }, m)
            })
            .unzip();
        Ok(MacShare {
            value: WideTensor::new(x.shape().to_vec(), value)?,
            mac: WideTensor::new(x.shape().to_vec(), mac)?,
        })
    }

    /// Matrix product `[m, k] x [k, n]` modulo 2^128 (no truncation): one MAC'd matrix triple.
    pub fn matmul(&mut self, x: &MacShare, y: &MacShare) -> Result<MacShare> {
        musket_core::matrix_dims(x.shape(), y.shape())?;
        self.matmul_with(x, y, None)
    }

    /// A convolution's product modulo 2^128 (no truncation): `x` read as `[m, k]` times the
    /// im2col matrix of the images `images`, from a MAC'd convolution triple, so that the
    /// masked images are opened, not their matrix (`kh kw` times larger at stride 1).
    pub fn matmul_im2col(&mut self, x: &MacShare, images: &MacShare, cols: &Im2col) -> Result<MacShare> {
        self.matmul_with(x, images, Some(cols))
    }

    /// [`Spdz2k::matmul`] with `x` read as rows, or [`Spdz2k::matmul_im2col`] with `cols`.
    pub(super) fn matmul_with(
        &mut self,
        x: &MacShare,
        y: &MacShare,
        cols: Option<&Im2col>,
    ) -> Result<MacShare> {
        let (m, k, n, req) = match cols {
            None => {
                let (m, k, n) = musket_core::rows_dims(x.shape(), y.shape())?;
                (m, k, n, Request::MacMatTriple { m: m as u64, k: k as u64, n: n as u64 })
            }
            Some(cols) => {
                let (m, k, n) = musket_core::im2col_dims(x.shape(), y.shape(), cols)?;
                (m, k, n, Request::MacConvTriple { m: m as u64, cols: *cols })
            }
        };
        let parts = self.draw(req)?;
        let (a, b) = (wide(parts.part(0)), wide(parts.part(1)));
        let corr = self.correction(req)?;
        let (c, rest) = corr.split_at(m * n);
        let (ma, rest) = rest.split_at(m * k);
        let (mb, mc) = rest.split_at(b.len());
        let (d, e) = self.open_masked(x, y, (&a, ma), (&b, mb))?;
        // The right operands as matrices: the opened images, and the triple's, mapped.
        let (b, mb, e) = match cols {
            None => (b, Cow::Borrowed(mb), e),
            Some(cols) => {
                (images_map(cols, b), Cow::Owned(images_map(cols, mb.to_vec())), images_map(cols, e))
            }
        };
        // Each product's left operand is [m, k] and its right [k, n].
        let product = |u: &[u128], v: &[u128]| matmul_wide(u, v, m, k, n);
        let [value, mac] = self.beaver([&a, &b, c, ma, &mb, mc], &d, &e, product);
        Ok(MacShare { value: WideTensor::new(vec![m, n], value)?, mac: WideTensor::new(vec![m, n], mac)? })
    }

    /// Divides by 2^bits: `floor(x / 2^bits)` or one more, for `|x| < 2^62` as a signed
    /// element of Z_2^64 (the low half; the high half may hold anything). Outside that domain
    /// the result is off by `2^(64 - bits)` with a probability that depends on `x`, as in the
    /// semi-honest protocol: a party that can push `x` there with its own inputs learns from
    /// the output whether that happened (the domain is the caller's to keep, as everywhere;
    /// the secure range check is what enforces it against a cheater's inputs). One opening of `x +
    /// 2^62 + r` for a MAC'd mask `r` uniform modulo 2^128 (which hides the high half too);
    /// the result is the exact small integer modulo 2^128, whatever `x`'s high half was.
    pub fn truncate(&mut self, x: &MacShare, bits: u32) -> Result<MacShare> {
        if bits == 0 || bits >= 62 {
            return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
        }
        let n = x.value.len();
        let req = Request::MacTrunc { n: n as u64, bits: u64::from(bits) };
        let r = wide(self.draw(req)?.part(0));
        let corr = self.correction(req)?;
        let [low, high, mr, mlow, mhigh] = [0, 1, 2, 3, 4].map(|i| &corr[i * n..(i + 1) * n]);
        // Shift the value into [0, 2^63) (modulo 2^64) so that bit 63 of r tells whether c wrapped.
        let offset: u128 = 1 << 62;
        let public_offset = if self.id == 0 { offset } else { 0 };
        let shares: Vec<u128> = x
            .value
            .data()
            .iter()
            .zip(&r)
            .map(|(v, r)| v.wrapping_add(public_offset).wrapping_add(*r))
            .collect();
        let macs: Vec<u128> = x
            .mac
            .data()
            .iter()
            .zip(mr)
            .map(|(m, mr)| m.wrapping_add(self.alpha.wrapping_mul(offset)).wrapping_add(*mr))
            .collect();
        let opened = self.open(&shares, &macs)?;
        // With c = x + 2^62 + r modulo 2^64: floor(x / 2^bits) is, up to one, (c mod 2^63) >>
        // bits - low + 2^(63-bits) (bit63(c) xor bit63(r)) - 2^(62-bits), where the xor is
        // bit63(c) + high' - 2 bit63(c) high' for high' = bit63(r) (high = 2^(63-bits) high').
        let (mut value, mut mac) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let c = opened[i] as u64;
            let c_msb = u128::from(c >> 63);
            // -low + high (msb(c) = 0) or -low - high (msb(c) = 1): linear in the shares.
            let sign_high = if c_msb == 1 { high[i].wrapping_neg() } else { high[i] };
            let sign_mhigh = if c_msb == 1 { mhigh[i].wrapping_neg() } else { mhigh[i] };
            let public = u128::from((c & (u64::MAX >> 1)) >> bits)
                .wrapping_sub(1 << (62 - bits))
                .wrapping_add(c_msb << (63 - bits));
            let own = sign_high.wrapping_sub(low[i]);
            value.push(if self.id == 0 { own.wrapping_add(public) } else { own });
            mac.push(sign_mhigh.wrapping_sub(mlow[i]).wrapping_add(self.alpha.wrapping_mul(public)));
        }
        Ok(MacShare {
            value: WideTensor::new(x.shape().to_vec(), value)?,
            mac: WideTensor::new(x.shape().to_vec(), mac)?,
        })
    }

    /// Opens `x` modulo 2^64 to both parties: checks every earlier opening first (so that a
    /// cheater learns no wrong output), opens `x + 2^64 t` for a MAC'd random `t` (the high
    /// half, which earlier computation or a cheater's input may have made depend on secrets,
    /// masked), and checks that opening before returning it.
    pub fn reveal(&mut self, x: &MacShare) -> Result<RingTensor> {
        let (opened, _) = self.open_output(x, None)?;
        Ok(RingTensor::new(x.shape().to_vec(), opened.iter().map(|&v| v as u64).collect())?)
    }

    /// Opens `x` modulo 2^64 to party `receiver` only (it gets `Some`, the other `None`): as
    /// [`Spdz2k::reveal`], with the opened value also masked by a MAC'd `r` that the receiver
    /// alone knows (an input mask, uniform modulo 2^128: the opening tells the other party
    /// nothing), which the receiver then takes off. The high half stays masked by `2^64 t`,
    /// which neither party knows: the receiver learns `x` modulo 2^64 and nothing more.
    pub fn reveal_to(&mut self, x: &MacShare, receiver: usize) -> Result<Option<RingTensor>> {
        if receiver > 1 {
            return Err(MpcError::Usage(format!("reveal to party {receiver} of 2")));
        }
        let (opened, r) = self.open_output(x, Some(receiver))?;
        Ok(r.map(|r| {
            let value = opened.iter().zip(&r).map(|(d, r)| d.wrapping_add(*r) as u64).collect();
            RingTensor::new(x.shape().to_vec(), value)
        })
        .transpose()?)
    }

    /// Checks, opens `x + 2^64 t` (less a mask `r` known to `receiver`, if any), checks
    /// again; returns the opened values and, at the receiver, `r`.
    fn open_output(
        &mut self,
        x: &MacShare,
        receiver: Option<usize>,
    ) -> Result<(Vec<u128>, Option<Vec<u128>>)> {
        self.check()?;
        let n = x.value.len();
        let req = Request::MacMask { n: n as u64 };
        self.draw(req)?;
        let high = self.correction(req)?;
        let (t, mt) = high.split_at(n);
        let mut shares: Vec<u128> = x.value.data().iter().zip(t).map(|(v, t)| v.wrapping_add(*t)).collect();
        let mut macs: Vec<u128> = x.mac.data().iter().zip(mt).map(|(m, t)| m.wrapping_add(*t)).collect();
        let mut mask = None;
        if let Some(owner) = receiver {
            let req = Request::MacInput { n: n as u64, owner: owner as u64 };
            let r = wide(self.draw(req)?.part(0));
            let mac_r = self.correction(req)?;
            // The receiver's value share of the mask is r, the other's 0.
            if self.id == owner {
                shares.iter_mut().zip(&r).for_each(|(s, r)| *s = s.wrapping_sub(*r));
                mask = Some(r);
            }
            macs.iter_mut().zip(&mac_r).for_each(|(m, r)| *m = m.wrapping_sub(*r));
        }
        let opened = self.open(&shares, &macs)?;
        self.check()?;
        Ok((opened, mask))
    }

    /// Batched matrix product `[B, m, k] x [B, k, n] -> [B, m, n]` modulo 2^128 (no
    /// truncation): one MAC'd matrix triple an item, one opening for the whole batch.
    pub fn matmul_batched(&mut self, x: &MacShare, y: &MacShare) -> Result<MacShare> {
        let (batch, m, k, n) = musket_core::batched_dims(x.shape(), y.shape())?;
        let req = Request::MacMatTriple { m: m as u64, k: k as u64, n: n as u64 };
        let mut triples = Vec::with_capacity(batch);
        for _ in 0..batch {
            let parts = self.draw(req)?;
            let (a, b) = (wide(parts.part(0)), wide(parts.part(1)));
            triples.push((a, b, self.correction(req)?));
        }
        // All items' masked operands in one message: every d = x - a, then every e = y - b
        // (a triple's correction holds C, then the MACs of A, B and C).
        let len = batch * (m * k + k * n);
        let (mut shares, mut macs) = (Vec::with_capacity(len), Vec::with_capacity(len));
        let sub =
            |u: &[u128], v: &[u128]| u.iter().zip(v).map(|(p, q)| p.wrapping_sub(*q)).collect::<Vec<_>>();
        for (i, (a, _, corr)) in triples.iter().enumerate() {
            let at = i * m * k..(i + 1) * m * k;
            shares.extend(sub(&x.value.data()[at.clone()], a));
            macs.extend(sub(&x.mac.data()[at], &corr[m * n..m * n + m * k]));
        }
        for (i, (_, b, corr)) in triples.iter().enumerate() {
            let at = i * k * n..(i + 1) * k * n;
            shares.extend(sub(&y.value.data()[at.clone()], b));
            macs.extend(sub(&y.mac.data()[at], &corr[m * n + m * k..m * n + m * k + k * n]));
        }
        let opened = self.open(&shares, &macs)?;
        let (ds, es) = opened.split_at(batch * m * k);
        let (mut value, mut mac) = (Vec::with_capacity(batch * m * n), Vec::with_capacity(batch * m * n));
        for (i, (a, b, corr)) in triples.iter().enumerate() {
            let (c, rest) = corr.split_at(m * n);
            let (ma, rest) = rest.split_at(m * k);
            let (mb, mc) = rest.split_at(k * n);
            let (d, e) = (&ds[i * m * k..(i + 1) * m * k], &es[i * k * n..(i + 1) * k * n]);
            let product = |u: &[u128], v: &[u128]| matmul_wide(u, v, m, k, n);
            let [v, w] = self.beaver([a, b, c, ma, mb, mc], d, e, product);
            value.extend(v);
            mac.extend(w);
        }
        let shape = vec![batch, m, n];
        Ok(MacShare { value: WideTensor::new(shape.clone(), value)?, mac: WideTensor::new(shape, mac)? })
    }

    /// Ends the computation cleanly (releases the dealer); call once at the end.
    pub fn finish(&mut self) -> Result<()> {
        self.check()?;
        self.net.send_bytes(DEALER, &Request::Done.encode())?;
        Ok(())
    }

    /// Tells the peers this party is stopping; `reason` must not contain secrets.
    pub fn abort(&mut self, reason: &str) {
        self.net.abort(reason);
    }
}

// No `Done` from a party that did not finish: the dealer compares the two parties' requests,
// and a `Done` from a party that failed (a timeout, say) against the other's next request
// would read as cheating. The dealer sees the party leave instead.
