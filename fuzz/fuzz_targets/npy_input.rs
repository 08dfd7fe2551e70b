//! Any bytes given as the data owner's .npy input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = musket_cli::npy::parse(data, "fuzz.npy");
});
