//! Arbitrary text as `iiswsgi.toml`: loaded, validated, and when accepted, planned as a package.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iiswsgi::package::fuzzing::manifest(data));
