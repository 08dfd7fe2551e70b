//! Any bytes given as an ONNX model: import must return a graph or an error, never panic,
//! hang or allocate beyond the declared-size caps.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = musket_onnx::import(data) {
        // Whatever the importer accepts must pass the checks a received architecture gets.
        let _ = graph.validate();
    }
});
