//! `musket train` on the bundled training examples, both back ends: accuracy against the
//! plaintext PyTorch reference (`examples/training/*/reference.json`, made by
//! scripts/make_training.py), the secure weights against the f64 reference training, the
//! written model against its own evaluation, and clear refusals.

mod common;

use common::{init_cluster, json, musket, spawn_party, tempdir, text, wait_bounded};
use musket_graph::eval_f64;
use musket_onnx::{ImportOptions, Model};
use std::time::Duration;

const TRAINING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/training");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

fn path(task: &str, file: &str) -> String {
    format!("{TRAINING}/{task}/{file}")
}

fn reference(task: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path(task, "reference.json")).unwrap()).unwrap()
}

/// `musket train` on a bundled task's model, data and labels, with `extra` options.
fn run_train(task: &str, extra: &[&str]) -> std::process::Output {
    let (model, data, labels) = (path(task, "model.onnx"), path(task, "data.npy"), path(task, "labels.npy"));
    let mut args = vec!["train", "--model", &model, "--data", &data, "--labels", &labels];
    args.extend_from_slice(extra);
    musket(&args)
}

/// The logistic-regression task's loss and hyper-parameters (full batch).
const LOGREG_HYPER: [&str; 6] = ["--loss", "bce", "--lr", "1.0", "--batch-size", "1000"];

fn train(task: &str, protocol: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--protocol", protocol, "--json"];
    args.extend_from_slice(extra);
    json(&run_train(task, &args))
}

/// Test accuracy of a written model, evaluated in f64.
fn test_accuracy(model: &std::path::Path, task: &str) -> f64 {
    let read = |f: &str| musket_cli::npy::read(std::path::Path::new(&path(task, f)), 1 << 30).unwrap();
    let (x, y) = (read("test_data.npy"), read("test_labels.npy"));
    let m = Model::read(model, 1 << 30).unwrap();
    let g = m.import(&ImportOptions { input_shape: Some(&x.shape), output: None, training: false }).unwrap();
    let out = eval_f64(&g, &x).unwrap().output;
    let k = out.shape[1];
    let hits = (0..x.shape[0])
        .filter(|&r| {
            let row = &out.data[r * k..(r + 1) * k];
            let best = (0..k).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            best as f64 == y.data[r]
        })
        .count();
    hits as f64 / x.shape[0] as f64
}

#[test]
fn logistic_regression_matches_plaintext_on_every_back_end() {
    let reference = reference("logreg");
    let plain = reference["plaintext_train_accuracy"].as_f64().unwrap();
    for (protocol, security) in
        [("2pc", "semi-honest"), ("2pc", "malicious"), ("3pc", "semi-honest"), ("3pc", "malicious")]
    {
        let mut args = vec!["--security", security];
        args.extend(LOGREG_HYPER);
        args.extend(["--epochs", "10", "--check", "--report-loss"]);
        let r = train("logreg", protocol, &args);
        let check = &r["check"];
        let acc = check["train_accuracy"].as_f64().unwrap();
        assert!(
            (acc - plain).abs() <= 0.01,
            "{protocol} {security}: accuracy {acc}, plaintext PyTorch {plain}"
        );
        assert!(check["max_weight_diff"].as_f64().unwrap() < 1e-3, "{protocol} {security}: {check}");
        // The model owner's per-epoch losses follow the plaintext ones.
        let losses: Vec<f64> =
            r["per_epoch"].as_array().unwrap().iter().map(|e| e["loss"].as_f64().unwrap()).collect();
        let plain_losses = reference["plaintext_losses"].as_array().unwrap();
        for (l, p) in losses.iter().zip(plain_losses) {
            assert!(
                (l - p.as_f64().unwrap()).abs() < 2e-3,
                "{protocol} {security}: losses {losses:?} vs {plain_losses:?}"
            );
        }
        assert_eq!(r["per_epoch"].as_array().unwrap().len(), 10);
        assert_eq!(r["security"], security);
    }
}

#[test]
fn digits_mlp_reaches_the_plaintext_test_accuracy() {
    let plain = reference("digits-mlp")["plaintext_test_accuracy"].as_f64().unwrap();
    let dir = tempdir("train-mlp");
    for protocol in ["2pc", "3pc"] {
        let out = dir.join(format!("mlp-{protocol}.onnx"));
        let r = train(
            "digits-mlp",
            protocol,
            &[
                "--loss",
                "cross-entropy",
                "--lr",
                "0.1",
                "--batch-size",
                "32",
                "--epochs",
                "10",
                "--output",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(r["trained_weights"].as_array().unwrap().len(), 4, "{r}");
        let acc = test_accuracy(&out, "digits-mlp");
        assert!((acc - plain).abs() <= 0.01, "{protocol}: test accuracy {acc}, plaintext PyTorch {plain}");
        // The written model runs under musket infer too.
        let x = format!("{EXAMPLES}/digits-test-x.npy");
        let o = musket(&[
            "infer",
            "--model",
            out.to_str().unwrap(),
            "--input",
            &x,
            "--protocol",
            protocol,
            "--json",
        ]);
        assert!(json(&o)["output_shape"][1] == 10);
    }
}

#[test]
fn adam_reaches_the_plaintext_adam_accuracy() {
    let adam = &reference("digits-mlp")["adam"];
    let plain = adam["plaintext_test_accuracy"].as_f64().unwrap();
    let dir = tempdir("train-adam");
    let out = dir.join("adam.onnx");
    let r = train(
        "digits-mlp",
        "3pc",
        &[
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--batch-size",
            "32",
            "--epochs",
            "3",
            "--report-loss",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let acc = test_accuracy(&out, "digits-mlp");
    assert!((acc - plain).abs() <= 0.01, "test accuracy {acc}, plaintext PyTorch Adam {plain}");
    let losses = adam["plaintext_losses"].as_array().unwrap();
    for (e, p) in r["per_epoch"].as_array().unwrap().iter().zip(losses) {
        let (l, p) = (e["loss"].as_f64().unwrap(), p.as_f64().unwrap());
        assert!((l - p).abs() < 0.02, "losses {} vs PyTorch's {losses:?}", r["per_epoch"]);
    }
    // Momentum belongs to SGD.
    let o = run_train(
        "digits-mlp",
        &[
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--momentum",
            "0.9",
            "--lr",
            "0.01",
            "--batch-size",
            "32",
        ],
    );
    assert!(text(&o.stderr).contains("--momentum is for sgd"), "{}", text(&o.stderr));
}

/// A learning rate that makes the weights overflow is caught by the range audit before the
/// secure run, naming the layer.
#[test]
fn overflow_is_an_error_not_a_wrong_model() {
    let o = run_train(
        "digits-mlp",
        &["--loss", "cross-entropy", "--lr", "1000", "--batch-size", "32", "--epochs", "2"],
    );
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("range audit") && e.contains("Gemm"), "{e}");
    assert!(o.stdout.is_empty());
}

#[test]
fn digits_cnn_and_momentum_with_shuffling() {
    let plain = reference("digits-cnn")["plaintext_test_accuracy"].as_f64().unwrap();
    let dir = tempdir("train-cnn");
    let out = dir.join("cnn.onnx");
    let r = train(
        "digits-cnn",
        "3pc",
        &[
            "--loss",
            "cross-entropy",
            "--lr",
            "0.1",
            "--batch-size",
            "32",
            "--epochs",
            "5",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r["per_epoch"].as_array().unwrap().len(), 5);
    let acc = test_accuracy(&out, "digits-cnn");
    assert!((acc - plain).abs() <= 0.01, "test accuracy {acc}, plaintext PyTorch {plain}");
    // Momentum and a shuffled order on the other back end, against the f64 run of the same.
    let r = train(
        "digits-cnn",
        "2pc",
        &[
            "--loss",
            "cross-entropy",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--shuffle",
            "7",
            "--batch-size",
            "64",
            "--epochs",
            "1",
            "--check",
        ],
    );
    let c = &r["check"];
    assert!(c["max_weight_diff"].as_f64().unwrap() < 0.02, "{c}");
    let (a, b) = (c["train_accuracy"].as_f64().unwrap(), c["train_accuracy_float"].as_f64().unwrap());
    assert!((a - b).abs() <= 0.01, "{c}");
}

#[test]
fn refusals_are_clear() {
    let dir = tempdir("train-errors");
    // A model with ops that have no backward pass: the node is named.
    let x = dir.join("x.npy");
    let y = dir.join("y.npy");
    let write = |p: &std::path::Path, shape: &[usize], data: Vec<f64>| {
        musket_cli::npy::write(p, &musket_graph::FloatTensor::new(shape.to_vec(), data).unwrap()).unwrap();
    };
    write(&x, &[4, 1, 8, 8], vec![0.5; 256]);
    write(&y, &[4], vec![0.0, 1.0, 2.0, 3.0]);
    let (xs, ys) = (x.to_str().unwrap(), y.to_str().unwrap());
    let transformer = format!("{EXAMPLES}/digits-transformer-opset17.onnx");
    let rows = dir.join("rows.npy");
    write(&rows, &[4, 8, 8], vec![0.5; 256]);
    let o = musket(&[
        "train",
        "--model",
        &transformer,
        "--data",
        rows.to_str().unwrap(),
        "--labels",
        ys,
        "--loss",
        "cross-entropy",
        "--lr",
        "0.1",
        "--batch-size",
        "1",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("cannot be trained") && e.contains("node"), "{e}");
    // bce needs a final sigmoid.
    let cnn = path("digits-cnn", "model.onnx");
    let o = musket(&[
        "train",
        "--model",
        &cnn,
        "--data",
        xs,
        "--labels",
        ys,
        "--loss",
        "bce",
        "--lr",
        "0.1",
        "--batch-size",
        "2",
    ]);
    assert!(text(&o.stderr).contains("Sigmoid"), "{}", text(&o.stderr));
    // Labels that are not class indices.
    write(&y, &[4], vec![0.0, 1.0, 12.0, 3.0]);
    let o = musket(&[
        "train",
        "--model",
        &cnn,
        "--data",
        xs,
        "--labels",
        ys,
        "--loss",
        "cross-entropy",
        "--lr",
        "0.1",
        "--batch-size",
        "2",
    ]);
    assert!(text(&o.stderr).contains("not a class index"), "{}", text(&o.stderr));
    // Rows that do not match.
    write(&y, &[3], vec![0.0, 1.0, 2.0]);
    let o = musket(&[
        "train",
        "--model",
        &cnn,
        "--data",
        xs,
        "--labels",
        ys,
        "--loss",
        "cross-entropy",
        "--lr",
        "0.1",
        "--batch-size",
        "2",
    ]);
    assert!(!o.status.success() && text(&o.stderr).contains("class index per row"), "{}", text(&o.stderr));
}

/// Three TLS processes: party 0 owns the model, parties 1 and 2 each own half of the rows
/// (3PC); in 2PC the model owner also owns half of the rows and party 1 the rest.
#[test]
fn training_across_processes_with_data_from_two_owners() {
    let dir = tempdir("train-cluster");
    let read =
        |f: &str| musket_cli::npy::read(std::path::Path::new(&path("digits-mlp", f)), 1 << 30).unwrap();
    let (x, y) = (read("data.npy"), read("labels.npy"));
    let half = 700;
    let split = |t: &musket_graph::FloatTensor, from: usize, to: usize, name: &str| {
        let per: usize = t.shape[1..].iter().product();
        let mut shape = t.shape.clone();
        shape[0] = to - from;
        let part = musket_graph::FloatTensor::new(shape, t.data[from * per..to * per].to_vec()).unwrap();
        let p = dir.join(name);
        musket_cli::npy::write(&p, &part).unwrap();
        p.to_str().unwrap().to_string()
    };
    let rows = x.shape[0];
    let (xa, ya) = (split(&x, 0, half, "xa.npy"), split(&y, 0, half, "ya.npy"));
    let (xb, yb) = (split(&x, half, rows, "xb.npy"), split(&y, half, rows, "yb.npy"));
    let model = path("digits-mlp", "model.onnx");
    let plain = reference("digits-mlp")["plaintext_test_accuracy"].as_f64().unwrap();
    for protocol in ["3pc", "2pc", "3pc-malicious"] {
        let cfg = init_cluster(&format!("train-{protocol}"), protocol, 60);
        let out = dir.join(format!("trained-{protocol}.onnx"));
        let hyper = [
            "train",
            "--loss",
            "cross-entropy",
            "--lr",
            "0.1",
            "--batch-size",
            "32",
            "--epochs",
            "10",
            "--report-loss",
        ];
        let with =
            |extra: &[&str]| -> Vec<String> { hyper.iter().chain(extra).map(|s| s.to_string()).collect() };
        let (owner0, owner1, owner2): (Vec<String>, Vec<String>, Vec<String>) = if protocol.starts_with("3pc")
        {
            (
                with(&["--model", &model, "--output", out.to_str().unwrap()]),
                with(&["--data", &xa, "--labels", &ya]),
                with(&["--data", &xb, "--labels", &yb]),
            )
        } else {
            (
                with(&["--model", &model, "--output", out.to_str().unwrap(), "--data", &xa, "--labels", &ya]),
                with(&["--data", &xb, "--labels", &yb]),
                with(&[]),
            )
        };
        let kids = vec![
            spawn_party(&cfg, 0, &strs(&owner0)),
            spawn_party(&cfg, 1, &strs(&owner1)),
            spawn_party(&cfg, 2, &strs(&owner2)),
        ];
        let outs: Vec<_> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(120))).collect();
        let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
        assert_eq!(v[0]["learned_weights"], true, "{protocol}: {}", v[0]);
        let security = if protocol.ends_with("malicious") { "malicious" } else { "semi-honest" };
        assert!(v.iter().all(|p| p["security"] == security), "{protocol}: {v:?}");
        assert_eq!(v[1]["learned_weights"], false);
        assert_eq!(
            v[0]["rows"].as_object().unwrap().values().map(|r| r.as_u64().unwrap()).sum::<u64>(),
            rows as u64
        );
        // Only the model owner learns the losses.
        assert!(v[0]["per_epoch"][9]["loss"].as_f64().unwrap() < 0.5, "{}", v[0]);
        assert!(v[1]["per_epoch"][9]["loss"].is_null());
        let acc = test_accuracy(&out, "digits-mlp");
        assert!((acc - plain).abs() <= 0.01, "{protocol}: test accuracy {acc}, plaintext PyTorch {plain}");
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A split by columns: party 1 holds the first 40 features of every row and the labels,
/// party 2 the other 24 (3PC); the result matches training on the whole table.
#[test]
fn training_on_features_split_by_columns() {
    let dir = tempdir("train-columns-data");
    let read =
        |f: &str| musket_cli::npy::read(std::path::Path::new(&path("digits-mlp", f)), 1 << 30).unwrap();
    let (x, y) = (read("data.npy"), read("labels.npy"));
    let (rows, cols) = (x.shape[0], x.shape[1]);
    let block = |from: usize, to: usize, name: &str| {
        let mut data = Vec::new();
        for r in 0..rows {
            data.extend_from_slice(&x.data[r * cols + from..r * cols + to]);
        }
        let p = dir.join(name);
        musket_cli::npy::write(&p, &musket_graph::FloatTensor::new(vec![rows, to - from], data).unwrap())
            .unwrap();
        p.to_str().unwrap().to_string()
    };
    let (left, right) = (block(0, 40, "left.npy"), block(40, cols, "right.npy"));
    let labels = dir.join("labels.npy");
    musket_cli::npy::write(&labels, &y).unwrap();
    let model = path("digits-mlp", "model.onnx");
    let out = dir.join("trained.onnx");
    let cfg = init_cluster("train-columns", "3pc", 60);
    let hyper = [
        "train",
        "--split",
        "columns",
        "--loss",
        "cross-entropy",
        "--lr",
        "0.1",
        "--batch-size",
        "32",
        "--epochs",
        "10",
    ];
    let with = |extra: &[&str]| -> Vec<String> { hyper.iter().chain(extra).map(|s| s.to_string()).collect() };
    let kids = vec![
        spawn_party(&cfg, 0, &strs(&with(&["--model", &model, "--output", out.to_str().unwrap()]))),
        spawn_party(&cfg, 1, &strs(&with(&["--data", &left, "--labels", labels.to_str().unwrap()]))),
        spawn_party(&cfg, 2, &strs(&with(&["--data", &right]))),
    ];
    let outs: Vec<_> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(120))).collect();
    let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
    assert_eq!(v[0]["learned_weights"], true, "{}", v[0]);
    let plain = reference("digits-mlp")["plaintext_test_accuracy"].as_f64().unwrap();
    let acc = test_accuracy(&out, "digits-mlp");
    assert!((acc - plain).abs() <= 0.01, "test accuracy {acc}, plaintext PyTorch {plain}");
    // Two owners with labels is refused at set-up, by every party.
    let cfg = init_cluster("train-columns-bad", "3pc", 20);
    let kids = vec![
        spawn_party(&cfg, 0, &strs(&with(&["--model", &model]))),
        spawn_party(&cfg, 1, &strs(&with(&["--data", &left, "--labels", labels.to_str().unwrap()]))),
        spawn_party(&cfg, 2, &strs(&with(&["--data", &right, "--labels", labels.to_str().unwrap()]))),
    ];
    let outs: Vec<_> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect();
    assert!(outs.iter().all(|o| !o.status.success()));
    // Every party finds it; whichever stops first tells the others.
    let errors: Vec<String> = outs.iter().map(|o| text(&o.stderr)).collect();
    assert!(errors.iter().any(|e| e.contains("exactly one data owner with --labels")), "{errors:?}");
}
