//! The model IR: a graph of a closed set of ops ([`Op`]) over one secret input (the data
//! owner's) and secret weights (the model owner's), and an executor generic over
//! [`musket_core::Protocol`]. Run on a secure back end it is private inference; run on
//! [`musket_core::Plain`] it is the plaintext fixed-point reference.
//!
//! What is public: the architecture (ops, attributes, weight shapes, scalar constants) and the
//! input shape. What is secret: weight values (shared by the model owner) and the input
//! (shared by the data owner). Only the output is opened, to the output receiver.

mod exec;
mod float;
mod ir;
mod shape_ops;

pub use exec::{run, LayerStats, Owners, RunOutput};
pub use float::{eval_f64, FloatRun};
pub use ir::{FloatTensor, Graph, Node, Op, ValueId};
