//! Einsum with one or two operands (what tf2onnx writes for Keras's `MultiHeadAttention` and
//! `EinsumDense`, and PyTorch's TorchScript exporter for `torch.einsum`), lowered to
//! ReduceSum, Transpose, Reshape and one (batched) MatMul:
//! letters in only one operand and not in the output are summed first; the others are
//! "batch" (both operands and the output), "contracted" (both operands, not the output) or
//! free (one operand and the output). Each operand is transposed to
//! `[batch, free, contracted]` / `[batch, contracted, free]` and flattened to three axes (two
//! without batch letters), multiplied, and the product is unflattened and transposed to the
//! output's order. Ellipses and repeated letters in one operand (diagonals) are refused.

use super::{attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::Op;
use onnx_protobuf::NodeProto;

/// Positions of `letters` in `term`.
fn positions(term: &[char], letters: &[char]) -> Vec<usize> {
    letters.iter().map(|c| term.iter().position(|t| t == c).expect("a letter of the term")).collect()
}

/// The product of sizes as a reshape dimension, or `None` on overflow.
fn product(dims: &[usize]) -> Option<i64> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|p| i64::try_from(p).ok())
}

impl Builder {
    /// `r` transposed by `perm`, or `r` itself when `perm` is the identity.
    fn permuted(&mut self, n: &NodeProto, what: &str, r: Ref, perm: &[usize]) -> Result<Ref, ImportError> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(r);
        }
        self.sub_node(n, what, Op::Transpose(perm.to_vec()), vec![r])
    }

    /// Sums out the letters of `term` that `keep` lacks; returns the new operand and term.
    fn sum_out(
        &mut self,
        n: &NodeProto,
        what: &str,
        r: Ref,
        term: &[char],
        keep: &dyn Fn(char) -> bool,
    ) -> Result<(Ref, Vec<char>), ImportError> {
        let axes: Vec<i64> = (0..term.len()).filter(|&i| !keep(term[i])).map(|i| i as i64).collect();
        if axes.is_empty() {
            return Ok((r, term.to_vec()));
        }
        let rest: Vec<char> = term.iter().copied().filter(|&c| keep(c)).collect();
        Ok((self.sub_node(n, what, Op::ReduceSum { axes, keepdims: false }, vec![r])?, rest))
    }

    pub(super) fn einsum(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let equation: String = attr_s(n, "equation")
            .ok_or_else(|| self.invalid(n, "missing equation"))?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if equation.contains("...") {
            return Err(self.unsupported(n, "an ellipsis in the equation"));
        }
        let (lhs, out) = match equation.split_once("->") {
            Some((l, o)) => (l.to_string(), Some(o.to_string())),
            None => (equation.clone(), None),
        };
        let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
        if terms.len() > 2 || n.input.len() != terms.len() {
            return Err(self.unsupported(n, "other than one or two operands"));
        }
        let letters = |t: &[char]| t.iter().all(|c| c.is_ascii_alphabetic());
        let distinct = |t: &[char]| t.iter().enumerate().all(|(i, c)| !t[..i].contains(c));
        if !terms.iter().all(|t| letters(t) && distinct(t)) {
            return Err(
                self.unsupported(n, &format!("equation {equation} (repeated letters or other symbols)"))
            );
        }
        // Implicit output: the letters that appear once, in alphabetical order.
        let out: Vec<char> = match out {
            Some(o) => o.chars().collect(),
            None => {
                let mut once: Vec<char> = terms
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|c| terms.iter().flatten().filter(|d| *d == c).count() == 1)
                    .collect();
                once.sort_unstable();
                once
            }
        };
        if !letters(&out) || !distinct(&out) || out.iter().any(|c| !terms.iter().any(|t| t.contains(c))) {
            return Err(self.invalid(n, format!("equation {equation}: bad output letters")));
        }
        // Every letter's size, checked across operands.
        let mut size: Vec<(char, usize)> = Vec::new();
        for (k, term) in terms.iter().enumerate() {
            let shape = self.static_shape(&self.get(n, k)?)?.ok_or_else(|| {
                self.unsupported(n, "on a value whose shape is only known for a concrete input")
            })?;
            if shape.len() != term.len() {
                return Err(
                    self.invalid(n, format!("operand {k} has rank {}, its term {}", shape.len(), term.len()))
                );
            }
            for (&c, &d) in term.iter().zip(&shape) {
                match size.iter().find(|(l, _)| *l == c) {
                    Some(&(_, e)) if e != d => {
                        return Err(self
                            .unsupported(n, &format!("letter {c} of sizes {e} and {d} (no broadcasting)")))
                    }
                    Some(_) => {}
                    None => size.push((c, d)),
                }
            }
        }
        if size.iter().any(|&(_, d)| d == 0) {
            return Err(self.unsupported(n, "an empty operand"));
        }
        let dim = |c: char| size.iter().find(|(l, _)| *l == c).map(|&(_, d)| d).expect("a sized letter");
        let dims = |ls: &[char]| ls.iter().map(|&c| dim(c)).collect::<Vec<usize>>();

        if terms.len() == 1 {
            let x = self.secret(n, 0)?;
            let (x, term) = self.sum_out(n, "sum", x, &terms[0], &|c| out.contains(&c))?;
            let perm = positions(&term, &out);
            if perm.iter().enumerate().all(|(i, &p)| i == p) {
                return self.alias(n, x);
            }
            return self.emit(n, Op::Transpose(perm.to_vec()), vec![x]);
        }
        let (ta, tb) = (&terms[0], &terms[1]);
        let a = self.secret(n, 0)?;
        let b = self.secret(n, 1)?;
        let (a, ta) = self.sum_out(n, "sum_a", a, ta, &|c| out.contains(&c) || tb.contains(&c))?;
        let (b, tb) = self.sum_out(n, "sum_b", b, tb, &|c| out.contains(&c) || ta.contains(&c))?;
        let batch: Vec<char> = out.iter().copied().filter(|c| ta.contains(c) && tb.contains(c)).collect();
        let contracted: Vec<char> =
            ta.iter().copied().filter(|c| tb.contains(c) && !out.contains(c)).collect();
        let free_a: Vec<char> = out.iter().copied().filter(|c| ta.contains(c) && !tb.contains(c)).collect();
        let free_b: Vec<char> = out.iter().copied().filter(|c| tb.contains(c) && !ta.contains(c)).collect();
        let sizes = [&batch, &free_a, &contracted, &free_b].map(|ls| product(&dims(ls)));
        let [Some(nb), Some(m), Some(k), Some(nn)] = sizes else {
            return Err(self.unsupported(n, "operands this large"));
        };
        let order_a = [batch.clone(), free_a.clone(), contracted.clone()].concat();
        let order_b = [batch.clone(), contracted.clone(), free_b.clone()].concat();
        let a = self.permuted(n, "order_a", a, &positions(&ta, &order_a))?;
        let b = self.permuted(n, "order_b", b, &positions(&tb, &order_b))?;
        let (shape_a, shape_b) =
            if batch.is_empty() { (vec![m, k], vec![k, nn]) } else { (vec![nb, m, k], vec![nb, k, nn]) };
        let a = self.sub_node(n, "flat_a", Op::Reshape(shape_a), vec![a])?;
        let b = self.sub_node(n, "flat_b", Op::Reshape(shape_b), vec![b])?;
        let y = self.sub_node(n, "matmul", Op::MatMul, vec![a, b])?;
        let order_y = [batch, free_a, free_b].concat();
        let unflat: Vec<i64> = dims(&order_y).iter().map(|&d| d as i64).collect(); // each below nb m nn
        let y = self.sub_node(n, "unflat", Op::Reshape(unflat), vec![y])?;
        let perm = positions(&order_y, &out);
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.alias(n, y);
        }
        self.emit(n, Op::Transpose(perm.to_vec()), vec![y])
    }
}
