//! Private inference as both the `musket` binary and other front ends (the Python package)
//! run it: the model loaded for the input's shape (once per batch-slice length), the batch
//! slices, the plaintext range audit with the error it turns into, and the job every party
//! runs.

use anyhow::{bail, Context, Result};
use musket_core::{Audit, Finding, MpcError, Protocol};
use musket_graph::{FloatTensor, Graph, Owners, RunOptions, RunOutput, Slices};
use musket_ring::FixedPoint;
use musket_session::{run_local, trace_plan, Backend, Job, PartyOutcome, Preprocessed};
use std::path::Path;
use std::time::Instant;

/// The largest tensor (elements per share component) a slice may build in automatic slicing:
/// 2^22 elements is 32 MiB per component. ResNet-18 on 32x32 images builds 46k elements per
/// image (its first convolution's im2col), so slices of 90 images: 360 images in 3PC peak at
/// 2.8 GB for the three parties together instead of 9.8 GB (BENCHMARKS.md).
pub const AUTO_SLICE_ELEMENTS: usize = 1 << 22;

/// [`AUTO_SLICE_ELEMENTS`] for back end `backend`. Malicious 2PC holds about thirty times
/// semi-honest 2PC's memory per element of a slice's largest tensor (its comparison circuits'
/// bits carry 64-bit MACs: CrypTen's LeNet on 64 images peaks at 8-9 GB, where semi-honest
/// 2PC needs 0.3 GB), so its slices are sixteen times smaller; each slice opens the masked
/// weights again, which costs bytes, not memory.
pub fn auto_slice_elements(backend: Backend) -> usize {
    match backend {
        Backend::TwoPcMalicious => AUTO_SLICE_ELEMENTS >> 4,
        _ => AUTO_SLICE_ELEMENTS,
    }
}

/// How to cut a large batch (`--batch-slice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSlice {
    /// Slices whose largest intermediate tensor holds at most [`AUTO_SLICE_ELEMENTS`].
    Auto,
    /// Slices whose largest intermediate tensor holds at most this many elements:
    /// [`BatchSlice::Auto`] for a back end ([`BatchSlice::for_backend`]).
    AutoWithin(usize),
    /// At most this many items per slice.
    Items(usize),
}

impl BatchSlice {
    /// `Auto` with `backend`'s budget ([`auto_slice_elements`]); other values as they are.
    pub fn for_backend(self, backend: Backend) -> Self {
        match self {
            BatchSlice::Auto => BatchSlice::AutoWithin(auto_slice_elements(backend)),
            other => other,
        }
    }

    /// The value as given on the command line.
    pub fn name(self) -> String {
        match self {
            BatchSlice::Auto | BatchSlice::AutoWithin(_) => "auto".into(),
            BatchSlice::Items(k) => k.to_string(),
        }
    }
}

impl std::str::FromStr for BatchSlice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BatchSlice::Auto),
            n => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(BatchSlice::Items(k)),
                _ => Err(format!("{s:?} is not a number of items (1 or more) or auto")),
            },
        }
    }
}

/// A model ready to run on one input: the slice lengths and a graph per distinct length.
pub struct Prepared {
    /// Items per slice, in order.
    pub lengths: Vec<usize>,
    /// One graph per distinct slice length.
    pub graphs: Vec<(usize, Graph)>,
}

impl Prepared {
    /// The graph loaded for the first slice (all have the same weights).
    pub fn first(&self) -> &Graph {
        &self.graphs[0].1
    }

    /// The slices, on the graphs with weights (`public` false) or on the architectures only.
    pub fn slices<'a>(
        &'a self,
        public: &'a [(usize, Graph)],
    ) -> std::result::Result<Slices<'a>, musket_core::MpcError> {
        let graphs = if public.is_empty() { &self.graphs } else { public };
        Slices::new(self.lengths.clone(), graphs.iter().map(|(l, g)| (*l, g)).collect())
    }

    /// The architectures without weights, for the parties that must not see them.
    pub fn public(&self) -> Vec<(usize, Graph)> {
        self.graphs.iter().map(|(l, g)| (*l, g.without_weights())).collect()
    }
}

/// The model imported for each batch size asked for, each once (a large protobuf takes a
/// while to parse, and preparing may need the batch sizes 1, 2, the whole batch and the slice
/// lengths).
struct Loader<'a> {
    model: &'a musket_onnx::Model,
    /// The input shape after the batch dimension.
    item: &'a [usize],
    graphs: Vec<(usize, Graph)>,
}

impl<'a> Loader<'a> {
    fn shape(&self, batch: usize) -> Vec<usize> {
        [&[batch][..], self.item].concat()
    }

    fn graph(&mut self, batch: usize) -> Result<&Graph> {
        let at = match self.graphs.iter().position(|(b, _)| *b == batch) {
            Some(i) => i,
            None => {
                let shape = self.shape(batch);
                let g = self.model.import(&musket_onnx::ImportOptions {
                    input_shape: Some(&shape),
                    output: None,
                    training: false,
                })?;
                self.graphs.push((batch, g));
                self.graphs.len() - 1
            }
        };
        Ok(&self.graphs[at].1)
    }

    /// The graphs for `lengths` (each distinct length once), taken out of the cache.
    fn into_graphs(mut self, lengths: &[usize]) -> Result<Vec<(usize, Graph)>> {
        let mut distinct = lengths.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for &len in &distinct {
            self.graph(len)?;
        }
        self.graphs.retain(|(b, _)| distinct.contains(b));
        Ok(self.graphs)
    }
}

/// Loads the model (its bytes) for `input_shape`, cut into slices as `slice` says. A model
/// whose batch dimension is fixed runs in one piece.
pub fn prepare(model: &musket_onnx::Model, input_shape: &[usize], slice: BatchSlice) -> Result<Prepared> {
    if input_shape.contains(&0) {
        bail!("the input has no elements (shape {input_shape:?}): there is nothing to compute");
    }
    let batch = input_shape.first().copied().unwrap_or(1);
    let mut loader = Loader { model, item: input_shape.get(1..).unwrap_or(&[]), graphs: Vec::new() };
    // A model on token ids shares one flat vector of one-hot rows: it runs in one piece.
    let whole_batch = loader.graph(batch)?;
    let dynamic = whole_batch.input_shape.first().is_some_and(Option::is_none)
        && input_shape.len() > 1
        && whole_batch.ids.is_none();
    let whole = |loader: Loader<'_>| -> Result<Prepared> {
        Ok(Prepared { lengths: vec![batch], graphs: loader.into_graphs(&[batch])? })
    };
    if !dynamic || batch == 1 {
        return whole(loader);
    }
    let max_items = match slice {
        BatchSlice::Items(k) => k,
        BatchSlice::Auto | BatchSlice::AutoWithin(_) => {
            let budget =
                if let BatchSlice::AutoWithin(elements) = slice { elements } else { AUTO_SLICE_ELEMENTS };
            // Shapes of every intermediate for one item, from an f64 run on zeros.
            let shape = loader.shape(1);
            let zeros = FloatTensor::new(shape.clone(), vec![0.0; loader.item.iter().product()])
                .context("input shape")?;
            let one = loader.graph(1)?;
            let run = musket_graph::eval_f64(one, &zeros).map_err(|e| anyhow::anyhow!("{e}"))?;
            let per_item = musket_graph::largest_tensor(one, &run, &shape).max(1);
            (budget / per_item).max(1)
        }
    };
    let lengths = musket_graph::slice_lengths(batch, max_items);
    if lengths.len() == 1 {
        return whole(loader);
    }
    if let Err(why) = items_are_independent(&mut loader) {
        if let BatchSlice::Items(_) = slice {
            bail!("this model cannot run in batch slices: {why}");
        }
        tracing::warn!(%why, "running the batch in one piece");
        return whole(loader);
    }
    let graphs = loader.into_graphs(&lengths)?;
    Ok(Prepared { lengths, graphs })
}

/// Slicing is only right if the model computes every item of a batch on its own (no op
/// reduces, normalises or reshapes across the batch axis). Checked on a random probe in f64:
/// two items together must give what each gives alone.
fn items_are_independent(loader: &mut Loader<'_>) -> Result<(), String> {
    use rand::{Rng, SeedableRng};
    let per: usize = loader.item.iter().product();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d75_736b_6574);
    let data: Vec<f64> = (0..2 * per).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut eval = |n: usize, data: &[f64]| -> Result<FloatTensor, String> {
        let x = FloatTensor::new(loader.shape(n), data.to_vec()).ok_or("probe shape")?;
        let g = loader.graph(n).map_err(|e| format!("{e:#}"))?;
        Ok(musket_graph::eval_f64(g, &x)?.output)
    };
    let both = eval(2, &data)?;
    let (a, b) = (eval(1, &data[..per])?, eval(1, &data[per..])?);
    let alone: Vec<f64> = a.data.iter().chain(&b.data).copied().collect();
    let scale = alone.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let same = both.shape.first() == Some(&2)
        && both.data.len() == alone.len()
        && both.data.iter().zip(&alone).all(|(x, y)| (x - y).abs() <= 1e-9 * scale);
    if same {
        Ok(())
    } else {
        Err("its output for two items together differs from its outputs for each alone (an op mixes the \
             items of the batch)"
            .into())
    }
}

/// Reads and prepares a model file.
pub fn prepare_file(
    path: &Path,
    max_bytes: u64,
    input_shape: &[usize],
    slice: BatchSlice,
) -> Result<Prepared> {
    let bytes = crate::files::read_model(path, max_bytes)?;
    let model = musket_onnx::Model::with_external_data(&bytes, path, max_bytes)
        .with_context(|| format!("model {}", path.display()))?;
    let outputs = model.outputs();
    if outputs.len() > 1 {
        tracing::warn!("the model has {} outputs; computing the first, {:?}", outputs.len(), outputs[0]);
    }
    prepare(&model, input_shape, slice).with_context(|| format!("model {}", path.display()))
}

/// The plaintext range audit of the whole computation (model owner and data owner together,
/// as in the local mode): the plaintext fixed-point output and everything found.
pub fn audit(
    prepared: &Prepared,
    input: &FloatTensor,
    fp: FixedPoint,
) -> Result<(FloatTensor, Vec<Finding>)> {
    let mut audit = Audit::new();
    let owners = Owners { model: 0, data: 0, output: 0 };
    let slices = prepared.slices(&[])?;
    let out = musket_graph::run_sliced(
        &mut audit,
        &slices,
        fp,
        owners,
        Some(input),
        &input.shape,
        RunOptions::default(),
        &mut |_, _, _| {},
    )?;
    let output = out.output.context("the plaintext run produced no output")?;
    Ok((output, audit.findings()))
}

/// One line per finding, naming the layer and its op.
pub fn describe_findings(findings: &[Finding], graph: &Graph) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            let op = graph.nodes.iter().find(|n| n.name == f.layer).map_or("input", |n| n.op_type.as_str());
            let plural = if f.count == 1 { "" } else { "s" };
            format!("layer {:?} ({op}): {}, {} element{plural}", f.layer, f.what, f.count)
        })
        .collect()
}

/// The error for an audit that found problems.
pub fn range_error(findings: &[Finding], graph: &Graph, fp: FixedPoint) -> anyhow::Error {
    let lines = describe_findings(findings, graph);
    let more = match lines.len() {
        1 => String::new(),
        2 => "\n  (and 1 more finding, in this layer or a later one)".into(),
        n => format!("\n  (and {} more findings, in this layer or later ones)", n - 1),
    };
    let fewer = if fp.frac_bits() > 14 { " (--frac-bits 14, or --frac-bits auto)" } else { "" };
    anyhow::anyhow!(
        "at {} fractional bits this computation leaves the range the secure protocols handle, so \
         the secure result would be wrong:\n  {}{more}\nUse fewer fractional bits{fewer} or scale \
         the input down; --allow-out-of-range runs anyway and reports this as range_warnings",
        fp.frac_bits(),
        lines[0]
    )
}

/// The roles of a local inference: party 0 owns the model, party 1 the input and the output.
pub const OWNERS: Owners = Owners { model: 0, data: 1, output: 1 };

/// The secure inference, as every party runs it.
pub struct Inference<'a> {
    /// The model (with weights at the model owner).
    pub prepared: &'a Prepared,
    /// The architectures without weights, for the other parties.
    pub public: Vec<(usize, Graph)>,
    /// The input (read only at the data owner).
    pub input: &'a FloatTensor,
    /// The fixed-point encoding.
    pub fp: FixedPoint,
    /// Run options (the secure range check).
    pub options: RunOptions,
    /// A progress bar, drawn by the output receiver.
    pub progress: Option<indicatif::ProgressBar>,
}

impl Job for Inference<'_> {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        let me = p.party_id();
        let alone = p.compute_parties() == 1;
        let slices = self.prepared.slices(if me == OWNERS.model || alone { &[] } else { &self.public })?;
        let input = (me == OWNERS.data || alone).then_some(self.input);
        let bar = self.progress.as_ref().filter(|_| me == OWNERS.output);
        let mut tick = |i: usize, total: usize, name: &str| {
            if let Some(b) = bar {
                b.set_length(total as u64);
                b.set_position(i as u64);
                b.set_message(name.to_string());
            }
        };
        musket_graph::run_sliced(
            p,
            &slices,
            self.fp,
            OWNERS,
            input,
            &self.input.shape,
            self.options,
            &mut tick,
        )
    }
}

/// Why `--preprocess` is refused for 3PC.
pub const PREPROCESS_IS_2PC: &str = "--preprocess applies to --protocol 2pc at --security \
    semi-honest: the 3pc parties draw their correlated randomness from keys they share, with no \
    dealer material to make ahead, and malicious 2PC's MAC'd material is not planned ahead yet";

/// The preprocessing phase of a `--preprocess` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreprocessingReport {
    /// Seconds to trace the plan from the architecture.
    pub trace_seconds: f64,
    /// Dealer requests in the plan.
    pub requests: usize,
    /// Bytes of dealer corrections party 1 holds for the plan (party 0 holds none: the
    /// parties' own random parts are expanded from their seeds when used).
    pub material_bytes: u64,
    /// Seconds of the preprocessing phase (the slowest party).
    pub seconds: f64,
    /// Seconds of the rest of the run: the online phase.
    pub online_seconds: f64,
}

/// A 2PC run of `job` with its dealer material made first, from a plan traced from the job.
/// Returns the outcomes, the wall time of the whole run (tracing excluded) and the
/// preprocessing report. Refuses, before anything is allocated, a plan whose corrections would
/// not fit in the memory available.
pub fn run_preprocessed(
    job: &Inference<'_>,
) -> Result<(Vec<PartyOutcome<RunOutput>>, f64, Option<PreprocessingReport>)> {
    let started = Instant::now();
    let plan =
        trace_plan(job, OWNERS.model).map_err(|e| anyhow::anyhow!("tracing the preprocessing plan: {e}"))?;
    let trace_seconds = started.elapsed().as_secs_f64();
    let requests = musket_2pc::decode_plan(&plan).map_err(anyhow::Error::msg)?;
    let material_bytes = requests.iter().map(|r| r.correction_words()).sum::<u64>().saturating_mul(8);
    // Party 1 holds the dealer's corrections for the whole plan, which pass through the
    // dealer's messages first: refuse rather than run out of memory.
    let needed = material_bytes.saturating_mul(2);
    if let Some(available) = available_memory().filter(|&a| needed > a) {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        bail!(
            "--preprocess would hold {:.1} GiB of dealer corrections at party 1 (about {:.1} GiB in \
             all here), more than the {:.1} GiB of memory available; run without --preprocess (the \
             dealer then serves each operation as it runs)",
            gib(material_bytes),
            gib(needed),
            gib(available)
        );
    }
    let started = Instant::now();
    let outcomes = run_local(Backend::TwoPc, &Preprocessed { job, plan }, None)?;
    let seconds = started.elapsed().as_secs_f64();
    let prep = outcomes.iter().filter_map(|o| o.output.as_ref()).map(|o| o.preprocessing.as_secs_f64());
    let prep_seconds = prep.fold(0.0, f64::max);
    let outcomes = outcomes
        .into_iter()
        .map(|o| PartyOutcome {
            party: o.party,
            output: o.output.map(|p| p.output),
            stats: o.stats,
            clock: o.clock,
        })
        .collect();
    let report = PreprocessingReport {
        trace_seconds,
        requests: requests.len(),
        material_bytes,
        seconds: prep_seconds,
        online_seconds: seconds - prep_seconds,
    };
    Ok((outcomes, seconds, Some(report)))
}

/// Memory the kernel could give this process without swapping (`MemAvailable`), where
/// /proc/meminfo tells it.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
