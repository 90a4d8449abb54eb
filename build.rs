//! Build facts the binary needs at run time.
//!
//! With the `python` feature this pins the libpython the binary loads: it bakes an rpath to
//! the interpreter's LIBDIR (pyo3 links libpython by soname, and without an rpath a binary
//! built against one CPython 3.11 silently loads another's `libpython3.11.so` through
//! `ld.so.cache`), and it exports the Python version the binary was built for, which
//! `run --venv` compares with a venv's `pyvenv.cfg`. Set `IISWSGI_NO_RPATH=1` for release
//! builds that rely on the system's or an `$ORIGIN`-relative libpython.
//!
//! Windows builds (cross-compiled from Linux in CI, `.ci/windows`) get no rpath: PyO3 ≥ 0.29
//! imports `python3XY.dll` through `raw-dylib`, so no import library is needed, and the version
//! comes from `PYO3_CROSS_PYTHON_VERSION` (or `PYO3_PYTHON` on a Windows host).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IISWSGI_NO_RPATH");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    #[cfg(feature = "python")]
    let embeds = format!("embeds CPython {}", python());
    #[cfg(not(feature = "python"))]
    let embeds = "built without Python".to_string();
    println!("cargo:rustc-env=IISWSGI_LONG_VERSION={version} ({embeds})");
}

#[cfg(feature = "python")]
fn python() -> String {
    let config = pyo3_build_config::get();
    // The rpath is for Unix targets only, decided by the target (a cross build from Linux to
    // Windows must not carry the build machine's LIBDIR): Windows finds python3XY.dll through
    // the DLL search path, which the installer sets up (wsgi-embedding.md §1.7).
    let unix_target = std::env::var("CARGO_CFG_TARGET_FAMILY")
        .is_ok_and(|families| families.split(',').any(|f| f == "unix"));
    if unix_target && std::env::var_os("IISWSGI_NO_RPATH").is_none() {
        pyo3_build_config::add_libpython_rpath_link_args();
    }
    let version = config.version().to_string();
    println!("cargo:rustc-env=IISWSGI_PY_VERSION={version}");
    if let Some(exe) = config.executable() {
        println!("cargo:rustc-env=IISWSGI_PY_EXECUTABLE={exe}");
    }
    version
}
