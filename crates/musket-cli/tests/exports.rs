//! The models of `scripts/make_exports.py`: what PyTorch's default (dynamo) exporter, its
//! TorchScript exporter, `tf2onnx` (Keras) and `transformers` write today, imported and run on both back ends
//! through the CLI, against onnxruntime's outputs.

mod common;

use common::{read_npy, BIN};
use std::process::Command;
const EXPORTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/exports");

/// Largest |secure - onnxruntime| difference accepted (measured: below 2.3e-3, GPT-2's
/// tanh-GELU and softmax being the largest).
const TOLERANCE: f64 = 1e-2;

#[test]
fn every_export_matches_onnxruntime_on_both_back_ends() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{EXPORTS}/manifest.json")).unwrap()).unwrap();
    let models = manifest["models"].as_array().unwrap();
    assert!(models.len() >= 31, "the manifest lists {} models", models.len());
    let dir = std::env::temp_dir().join(format!("musket-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut external = 0;
    for m in models {
        let name = m["name"].as_str().unwrap();
        external += usize::from(m["external_data"].as_bool() == Some(true));
        let (want_shape, want) = read_npy(&format!("{EXPORTS}/{name}-reference.npy"));
        for protocol in ["2pc", "3pc"] {
            let out = dir.join(format!("{name}-{protocol}.npy"));
            let o = Command::new(BIN)
                .args(["infer", "--model", &format!("{EXPORTS}/{name}.onnx")])
                .args(["--input", &format!("{EXPORTS}/{name}-input.npy"), "--protocol", protocol])
                .args(["--output", out.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} {protocol}: {}", String::from_utf8_lossy(&o.stderr));
            let (shape, got) = read_npy(out.to_str().unwrap());
            assert_eq!(shape, want_shape, "{name} {protocol}");
            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(diff <= TOLERANCE, "{name} {protocol}: max difference {diff}");
            println!("{name} {protocol}: max difference {diff:.2e}");
        }
    }
    // The dynamo exporter writes weights to an external data file even for small models.
    assert!(external >= 6, "only {external} models use external data");
    let _ = std::fs::remove_dir_all(&dir);
}
