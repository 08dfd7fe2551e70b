//! Any bytes arriving on a link (after TLS): the frame reader must report an error naming the
//! peer, never panic or allocate the declared length up front.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = musket_net::decode_frames(data, 1 << 16);
});
