#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| execnet_gateway::fuzz_handshake(data));
