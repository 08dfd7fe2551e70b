//! The importer's entry points: reading a model (with its external data) and building the
//! graph for an input shape.

use super::{Builder, Ref};
use crate::model::{ImportOptions, Model};
use crate::tensors::to_float;
use crate::ImportError;
use musket_graph::Graph;
use onnx_protobuf::ModelProto;
use std::path::Path;

/// Reads and imports an ONNX file (with its external data, if any).
pub fn load(path: &Path) -> Result<Graph, ImportError> {
    load_for_input(path, None)
}

/// A protobuf message (an ONNX model without external data) is at most 2 GiB.
const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Reads and imports an ONNX file specialised to a concrete input shape: shape computations
/// on the input (Shape and what follows it) fold to constants. Only a regular file of at most
/// 2 GiB is read, with at most as much external data.
pub fn load_for_input(path: &Path, input_shape: Option<&[usize]>) -> Result<Graph, ImportError> {
    Model::read(path, MAX_MODEL_BYTES)?.import(&ImportOptions { input_shape, output: None, training: false })
}

/// Imports an ONNX model from its protobuf bytes.
pub fn import(bytes: &[u8]) -> Result<Graph, ImportError> {
    import_for_input(bytes, None)
}

/// Imports an ONNX model specialised to a concrete input shape (see [`load_for_input`]).
pub fn import_for_input(bytes: &[u8], concrete: Option<&[usize]>) -> Result<Graph, ImportError> {
    Model::parse(bytes)?.import(&ImportOptions { input_shape: concrete, output: None, training: false })
}

/// ONNX tensor element types that hold integers (token ids when they are the model input).
pub(crate) fn is_integer_type(elem_type: i32) -> bool {
    // INT8, UINT8, INT16, UINT16, INT32, INT64, UINT32, UINT64.
    matches!(elem_type, 2..=7 | 12 | 13)
}

/// Imports a parsed model.
pub(crate) fn import_model(model: &ModelProto, options: &ImportOptions<'_>) -> Result<Graph, ImportError> {
    let concrete = options.input_shape;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    let g = model.graph.as_ref().ok_or_else(|| ImportError::Model("the model has no graph".into()))?;
    let mut b = Builder {
        opset,
        concrete: concrete.map(<[usize]>::to_vec),
        training: options.training,
        ..Default::default()
    };
    for init in &g.initializer {
        b.vals.insert(init.name.clone(), Ref::Const(to_float(init)?, false));
        if is_integer_type(init.data_type) || init.data_type == 9 {
            b.integers.insert(init.name.clone());
        }
    }
    let inputs: Vec<_> = g.input.iter().filter(|i| !b.vals.contains_key(&i.name)).collect();
    let [input] = inputs[..] else {
        return Err(ImportError::Model(format!(
            "the model has {} inputs; Musket supports exactly one",
            inputs.len()
        )));
    };
    let tensor_type = input.type_.tensor_type();
    let dims = &tensor_type.shape.dim;
    let input_shape: Vec<Option<usize>> = dims
        .iter()
        .map(|d| if d.has_dim_value() && d.dim_value() > 0 { Some(d.dim_value() as usize) } else { None })
        .collect();
    if let Some(c) = concrete {
        // Checked here, before shape inference would fail at the first node that cannot take it.
        if c.len() != input_shape.len()
            || c.iter().zip(&input_shape).any(|(&got, want)| want.is_some_and(|w| w != got))
        {
            let dims: Vec<String> =
                input_shape.iter().map(|d| d.map_or("N".to_string(), |d| d.to_string())).collect();
            return Err(ImportError::Model(format!(
                "input {:?} has shape {c:?}, the model expects [{}]",
                input.name,
                dims.join(", ")
            )));
        }
    }
    let input_ref = if is_integer_type(tensor_type.elem_type) { b.ids_input() } else { Ref::Input };
    b.vals.insert(input.name.clone(), input_ref);
    for n in &g.node {
        for i in &n.input {
            *b.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *b.uses.entry(o.name.clone()).or_default() += 1;
    }
    for n in &g.node {
        b.node(n)?;
    }
    let output = match options.output {
        Some(name) => g.output.iter().find(|o| o.name == name).ok_or_else(|| {
            let names: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
            ImportError::Model(format!("the model has no output {name:?} (its outputs: {names:?})"))
        })?,
        None => g.output.first().ok_or_else(|| ImportError::Model("the model has no outputs".into()))?,
    };
    let out = match b.vals.get(&output.name) {
        Some(Ref::Input) => None,
        Some(Ref::Node(k)) => Some(*k),
        Some(Ref::Ids(..)) => {
            return Err(ImportError::Model(format!("output {:?} is the token ids themselves", output.name)))
        }
        Some(Ref::Weight(_) | Ref::Const(..)) | None => {
            return Err(ImportError::Model(format!(
                "output {:?} is not computed from the input",
                output.name
            )))
        }
    };
    Ok(b.finish(input.name.clone(), input_shape, out))
}
