//! Arbitrary bytes, read in arbitrary sizes, into a FastCGI `Connection` (all three configs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iiswsgi::runtime::fastcgi::fuzzing::record_decoder(data));
