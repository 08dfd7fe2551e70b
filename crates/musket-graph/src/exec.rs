//! The executor: runs a graph as one party on any protocol, on the whole batch or on slices of
//! it, optionally under the secure range check.

use crate::ir::{FloatTensor, Graph, ValueId};
use crate::node::{encode, eval_node, NodeContext};
use crate::range_plan::Check;
use musket_core::{MpcError, Protocol, RangeChecked, Result, Share};
use musket_net::CommStats;
use musket_ring::{FixedPoint, RingTensor};
use std::time::Instant;

/// Who plays which role (compute-party ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// Shares the weights.
    pub model: usize,
    /// Shares the input.
    pub data: usize,
    /// Learns the output.
    pub output: usize,
}

/// Cost of one layer as seen by this party (summed over the slices of a sliced run).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    /// Node name (or `share weights` / `share input` / `range check` / `reveal output`).
    pub name: String,
    /// Source op type.
    pub op_type: String,
    /// Bytes this party sent.
    pub bytes_sent: u64,
    /// Round clock advance at this party.
    pub rounds: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What a party ends with.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The decoded output, for the output receiver only.
    pub output: Option<FloatTensor>,
    /// Per-layer costs at this party.
    pub layers: Vec<LayerStats>,
}

/// How a run is carried out. Every party must pass the same options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Count, in secret, the values that leave their safe range: operands of products beyond
    /// [`crate::Op::operand_bounds`] (the weights and the input are checked by their owners in
    /// plaintext, computed values securely) and function inputs outside their domains. If any
    /// did, every compute party fails with [`MpcError::OutOfRange`] before the output is
    /// opened; one bit is revealed either way (see [`musket_core::RangeChecked`]).
    pub secure_range_check: bool,
}

/// How the batch (the input's first dimension) is cut: slice lengths in order, and the graph
/// to run on each length (a model loaded for different batch sizes; the weights must be the
/// same). Slicing bounds the memory of a large batch: the weights are shared once, each slice
/// is computed and its output kept in shares, and all outputs are opened together at the end.
pub struct Slices<'a> {
    lengths: Vec<usize>,
    graphs: Vec<(usize, &'a Graph)>,
}

impl<'a> Slices<'a> {
    /// The whole input at once.
    pub fn whole(graph: &'a Graph, input_shape: &[usize]) -> Self {
        let batch = input_shape.first().copied().unwrap_or(1);
        Self { lengths: vec![batch], graphs: vec![(batch, graph)] }
    }

    /// Slices of the given lengths, each run on the graph listed for its length.
    pub fn new(lengths: Vec<usize>, graphs: Vec<(usize, &'a Graph)>) -> Result<Self> {
        if lengths.is_empty() || lengths.contains(&0) {
            return Err(MpcError::Usage("a batch needs at least one slice, none of them empty".into()));
        }
        for len in &lengths {
            if !graphs.iter().any(|(l, _)| l == len) {
                return Err(MpcError::Usage(format!("no graph for slices of {len} items")));
            }
        }
        let shapes = graphs[0].1.weight_shapes();
        if graphs.iter().any(|(_, g)| g.weight_shapes() != shapes) {
            return Err(MpcError::Usage(
                "the graphs of different slice lengths have different weights".into(),
            ));
        }
        Ok(Self { lengths, graphs })
    }

    /// The slice lengths, in order.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    fn graph(&self, len: usize) -> &'a Graph {
        self.graphs.iter().find(|(l, _)| *l == len).map(|(_, g)| *g).expect("checked in new")
    }
}

/// Lengths of the slices of a batch of `batch` items with at most `max_slice` items each, as
/// equal as possible (so at most two distinct lengths, and at most two graphs to load).
pub fn slice_lengths(batch: usize, max_slice: usize) -> Vec<usize> {
    let max_slice = max_slice.max(1);
    let count = batch.div_ceil(max_slice).max(1);
    let (base, extra) = (batch / count, batch % count);
    (0..count).map(|i| base + usize::from(i < extra)).collect()
}

/// Runs `graph` as one party on the whole input. The model owner passes the graph with its
/// weights (others may pass [`Graph::without_weights`]); the data owner passes the input.
/// `input_shape` is public. `progress(i, total, name)` is called before each node.
pub fn run<P: Protocol>(
    p: &mut P,
    graph: &Graph,
    fp: FixedPoint,
    owners: Owners,
    input: Option<&FloatTensor>,
    input_shape: &[usize],
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<RunOutput> {
    let slices = Slices::whole(graph, input_shape);
    run_sliced(p, &slices, fp, owners, input, input_shape, RunOptions::default(), progress)
}

/// Per-layer cost accounting: a fixed row per layer, added to across slices.
struct Ledger {
    mark: (CommStats, Instant),
    layers: Vec<LayerStats>,
}

impl Ledger {
    fn new(stats: CommStats) -> Self {
        Self { mark: (stats, Instant::now()), layers: Vec::new() }
    }

    /// Adds the cost since the last mark to row `row` (created as `name`, `op_type`).
    fn charge(&mut self, stats: CommStats, row: usize, name: &str, op_type: &str, party: usize) {
        let d = stats.since(&self.mark.0);
        // Only public facts: names, op types, costs (never values).
        tracing::debug!(
            party,
            layer = name,
            op = op_type,
            bytes = d.bytes_sent,
            rounds = d.rounds,
            "layer done"
        );
        while self.layers.len() <= row {
            self.layers.push(LayerStats {
                name: String::new(),
                op_type: String::new(),
                bytes_sent: 0,
                rounds: 0,
                seconds: 0.0,
            });
        }
        let l = &mut self.layers[row];
        if l.name.is_empty() {
            l.name = name.to_string();
            l.op_type = op_type.to_string();
        }
        l.bytes_sent += d.bytes_sent;
        l.rounds += d.rounds;
        l.seconds += self.mark.1.elapsed().as_secs_f64();
        self.mark = (stats, Instant::now());
    }
}

/// Runs a model as one party on the input cut into `slices` (see [`Slices`]), with `options`.
#[allow(clippy::too_many_arguments)]
pub fn run_sliced<P: Protocol>(
    p: &mut P,
    slices: &Slices<'_>,
    fp: FixedPoint,
    owners: Owners,
    input: Option<&FloatTensor>,
    input_shape: &[usize],
    options: RunOptions,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<RunOutput> {
    let alone = p.compute_parties() == 1;
    let receiver = if alone { 0 } else { owners.output };
    let job = Job { slices, fp, owners, input, input_shape };
    let (output, mut ledger) = if options.secure_range_check {
        let mut checked = RangeChecked::new(p);
        let (out, mut ledger) = compute(&mut checked, &job, true, progress)?;
        let bad = checked.verdict()?;
        let row = ledger.layers.len();
        ledger.charge(checked.stats(), row, "range check", "check", checked.party_id());
        if bad {
            return Err(MpcError::OutOfRange {
                detail: RANGE_CHECK_FAILED.into(),
                public: RANGE_CHECK_FAILED.into(),
            });
        }
        (out, ledger)
    } else {
        compute(p, &job, false, progress)?
    };
    let opened = p.reveal_to(&output, receiver)?;
    let row = ledger.layers.len();
    ledger.charge(p.stats(), row, "reveal output", "output", p.party_id());
    let output = opened.map(|t| FloatTensor { shape: t.shape().to_vec(), data: fp.decode(t.data()) });
    Ok(RunOutput { output, layers: ledger.layers })
}

/// The error of a failed secure range check (every party sees the same text).
pub const RANGE_CHECK_FAILED: &str = "the secure range check found values outside the range the computation \
     handles (an overflow in a product, or a function input outside its domain), so the output \
     would be wrong and was not opened. Use fewer fractional bits (--frac-bits 14), scale the \
     input down, or find the layer with the model owner's plaintext check (`musket infer \
     --check` on sample data)";

/// What [`run_sliced`] computes on.
struct Job<'a, 'b> {
    slices: &'a Slices<'b>,
    fp: FixedPoint,
    owners: Owners,
    input: Option<&'a FloatTensor>,
    input_shape: &'a [usize],
}

/// Shares the weights, then computes every slice; returns the output (all slices, in shares)
/// and the per-layer costs.
fn compute<P: Protocol>(
    p: &mut P,
    job: &Job<'_, '_>,
    owner_checks: bool,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<(P::Share, Ledger)> {
    let Job { slices, fp, owners, input, input_shape } = *job;
    let me = p.party_id();
    let alone = p.compute_parties() == 1;
    let first = slices.graph(slices.lengths[0]);
    let batch: usize = slices.lengths.iter().sum();
    if slices.lengths.len() > 1 && input_shape.first() != Some(&batch) {
        return Err(MpcError::Usage(format!(
            "slices of {batch} items in all do not cover the input of shape {input_shape:?}"
        )));
    }
    for len in &slices.lengths {
        let g = slices.graph(*len);
        g.validate().map_err(|e| MpcError::Usage(format!("malformed model: {e}")))?;
        let mut shape = input_shape.to_vec();
        if let Some(b) = shape.first_mut() {
            *b = *len;
        }
        check_input_shape(g, &shape)?;
    }
    let is_model_owner = me == owners.model || alone;
    let is_data_owner = me == owners.data || alone;
    let input = input.filter(|_| is_data_owner);
    // Token ids become the data owner's plaintext one-hot rows (its program on its ids), kept
    // for the lookups rather than shared; they cannot be cut into batch slices.
    let one_hot_input;
    let input = match &first.ids {
        Some(program) => {
            if slices.lengths.len() > 1 {
                return Err(MpcError::Usage(
                    "a model on token ids runs in one piece, not in batch slices".into(),
                ));
            }
            one_hot_input = input.map(|t| program.one_hot_input(t)).transpose().map_err(MpcError::Usage)?;
            one_hot_input.as_ref()
        }
        None => input,
    };
    // The secure range check's plan, once per graph; the owners check their own tensors
    // against the first (the weights and the input are the same for every slice length).
    let plans: Vec<(usize, Vec<Option<Check>>)> = if owner_checks {
        slices.graphs.iter().map(|(len, g)| (*len, crate::range_plan::plan(g, fp.frac_bits()))).collect()
    } else {
        Vec::new()
    };
    if let Some((_, plan)) = plans.iter().find(|(len, _)| *len == slices.lengths[0]) {
        if is_model_owner {
            for (i, (name, w)) in first.weights.iter().enumerate() {
                check_owned(first, fp, plan[Graph::weight_id(i)].as_ref(), &w.data, Owned::Weight(name))?;
            }
        }
        if let Some(x) = input {
            check_owned(first, fp, plan[0].as_ref(), &x.data, Owned::Input)?;
        }
    }

    let mut ledger = Ledger::new(p.stats());
    let mut weights = Vec::with_capacity(first.weights.len());
    for (name, w) in &first.weights {
        let enc = if is_model_owner { Some(encode_weight(fp, name, w)?) } else { None };
        weights.push(p.input(owners.model, enc.as_ref(), &w.shape)?);
    }
    ledger.charge(p.stats(), 0, "share weights", "input", me);

    let total = first.nodes.len() * slices.lengths.len();
    let per_item = input_shape.iter().skip(1).product::<usize>();
    let mut outputs: Vec<P::Share> = Vec::with_capacity(slices.lengths.len());
    let mut start = 0;
    for (s, &len) in slices.lengths.iter().enumerate() {
        let graph = slices.graph(len);
        let mut shape = input_shape.to_vec();
        if let Some(b) = shape.first_mut() {
            *b = len;
        }
        let x = match input.filter(|_| first.ids.is_none()) {
            Some(t) if slices.lengths.len() == 1 => Some(encode(fp, t)?),
            Some(t) => {
                let part = FloatTensor {
                    shape: shape.clone(),
                    data: t.data[start * per_item..(start + len) * per_item].to_vec(),
                };
                Some(encode(fp, &part)?)
            }
            None => None,
        };
        start += len;
        // A token-id model's one-hot rows are not shared: the data owner keeps them, in
        // integers, for its lookups (`Protocol::onehot_matmul`).
        let (x, one_hot) = match &first.ids {
            Some(_) => (
                None,
                input
                    .map(|t| {
                        RingTensor::new(t.shape.clone(), t.data.iter().map(|&v| v as i64 as u64).collect())
                    })
                    .transpose()?,
            ),
            None => (Some(p.input(owners.data, x.as_ref(), &shape)?), None),
        };
        ledger.charge(p.stats(), 1, "share input", "input", me);
        let plan = plans.iter().find(|(l, _)| *l == len).map(|(_, plan)| plan.as_slice());
        let ctx = NodeContext { one_hot: one_hot.as_ref(), data_owner: owners.data };
        let out = run_nodes(p, graph, fp, &weights, x, &ctx, plan, &mut ledger, &mut |i, name| {
            progress(s * graph.nodes.len() + i, total, name)
        })?;
        if slices.lengths.len() > 1 && out.shape().first() != Some(&len) {
            return Err(MpcError::Usage(format!(
                "the model's output for a slice of {len} items has shape {:?}: it does not compute the \
                 items of a batch separately and cannot run in slices",
                out.shape()
            )));
        }
        outputs.push(out);
    }
    let mut output = outputs.remove(0);
    for next in &outputs {
        output = p.linear2(&output, next, &musket_core::maps::ConcatAxis(0))?;
    }
    Ok((output, ledger))
}

/// Computes the nodes of `graph` on one slice; returns the graph output. Values are dropped
/// after their last use, so a deep network holds only its live activations. With a range
/// check `plan`, each value it names is passed to `Protocol::check_bound` once computed.
#[allow(clippy::too_many_arguments)]
fn run_nodes<P: Protocol>(
    p: &mut P,
    graph: &Graph,
    fp: FixedPoint,
    weights: &[P::Share],
    input: Option<P::Share>,
    ctx: &NodeContext<'_>,
    plan: Option<&[Option<Check>]>,
    ledger: &mut Ledger,
    progress: &mut dyn FnMut(usize, &str),
) -> Result<P::Share> {
    let w = graph.weights.len();
    let mut last_use = vec![0usize; 1 + w + graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last_use[v] = i;
        }
    }
    let mut vals: Vec<Option<P::Share>> = vec![None; 1 + w + graph.nodes.len()];
    vals[0] = input;
    for (i, node) in graph.nodes.iter().enumerate() {
        progress(i, &node.name);
        p.begin_layer(&node.name);
        let out = {
            let value = |id: ValueId| -> Option<&P::Share> {
                if (1..=w).contains(&id) {
                    weights.get(id - 1)
                } else {
                    vals.get(id).and_then(Option::as_ref)
                }
            };
            eval_node(p, fp, node, &value, ctx)?
        };
        if let Some(check) = plan.and_then(|c| c[node.output].as_ref()) {
            let (upper, lower) = check.ring_bounds(fp.one() as f64);
            p.check_bound(&out, upper, lower, &node.name)?;
        }
        vals[node.output] = Some(out);
        for &v in &node.inputs {
            if (v == 0 || v > w) && last_use[v] == i && v != graph.output {
                vals[v] = None;
            }
        }
        ledger.charge(p.stats(), 2 + i, &node.name, &node.op_type, p.party_id());
    }
    let out = if graph.output == 0 { vals[0].take() } else { vals[graph.output].take() };
    out.ok_or_else(|| MpcError::Usage("the graph output is never computed".into()))
}

fn check_input_shape(graph: &Graph, input_shape: &[usize]) -> Result<()> {
    if input_shape.len() != graph.input_shape.len()
        || input_shape.iter().zip(&graph.input_shape).any(|(&got, want)| want.is_some_and(|w| w != got))
    {
        return Err(MpcError::Usage(format!(
            "input {:?} has shape {input_shape:?}, the model expects {}",
            graph.input_name,
            describe_shape(&graph.input_shape)
        )));
    }
    Ok(())
}

/// Encodes a weight, naming it when a value is not finite or out of range.
fn encode_weight(fp: FixedPoint, name: &str, w: &FloatTensor) -> Result<RingTensor> {
    encode(fp, w).map_err(|e| match e {
        MpcError::Range(r) => MpcError::OutOfRange {
            detail: format!(
                "weight {name:?} of the model: the value at index {} is not finite or exceeds the \
                 fixed-point range ±2^{} ({} fractional bits)",
                r.index, r.limit_log2, r.frac_bits
            ),
            public: "a weight of the model is not finite or is outside the fixed-point range".into(),
        },
        other => other,
    })
}

/// What an owner checks in plaintext.
enum Owned<'a> {
    Input,
    Weight(&'a str),
}

fn max_abs(data: &[f64]) -> f64 {
    data.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// The owners' plaintext part of the secure range check: `data` (the input, or a weight named
/// by `what`) within the bounds of the check plan.
fn check_owned(
    graph: &Graph,
    fp: FixedPoint,
    check: Option<&Check>,
    data: &[f64],
    what: Owned<'_>,
) -> Result<()> {
    let Some(check) = check else { return Ok(()) };
    // The bounds the secure check applies to the values computed from these, in real units.
    let one = fp.one() as f64;
    let (upper, lower) = check.ring_bounds(one);
    let (upper, lower) = (upper.map(|u| u as f64 / one), lower.map(|l| l as f64 / one));
    if data.iter().all(|&v| upper.is_none_or(|u| v < u) && lower.is_none_or(|l| v > -l)) {
        return Ok(());
    }
    let reason = match check.reason.and_then(|k| graph.nodes.get(k)) {
        Some(node) => format!("layer {:?} ({})", node.name, node.op_type),
        None => "the range check of the output".into(),
    };
    let (what, fix, owner) = match what {
        Owned::Input => (
            "the input".to_string(),
            "scale the input down or use fewer fractional bits",
            "the data owner's input is",
        ),
        Owned::Weight(name) => (
            format!("weight {name:?} of the model"),
            "use fewer fractional bits or rescale the model",
            "the model owner's weights are",
        ),
    };
    Err(MpcError::OutOfRange {
        detail: format!(
            "{what} reaches {:.3e}, beyond {:.3e}, the bound that {reason} needs at {} fractional bits for \
             its products to fit; {fix}",
            max_abs(data),
            upper.unwrap_or(f64::INFINITY).min(lower.unwrap_or(f64::INFINITY)),
            fp.frac_bits()
        ),
        public: format!("{owner} outside the range of the secure range check"),
    })
}

fn describe_shape(s: &[Option<usize>]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.map_or("N".to_string(), |d| d.to_string())).collect();
    format!("[{}]", dims.join(", "))
}
