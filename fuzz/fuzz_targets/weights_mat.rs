#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iqa::fuzzing::fuzz_one("weights_mat", data));
