//! Folding a product by a secret scalar into the weights of the layer that produced its
//! operand.
//!
//! PyTorch's default (dynamo) exporter writes every constant as an initializer, so a scaled
//! dot-product attention's `q * s` and `k * s` (s = `head_dim^-1/4`) multiply by a scalar
//! weight: a secret, by our policy, so each is a secret product with its truncation. When the
//! operand is a linear layer's output (MatMul, Gemm or Conv with secret weights, then
//! optionally a bias Add, then moves such as Reshape and Transpose, each read only by the next),
//! the model owner scales those weights in plaintext at import instead: the product disappears,
//! the scalar stays as secret as the weights it is folded into, and nothing is revealed (the
//! graph shows only that a product was folded, which the exporter's pattern already shows).

use super::{Builder, Ref};
use musket_graph::{FloatTensor, Op};

impl Builder {
    /// Tries to fold `x * c` for the node output `x = Ref::Node(k)` (read by the product being
    /// imported and nothing else); returns whether it did (then `Ref::Node(k)` is the product).
    pub(super) fn fold_scale_into_producer(&mut self, k: usize, c: f64, scalar_rank: usize) -> bool {
        if !c.is_finite() {
            return false;
        }
        // The product must not broadcast the operand to a larger rank.
        match &self.node_shapes[k] {
            Some(s) if s.len() >= scalar_rank => {}
            None if scalar_rank == 0 => {}
            _ => return false,
        }
        // Walk back through moves to the linear layer, checking that each value has one reader.
        let mut at = k;
        let mut reader: Option<usize> = None;
        let mut bias: Option<(usize, usize)> = None; // (node, input position)
        loop {
            if !self.read_only_by(at, reader) {
                return false;
            }
            let (node, ins) = &self.nodes[at];
            let next = match (&node.op, ins.as_slice()) {
                (
                    Op::Reshape(_)
                    | Op::Transpose(_)
                    | Op::Flatten(_)
                    | Op::Squeeze(_)
                    | Op::Unsqueeze(_)
                    | Op::Identity
                    | Op::MulConst(_),
                    [Ref::Node(j)],
                ) if bias.is_none() => *j,
                (Op::Add, [Ref::Node(j), Ref::Weight(_)]) if bias.is_none() => {
                    bias = Some((at, 1));
                    *j
                }
                (Op::Add, [Ref::Weight(_), Ref::Node(j)]) if bias.is_none() => {
                    bias = Some((at, 0));
                    *j
                }
                (Op::MatMul, [_, Ref::Weight(_)]) => return self.scale_layer(at, &[1], bias, c),
                (Op::MatMul, [Ref::Weight(_), _]) => return self.scale_layer(at, &[0], bias, c),
                (Op::Gemm { .. }, [_, Ref::Weight(_)]) => return self.scale_layer(at, &[1], bias, c),
                (Op::Gemm { .. }, [_, Ref::Weight(_), Ref::Weight(_)]) => {
                    return self.scale_layer(at, &[1, 2], bias, c)
                }
                (Op::Conv { .. }, [_, Ref::Weight(_)]) => return self.scale_layer(at, &[1], bias, c),
                (Op::Conv { .. }, [_, Ref::Weight(_), Ref::Weight(_)]) => {
                    return self.scale_layer(at, &[1, 2], bias, c)
                }
                _ => return false,
            };
            reader = Some(at);
            at = next;
        }
    }

    /// True if node `k`'s output is read only by IR node `reader` (`None`: only by the ONNX
    /// node being imported, which has not been added yet).
    fn read_only_by(&self, k: usize, reader: Option<usize>) -> bool {
        let onnx_reads: usize = self
            .vals
            .iter()
            .filter(|(_, r)| matches!(r, Ref::Node(j) if *j == k))
            .map(|(name, _)| self.uses.get(name).copied().unwrap_or(0))
            .sum();
        let ir_reads: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, (_, ins))| {
                ins.iter().filter(|r| matches!(r, Ref::Node(j) if *j == k)).map(move |_| i)
            })
            .collect();
        match reader {
            None => onnx_reads == 1 && ir_reads.is_empty(),
            Some(r) => onnx_reads <= 1 && ir_reads == [r],
        }
    }

    /// Replaces the weights at `positions` of node `layer` (and the bias weight of the Add at
    /// `bias`, if any) with copies scaled by `c`.
    fn scale_layer(
        &mut self,
        layer: usize,
        positions: &[usize],
        bias: Option<(usize, usize)>,
        c: f64,
    ) -> bool {
        let targets: Vec<(usize, usize)> = positions.iter().map(|&p| (layer, p)).chain(bias).collect();
        for (node, pos) in targets {
            let Ref::Weight(w) = self.nodes[node].1[pos] else { return false };
            let (name, t) = &self.weights[w];
            let scaled = FloatTensor { shape: t.shape.clone(), data: t.data.iter().map(|v| v * c).collect() };
            let r = self.add_weight(format!("{name}*scale"), scaled);
            self.nodes[node].1[pos] = r;
        }
        true
    }
}
