//! `musket infer`: private inference of an ONNX model. In the local mode all parties are
//! threads of this process: party 0 is the model owner (only its thread sees the weights),
//! party 1 the data owner and output receiver (only its thread sees the input and output).

use anyhow::{bail, Context, Result};
use clap::Args;
use musket_cli::npy;
use musket_core::{MpcError, Plain, Protocol};
use musket_graph::{FloatTensor, Graph, LayerStats, Owners, RunOutput};
use musket_ring::FixedPoint;
use musket_session::{job_rounds, run_local, Backend, Job};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `musket infer`.
#[derive(Args, Debug)]
pub(crate) struct InferArgs {
    /// The ONNX model (the model owner's).
    #[arg(long)]
    model: PathBuf,
    /// The input as .npy (the data owner's), including the batch dimension.
    #[arg(long)]
    input: PathBuf,
    /// Protocol back end.
    #[arg(long, default_value = "3pc")]
    protocol: Backend,
    /// Write the output to this .npy file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Fractional bits of the fixed-point encoding (14 to 18, where every secure function keeps
    /// its stated domain), or `auto`: the smallest number (14 to 18)
    /// whose plaintext fixed-point run matches the f64 run on this input (same top-1, outputs
    /// within 1e-2), as Athos chooses a scale on sample data.
    #[arg(long, default_value = "16")]
    frac_bits: String,
    /// Also run the f64 and the plaintext fixed-point references and report the largest
    /// differences from the secure output.
    #[arg(long)]
    check: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const OWNERS: Owners = Owners { model: 0, data: 1, output: 1 };

struct Inference<'a> {
    graph: &'a Graph,
    public: Graph,
    input: &'a FloatTensor,
    fp: FixedPoint,
    progress: Option<indicatif::ProgressBar>,
}

impl Job for Inference<'_> {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        let me = p.party_id();
        let graph = if me == OWNERS.model || p.compute_parties() == 1 { self.graph } else { &self.public };
        let input = (me == OWNERS.data || p.compute_parties() == 1).then_some(self.input);
        let bar = self.progress.as_ref().filter(|_| me == OWNERS.output);
        let mut tick = |i: usize, total: usize, name: &str| {
            if let Some(b) = bar {
                b.set_length(total as u64);
                b.set_position(i as u64);
                b.set_message(name.to_string());
            }
        };
        musket_graph::run(p, graph, self.fp, OWNERS, input, &self.input.shape, &mut tick)
    }
}

#[derive(Serialize)]
struct Layer {
    name: String,
    op: String,
    bytes_sent: Vec<u64>,
    rounds: u64,
    /// Wall-clock seconds of the layer at the output receiver.
    seconds: f64,
}

#[derive(Serialize)]
struct Report {
    protocol: &'static str,
    output_shape: Vec<usize>,
    output: Vec<f64>,
    top1: Option<Vec<usize>>,
    seconds: f64,
    rounds: u64,
    bytes_sent: Vec<u64>,
    layers: Vec<Layer>,
    /// Fractional bits used.
    frac_bits: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_max_abs_diff: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_max_abs_diff_float: Option<f64>,
    /// Nodes whose values exceed the fixed-point range (from the f64 run).
    range_warnings: Vec<String>,
}

fn top1(t: &FloatTensor) -> Option<Vec<usize>> {
    let [rows, classes] = t.shape[..] else { return None };
    (classes > 1).then(|| {
        (0..rows)
            .map(|r| {
                let row = &t.data[r * classes..(r + 1) * classes];
                (0..classes).fold(0, |best, i| if row[i] > row[best] { i } else { best })
            })
            .collect()
    })
}

/// The first item of a batch when the model's batch dimension is dynamic, else the input.
fn first_item(graph: &Graph, input: &FloatTensor) -> FloatTensor {
    match (graph.input_shape.first(), input.shape.first()) {
        (Some(None), Some(&n)) if n > 1 => {
            let per = input.data.len() / n;
            let mut shape = input.shape.clone();
            shape[0] = 1;
            FloatTensor { shape, data: input.data[..per].to_vec() }
        }
        _ => input.clone(),
    }
}

/// Largest |a - b| over two equally long slices.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Runs the graph in plaintext fixed point with `fp`.
fn plain_run(graph: &Graph, input: &FloatTensor, fp: FixedPoint) -> Result<FloatTensor> {
    let job = Inference { graph, public: Graph::default(), input, fp, progress: None };
    job.run(&mut Plain)?.output.context("plaintext run produced no output")
}

/// Athos's idea: the smallest scale that keeps the float result on sample data.
fn choose_frac_bits(graph: &Graph, input: &FloatTensor, float: &FloatTensor) -> Result<u32> {
    for f in 14..=18 {
        let Ok(out) = plain_run(graph, input, FixedPoint::new(f)) else { continue };
        if top1(&out) == top1(float) && max_diff(&out.data, &float.data) <= 1e-2 {
            return Ok(f);
        }
    }
    bail!("no fixed-point scale from 14 to 18 fractional bits reproduces the float result on this input")
}

pub(crate) fn run(args: InferArgs) -> Result<()> {
    let input = npy::read(&args.input)?;
    // Specialised to the input's shape, so shape computations in the model fold to constants.
    let graph = musket_onnx::load_for_input(&args.model, Some(&input.shape))?;
    // The f64 run (model and sample together, as the model owner would on sample data)
    // checks ranges, chooses the scale on request, and is the reference of --check. Without
    // those, the range check looks at the first batch item only (cheap for big batches).
    let float_input =
        if args.check || args.frac_bits == "auto" { input.clone() } else { first_item(&graph, &input) };
    let float = musket_graph::eval_f64(&graph, &float_input).map_err(|e| anyhow::anyhow!("{e}"));
    let frac_bits = match args.frac_bits.as_str() {
        "auto" => {
            choose_frac_bits(&graph, &input, &float.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.output)?
        }
        n => match n.parse::<u32>() {
            Ok(f) if (14..=18).contains(&f) => f,
            _ => bail!("--frac-bits must be a number from 14 to 18 or auto"),
        },
    };
    let fp = FixedPoint::new(frac_bits);
    let limit = 2f64.powi(31 - frac_bits as i32);
    let range_warnings: Vec<String> = match &float {
        Ok(fl) => graph
            .nodes
            .iter()
            .zip(&fl.max_abs)
            .filter(|(_, &m)| m >= limit)
            .map(|(n, m)| {
                format!(
                    "{} ({}) reaches {m:.3e}, beyond 2^{} where products overflow",
                    n.name,
                    n.op_type,
                    31 - frac_bits as i32
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    for w in &range_warnings {
        eprintln!("warning: {w}");
    }
    let progress = (!args.json).then(|| {
        let b = indicatif::ProgressBar::new(graph.nodes.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} layers {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let job = Inference { graph: &graph, public: graph.without_weights(), input: &input, fp, progress };
    let started = Instant::now();
    let outcomes = run_local(args.protocol, &job, None)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(b) = &job.progress {
        b.finish_and_clear();
    }
    let receiver = outcomes
        .iter()
        .find(|o| o.party == OWNERS.output)
        .and_then(|o| o.output.as_ref())
        .context("the output receiver returned nothing")?;
    let output = receiver.output.clone().context("the output receiver did not learn the output")?;
    let mut bytes_sent = vec![0; outcomes.len()];
    for o in &outcomes {
        bytes_sent[o.party] = o.stats.bytes_sent;
    }
    let per_party: Vec<(usize, &Vec<LayerStats>)> =
        outcomes.iter().filter_map(|o| o.output.as_ref().map(|r| (o.party, &r.layers))).collect();
    let layers: Vec<Layer> = receiver
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut bytes = vec![0; outcomes.len()];
            for (party, ls) in &per_party {
                bytes[*party] = ls.get(i).map_or(0, |x| x.bytes_sent);
            }
            Layer {
                name: l.name.clone(),
                op: l.op_type.clone(),
                bytes_sent: bytes,
                rounds: per_party.iter().filter_map(|(_, ls)| ls.get(i).map(|x| x.rounds)).max().unwrap_or(0),
                seconds: l.seconds,
            }
        })
        .collect();
    let (check, check_float) = if args.check {
        let plain = plain_run(&graph, &input, fp)?;
        let fl = float.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        (Some(max_diff(&plain.data, &output.data)), Some(max_diff(&fl.output.data, &output.data)))
    } else {
        (None, None)
    };
    if let Some(path) = &args.output {
        npy::write(path, &output)?;
    }
    let report = Report {
        protocol: args.protocol.name(),
        output_shape: output.shape.clone(),
        top1: top1(&output),
        output: output.data.clone(),
        seconds,
        rounds: job_rounds(&outcomes),
        bytes_sent,
        layers,
        frac_bits,
        check_max_abs_diff: check,
        check_max_abs_diff_float: check_float,
        range_warnings,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_text(&report, args.protocol);
    Ok(())
}

fn print_text(r: &Report, backend: Backend) {
    let cols = r.output_shape.last().copied().unwrap_or(1).max(1);
    for (i, row) in r.output.chunks(cols).enumerate().take(8) {
        let vals: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
        let top = r.top1.as_ref().map(|t| format!("  -> class {}", t[i])).unwrap_or_default();
        println!("output[{i}] = [{}]{top}", vals.join(", "));
    }
    if r.output.len() / cols > 8 {
        println!("... {} rows in all", r.output.len() / cols);
    }
    println!(
        "protocol {}: {:.3}s, {} rounds, bytes sent per party {:?}{}",
        r.protocol,
        r.seconds,
        r.rounds,
        r.bytes_sent,
        if backend == Backend::TwoPc { " (party 2 is the dealer)" } else { "" }
    );
    if let (Some(d), Some(f)) = (r.check_max_abs_diff, r.check_max_abs_diff_float) {
        println!("check: max |secure - f64| = {f:.3e}, max |secure - plaintext fixed point| = {d:.3e} ({} fractional bits)", r.frac_bits);
    }
    println!("{:<32} {:<18} {:>7} {:>14}", "layer", "op", "rounds", "bytes (max party)");
    for l in &r.layers {
        println!(
            "{:<32} {:<18} {:>7} {:>14}",
            truncate(&l.name, 32),
            l.op,
            l.rounds,
            l.bytes_sent.iter().max().unwrap_or(&0)
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

/// One party of an inference: the executor on this party's view (the model owner's graph has
/// weights; the data owner holds the input).
pub(crate) struct PartyInference {
    pub(crate) graph: Graph,
    pub(crate) input: Option<FloatTensor>,
    pub(crate) input_shape: Vec<usize>,
    pub(crate) fp: FixedPoint,
}

impl Job for PartyInference {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        musket_graph::run(
            p,
            &self.graph,
            self.fp,
            OWNERS,
            self.input.as_ref(),
            &self.input_shape,
            &mut |_, _, _| {},
        )
    }
}

/// Largest architecture or shape message accepted from a peer.
const MAX_METADATA: usize = 64 << 20;

/// Runs one party of an inference over an established transport: the model owner sends the
/// architecture (no weights), the data owner the input shape, then the protocol runs.
pub(crate) fn run_party(
    backend: Backend,
    id: usize,
    transport: musket_net::TlsTransport,
    model: Option<&std::path::Path>,
    input: Option<&std::path::Path>,
    output_path: Option<&std::path::Path>,
    json: bool,
) -> Result<()> {
    let mut net = musket_net::Net::new(Box::new(transport));
    let compute: Vec<usize> = (0..backend.compute_parties()).collect();
    let is_compute = compute.contains(&id);
    let fp = FixedPoint::default();
    let metadata = (|| -> Result<Option<PartyInference>> {
        if !is_compute {
            return Ok(None);
        }
        // The data owner first tells everyone the input shape; the model owner then loads the
        // model specialised to it and sends the architecture.
        let (input, input_shape) = if id == OWNERS.data {
            let x = npy::read(input.context("party 1 needs --input")?)?;
            let shape = serde_json::to_vec(&x.shape)?;
            for &j in compute.iter().filter(|&&j| j != id) {
                net.send_bytes(j, &shape)?;
            }
            let s = x.shape.clone();
            (Some(x), s)
        } else {
            let bytes = net.recv_bytes(OWNERS.data)?;
            let s: Vec<usize> =
                serde_json::from_slice(&bytes).context("party 1 sent a malformed input shape")?;
            if s.len() > 8
                || s.iter().any(|&d| d > 1 << 28)
                || s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > 1 << 28)
            {
                bail!("party 1 sent an implausible input shape {s:?}");
            }
            (None, s)
        };
        let graph = if id == OWNERS.model {
            let g = musket_onnx::load_for_input(model.context("party 0 needs --model")?, Some(&input_shape))?;
            let arch = serde_json::to_vec(&g.without_weights())?;
            for &j in compute.iter().filter(|&&j| j != id) {
                net.send_bytes(j, &arch)?;
            }
            g
        } else {
            let bytes = net.recv_bytes(OWNERS.model)?;
            if bytes.len() > MAX_METADATA {
                bail!("party 0 sent an architecture of {} bytes", bytes.len());
            }
            let g: Graph =
                serde_json::from_slice(&bytes).context("party 0 sent a malformed model architecture")?;
            g.validate().map_err(|e| anyhow::anyhow!("party 0 sent a malformed model architecture: {e}"))?;
            g
        };
        Ok(Some(PartyInference { graph, input, input_shape, fp }))
    })();
    let job = match metadata {
        Ok(j) => j,
        Err(e) => {
            // Tell the peers that set-up failed, without local details such as file paths.
            net.abort(&format!("party {id} could not prepare its part of the inference"));
            return Err(e);
        }
    };
    let started = Instant::now();
    let job = job.unwrap_or(PartyInference { graph: Graph::default(), input: None, input_shape: vec![], fp });
    let out = musket_session::run_party_on(backend, net, &job)?;
    let seconds = started.elapsed().as_secs_f64();
    let result = out.output.and_then(|r| r.output);
    if let (Some(path), Some(t)) = (output_path, &result) {
        npy::write(path, t)?;
    }
    let role = match (id, backend) {
        (0, _) => "model owner",
        (1, _) => "data owner",
        (_, Backend::TwoPc) => "dealer",
        _ => "helper",
    };
    if json {
        let mut v = serde_json::json!({
            "party": id, "role": role, "protocol": backend.name(), "seconds": seconds,
            "bytes_sent": out.stats.bytes_sent, "rounds": out.clock.1 - out.clock.0,
        });
        if let Some(t) = &result {
            v["output_shape"] = serde_json::json!(t.shape);
            v["output"] = serde_json::json!(t.data);
            v["top1"] = serde_json::json!(top1(t));
        }
        println!("{v}");
    } else if let Some(t) = &result {
        let cols = t.shape.last().copied().unwrap_or(1).max(1);
        for (i, row) in t.data.chunks(cols).enumerate().take(8) {
            let vals: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
            println!("output[{i}] = [{}]", vals.join(", "));
        }
        if let Some(t1) = top1(t) {
            println!("top-1: {t1:?}");
        }
        println!("party {id} ({role}): {seconds:.3}s, sent {} bytes", out.stats.bytes_sent);
    } else {
        println!(
            "party {id} ({role}): done in {seconds:.3}s, sent {} bytes; this party learns nothing",
            out.stats.bytes_sent
        );
    }
    Ok(())
}
