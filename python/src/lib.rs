//! The native half of Musket's Python package (`musket._native`): private inference, training
//! and the millionaires' problem with every party as a thread of the calling process, and a
//! session of party threads that runs one secure operation per call (the tensor API). Every
//! call that runs a protocol releases the GIL. Arrays cross the boundary as little-endian f64
//! bytes with a shape (no per-element Python objects); `musket/__init__.py` turns them into numpy arrays.

use musket_cli::inference::{
    audit, prepare as prepare_inference, range_error, run_preprocessed, BatchSlice, Inference, OWNERS,
    PREPROCESS_IS_2PC,
};
use musket_cli::training::{
    audit_training, encode_labels, prepare, OptimizerName, OwnerRows, Split, Training, DATA_OWNER,
    MODEL_OWNER,
};
use musket_cli::yao::{check_amount, verdict, Millionaires};
use musket_core::MpcError;
use musket_graph::{FloatTensor, RunOptions};
use musket_onnx::{ImportError, Model};
use musket_ring::FixedPoint;
use musket_session::{job_rounds, run_local, Backend};
use musket_train::{Loss, TrainConfig};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict};

mod session;

// The protocols allocate and free tensors of megabytes at every operation; mimalloc with
// purging off reuses freed pages instead of faulting fresh ones in (as the `musket` binary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mi_option_set stores an integer option; -1 is a documented value of this one.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

create_exception!(_native, MusketError, PyException, "Any error Musket reports.");
create_exception!(_native, BadModelError, MusketError, "The model cannot be read, imported or trained.");
create_exception!(
    _native,
    BadInputError,
    MusketError,
    "An input, label or argument is unusable (shape, range, type)."
);
create_exception!(
    _native,
    PeerError,
    MusketError,
    "A party failed, disconnected, sent something malformed or timed out."
);
create_exception!(
    _native,
    CheatingDetected,
    MusketError,
    "A party deviated from the protocol (malicious security)."
);

/// Maps a protocol error to the exception hierarchy, with the CLI's message.
pub(crate) fn mpc_error(e: MpcError) -> PyErr {
    let text = e.to_string();
    if text.contains("cheating detected") {
        return CheatingDetected::new_err(text);
    }
    match e {
        MpcError::Net(_) => PeerError::new_err(text),
        _ if e.is_peer_abort() => PeerError::new_err(text),
        _ => BadInputError::new_err(text),
    }
}

fn model_error(e: ImportError) -> PyErr {
    BadModelError::new_err(e.to_string())
}

fn anyhow_error(e: anyhow::Error) -> PyErr {
    if let Some(m) = e.downcast_ref::<MpcError>() {
        return mpc_error(MpcError::Usage(m.to_string()));
    }
    if e.downcast_ref::<ImportError>().is_some() {
        return BadModelError::new_err(format!("{e:#}"));
    }
    MusketError::new_err(format!("{e:#}"))
}

pub(crate) fn backend(name: &str) -> PyResult<Backend> {
    name.parse::<Backend>().map_err(BadInputError::new_err)
}

/// The back end for a protocol name and a security level (`semi-honest` or `malicious`).
pub(crate) fn secure_backend(protocol: &str, security: &str) -> PyResult<Backend> {
    let level = security.parse::<musket_session::Security>().map_err(BadInputError::new_err)?;
    backend(protocol)?.with_security(level).map_err(BadInputError::new_err)
}

/// Little-endian f64 bytes (numpy's `tobytes()` of a float64 array) as values.
pub(crate) fn f64s(bytes: &[u8], what: &str) -> PyResult<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(BadInputError::new_err(format!(
            "{what}: {} bytes is not a whole number of float64",
            bytes.len()
        )));
    }
    let mut out = vec![0f64; bytes.len() / 8];
    for (v, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *v = f64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    Ok(out)
}

/// Little-endian f64 bytes (numpy's `tobytes()` of a float64 array) of `n` values, encoded as
/// fixed-point ring words straight from the bytes where they are aligned (no vector of floats
/// in between). The error is the message of a `BadInputError`.
pub(crate) fn encode_f64_bytes(fp: FixedPoint, bytes: &[u8], n: usize) -> Result<Vec<u64>, String> {
    let unfit = || UNFIT.to_string();
    if bytes.len() != n.checked_mul(8).ok_or_else(unfit)? {
        return Err(unfit());
    }
    let value = |c: &[u8]| f64::from_le_bytes(c.try_into().expect("8 bytes"));
    let encoded = match bytemuck::try_cast_slice::<u8, f64>(bytes) {
        // Aligned (Python's bytes objects are) and little-endian: the floats themselves.
        Ok(values) if cfg!(target_endian = "little") => fp.encode(values),
        _ => fp.encode(&bytes.chunks_exact(8).map(value).collect::<Vec<f64>>()),
    };
    encoded.map_err(|e| {
        if value(&bytes[e.index * 8..e.index * 8 + 8]).is_finite() {
            e.to_string()
        } else {
            unfit()
        }
    })
}

/// Why a value was refused when its length or a non-finite element is the problem.
pub(crate) const UNFIT: &str = "the data does not fit its shape or holds a value that is not finite";

/// Ring words decoded as fixed-point reals, written as little-endian f64 bytes straight into
/// a `bytearray` (see [`f64_bytes`]).
pub(crate) fn decoded_f64_bytes<'py>(
    py: Python<'py>,
    fp: FixedPoint,
    words: &[u64],
) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, words.len() * 8, |out| {
        for (c, w) in out.chunks_exact_mut(8).zip(words) {
            c.copy_from_slice(&fp.decode_one(*w).to_le_bytes());
        }
        Ok(())
    })
}

/// Values as little-endian f64 bytes, in a `bytearray` that numpy can wrap writable without
/// a copy; written in place.
pub(crate) fn f64_bytes<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, values.len() * 8, |out| {
        for (c, v) in out.chunks_exact_mut(8).zip(values) {
            c.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    })
}

fn tensor(data: Vec<f64>, shape: Vec<usize>, what: &str) -> PyResult<FloatTensor> {
    if data.iter().any(|v| !v.is_finite()) {
        return Err(BadInputError::new_err(format!("{what} holds a value that is not finite")));
    }
    FloatTensor::new(shape.clone(), data)
        .ok_or_else(|| BadInputError::new_err(format!("{what}: shape {shape:?} does not fit the data")))
}

fn load_model(model: &Bound<'_, PyAny>, max_bytes: u64) -> PyResult<Model> {
    if let Ok(bytes) = model.downcast::<PyBytes>() {
        return Model::parse(bytes.as_bytes()).map_err(model_error);
    }
    let path: std::path::PathBuf = model.extract()?;
    Model::read(&path, max_bytes).map_err(model_error)
}

fn check_frac_bits(f: u32) -> PyResult<FixedPoint> {
    if !(14..=18).contains(&f) {
        return Err(BadInputError::new_err("frac_bits must be from 14 to 18"));
    }
    Ok(FixedPoint::new(f))
}

const MAX_FILE: u64 = 2048 << 20;

/// Private inference: `(output, output_shape, report)`. The model is checked by the range
/// audit on this input first (as `musket infer`), so an overflow is an error. `preprocess`
/// (2pc) has the dealer make its material first, from a plan traced from the architecture.
#[pyfunction]
#[pyo3(signature = (model, data, shape, protocol="3pc", frac_bits=16, security="semi-honest", preprocess=false))]
#[allow(clippy::too_many_arguments)]
fn infer<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    data: &[u8],
    shape: Vec<usize>,
    protocol: &str,
    frac_bits: u32,
    security: &str,
    preprocess: bool,
) -> PyResult<(Bound<'py, PyByteArray>, Vec<usize>, Bound<'py, PyDict>)> {
    let backend = secure_backend(protocol, security)?;
    if preprocess && backend != Backend::TwoPc {
        return Err(BadInputError::new_err(PREPROCESS_IS_2PC));
    }
    let fp = check_frac_bits(frac_bits)?;
    let input = tensor(f64s(data, "the input")?, shape, "the input")?;
    let model = load_model(model, MAX_FILE)?;
    let result = py.allow_threads(|| -> Result<_, PyErr> {
        // As `musket infer`: batch slices, then the range audit, then the secure run.
        let slice = BatchSlice::Auto.for_backend(backend);
        let prepared = prepare_inference(&model, &input.shape, slice).map_err(anyhow_error)?;
        let (_, findings) = audit(&prepared, &input, fp).map_err(anyhow_error)?;
        if !findings.is_empty() {
            return Err(BadInputError::new_err(format!(
                "{:#}",
                range_error(&findings, prepared.first(), fp)
            )));
        }
        let job = Inference {
            prepared: &prepared,
            public: prepared.public(),
            input: &input,
            fp,
            options: RunOptions::default(),
            progress: None,
        };
        let (outcomes, seconds, preprocessing) = if preprocess {
            // A protocol failure keeps its kind (peer failure, cheating, ...).
            run_preprocessed(&job).map_err(|e| match e.downcast::<MpcError>() {
                Ok(m) => mpc_error(m),
                Err(e) => anyhow_error(e),
            })?
        } else {
            let started = std::time::Instant::now();
            let outcomes = run_local(backend, &job, None).map_err(mpc_error)?;
            (outcomes, started.elapsed().as_secs_f64(), None)
        };
        let rounds = job_rounds(&outcomes);
        let mut bytes = vec![0u64; outcomes.len()];
        for o in &outcomes {
            bytes[o.party] = o.stats.bytes_sent;
        }
        let receiver = outcomes
            .into_iter()
            .find(|o| o.party == OWNERS.output)
            .and_then(|o| o.output)
            .ok_or_else(|| MusketError::new_err("the output receiver returned nothing"))?;
        let out = receiver.output.clone().ok_or_else(|| MusketError::new_err("no output"))?;
        Ok((out, seconds, rounds, bytes, receiver.layers, preprocessing))
    })?;
    let (out, seconds, rounds, bytes, layers, preprocessing) = result;
    let report = PyDict::new(py);
    report.set_item("protocol", backend.name())?;
    report.set_item("seconds", seconds)?;
    report.set_item("rounds", rounds)?;
    report.set_item("bytes_sent", bytes)?;
    let per_layer: Vec<(String, String, u64, u64, f64)> = layers
        .iter()
        .map(|l| (l.name.clone(), l.op_type.clone(), l.bytes_sent, l.rounds, l.seconds))
        .collect();
    report.set_item("layers", per_layer)?;
    report.set_item("frac_bits", fp.frac_bits())?;
    if let Some(p) = preprocessing {
        let d = PyDict::new(py);
        d.set_item("trace_seconds", p.trace_seconds)?;
        d.set_item("requests", p.requests)?;
        d.set_item("material_bytes", p.material_bytes)?;
        d.set_item("seconds", p.seconds)?;
        d.set_item("online_seconds", p.online_seconds)?;
        report.set_item("preprocessing", d)?;
    }
    Ok((f64_bytes(py, &out.data)?, out.shape, report))
}

/// Yao's millionaires' problem: `"alice"`, `"bob"` or `"equal"`.
#[pyfunction]
#[pyo3(signature = (alice, bob, protocol="3pc", security="semi-honest"))]
fn millionaires(
    py: Python<'_>,
    alice: i64,
    bob: i64,
    protocol: &str,
    security: &str,
) -> PyResult<&'static str> {
    let backend = secure_backend(protocol, security)?;
    check_amount("alice", alice).map_err(|e| BadInputError::new_err(e.to_string()))?;
    check_amount("bob", bob).map_err(|e| BadInputError::new_err(e.to_string()))?;
    py.allow_threads(|| {
        let outcomes = run_local(backend, &Millionaires { alice: Some(alice), bob: Some(bob) }, None)
            .map_err(mpc_error)?;
        outcomes
            .iter()
            .find_map(|o| o.output.flatten())
            .map(verdict)
            .ok_or_else(|| MusketError::new_err("no party received the result"))
    })
}

/// One epoch's statistics for Python: epoch, mean loss, seconds, rounds, bytes sent.
type EpochRow = (usize, Option<f64>, f64, u64, u64);

/// Private training: `(trained ONNX bytes, per-epoch statistics)`. Party 0 owns the model,
/// party 1 the data and labels; the range audit runs first (as `musket train`).
#[pyfunction]
#[pyo3(signature = (model, data, data_shape, labels, label_shape, loss, epochs, lr, batch_size,
                    momentum=0.0, optimizer="sgd", protocol="3pc", shuffle=None, report_loss=false, frac_bits=16,
                    security="semi-honest"))]
#[allow(clippy::too_many_arguments)]
fn train<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    data: &[u8],
    data_shape: Vec<usize>,
    labels: &[u8],
    label_shape: Vec<usize>,
    loss: &str,
    epochs: usize,
    lr: f64,
    batch_size: usize,
    momentum: f64,
    optimizer: &str,
    protocol: &str,
    shuffle: Option<u64>,
    report_loss: bool,
    frac_bits: u32,
    security: &str,
) -> PyResult<(Bound<'py, PyBytes>, Vec<EpochRow>)> {
    let backend = secure_backend(protocol, security)?;
    let fp = check_frac_bits(frac_bits)?;
    let loss: Loss = loss.parse().map_err(BadInputError::new_err)?;
    let optimizer = match optimizer {
        "sgd" => OptimizerName::Sgd,
        "adam" => OptimizerName::Adam,
        other => return Err(BadInputError::new_err(format!("unknown optimizer {other:?} (sgd or adam)"))),
    }
    .with(momentum)
    .map_err(|e| BadInputError::new_err(e.to_string()))?;
    let x = tensor(f64s(data, "the data")?, data_shape, "the data")?;
    let raw_labels = tensor(f64s(labels, "the labels")?, label_shape, "the labels")?;
    let model = load_model(model, MAX_FILE)?;
    let rows = *x.shape.first().ok_or_else(|| BadInputError::new_err("the data has no rows"))?;
    let (bytes, epochs) = py.allow_threads(|| -> PyResult<_> {
        let prepared = prepare(model, loss, rows, &x.shape[1..], batch_size).map_err(anyhow_error)?;
        let y = encode_labels(loss, &raw_labels, rows, &prepared.row_output)
            .map_err(|e| BadInputError::new_err(format!("{e:#}")))?;
        let config =
            TrainConfig { epochs, lr, optimizer, batch_size, shuffle, report_loss, model_owner: MODEL_OWNER };
        let findings = audit_training(&prepared, &x, &y, &config, fp).map_err(anyhow_error)?;
        if let Some(f) = findings.first() {
            return Err(BadInputError::new_err(format!(
                "the range audit found values outside the range the secure protocols handle: {}: {} ({} elements); \
                 lower the learning rate or scale the data down",
                f.layer, f.what, f.count
            )));
        }
        let owners = vec![OwnerRows {
            party: DATA_OWNER,
            values: Some((&x, Some(&y))),
            data_shape: x.shape.clone(),
            label_shape: Some(y.shape.clone()),
        }];
        let job = Training { plans: &prepared.plans, owners, split: Split::Rows, config, fp, progress: None };
        let outcomes = run_local(backend, &job, None).map_err(mpc_error)?;
        let owner = outcomes
            .into_iter()
            .find(|o| o.party == MODEL_OWNER)
            .and_then(|o| o.output)
            .ok_or_else(|| MusketError::new_err("the model owner returned nothing"))?;
        let weights = owner.weights.ok_or_else(|| MusketError::new_err("the model owner learned no weights"))?;
        let plan = &prepared.plans[0].1;
        let updates: Vec<(String, FloatTensor)> = plan
            .graph
            .weights
            .iter()
            .zip(&plan.trainable)
            .zip(weights)
            .filter(|((_, &t), _)| t)
            .map(|(((n, _), _), w)| (n.clone(), w))
            .collect();
        let bytes = prepared.model.with_initializers(&updates).map_err(model_error)?;
        let epochs =
            owner.epochs.iter().map(|e| (e.epoch, e.loss, e.seconds, e.rounds, e.bytes_sent)).collect::<Vec<_>>();
        Ok((bytes, epochs))
    })?;
    Ok((PyBytes::new(py, &bytes), epochs))
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    keep_freed_memory();
    m.add_function(wrap_pyfunction!(infer, m)?)?;
    m.add_function(wrap_pyfunction!(millionaires, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_class::<session::Session>()?;
    let py = m.py();
    m.add("MusketError", py.get_type::<MusketError>())?;
    m.add("BadModelError", py.get_type::<BadModelError>())?;
    m.add("BadInputError", py.get_type::<BadInputError>())?;
    m.add("PeerError", py.get_type::<PeerError>())?;
    m.add("CheatingDetected", py.get_type::<CheatingDetected>())?;
    Ok(())
}
