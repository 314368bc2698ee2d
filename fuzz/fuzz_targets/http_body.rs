//! Any bytes, as the body of `POST /api/alerts/{id}/ack|resolve|snooze`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for action in vigil_gateway::protocol::Action::ALL {
        let _ = vigil_gateway::protocol::CommandBody::command(action, "alert-1", data);
    }
});
