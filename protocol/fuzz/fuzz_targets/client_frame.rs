//! The server's decoder for client WebSocket frames: any bytes, no panic;
//! whatever decodes re-encodes to the same frame.
#![no_main]
use handoff_protocol::ws::parse_client_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = parse_client_frame(text) {
        let again = serde_json::to_string(&frame).expect("a decoded frame encodes");
        assert_eq!(parse_client_frame(&again).expect("and decodes again"), frame);
    }
});
