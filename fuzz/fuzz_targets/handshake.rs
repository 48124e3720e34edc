#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| execnet_server::fuzz_handshake(data));
