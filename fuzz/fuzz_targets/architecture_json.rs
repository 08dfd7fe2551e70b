//! Any bytes received as the model architecture (what party 0 sends parties 1 and 2).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = serde_json::from_slice::<musket_graph::Graph>(data) {
        let _ = graph.validate();
    }
});
