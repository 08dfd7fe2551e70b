use crate::DEALER;
use musket_core::{or_abort, os_seed, MpcError, Prg, Result};
use musket_net::{CommStats, Net, NetError};
use musket_ring::{matmul, unpack_bits};

/// The largest number of ring elements in one tensor of a request (2 GiB of words).
pub(crate) const MAX_REQUEST_ELEMENTS: u64 = 1 << 28;
/// The largest matrix triple, in multiply-adds the dealer must compute.
const MAX_MATMUL_WORK: u64 = 1 << 40;

/// What party 0 asks the dealer for. Party 1 learns the same sequence implicitly: both run the
/// same program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The computation is over.
    Done,
    /// `n` elementwise Beaver triples.
    Triple {
        /// Elements.
        n: u64,
    },
    /// A matrix triple `A [m,k]`, `B [k,n]`, `C = A B`.
    MatTriple {
        /// Rows of A.
        m: u64,
        /// Inner dimension.
        k: u64,
        /// Columns of B.
        n: u64,
    },
    /// `n` truncation masks `r` with shares of `(r mod 2^63) >> bits` and `2^(63-bits) msb(r)`.
    Trunc {
        /// Elements.
        n: u64,
        /// Shift.
        bits: u64,
    },
    /// `words` binary AND triples.
    BitTriple {
        /// Words.
        words: u64,
    },
    /// `n` random bits, XOR-shared packed and additively shared as 0/1.
    RandomBits {
        /// Bits.
        n: u64,
    },
    /// Material for `x * b` with `b` a shared bit: a random bit `t` (XOR-shared, packed), a
    /// random word `a`, and additive shares of `t` and of `a t`.
    BitMul {
        /// Elements.
        n: u64,
    },
}

impl Request {
    /// Serialises the request.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, params): (u8, Vec<u64>) = match *self {
            Request::Done => (0, vec![]),
            Request::Triple { n } => (1, vec![n]),
            Request::MatTriple { m, k, n } => (2, vec![m, k, n]),
            Request::Trunc { n, bits } => (3, vec![n, bits]),
            Request::BitTriple { words } => (4, vec![words]),
            Request::RandomBits { n } => (5, vec![n]),
            Request::BitMul { n } => (6, vec![n]),
        };
        let mut out = vec![kind];
        for p in params {
            out.extend_from_slice(&p.to_le_bytes());
        }
        out
    }

    /// Checks the sizes are within the dealer's limits.
    pub fn check(&self) -> std::result::Result<(), String> {
        let sizes: Vec<u64> = match *self {
            Request::MatTriple { m, k, n } => {
                if m.saturating_mul(k).saturating_mul(n) > MAX_MATMUL_WORK {
                    return Err(format!("matrix triple larger than {MAX_MATMUL_WORK} multiply-adds"));
                }
                vec![m.saturating_mul(k), k.saturating_mul(n), m.saturating_mul(n)]
            }
            Request::Triple { n } | Request::Trunc { n, .. } | Request::RandomBits { n } => vec![n],
            Request::BitMul { n } => vec![n.saturating_mul(2)],
            Request::BitTriple { words } => vec![words],
            Request::Done => vec![],
        };
        if sizes.iter().any(|&s| s > MAX_REQUEST_ELEMENTS) {
            return Err(format!("request for more than {MAX_REQUEST_ELEMENTS} elements"));
        }
        Ok(())
    }

    /// Words a compute party draws from its dealer seed for this request, plus (party 0)
    /// its share of the correction, in the order the operation draws them.
    pub(crate) fn material_words(&self, party: usize) -> usize {
        let own = |v: u64| v as usize;
        let (material, correction) = match *self {
            Request::Done => (0, 0),
            Request::Triple { n } => (2 * own(n), own(n)),
            Request::MatTriple { m, k, n } => (own(m * k + k * n), own(m * n)),
            Request::Trunc { n, .. } => (own(n), 2 * own(n)),
            Request::BitTriple { words } => (2 * own(words), own(words)),
            Request::RandomBits { n } => (own(n).div_ceil(64), own(n)),
            Request::BitMul { n } => (own(n).div_ceil(64) + own(n), 2 * own(n)),
        };
        if party == 0 {
            material + correction
        } else {
            material
        }
    }

    /// Words of the dealer's correction message to party 1.
    pub(crate) fn correction_words(&self) -> usize {
        self.material_words(0) - self.material_words(1)
    }

    /// Parses and bounds-checks a request from party 0.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let (&kind, rest) = bytes.split_first().ok_or("empty request")?;
        if rest.len() % 8 != 0 {
            return Err("request length is not a whole number of words".into());
        }
        let p: Vec<u64> =
            rest.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
        let req = match (kind, p.as_slice()) {
            (0, []) => Request::Done,
            (1, &[n]) => Request::Triple { n },
            (2, &[m, k, n]) => Request::MatTriple { m, k, n },
            (3, &[n, bits]) if bits < 63 => Request::Trunc { n, bits },
            (4, &[words]) => Request::BitTriple { words },
            (5, &[n]) => Request::RandomBits { n },
            (6, &[n]) => Request::BitMul { n },
            _ => return Err(format!("unknown or malformed request (kind {kind})")),
        };
        req.check()?;
        Ok(req)
    }
}

/// Encodes a sequence of requests (a preprocessing plan): each request length-prefixed.
pub fn encode_plan(requests: &[Request]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in requests {
        let e = r.encode();
        out.push(e.len() as u8);
        out.extend_from_slice(&e);
    }
    out
}

/// Decodes [`encode_plan`]'s output, checking every request.
pub fn decode_plan(mut bytes: &[u8]) -> std::result::Result<Vec<Request>, String> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let len = len as usize;
        if rest.len() < len {
            return Err("preprocessing plan ends inside a request".into());
        }
        out.push(Request::decode(&rest[..len])?);
        bytes = &rest[len..];
    }
    Ok(out)
}

fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// Runs the dealer until party 0 says the computation is done. Returns the dealer's counts
/// after set-up (the seeds it sent are not included).
/// On failure, tells both parties before returning.
pub fn run_dealer(mut net: Net) -> Result<CommStats> {
    or_abort(&mut net, serve)
}

fn serve(net: &mut Net) -> Result<CommStats> {
    if net.party_id() != DEALER || net.n_parties() != 3 {
        return Err(MpcError::Usage("the 2PC dealer must be party 2 of 3".into()));
    }
    net.set_preprocessing_peer(0);
    net.set_preprocessing_peer(1);
    let (s0, s1) = (os_seed(), os_seed());
    net.send_bytes(0, &s0)?;
    net.send_bytes(1, &s1)?;
    let (mut prg0, mut prg1) = (Prg::from_seed(s0), Prg::from_seed(s1));
    let after_setup = net.stats().clone();
    loop {
        let bytes = net.recv_bytes(0)?;
        let req = Request::decode(&bytes)
            .map_err(|reason| MpcError::Net(NetError::Malformed { peer: 0, reason }))?;
        let correction: Vec<u64> = match req {
            Request::Done => return Ok(net.stats().since(&after_setup)),
            Request::Triple { n } => {
                let n = n as usize;
                let a = add(&prg0.words(n), &prg1.words(n));
                let b0 = prg0.words(n);
                let b = add(&b0, &prg1.words(n));
                let c0 = prg0.words(n);
                a.iter().zip(&b).zip(&c0).map(|((x, y), c)| x.wrapping_mul(*y).wrapping_sub(*c)).collect()
            }
            Request::MatTriple { m, k, n } => {
                let (m, k, n) = (m as usize, k as usize, n as usize);
                let a = add(&prg0.words(m * k), &prg1.words(m * k));
                let b = add(&prg0.words(k * n), &prg1.words(k * n));
                let c0 = prg0.words(m * n);
                let c = matmul(&a, &b, m, k, n);
                c.iter().zip(&c0).map(|(x, y)| x.wrapping_sub(*y)).collect()
            }
            Request::Trunc { n, bits } => {
                let n = n as usize;
                let r = add(&prg0.words(n), &prg1.words(n));
                let (a0, b0) = (prg0.words(n), prg0.words(n));
                let mut out = Vec::with_capacity(2 * n);
                out.extend(
                    r.iter().zip(&a0).map(|(r, a0)| ((r & (u64::MAX >> 1)) >> bits).wrapping_sub(*a0)),
                );
                out.extend(r.iter().zip(&b0).map(|(r, b0)| ((r >> 63) << (63 - bits)).wrapping_sub(*b0)));
                out
            }
            Request::BitTriple { words } => {
                let w = words as usize;
                let (u0, v0, w0) = (prg0.words(w), prg0.words(w), prg0.words(w));
                let (u1, v1) = (prg1.words(w), prg1.words(w));
                (0..w).map(|i| ((u0[i] ^ u1[i]) & (v0[i] ^ v1[i])) ^ w0[i]).collect()
            }
            Request::RandomBits { n } => {
                let n = n as usize;
                let nb = n.div_ceil(64);
                let (t0, big_t0) = (prg0.words(nb), prg0.words(n));
                let t1 = prg1.words(nb);
                let t: Vec<u64> = t0.iter().zip(&t1).map(|(a, b)| a ^ b).collect();
                unpack_bits(&t, n).iter().zip(&big_t0).map(|(b, t0)| b.wrapping_sub(*t0)).collect()
            }
            Request::BitMul { n } => {
                let n = n as usize;
                let nb = n.div_ceil(64);
                let (t0, a0, big_t0, at0) = (prg0.words(nb), prg0.words(n), prg0.words(n), prg0.words(n));
                let (t1, a1) = (prg1.words(nb), prg1.words(n));
                let t: Vec<u64> = t0.iter().zip(&t1).map(|(a, b)| a ^ b).collect();
                let t = unpack_bits(&t, n);
                let mut out = Vec::with_capacity(2 * n);
                out.extend(t.iter().zip(&big_t0).map(|(t, t0)| t.wrapping_sub(*t0)));
                out.extend((0..n).map(|i| a0[i].wrapping_add(a1[i]).wrapping_mul(t[i]).wrapping_sub(at0[i])));
                out
            }
        };
        net.send_u64s(1, &correction)?;
    }
}
