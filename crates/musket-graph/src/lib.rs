//! The model IR: a graph of a closed set of ops ([`Op`]) over one secret input (the data
//! owner's) and secret weights (the model owner's), and an executor generic over
//! [`musket_core::Protocol`]. Run on a secure back end it is private inference; run on
//! [`musket_core::Plain`] it is the plaintext fixed-point reference.
//!
//! What is public: the architecture (ops, attributes, weight shapes, scalar constants) and the
//! input shape. What is secret: weight values (shared by the model owner) and the input
//! (shared by the data owner). Only the output is opened, to the output receiver.

mod bounds;
mod exec;
mod float;
mod ids;
mod ir;
mod maps;
mod memory;
mod node;
mod range_plan;
mod shape_infer;
mod shape_ops;

pub use exec::{
    run, run_sliced, slice_lengths, LayerStats, Owners, RunOptions, RunOutput, Slices, RANGE_CHECK_FAILED,
};
pub use float::{eval_f64, reduce as reduce_f64, FloatRun};
pub use ids::{
    broadcast_zip, each_index, eval_index_op, IdsBinary, IdsLookup, IdsOp, IdsProgram, IdsStep,
    MAX_ONE_HOT_ELEMENTS,
};
pub use ir::{Comparison, FloatTensor, Graph, Node, Op, ValueId};
pub use memory::largest_tensor;
pub use node::resolve_pool;
pub use shape_ops::{broadcast_shapes, same_pads};
