//! Reading and writing .npy tensors (npyz).

use anyhow::{bail, Context, Result};
use musket_graph::FloatTensor;
use npyz::{DType, TypeChar, WriterBuilder};
use std::path::Path;

/// Largest input accepted (elements).
const MAX_ELEMENTS: u64 = 1 << 28;

/// Reads a C-order array of floats or integers as f64.
pub fn read(path: &Path) -> Result<FloatTensor> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read input {}", path.display()))?;
    parse(&bytes, &path.display().to_string())
}

/// Parses the bytes of a .npy file (`name` is used in error messages). Hostile input is
/// refused with an error: over 2^28 elements or 8 dimensions, unsupported dtypes, short data.
pub fn parse(bytes: &[u8], name: &str) -> Result<FloatTensor> {
    let path = std::path::Path::new(name);
    let npy = npyz::NpyFile::new(bytes).with_context(|| format!("{} is not a .npy file", path.display()))?;
    if npy.order() != npyz::Order::C {
        bail!("{}: Fortran-order arrays are not supported", path.display());
    }
    let shape: Vec<u64> = npy.shape().to_vec();
    let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
    if n.is_none() || shape.len() > 8 || shape.iter().any(|&d| d > MAX_ELEMENTS) {
        bail!("{}: array of shape {shape:?} is too large", path.display());
    }
    let bad = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    let data: Vec<f64> = match npy.dtype() {
        DType::Plain(ts) => match (ts.type_char(), ts.size_field()) {
            (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(bad)?.into_iter().map(f64::from).collect(),
            (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(bad)?,
            (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(bad)?.into_iter().map(|v| v as f64).collect(),
            (TypeChar::Int, 4) => npy.into_vec::<i32>().map_err(bad)?.into_iter().map(f64::from).collect(),
            (TypeChar::Uint, 1) => npy.into_vec::<u8>().map_err(bad)?.into_iter().map(f64::from).collect(),
            _ => bail!(
                "{}: dtype {ts} is not supported (use float32, float64 or an integer type)",
                path.display()
            ),
        },
        other => bail!("{}: dtype {other:?} is not supported", path.display()),
    };
    FloatTensor::new(shape.iter().map(|&d| d as usize).collect(), data)
        .with_context(|| format!("{}: data does not match its shape", path.display()))
}

/// Writes a float64 array.
pub fn write(path: &Path, t: &FloatTensor) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()?;
    w.extend(t.data.iter().copied())?;
    w.finish()?;
    Ok(())
}
