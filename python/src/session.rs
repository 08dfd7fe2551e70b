//! A session of party threads that runs one secure operation per call: CrypTen's tensor model.
//! Each compute party is a thread that owns its back end and its shares (by handle); a call
//! sends the same command to every party and waits for all of them, with the GIL released.
//! The 2PC dealer is a thread too. Shares never leave their party's thread; only `reveal`
//! answers carry values.

use crate::{decoded_f64_bytes, encode_f64_bytes, mpc_error, BadInputError, MusketError, UNFIT};
use musket_core::{MpcError, Protocol, Share};
use musket_net::local_mesh;
use musket_nn as nn;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_party, Backend, Job};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A secure operation on handles.
#[derive(Clone, Debug)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Neg,
    AddConst(f64),
    MulConst(f64),
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Reciprocal,
    Abs,
    Softmax(usize),
    Less,
    Greater,
    LessEqual,
    GreaterEqual,
    Equal,
    Sum(Option<usize>),
    Reshape(Vec<usize>),
    Take(Arc<Vec<usize>>, Vec<usize>),
}

#[derive(Clone, Debug)]
enum Cmd {
    /// `data`: the owner's encoded value, in the owner's command only.
    Share {
        id: u64,
        owner: usize,
        data: Option<Vec<u64>>,
        shape: Vec<usize>,
    },
    Apply {
        id: u64,
        op: Op,
        args: Vec<u64>,
    },
    /// `report`: the one party whose answer carries the opened words (the others open too,
    /// but send nothing back).
    Reveal {
        id: u64,
        to: Option<usize>,
        report: usize,
    },
    /// Fails the party thread with this message (which ends the session at every party).
    Fail {
        reason: String,
    },
    Free {
        id: u64,
    },
    Stats,
    Close,
}

/// One party's answer: the result's shape, opened words (if any: the reporting party's), and
/// its traffic so far.
#[derive(Debug, Default)]
struct Answer {
    shape: Vec<usize>,
    values: Option<Vec<u64>>,
    bytes_sent: u64,
    rounds: u64,
}

/// The job every party thread runs: a loop over commands.
struct Worker {
    inboxes: Vec<Mutex<Option<Receiver<Cmd>>>>,
    replies: Mutex<Sender<(usize, Result<Answer, MpcError>)>>,
    fp: FixedPoint,
    /// Why a party thread ended (its first failure: a set-up that failed, or a peer that
    /// stopped it before a command came), so that a call that finds the thread gone says
    /// why instead of only that it has stopped.
    stopped: Mutex<Option<MpcError>>,
}

impl Worker {
    fn new(
        inboxes: Vec<Mutex<Option<Receiver<Cmd>>>>,
        replies: Sender<(usize, Result<Answer, MpcError>)>,
        fp: FixedPoint,
    ) -> Self {
        Worker { inboxes, replies: Mutex::new(replies), fp, stopped: Mutex::new(None) }
    }

    /// Runs one party's thread to its end, keeping the reason if it failed.
    fn run_thread(&self, backend: Backend, transport: Box<dyn musket_net::Transport>) {
        if let Err(e) = run_party(backend, transport, self) {
            if let Ok(mut slot) = self.stopped.lock() {
                slot.get_or_insert(e);
            }
        }
    }

    /// The error for a call that found a party thread gone.
    fn stop_reason(&self) -> MpcError {
        self.stopped
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| MpcError::Usage("a party thread has stopped".into()))
    }
}

fn usage(msg: impl Into<String>) -> MpcError {
    MpcError::Usage(msg.into())
}

/// Numpy broadcasting of two shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, MpcError> {
    musket_graph::broadcast_shapes(a, b).map_err(|e| usage(e.to_string()))
}

fn widen<'a, P: Protocol>(p: &P, x: &'a P::Share, shape: &[usize]) -> Result<Cow<'a, P::Share>, MpcError> {
    if x.shape() == shape {
        return Ok(Cow::Borrowed(x));
    }
    // Align the ranks first (numpy prepends size-1 axes).
    let mut aligned = vec![1; shape.len().saturating_sub(x.shape().len())];
    aligned.extend_from_slice(x.shape());
    Ok(Cow::Owned(p.linear(x, &nn::Widen { keep: &aligned, shape })?))
}

fn apply<P: Protocol>(p: &mut P, fp: FixedPoint, op: &Op, args: &[&P::Share]) -> Result<P::Share, MpcError> {
    let x = args.first().copied().ok_or_else(|| usage("missing operand"))?;
    let second = || args.get(1).copied().ok_or_else(|| usage("missing second operand"));
    let enc = |v: f64| fp.encode_one(v).ok_or_else(|| usage(format!("constant {v} out of range")));
    let real = |p: &mut P, bits: P::Share| p.scale(&bits, fp.one());
    Ok(match op {
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Less
        | Op::Greater
        | Op::LessEqual
        | Op::GreaterEqual
        | Op::Equal => {
            let y = second()?;
            let shape = broadcast_shape(x.shape(), y.shape())?;
            let (a, b) = (widen(p, x, &shape)?, widen(p, y, &shape)?);
            let (a, b) = (a.as_ref(), b.as_ref());
            match op {
                Op::Add => p.add(a, b)?,
                Op::Sub => p.sub(a, b)?,
                Op::Mul => musket_core::mul_fixed(p, fp, a, b)?,
                Op::Div => nn::div(p, fp, a, b)?,
                Op::Less => {
                    let c = nn::lt(p, a, b)?;
                    real(p, c)?
                }
                Op::Greater => {
                    let c = nn::gt(p, a, b)?;
                    real(p, c)?
                }
                Op::LessEqual => {
                    let c = nn::le(p, a, b)?;
                    real(p, c)?
                }
                Op::GreaterEqual => {
                    let c = nn::ge(p, a, b)?;
                    real(p, c)?
                }
                _ => {
                    let c = nn::eq(p, a, b)?;
                    real(p, c)?
                }
            }
        }
        Op::MatMul => {
            let y = second()?;
            if x.shape().len() != 2 || y.shape().len() != 2 || x.shape()[1] != y.shape()[0] {
                return Err(usage(format!(
                    "matmul of {:?} and {:?}: needs [m, k] @ [k, n]",
                    x.shape(),
                    y.shape()
                )));
            }
            let prod = p.matmul(x, y)?;
            p.truncate(&prod, fp.frac_bits())?
        }
        Op::Neg => p.neg(x)?,
        Op::AddConst(c) => p.add_public(x, &RingTensor::filled(x.shape(), enc(*c)?))?,
        // Whole numbers scale the shares exactly, with no communication.
        Op::MulConst(c) if c.fract() == 0.0 && c.abs() < (1u64 << 20) as f64 => {
            p.scale(x, (*c as i64) as u64)?
        }
        Op::MulConst(c) => nn::scale_public_fine(p, fp, x, *c)?,
        Op::Relu => nn::relu(p, x)?,
        Op::Sigmoid => nn::sigmoid(p, fp, x)?,
        Op::Tanh => nn::tanh(p, fp, x)?,
        Op::Exp => nn::exp(p, fp, x)?,
        Op::Log => nn::log(p, fp, x)?,
        Op::Sqrt => nn::sqrt(p, fp, x)?,
        Op::Reciprocal => nn::reciprocal(p, fp, x)?,
        Op::Abs => nn::abs(p, x)?,
        Op::Softmax(axis) => {
            if *axis >= x.shape().len() {
                return Err(usage(format!("softmax axis {axis} out of range for {:?}", x.shape())));
            }
            nn::softmax(p, fp, x, *axis)?
        }
        Op::Sum(None) => {
            let flat = p.reshape(x, &[x.len()])?;
            let s = p.sum_axis(&flat, 0)?;
            p.reshape(&s, &[])?
        }
        Op::Sum(Some(axis)) => {
            if *axis >= x.shape().len() {
                return Err(usage(format!("sum axis {axis} out of range for {:?}", x.shape())));
            }
            p.sum_axis(x, *axis)?
        }
        Op::Reshape(shape) => p.reshape(x, shape)?,
        Op::Take(indices, shape) => {
            if indices.iter().any(|&i| i >= x.len()) || indices.len() != shape.iter().product::<usize>() {
                return Err(usage("index out of range"));
            }
            let sources: Vec<Option<usize>> = indices.iter().map(|&i| Some(i)).collect();
            p.linear(x, &musket_core::maps::Pick { shape, sources: &sources })?
        }
    })
}

impl Job for Worker {
    type Output = ();
    fn run<P: Protocol>(&self, p: &mut P) -> Result<(), MpcError> {
        let me = p.party_id();
        let inbox = self.inboxes[me]
            .lock()
            .map_err(|_| usage("poisoned"))?
            .take()
            .ok_or_else(|| usage("no inbox"))?;
        let reply = self.replies.lock().map_err(|_| usage("poisoned"))?.clone();
        let mut shares: HashMap<u64, P::Share> = HashMap::new();
        let fp = self.fp;
        loop {
            let Ok(cmd) = inbox.recv() else { return Ok(()) };
            let result = (|| -> Result<Answer, MpcError> {
                let mut answer = Answer::default();
                match cmd {
                    Cmd::Share { id, owner, data, shape } => {
                        let encoded = match (data, me == owner) {
                            (Some(d), true) => Some(RingTensor::new(shape.clone(), d)?),
                            _ => None,
                        };
                        let s = p.input(owner, encoded.as_ref(), &shape)?;
                        answer.shape = shape;
                        shares.insert(id, s);
                    }
                    Cmd::Apply { id, op, args } => {
                        let refs: Vec<&P::Share> = args
                            .iter()
                            .map(|a| shares.get(a).ok_or_else(|| usage("unknown tensor")))
                            .collect::<Result<_, _>>()?;
                        let out = apply(p, fp, &op, &refs)?;
                        answer.shape = out.shape().to_vec();
                        shares.insert(id, out);
                    }
                    Cmd::Reveal { id, to, report } => {
                        let x = shares.get(&id).ok_or_else(|| usage("unknown tensor"))?;
                        answer.shape = x.shape().to_vec();
                        let opened = match to {
                            None => Some(p.reveal(x)?),
                            Some(party) => p.reveal_to(x, party)?,
                        };
                        answer.values = opened.filter(|_| me == report).map(RingTensor::into_data);
                    }
                    Cmd::Free { id } => {
                        shares.remove(&id);
                    }
                    Cmd::Stats => {}
                    Cmd::Close => return Err(usage("closed")),
                    Cmd::Fail { reason } => return Err(usage(reason)),
                }
                let s = p.stats();
                answer.bytes_sent = s.bytes_sent;
                answer.rounds = s.rounds;
                Ok(answer)
            })();
            match result {
                Err(MpcError::Usage(m)) if m == "closed" => return Ok(()),
                Err(e) => {
                    let e = p.explain_failure(e);
                    let text = e.to_string();
                    let _ = reply.send((me, Err(e)));
                    return Err(MpcError::Usage(text));
                }
                Ok(a) => {
                    if reply.send((me, Ok(a))).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// A local session: every party of the protocol as a thread of this process.
#[pyclass(module = "musket._native")]
pub(crate) struct Session {
    inboxes: Vec<Sender<Cmd>>,
    replies: Mutex<Receiver<(usize, Result<Answer, MpcError>)>>,
    threads: Vec<JoinHandle<()>>,
    next: u64,
    broken: Option<String>,
    backend: Backend,
    /// This process's party in a cluster session; `None` for a local one (all parties).
    party: Option<usize>,
    /// The session's encoding: values are encoded and decoded on the caller's side.
    fp: FixedPoint,
    /// What the party threads share (and why one stopped).
    worker: Arc<Worker>,
}

/// What a call gives back: the shape, and the values when something was revealed to us.
type Outcome<'py> = (u64, Vec<usize>, Option<Bound<'py, PyByteArray>>);

impl Session {
    fn send(&mut self, py: Python<'_>, cmd: Cmd) -> PyResult<Vec<Answer>> {
        self.send_each(py, |_| cmd.clone())
    }

    /// The compute party of inbox `k`: `k` in a local session, this process's in a cluster.
    fn party_of_inbox(&self, k: usize) -> usize {
        self.party.unwrap_or(k)
    }

    /// [`Session::send`] with a command per party (`command(party)`).
    fn send_each(
        &mut self,
        py: Python<'_>,
        mut command: impl FnMut(usize) -> Cmd + Send,
    ) -> PyResult<Vec<Answer>> {
        if let Some(why) = &self.broken {
            return Err(MusketError::new_err(format!("the session is closed: {why}")));
        }
        let n = self.inboxes.len();
        let parties: Vec<usize> = (0..n).map(|k| self.party_of_inbox(k)).collect();
        let result = py.allow_threads(|| {
            for (tx, &party) in self.inboxes.iter().zip(&parties) {
                if tx.send(command(party)).is_err() {
                    return Err(self.worker.stop_reason());
                }
            }
            let replies = self.replies.lock().map_err(|_| MpcError::Usage("poisoned".into()))?;
            let mut answers: Vec<(usize, Answer)> = Vec::with_capacity(n);
            let mut first_error: Option<MpcError> = None;
            let mut got = 0;
            while got < n {
                let reply = match replies.recv_timeout(Duration::from_millis(100)) {
                    Ok(reply) => reply,
                    // A party thread that ended (it failed, perhaps while setting up, before it
                    // took its inbox) answers nothing more: what it sent is already queued.
                    Err(RecvTimeoutError::Timeout) if self.threads.iter().any(|t| t.is_finished()) => {
                        match replies.try_recv() {
                            Ok(reply) => reply,
                            Err(_) => {
                                first_error.get_or_insert_with(|| self.worker.stop_reason());
                                break;
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        first_error.get_or_insert_with(|| self.worker.stop_reason());
                        break;
                    }
                };
                got += 1;
                match reply {
                    (party, Ok(a)) => answers.push((party, a)),
                    (_, Err(e)) => {
                        let root = !e.is_peer_abort();
                        if first_error.is_none() || root {
                            first_error = Some(e);
                        }
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => {
                    // In party order (a cluster session has only this party's answer).
                    answers.sort_by_key(|(party, _)| *party);
                    Ok(answers.into_iter().map(|(_, a)| a).collect())
                }
            }
        });
        result.map_err(|e| {
            // A failed operation may leave the parties out of step: the session ends.
            self.broken = Some(e.to_string());
            self.shutdown();
            mpc_error(e)
        })
    }

    fn shutdown(&mut self) {
        for tx in &self.inboxes {
            let _ = tx.send(Cmd::Close);
        }
        self.inboxes.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// A refusal only this process sees (its own value is bad). A local session has sent
    /// nothing yet and goes on. In a cluster the other parties are already in this step and
    /// would wait for this party's message, so the session ends at every party: this party's
    /// thread fails with the same message, which stops its peers, as any failed call does.
    fn refuse_alone(&mut self, py: Python<'_>, reason: String) -> PyErr {
        if self.party.is_some() {
            if let Err(e) = self.send_each(py, |_| Cmd::Fail { reason: reason.clone() }) {
                return e;
            }
        }
        BadInputError::new_err(reason)
    }

    fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

fn op_from(name: &str, value: Option<f64>, axis: Option<usize>, shape: Option<Vec<usize>>) -> PyResult<Op> {
    let need = |v: Option<f64>| v.ok_or_else(|| BadInputError::new_err(format!("{name} needs a value")));
    Ok(match name {
        "add" => Op::Add,
        "sub" => Op::Sub,
        "mul" => Op::Mul,
        "div" => Op::Div,
        "matmul" => Op::MatMul,
        "neg" => Op::Neg,
        "add_const" => Op::AddConst(need(value)?),
        "mul_const" => Op::MulConst(need(value)?),
        "relu" => Op::Relu,
        "sigmoid" => Op::Sigmoid,
        "tanh" => Op::Tanh,
        "exp" => Op::Exp,
        "log" => Op::Log,
        "sqrt" => Op::Sqrt,
        "reciprocal" => Op::Reciprocal,
        "abs" => Op::Abs,
        "softmax" => Op::Softmax(axis.ok_or_else(|| BadInputError::new_err("softmax needs an axis"))?),
        "lt" => Op::Less,
        "gt" => Op::Greater,
        "le" => Op::LessEqual,
        "ge" => Op::GreaterEqual,
        "eq" => Op::Equal,
        "sum" => Op::Sum(axis),
        "reshape" => Op::Reshape(shape.ok_or_else(|| BadInputError::new_err("reshape needs a shape"))?),
        other => return Err(BadInputError::new_err(format!("unknown operation {other:?}"))),
    })
}

#[pymethods]
impl Session {
    /// Starts the parties of `protocol` ("2pc" or "3pc") as threads, with `frac_bits`
    /// fractional bits.
    #[new]
    #[pyo3(signature = (protocol="3pc", frac_bits=16, security="semi-honest"))]
    fn new(protocol: &str, frac_bits: u32, security: &str) -> PyResult<Self> {
        let backend = crate::secure_backend(protocol, security)?;
        if !(14..=18).contains(&frac_bits) {
            return Err(BadInputError::new_err("frac_bits must be from 14 to 18"));
        }
        let compute = backend.compute_parties();
        let (mut senders, mut inboxes) = (Vec::new(), Vec::new());
        for _ in 0..compute {
            let (tx, rx) = channel();
            senders.push(tx);
            inboxes.push(Mutex::new(Some(rx)));
        }
        // The 2PC dealer has no inbox; give it an empty slot so indices match party ids.
        inboxes.push(Mutex::new(None));
        let (reply_tx, replies) = channel();
        let worker = Arc::new(Worker::new(inboxes, reply_tx, FixedPoint::new(frac_bits)));
        // An idle session waits on its user, not on the network: a long receive timeout.
        let mesh = local_mesh(backend.transport_parties(), Some(Duration::from_secs(7 * 24 * 3600)));
        let parties = mesh.len();
        let threads = mesh
            .into_iter()
            .map(|t| {
                let w = Arc::clone(&worker);
                // The parties share this process' cores: on a machine with fewer than two
                // cores a party, each multiplies matrices on its own thread and hands its
                // proof steps to the shared pool (see `musket_ring::local_party_kernels`).
                std::thread::spawn(move || {
                    musket_ring::local_party_kernels(parties, || w.run_thread(backend, Box::new(t)));
                })
            })
            .collect();
        Ok(Session {
            inboxes: senders,
            replies: Mutex::new(replies),
            threads,
            next: 0,
            broken: None,
            backend,
            party: None,
            fp: FixedPoint::new(frac_bits),
            worker,
        })
    }

    /// One party of a session whose parties are separate processes over the TLS cluster of
    /// `config` (as `musket party`): every party runs the same script. In 2PC, party 2 (the
    /// dealer) serves the other two until they close, then returns a closed session.
    #[staticmethod]
    #[pyo3(signature = (config, party, key=None, frac_bits=16))]
    fn from_cluster(
        py: Python<'_>,
        config: std::path::PathBuf,
        party: usize,
        key: Option<std::path::PathBuf>,
        frac_bits: u32,
    ) -> PyResult<Self> {
        if !(14..=18).contains(&frac_bits) {
            return Err(BadInputError::new_err("frac_bits must be from 14 to 18"));
        }
        let params = vec![format!("frac_bits={frac_bits}")];
        let (backend, transport) = py
            .allow_threads(|| {
                musket_cli::agreement::connect(&config, party, key.as_deref(), "python-session", params)
            })
            .map_err(|e| crate::PeerError::new_err(format!("{e:#}")))?;
        let computes = party < backend.compute_parties();
        let mut inboxes: Vec<Mutex<Option<Receiver<Cmd>>>> = (0..3).map(|_| Mutex::new(None)).collect();
        let mut senders = Vec::new();
        if computes {
            let (tx, rx) = channel();
            senders.push(tx);
            inboxes[party] = Mutex::new(Some(rx));
        }
        let (reply_tx, replies) = channel();
        let worker = Arc::new(Worker::new(inboxes, reply_tx, FixedPoint::new(frac_bits)));
        let w = Arc::clone(&worker);
        let thread = std::thread::spawn(move || w.run_thread(backend, Box::new(transport)));
        let mut session = Session {
            inboxes: senders,
            replies: Mutex::new(replies),
            threads: vec![thread],
            next: 0,
            broken: None,
            backend,
            party: Some(party),
            fp: FixedPoint::new(frac_bits),
            worker,
        };
        if !computes {
            // The dealer: serve until the compute parties close.
            py.allow_threads(|| session.shutdown());
            session.broken = Some("this party is the 2PC dealer: it computes nothing".into());
        }
        Ok(session)
    }

    /// This process's party (None in a local session, which runs them all).
    #[getter]
    fn party(&self) -> Option<usize> {
        self.party
    }

    /// The protocol's name.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.backend.name()
    }

    /// Shares `data` (flat, row-major, of `shape`) from party `owner`: `(handle, shape)`.
    /// In a cluster session the other parties give `None`.
    #[pyo3(signature = (data, shape, owner))]
    fn share(
        &mut self,
        py: Python<'_>,
        data: Option<&[u8]>,
        shape: Vec<usize>,
        owner: usize,
    ) -> PyResult<(u64, Vec<usize>)> {
        // Every party of a cluster makes the same call, so this is refused by all alike.
        if owner >= self.backend.compute_parties() {
            return Err(BadInputError::new_err(format!(
                "owner {owner} is not a compute party of {} (0 to {})",
                self.backend.name(),
                self.backend.compute_parties() - 1
            )));
        }
        // Encoded here, once, and given to the owner's thread alone; a cluster party that
        // does not own the value ignores what it was given.
        let owns = self.party.is_none_or(|me| me == owner);
        let fp = self.fp;
        let encoded = match (owns, data) {
            (false, _) => None,
            (true, None) => Some(Err("the owner of a shared value must give it".to_string())),
            (true, Some(d)) => {
                let n = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
                Some(py.allow_threads(|| {
                    n.map_or_else(|| Err(UNFIT.to_string()), |n| encode_f64_bytes(fp, d, n))
                }))
            }
        };
        let mut words = match encoded {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(reason)) => return Err(self.refuse_alone(py, reason)),
        };
        let id = self.fresh();
        let answers = self.send_each(py, |party| {
            let data = if party == owner { words.take() } else { None };
            Cmd::Share { id, owner, data, shape: shape.clone() }
        })?;
        Ok((id, answers[0].shape.clone()))
    }

    /// Applies operation `name` to the handles `args`: `(handle, shape)`.
    #[pyo3(signature = (name, args, value=None, axis=None, shape=None))]
    fn apply(
        &mut self,
        py: Python<'_>,
        name: &str,
        args: Vec<u64>,
        value: Option<f64>,
        axis: Option<usize>,
        shape: Option<Vec<usize>>,
    ) -> PyResult<(u64, Vec<usize>)> {
        let op = op_from(name, value, axis, shape)?;
        let id = self.fresh();
        let answers = self.send(py, Cmd::Apply { id, op, args })?;
        Ok((id, answers[0].shape.clone()))
    }

    /// Gathers elements by flat index (`indices`, giving `shape`): indexing and transposes.
    fn take(
        &mut self,
        py: Python<'_>,
        arg: u64,
        indices: Vec<usize>,
        shape: Vec<usize>,
    ) -> PyResult<(u64, Vec<usize>)> {
        let id = self.fresh();
        let answers =
            self.send(py, Cmd::Apply { id, op: Op::Take(Arc::new(indices), shape), args: vec![arg] })?;
        Ok((id, answers[0].shape.clone()))
    }

    /// Opens a tensor to every party (`to` = None) or to one: the values and the shape.
    #[pyo3(signature = (arg, to=None))]
    fn reveal<'py>(&mut self, py: Python<'py>, arg: u64, to: Option<usize>) -> PyResult<Outcome<'py>> {
        if to.is_some_and(|t| t >= self.backend.compute_parties()) {
            return Err(BadInputError::new_err("no such party"));
        }
        // Every party opens; one reports: the receiver, or in a local session party 0.
        let report = self.party.unwrap_or(to.unwrap_or(0));
        let answers = self.send(py, Cmd::Reveal { id: arg, to, report })?;
        let fp = self.fp;
        let values = answers
            .iter()
            .find_map(|a| a.values.as_ref())
            .map(|v| decoded_f64_bytes(py, fp, v))
            .transpose()?;
        Ok((arg, answers[0].shape.clone(), values))
    }

    /// Forgets a tensor at every party.
    fn free(&mut self, py: Python<'_>, arg: u64) -> PyResult<()> {
        if self.broken.is_none() {
            self.send(py, Cmd::Free { id: arg })?;
        }
        Ok(())
    }

    /// `(rounds, bytes sent per compute party)` so far.
    fn stats(&mut self, py: Python<'_>) -> PyResult<(u64, Vec<u64>)> {
        let answers = self.send(py, Cmd::Stats)?;
        Ok((
            answers.iter().map(|a| a.rounds).max().unwrap_or(0),
            answers.iter().map(|a| a.bytes_sent).collect(),
        ))
    }

    /// Stops the party threads. The session cannot be used afterwards.
    fn close(&mut self, py: Python<'_>) {
        if self.broken.is_none() {
            self.broken = Some("closed by the user".into());
        }
        py.allow_threads(|| self.shutdown());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}
