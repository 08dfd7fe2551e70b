//! Secrets never reach logs or messages: a full inference at the most verbose log level, in one
//! process and as three processes, must not print any input value or weight, in any of the
//! forms a careless log line would use (f64 or f32 text, fixed-point encoding in decimal or
//! hex), nor anything shaped like key material or a tensor dump.

mod common;

use common::*;
use std::collections::HashSet;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Every way a value might be printed.
fn renderings(v: f64) -> Vec<String> {
    let fixed = (v * 65536.0).round() as i64;
    vec![
        format!("{v}"),
        format!("{}", v as f32),
        format!("{v:e}"),
        fixed.to_string(),
        (fixed as u64).to_string(),
        format!("{:x}", fixed as u64),
        format!("{:#x}", fixed as u64),
    ]
}

fn tokens(log: &str) -> HashSet<String> {
    log.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')))
        .map(|t| t.trim_end_matches('.').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Fails if `log` holds a rendering of any secret, a long hex run or a list of many numbers.
fn assert_clean(log: &str, secrets: &[f64], what: &str) {
    let toks = tokens(log);
    for &s in secrets {
        for r in renderings(s) {
            assert!(!toks.contains(&r), "{what}: the log shows a secret value as {r}:\n{log}");
        }
    }
    for t in &toks {
        let hex_run = t.chars().filter(char::is_ascii_hexdigit).count();
        assert!(hex_run < 32 || !t.chars().all(|c| c.is_ascii_hexdigit()), "{what}: key-like token {t}");
    }
    for line in log.lines() {
        let numbers = line.split([',', ' ']).filter(|w| w.trim().parse::<f64>().is_ok()).count();
        assert!(numbers < 12 || line.starts_with("output["), "{what}: a line dumps numbers: {line}");
    }
}

/// A CNN input whose values are distinctive (nothing else in a log could equal them).
fn distinctive_input(dir: &std::path::Path) -> (std::path::PathBuf, Vec<f64>) {
    let values: Vec<f64> = (0..64).map(|i| 3.173_205_081 + 0.012_345_678_9 * i as f64).collect();
    (write_input(dir, "secret-input.npy", &values), values)
}

fn write_input(dir: &std::path::Path, name: &str, values: &[f64]) -> std::path::PathBuf {
    let path = dir.join(name);
    let t = musket_graph::FloatTensor::new(vec![1, 1, 8, 8], values.to_vec()).unwrap();
    musket_cli::npy::write(&path, &t).unwrap();
    path
}

fn model_secrets(model: &str) -> Vec<f64> {
    let g = musket_onnx::load(std::path::Path::new(model)).unwrap();
    // Weights with enough digits to be unmistakable.
    g.weights.iter().flat_map(|(_, t)| t.data.iter().copied()).filter(|v| v.abs() > 1e-3).take(200).collect()
}

fn logged(o: &Output) -> String {
    format!("{}\n{}", text(&o.stdout), text(&o.stderr))
}

#[test]
fn a_traced_local_inference_logs_no_secret() {
    let dir = tempdir("secrets-local");
    let (input, values) = distinctive_input(&dir);
    let model = format!("{EXAMPLES}/digits-cnn-opset17.onnx");
    let mut secrets = values.clone();
    secrets.extend(model_secrets(&model));
    for protocol in ["2pc", "3pc"] {
        let o = Command::new(BIN)
            .args(["infer", "--model", &model, "--input", input.to_str().unwrap(), "--protocol", protocol])
            .env("MUSKET_LOG", "trace")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("TRACE") || text(&o.stderr).contains("DEBUG"), "tracing is on");
        assert_clean(&logged(&o), &secrets, protocol);
    }
    // An out-of-range input value is refused without echoing it or its neighbours.
    let mut bad = values.clone();
    bad[17] = 1.234_567_89e20;
    let input = write_input(&dir, "bad-input.npy", &bad);
    let o = Command::new(BIN)
        .args(["infer", "--model", &model, "--input", input.to_str().unwrap()])
        .env("MUSKET_LOG", "trace")
        .output()
        .unwrap();
    assert!(!o.status.success(), "a value beyond the fixed-point range must be refused");
    assert!(text(&o.stderr).contains("range"), "{}", text(&o.stderr));
    let mut secrets_and_bad = secrets.clone();
    secrets_and_bad.push(bad[17]);
    assert_clean(&logged(&o), &secrets_and_bad, "out-of-range input");
}

#[test]
fn traced_parties_log_no_secret() {
    let cfg = init_cluster("secrets-parties", "3pc", 30);
    let (input, values) = distinctive_input(cfg.parent().unwrap());
    let model = format!("{EXAMPLES}/digits-cnn-opset17.onnx");
    let mut secrets = values;
    secrets.extend(model_secrets(&model));
    let spawn = |id: usize, job: &[&str]| {
        let id = id.to_string();
        let mut args = vec!["party", "--config", cfg.to_str().unwrap(), "--id", &id];
        args.extend_from_slice(job);
        Command::new(BIN)
            .args(&args)
            .env("MUSKET_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let kids = vec![
        spawn(0, &["infer", "--model", &model]),
        spawn(1, &["infer", "--input", input.to_str().unwrap()]),
        spawn(2, &["infer"]),
    ];
    for (i, k) in kids.into_iter().enumerate() {
        let o = wait_bounded(k, Duration::from_secs(60));
        assert!(o.status.success(), "party {i}: {}", text(&o.stderr));
        assert_clean(&logged(&o), &secrets, &format!("party {i}"));
    }
}
