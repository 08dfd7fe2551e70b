use crate::protocol::{Protocol, Share};
use crate::{MpcError, Result};
use musket_net::CommStats;
use musket_ring::{unpack_bits, RingTensor};
use musket_ring::{LinearOp, LinearOp2};

impl Share for RingTensor {
    fn shape(&self) -> &[usize] {
        RingTensor::shape(self)
    }
    fn parts(&self) -> Vec<Vec<u64>> {
        vec![self.data().to_vec()]
    }
}

/// The plaintext oracle: one party, "shares" are the values themselves, every operation is
/// computed exactly (truncation is an exact floor). Generic algorithms run on it unchanged,
/// which is how tests tell a protocol bug from an algorithm bug.
#[derive(Debug, Default)]
pub struct Plain;

impl Protocol for Plain {
    type Share = RingTensor;
    type Bits = Vec<u64>;

    fn name(&self) -> &'static str {
        "plain"
    }
    fn party_id(&self) -> usize {
        0
    }
    fn compute_parties(&self) -> usize {
        1
    }
    fn stats(&self) -> CommStats {
        CommStats { bytes_sent_to: vec![0], ..Default::default() }
    }
    fn abort(&mut self, _reason: &str) {}

    fn input(&mut self, _owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<RingTensor> {
        let v = value.ok_or_else(|| MpcError::Usage("the plaintext oracle needs the value".into()))?;
        v.reshape(shape).map_err(Into::into)
    }
    fn reveal_to(&mut self, x: &RingTensor, _receiver: usize) -> Result<Option<RingTensor>> {
        Ok(Some(x.clone()))
    }
    fn reveal(&mut self, x: &RingTensor) -> Result<RingTensor> {
        Ok(x.clone())
    }
    fn linear(&self, x: &RingTensor, f: &dyn LinearOp) -> Result<RingTensor> {
        Ok(f.apply(x)?)
    }
    fn linear2(&self, a: &RingTensor, b: &RingTensor, f: &dyn LinearOp2) -> Result<RingTensor> {
        Ok(f.apply2(a, b)?)
    }
    fn add_public(&self, x: &RingTensor, c: &RingTensor) -> Result<RingTensor> {
        Ok(x.add(c)?)
    }
    fn mul(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        Ok(a.mul(b)?)
    }
    fn matmul(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        Ok(a.matmul(b)?)
    }
    fn matmul_batched(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        let (bt, m, k, n) = crate::batched_dims(a.shape(), b.shape())?;
        let mut out = Vec::with_capacity(bt * m * n);
        for i in 0..bt {
            let c = crate::batch_item(a, i, m, k).matmul(&crate::batch_item(b, i, k, n))?;
            out.extend_from_slice(c.data());
        }
        Ok(RingTensor::new(vec![bt, m, n], out)?)
    }
    fn truncate(&mut self, x: &RingTensor, bits: u32) -> Result<RingTensor> {
        Ok(x.shr_signed(bits))
    }
    fn bits_len(&self, x: &Vec<u64>) -> usize {
        x.len()
    }
    fn bits_linear(&self, x: &Vec<u64>, f: &dyn Fn(&[u64]) -> Vec<u64>) -> Vec<u64> {
        f(x)
    }
    fn bits_linear2(&self, a: &Vec<u64>, b: &Vec<u64>, f: crate::protocol::WordMap2<'_>) -> Vec<u64> {
        f(a, b)
    }
    fn bits_concat(&self, parts: &[&Vec<u64>]) -> Vec<u64> {
        musket_ring::concat_words(parts.iter().map(|p| p.as_slice()))
    }
    fn bits_xor(&self, a: &Vec<u64>, b: &Vec<u64>) -> Vec<u64> {
        a.iter().zip(b).map(|(x, y)| x ^ y).collect()
    }
    fn bits_xor_public(&self, a: &Vec<u64>, c: &[u64]) -> Vec<u64> {
        a.iter().zip(c).map(|(x, y)| x ^ y).collect()
    }
    fn bits_and(&mut self, a: &Vec<u64>, b: &Vec<u64>) -> Result<Vec<u64>> {
        Ok(a.iter().zip(b).map(|(x, y)| x & y).collect())
    }
    fn reveal_bits(&mut self, x: &Vec<u64>) -> Result<Vec<u64>> {
        Ok(x.clone())
    }
    fn a2b_operands(&mut self, x: &RingTensor) -> Result<(Vec<u64>, Vec<u64>)> {
        Ok((x.data().to_vec(), vec![0; x.len()]))
    }
    fn b2a_packed(&mut self, bits: &Vec<u64>, shape: &[usize]) -> Result<RingTensor> {
        let n: usize = shape.iter().product();
        Ok(RingTensor::new(shape.to_vec(), unpack_bits(bits, n))?)
    }
}
