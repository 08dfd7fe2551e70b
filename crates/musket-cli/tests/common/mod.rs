//! Helpers shared by the binary's integration tests: running `musket`, making a cluster,
//! spawning parties and waiting for them with a bound.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_musket");

pub(crate) fn musket(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("musket runs")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

/// A test's scratch directory, removed when dropped (when the test ends, passed or failed),
/// so that test runs leave nothing behind in the temporary directory.
pub(crate) struct TempDir(tempfile::TempDir);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

pub(crate) fn tempdir(name: &str) -> TempDir {
    TempDir(tempfile::Builder::new().prefix(&format!("musket-cli-test-{name}-")).tempdir().unwrap())
}

/// A cluster's configuration file, in a scratch directory of its own that goes with it.
pub(crate) struct ClusterConfig {
    path: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for ClusterConfig {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ClusterConfig {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A base port with three free ports after it.
pub(crate) fn free_base_port() -> u16 {
    for _ in 0..200 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = l.local_addr().unwrap().port();
        drop(l);
        if base < 65000 && (0..3).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports");
}

pub(crate) fn init_cluster(name: &str, protocol: &str, timeout_secs: u64) -> ClusterConfig {
    let dir = tempdir(name);
    let port = free_base_port().to_string();
    // `3pc-malicious` stands for `--protocol 3pc --security malicious`.
    let (protocol, security) = match protocol.strip_suffix("-malicious") {
        Some(p) => (p, "malicious"),
        None => (protocol, "semi-honest"),
    };
    let o = musket(&[
        "cluster",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--protocol",
        protocol,
        "--security",
        security,
        "--base-port",
        &port,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cfg = dir.join("cluster.toml");
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("timeout_secs = 60", &format!("timeout_secs = {timeout_secs}"));
    std::fs::write(&cfg, t).unwrap();
    ClusterConfig { path: cfg, _dir: dir }
}

pub(crate) fn spawn_party(cfg: &Path, id: usize, job: &[&str]) -> Child {
    let mut args = vec!["party", "--config", cfg.to_str().unwrap(), "--id"];
    let id = id.to_string();
    args.push(&id);
    args.push("--json");
    args.extend_from_slice(job);
    Command::new(BIN).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

pub(crate) fn wait_bounded(mut c: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            c.kill().unwrap();
            panic!("a party hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.wait_with_output().unwrap()
}

/// The bundled examples directory.
pub(crate) const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// The digits CNN and its one-image sample, as paths.
pub(crate) fn cnn_model_and_sample() -> (String, String) {
    (format!("{EXAMPLES}/digits-cnn-opset17.onnx"), format!("{EXAMPLES}/digits-cnn-sample.npy"))
}

/// Checks party 1's JSON output against onnxruntime's logits for the CNN sample (the first
/// row of the reference file), to 0.01.
pub(crate) fn assert_cnn_sample_logits(party1: &serde_json::Value, what: &str) {
    let bytes = std::fs::read(format!("{EXAMPLES}/digits-cnn-opset17-reference.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let reference: Vec<f64> = npy.into_vec::<f32>().unwrap().into_iter().take(10).map(f64::from).collect();
    let got: Vec<f64> = party1["output"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(got.len(), 10);
    for (g, r) in got.iter().zip(&reference) {
        assert!((g - r).abs() < 0.01, "{what}: {got:?} vs {reference:?}");
    }
}

/// A .npy file's shape and values as f64 (int64, float64 or float32 data).
pub(crate) fn read_npy(path: &str) -> (Vec<u64>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    let data: Vec<f64> = match npy.dtype() {
        npyz::DType::Plain(ts) if ts.size_field() == 8 && ts.type_char() == npyz::TypeChar::Int => {
            npy.into_vec::<i64>().unwrap().into_iter().map(|v| v as f64).collect()
        }
        npyz::DType::Plain(ts) if ts.size_field() == 8 => npy.into_vec::<f64>().unwrap(),
        _ => npy.into_vec::<f32>().unwrap().into_iter().map(f64::from).collect(),
    };
    (shape, data)
}
