//! TensorProto to f64 tensors, bounded in size before anything is allocated.

use crate::ImportError;
use musket_graph::FloatTensor;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::TensorProto;

/// The largest tensor accepted (2^28 elements, 2 GiB as f64): a model declaring more is refused
/// before allocation.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

fn invalid(name: &str, msg: impl Into<String>) -> ImportError {
    ImportError::Invalid { node: name.to_string(), op: "tensor".into(), msg: msg.into() }
}

/// Converts a tensor to f64 values (float, double, and integer types are accepted).
pub(crate) fn to_float(t: &TensorProto) -> Result<FloatTensor, ImportError> {
    let name = &t.name;
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        if d < 0 {
            return Err(invalid(name, format!("negative dimension {d}")));
        }
        n = n.checked_mul(d as usize).filter(|&n| n <= MAX_TENSOR_ELEMENTS).ok_or_else(|| {
            invalid(name, format!("declares more than {MAX_TENSOR_ELEMENTS} elements (dims {:?})", t.dims))
        })?;
        shape.push(d as usize);
    }
    if t.data_location.value() == 1 {
        return Err(invalid(name, "external data files are not supported"));
    }
    let dt = t.data_type;
    let raw = &t.raw_data;
    let data: Vec<f64> = if !raw.is_empty() {
        let width =
            element_width(dt).ok_or_else(|| invalid(name, format!("data type {dt} is not supported")))?;
        if raw.len() != n * width {
            return Err(invalid(
                name,
                format!("raw data has {} bytes, {n} elements need {}", raw.len(), n * width),
            ));
        }
        match dt {
            x if x == DataType::FLOAT as i32 => {
                raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64).collect()
            }
            x if x == DataType::DOUBLE as i32 => {
                raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8"))).collect()
            }
            x if x == DataType::INT32 as i32 => {
                raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4")) as f64).collect()
            }
            x if x == DataType::INT64 as i32 => {
                raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8")) as f64).collect()
            }
            x if x == DataType::INT8 as i32 => raw.iter().map(|&b| b as i8 as f64).collect(),
            x if x == DataType::INT16 as i32 => {
                raw.chunks_exact(2).map(|c| f64::from(i16::from_le_bytes([c[0], c[1]]))).collect()
            }
            x if x == DataType::UINT16 as i32 => {
                raw.chunks_exact(2).map(|c| f64::from(u16::from_le_bytes([c[0], c[1]]))).collect()
            }
            x if x == DataType::UINT32 as i32 => {
                raw.chunks_exact(4).map(|c| f64::from(u32::from_le_bytes(c.try_into().expect("4")))).collect()
            }
            x if x == DataType::UINT64 as i32 => {
                raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8")) as f64).collect()
            }
            x if x == DataType::FLOAT16 as i32 => {
                raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect()
            }
            x if x == DataType::BFLOAT16 as i32 => {
                raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect()
            }
            _ => raw.iter().map(|&b| b as f64).collect(),
        }
    } else if ![
        DataType::FLOAT,
        DataType::DOUBLE,
        DataType::INT64,
        DataType::INT32,
        DataType::INT8,
        DataType::UINT8,
        DataType::BOOL,
        DataType::INT16,
        DataType::UINT16,
        DataType::UINT32,
        DataType::UINT64,
    ]
    .iter()
    .any(|d| *d as i32 == dt)
    {
        return Err(invalid(name, format!("data type {dt} is not supported")));
    } else if !t.float_data.is_empty() {
        t.float_data.iter().map(|&v| v as f64).collect()
    } else if !t.double_data.is_empty() {
        t.double_data.clone()
    } else if !t.int64_data.is_empty() {
        t.int64_data.iter().map(|&v| v as f64).collect()
    } else if !t.uint64_data.is_empty() {
        t.uint64_data.iter().map(|&v| v as f64).collect()
    } else if !t.int32_data.is_empty() {
        t.int32_data.iter().map(|&v| v as f64).collect()
    } else {
        Vec::new()
    };
    FloatTensor::new(shape, data).ok_or_else(|| invalid(name, format!("{n} elements expected")))
}

/// Bytes per element of an ONNX data type Musket reads, `None` for the others.
pub(crate) fn element_width(dt: i32) -> Option<usize> {
    Some(match dt {
        x if x == DataType::FLOAT as i32 || x == DataType::INT32 as i32 => 4,
        x if x == DataType::DOUBLE as i32 || x == DataType::INT64 as i32 => 8,
        x if x == DataType::FLOAT16 as i32
            || x == DataType::BFLOAT16 as i32
            || x == DataType::INT16 as i32
            || x == DataType::UINT16 as i32 =>
        {
            2
        }
        x if x == DataType::UINT32 as i32 => 4,
        x if x == DataType::UINT64 as i32 => 8,
        x if x == DataType::BOOL as i32 || x == DataType::UINT8 as i32 || x == DataType::INT8 as i32 => 1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_tensors_decode() {
        let mut t = TensorProto::new();
        t.dims = vec![3];
        t.data_type = DataType::FLOAT16 as i32;
        t.raw_data = [0x3c00u16, 0xc100, 0x7bff].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(to_float(&t).unwrap().data, vec![1.0, -2.5, 65504.0]);
        t.data_type = DataType::BFLOAT16 as i32;
        t.raw_data = [0x3f80u16, 0xc020, 0x0000].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(to_float(&t).unwrap().data, vec![1.0, -2.5, 0.0]);
    }
}
