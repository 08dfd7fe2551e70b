//! Reading the files named on the command line (models, inputs): only regular files, bounded in
//! size before anything is read, so that `--model /dev/zero` or a huge file fails at once with
//! a clear error instead of filling memory.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Default largest model or input file, in MiB (`--max-file-mb`): 2 GiB is also the most a
/// protobuf (an ONNX model without external data) can hold, and 2^28 float64 values.
pub const DEFAULT_MAX_FILE_MB: u64 = 2048;

/// Opens `path` for reading after checking that it is a regular file of at most `max_bytes`;
/// returns the file and its length.
pub fn open_bounded(path: &Path, what: &str, max_bytes: u64) -> Result<(std::fs::File, u64)> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "cannot read {what} {}: not a regular file (a directory, device, pipe or socket)",
            path.display()
        );
    }
    if meta.len() > max_bytes {
        bail!(
            "{what} {} is {} MiB, over the limit of {} MiB (--max-file-mb)",
            path.display(),
            meta.len().div_ceil(1 << 20),
            max_bytes >> 20
        );
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok((file, meta.len()))
}

/// Reads a whole regular file of at most `max_bytes` (a file that grows while it is read is
/// cut at the limit and refused).
pub fn read_bounded(path: &Path, what: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let (file, len) = open_bounded(path, what, max_bytes)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!("{what} {} grew beyond the limit of {} MiB while it was read", path.display(), max_bytes >> 20);
    }
    Ok(bytes)
}

/// Reads an ONNX model file, refusing at once what cannot be one: a protobuf message starts with
/// a field tag, and every ONNX writer puts `ir_version` (field 1, a varint: byte 0x08) or
/// another ModelProto field first. An empty file or one starting with a zero byte (`/dev/zero`
/// copied to disk) is refused before it is parsed.
pub fn read_model(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let bytes = read_bounded(path, "model", max_bytes)?;
    let plausible = bytes.first().is_some_and(|&b| {
        let (field, wire) = (b >> 3, b & 7);
        field != 0 && matches!(wire, 0 | 2)
    });
    if !plausible {
        bail!("not a valid ONNX model: {} does not start with a protobuf field", path.display());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_large_files_are_refused_quickly() {
        let start = std::time::Instant::now();
        let err = read_bounded(Path::new("/dev/zero"), "input", 1 << 30).unwrap_err();
        assert!(format!("{err:#}").contains("not a regular file"), "{err:#}");
        let err = read_bounded(Path::new("/"), "input", 1 << 30).unwrap_err();
        assert!(format!("{err:#}").contains("not a regular file"), "{err:#}");
        let dir = std::env::temp_dir().join(format!("musket-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.onnx");
        std::fs::write(&big, vec![8u8; 3 << 20]).unwrap();
        let err = read_model(&big, 2 << 20).unwrap_err();
        assert!(format!("{err:#}").contains("over the limit of 2 MiB"), "{err:#}");
        let zeros = dir.join("zeros.onnx");
        std::fs::write(&zeros, vec![0u8; 1000]).unwrap();
        let err = read_model(&zeros, 1 << 20).unwrap_err();
        assert!(format!("{err:#}").contains("not a valid ONNX model"), "{err:#}");
        std::fs::write(&zeros, b"").unwrap();
        assert!(read_model(&zeros, 1 << 20).is_err());
        assert!(start.elapsed().as_secs_f64() < 1.0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
