//! Importer behaviour on models built here: unsupported ops, oversized tensors, folding.

use musket_graph::Op;
use musket_onnx::{import, ImportError, ImportOptions, Model};
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto, Message,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = onnx_protobuf::tensor_shape_proto::Dimension::new();
        dim.set_dim_value(d);
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = DataType::FLOAT as i32;
    tt.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.set_tensor_type(tt);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

fn tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = DataType::FLOAT as i32;
    t.float_data = data;
    t
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n
}

fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, input: ValueInfoProto, output: &str) -> Vec<u8> {
    let mut g = GraphProto::new();
    g.node = nodes;
    g.initializer = inits;
    g.input.push(input);
    g.output.push(value(output, &[]));
    let mut m = ModelProto::new();
    m.ir_version = 8;
    let mut op = OperatorSetIdProto::new();
    op.version = 17;
    m.opset_import.push(op);
    m.graph = Some(g).into();
    m.write_to_bytes().unwrap()
}

#[test]
fn an_unsupported_op_is_named_with_its_node() {
    let bytes = model(vec![node("Det", "determinant", &["x"], "y")], vec![], value("x", &[1, 4]), "y");
    let err = import(&bytes).unwrap_err();
    assert!(matches!(err, ImportError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("determinant") && err.to_string().contains("Det"), "{err}");
}

#[test]
fn a_huge_declared_tensor_is_refused_before_allocation() {
    let mut t = tensor("w", &[1_000_000, 1_000_000], vec![]);
    t.float_data.clear();
    let bytes =
        model(vec![node("MatMul", "mm", &["x", "w"], "y")], vec![t], value("x", &[1, 1_000_000]), "y");
    let err = import(&bytes).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn batch_norm_after_conv_is_folded_into_its_weights() {
    let mut conv = node("Conv", "conv", &["x", "w", "b"], "c");
    let mut ks = AttributeProto::new();
    ks.name = "kernel_shape".into();
    ks.type_ = AttributeType::INTS.into();
    ks.ints = vec![1, 1];
    conv.attribute.push(ks);
    let bn = node("BatchNormalization", "bn", &["c", "gamma", "beta", "mean", "var"], "y");
    let inits = vec![
        tensor("w", &[2, 1, 1, 1], vec![2.0, 3.0]),
        tensor("b", &[2], vec![0.5, -1.0]),
        tensor("gamma", &[2], vec![1.0, 2.0]),
        tensor("beta", &[2], vec![0.0, 1.0]),
        tensor("mean", &[2], vec![1.0, 0.0]),
        tensor("var", &[2], vec![4.0 - 1e-5, 1.0 - 1e-5]),
    ];
    let g = import(&model(vec![conv, bn], inits, value("x", &[1, 1, 2, 2]), "y")).unwrap();
    assert_eq!(g.nodes.len(), 1, "one fused node");
    assert!(matches!(g.nodes[0].op, Op::Conv { .. }));
    // a = gamma / sqrt(var + eps) = [0.5, 2]; w' = w a = [1, 6]; b' = (b - mean) a + beta.
    let w = &g.weights[0].1.data;
    let b = &g.weights[1].1.data;
    assert!((w[0] - 1.0).abs() < 1e-6 && (w[1] - 6.0).abs() < 1e-6, "{w:?}");
    assert!((b[0] - (-0.25)).abs() < 1e-6 && (b[1] - (-1.0)).abs() < 1e-6, "{b:?}");
}

#[test]
fn trained_scalars_stay_secret_and_constant_nodes_are_public() {
    let mut c = NodeProto::new();
    c.op_type = "Constant".into();
    c.name = "two".into();
    c.output = vec!["two".into()];
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    a.t = Some(tensor("", &[], vec![2.0])).into();
    c.attribute.push(a);
    let nodes =
        vec![c, node("Mul", "by_trained", &["x", "gain"], "y"), node("Mul", "by_two", &["y", "two"], "z")];
    let g = import(&model(nodes, vec![tensor("gain", &[], vec![0.7])], value("x", &[1, 4]), "z")).unwrap();
    assert_eq!(g.nodes[0].op, Op::Mul, "a trained scalar is a secret weight");
    assert_eq!(g.weights.len(), 1);
    assert_eq!(g.nodes[1].op, Op::MulConst(2.0), "a Constant-node scalar is public");
    let arch = g.without_weights();
    assert!(arch.weights[0].1.data.is_empty(), "the architecture carries no weight values");
}

#[test]
fn malformed_architectures_are_refused_by_validation() {
    let bytes = model(vec![node("Relu", "r", &["x"], "y")], vec![], value("x", &[1, 4]), "y");
    let good = import(&bytes).unwrap();
    // The output of a one-node model is that node, not the input.
    assert_eq!(good.output, good.nodes[0].output);
    assert_ne!(good.output, 0);
    let mut bad = good.clone();
    bad.nodes[0].op = Op::Pad { pads: vec![usize::MAX; 4], value: 0.0 };
    assert!(bad.validate().is_err());
    let mut bad = good.clone();
    bad.nodes[0].op = Op::Expand(vec![1 << 40, 1 << 40]);
    assert!(bad.validate().is_err());
    let mut bad = good.clone();
    bad.nodes[0].inputs = vec![5];
    assert!(bad.validate().is_err());
    let mut bad = good;
    bad.nodes[0].op = Op::ReduceMean { axes: vec![0, 0], keepdims: false };
    assert!(bad.validate().is_err());
}

#[test]
fn shape_computations_fold_when_the_input_shape_is_known() {
    // y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])): PyTorch's dynamic-batch flatten.
    let mut c = NodeProto::new();
    c.op_type = "Constant".into();
    c.name = "zero".into();
    c.output = vec!["zero".into()];
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    let mut idx = TensorProto::new();
    idx.data_type = DataType::INT64 as i32;
    idx.int64_data = vec![0];
    a.t = Some(idx).into();
    c.attribute.push(a);
    let mut minus_one = TensorProto::new();
    minus_one.name = "minus_one".into();
    minus_one.dims = vec![1];
    minus_one.data_type = DataType::INT64 as i32;
    minus_one.int64_data = vec![-1];
    let mut unsq = node("Unsqueeze", "unsq", &["batch", "axes"], "batch1");
    unsq.attribute.clear();
    let mut axes = TensorProto::new();
    axes.name = "axes".into();
    axes.dims = vec![1];
    axes.data_type = DataType::INT64 as i32;
    axes.int64_data = vec![0];
    let mut cat = node("Concat", "cat", &["batch1", "minus_one"], "target");
    let mut ax = AttributeProto::new();
    ax.name = "axis".into();
    ax.type_ = AttributeType::INT.into();
    ax.i = 0;
    cat.attribute.push(ax);
    let nodes = vec![
        node("Shape", "shape", &["x"], "s"),
        c,
        node("Gather", "batch", &["s", "zero"], "batch"),
        unsq,
        cat,
        node("Reshape", "flatten", &["x", "target"], "y"),
    ];
    let bytes = model(nodes, vec![minus_one, axes], value("x", &[0, 2, 3]), "y");
    let err = import(&bytes).unwrap_err();
    assert!(err.to_string().contains("concrete input"), "{err}");
    let g = musket_onnx::import_for_input(&bytes, Some(&[5, 2, 3])).unwrap();
    assert_eq!(g.nodes.len(), 1, "everything but the reshape folded");
    assert_eq!(g.nodes[0].op, Op::Reshape(vec![5, -1]));
}

/// A MatMul model whose 2x2 weight lives in an external data file at `location`, with the
/// given byte `offset` and declared `length`.
fn external_model(location: &str, offset: u64, length: Option<u64>) -> Vec<u8> {
    let mut w = TensorProto::new();
    w.name = "w".into();
    w.dims = vec![2, 2];
    w.data_type = DataType::FLOAT as i32;
    w.data_location = protobuf::EnumOrUnknown::from_i32(1);
    let mut kv = |k: &str, v: String| {
        let mut e = onnx_protobuf::StringStringEntryProto::new();
        e.key = k.into();
        e.value = v;
        w.external_data.push(e);
    };
    kv("location", location.into());
    kv("offset", offset.to_string());
    if let Some(l) = length {
        kv("length", l.to_string());
    }
    model(vec![node("MatMul", "mm", &["x", "w"], "y")], vec![w], value("x", &[1, 2]), "y")
}

#[test]
fn external_data_is_read_only_inside_the_model_directory_and_within_its_bounds() {
    let dir = std::env::temp_dir().join(format!("musket-external-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let weights: Vec<u8> = [1f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("m.onnx.data"), [&[0u8; 8][..], &weights].concat()).unwrap();
    std::fs::write(dir.join("outside.data"), &weights).unwrap();
    let load = |bytes: Vec<u8>, at: &str| {
        let path = dir.join(at);
        musket_onnx::Model::with_external_data(&bytes, &path, 1 << 20)
            .and_then(|m| m.import(&musket_onnx::ImportOptions::default()))
    };
    let g = load(external_model("m.onnx.data", 8, Some(16)), "m.onnx").unwrap();
    assert_eq!(g.weights[0].1.data, vec![1.0, 2.0, 3.0, 4.0]);
    // From bytes alone there is no directory: refused with a clear error.
    let err = musket_onnx::import(&external_model("m.onnx.data", 8, None)).unwrap_err();
    assert!(err.to_string().contains("external data file"), "{err}");
    for (location, offset, length, at, needle) in [
        ("../outside.data", 0, None, "sub/m.onnx", "plain relative path"),
        ("/etc/passwd", 0, None, "m.onnx", "plain relative path"),
        ("missing.data", 0, None, "m.onnx", "cannot open"),
        ("m.onnx.data", 16, None, "m.onnx", "beyond the end"),
        ("m.onnx.data", 0, Some(12), "m.onnx", "differs from the 16 bytes"),
        ("sub", 0, None, "m.onnx", "not a regular file"),
    ] {
        let err = load(external_model(location, offset, length), at).unwrap_err().to_string();
        assert!(err.contains(needle), "{location}: {err}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("outside.data"), dir.join("sub/link.data")).unwrap();
        let err = load(external_model("link.data", 0, None), "sub/m.onnx").unwrap_err().to_string();
        assert!(err.contains("leads outside"), "{err}");
    }
    // The size limit holds for the external data too.
    let err = musket_onnx::Model::with_external_data(
        &external_model("m.onnx.data", 8, None),
        &dir.join("m.onnx"),
        8,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("size limit"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shape_inference_agrees_with_the_f64_evaluation_on_every_export() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/exports");
    let manifest = std::fs::read_to_string(format!("{dir}/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for m in manifest["models"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let bytes = std::fs::read(format!("{dir}/{name}-input.npy")).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let path = std::path::PathBuf::from(format!("{dir}/{name}.onnx"));
        let g = musket_onnx::load_for_input(&path, Some(&shape)).unwrap();
        // Zeros are valid token ids too.
        let zeros = musket_graph::FloatTensor::new(shape.clone(), vec![0.0; shape.iter().product()]).unwrap();
        let run = musket_graph::eval_f64(&g, &zeros).unwrap();
        // Inside the graph a token-id model's input is the flat vector of one-hot rows.
        let mut shapes: Vec<Vec<usize>> = vec![match &g.ids {
            Some(program) => vec![program.one_hot_input(&zeros).unwrap().data.len()],
            None => shape.clone(),
        }];
        shapes.extend(g.weights.iter().map(|(_, t)| t.shape.clone()));
        for (k, node) in g.nodes.iter().enumerate() {
            let ins: Vec<&[usize]> = node.inputs.iter().map(|&i| shapes[i].as_slice()).collect();
            let inferred = node.op.output_shape(&ins).unwrap();
            assert_eq!(inferred, run.shapes[k], "{name}: node {:?}", node.name);
            shapes.push(inferred);
        }
    }
}

/// GELU's last step, `0.5 x a` for the value `a`, in either order the exporters write it.
fn halved_product(half_first: bool) -> [NodeProto; 2] {
    if half_first {
        [node("Mul", "halve", &["x", "half"], "h"), node("Mul", "gelu", &["h", "a"], "y")]
    } else {
        [node("Mul", "times_x", &["x", "a"], "m"), node("Mul", "gelu", &["m", "half"], "y")]
    }
}

fn constant(name: &str, v: f32) -> NodeProto {
    let mut c = NodeProto::new();
    c.op_type = "Constant".into();
    c.name = name.into();
    c.output = vec![name.into()];
    let mut a = AttributeProto::new();
    a.name = "value".into();
    a.type_ = AttributeType::TENSOR.into();
    a.t = Some(tensor("", &[], vec![v])).into();
    c.attribute.push(a);
    c
}

#[test]
fn erf_gelu_becomes_one_gelu_and_unused_nodes_are_dropped() {
    // The TorchScript spelling, x (1 + erf(x / sqrt 2)) * 0.5, and the other order of the
    // products, (x * 0.5) (1 + erf(x / sqrt 2)); a side branch feeds no output.
    for half_first in [false, true] {
        let mut nodes = vec![
            constant("sqrt2", std::f32::consts::SQRT_2),
            constant("one", 1.0),
            constant("half", 0.5),
            node("Div", "div", &["x", "sqrt2"], "d"),
            node("Erf", "erf", &["d"], "e"),
            node("Add", "add", &["e", "one"], "a"),
            node("Relu", "unused", &["x"], "side"),
        ];
        nodes.extend(halved_product(half_first));
        let g = import(&model(nodes, vec![], value("x", &[1, 4]), "y")).unwrap();
        assert_eq!(g.nodes.len(), 1, "{:?}", g.nodes);
        assert_eq!(
            (&g.nodes[0].op, g.nodes[0].op_type.as_str(), &g.nodes[0].inputs[..]),
            (&Op::Gelu, "Gelu", &[0][..])
        );
    }
    // With another constant than 1/sqrt 2 it stays as written.
    let nodes = vec![
        constant("c", 1.3),
        constant("one", 1.0),
        constant("half", 0.5),
        node("Div", "div", &["x", "c"], "d"),
        node("Erf", "erf", &["d"], "e"),
        node("Add", "add", &["e", "one"], "a"),
        node("Mul", "times_x", &["x", "a"], "m"),
        node("Mul", "gelu", &["m", "half"], "y"),
    ];
    let g = import(&model(nodes, vec![], value("x", &[1, 4]), "y")).unwrap();
    assert_eq!(g.nodes.len(), 5);
}

#[test]
fn tanh_gelu_becomes_one_gelu_tanh() {
    // GPT-2's spelling with Constant nodes (the TorchScript exporter's):
    // (x * 0.5) (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and the other order of the products.
    for half_first in [false, true] {
        let mut nodes = vec![
            constant("three", 3.0),
            constant("c", 0.044_715),
            constant("k", (2.0 / std::f32::consts::PI).sqrt()),
            constant("one", 1.0),
            constant("half", 0.5),
            node("Pow", "cube", &["x", "three"], "x3"),
            node("Mul", "times_c", &["x3", "c"], "cx3"),
            node("Add", "inner", &["x", "cx3"], "s"),
            node("Mul", "scale", &["s", "k"], "u"),
            node("Tanh", "tanh", &["u"], "t"),
            node("Add", "add", &["t", "one"], "a"),
        ];
        nodes.extend(halved_product(half_first));
        let g = import(&model(nodes, vec![], value("x", &[1, 4]), "y")).unwrap();
        assert_eq!(g.nodes.len(), 1, "{:?}", g.nodes);
        assert_eq!((&g.nodes[0].op, &g.nodes[0].inputs[..]), (&Op::GeluTanh, &[0][..]));
    }
    // ONNX's own Gelu with approximate = "tanh" (opset 20).
    let mut gelu = node("Gelu", "gelu", &["x"], "y");
    let mut a = AttributeProto::new();
    a.name = "approximate".into();
    a.type_ = AttributeType::STRING.into();
    a.s = b"tanh".to_vec();
    gelu.attribute.push(a);
    let g = import(&model(vec![gelu], vec![], value("x", &[1, 4]), "y")).unwrap();
    assert_eq!(g.nodes.iter().map(|n| &n.op).collect::<Vec<_>>(), vec![&Op::GeluTanh]);
}

/// The dynamo exporter's attention scale, `(x W + b)^T * s` with `s` a scalar initializer,
/// folds into the layer's weights (no secret product remains, and the scalar is not a weight of
/// its own); when the layer's output is also read elsewhere it stays a secret product.
#[test]
fn a_product_by_a_scalar_initializer_folds_into_the_layer_before_it() {
    let mut transpose = node("Transpose", "t", &["h"], "ht");
    let mut perm = AttributeProto::new();
    perm.name = "perm".into();
    perm.type_ = AttributeType::INTS.into();
    perm.ints = vec![1, 0];
    transpose.attribute.push(perm);
    let inits = || {
        vec![
            tensor("w", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            tensor("b", &[3], vec![0.5, -1.0, 2.0]),
            tensor("s", &[], vec![0.25]),
        ]
    };
    let layer = || vec![node("MatMul", "mm", &["x", "w"], "p"), node("Add", "bias", &["p", "b"], "h")];
    let mut nodes = layer();
    nodes.extend([transpose.clone(), node("Mul", "scale", &["ht", "s"], "y")]);
    let bytes = model(nodes, inits(), value("x", &[1, 2]), "y");
    let g = import(&bytes).unwrap();
    assert!(g.nodes.iter().all(|n| n.op != Op::Mul), "{:?}", g.nodes);
    // Imported for training, every initializer stays a weight of its own (trained values are
    // written back by name): no fold.
    let options = ImportOptions { input_shape: None, output: None, training: true };
    let trained = Model::parse(&bytes).unwrap().import(&options).unwrap();
    assert!(trained.nodes.iter().any(|n| n.op == Op::Mul), "{:?}", trained.nodes);
    assert!(["w", "b", "s"].iter().all(|w| trained.weights.iter().any(|(n, _)| n == w)));
    assert_eq!(g.weights.len(), 2, "scaled weight and bias only: {:?}", g.weights);
    assert_eq!(g.weights[0].1.data, vec![0.25, 0.5, 0.75, 1.0, 1.25, 1.5]);
    assert_eq!(g.weights[1].1.data, vec![0.125, -0.25, 0.5]);

    // The bias output also feeds the graph output's sum: no fold.
    let mut nodes = layer();
    nodes.extend([transpose, node("Mul", "scale", &["ht", "s"], "y0")]);
    nodes.push(node("Transpose", "back", &["y0"], "y1"));
    nodes.push(node("Add", "both", &["y1", "h"], "y"));
    let g = import(&model(nodes, inits(), value("x", &[1, 2]), "y")).unwrap();
    assert!(g.nodes.iter().any(|n| n.op == Op::Mul), "{:?}", g.nodes);
    assert_eq!(g.weights.len(), 3);
}
