//! Any bytes, as the body of `POST /api/alerts/{id}/ack|resolve|snooze`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_gateway::command_body(data, false);
    let _ = vigil_gateway::command_body(data, true);
});
