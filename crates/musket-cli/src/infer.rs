//! `musket infer`: private inference of an ONNX model. In the local mode all parties are
//! threads of this process: party 0 is the model owner (only its thread sees the weights),
//! party 1 the data owner and output receiver (only its thread sees the input and output).
//! Before the secure run, the plaintext range audit (model and input together, which only
//! this mode has) checks every value the secure run will compute; a computation that would
//! overflow or saturate fails here with the layer named, unless `--allow-out-of-range`.

use anyhow::{bail, Context, Result};
use clap::Args;
use musket_cli::files::DEFAULT_MAX_FILE_MB;
use musket_cli::inference::{
    audit, describe_findings, prepare_file, range_error, BatchSlice, Inference, Prepared, OWNERS,
};
use musket_cli::npy;
use musket_graph::{FloatTensor, LayerStats, RunOptions};
use musket_ring::FixedPoint;
use musket_session::{job_rounds, run_local, Backend, Security};
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
    /// Security level: semi-honest, or malicious (3pc: every product is verified and every
    /// opening checked; a cheating party makes the others abort with `cheating detected`).
    #[arg(long, default_value = "semi-honest")]
    security: Security,
    /// Write the output to this .npy file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Fractional bits of the fixed-point encoding (14 to 18, where every secure function keeps
    /// its stated domain), or `auto`: the smallest number (14 to 18) whose plaintext fixed-point
    /// run passes the range audit and matches the f64 run on this input (same top-1, outputs
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
    /// Cut a large batch into slices of at most this many items (same outputs, bounded
    /// memory), or `auto`: slices whose largest intermediate tensor stays below 2^22 elements.
    #[arg(long, default_value = "auto")]
    batch_slice: BatchSlice,
    /// Run even when the range audit finds values outside the range the secure protocols
    /// handle (the result is then wrong); the findings are reported as warnings.
    #[arg(long)]
    allow_out_of_range: bool,
    /// Also check ranges securely, as the parties of a cluster do (to measure its cost).
    #[arg(long)]
    secure_range_check: bool,
    /// Largest model or input file accepted, in MiB.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_MB)]
    max_file_mb: u64,
    /// 2pc: have the dealer make all of its correlated randomness first, from a plan traced
    /// from the model's architecture and the input's shape (a run on zeros), so that the
    /// inference itself never waits for the dealer; the report then splits the time. Party 1
    /// holds the whole plan's corrections at once (`preprocessing.material_bytes`).
    #[arg(long)]
    preprocess: bool,
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
    security: &'static str,
    output_shape: Vec<usize>,
    output: Vec<f64>,
    top1: Option<Vec<usize>>,
    seconds: f64,
    rounds: u64,
    bytes_sent: Vec<u64>,
    layers: Vec<Layer>,
    /// Fractional bits used.
    frac_bits: u32,
    /// Items per slice of the batch, in order.
    batch_slices: Vec<usize>,
    /// Whether the secure range check ran.
    secure_range_check: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_max_abs_diff: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_max_abs_diff_float: Option<f64>,
    /// What the range audit found (only with --allow-out-of-range; otherwise it is an error).
    range_warnings: Vec<String>,
    /// With --preprocess: the preprocessing phase and the online time.
    #[serde(skip_serializing_if = "Option::is_none")]
    preprocessing: Option<musket_cli::inference::PreprocessingReport>,
}

pub(crate) fn top1(t: &FloatTensor) -> Option<Vec<usize>> {
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

/// Largest |a - b| over two equally long slices.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The f64 evaluation of the whole input, slice by slice.
fn eval_float(prepared: &Prepared, input: &FloatTensor) -> Result<FloatTensor> {
    let per_item: usize = input.shape.iter().skip(1).product();
    let mut data = Vec::with_capacity(input.data.len());
    let mut shape = Vec::new();
    let mut start = 0;
    for &len in &prepared.lengths {
        let graph = &prepared.graphs.iter().find(|(l, _)| *l == len).context("graph for a slice")?.1;
        let mut s = input.shape.clone();
        if prepared.lengths.len() > 1 {
            s[0] = len;
        }
        let part = FloatTensor::new(s, input.data[start * per_item..(start + len) * per_item].to_vec())
            .context("slice of the input")?;
        start += len;
        let out = musket_graph::eval_f64(graph, &part).map_err(|e| anyhow::anyhow!("{e}"))?.output;
        if shape.is_empty() {
            shape = out.shape.clone();
        } else if let (Some(total), Some(n)) = (shape.first_mut(), out.shape.first()) {
            *total += n;
        }
        data.extend(out.data);
    }
    FloatTensor::new(shape, data).context("f64 output")
}

/// Athos's idea: the smallest scale that keeps the float result on sample data, here also
/// with a clean range audit.
fn choose_frac_bits(prepared: &Prepared, input: &FloatTensor, float: &FloatTensor) -> Result<u32> {
    for f in 14..=18 {
        let Ok((out, findings)) = audit(prepared, input, FixedPoint::new(f)) else { continue };
        if findings.is_empty() && top1(&out) == top1(float) && max_diff(&out.data, &float.data) <= 1e-2 {
            return Ok(f);
        }
    }
    bail!(
        "no fixed-point scale from 14 to 18 fractional bits computes this model on this input within \
         range and close to the float result; scale the input down or check the model"
    )
}

pub(crate) fn run(args: InferArgs) -> Result<()> {
    let backend = args.protocol.with_security(args.security).map_err(anyhow::Error::msg)?;
    if args.preprocess && backend != Backend::TwoPc {
        bail!("{}", musket_cli::inference::PREPROCESS_IS_2PC);
    }
    let max_bytes = args.max_file_mb.saturating_mul(1 << 20);
    let input = npy::read(&args.input, max_bytes)?;
    let prepared = prepare_file(&args.model, max_bytes, &input.shape, args.batch_slice.for_backend(backend))?;
    let float =
        if args.check || args.frac_bits == "auto" { Some(eval_float(&prepared, &input)?) } else { None };
    let frac_bits = match args.frac_bits.as_str() {
        "auto" => choose_frac_bits(&prepared, &input, float.as_ref().context("f64 run")?)?,
        n => match n.parse::<u32>() {
            Ok(f) if (14..=18).contains(&f) => f,
            _ => bail!("--frac-bits must be a number from 14 to 18 or auto"),
        },
    };
    let fp = FixedPoint::new(frac_bits);
    // The range audit: every value the secure run will compute, in plaintext fixed point.
    let (plain, findings) = audit(&prepared, &input, fp)?;
    if !findings.is_empty() && !args.allow_out_of_range {
        return Err(range_error(&findings, prepared.first(), fp));
    }
    let range_warnings = describe_findings(&findings, prepared.first());
    for w in &range_warnings {
        eprintln!("warning: {w} (the result is wrong)");
    }
    let progress = (!args.json).then(|| {
        let b = indicatif::ProgressBar::new(prepared.first().nodes.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} layers {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let options = RunOptions { secure_range_check: args.secure_range_check };
    let job =
        Inference { prepared: &prepared, public: prepared.public(), input: &input, fp, options, progress };
    let (outcomes, seconds, preprocessing) = if args.preprocess {
        musket_cli::inference::run_preprocessed(&job)?
    } else {
        let started = Instant::now();
        let outcomes = run_local(backend, &job, None)?;
        (outcomes, started.elapsed().as_secs_f64(), None)
    };
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
    let (check, check_float) = match (&float, args.check) {
        (Some(fl), true) => {
            (Some(max_diff(&plain.data, &output.data)), Some(max_diff(&fl.data, &output.data)))
        }
        _ => (None, None),
    };
    if let Some(path) = &args.output {
        npy::write(path, &output)?;
    }
    let report = Report {
        protocol: backend.name(),
        security: backend.security().name(),
        output_shape: output.shape.clone(),
        top1: top1(&output),
        output: output.data.clone(),
        seconds,
        rounds: job_rounds(&outcomes),
        bytes_sent,
        layers,
        frac_bits,
        batch_slices: prepared.lengths.clone(),
        secure_range_check: args.secure_range_check,
        check_max_abs_diff: check,
        check_max_abs_diff_float: check_float,
        range_warnings,
        preprocessing,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_text(&report, backend);
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
        "protocol {} ({}): {:.3}s, {} rounds, bytes sent per party {:?}{}",
        r.protocol,
        r.security,
        r.seconds,
        r.rounds,
        r.bytes_sent,
        if backend.has_dealer() { " (party 2 is the dealer)" } else { "" }
    );
    if let Some(p) = &r.preprocessing {
        println!(
            "preprocessing: plan of {} dealer requests traced in {:.3}s, {:.1} MiB of corrections made \
             in {:.3}s; online {:.3}s",
            p.requests,
            p.trace_seconds,
            p.material_bytes as f64 / (1u64 << 20) as f64,
            p.seconds,
            p.online_seconds
        );
    }
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
