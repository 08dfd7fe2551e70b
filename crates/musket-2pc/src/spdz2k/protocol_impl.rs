//! [`Spdz2k`] as a `Protocol` back end: every operation is the MAC'd one, and `verify` is
//! the MAC check.

use super::{MacBits, MacShare, Spdz2k};
use musket_core::{Protocol, Result, Share, WordMap2};
use musket_net::CommStats;
use musket_ring::{Im2col, LinearOp, LinearOp2, RingTensor};

impl Share for MacShare {
    fn shape(&self) -> &[usize] {
        self.value.shape()
    }
    fn parts(&self) -> Vec<Vec<u64>> {
        let words = |t: &musket_ring::WideTensor| crate::correlations::narrow(t.data());
        vec![words(&self.value), words(&self.mac)]
    }
}

impl Protocol for Spdz2k {
    type Share = MacShare;
    type Bits = MacBits;

    fn name(&self) -> &'static str {
        "2pc"
    }
    fn security(&self) -> &'static str {
        "malicious"
    }
    fn party_id(&self) -> usize {
        self.id
    }
    fn compute_parties(&self) -> usize {
        2
    }
    fn stats(&self) -> CommStats {
        self.net.stats().clone()
    }
    fn finish(&mut self) -> Result<()> {
        Spdz2k::finish(self)
    }
    fn verify(&mut self) -> Result<()> {
        self.check()
    }
    fn abort(&mut self, reason: &str) {
        Spdz2k::abort(self, reason)
    }
    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<MacShare> {
        Spdz2k::input(self, owner, value, shape)
    }
    fn reveal_to(&mut self, x: &MacShare, receiver: usize) -> Result<Option<RingTensor>> {
        Spdz2k::reveal_to(self, x, receiver)
    }
    fn reveal(&mut self, x: &MacShare) -> Result<RingTensor> {
        Spdz2k::reveal(self, x)
    }
    fn linear(&self, x: &MacShare, f: &dyn LinearOp) -> Result<MacShare> {
        Spdz2k::linear(self, x, f)
    }
    fn linear2(&self, a: &MacShare, b: &MacShare, f: &dyn LinearOp2) -> Result<MacShare> {
        Spdz2k::linear2(self, a, b, f)
    }
    fn add_public(&self, x: &MacShare, c: &RingTensor) -> Result<MacShare> {
        Spdz2k::add_public(self, x, c)
    }
    fn mul(&mut self, a: &MacShare, b: &MacShare) -> Result<MacShare> {
        Spdz2k::mul(self, a, b)
    }
    fn matmul(&mut self, a: &MacShare, b: &MacShare) -> Result<MacShare> {
        Spdz2k::matmul(self, a, b)
    }
    fn matmul_rows_truncate(&mut self, a: &MacShare, b: &MacShare, bits: u32) -> Result<MacShare> {
        let prod = Spdz2k::matmul_with(self, a, b, None)?;
        Spdz2k::truncate(self, &prod, bits)
    }
    fn matmul_im2col_truncate(
        &mut self,
        a: &MacShare,
        images: &MacShare,
        cols: &Im2col,
        bits: u32,
    ) -> Result<MacShare> {
        let prod = Spdz2k::matmul_im2col(self, a, images, cols)?;
        Spdz2k::truncate(self, &prod, bits)
    }
    fn matmul_batched(&mut self, a: &MacShare, b: &MacShare) -> Result<MacShare> {
        Spdz2k::matmul_batched(self, a, b)
    }
    fn truncate(&mut self, x: &MacShare, bits: u32) -> Result<MacShare> {
        Spdz2k::truncate(self, x, bits)
    }
    fn bits_len(&self, x: &MacBits) -> usize {
        x.len()
    }
    fn bits_linear(&self, x: &MacBits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> MacBits {
        x.map(f)
    }
    fn bits_linear2(&self, a: &MacBits, b: &MacBits, f: WordMap2<'_>) -> MacBits {
        MacBits::map2(a, b, f)
    }
    fn bits_concat(&self, parts: &[&MacBits]) -> MacBits {
        MacBits::concat(parts)
    }
    fn bits_xor(&self, a: &MacBits, b: &MacBits) -> MacBits {
        a.xor(b)
    }
    fn bits_xor_public(&self, a: &MacBits, c: &[u64]) -> MacBits {
        Spdz2k::bits_xor_public(self, a, c)
    }
    fn bits_and(&mut self, a: &MacBits, b: &MacBits) -> Result<MacBits> {
        Spdz2k::bits_and(self, a, b)
    }
    fn reveal_bits(&mut self, x: &MacBits) -> Result<Vec<u64>> {
        Spdz2k::reveal_bits(self, x)
    }
    fn a2b_operands(&mut self, x: &MacShare) -> Result<(MacBits, MacBits)> {
        Spdz2k::a2b_operands(self, x)
    }
    fn mul_bits(&mut self, x: &MacShare, bits: &MacBits) -> Result<MacShare> {
        Spdz2k::mul_bits(self, x, bits)
    }
    fn b2a_packed(&mut self, bits: &MacBits, shape: &[usize]) -> Result<MacShare> {
        Spdz2k::b2a_packed(self, bits, shape)
    }
}
