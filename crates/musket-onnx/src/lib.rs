//! ONNX import: the protobuf is parsed here and nowhere else, each supported op has a builder
//! that turns a node into a [`musket_graph::Op`] (handling opset differences inside the
//! builder), BatchNormalization is folded into a preceding Conv, and public constants (shapes,
//! pads, scalar operands) are folded into op attributes. Anything else is refused with an
//! error naming the node and its op.

mod builders;
mod model;
mod tensors;

pub use builders::{import, import_for_input, load, load_for_input};
pub use model::{ImportOptions, Initializer, Model};
pub use tensors::MAX_TENSOR_ELEMENTS;

/// Why a model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read model {path}: {reason}")]
    Io {
        /// Path given.
        path: String,
        /// OS error.
        reason: String,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("not a valid ONNX model: {0}")]
    Protobuf(String),
    /// An op Musket does not support.
    #[error("node {node:?}: op {op} is not supported{detail}")]
    Unsupported {
        /// Node name.
        node: String,
        /// Op type (with domain if not the default).
        op: String,
        /// More context, starting with "; ".
        detail: String,
    },
    /// A malformed or unsupported attribute, input or tensor.
    #[error("node {node:?} ({op}): {msg}")]
    Invalid {
        /// Node name (or tensor name).
        node: String,
        /// Op type.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A model-level problem.
    #[error("{0}")]
    Model(String),
}
