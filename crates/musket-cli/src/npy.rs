//! Reading and writing .npy tensors (npyz).

use anyhow::{bail, Context, Result};
use musket_graph::FloatTensor;
use npyz::{DType, TypeChar, WriterBuilder};
use std::io::Read;
use std::path::Path;

/// Largest input accepted (elements).
const MAX_ELEMENTS: u64 = 1 << 28;

/// The dtypes Musket reads, as named in errors.
const SUPPORTED: &str = "bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, float32 \
                         or float64";

/// Reads a C-order array of floats, integers or booleans as f64, from a regular file of at most
/// `max_bytes`. The header is read and checked first: the file must be exactly as long as the
/// header and the data it declares, so a lying header or a huge file fails before the data is
/// read.
pub fn read(path: &Path, max_bytes: u64) -> Result<FloatTensor> {
    let (mut file, len) = crate::files::open_bounded(path, "input", max_bytes)?;
    let name = path.display().to_string();
    let mut prefix = Vec::new();
    (&mut file)
        .take((12 + MAX_HEADER) as u64)
        .read_to_end(&mut prefix)
        .with_context(|| format!("cannot read input {name}"))?;
    let header_len =
        check_header(&prefix).with_context(|| format!("{name} is not a .npy file Musket reads"))?;
    let header =
        npyz::NpyHeader::from_reader(&prefix[..]).with_context(|| format!("{name} is not a .npy file"))?;
    let expected = header_len as u64 + data_bytes(&header, &name)?;
    if len != expected {
        bail!(
            "{name}: the file has {len} bytes, its header declares {expected} (truncated or not a .npy file)"
        );
    }
    let mut bytes = prefix;
    bytes.reserve(len as usize - bytes.len().min(len as usize));
    file.take(len + 1 - bytes.len().min(len as usize) as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read input {name}"))?;
    parse(&bytes, &name)
}

/// Bytes of data the header declares, after checking the shape and the dtype.
fn data_bytes(header: &npyz::NpyHeader, name: &str) -> Result<u64> {
    let shape: Vec<u64> = header.shape().to_vec();
    let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
    let Some(n) = n.filter(|_| shape.len() <= 8 && shape.iter().all(|&d| d <= MAX_ELEMENTS)) else {
        bail!("{name}: array of shape {shape:?} is too large");
    };
    let size = match header.dtype() {
        DType::Plain(ts) if supported(&ts) => ts.size_field(),
        DType::Plain(ts) => bail!("{name}: dtype {ts} is not supported (Musket reads {SUPPORTED})"),
        other => bail!("{name}: dtype {other:?} is not supported (Musket reads {SUPPORTED})"),
    };
    Ok(n * size)
}

fn supported(ts: &npyz::TypeStr) -> bool {
    matches!(
        (ts.type_char(), ts.size_field()),
        (TypeChar::Bool, 1)
            | (TypeChar::Int, 1 | 2 | 4 | 8)
            | (TypeChar::Uint, 1 | 2 | 4 | 8)
            | (TypeChar::Float, 2 | 4 | 8)
    )
}

/// Parses the bytes of a .npy file (`name` is used in error messages). Hostile input is
/// refused with an error: over 2^28 elements or 8 dimensions, unsupported dtypes, short data.
pub fn parse(bytes: &[u8], name: &str) -> Result<FloatTensor> {
    let path = std::path::Path::new(name);
    check_header(bytes).with_context(|| format!("{} is not a .npy file Musket reads", path.display()))?;
    let npy = npyz::NpyFile::new(bytes).with_context(|| format!("{} is not a .npy file", path.display()))?;
    if npy.order() != npyz::Order::C {
        bail!("{}: Fortran-order arrays are not supported", path.display());
    }
    data_bytes(npy.header(), name)?;
    let shape: Vec<u64> = npy.shape().to_vec();
    let bad = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    let DType::Plain(ts) = npy.dtype() else { unreachable!("checked by data_bytes") };
    let data: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 2) => {
            npy.into_vec::<npyz::half::f16>().map_err(bad)?.into_iter().map(|v| v.to_f64()).collect()
        }
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(bad)?,
        (TypeChar::Int, 1) => npy.into_vec::<i8>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 2) => npy.into_vec::<i16>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().map_err(bad)?.into_iter().map(f64::from).collect(),
        // Beyond 2^53 the f64 is rounded, but such values are far outside the fixed-point
        // range and are refused when the input is encoded.
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(bad)?.into_iter().map(|v| v as f64).collect(),
        (TypeChar::Uint, 1) => npy.into_vec::<u8>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 2) => npy.into_vec::<u16>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 4) => npy.into_vec::<u32>().map_err(bad)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 8) => npy.into_vec::<u64>().map_err(bad)?.into_iter().map(|v| v as f64).collect(),
        (TypeChar::Bool, 1) => {
            npy.into_vec::<bool>().map_err(bad)?.into_iter().map(|b| f64::from(u8::from(b))).collect()
        }
        _ => unreachable!("checked by data_bytes"),
    };
    FloatTensor::new(shape.iter().map(|&d| d as usize).collect(), data)
        .with_context(|| format!("{}: data does not match its shape", path.display()))
}

/// Largest .npy header accepted, in bytes (numpy writes ~128).
const MAX_HEADER: usize = 1 << 16;

/// Checks the header before npyz parses it: its Python-literal parser backtracks exponentially
/// on deeply nested brackets (found by fuzzing: a 300-byte file took over 10 s), so only the
/// shapes numpy writes for plain arrays get through: one dict holding one shape tuple, no
/// lists (structured dtypes are not supported anyway).
/// Returns the length of the magic, version, length field and header together.
fn check_header(bytes: &[u8]) -> Result<usize> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("missing the .npy magic bytes");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
        v => bail!("unsupported .npy version {v}"),
    };
    if len > MAX_HEADER {
        bail!("header of {len} bytes is too long");
    }
    let header = bytes.get(start..start + len).context("truncated header")?;
    let mut depth = 0usize;
    for &c in header {
        match c {
            b'[' => bail!("structured or nested dtypes are not supported"),
            b'{' | b'(' => {
                depth += 1;
                if depth > 2 {
                    bail!("header nests too deeply");
                }
            }
            b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(start + len)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input the fuzzer ever found troublesome parses (or fails) quickly.
    #[test]
    fn fuzz_regressions_parse_quickly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions/npy");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let t = std::time::Instant::now();
            let res = parse(&bytes, "regression.npy");
            assert!(t.elapsed().as_secs_f64() < 1.0, "{} took {:?}", path.display(), t.elapsed());
            assert!(res.is_err(), "{} should be refused", path.display());
        }
    }

    #[test]
    fn numpy_headers_still_parse() {
        for f in ["digits-cnn-sample.npy", "ops-input.npy", "digits-test-y.npy"] {
            let path = format!("{}/../../examples/{f}", env!("CARGO_MANIFEST_DIR"));
            parse(&std::fs::read(&path).unwrap(), f).unwrap();
        }
        let err = parse(b"\x93NUMPY\x01\x00\x50\x00{'a':", "short.npy").unwrap_err();
        assert!(format!("{err:#}").contains("truncated header"), "{err:#}");
    }
}
