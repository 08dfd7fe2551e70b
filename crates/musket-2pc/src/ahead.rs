//! The preprocessing phase: dealer material produced before the inputs exist. A plan (from
//! [`crate::PlanTracer`], or the requests an identical earlier run made:
//! [`musket_core::Protocol::material_plan`]) is sent to the dealer in one go, and party 1
//! receives every correction. The online operations then take their corrections from here in
//! the same order, and party 0 sends no requests for them.
//!
//! The parties' own random parts are not expanded ahead: they come from their dealer seeds when
//! an operation draws them, as without a plan. Expanding a seed (AES-CTR) is faster than
//! reading the words back from memory: with ResNet-50's 1.8 GB per party expanded ahead, its
//! online phase was slower (2.8-3.0 s) than a whole run without preprocessing (2.6-2.7 s), and
//! the preprocessing phase touched twice the memory.

use crate::dealer::Request;
use std::collections::VecDeque;

/// Corrections prepared for the next operations, consumed in plan order.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Requests still to be met by online operations, in order.
    pub(crate) planned: VecDeque<Request>,
    /// Party 1's corrections, one per planned request (empty ones included).
    pub(crate) corrections: VecDeque<Vec<u64>>,
}

impl Ahead {
    /// Installs a plan's corrections (none at party 0).
    pub(crate) fn load(&mut self, planned: Vec<Request>, corrections: VecDeque<Vec<u64>>) {
        self.planned.extend(planned);
        self.corrections.extend(corrections);
    }
}
