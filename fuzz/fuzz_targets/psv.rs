//! Any text, as a PhysioNet `.psv` stay (`vigil replay --psv`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = vigil_replay::psv::parse(text);
});
