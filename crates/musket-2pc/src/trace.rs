//! A preprocessing plan from the computation alone: [`PlanTracer`] runs a computation's code
//! on zeros, without peers, and records the dealer-material requests that [`Dealer2pc`] would
//! make for it. Request sizes depend only on shapes, which depend only on the architecture and
//! the input's shape, so the plan is the one an identical real run would leave
//! ([`Protocol::material_plan`]), and `preprocess` can run before the inputs exist.
//!
//! Each secure operation here must make the requests that [`Dealer2pc`]'s does, in the same
//! order; the tests compare the two plans on every kind of operation and on models. Should they
//! ever differ, the preprocessed run stops with "the operations differ from the preprocessed
//! plan" rather than computing with the wrong material.

use crate::dealer::{encode_plan, Request};
use crate::party::{AShare, BShare};
#[cfg(doc)]
use crate::Dealer2pc;
use musket_core::{
    batched_dims, element_count, matrix_dims, rows_dims, MpcError, Protocol, Result, Share, WordMap2,
};
use musket_net::CommStats;
use musket_ring::{LinearOp, LinearOp2, RingTensor};

/// A stand-in for one 2PC compute party that computes on zeros and records the dealer
/// requests of the operations it is given. Openings return zeros, so a computation whose
/// *requests* depend on opened values cannot be planned this way (none of Musket's does: the
/// sizes of every function and model layer follow from shapes).
#[derive(Debug)]
pub struct PlanTracer {
    id: usize,
    log: Vec<Request>,
}

impl PlanTracer {
    /// A tracer that plays compute party `party` (0 or 1): the party whose inputs the traced
    /// code supplies. Both parties' plans are the same.
    pub fn new(party: usize) -> Result<Self> {
        if party > 1 {
            return Err(MpcError::Usage(format!("2PC compute party {party} does not exist")));
        }
        Ok(PlanTracer { id: party, log: Vec::new() })
    }

    /// The plan recorded so far, as [`Protocol::preprocess`] takes it.
    pub fn plan(&self) -> Vec<u8> {
        encode_plan(&self.log)
    }

    fn request(&mut self, req: Request) -> Result<()> {
        req.check().map_err(|e| MpcError::Usage(format!("operation too large for the dealer: {e}")))?;
        self.log.push(req);
        Ok(())
    }

    fn zeros(shape: &[usize]) -> Result<AShare> {
        element_count(shape)?;
        Ok(AShare(RingTensor::zeros(shape)))
    }

    fn same_shape(a: &AShare, b: &AShare, op: &str) -> Result<()> {
        if a.shape() != b.shape() {
            return Err(MpcError::Usage(format!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape())));
        }
        Ok(())
    }
}

impl Protocol for PlanTracer {
    type Share = AShare;
    type Bits = BShare;

    fn name(&self) -> &'static str {
        "2pc"
    }
    fn party_id(&self) -> usize {
        self.id
    }
    fn compute_parties(&self) -> usize {
        2
    }
    fn stats(&self) -> CommStats {
        CommStats::default()
    }
    fn material_requests(&self) -> usize {
        self.log.len()
    }
    fn material_plan(&self, from: usize) -> Vec<u8> {
        encode_plan(&self.log[from.min(self.log.len())..])
    }
    fn abort(&mut self, _reason: &str) {}

    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<AShare> {
        if owner > 1 {
            return Err(MpcError::Usage(format!("input owner {owner} is not a compute party")));
        }
        if let Some(v) = value.filter(|v| v.shape() != shape) {
            return Err(MpcError::Usage(format!("input has shape {:?}, expected {shape:?}", v.shape())));
        }
        Self::zeros(shape)
    }
    fn reveal_to(&mut self, x: &AShare, receiver: usize) -> Result<Option<RingTensor>> {
        if receiver > 1 {
            return Err(MpcError::Usage(format!("receiver {receiver} is not a compute party")));
        }
        Ok((receiver == self.id).then(|| x.0.clone()))
    }
    fn reveal(&mut self, x: &AShare) -> Result<RingTensor> {
        Ok(x.0.clone())
    }
    fn linear(&self, x: &AShare, f: &dyn LinearOp) -> Result<AShare> {
        Ok(AShare(f.apply(&x.0)?))
    }
    fn linear2(&self, a: &AShare, b: &AShare, f: &dyn LinearOp2) -> Result<AShare> {
        Ok(AShare(f.apply2(&a.0, &b.0)?))
    }
    fn add_public(&self, x: &AShare, c: &RingTensor) -> Result<AShare> {
        Ok(AShare(x.0.add(c)?))
    }

    fn mul(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        Self::same_shape(a, b, "mul")?;
        self.request(Request::Triple { n: a.len() as u64 })?;
        Self::zeros(a.shape())
    }
    fn matmul(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        let (m, k, n) = matrix_dims(a.shape(), b.shape())?;
        self.request(Request::MatTriple { m: m as u64, k: k as u64, n: n as u64 })?;
        Self::zeros(&[m, n])
    }
    fn matmul_rows_truncate(&mut self, a: &AShare, b: &AShare, bits: u32) -> Result<AShare> {
        let (m, k, n) = rows_dims(a.shape(), b.shape())?;
        self.request(Request::MatTriple { m: m as u64, k: k as u64, n: n as u64 })?;
        self.truncate(&Self::zeros(&[m, n])?, bits)
    }
    fn matmul_im2col_truncate(
        &mut self,
        a: &AShare,
        images: &AShare,
        cols: &musket_ring::Im2col,
        bits: u32,
    ) -> Result<AShare> {
        let (m, _, n) = musket_core::im2col_dims(a.shape(), images.shape(), cols)?;
        self.request(Request::ConvTriple { m: m as u64, cols: *cols })?;
        self.truncate(&Self::zeros(&[m, n])?, bits)
    }
    fn matmul_batched(&mut self, a: &AShare, b: &AShare) -> Result<AShare> {
        let (bt, m, k, n) = batched_dims(a.shape(), b.shape())?;
        for _ in 0..bt {
            self.request(Request::MatTriple { m: m as u64, k: k as u64, n: n as u64 })?;
        }
        Self::zeros(&[bt, m, n])
    }
    fn truncate(&mut self, x: &AShare, bits: u32) -> Result<AShare> {
        if bits == 0 || bits >= 62 {
            return Err(MpcError::Usage(format!("truncation by {bits} bits is not supported")));
        }
        self.request(Request::Trunc { n: x.len() as u64, bits: bits as u64 })?;
        Self::zeros(x.shape())
    }

    fn bits_len(&self, x: &BShare) -> usize {
        x.0.len()
    }
    fn bits_linear(&self, x: &BShare, f: &dyn Fn(&[u64]) -> Vec<u64>) -> BShare {
        BShare(f(&x.0))
    }
    fn bits_linear2(&self, a: &BShare, b: &BShare, f: WordMap2<'_>) -> BShare {
        BShare(f(&a.0, &b.0))
    }
    fn bits_concat(&self, parts: &[&BShare]) -> BShare {
        BShare(musket_ring::concat_words(parts.iter().map(|p| p.0.as_slice())))
    }
    fn bits_xor(&self, a: &BShare, b: &BShare) -> BShare {
        BShare(a.0.iter().zip(&b.0).map(|(x, y)| x ^ y).collect())
    }
    fn bits_xor_public(&self, a: &BShare, c: &[u64]) -> BShare {
        BShare(a.0.iter().zip(c).map(|(x, y)| x ^ y).collect())
    }
    fn bits_and(&mut self, a: &BShare, b: &BShare) -> Result<BShare> {
        if a.0.len() != b.0.len() {
            return Err(MpcError::Usage("bits_and: lengths differ".into()));
        }
        self.request(Request::BitTriple { words: a.0.len() as u64 })?;
        Ok(a.clone())
    }
    fn reveal_bits(&mut self, x: &BShare) -> Result<Vec<u64>> {
        Ok(x.0.clone())
    }
    fn a2b_operands(&mut self, x: &AShare) -> Result<(BShare, BShare)> {
        let zeros = BShare(vec![0; x.len()]);
        Ok((zeros.clone(), zeros))
    }
    fn mul_bits(&mut self, x: &AShare, bits: &BShare) -> Result<AShare> {
        if bits.0.len() != x.len().div_ceil(64) {
            return Err(MpcError::Usage("mul_bits: packed length does not match the shape".into()));
        }
        self.request(Request::BitMul { n: x.len() as u64 })?;
        Self::zeros(x.shape())
    }
    fn b2a_packed(&mut self, bits: &BShare, shape: &[usize]) -> Result<AShare> {
        let n = element_count(shape)?;
        if bits.0.len() != n.div_ceil(64) {
            return Err(MpcError::Usage("b2a: packed length does not match the shape".into()));
        }
        self.request(Request::RandomBits { n: n as u64 })?;
        Self::zeros(shape)
    }
}
