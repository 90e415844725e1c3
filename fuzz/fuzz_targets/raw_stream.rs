#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iqa::fuzzing::fuzz_one("raw_stream", data));
