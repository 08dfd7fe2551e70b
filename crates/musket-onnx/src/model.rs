//! An ONNX model read once: the protobuf parsed and any external data (the `.onnx.data` file
//! PyTorch's exporter writes beside a model over 2 GiB or, by default, beside any model with
//! large weights) resolved into the tensors, so that importing it for several input shapes
//! neither re-reads nor re-parses anything.

use crate::builders::import_model;
use crate::tensors::{element_width, MAX_TENSOR_ELEMENTS};
use crate::ImportError;
use musket_graph::{FloatTensor, Graph};
use onnx_protobuf::{Message, ModelProto, TensorProto};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// A parsed ONNX model with its weights in memory.
pub struct Model {
    pub(crate) proto: ModelProto,
}

/// What to import: for which input shape, and which output.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions<'a> {
    /// The concrete input shape (shape computations fold to constants for it).
    pub input_shape: Option<&'a [usize]>,
    /// The output to compute, by name; `None` takes the model's first output.
    pub output: Option<&'a str>,
    /// Import for training: every initializer that is an operand stays a weight under its own
    /// name (so the trained values can be written back), so products by a scalar initializer
    /// are not folded into the preceding layer's weights.
    pub training: bool,
}

impl Model {
    /// Parses a model's protobuf bytes. A model whose tensors live in external data files is
    /// refused: those need [`Model::read`], which knows the model's directory.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImportError> {
        let proto = ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Protobuf(e.to_string()))?;
        if external_tensors(&proto).next().is_some() {
            return Err(ImportError::Model(
                "the model keeps its weights in an external data file; load it from its file (with the data \
                 file beside it)"
                    .into(),
            ));
        }
        Ok(Model { proto })
    }

    /// Parses `bytes`, read from `path`, and loads any external data the model names. External
    /// data files are resolved only inside the model's directory (no absolute paths, no `..`,
    /// no links leading out), must be regular files, and every tensor's byte range is checked
    /// against its declared size and the file's length before anything is read; all external
    /// data together may be at most `max_external_bytes`.
    pub fn with_external_data(
        bytes: &[u8],
        path: &Path,
        max_external_bytes: u64,
    ) -> Result<Self, ImportError> {
        let mut proto =
            ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Protobuf(e.to_string()))?;
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let mut loader = ExternalLoader { dir, budget: max_external_bytes, files: HashMap::new() };
        let graph = proto.graph.mut_or_insert_default();
        for t in graph.initializer.iter_mut() {
            loader.resolve(t)?;
        }
        for n in graph.node.iter_mut() {
            for a in n.attribute.iter_mut() {
                if let Some(t) = a.t.as_mut() {
                    loader.resolve(t)?;
                }
            }
        }
        Ok(Model { proto })
    }

    /// Reads a model file of at most `max_bytes`, with its external data (at most `max_bytes`
    /// too).
    pub fn read(path: &Path, max_bytes: u64) -> Result<Self, ImportError> {
        let io = |reason: String| ImportError::Io { path: path.display().to_string(), reason };
        let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
        if !meta.is_file() {
            return Err(io("not a regular file".into()));
        }
        if meta.len() > max_bytes {
            return Err(io(format!("{} bytes, more than the limit of {max_bytes}", meta.len())));
        }
        let bytes = std::fs::read(path).map_err(|e| io(e.to_string()))?;
        Self::with_external_data(&bytes, path, max_bytes)
    }

    /// The names of the model's outputs.
    pub fn outputs(&self) -> Vec<String> {
        self.proto.graph.as_ref().map_or_else(Vec::new, |g| g.output.iter().map(|o| o.name.clone()).collect())
    }

    /// Imports the model into Musket's IR.
    pub fn import(&self, options: &ImportOptions<'_>) -> Result<Graph, ImportError> {
        import_model(&self.proto, options)
    }
}

/// A floating-point initializer of the model: its name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initializer {
    /// Name in the graph.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element count.
    pub elements: usize,
}

impl Model {
    /// The model's floating-point initializers (float, double, float16, bfloat16), in order:
    /// the parameters a training run may update.
    pub fn float_initializers(&self) -> Vec<Initializer> {
        let Some(g) = self.proto.graph.as_ref() else { return Vec::new() };
        g.initializer
            .iter()
            .filter(|t| matches!(t.data_type, 1 | 10 | 11 | 16))
            .map(|t| {
                let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
                Initializer { name: t.name.clone(), elements: shape.iter().product(), shape }
            })
            .collect()
    }

    /// Every name a node of the main graph reads.
    pub fn node_inputs(&self) -> Vec<String> {
        let Some(g) = self.proto.graph.as_ref() else { return Vec::new() };
        g.node.iter().flat_map(|n| n.input.iter().cloned()).collect()
    }

    /// The model's protobuf with the named initializers replaced by new values (each keeps
    /// its name, shape and element type; float16 and bfloat16 are rounded to nearest), and
    /// every tensor stored inside the file: the trained model, loadable by onnxruntime and by
    /// Musket. Refuses a name that is not a floating-point initializer or a shape that differs.
    pub fn with_initializers(&self, values: &[(String, FloatTensor)]) -> Result<Vec<u8>, ImportError> {
        let mut proto = self.proto.clone();
        let graph = proto.graph.mut_or_insert_default();
        for (name, value) in values {
            let t = graph
                .initializer
                .iter_mut()
                .find(|t| &t.name == name && matches!(t.data_type, 1 | 10 | 11 | 16))
                .ok_or_else(|| ImportError::Model(format!("{name:?} is not a floating-point initializer")))?;
            let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
            if dims != value.shape {
                return Err(ImportError::Model(format!(
                    "initializer {name:?} has shape {dims:?}, the new value {:?}",
                    value.shape
                )));
            }
            t.raw_data = match t.data_type {
                1 => value.data.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
                11 => value.data.iter().flat_map(|&v| v.to_le_bytes()).collect(),
                10 => value.data.iter().flat_map(|&v| half::f16::from_f64(v).to_le_bytes()).collect(),
                _ => value.data.iter().flat_map(|&v| half::bf16::from_f64(v).to_le_bytes()).collect(),
            };
            t.float_data.clear();
            t.double_data.clear();
            t.int32_data.clear();
            t.external_data.clear();
            t.data_location = Default::default();
        }
        proto.write_to_bytes().map_err(|e| ImportError::Protobuf(e.to_string()))
    }
}

fn external_tensors(proto: &ModelProto) -> impl Iterator<Item = &TensorProto> {
    let g = proto.graph.as_ref();
    let inits = g.into_iter().flat_map(|g| g.initializer.iter());
    let attrs = g
        .into_iter()
        .flat_map(|g| g.node.iter())
        .flat_map(|n| n.attribute.iter())
        .filter_map(|a| a.t.as_ref());
    inits.chain(attrs).filter(|t| t.data_location.value() == 1)
}

struct ExternalLoader {
    dir: PathBuf,
    budget: u64,
    files: HashMap<String, (File, u64)>,
}

impl ExternalLoader {
    fn invalid(t: &TensorProto, msg: impl Into<String>) -> ImportError {
        ImportError::Invalid { node: t.name.clone(), op: "external data".into(), msg: msg.into() }
    }

    /// Loads one external tensor's bytes into `raw_data`.
    fn resolve(&mut self, t: &mut TensorProto) -> Result<(), ImportError> {
        if t.data_location.value() != 1 {
            return Ok(());
        }
        let mut location = None;
        let (mut offset, mut length) = (0u64, None);
        for kv in &t.external_data {
            let number = || {
                kv.value
                    .parse::<u64>()
                    .map_err(|_| Self::invalid(t, format!("bad {} {:?}", kv.key, kv.value)))
            };
            match kv.key.as_str() {
                "location" => location = Some(kv.value.clone()),
                "offset" => offset = number()?,
                "length" => length = Some(number()?),
                _ => {}
            }
        }
        let location = location.ok_or_else(|| Self::invalid(t, "no location"))?;
        let width = element_width(t.data_type)
            .ok_or_else(|| Self::invalid(t, format!("data type {} is not supported", t.data_type)))?;
        let mut n: u64 = 1;
        for &d in &t.dims {
            n = u64::try_from(d)
                .ok()
                .and_then(|d| n.checked_mul(d))
                .filter(|&n| n <= MAX_TENSOR_ELEMENTS as u64)
                .ok_or_else(|| Self::invalid(t, format!("bad or too large dims {:?}", t.dims)))?;
        }
        let bytes = n * width as u64;
        if length.is_some_and(|l| l != bytes) {
            return Err(Self::invalid(
                t,
                format!("length {length:?} differs from the {bytes} bytes its dims need"),
            ));
        }
        if bytes > self.budget {
            return Err(Self::invalid(t, "the external data exceeds the model size limit (--max-file-mb)"));
        }
        self.budget -= bytes;
        let (file, file_len) = self.open(t, &location)?;
        if offset.checked_add(bytes).is_none_or(|end| end > *file_len) {
            return Err(Self::invalid(
                t,
                format!(
                    "bytes {offset}..{} lie beyond the end of {location:?}",
                    offset.saturating_add(bytes)
                ),
            ));
        }
        let mut raw = vec![0u8; bytes as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut raw))
            .map_err(|e| Self::invalid(t, format!("cannot read {location:?}: {e}")))?;
        t.raw_data = raw;
        t.external_data.clear();
        t.data_location = protobuf::EnumOrUnknown::from_i32(0);
        Ok(())
    }

    /// Opens an external data file, only inside the model's directory.
    fn open(&mut self, t: &TensorProto, location: &str) -> Result<&mut (File, u64), ImportError> {
        if !self.files.contains_key(location) {
            let rel = Path::new(location);
            if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(Self::invalid(
                    t,
                    format!(
                        "location {location:?} is not a plain relative path inside the model's directory"
                    ),
                ));
            }
            let outside =
                || Self::invalid(t, format!("location {location:?} leads outside the model's directory"));
            let dir =
                self.dir.canonicalize().map_err(|e| Self::invalid(t, format!("model directory: {e}")))?;
            let full = dir
                .join(rel)
                .canonicalize()
                .map_err(|e| Self::invalid(t, format!("cannot open {location:?}: {e}")))?;
            if !full.starts_with(&dir) {
                return Err(outside());
            }
            let meta = std::fs::metadata(&full)
                .map_err(|e| Self::invalid(t, format!("cannot open {location:?}: {e}")))?;
            if !meta.is_file() {
                return Err(Self::invalid(t, format!("{location:?} is not a regular file")));
            }
            let file =
                File::open(&full).map_err(|e| Self::invalid(t, format!("cannot open {location:?}: {e}")))?;
            self.files.insert(location.to_string(), (file, meta.len()));
        }
        Ok(self.files.get_mut(location).expect("inserted above"))
    }
}
