//! Any bytes, as a MessagePack envelope on each inbound stream: decoded or refused with a code, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_engine::Timestamp;
use vigil_streams::{Encoding, decode_practice, decode_vitals};

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_millis(1_764_234_000_000);
    let _ = decode_vitals(
        "vitals.clinic-abc.patient-123",
        data,
        Encoding::MessagePack,
        now,
    );
    let _ = decode_practice(
        "CHECKINS",
        "checkin.clinic-abc.appt-456",
        data,
        Encoding::MessagePack,
        now,
    );
    let _ = decode_practice(
        "OCCUPANCY",
        "occupancy.clinic-abc.chair-12",
        data,
        Encoding::MessagePack,
        now,
    );
});
