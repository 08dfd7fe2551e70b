//! How much a secure run holds at once: the basis of batch slicing.

use crate::float::FloatRun;
use crate::ir::{Graph, Op};

/// The largest tensor (in elements) the secure evaluation of any node builds, for the batch
/// that `run` (an f64 evaluation of `graph` on an input of `input_shape`) was computed on: a
/// node's output, a convolution's im2col matrix (output pixels times `C kh kw`), a pooling
/// layer's windows. Memory of a secure run grows with it (a few copies per share component).
pub fn largest_tensor(graph: &Graph, run: &FloatRun, input_shape: &[usize]) -> usize {
    let shape_of = |id: usize| -> Option<&[usize]> {
        if id == 0 {
            Some(input_shape)
        } else if id <= graph.weights.len() {
            Some(&graph.weights[id - 1].1.shape)
        } else {
            run.shapes.get(id - 1 - graph.weights.len()).map(Vec::as_slice)
        }
    };
    let elements = |s: &[usize]| s.iter().product::<usize>();
    let mut largest = elements(input_shape);
    for (node, out) in graph.nodes.iter().zip(&run.shapes) {
        let mut size = elements(out);
        match (&node.op, node.inputs.first().and_then(|&i| shape_of(i)), out.as_slice()) {
            (Op::Conv { .. }, _, [n, _, oh, ow]) => {
                if let Some([_, cg, kh, kw]) = node.inputs.get(1).and_then(|&i| shape_of(i)) {
                    let groups = match &node.op {
                        Op::Conv { geometry, .. } => geometry.groups,
                        _ => 1,
                    };
                    size = size.max(n * oh * ow * cg * groups * kh * kw);
                }
            }
            (Op::MaxPool { pool, .. } | Op::AveragePool { pool, .. }, _, _) => {
                size = size.max(elements(out) * pool.kernel[0] * pool.kernel[1]);
            }
            _ => {}
        }
        largest = largest.max(size);
    }
    largest
}
