#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| execnet_xspec::fuzz_parse(data));
