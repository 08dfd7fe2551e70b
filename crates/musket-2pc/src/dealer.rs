use crate::correlations::{Keys, Material};
use crate::DEALER;
use musket_core::{or_abort, os_seed, MpcError, Prg, Result};
use musket_net::{CommStats, Net, NetError};
use musket_ring::Im2col;

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
    /// A convolution's matrix triple: `A [m, k]`, images `B` (`[N, C, H, W]`), and `C = A
    /// cols(B)` for the im2col map `cols` (`k` its taps), so that the product opens the
    /// masked images, not their im2col matrix.
    ConvTriple {
        /// Rows of A (output channels).
        m: u64,
        /// The map from the images to the right operand.
        cols: Im2col,
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
    /// The MAC keys of a malicious run ([`crate::Spdz2k`]): each party draws its shares
    /// `alpha_p < 2^64` (arithmetic) and `delta_p` (GF(2^64), for bits); the dealer keeps
    /// `alpha = alpha_0 + alpha_1` and `delta = delta_0 xor delta_1`. First, once.
    MacKey,
    /// `n` MAC'd input masks `r` (modulo 2^128) known to party `owner`: its value shares are
    /// `r` (the owner's) and 0; both get MAC shares of `r`.
    MacInput {
        /// Elements.
        n: u64,
        /// The party that inputs.
        owner: u64,
    },
    /// `n` MAC'd Beaver triples modulo 2^128.
    MacTriple {
        /// Elements.
        n: u64,
    },
    /// A MAC'd matrix triple `A [m,k]`, `B [k,n]`, `C = A B` modulo 2^128.
    MacMatTriple {
        /// Rows of A.
        m: u64,
        /// Inner dimension.
        k: u64,
        /// Columns of B.
        n: u64,
    },
    /// Material for `x * b` with `b` a MAC'd shared bit, in one opening: random bits `t`,
    /// XOR-shared (packed) with MACs and MAC'd as 0/1 modulo 2^128, a MAC'd mask `a` and a
    /// MAC'd `a t`.
    MacBitMul {
        /// Elements.
        n: u64,
    },
    /// [`Request::ConvTriple`] MAC'd, modulo 2^128.
    MacConvTriple {
        /// Rows of A (output channels).
        m: u64,
        /// The map from the images to the right operand.
        cols: Im2col,
    },
    /// `n` MAC'd truncation masks `r` (modulo 2^128) with MAC'd shares of
    /// `(r mod 2^63) >> bits` and `2^(63-bits)` times bit 63 of `r`.
    MacTrunc {
        /// Elements.
        n: u64,
        /// Shift.
        bits: u64,
    },
    /// `n` MAC'd masks `2^64 t` (`t < 2^64` random) that hide an opened value's high half.
    MacMask {
        /// Elements.
        n: u64,
    },
    /// The MAC check of the openings so far: the dealer sends both parties a fresh seed for
    /// the check's coefficients, receives each party's share of the combination, and answers
    /// whether they sum to zero. Not material: never part of a preprocessing plan.
    MacCheck,
    /// `words` words of MAC'd AND triples `(u, v, w = u AND v)`, XOR-shared, each bit's MAC
    /// in GF(2^64) kept as 64 bit planes.
    MacBitTriple {
        /// Words.
        words: u64,
    },
    /// `n` edaBits: a MAC'd mask `r` modulo 2^128 and the MAC'd bits of `-r mod 2^64` (one
    /// word an element), for a conversion to binary that opens `x + r`.
    MacEdaBits {
        /// Elements.
        n: u64,
    },
    /// `n` daBits: random bits `t`, XOR-shared (packed) with MACs, and MAC'd arithmetic
    /// shares of `t` as 0/1, for a conversion to arithmetic that opens `b xor t`.
    MacDaBits {
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
            Request::MacKey => (7, vec![]),
            Request::MacInput { n, owner } => (8, vec![n, owner]),
            Request::MacTriple { n } => (9, vec![n]),
            Request::MacMatTriple { m, k, n } => (10, vec![m, k, n]),
            Request::MacTrunc { n, bits } => (11, vec![n, bits]),
            Request::MacMask { n } => (12, vec![n]),
            Request::MacCheck => (13, vec![]),
            Request::MacBitTriple { words } => (14, vec![words]),
            Request::MacEdaBits { n } => (15, vec![n]),
            Request::MacDaBits { n } => (16, vec![n]),
            Request::ConvTriple { m, cols } => (17, conv_params(m, &cols)),
            Request::MacConvTriple { m, cols } => (18, conv_params(m, &cols)),
            Request::MacBitMul { n } => (19, vec![n]),
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
            Request::MatTriple { m, k, n } | Request::MacMatTriple { m, k, n } => {
                if m.saturating_mul(k).saturating_mul(n) > MAX_MATMUL_WORK {
                    return Err(format!("matrix triple larger than {MAX_MATMUL_WORK} multiply-adds"));
                }
                vec![m.saturating_mul(k), k.saturating_mul(n), m.saturating_mul(n)]
            }
            Request::ConvTriple { m, cols } | Request::MacConvTriple { m, cols } => {
                cols.check(MAX_REQUEST_ELEMENTS)?;
                let (k, positions) = (cols.taps() as u64, cols.positions() as u64);
                if m.saturating_mul(k).saturating_mul(positions) > MAX_MATMUL_WORK {
                    return Err(format!("convolution triple larger than {MAX_MATMUL_WORK} multiply-adds"));
                }
                vec![m.saturating_mul(k), m.saturating_mul(positions)]
            }
            Request::Triple { n } | Request::Trunc { n, .. } | Request::RandomBits { n } => vec![n],
            Request::BitMul { n } => vec![n.saturating_mul(2)],
            Request::BitTriple { words } => vec![words],
            // Two words an element, up to five values.
            Request::MacInput { n, .. }
            | Request::MacTriple { n }
            | Request::MacTrunc { n, .. }
            | Request::MacMask { n }
            | Request::MacDaBits { n }
            | Request::MacBitMul { n } => vec![n.saturating_mul(10)],
            // Planes: 64 words a word (edaBits: a word an element).
            Request::MacBitTriple { words: n } | Request::MacEdaBits { n } => vec![n.saturating_mul(200)],
            Request::Done | Request::MacKey | Request::MacCheck => vec![],
        };
        if sizes.iter().any(|&s| s > MAX_REQUEST_ELEMENTS) {
            return Err(format!("request for more than {MAX_REQUEST_ELEMENTS} elements"));
        }
        Ok(())
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
            (7, []) => Request::MacKey,
            (8, &[n, owner]) if owner < 2 => Request::MacInput { n, owner },
            (9, &[n]) => Request::MacTriple { n },
            (10, &[m, k, n]) => Request::MacMatTriple { m, k, n },
            (11, &[n, bits]) if bits < 63 => Request::MacTrunc { n, bits },
            (12, &[n]) => Request::MacMask { n },
            (13, []) => Request::MacCheck,
            (14, &[words]) => Request::MacBitTriple { words },
            (15, &[n]) => Request::MacEdaBits { n },
            (16, &[n]) => Request::MacDaBits { n },
            (17, p) if p.len() == 15 => Request::ConvTriple { m: p[0], cols: conv_from_params(&p[1..])? },
            (18, p) if p.len() == 15 => Request::MacConvTriple { m: p[0], cols: conv_from_params(&p[1..])? },
            (19, &[n]) => Request::MacBitMul { n },
            _ => return Err(format!("unknown or malformed request (kind {kind})")),
        };
        req.check()?;
        Ok(req)
    }
}

/// A convolution triple's parameters as words: `m`, then the map's.
fn conv_params(m: u64, cols: &Im2col) -> Vec<u64> {
    let Im2col { n, c, h, wd, kh, kw, oh, ow, stride, dilation, pads } = *cols;
    let words =
        [n, c, h, wd, kh, kw, oh, ow, stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[1]];
    std::iter::once(m).chain(words.iter().map(|&v| v as u64)).collect()
}

/// The map of [`conv_params`]'s words after `m` (14 of them), each within `u32` (the map's
/// own check bounds its sizes after).
fn conv_from_params(p: &[u64]) -> std::result::Result<Im2col, String> {
    let v: Vec<usize> = p
        .iter()
        .map(|&x| {
            u32::try_from(x).map(|x| x as usize).map_err(|_| format!("convolution parameter {x} too large"))
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(Im2col {
        n: v[0],
        c: v[1],
        h: v[2],
        wd: v[3],
        kh: v[4],
        kw: v[5],
        oh: v[6],
        ow: v[7],
        stride: [v[8], v[9]],
        dilation: [v[10], v[11]],
        pads: [v[12], v[13]],
    })
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

/// Runs the dealer of a semi-honest run ([`crate::Dealer2pc`]) until party 0 says the
/// computation is done. Returns the dealer's counts after set-up (the seeds it sent are not
/// included). On failure, tells both parties before returning.
pub fn run_dealer(mut net: Net) -> Result<CommStats> {
    or_abort(&mut net, |net| serve(net, false))
}

/// Runs the dealer of a malicious run ([`crate::Spdz2k`]): every request comes from both
/// parties and must agree, the first is [`Request::MacKey`], and only the MAC'd kinds are
/// served. The mode is the dealer's own, from whoever starts it, not from the parties'
/// messages: a party that could steer a malicious run's dealer into semi-honest service
/// (read from party 0 alone) could hand the other party material of another kind, or shift
/// the dealer's copy of its seed.
pub fn run_dealer_malicious(mut net: Net) -> Result<CommStats> {
    or_abort(&mut net, |net| serve(net, true))
}

fn serve(net: &mut Net, malicious: bool) -> Result<CommStats> {
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
    // The MAC keys of a malicious run, set by its first request.
    let mut keys: Option<Keys> = None;
    loop {
        let bytes = net.recv_bytes(0)?;
        let req = Request::decode(&bytes)
            .map_err(|reason| MpcError::Net(NetError::Malformed { peer: 0, reason }))?;
        if malicious {
            // Either party may be the cheater: their requests must agree.
            let theirs = net.recv_bytes(1)?;
            if theirs != bytes {
                return Err(MpcError::CheatingDetected {
                    phase: "the requests to the dealer (the two parties asked for different material)".into(),
                    party: None,
                });
            }
        }
        let allowed = match req {
            Request::Done => true,
            Request::MacKey => malicious && keys.is_none(),
            Request::MacInput { .. }
            | Request::MacTriple { .. }
            | Request::MacMatTriple { .. }
            | Request::MacConvTriple { .. }
            | Request::MacTrunc { .. }
            | Request::MacMask { .. }
            | Request::MacBitTriple { .. }
            | Request::MacEdaBits { .. }
            | Request::MacDaBits { .. }
            | Request::MacBitMul { .. }
            | Request::MacCheck => malicious && keys.is_some(),
            _ => !malicious,
        };
        if !allowed || (malicious && keys.is_none() && req != Request::MacKey) {
            let reason = format!(
                "a request the {} dealer does not serve here",
                if malicious { "malicious" } else { "semi-honest" }
            );
            return Err(MpcError::Net(NetError::Malformed { peer: 0, reason }));
        }
        match req {
            Request::Done => return Ok(net.stats().since(&after_setup)),
            Request::MacCheck => {
                mac_check(net)?;
                continue;
            }
            _ => {}
        }
        // Each party's material in its layout's order, then party 0's share of the value.
        let layout = req.layout();
        let m0 = Material::draw(&layout, |n| prg0.words(n));
        let m1 = Material::draw(&layout, |n| prg1.words(n));
        if req == Request::MacKey {
            keys = Some(Keys::from_shares(m0.part(0), m1.part(0)));
            continue;
        }
        let keys = keys.unwrap_or(Keys { alpha: 0, delta: 0 });
        let correction = req.correction(&m0, &m1, prg0.words(layout.correction), keys);
        net.send_u64s(1, &correction)?;
    }
}

/// The dealer's side of [`Request::MacCheck`]: a fresh seed for the coefficients to both
/// parties, after which each sends its share of `sum_j chi_j (m_j - alpha o_j)` over the
/// arithmetic openings (two words) and of `sum_i chi_i (m_i + delta o_i)` in GF(2^64) over
/// the binary ones (one word): party `p` uses its MAC shares and its key shares, so the
/// dealer needs no key. The dealer answers both with 1 when the first shares sum to zero
/// modulo 2^128 and the second XOR to zero, 0 otherwise.
/// Each party sends its share to the dealer alone, so that neither can choose its own after
/// seeing the other's (the commitments of SPDZ's check, which an honest dealer replaces).
/// The seed is drawn only now, after the openings it weighs: a party that changed an opened
/// share cannot have chosen its change knowing the coefficients.
fn mac_check(net: &mut Net) -> Result<()> {
    let seed = os_seed();
    net.send_bytes(0, &seed)?;
    net.send_bytes(1, &seed)?;
    let (s0, s1) = (net.recv_u64s(0, 3)?, net.recv_u64s(1, 3)?);
    let wide = |s: &[u64]| u128::from(s[0]) | (u128::from(s[1]) << 64);
    let ok = wide(&s0).wrapping_add(wide(&s1)) == 0 && s0[2] ^ s1[2] == 0;
    net.send_u64s(0, &[u64::from(ok)])?;
    net.send_u64s(1, &[u64::from(ok)])?;
    if ok {
        Ok(())
    } else {
        Err(MpcError::CheatingDetected { phase: "the MAC check of the 2PC openings".into(), party: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV: Im2col = Im2col {
        n: 1,
        c: 3,
        h: 8,
        wd: 8,
        kh: 3,
        kw: 3,
        oh: 8,
        ow: 8,
        stride: [1, 1],
        dilation: [1, 1],
        pads: [1, 1],
    };

    #[test]
    fn convolution_triples_travel_as_their_map() {
        for req in [Request::ConvTriple { m: 16, cols: CONV }, Request::MacConvTriple { m: 16, cols: CONV }] {
            assert_eq!(Request::decode(&req.encode()), Ok(req));
            assert_eq!(decode_plan(&encode_plan(&[req, Request::Done])), Ok(vec![req, Request::Done]));
        }
    }

    #[test]
    fn a_convolution_triple_out_of_bounds_is_refused_before_it_is_dealt() {
        let bad = [
            Im2col { stride: [1, 0], ..CONV },
            Im2col { dilation: [0, 1], ..CONV },
            Im2col { oh: 1 << 20, ow: 1 << 20, ..CONV },
            Im2col { c: 1 << 16, kh: 1 << 7, kw: 1 << 7, ..CONV },
        ];
        for cols in bad {
            assert!(Request::decode(&Request::ConvTriple { m: 4, cols }.encode()).is_err(), "{cols:?}");
        }
        // Work beyond the dealer's bound: 2^14 rows times a 2^14 x 2^14 matrix.
        let wide = Im2col { c: 1 << 14, kh: 1, kw: 1, oh: 1 << 7, ow: 1 << 7, ..CONV };
        assert!(Request::decode(&Request::MacConvTriple { m: 1 << 14, cols: wide }.encode()).is_err());
        // A parameter beyond u32 on the wire.
        let mut bytes = Request::ConvTriple { m: 4, cols: CONV }.encode();
        bytes[9..17].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(Request::decode(&bytes).is_err());
    }
}
