//! Any bytes, as one line of a recorded NDJSON replay (`vigil replay --events`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_streams::vitals::decode_recorded(data);
});
