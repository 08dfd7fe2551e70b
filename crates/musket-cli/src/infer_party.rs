//! `musket party … infer`: one party of a private inference over the TLS cluster. Before the
//! protocol, the data owner sends the input shape and the model owner the architecture (no
//! weights) and the batch slices; every message from a peer is bounded and validated before
//! use. The secure range check runs unless the parties agreed on `--no-range-check`.

use crate::infer::top1;
use anyhow::{bail, Context, Result};
use musket_cli::inference::{prepare_file, BatchSlice, Prepared, OWNERS};
use musket_cli::npy;
use musket_core::{MpcError, Protocol};
use musket_graph::{FloatTensor, Graph, RunOptions, RunOutput};
use musket_ring::FixedPoint;
use musket_session::{Backend, Job, PartyOutcome, Preprocessed};
use std::path::Path;
use std::time::Instant;

/// One party of an inference: the executor on this party's view (the model owner's graphs
/// have weights; the data owner holds the input).
pub(crate) struct PartyInference {
    pub(crate) prepared: Prepared,
    pub(crate) input: Option<FloatTensor>,
    pub(crate) input_shape: Vec<usize>,
    pub(crate) fp: FixedPoint,
    pub(crate) options: RunOptions,
}

impl Job for PartyInference {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        let slices = self.prepared.slices(&[])?;
        musket_graph::run_sliced(
            p,
            &slices,
            self.fp,
            OWNERS,
            self.input.as_ref(),
            &self.input_shape,
            self.options,
            &mut |_, _, _| {},
        )
    }
}

/// Largest architecture or shape message accepted from a peer.
const MAX_METADATA: usize = 64 << 20;

/// What the model owner tells the other compute parties: the slices and, per distinct slice
/// length, the architecture (weight shapes, no values).
#[derive(serde::Serialize, serde::Deserialize)]
struct Architecture {
    lengths: Vec<usize>,
    graphs: Vec<(usize, Graph)>,
}

/// What a party of an inference brings, from its command line.
pub(crate) struct PartyFiles<'a> {
    pub(crate) model: Option<&'a Path>,
    pub(crate) input: Option<&'a Path>,
    pub(crate) output: Option<&'a Path>,
    pub(crate) batch_slice: BatchSlice,
    pub(crate) range_check: bool,
    /// Whether the 2PC dealer's material is made first, from a traced plan.
    pub(crate) preprocess: bool,
    pub(crate) max_bytes: u64,
}

/// Checks an input shape received from the data owner.
fn check_shape(s: &[usize]) -> Result<()> {
    if s.is_empty()
        || s.len() > 8
        || s.contains(&0)
        || s.iter().any(|&d| d > 1 << 28)
        || s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > 1 << 28)
    {
        bail!("party 1 sent an implausible input shape {s:?}");
    }
    Ok(())
}

/// Checks the slices and architectures received from the model owner.
fn check_architecture(a: &Architecture, input_shape: &[usize]) -> Result<()> {
    let malformed = |why: String| anyhow::anyhow!("party 0 sent a malformed model architecture: {why}");
    if a.lengths.is_empty()
        || a.lengths.len() > input_shape[0].max(1)
        || a.graphs.is_empty()
        || a.graphs.len() > 2
    {
        return Err(malformed("bad batch slices".into()));
    }
    if a.lengths.iter().try_fold(0usize, |s, &l| s.checked_add(l)) != Some(input_shape[0]) {
        return Err(malformed(format!("slices {:?} do not cover a batch of {}", a.lengths, input_shape[0])));
    }
    for (_, g) in &a.graphs {
        g.validate().map_err(malformed)?;
    }
    Ok(())
}

/// Runs one party of an inference over an established transport: the model owner sends the
/// architecture (no weights), the data owner the input shape, then the protocol runs.
pub(crate) fn run_party(
    backend: Backend,
    id: usize,
    transport: musket_net::TlsTransport,
    files: PartyFiles<'_>,
    json: bool,
) -> Result<()> {
    let mut net = musket_net::Net::new(Box::new(transport));
    let compute: Vec<usize> = (0..backend.compute_parties()).collect();
    let is_compute = compute.contains(&id);
    let fp = FixedPoint::default();
    let options = RunOptions { secure_range_check: files.range_check };
    let metadata = (|| -> Result<Option<PartyInference>> {
        if !is_compute {
            return Ok(None);
        }
        // The data owner first tells everyone the input shape; the model owner then loads the
        // model specialised to it and sends the architecture.
        let (input, input_shape) = if id == OWNERS.data {
            let x = npy::read(files.input.context("party 1 needs --input")?, files.max_bytes)?;
            if x.shape.contains(&0) || x.shape.is_empty() {
                bail!("the input has no elements (shape {:?}): there is nothing to compute", x.shape);
            }
            let shape = serde_json::to_vec(&x.shape)?;
            for &j in compute.iter().filter(|&&j| j != id) {
                net.send_bytes(j, &shape)?;
            }
            let s = x.shape.clone();
            (Some(x), s)
        } else {
            let bytes = net.recv_bytes(OWNERS.data)?;
            if bytes.len() > 4096 {
                bail!("party 1 sent an input shape of {} bytes", bytes.len());
            }
            let s: Vec<usize> =
                serde_json::from_slice(&bytes).context("party 1 sent a malformed input shape")?;
            check_shape(&s)?;
            (None, s)
        };
        let prepared = if id == OWNERS.model {
            let model = files.model.context("party 0 needs --model")?;
            let slice = files.batch_slice.for_backend(backend);
            let prepared = prepare_file(model, files.max_bytes, &input_shape, slice)?;
            let arch = Architecture { lengths: prepared.lengths.clone(), graphs: prepared.public() };
            let bytes = serde_json::to_vec(&arch)?;
            for &j in compute.iter().filter(|&&j| j != id) {
                net.send_bytes(j, &bytes)?;
            }
            prepared
        } else {
            let bytes = net.recv_bytes(OWNERS.model)?;
            if bytes.len() > MAX_METADATA {
                bail!("party 0 sent an architecture of {} bytes", bytes.len());
            }
            let a: Architecture =
                serde_json::from_slice(&bytes).context("party 0 sent a malformed model architecture")?;
            check_architecture(&a, &input_shape)?;
            Prepared { lengths: a.lengths, graphs: a.graphs }
        };
        Ok(Some(PartyInference { prepared, input, input_shape, fp, options }))
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
    let job = job.unwrap_or(PartyInference {
        prepared: Prepared { lengths: vec![1], graphs: vec![(1, Graph::default())] },
        input: None,
        input_shape: vec![],
        fp,
        options,
    });
    // A compute party traces the plan from the architecture it holds (the dealer needs none:
    // it serves the requests party 0 sends).
    let (out, preprocessing) = if files.preprocess && is_compute {
        let plan = match musket_session::trace_plan(&job, id) {
            Ok(plan) => plan,
            Err(e) => {
                net.abort(&format!("party {id} could not trace the preprocessing plan"));
                return Err(e.into());
            }
        };
        let out = musket_session::run_party_on(backend, net, &Preprocessed { job: &job, plan })?;
        let preprocessing = out.output.as_ref().map(|o| o.preprocessing.as_secs_f64());
        let out = PartyOutcome {
            party: out.party,
            output: out.output.map(|o| o.output),
            stats: out.stats,
            clock: out.clock,
        };
        (out, preprocessing)
    } else {
        (musket_session::run_party_on(backend, net, &job)?, None)
    };
    let seconds = started.elapsed().as_secs_f64();
    let split = |p: Option<f64>| {
        p.map(|p| format!(" (preprocessing {p:.3}s, online {:.3}s)", seconds - p)).unwrap_or_default()
    };
    let result = out.output.and_then(|r| r.output);
    if let (Some(path), Some(t)) = (files.output, &result) {
        npy::write(path, t)?;
    }
    let role = match (id, backend) {
        (0, _) => "model owner",
        (1, _) => "data owner",
        (_, b) if b.has_dealer() => "dealer",
        _ => "helper",
    };
    if json {
        let mut v = serde_json::json!({
            "party": id, "role": role, "protocol": backend.name(), "security": backend.security().name(), "seconds": seconds,
            "bytes_sent": out.stats.bytes_sent, "rounds": out.clock.1 - out.clock.0,
            "secure_range_check": files.range_check,
        });
        if let Some(p) = preprocessing {
            v["preprocessing_seconds"] = serde_json::json!(p);
            v["online_seconds"] = serde_json::json!(seconds - p);
        }
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
        println!(
            "party {id} ({role}): {seconds:.3}s{}, sent {} bytes",
            split(preprocessing),
            out.stats.bytes_sent
        );
    } else {
        println!(
            "party {id} ({role}): done in {seconds:.3}s{}, sent {} bytes; this party learns nothing",
            split(preprocessing),
            out.stats.bytes_sent
        );
    }
    Ok(())
}
