//! `str` → `&str` without a copy under the stable ABI.
//!
//! PyO3's `PyString::to_str` needs `PyUnicode_AsUTF8AndSize`, which joined the limited API in
//! 3.10; built for 3.9 (`abi3-py39`), PyO3 offers only `to_cow`, which encodes into a new
//! `bytes` object per call. Every CPython since 3.3 exports `PyUnicode_AsUTF8AndSize` from its
//! versioned library all the same (on Windows from `python3XY.dll`, and through `python3.dll`
//! from 3.10 on), so it is looked up once at run time and used when present: the hot path
//! (`start_response`'s status and header strings) stays a borrow of CPython's cached UTF-8, as
//! before the stable-ABI build. Without it, [`utf8`] falls back to `to_cow`.

use std::borrow::Cow;
use std::ffi::c_char;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

type AsUtf8AndSize =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::Py_ssize_t) -> *const c_char;

/// Found once; no Python value is held, so a plain `OnceLock` cannot deadlock with the GIL.
static AS_UTF8: OnceLock<Option<AsUtf8AndSize>> = OnceLock::new();

fn as_utf8_and_size() -> Option<AsUtf8AndSize> {
    *AS_UTF8.get_or_init(|| {
        let address = lookup();
        // SAFETY: the symbol CPython exports under this name has this signature in every
        // version since 3.3.
        (!address.is_null()).then(|| unsafe {
            std::mem::transmute::<*mut std::ffi::c_void, AsUtf8AndSize>(address)
        })
    })
}

#[cfg(unix)]
fn lookup() -> *mut std::ffi::c_void {
    // SAFETY: dlsym on the global scope with a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyUnicode_AsUTF8AndSize".as_ptr()) }
}

#[cfg(windows)]
fn lookup() -> *mut std::ffi::c_void {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let Some((major, minor)) = super::libpython::loaded().major_minor() else {
        return std::ptr::null_mut();
    };
    let name: Vec<u16> = format!("python{major}{minor}.dll\0")
        .encode_utf16()
        .collect();
    // SAFETY: NUL-terminated names; the module stays loaded for the process's life.
    unsafe {
        let module = GetModuleHandleW(name.as_ptr());
        if module.is_null() {
            return std::ptr::null_mut();
        }
        GetProcAddress(module, c"PyUnicode_AsUTF8AndSize".as_ptr().cast())
            .map_or(std::ptr::null_mut(), |f| f as *mut std::ffi::c_void)
    }
}

#[cfg(not(any(unix, windows)))]
fn lookup() -> *mut std::ffi::c_void {
    std::ptr::null_mut()
}

/// The UTF-8 text of `s`: borrowed from CPython's cache when the fast path exists, else
/// encoded. Raises as `str.encode("utf-8")` does (lone surrogates).
pub(super) fn utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    let Some(as_utf8) = as_utf8_and_size() else {
        return s.to_cow();
    };
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str and we are attached; the returned buffer belongs to `s` and
    // lives as long as it does, which the borrow of `s` ties `'a` to.
    let ptr = unsafe { as_utf8(s.as_ptr(), &mut size) };
    if ptr.is_null() {
        return Err(PyErr::fetch(s.py()));
    }
    let len = usize::try_from(size).unwrap_or(0);
    // SAFETY: CPython's UTF-8 cache is `size` bytes of valid UTF-8 (its encoder is strict).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    Ok(Cow::Borrowed(unsafe {
        std::str::from_utf8_unchecked(bytes)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wsgi::testing;

    #[test]
    fn the_fast_path_is_found_and_borrows_what_to_cow_would_encode() {
        testing::python();
        assert!(
            as_utf8_and_size().is_some(),
            "every CPython >= 3.3 exports it"
        );
        Python::attach(|py| {
            for text in ["200 OK", "", "café", "€ 𝄞"] {
                let s = PyString::new(py, text);
                let got = utf8(&s).expect("utf8");
                assert!(matches!(got, Cow::Borrowed(_)), "{text}");
                assert_eq!(got, text);
            }
        });
    }

    #[test]
    fn a_lone_surrogate_raises_like_encode() {
        testing::python();
        Python::attach(|py| {
            let s = py
                .eval(c"'a\\udc80'", None, None)
                .expect("eval")
                .cast_into::<PyString>()
                .expect("str");
            let err = utf8(&s).expect_err("surrogate");
            assert!(
                err.is_instance_of::<pyo3::exceptions::PyUnicodeEncodeError>(py),
                "{err}"
            );
        });
    }
}
