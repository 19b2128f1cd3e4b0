//! The clients' decoder for server frames.
#![no_main]
use handoff_protocol::ws::ServerFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = serde_json::from_slice::<ServerFrame>(data) {
        let again = serde_json::to_vec(&f).expect("encodes");
        assert_eq!(serde_json::from_slice::<ServerFrame>(&again).expect("decodes"), f);
    }
});
