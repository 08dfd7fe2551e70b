//! `musket`: secure multi-party computation from one binary. Every role (compute party,
//! dealer, input owner) is this program; the local mode runs all parties as threads.

mod bench;
mod cluster;
mod infer;
mod infer_party;
mod millionaires;
mod train;
mod train_party;

use anyhow::Result;
use clap::{Parser, Subcommand};
use musket_session::{Backend, Security};
use std::path::PathBuf;

/// mimalloc keeps freed memory for reuse. With the system allocator every multi-megabyte tensor
/// is a fresh `mmap` (page faults on first touch) and a `munmap` on drop (TLB shootdowns across
/// threads); that cost half the time of a 512x512 ring product and a fifth of a secure multiply.
/// Built with `no_thp`: mimalloc's default `madvise(MADV_HUGEPAGE)` made every first touch
/// zero whole 2 MiB pages, which cost a party process of a three-process ResNet-18 run about a
/// second (2.3-2.6 s against 1.4 s on the LAN profile of scripts/netbench.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: position 15 of `mi_option_t` in mimalloc.h (v2 and v3 alike); the
/// Rust bindings name the options around it (`mi_option_use_numa_nodes` = 16) but not it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed pages back to the kernel. By default it purges them after
/// 10 ms, and every later tensor then faults them in again zeroed: a third of ResNet-50's time
/// (12.2 s against 8.7 s). The cost is that resident memory stays at its peak until exit.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mi_option_set stores an integer option; -1 is a documented value of this one.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(name = "musket", version, about = "Secure multi-party computation for ML models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Yao's millionaires' problem: who is richer, revealing nothing else. All parties run
    /// locally as threads; put negative amounts after `--`.
    Millionaires {
        /// Alice's wealth (a whole number).
        #[arg(allow_negative_numbers = true)]
        alice: i64,
        /// Bob's wealth (a whole number).
        #[arg(allow_negative_numbers = true)]
        bob: i64,
        /// Protocol back end.
        #[arg(long, default_value = "3pc")]
        protocol: Backend,
        /// Security level: semi-honest, or malicious (3pc: a cheating party makes the others
        /// abort with `cheating detected` instead of changing the answer).
        #[arg(long, default_value = "semi-honest")]
        security: Security,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set up a cluster of parties on several processes or machines.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Run one party of a cluster over mutual TLS.
    Party {
        /// The cluster file written by `musket cluster init`.
        #[arg(long)]
        config: PathBuf,
        /// This party's id.
        #[arg(long)]
        id: usize,
        /// This party's private key (default: party<ID>.key next to the config).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        job: cluster::PartyJob,
    },
    /// Private inference of an ONNX model on a .npy input, all parties local.
    Infer(infer::InferArgs),
    /// Measure protocol operations: time, bytes and rounds per party.
    Bench(bench::BenchArgs),
    /// Train a model on private data: party 0 owns the initial model, party 1 the data and
    /// labels; the weights stay secret-shared and only the model owner learns the result.
    Train(train::TrainArgs),
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Write a cluster file and a certificate and key per party for a local cluster.
    Init {
        /// Directory to write into (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Protocol the cluster runs.
        #[arg(long, default_value = "3pc")]
        protocol: Backend,
        /// Security level the cluster runs at (semi-honest or malicious).
        #[arg(long, default_value = "semi-honest")]
        security: Security,
        /// Host every party listens on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port of party 0; party K listens on base + K.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
    },
}

fn main() {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .with_env_filter(log_filter())
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Colour codes only on a terminal, and never when `NO_COLOR` is set to anything non-empty
/// (no-color.org): log files and pipes get plain text.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The log filter from `MUSKET_LOG` (default `warn`). rustls dumps whole handshake messages at
/// debug and trace level; it stays at `info` unless `MUSKET_LOG` names it explicitly.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let spec = std::env::var("MUSKET_LOG").unwrap_or_else(|_| "warn".into());
    let spec = if spec.contains("rustls") { spec } else { format!("{spec},rustls=info") };
    tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: MUSKET_LOG is not a valid filter ({e}); using warn");
        tracing_subscriber::EnvFilter::new("warn,rustls=info")
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Millionaires { alice, bob, protocol, security, json } => millionaires::local(
            alice,
            bob,
            protocol.with_security(security).map_err(anyhow::Error::msg)?,
            json,
        ),
        Command::Cluster { action: ClusterAction::Init { dir, protocol, security, host, base_port } } => {
            protocol.with_security(security).map_err(anyhow::Error::msg)?;
            cluster::init(&dir, protocol, security, &host, base_port)
        }
        Command::Party { config, id, key, json, job } => {
            cluster::run_party(&config, id, key.as_deref(), json, job)
        }
        Command::Infer(args) => infer::run(args),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
