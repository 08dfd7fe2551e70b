//! Multi-process deployments: the cluster file, certificate generation, and running one party
//! over mutual TLS.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use musket_cli::config::{ClusterFile, PartyEntry, PARTIES};
use musket_cli::yao::{check_amount, verdict, Millionaires, ALICE, BOB};
use musket_core::{lt, MpcError, Protocol};
use musket_net::{generate_identity, TlsTransport};
use musket_ring::RingTensor;
use musket_session::{run_party as run_one, Backend, Job, Security};
use std::path::{Path, PathBuf};

/// What a party of a cluster runs.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum PartyJob {
    /// The millionaires' problem: party 0 (Alice) and party 1 (Bob) each give their amount.
    Millionaires {
        /// This party's amount (parties 0 and 1 only).
        #[arg(long, allow_negative_numbers = true)]
        amount: Option<i64>,
    },
    /// Private inference: party 0 (model owner) gives `--model`, party 1 (data owner) gives
    /// `--input` and alone learns the output; party 2 gives neither. Only the architecture and
    /// the input shape are sent in the clear.
    Infer {
        /// The ONNX model (party 0 only).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The .npy input (party 1 only).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Where party 1 writes the output (.npy).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Cut a large batch into slices of at most this many items, or `auto` (every party
        /// must give the same value).
        #[arg(long, default_value = "auto")]
        batch_slice: musket_cli::inference::BatchSlice,
        /// Skip the secure range check (every party must agree). Without it, a computation
        /// that overflows gives a wrong output instead of an error.
        #[arg(long)]
        no_range_check: bool,
        /// 2pc: the dealer makes all of its material first, from a plan each compute party
        /// traces from the architecture, so that the inference never waits for it (every
        /// party must agree).
        #[arg(long)]
        preprocess: bool,
        /// Largest model or input file accepted, in MiB.
        #[arg(long, default_value_t = musket_cli::files::DEFAULT_MAX_FILE_MB)]
        max_file_mb: u64,
    },
    /// Private training: party 0 (model owner) gives `--model` and alone learns the trained
    /// weights (`--output`); every data owner (any compute party) gives `--data` and
    /// `--labels`, and the rows of all owners are trained on together. Every party gives the
    /// same hyper-parameters.
    Train {
        /// The initial ONNX model (party 0 only).
        #[arg(long)]
        model: Option<PathBuf>,
        /// This party's training rows (.npy), if it owns data.
        #[arg(long)]
        data: Option<PathBuf>,
        /// This party's labels (.npy), with --data.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Where party 0 writes the trained model.
        #[arg(long)]
        output: Option<PathBuf>,
        /// The hyper-parameters (every party gives the same).
        #[command(flatten)]
        hyper: musket_cli::training::Hyper,
        /// How the data owners' data fits together: `rows` (each holds samples with their
        /// labels) or `columns` (each holds features of the same samples, in the same order;
        /// one of them gives --labels).
        #[arg(long, value_enum, default_value = "rows")]
        split: musket_cli::training::Split,
        /// Largest model or data file accepted, in MiB.
        #[arg(long, default_value_t = musket_cli::files::DEFAULT_MAX_FILE_MB)]
        max_file_mb: u64,
    },
    /// Repeated secure comparisons of random vectors, for load and fault tests.
    CompareLoop {
        /// Elements per comparison.
        #[arg(long, default_value_t = 10_000)]
        elements: usize,
        /// Number of comparisons.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
    },
}

/// Writes `cluster.toml` and `party<K>.crt` / `party<K>.key` for a three-party cluster.
pub(crate) fn init(
    dir: &Path,
    protocol: Backend,
    security: Security,
    host: &str,
    base_port: u16,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut parties = Vec::new();
    for id in 0..PARTIES {
        let ident = generate_identity(id)?;
        let cert = format!("party{id}.crt");
        std::fs::write(dir.join(&cert), &ident.cert_pem)?;
        write_private(&dir.join(format!("party{id}.key")), &ident.key_pem)?;
        let port = base_port.checked_add(id as u16).context("port out of range")?;
        parties.push(PartyEntry {
            id,
            address: format!("{host}:{port}"),
            listen: None,
            certificate: cert.into(),
        });
    }
    let file = ClusterFile {
        protocol,
        security,
        timeout_secs: ClusterFile::DEFAULT_TIMEOUT_SECS,
        connect_timeout_secs: ClusterFile::DEFAULT_CONNECT_TIMEOUT_SECS,
        max_buffered_mb: None,
        party: parties,
    };
    let path = dir.join("cluster.toml");
    std::fs::write(&path, toml::to_string_pretty(&file)?)?;
    println!("wrote {} and a certificate and key per party in {}", path.display(), dir.display());
    println!("give party K its key file party<K>.key and nobody else's");
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)?;
        Ok(())
    }
}

/// The public description of a job, which every party must share.
fn describe(job: &PartyJob) -> (String, Vec<String>) {
    match job {
        PartyJob::Millionaires { .. } => ("millionaires".into(), Vec::new()),
        PartyJob::Infer { batch_slice, no_range_check, preprocess, .. } => (
            "infer".into(),
            vec![
                format!("batch_slice={}", batch_slice.name()),
                format!("range_check={}", !no_range_check),
                format!("preprocess={preprocess}"),
                format!("frac_bits={}", musket_ring::FixedPoint::default().frac_bits()),
            ],
        ),
        PartyJob::Train { hyper, split, .. } => {
            let mut params = hyper.params();
            params.push(format!("split={}", split.name()));
            params.push("frac_bits=16".into());
            ("train".into(), params)
        }
        PartyJob::CompareLoop { elements, iterations } => {
            ("compare-loop".into(), vec![format!("elements={elements}"), format!("iterations={iterations}")])
        }
    }
}

/// Repeated comparisons on random inputs of parties 0 and 1.
struct CompareLoop {
    elements: usize,
    iterations: usize,
}

impl Job for CompareLoop {
    type Output = u64;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<u64, MpcError> {
        let shape = [self.elements];
        let mut prg = musket_core::Prg::from_os();
        let mine = |prg: &mut musket_core::Prg| {
            RingTensor::from_vec(prg.words(self.elements).iter().map(|w| w >> 2).collect())
        };
        let (va, vb) = (mine(&mut prg), mine(&mut prg));
        let a = p.input(0, (p.party_id() == 0).then_some(&va), &shape)?;
        let b = p.input(1, (p.party_id() == 1).then_some(&vb), &shape)?;
        let mut count = 0;
        for _ in 0..self.iterations {
            let c = lt(p, &a, &b)?;
            count = p.reveal(&c)?.data().iter().sum();
        }
        Ok(count)
    }
}

/// Runs one party of the cluster.
pub(crate) fn run_party(
    config: &Path,
    id: usize,
    key: Option<&Path>,
    json: bool,
    job: PartyJob,
) -> Result<()> {
    let musket_cli::agreement::Loaded { backend, tls, digest } =
        musket_cli::agreement::load(config, id, key)?;
    let role = match (backend, id) {
        (b, 2) if b.has_dealer() => "dealer",
        (Backend::ThreePc, 2) => "helper",
        (_, 0) => "alice",
        _ => "bob",
    };
    if let PartyJob::Millionaires { amount } = &job {
        match (id, amount) {
            (ALICE | BOB, None) => bail!("party {id} must give --amount"),
            (ALICE | BOB, Some(v)) => check_amount(role, *v)?,
            (_, Some(_)) => bail!("party {id} has no amount in the millionaires' problem"),
            _ => {}
        }
    }
    if let PartyJob::Infer { model, input, output, preprocess, .. } = &job {
        if *preprocess && backend != Backend::TwoPc {
            bail!("{}", musket_cli::inference::PREPROCESS_IS_2PC);
        }
        let ok = match id {
            0 => model.is_some() && input.is_none() && output.is_none(),
            1 => model.is_none() && input.is_some(),
            _ => model.is_none() && input.is_none() && output.is_none(),
        };
        if !ok {
            bail!(
                "in inference party 0 gives --model, party 1 gives --input (and --output), party 2 neither"
            );
        }
    }
    if let PartyJob::Train { model, data, labels, output, .. } = &job {
        let computes = id < backend.compute_parties();
        if (id == 0) != model.is_some() || (id != 0 && output.is_some()) {
            bail!("in training party 0 gives --model (and --output), no other party does");
        }
        if !computes && (data.is_some() || labels.is_some()) {
            bail!("party {id} is the dealer and holds no data; data owners are compute parties");
        }
        if labels.is_some() && data.is_none() {
            bail!("--labels come with --data");
        }
    }
    let mut transport = TlsTransport::connect(tls)?;
    let (command, params) = describe(&job);
    let mine = musket_cli::agreement::JobDescriptor {
        version: musket_cli::agreement::version(),
        protocol: backend.name().into(),
        cluster: digest,
        command,
        params,
    };
    musket_cli::agreement::agree(&mut transport, id, PARTIES, &mine)?;
    let started = std::time::Instant::now();
    match job {
        PartyJob::Infer { model, input, output, batch_slice, no_range_check, preprocess, max_file_mb } => {
            let files = crate::infer_party::PartyFiles {
                model: model.as_deref(),
                input: input.as_deref(),
                output: output.as_deref(),
                batch_slice,
                range_check: !no_range_check,
                preprocess,
                max_bytes: max_file_mb.saturating_mul(1 << 20),
            };
            return crate::infer_party::run_party(backend, id, transport, files, json);
        }
        PartyJob::Train { model, data, labels, output, hyper, split, max_file_mb } => {
            let t = crate::train_party::PartyTraining {
                model: model.as_deref(),
                data: data.as_deref(),
                labels: labels.as_deref(),
                output: output.as_deref(),
                loss: hyper.loss,
                split,
                config: hyper.config()?,
                max_bytes: max_file_mb.saturating_mul(1 << 20),
            };
            return crate::train_party::run_party(backend, id, transport, t, json);
        }
        PartyJob::Millionaires { amount } => {
            let job =
                Millionaires { alice: amount.filter(|_| id == ALICE), bob: amount.filter(|_| id == BOB) };
            let out = run_one(backend, Box::new(transport), &job)?;
            let richer = out.output.flatten().map(verdict);
            if json {
                let v = serde_json::json!({
                    "party": id, "role": role, "protocol": backend.name(), "security": backend.security().name(), "richer": richer,
                    "rounds": out.clock.1 - out.clock.0, "bytes_sent": out.stats.bytes_sent,
                });
                println!("{v}");
            } else {
                match richer {
                    Some("equal") => println!("party {id} ({role}): Alice and Bob are equally rich."),
                    Some(who) => println!("party {id} ({role}): {who} is richer."),
                    None => println!("party {id} ({role}): done; this party learns nothing."),
                }
                println!("sent {} bytes", out.stats.bytes_sent);
            }
        }
        PartyJob::CompareLoop { elements, iterations } => {
            let out = run_one(backend, Box::new(transport), &CompareLoop { elements, iterations })?;
            let secs = started.elapsed().as_secs_f64();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"party": id, "role": role, "seconds": secs, "bytes_sent": out.stats.bytes_sent})
                );
            } else {
                println!("party {id} ({role}): {iterations} comparisons of {elements} elements in {secs:.3}s, sent {} bytes", out.stats.bytes_sent);
            }
        }
    }
    Ok(())
}
