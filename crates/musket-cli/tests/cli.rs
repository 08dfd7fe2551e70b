//! The `musket` binary end to end: local runs, three processes over TLS, a killed party, and
//! bad input. Every failure must be a clear message and a non-zero exit, never a panic.

mod common;

use common::*;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

#[test]
fn millionaires_locally_on_both_backends() {
    for p in ["2pc", "3pc"] {
        for (a, b, want) in [
            ("5", "7", "bob"),
            ("-3", "2", "bob"),
            ("0", "0", "equal"),
            ("1000000000000", "999999999999", "alice"),
            ("-1000000000000", "-1000000000001", "alice"),
        ] {
            let v = json(&musket(&["millionaires", "--protocol", p, "--json", "--", a, b]));
            assert_eq!(v["richer"], want, "{p}: {a} vs {b}");
            assert_eq!(v["protocol"], p);
            assert!(v["rounds"].as_u64().unwrap() > 0);
            assert_eq!(v["bytes_sent"].as_array().unwrap().len(), 3);
        }
    }
    let o = musket(&["millionaires", "5", "7"]);
    assert!(text(&o.stdout).contains("Bob is richer"), "{}", text(&o.stdout));
}

#[test]
fn bad_arguments_fail_cleanly() {
    let mut all = Vec::new();
    let o = musket(&["millionaires", "--", "5000000000000000000", "1"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("outside the supported range"), "{}", text(&o.stderr));
    all.push(o);
    let o = musket(&["millionaires", "--protocol", "4pc", "1", "2"]);
    assert!(!o.status.success());
    let o = musket(&[
        "party",
        "--config",
        "/nonexistent/cluster.toml",
        "--id",
        "0",
        "millionaires",
        "--amount",
        "3",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("cannot read"), "{}", text(&o.stderr));
    all.push(o);
    let dir = tempdir("badtoml");
    std::fs::write(dir.join("cluster.toml"), "protocol = \"3pc\"\n[[party]]\nid = \"zero\"\n").unwrap();
    let o = musket(&[
        "party",
        "--config",
        dir.join("cluster.toml").to_str().unwrap(),
        "--id",
        "0",
        "millionaires",
        "--amount",
        "3",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("invalid cluster file"), "{}", text(&o.stderr));
    let o2 = musket(&[
        "party",
        "--config",
        dir.join("cluster.toml").to_str().unwrap(),
        "--id",
        "7",
        "millionaires",
    ]);
    assert!(!o2.status.success());
    all.push(o);
    all.push(o2);
    for o in &all {
        assert!(!o.status.success());
        assert!(
            text(&o.stderr).starts_with("error:") || text(&o.stderr).contains("error:"),
            "{}",
            text(&o.stderr)
        );
        assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    }
}

#[test]
fn three_processes_over_tls() {
    for protocol in ["3pc", "2pc", "3pc-malicious"] {
        let cfg = init_cluster(&format!("tls-{protocol}"), protocol, 30);
        let kids = vec![
            spawn_party(&cfg, 0, &["millionaires", "--amount", "-50"]),
            spawn_party(&cfg, 1, &["millionaires", "--amount=-51"]),
            spawn_party(&cfg, 2, &["millionaires"]),
        ];
        let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect();
        let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
        assert_eq!(v[0]["richer"], "alice", "{protocol}");
        assert_eq!(v[1]["richer"], "alice", "{protocol}");
        assert!(v[2]["richer"].is_null(), "party 2 learns nothing ({protocol})");
        let security = if protocol.ends_with("malicious") { "malicious" } else { "semi-honest" };
        assert!(v.iter().all(|p| p["security"] == security), "{protocol}: {v:?}");
    }
}

#[test]
fn killing_a_party_stops_the_others_with_its_name() {
    let cfg = init_cluster("kill", "3pc", 4);
    let job = ["compare-loop", "--elements", "20000", "--iterations", "1000000"];
    let mut kids: Vec<Child> = (0..3).map(|i| spawn_party(&cfg, i, &job)).collect();
    std::thread::sleep(Duration::from_millis(2500));
    for k in kids.iter_mut() {
        assert!(k.try_wait().unwrap().is_none(), "parties should still be computing");
    }
    let mut victim = kids.pop().unwrap();
    victim.kill().unwrap();
    let _ = victim.wait();
    let killed_at = Instant::now();
    for k in kids {
        let o = wait_bounded(k, Duration::from_secs(20));
        assert!(!o.status.success(), "a survivor must fail");
        let err = text(&o.stderr);
        assert!(err.contains("party 2"), "error should name party 2: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty(), "no partial result is printed");
    }
    assert!(killed_at.elapsed() < Duration::from_secs(10), "survivors stop within the timeout");
}

#[test]
fn inference_as_three_processes_over_tls() {
    let (model, input) = cnn_model_and_sample();
    for (protocol, extra) in
        [("3pc", None), ("2pc", None), ("2pc", Some("--preprocess")), ("3pc-malicious", None)]
    {
        let cfg = init_cluster(&format!("infer-{protocol}{}", extra.unwrap_or("")), protocol, 30);
        let args =
            |a: &[&str]| -> Vec<String> { a.iter().copied().chain(extra).map(str::to_string).collect() };
        let kids =
            [args(&["infer", "--model", &model]), args(&["infer", "--input", &input]), args(&["infer"])]
                .iter()
                .enumerate()
                .map(|(id, a)| spawn_party(&cfg, id, &a.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect::<Vec<_>>();
        let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect();
        let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
        assert_cnn_sample_logits(&v[1], protocol);
        // With --preprocess each compute party traced the plan itself; had the plans differed,
        // the run would have stopped.
        for party in &v[..2] {
            assert_eq!(party.get("online_seconds").is_some(), extra.is_some(), "{party}");
        }
        assert!(
            v[0].get("output").is_none() && v[2].get("output").is_none(),
            "only party 1 learns the output"
        );
    }
}

/// A token-id model across processes: the data owner runs the ids program (RoBERTa's position
/// ids) on its own ids; the model owner sees only the shape of the ids.
#[test]
fn roberta_on_private_token_ids_as_three_processes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/exports");
    let (model, input) = (format!("{dir}/roberta-dynamo.onnx"), format!("{dir}/roberta-dynamo-input.npy"));
    let (_, want) = read_npy(&format!("{dir}/roberta-dynamo-reference.npy"));
    let cfg = init_cluster("infer-roberta", "3pc", 30);
    let kids = vec![
        spawn_party(&cfg, 0, &["infer", "--model", &model]),
        spawn_party(&cfg, 1, &["infer", "--input", &input]),
        spawn_party(&cfg, 2, &["infer"]),
    ];
    let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect();
    let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
    let got: Vec<f64> = v[1]["output"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(got.len(), want.len());
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-2, "max difference {diff}");
    assert!(v[0].get("output").is_none() && v[2].get("output").is_none());
}

#[test]
fn bench_prints_json_rows_for_a_model_case() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let o = Command::new(BIN)
        .args(["bench", "--only", "lenet-1", "--reps", "1", "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "both back ends");
    for r in rows {
        assert_eq!(r["name"], "lenet-1");
        assert!(r["seconds"].as_f64().unwrap() > 0.0);
        assert!(r["rounds"].as_u64().unwrap() > 10);
        assert_eq!(r["bytes_per_party"].as_array().unwrap().len(), 3);
    }
    let o = musket(&["bench", "--only", "no-such-case"]);
    assert!(!o.status.success() && text(&o.stderr).contains("cases:"));
}

/// Parties started with different jobs or different cluster files fail at once, each saying
/// what differs (before: a confusing "request length is not a whole number of words" after
/// 10 s, or success with a wrong result).
#[test]
fn mismatched_jobs_and_cluster_files_fail_at_once_saying_what() {
    let cfg = init_cluster("mismatch", "3pc", 10);
    let dir = cfg.parent().unwrap().to_path_buf();
    let text_of = |o: &Output| text(&o.stderr);
    let run = |cfgs: [&std::path::Path; 3], jobs: [&[&str]; 3]| -> Vec<Output> {
        let started = Instant::now();
        let kids: Vec<Child> = (0..3).map(|i| spawn_party(cfgs[i], i, jobs[i])).collect();
        let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(30))).collect();
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
        outs
    };
    // Party 2 runs another command.
    let outs = run(
        [&cfg, &cfg, &cfg],
        [&["millionaires", "--amount", "1"], &["millionaires", "--amount", "2"], &["compare-loop"]],
    );
    for (i, o) in outs.iter().enumerate() {
        assert!(!o.status.success(), "party {i}: {}", text_of(o));
        assert!(text_of(o).contains("every party must run the same job"), "party {i}: {}", text_of(o));
    }
    assert!(text_of(&outs[0]).contains("party 2 runs `compare-loop"), "{}", text_of(&outs[0]));
    // Party 2's cluster file says 2pc.
    let other = dir.join("cluster-2pc.toml");
    std::fs::write(&other, std::fs::read_to_string(&cfg).unwrap().replace("\"3pc\"", "\"2pc\"")).unwrap();
    let outs = run(
        [&cfg, &cfg, &other],
        [&["millionaires", "--amount", "1"], &["millionaires", "--amount", "2"], &["millionaires"]],
    );
    for o in &outs {
        assert!(!o.status.success() && text_of(o).contains("protocol"), "{}", text_of(o));
    }
    assert!(text_of(&outs[0]).contains("party 2's cluster file says protocol 2pc"), "{}", text_of(&outs[0]));
    // Party 2's cluster file writes party 0's address differently (it still connects).
    let t = std::fs::read_to_string(&cfg).unwrap();
    let addr0 = t.lines().find(|l| l.starts_with("address")).unwrap().to_string();
    let other = dir.join("cluster-localhost.toml");
    std::fs::write(&other, t.replacen(&addr0, &addr0.replace("127.0.0.1", "localhost"), 1)).unwrap();
    let outs = run(
        [&cfg, &cfg, &other],
        [&["millionaires", "--amount", "1"], &["millionaires", "--amount", "2"], &["millionaires"]],
    );
    for o in &outs {
        assert!(!o.status.success() && text_of(o).contains("cluster file differs"), "{}", text_of(o));
    }
    // Different inference options.
    let (model, input) = cnn_model_and_sample();
    let outs = run(
        [&cfg, &cfg, &cfg],
        [&["infer", "--model", &model], &["infer", "--input", &input, "--batch-slice", "4"], &["infer"]],
    );
    for o in &outs {
        assert!(!o.status.success() && text_of(o).contains("batch_slice="), "{}", text_of(o));
    }
}

/// Certificates are checked when the cluster file is loaded: a bad PEM names the party and
/// the file, and one certificate for two parties is refused.
#[test]
fn bad_or_shared_certificates_are_named_at_load() {
    let cfg = init_cluster("certs", "3pc", 10);
    let dir = cfg.parent().unwrap();
    let party = |id: &str| {
        musket(&["party", "--config", cfg.to_str().unwrap(), "--id", id, "millionaires", "--amount", "1"])
    };
    std::fs::write(dir.join("party2.crt"), "not a certificate").unwrap();
    let o = party("0");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("the certificate of party 2") && text(&o.stderr).contains("party2.crt"),
        "{}",
        text(&o.stderr)
    );
    std::fs::copy(dir.join("party1.crt"), dir.join("party2.crt")).unwrap();
    let o = party("0");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("parties 1 and 2 have the same certificate"), "{}", text(&o.stderr));
}

/// True when `s` holds an SGR escape sequence (colour or style: ESC [ digits/; m); the progress
/// bar's line clearing (ESC [ 2K) is not one.
fn has_colour(s: &str) -> bool {
    s.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let params: String = r.chars().take_while(|c| c.is_ascii_digit() || *c == ';').collect();
            r[params.len()..].starts_with('m')
        })
    })
}

/// Log lines carry colour codes only on a terminal, and never with NO_COLOR set.
#[test]
fn logs_are_plain_text_in_files_and_pipes() {
    let (model, input) = cnn_model_and_sample();
    let o = Command::new(BIN)
        .args(["infer", "--model", &model, "--input", &input])
        .env("MUSKET_LOG", "debug")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("layer done"), "{err}");
    assert!(!has_colour(&err), "colour codes in a pipe: {err:?}");
    // On a terminal (util-linux `script` gives the command one), colour unless NO_COLOR.
    if Command::new("script").arg("--version").output().is_err() {
        println!("SKIPPED the terminal half: no `script` command");
        return;
    }
    for (no_color, want) in [("", true), ("1", false)] {
        let cmd = format!(
            "MUSKET_LOG=debug NO_COLOR={no_color} {BIN} infer --model {model} --input {input} >/dev/null"
        );
        let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
        let out = text(&o.stdout);
        assert!(out.contains("layer done"), "{out}");
        assert_eq!(has_colour(&out), want, "NO_COLOR={no_color:?}: {out:?}");
    }
}

/// Writes `factor` times the bundled sample `name` as float64 .npy into `dir`.
fn scaled_sample(dir: &std::path::Path, name: &str, shape: &[u64], factor: f64) -> String {
    use npyz::WriterBuilder;
    let bytes = std::fs::read(format!("{EXAMPLES}/{name}")).unwrap();
    let x: Vec<f64> = npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let path = dir.join(format!("x{factor}-{name}"));
    let f = std::fs::File::create(&path).unwrap();
    let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(f).begin_nd().unwrap();
    w.extend(x.iter().map(|v| v * factor)).unwrap();
    w.finish().unwrap();
    path.to_str().unwrap().to_string()
}

/// Across processes nobody holds both the weights and the input: the secure range check makes
/// every party fail, before any output is opened, where the computation would overflow (party
/// 1 printed a random class with exit status 0 before), and the data owner's own check refuses
/// an input beyond the range at once. The clean run passes the check.
#[test]
fn range_errors_across_processes_fail_every_party() {
    let cfg = init_cluster("range", "3pc", 30);
    let dir = cfg.parent().unwrap().to_path_buf();
    let model = format!("{EXAMPLES}/digits-transformer-opset17.onnx");
    let run = |input: &str, extra: &[&str]| -> Vec<Output> {
        let p0: Vec<&str> = [&["infer", "--model", &model][..], extra].concat();
        let p1: Vec<&str> = [&["infer", "--input", input][..], extra].concat();
        let p2: Vec<&str> = [&["infer"][..], extra].concat();
        let kids = vec![spawn_party(&cfg, 0, &p0), spawn_party(&cfg, 1, &p1), spawn_party(&cfg, 2, &p2)];
        kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect()
    };
    let clean = scaled_sample(&dir, "digits-transformer-sample.npy", &[1, 8, 8], 1.0);
    let outs = run(&clean, &[]);
    let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
    assert_eq!(v[1]["secure_range_check"], true);
    assert_eq!(v[1]["output"].as_array().unwrap().len(), 10);
    // Attention scores overflow at 10^4 times the sample: every party fails, nothing printed.
    let hot = scaled_sample(&dir, "digits-transformer-sample.npy", &[1, 8, 8], 1e4);
    for (i, o) in run(&hot, &[]).iter().enumerate() {
        assert!(!o.status.success() && o.stdout.is_empty(), "party {i}: {}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains("secure range check found values outside"),
            "party {i}: {}",
            text(&o.stderr)
        );
    }
    // The digits CNN at 10^5 times its sample: the data owner's plaintext check.
    let (cnn, _) = cnn_model_and_sample();
    let big = scaled_sample(&dir, "digits-cnn-sample.npy", &[1, 1, 8, 8], 1e5);
    let kids = vec![
        spawn_party(&cfg, 0, &["infer", "--model", &cnn]),
        spawn_party(&cfg, 1, &["infer", "--input", &big]),
        spawn_party(&cfg, 2, &["infer"]),
    ];
    let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(60))).collect();
    for o in &outs {
        assert!(!o.status.success() && o.stdout.is_empty(), "{}", text(&o.stdout));
    }
    assert!(text(&outs[1].stderr).contains("the input reaches 1.000e5"), "{}", text(&outs[1].stderr));
    assert!(
        text(&outs[0].stderr).contains("the data owner's input is outside the range"),
        "{}",
        text(&outs[0].stderr)
    );
    assert!(!text(&outs[0].stderr).contains("1.000e5"), "the magnitude stays with the data owner");
}
