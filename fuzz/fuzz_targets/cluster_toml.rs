//! Any text given as the cluster file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = musket_cli::config::parse_cluster(text);
    }
});
