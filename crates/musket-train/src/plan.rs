//! What a training run needs to know about a model before it starts: that every node has a
//! backward pass (else the run is refused, naming the node), which weights are trained, which
//! values need a gradient, and how the loss attaches to the output.

use crate::ops::unsupported;
use musket_core::{MpcError, Result};
use musket_graph::{Graph, Op};

/// The loss a model is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Loss {
    /// Softmax cross-entropy on logits `[batch, classes]`; labels are class indices.
    #[serde(rename = "cross-entropy")]
    CrossEntropy,
    /// Binary cross-entropy on probabilities from a final Sigmoid; labels are 0 or 1.
    #[serde(rename = "bce")]
    Bce,
    /// Mean squared error on raw outputs; labels have the output's shape.
    #[serde(rename = "mse")]
    Mse,
}

impl Loss {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross-entropy",
            Loss::Bce => "bce",
            Loss::Mse => "mse",
        }
    }
}

impl std::str::FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cross-entropy" | "ce" => Ok(Loss::CrossEntropy),
            "bce" => Ok(Loss::Bce),
            "mse" => Ok(Loss::Mse),
            _ => Err(format!("unknown loss {s:?} (expected cross-entropy, bce or mse)")),
        }
    }
}

/// A model checked for training with one loss, for one batch length.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    /// The model (its weights are the initial values).
    pub graph: Graph,
    /// The loss.
    pub loss: Loss,
    /// Per weight: whether it is trained (the others are constants of the model).
    pub trainable: Vec<bool>,
    /// Per value: whether it depends on a trained weight (so needs a gradient).
    pub(crate) requires: Vec<bool>,
    /// The node whose output is the model's output.
    pub(crate) head: usize,
}

fn refuse(msg: impl Into<String>) -> MpcError {
    MpcError::Usage(msg.into())
}

/// Infers every value's shape (when the input's is fully known) and refuses, naming the node,
/// what the backward passes do not cover: a MatMul whose right operand is not a 2-D matrix
/// (attention's product of two activations).
fn check_shapes(graph: &Graph) -> Result<()> {
    let Some(input) = graph.input_shape.iter().copied().collect::<Option<Vec<usize>>>() else {
        return Ok(());
    };
    let mut shapes: Vec<Option<Vec<usize>>> = vec![None; 1 + graph.weights.len() + graph.nodes.len()];
    shapes[0] = Some(input);
    for (i, (_, t)) in graph.weights.iter().enumerate() {
        shapes[Graph::weight_id(i)] = Some(t.shape.clone());
    }
    for node in &graph.nodes {
        let ins: Option<Vec<&[usize]>> =
            node.inputs.iter().map(|&i| shapes.get(i).and_then(|s| s.as_deref())).collect();
        let Some(ins) = ins else { return Ok(()) };
        if matches!(node.op, Op::MatMul) && ins.get(1).is_none_or(|b| b.len() != 2) {
            return Err(refuse(format!(
                "node {} ({}) cannot be trained: training supports MatMul by a 2-D matrix only",
                node.name, node.op_type
            )));
        }
        let out = node.op.output_shape(&ins).map_err(|e| refuse(format!("node {}: {e}", node.name)))?;
        if let Some(slot) = shapes.get_mut(node.output) {
            *slot = Some(out);
        }
    }
    Ok(())
}

impl TrainPlan {
    /// Checks `graph` for training with `loss`; `trainable[i]` says whether weight `i` is
    /// trained. Refuses, naming the node, any op without a backward pass, token-id models,
    /// and outputs the loss does not fit.
    pub fn new(graph: Graph, loss: Loss, trainable: Vec<bool>) -> Result<Self> {
        if graph.ids.is_some() {
            return Err(refuse("training models with token-id inputs is not supported"));
        }
        if trainable.len() != graph.weights.len() {
            return Err(refuse("one trainable flag per weight is needed"));
        }
        if !trainable.iter().any(|&t| t) {
            return Err(refuse("the model has no weights to train"));
        }
        for node in &graph.nodes {
            if let Some(why) = unsupported(node) {
                return Err(refuse(format!(
                    "node {} ({}) cannot be trained: {why}; training supports Gemm/MatMul, Conv, Add, Sub, \
                     Mul, Relu, Sigmoid, Tanh, Softmax/LogSoftmax, MaxPool, AveragePool, GlobalAveragePool, \
                     Flatten/Reshape/Transpose and Dropout (as identity)",
                    node.name, node.op_type
                )));
            }
        }
        check_shapes(&graph)?;
        let w = graph.weights.len();
        let values = 1 + w + graph.nodes.len();
        let mut requires = vec![false; values];
        for (i, &t) in trainable.iter().enumerate() {
            requires[Graph::weight_id(i)] = t;
        }
        for node in &graph.nodes {
            if node.output >= values || node.inputs.iter().any(|&i| i >= values) {
                return Err(refuse(format!("node {} refers to a value that does not exist", node.name)));
            }
            requires[node.output] = node.inputs.iter().any(|&i| requires[i]);
        }
        let head = graph
            .nodes
            .iter()
            .position(|n| n.output == graph.output)
            .ok_or_else(|| refuse("the model's output is not computed by a node"))?;
        if !requires[graph.output] {
            return Err(refuse("the model's output does not depend on any trained weight"));
        }
        let last = &graph.nodes[head];
        // BCE's gradient is taken at the final Sigmoid's input (`p - y`, no division by
        // p (1 - p)), so the backward pass starts below it.
        if loss == Loss::Bce && !matches!(last.op, Op::Sigmoid) {
            {
                return Err(refuse(format!(
                    "bce needs a model whose output is a Sigmoid (probabilities); its output comes from node {} \
                     ({})",
                    last.name, last.op_type
                )));
            }
        }
        Ok(Self { graph, loss, trainable, requires, head })
    }

    /// The weights' names and shapes, to check that plans for other batch lengths train the
    /// same parameters.
    pub fn signature(&self) -> Vec<(String, Vec<usize>, bool)> {
        self.graph
            .weights
            .iter()
            .zip(&self.trainable)
            .map(|((n, t), &tr)| (n.clone(), t.shape.clone(), tr))
            .collect()
    }
}
