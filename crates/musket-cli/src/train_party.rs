//! `musket party … train`: one party of a private training over the TLS cluster, with the
//! data split among data owners by rows (each holds some samples with their labels) or by
//! columns (each holds some features of the same samples, one of them the labels). Before the
//! protocol, every data owner tells the other compute parties how many rows it has and their
//! shapes, and the model owner
//! sends the architecture (no weights). Every message from a peer is bounded and checked
//! before use. Who learns what: the model owner learns the trained weights (and, with
//! `--report-loss`, each epoch's mean loss); every compute party learns the row counts and
//! shapes and the architecture; nobody learns another party's rows, labels or weights.

use anyhow::{bail, Context, Result};
use musket_cli::npy;
use musket_cli::training::{encode_labels, prepare, OwnerRows, PartyResult, Split, Training, MODEL_OWNER};
use musket_graph::{FloatTensor, Graph};
use musket_onnx::Model;
use musket_ring::FixedPoint;
use musket_session::Backend;
use musket_train::{Loss, TrainConfig, TrainPlan};
use std::path::Path;
use std::time::Instant;

/// Largest architecture message accepted from a peer.
const MAX_METADATA: usize = 64 << 20;

/// What a data owner announces: its row count and the shapes of a row and of its labels (if
/// it holds labels).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Rows {
    rows: usize,
    row_shape: Vec<usize>,
    label_shape: Option<Vec<usize>>,
}

/// What the model owner sends: one architecture per batch length, which weights are trained,
/// and the shape of one row of the output.
#[derive(serde::Serialize, serde::Deserialize)]
struct Architecture {
    graphs: Vec<(usize, Graph)>,
    trainable: Vec<bool>,
    row_output: Vec<usize>,
}

/// What set-up gives a compute party: the plans, every data owner's rows, and its own data
/// and encoded labels if it owns some.
type Setup = (Vec<(usize, TrainPlan)>, Vec<(usize, Rows)>, Option<(FloatTensor, Option<FloatTensor>)>);

/// A party's own files and the run's settings, from its command line.
pub(crate) struct PartyTraining<'a> {
    pub(crate) model: Option<&'a Path>,
    pub(crate) data: Option<&'a Path>,
    pub(crate) labels: Option<&'a Path>,
    pub(crate) output: Option<&'a Path>,
    pub(crate) loss: Loss,
    pub(crate) split: Split,
    pub(crate) config: TrainConfig,
    pub(crate) max_bytes: u64,
}

fn plausible(s: &[usize]) -> bool {
    s.len() <= 8 && s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= 1 << 28)
}

/// Runs one party of a training over an established transport.
pub(crate) fn run_party(
    backend: Backend,
    id: usize,
    transport: musket_net::TlsTransport,
    t: PartyTraining<'_>,
    json: bool,
) -> Result<()> {
    let mut net = musket_net::Net::new(Box::new(transport));
    let compute: Vec<usize> = (0..backend.compute_parties()).collect();
    let fp = FixedPoint::new(16);
    let is_compute = compute.contains(&id);
    let mut model: Option<Model> = None;
    let setup = (|| -> Result<Option<Setup>> {
        if !is_compute {
            return Ok(None);
        }
        // 1. Data owners announce their rows.
        let mine = match (t.data, t.labels) {
            (Some(d), l) => {
                let x = npy::read(d, t.max_bytes)?;
                if x.shape.len() < 2 || x.shape[0] == 0 || x.data.iter().any(|v| !v.is_finite()) {
                    bail!("--data needs rows of finite values (shape [rows, ..]), got {:?}", x.shape);
                }
                if t.split == Split::Columns && x.shape.len() != 2 {
                    bail!("a split by columns needs 2-D data [rows, features], got {:?}", x.shape);
                }
                let y = match l {
                    Some(l) => Some(npy::read(l, t.max_bytes)?),
                    None if t.split == Split::Rows => {
                        bail!("with a split by rows, a data owner gives --labels too")
                    }
                    None => None,
                };
                if let Some(y) = &y {
                    if y.shape.first() != Some(&x.shape[0]) {
                        bail!("--labels {:?} do not have one entry per row of --data {:?}", y.shape, x.shape);
                    }
                }
                Some((x, y))
            }
            (None, None) => None,
            (None, Some(_)) => bail!("--labels come with --data"),
        };
        let announce = mine.as_ref().map(|(x, y)| Rows {
            rows: x.shape[0],
            row_shape: x.shape[1..].to_vec(),
            label_shape: y.as_ref().map(|y| y.shape.clone()),
        });
        let bytes = serde_json::to_vec(&announce)?;
        for &j in compute.iter().filter(|&&j| j != id) {
            net.send_bytes(j, &bytes)?;
        }
        let mut owners: Vec<(usize, Rows)> = Vec::new();
        for &j in &compute {
            let r = if j == id {
                announce.clone()
            } else {
                let b = net.recv_bytes(j)?;
                if b.len() > 4096 {
                    bail!("party {j} sent a row announcement of {} bytes", b.len());
                }
                let r: Option<Rows> = serde_json::from_slice(&b)
                    .with_context(|| format!("party {j} sent a malformed row announcement"))?;
                r
            };
            if let Some(r) = r {
                let labels_ok =
                    r.label_shape.as_ref().is_none_or(|l| plausible(l) && l.first() == Some(&r.rows));
                if r.rows == 0 || !plausible(&r.row_shape) || !labels_ok {
                    bail!("party {j} announced implausible rows {r:?}");
                }
                owners.push((j, r));
            }
        }
        let first = owners.first().map(|(_, r)| r.clone()).context("no party gave --data")?;
        let (total, row_shape) = match t.split {
            Split::Rows => {
                let label_row = |r: &Rows| r.label_shape.as_ref().map(|l| l[1..].to_vec());
                if owners.iter().any(|(_, r)| r.label_shape.is_none()) {
                    bail!("with a split by rows, every data owner gives --labels");
                }
                if owners
                    .iter()
                    .any(|(_, r)| r.row_shape != first.row_shape || label_row(r) != label_row(&first))
                {
                    bail!("the data owners' rows have different shapes: {owners:?}");
                }
                let total = owners
                    .iter()
                    .try_fold(0usize, |a, (_, r)| a.checked_add(r.rows))
                    .filter(|&n| n <= 1 << 28);
                (total.context("too many rows in all")?, first.row_shape.clone())
            }
            Split::Columns => {
                if owners.iter().any(|(_, r)| r.rows != first.rows || r.row_shape.len() != 1) {
                    bail!("a split by columns needs the same rows, as 2-D data, at every owner: {owners:?}");
                }
                if owners.iter().filter(|(_, r)| r.label_shape.is_some()).count() != 1 {
                    bail!("a split by columns needs exactly one data owner with --labels");
                }
                let features = owners.iter().try_fold(0usize, |a, (_, r)| a.checked_add(r.row_shape[0]));
                (first.rows, vec![features.filter(|&f| f <= 1 << 28).context("too many features")?])
            }
        };
        // 2. The model owner sends the architecture.
        let (plans, row_output) = if id == MODEL_OWNER {
            let m = Model::read(t.model.context("party 0 gives --model")?, t.max_bytes)?;
            let prepared = prepare(m, t.loss, total, &row_shape, t.config.batch_size)?;
            let arch = Architecture {
                graphs: prepared.plans.iter().map(|(l, p)| (*l, p.graph.without_weights())).collect(),
                trainable: prepared.plans[0].1.trainable.clone(),
                row_output: prepared.row_output.clone(),
            };
            let bytes = serde_json::to_vec(&arch)?;
            for &j in compute.iter().filter(|&&j| j != id) {
                net.send_bytes(j, &bytes)?;
            }
            let out = (prepared.plans.clone(), prepared.row_output.clone());
            model = Some(prepared.model);
            out
        } else {
            let b = net.recv_bytes(MODEL_OWNER)?;
            if b.len() > MAX_METADATA {
                bail!("party 0 sent an architecture of {} bytes", b.len());
            }
            let a: Architecture =
                serde_json::from_slice(&b).context("party 0 sent a malformed architecture")?;
            if a.graphs.is_empty() || a.graphs.len() > 2 || !plausible(&a.row_output) {
                bail!("party 0 sent a malformed architecture");
            }
            let mut plans = Vec::new();
            for (len, g) in a.graphs {
                g.validate().map_err(|e| anyhow::anyhow!("party 0 sent a malformed architecture: {e}"))?;
                plans.push((len, TrainPlan::new(g, t.loss, a.trainable.clone())?));
            }
            (plans, a.row_output)
        };
        // 3. Labels encoded for the loss, now that the output's shape is known.
        let mine = match mine {
            Some((x, Some(y))) => {
                let rows = x.shape[0];
                let encoded = encode_labels(t.loss, &y, rows, &row_output)?;
                Some((x, Some(encoded)))
            }
            other => other,
        };
        let label_row: Vec<usize> = match t.loss {
            Loss::CrossEntropy => vec![row_output.iter().product()],
            _ => row_output.clone(),
        };
        for (_, r) in &mut owners {
            if r.label_shape.is_some() {
                r.label_shape = Some([&[r.rows][..], &label_row].concat());
            }
        }
        Ok(Some((plans, owners, mine)))
    })();
    let setup = match setup {
        Ok(s) => s,
        Err(e) => {
            net.abort(&format!("party {id} could not prepare its part of the training"));
            return Err(e);
        }
    };
    let started = Instant::now();
    let empty: Vec<(usize, TrainPlan)> = Vec::new();
    let (plans, owners, mine) = match &setup {
        Some((p, o, m)) => (p, o.clone(), m.as_ref()),
        None => (&empty, Vec::new(), None),
    };
    let job = Training {
        plans,
        owners: owners
            .iter()
            .map(|(party, r)| OwnerRows {
                party: *party,
                values: mine.filter(|_| *party == id).map(|(x, y)| (x, y.as_ref())),
                data_shape: [&[r.rows][..], &r.row_shape].concat(),
                label_shape: r.label_shape.clone(),
            })
            .collect(),
        split: t.split,
        config: t.config.clone(),
        fp,
        progress: None,
    };
    let out = musket_session::run_party_on(backend, net, &job)?;
    let seconds = started.elapsed().as_secs_f64();
    let result: Option<PartyResult> = out.output;
    let role = match (id, backend) {
        (0, _) if mine.is_some() => "model owner and data owner",
        (0, _) => "model owner",
        (_, b) if b.has_dealer() && id == 2 => "dealer",
        _ if mine.is_some() => "data owner",
        _ => "helper",
    };
    let weights = result.as_ref().and_then(|r| r.weights.clone());
    if let (Some(path), Some(w), Some(m), Some(p)) = (t.output, &weights, &model, plans.first()) {
        let updates: Vec<(String, FloatTensor)> =
            p.1.graph
                .weights
                .iter()
                .zip(&p.1.trainable)
                .zip(w)
                .filter(|((_, &tr), _)| tr)
                .map(|(((n, _), _), v)| (n.clone(), v.clone()))
                .collect();
        std::fs::write(path, m.with_initializers(&updates)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let epochs = result.as_ref().map(|r| r.epochs.clone()).unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "party": id, "role": role, "protocol": backend.name(), "security": backend.security().name(), "seconds": seconds,
            "bytes_sent": out.stats.bytes_sent, "rounds": out.clock.1 - out.clock.0,
            "rows": owners.iter().map(|(p, r)| (p.to_string(), r.rows)).collect::<std::collections::BTreeMap<_, _>>(),
            "per_epoch": epochs, "learned_weights": weights.is_some(),
            "output": t.output.filter(|_| weights.is_some()).map(|p| p.display().to_string()),
        });
        println!("{v}");
    } else {
        for e in &epochs {
            let loss = e.loss.map_or_else(String::new, |l| format!("  loss {l:.4}"));
            println!(
                "epoch {:>3}: {:.2} s, {} rounds, sent {} bytes{loss}",
                e.epoch, e.seconds, e.rounds, e.bytes_sent
            );
        }
        match (weights.is_some(), t.output) {
            (true, Some(p)) => {
                println!("party {id} ({role}): trained in {seconds:.3}s; wrote {}", p.display())
            }
            (true, None) => println!("party {id} ({role}): trained in {seconds:.3}s (no --output given)"),
            _ => println!("party {id} ({role}): done in {seconds:.3}s; this party learns nothing"),
        }
    }
    Ok(())
}
