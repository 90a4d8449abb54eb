//! Arbitrary bytes as a package zip, through `iiswsgi check`'s zip path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iiswsgi::package::fuzzing::zip(data));
