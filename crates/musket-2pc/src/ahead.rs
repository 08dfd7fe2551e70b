//! The preprocessing phase: dealer material produced before the inputs exist. A plan (the
//! requests an identical earlier run made, from [`musket_core::Protocol::material_plan`]) is
//! sent to the dealer in one go; party 1 receives every correction and both parties expand
//! their dealer-seed words for the whole plan. The online operations then take their
//! material from here in the same order, and party 0 sends no requests for them.

use crate::dealer::Request;
use std::collections::VecDeque;

/// Material prepared for the next operations, consumed in plan order.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Requests still to be met by online operations, in order.
    pub(crate) planned: VecDeque<Request>,
    /// Pre-expanded dealer-seed words and how many have been used.
    words: Vec<u64>,
    used: usize,
    /// Party 1's corrections, one per planned request (empty ones included).
    pub(crate) corrections: VecDeque<Vec<u64>>,
}

impl Ahead {
    /// Installs a plan's material.
    pub(crate) fn load(&mut self, planned: Vec<Request>, words: Vec<u64>, corrections: VecDeque<Vec<u64>>) {
        self.planned.extend(planned);
        self.words.drain(..self.used);
        self.words.extend(words);
        self.used = 0;
        self.corrections.extend(corrections);
    }

    /// Up to `n` prepared words (fewer once the plan's material is used up).
    pub(crate) fn take(&mut self, n: usize) -> &[u64] {
        let k = n.min(self.words.len() - self.used);
        let out = &self.words[self.used..self.used + k];
        self.used += k;
        out
    }
}
