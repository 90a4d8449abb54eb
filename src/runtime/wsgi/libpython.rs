//! Which CPython library this process loaded, which one the chosen environment needs, and the
//! one re-execution that swaps them on Linux (issue 15).
//!
//! The binary links only CPython's stable ABI, so the library the loader picks at exec time
//! decides the Python: `python3.dll` (a forwarder to `python3XY.dll` in the same folder) on
//! Windows, the name recorded at build time (`libpython3.so`, see `build.rs`) on Linux. The
//! loader takes the first one on its search path, before any Rust code runs; nothing can
//! unload it afterwards. So:
//!
//! - **Linux**: [`prepare_process`], called by `run` before the server starts (one thread),
//!   compares the loaded library with the venv's base library ([`base_library`]); when they
//!   differ it re-executes the binary once (same pid, same fds, so fd 0 of IIS-like
//!   spawners, nginx, lighttpd and the supervisor survive) with `LD_LIBRARY_PATH` naming a
//!   folder whose `libpython3.so` *is* the venv's library: the base's own `LIBDIR` when its
//!   `libpython3.so` leads there (pyenv, python.org builds), else a private temporary folder
//!   (mode 0700) holding one symlink, `libpython3.so` → the venv's `libpython3.X.so.1.0`
//!   (Debian's Python ships no `libpython3.so`). The loader does not compare a library's
//!   file name with its soname, and the binary uses only stable-ABI symbols, which every
//!   CPython ≥ 3.9 defines. The binary's `DT_RUNPATH` yields to `LD_LIBRARY_PATH`. The new
//!   image restores `LD_LIBRARY_PATH` before Python starts, so the app's subprocesses see the
//!   environment the process was started with, and removes the temporary folder. An
//!   environment marker stops a second re-execution.
//! - **Windows**: no re-execution (a second process under IIS's job object and handle
//!   inheritance is unverified, and the IIS set-up writes the right `PATH` anyway): a
//!   `python3.dll` from another folder than the venv's base is refused with the fix.
//!
//! [`check`] is what `start` runs in every case: the loaded Python must be the venv's (same
//! library file on Linux, same folder on Windows, same `major.minor` everywhere).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;

use super::venv::Environment;

/// What the process loaded, found before Python starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// `Py_GetVersion()`'s first word: `3.12.1`.
    pub version: String,
    /// The library the symbols come from: `libpython3.X.so.1.0` (canonical) on Linux,
    /// `python3XY.dll` on Windows.
    pub library: Option<PathBuf>,
    /// Windows: the `python3.dll` the binary imports (in the same folder, normally).
    pub forwarder: Option<PathBuf>,
    /// The name the binary records for the loader: `libpython3.so`, or `python3.dll`.
    pub needed: &'static str,
    /// This process re-executed itself to load it.
    pub reexecuted: bool,
}

impl Loaded {
    /// `(major, minor)` of [`Loaded::version`].
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        crate::venv::major_minor(&self.version)
    }

    /// One line for the start-up log and `--version`:
    /// `CPython 3.12.1 from /…/libpython3.12.so.1.0 (loaded as libpython3.so)`.
    pub fn describe(&self) -> String {
        let mut text = format!("CPython {}", self.version);
        if let Some(lib) = &self.library {
            text.push_str(&format!(" from {}", lib.display()));
        }
        match &self.forwarder {
            Some(dll) => text.push_str(&format!(" (through {})", dll.display())),
            None => text.push_str(&format!(" (loaded as {})", self.needed)),
        }
        if self.reexecuted {
            text.push_str("; re-executed once to load the venv's Python");
        }
        text
    }
}

/// The name recorded at link time (`build.rs`).
const NEEDED: &str = env!("IISWSGI_LIBPYTHON_NEEDED");

/// Set in the environment of the re-executed image: the library it must have loaded.
const MARK: &str = "IISWSGI_LIBPYTHON";
/// The temporary folder to remove (empty: none was made).
const MARK_TMP: &str = "IISWSGI_LIBPYTHON_TMP";
/// `LD_LIBRARY_PATH` as the process was started with it; absent: it was unset.
const MARK_ORIG: &str = "IISWSGI_ORIG_LD_LIBRARY_PATH";

static LOADED: OnceLock<Loaded> = OnceLock::new();

/// Set by [`settle`] in a re-executed image (which may have identified the library earlier,
/// for `--version`).
static REEXECUTED: AtomicBool = AtomicBool::new(false);

/// What this process loaded (found once; Python need not be started).
pub fn loaded() -> Loaded {
    let mut loaded = LOADED.get_or_init(identify).clone();
    loaded.reexecuted = REEXECUTED.load(Ordering::Relaxed);
    loaded
}

fn identify() -> Loaded {
    // SAFETY: Py_GetVersion may be called before initialisation; it returns a static string.
    let version = unsafe { std::ffi::CStr::from_ptr(ffi::Py_GetVersion()) }
        .to_string_lossy()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let (library, forwarder) = platform::paths(&version);
    Loaded {
        version,
        library,
        forwarder,
        needed: NEEDED,
        reexecuted: false,
    }
}

/// The `python:` line of `--version`: the CPython `run` would use with `venv` (`None`: the one
/// this process loaded, the build's). When the venv needs another library than the one
/// loaded, names that library (`run` re-executes for it on Linux).
pub fn version_line(venv: Option<&Path>) -> String {
    let loaded = loaded();
    let env = super::environment(venv);
    let Ok(env) = env else {
        return format!("python: {} (the venv cannot be used)", loaded.describe());
    };
    if let Environment::Venv { cfg, .. } = &env
        && let Some(wanted) = base_library(&env)
        && check(&env, &loaded).is_err()
    {
        return format!(
            "python: CPython {} from {} (the venv's; `run` loads it, this process has {})",
            cfg.version.as_deref().unwrap_or("?"),
            wanted.display(),
            loaded.describe()
        );
    }
    format!("python: {}", loaded.describe())
}

/// Why the loaded Python cannot serve the chosen environment.
#[derive(Debug, thiserror::Error)]
pub enum LibpythonError {
    /// The loaded CPython is another minor than the venv's.
    #[error(
        "the venv at {} was made by Python {wanted}, but this process loaded {}; {hint}",
        .venv.display(), .loaded.describe()
    )]
    Version {
        /// The venv.
        venv: PathBuf,
        /// `major.minor` of the venv.
        wanted: String,
        /// What was loaded.
        loaded: Box<Loaded>,
        /// How to fix it.
        hint: &'static str,
    },
    /// The loaded library is another file than the venv's base library.
    #[error(
        "the venv at {} needs {}, but this process loaded {}; {hint}",
        .venv.display(), .wanted.display(), .loaded.describe()
    )]
    Library {
        /// The venv.
        venv: PathBuf,
        /// The library (Linux) or folder (Windows) it needs.
        wanted: PathBuf,
        /// What was loaded.
        loaded: Box<Loaded>,
        /// How to fix it.
        hint: &'static str,
    },
}

#[cfg(windows)]
const HINT: &str = "put the folder of the venv's Python first on PATH (under IIS, `iiswsgi iis \
                    enable <app folder>` writes the FastCGI application's PATH; `iiswsgi \
                    doctor` shows which python3.dll the app pool finds)";
#[cfg(not(windows))]
const HINT: &str = "iiswsgi re-executes itself with the venv's libpython on LD_LIBRARY_PATH; \
                    that failed or was not possible (is the library readable, is the temporary \
                    folder writable?)";

/// The venv's base library (Linux: the file; Windows: the folder holding `python3.dll`), when
/// the environment names one. `None` for the base environment and when none is found (then
/// only the version is compared).
pub fn base_library(env: &Environment) -> Option<PathBuf> {
    let (prefix, version) = match env {
        Environment::Base { .. } => return None,
        Environment::Venv { cfg, .. } => {
            let home = PathBuf::from(cfg.home.as_deref()?);
            let version = cfg.major_minor()?;
            if cfg!(windows) {
                return Some(home);
            }
            (home.parent()?.to_path_buf(), version)
        }
        Environment::Install { dir, .. } => {
            if cfg!(windows) {
                return Some(dir.clone());
            }
            (dir.clone(), platform::install_version(dir)?)
        }
    };
    platform::library_in(&prefix, version)
}

/// Compares what was loaded with what `env` needs (see the module docs).
pub fn check(env: &Environment, loaded: &Loaded) -> Result<(), LibpythonError> {
    let venv = match env {
        Environment::Base { .. } => return Ok(()),
        Environment::Venv { dir, .. } | Environment::Install { dir, .. } => dir.clone(),
    };
    if let (Environment::Venv { cfg, .. }, Some(have)) = (env, loaded.major_minor())
        && let Some(want) = cfg.major_minor()
        && want != have
    {
        return Err(LibpythonError::Version {
            venv,
            wanted: format!("{}.{}", want.0, want.1),
            loaded: Box::new(loaded.clone()),
            hint: HINT,
        });
    }
    let Some(wanted) = base_library(env) else {
        return Ok(());
    };
    let have = if cfg!(windows) {
        loaded
            .forwarder
            .as_deref()
            .or(loaded.library.as_deref())
            .and_then(Path::parent)
    } else {
        loaded.library.as_deref()
    };
    if have.is_some_and(|have| same_path(have, &wanted)) {
        return Ok(());
    }
    Err(LibpythonError::Library {
        venv,
        wanted,
        loaded: Box::new(loaded.clone()),
        hint: HINT,
    })
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (a, b) = (canon(a), canon(b));
    if cfg!(windows) {
        a.to_string_lossy().to_lowercase() == b.to_string_lossy().to_lowercase()
    } else {
        a == b
    }
}

/// Before the server starts, on the only thread: in a re-executed image, restores the
/// environment and records what was loaded; otherwise (Linux) re-executes the binary once when
/// the loaded libpython is not the one `env` needs. Returns normally when nothing is to be done
/// or the re-execution is impossible; [`check`] then reports the mismatch from `start`.
///
/// # Safety
/// Changes the process environment: no other thread may exist.
pub unsafe fn prepare_process(env: Option<&Environment>) {
    if let Some(wanted) = std::env::var_os(MARK) {
        // SAFETY: forwarded contract.
        unsafe { settle(PathBuf::from(wanted)) };
        return;
    }
    #[cfg(target_os = "linux")]
    if let Some(env) = env {
        // SAFETY: forwarded contract.
        unsafe { platform::reexec(env) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = env;
}

/// In the re-executed image: identify the library while the temporary symlink still exists,
/// then put the environment back as it was and remove the folder.
///
/// # Safety
/// As [`prepare_process`].
unsafe fn settle(_wanted: PathBuf) {
    // Identified while the temporary symlink (if any) still exists.
    let _ = LOADED.get_or_init(identify);
    REEXECUTED.store(true, Ordering::Relaxed);
    let tmp = std::env::var_os(MARK_TMP).filter(|t| !t.is_empty());
    // SAFETY: forwarded contract (one thread).
    unsafe {
        match std::env::var_os(MARK_ORIG) {
            Some(orig) if !orig.is_empty() => std::env::set_var("LD_LIBRARY_PATH", orig),
            _ => std::env::remove_var("LD_LIBRARY_PATH"),
        }
        std::env::remove_var(MARK);
        std::env::remove_var(MARK_TMP);
        std::env::remove_var(MARK_ORIG);
    }
    if let Some(tmp) = tmp {
        let _ = std::fs::remove_dir_all(tmp);
    }
}

#[cfg(unix)]
mod platform {
    use std::path::{Path, PathBuf};

    /// The canonical path of the object that defines `Py_GetVersion`.
    pub(super) fn paths(_version: &str) -> (Option<PathBuf>, Option<PathBuf>) {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: dladdr only reads the loader's tables; the address is a function of the
        // loaded libpython.
        let found = unsafe {
            libc::dladdr(
                pyo3::ffi::Py_GetVersion as *const libc::c_void,
                info.as_mut_ptr(),
            )
        };
        if found == 0 {
            return (None, None);
        }
        // SAFETY: dladdr filled `info`; dli_fname is a NUL-terminated path or NULL.
        let info = unsafe { info.assume_init() };
        if info.dli_fname.is_null() {
            return (None, None);
        }
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: see above.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
        (Some(std::fs::canonicalize(&path).unwrap_or(path)), None)
    }

    /// The `MULTIARCH` folder Debian puts libpython in.
    const MULTIARCH: &str = if cfg!(target_arch = "x86_64") {
        "x86_64-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else {
        ""
    };

    /// `libpython3.X.so.1.0` of the installation at `prefix`, canonical.
    pub(super) fn library_in(prefix: &Path, (major, minor): (u32, u32)) -> Option<PathBuf> {
        let name = format!("libpython{major}.{minor}.so.1.0");
        let mut dirs = vec![prefix.join("lib")];
        if !MULTIARCH.is_empty() {
            dirs.push(prefix.join("lib").join(MULTIARCH));
        }
        dirs.push(prefix.join("lib64"));
        dirs.iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::canonicalize(p).ok())
    }

    /// The version of a full installation without `pyvenv.cfg`: the newest
    /// `lib/python3.X/os.py` in it.
    pub(super) fn install_version(dir: &Path) -> Option<(u32, u32)> {
        std::fs::read_dir(dir.join("lib"))
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let v = crate::venv::major_minor(name.strip_prefix("python")?)?;
                e.path().join("os.py").is_file().then_some(v)
            })
            .max()
    }

    /// Re-executes this binary with the venv's libpython first on the loader's path, when the
    /// loaded one is another file. Returns only when nothing is to be done or exec failed.
    ///
    /// # Safety
    /// Changes the process environment: no other thread may exist.
    #[cfg(target_os = "linux")]
    pub(super) unsafe fn reexec(env: &super::Environment) {
        use std::os::unix::process::CommandExt;
        let Some(wanted) = super::base_library(env) else {
            return;
        };
        let loaded = super::loaded();
        if loaded
            .library
            .as_deref()
            .is_some_and(|have| super::same_path(have, &wanted))
        {
            return;
        }
        let Some(dir) = wanted.parent() else { return };
        // The base's own folder works when its `NEEDED` name leads to the wanted file
        // (pyenv/python.org: libpython3.so → libpython3.X.so.1.0 by the loader's search).
        let own = dir.join(super::NEEDED);
        let stable_ok = super::NEEDED == "libpython3.so"
            && own.is_file()
            && dir.join(wanted.file_name().unwrap_or_default()).is_file();
        let (search, tmp) = if stable_ok {
            (dir.to_path_buf(), None)
        } else {
            let Ok(tmp) = tempfile::Builder::new()
                .prefix("iiswsgi-libpython-")
                .tempdir()
            else {
                return;
            };
            if std::os::unix::fs::symlink(&wanted, tmp.path().join(super::NEEDED)).is_err() {
                return;
            }
            let path = tmp.keep();
            (path.clone(), Some(path))
        };
        let orig = std::env::var_os("LD_LIBRARY_PATH");
        let mut value = search.into_os_string();
        if let Some(orig) = orig.as_ref().filter(|o| !o.is_empty()) {
            value.push(":");
            value.push(orig);
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        let mut command = std::process::Command::new(&exe);
        command
            .arg0(arg0)
            .args(args)
            .env("LD_LIBRARY_PATH", value)
            .env(super::MARK, &wanted)
            .env(super::MARK_TMP, tmp.clone().unwrap_or_default());
        match orig {
            Some(orig) => command.env(super::MARK_ORIG, orig),
            None => command.env_remove(super::MARK_ORIG),
        };
        let error = command.exec();
        log::debug!("re-executing {} failed: {error}", exe.display());
        if let Some(tmp) = tmp {
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
}

#[cfg(windows)]
mod platform {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use windows_sys::Win32::Foundation::HMODULE;
    use windows_sys::Win32::System::LibraryLoader::{GetModuleFileNameW, GetModuleHandleW};

    fn module_path(name: &str) -> Option<PathBuf> {
        let wide: Vec<u16> = std::ffi::OsStr::new(name)
            .encode_wide()
            .chain(Some(0))
            .collect();
        // SAFETY: a NUL-terminated UTF-16 name; GetModuleHandleW does not add a reference.
        let module: HMODULE = unsafe { GetModuleHandleW(wide.as_ptr()) };
        if module.is_null() {
            return None;
        }
        let mut buf = vec![0u16; 32768];
        // SAFETY: the buffer holds `len` u16s.
        let len = unsafe { GetModuleFileNameW(module, buf.as_mut_ptr(), buf.len() as u32) };
        (len > 0).then(|| PathBuf::from(std::ffi::OsString::from_wide(&buf[..len as usize])))
    }

    /// `(python3XY.dll, python3.dll)` as loaded.
    pub(super) fn paths(version: &str) -> (Option<PathBuf>, Option<PathBuf>) {
        let versioned = crate::venv::major_minor(version)
            .and_then(|(major, minor)| module_path(&format!("python{major}{minor}.dll")));
        (versioned, module_path("python3.dll"))
    }

    pub(super) fn library_in(prefix: &Path, _version: (u32, u32)) -> Option<PathBuf> {
        Some(prefix.to_path_buf())
    }

    pub(super) fn install_version(_dir: &Path) -> Option<(u32, u32)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venv::PyVenvCfg;

    fn venv_env(home: &Path, version: &str) -> Environment {
        Environment::Venv {
            dir: PathBuf::from("/srv/app/.venv"),
            executable: PathBuf::from("/srv/app/.venv/bin/python"),
            cfg: PyVenvCfg {
                home: Some(home.display().to_string()),
                version: Some(version.into()),
                include_system_site_packages: false,
            },
        }
    }

    #[test]
    fn the_loaded_library_is_the_build_interpreters_in_the_test_binary() {
        let loaded = loaded();
        let built = super::super::BUILT_FOR;
        assert_eq!(
            loaded
                .major_minor()
                .map(|(a, b)| format!("{a}.{b}"))
                .as_deref(),
            Some(built),
            "{loaded:?}"
        );
        let lib = loaded.library.as_deref().expect("dladdr names the library");
        let name = lib.file_name().unwrap().to_string_lossy();
        assert_eq!(name, format!("libpython{built}.so.1.0"), "{loaded:?}");
        assert!(loaded.describe().contains(&*lib.to_string_lossy()));
    }

    #[test]
    fn a_venv_of_another_minor_than_the_loaded_one_is_refused_naming_both() {
        let loaded = Loaded {
            version: "3.11.7".into(),
            library: Some(PathBuf::from("/py311/lib/libpython3.11.so.1.0")),
            forwarder: None,
            needed: "libpython3.so",
            reexecuted: false,
        };
        let err = check(&venv_env(Path::new("/py312/bin"), "3.12.1"), &loaded).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("made by Python 3.12"), "{text}");
        assert!(
            text.contains("CPython 3.11.7 from /py311/lib/libpython3.11.so.1.0"),
            "{text}"
        );
    }

    #[test]
    fn the_base_environment_accepts_whatever_was_loaded() {
        let env = Environment::Base { executable: None };
        assert!(check(&env, &loaded()).is_ok());
        assert_eq!(base_library(&env), None);
    }

    #[test]
    fn a_venvs_base_library_is_found_under_lib_or_the_multiarch_folder() {
        let root = tempfile::tempdir().unwrap();
        let prefix = root.path();
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        let env = venv_env(&prefix.join("bin"), "3.12.1");
        assert_eq!(base_library(&env), None, "nothing there yet");
        let multiarch = prefix.join("lib").join(platform_multiarch());
        std::fs::create_dir_all(&multiarch).unwrap();
        std::fs::write(multiarch.join("libpython3.12.so.1.0"), "").unwrap();
        assert_eq!(
            base_library(&env),
            Some(
                multiarch
                    .join("libpython3.12.so.1.0")
                    .canonicalize()
                    .unwrap()
            )
        );
        std::fs::write(prefix.join("lib").join("libpython3.12.so.1.0"), "").unwrap();
        assert_eq!(
            base_library(&env),
            Some(
                prefix
                    .join("lib/libpython3.12.so.1.0")
                    .canonicalize()
                    .unwrap()
            ),
            "<prefix>/lib first"
        );
    }

    fn platform_multiarch() -> &'static str {
        if cfg!(target_arch = "aarch64") {
            "aarch64-linux-gnu"
        } else {
            "x86_64-linux-gnu"
        }
    }
}
