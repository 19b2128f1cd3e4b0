//! Structure-aware: every frame a client can build encodes and decodes to itself.
#![no_main]
use handoff_protocol::ws::{ClientFrame, parse_client_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: ClientFrame| {
    let text = serde_json::to_string(&frame).expect("encodes");
    assert_eq!(parse_client_frame(&text).expect("decodes"), frame);
});
