//! Arbitrary bytes, split arbitrarily, into the PARAMS name-value pair parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iiswsgi::runtime::fastcgi::fuzzing::params(data));
