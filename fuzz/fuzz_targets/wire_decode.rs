#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| execnet_wire::fuzz_decode(data));
