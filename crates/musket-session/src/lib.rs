//! Runs a [`Job`] — a computation written once against [`Protocol`] — on a chosen back end,
//! either with every party as a thread of this process over the in-process mesh (tests, demos,
//! `musket millionaires`), or as one party of a real deployment over any transport.

use musket_2pc::{run_dealer, run_dealer_malicious, Dealer2pc, PlanTracer, Spdz2k};
use musket_core::{MpcError, Protocol};
use musket_net::{local_mesh, CommStats, Net, Transport};
use musket_rep3::{Rep3, Rep3Mal};
use std::time::Duration;

/// Which protocol family runs the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    /// Two compute parties (0, 1) and a dealer (party 2), semi-honest.
    #[serde(rename = "2pc")]
    TwoPc,
    /// Two compute parties (0, 1) and an honest dealer (party 2), secure with abort against
    /// either compute party (SPDZ2k's MACs, `musket_2pc::Spdz2k`).
    #[serde(rename = "2pc-malicious")]
    TwoPcMalicious,
    /// Three compute parties with replicated sharing, semi-honest, honest majority.
    #[serde(rename = "3pc")]
    ThreePc,
    /// Three compute parties with replicated sharing, secure with abort against one
    /// malicious party (`musket_rep3::Rep3Mal`).
    #[serde(rename = "3pc-malicious")]
    ThreePcMalicious,
}

/// The adversary a run is secure against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Every party follows the protocol (it may try to learn from what it sees).
    #[default]
    SemiHonest,
    /// One party may deviate arbitrarily; the honest parties then abort with
    /// `cheating detected` instead of giving a wrong answer (3PC only).
    Malicious,
}

impl Security {
    /// The name used on the command line and in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Security::SemiHonest => "semi-honest",
            Security::Malicious => "malicious",
        }
    }
}

impl std::str::FromStr for Security {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "semi-honest" => Ok(Security::SemiHonest),
            "malicious" => Ok(Security::Malicious),
            _ => Err(format!("unknown security level {s:?} (expected semi-honest or malicious)")),
        }
    }
}

impl Backend {
    /// Parties on the transport (the 2PC dealer included).
    pub fn transport_parties(self) -> usize {
        3
    }
    /// True for the 2PC back ends, whose party 2 is the dealer (it holds no shares and gets
    /// no output).
    pub fn has_dealer(self) -> bool {
        self.name() == "2pc"
    }
    /// Parties that hold shares.
    pub fn compute_parties(self) -> usize {
        match self {
            Backend::TwoPc | Backend::TwoPcMalicious => 2,
            Backend::ThreePc | Backend::ThreePcMalicious => 3,
        }
    }
    /// The protocol's name on the command line (`2pc` or `3pc`; the security level is
    /// separate).
    pub fn name(self) -> &'static str {
        match self {
            Backend::TwoPc | Backend::TwoPcMalicious => "2pc",
            Backend::ThreePc | Backend::ThreePcMalicious => "3pc",
        }
    }
    /// The security level.
    pub fn security(self) -> Security {
        match self {
            Backend::TwoPcMalicious | Backend::ThreePcMalicious => Security::Malicious,
            Backend::TwoPc | Backend::ThreePc => Security::SemiHonest,
        }
    }
    /// The back end for protocol `self` at `security`.
    pub fn with_security(self, security: Security) -> Result<Backend, String> {
        Ok(match (self.name(), security) {
            ("2pc", Security::SemiHonest) => Backend::TwoPc,
            ("2pc", Security::Malicious) => Backend::TwoPcMalicious,
            ("3pc", Security::SemiHonest) => Backend::ThreePc,
            _ => Backend::ThreePcMalicious,
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "2pc" => Ok(Backend::TwoPc),
            "3pc" => Ok(Backend::ThreePc),
            "3pc-malicious" => Ok(Backend::ThreePcMalicious),
            "2pc-malicious" => Ok(Backend::TwoPcMalicious),
            _ => Err(format!(
                "unknown protocol {s:?} (expected 2pc or 3pc, or 2pc-malicious or 3pc-malicious)"
            )),
        }
    }
}

/// A computation that every compute party runs, written once for every back end.
pub trait Job: Sync {
    /// What each compute party ends with.
    type Output: Send;
    /// The computation, as seen by one party.
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError>;
}

/// The 2PC dealer-material plan of `job`, from its code alone: the job runs as compute party
/// `party` (0 or 1: the view of the job it has, such as the model owner's weights) on a
/// [`PlanTracer`] (zeros, no peers), which records the requests a real run would make. Request
/// sizes follow from shapes, so the plan holds for any inputs of the shapes the job uses; a
/// job whose operations depended on opened values would not be planned correctly, and the
/// preprocessed run would then stop with "the operations differ from the preprocessed plan"
/// rather than compute with the wrong material. Costs about a plaintext run of the job
/// without its products (linear maps run on zeros).
pub fn trace_plan<J: Job>(job: &J, party: usize) -> Result<Vec<u8>, MpcError> {
    let mut tracer = PlanTracer::new(party)?;
    job.run(&mut tracer)?;
    Ok(tracer.plan())
}

/// `job` with its dealer material made first: every party runs [`Protocol::preprocess`] on
/// `plan` (from [`trace_plan`]), then the job, whose operations then take their material
/// from what was prepared and run online only. A no-op preprocessing on back ends without a
/// dealer.
pub struct Preprocessed<'a, J> {
    /// The job.
    pub job: &'a J,
    /// Its plan.
    pub plan: Vec<u8>,
}

/// What a party of a [`Preprocessed`] job ended with.
#[derive(Debug)]
pub struct PreprocessedOutput<T> {
    /// The job's output.
    pub output: T,
    /// Wall time of this party's preprocessing phase (for party 1, until the dealer has sent
    /// every correction).
    pub preprocessing: Duration,
}

impl<J: Job> Job for Preprocessed<'_, J> {
    type Output = PreprocessedOutput<J::Output>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let started = std::time::Instant::now();
        p.preprocess(&self.plan)?;
        let preprocessing = started.elapsed();
        Ok(PreprocessedOutput { output: self.job.run(p)?, preprocessing })
    }
}

/// What one party of a run ended with.
#[derive(Debug)]
pub struct PartyOutcome<T> {
    /// Transport party id.
    pub party: usize,
    /// `None` for the dealer, which computes nothing.
    pub output: Option<T>,
    /// Communication counts of this party for the job (set-up excluded).
    pub stats: CommStats,
    /// This party's round clock when the job started and when it ended.
    pub clock: (u64, u64),
}

/// Rounds a job took: how far the latest round clock among the parties advanced.
pub fn job_rounds<T>(outcomes: &[PartyOutcome<T>]) -> u64 {
    let start = outcomes.iter().map(|o| o.clock.0).max().unwrap_or(0);
    let end = outcomes.iter().map(|o| o.clock.1).max().unwrap_or(0);
    end.saturating_sub(start)
}

/// Runs one party of `job` over `transport`. A compute party's failure is announced to every
/// peer (without secrets) before it is returned.
pub fn run_party<J: Job>(
    backend: Backend,
    transport: Box<dyn Transport>,
    job: &J,
) -> Result<PartyOutcome<J::Output>, MpcError> {
    run_party_on(backend, Net::new(transport), job)
}

/// [`run_party`] on a [`Net`] that has already been used (e.g. to exchange public metadata
/// such as a model's architecture before the protocol starts).
pub fn run_party_on<J: Job>(
    backend: Backend,
    net: Net,
    job: &J,
) -> Result<PartyOutcome<J::Output>, MpcError> {
    let party = net.party_id();
    match backend {
        Backend::TwoPc if party == musket_2pc::DEALER => {
            let stats = run_dealer(net)?;
            Ok(PartyOutcome { party, output: None, stats, clock: (0, 0) })
        }
        Backend::TwoPc => drive(Dealer2pc::new(net)?, job),
        Backend::TwoPcMalicious if party == musket_2pc::DEALER => {
            let stats = run_dealer_malicious(net)?;
            Ok(PartyOutcome { party, output: None, stats, clock: (0, 0) })
        }
        Backend::TwoPcMalicious => drive(Spdz2k::new(net)?, job),
        Backend::ThreePc => drive(Rep3::new(net)?, job),
        Backend::ThreePcMalicious => drive(Rep3Mal::new(net)?, job),
    }
}

fn drive<P: Protocol, J: Job>(mut p: P, job: &J) -> Result<PartyOutcome<J::Output>, MpcError> {
    let before = p.stats();
    match job.run(&mut p).and_then(|out| p.finish().map(|_| out)) {
        Ok(out) => {
            let after = p.stats();
            Ok(PartyOutcome {
                party: p.party_id(),
                output: Some(out),
                stats: after.since(&before),
                clock: (before.rounds, after.rounds),
            })
        }
        Err(e) => {
            let e = p.explain_failure(e);
            // Relay our own failure; a failure we learned from a peer is already known to all.
            if !e.is_peer_abort() {
                p.abort(&e.public_reason());
            }
            Err(e)
        }
    }
}

/// Runs every party of `job` as a thread of this process. Returns each party's outcome, in
/// party order, or the first error.
pub fn run_local<J: Job>(
    backend: Backend,
    job: &J,
    timeout: Option<Duration>,
) -> Result<Vec<PartyOutcome<J::Output>>, MpcError> {
    let mesh = local_mesh(backend.transport_parties(), timeout);
    let parties = mesh.len();
    let results: Vec<Result<PartyOutcome<J::Output>, MpcError>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            // The parties share this process' cores: on a machine with fewer than two cores a
            // party, each multiplies matrices on its own thread and hands its proof steps to
            // the shared pool (see `musket_ring::local_party_kernels`).
            mesh.into_iter()
                .map(|t| {
                    s.spawn(move || musket_ring::local_party_kernels(parties, || run_party(backend, Box::new(t), job)))
                })
                .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(MpcError::Usage("a party thread panicked".into()))))
            .collect()
    });
    // Report the root cause: a party that failed on its own rather than because a peer
    // aborted or went away.
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(o) => outcomes.push(o),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(outcomes);
    }
    let root = errors
        .iter()
        .position(|e| {
            !e.is_peer_abort() && !matches!(e, MpcError::Net(musket_net::NetError::Disconnected { .. }))
        })
        .unwrap_or(0);
    Err(errors.swap_remove(root))
}
