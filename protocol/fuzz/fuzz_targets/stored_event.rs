//! The stored-event codec (events are stored as the JSON of `Event`).
#![no_main]
use handoff_protocol::ws::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = serde_json::from_slice::<Event>(data) {
        let again = serde_json::to_vec(&e).expect("encodes");
        assert_eq!(serde_json::from_slice::<Event>(&again).expect("decodes"), e);
    }
});
