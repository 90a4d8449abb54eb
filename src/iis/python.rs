//! Which Python the install step uses and what the app pool will see of it.
//!
//! iiswsgi embeds any CPython from 3.9 on ([`crate::venv::MINIMUM_PYTHON`]) through the stable
//! ABI: on Windows `iiswsgi.exe` imports `python3.dll` ([`STABLE_DLL`]), the forwarder every
//! CPython install ships beside its `python3XY.dll`, and the first `python3.dll` on the DLL
//! search path decides which Python the process runs. It loads at start-up, before any Rust code
//! runs, so a missing DLL shows only as "the FastCGI process exited unexpectedly"
//! (wsgi-embedding.md §1.7). This module knows:
//! - `pyvenv.cfg` ([`PyVenvCfg`], re-exported from [`crate::venv`]), to find a venv's base
//!   installation (`home`);
//! - the interpreter layout of a venv on Windows and elsewhere ([`venv_python`]);
//! - per-user installs (`%LOCALAPPDATA%\Programs\Python`, the Microsoft Store), which the app-pool
//!   identity can neither find nor read ([`per_user_install`]);
//! - the DLL names ([`STABLE_DLL`], [`dll_name`]) and where Windows looks for them
//!   ([`dll_search`]);
//! - the Pythons the `py` launcher lists ([`parse_py_list`]) and which of them install picks
//!   ([`newest_all_users`]);
//! - a probe that asks an interpreter for its facts ([`probe`], the one function here that runs
//!   a process; [`parse_probe`] reads its output and is pure).
//!
//! The `pyvenv.cfg` reader itself lives in [`crate::venv`], shared with `run`'s start-up check.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::venv::{PyVenvCfg, major_minor};

/// The `major.minor` this build was built with, if it embeds Python (it embeds any CPython
/// from [`crate::venv::MINIMUM_PYTHON`] on).
pub fn built_for() -> Option<(u32, u32)> {
    crate::PYTHON_VERSION.and_then(major_minor)
}

/// The stable-ABI forwarder `iiswsgi.exe` imports: it forwards every call to the
/// `python3XY.dll` in its own folder.
pub const STABLE_DLL: &str = "python3.dll";

/// One Python the `py` launcher knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `(major, minor)`.
    pub version: (u32, u32),
    /// `python.exe`.
    pub executable: PathBuf,
}

/// Reads `py -0p` (`py --list-paths`): lines such as ` -V:3.12 *  C:\Program Files\Python312\python.exe`
/// (launcher 3.11+) or ` -3.12-64 *  C:\…\python.exe` (older). Entries that are not CPython
/// `3.X` (`-V:Astral/…`, 32-bit `-3.12-32`, free-threaded `3.13t`) are left out.
pub fn parse_py_list(stdout: &str) -> Vec<Listed> {
    stdout
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (tag, rest) = line.split_once(char::is_whitespace)?;
            let tag = tag.strip_prefix("-V:").or_else(|| tag.strip_prefix('-'))?;
            let tag = tag.strip_suffix("-64").unwrap_or(tag);
            let (major, minor) = tag.split_once('.')?;
            let version = (major.parse().ok()?, minor.parse().ok()?);
            let path = rest.trim_start().trim_start_matches('*').trim();
            (!path.is_empty()).then(|| Listed {
                version,
                executable: PathBuf::from(path),
            })
        })
        .collect()
}

/// What `install` runs when neither `--python` nor `[wsgi] python-version` names one: the newest
/// CPython ≥ 3.9 installed for all users (a per-user install is invisible to the app pool).
pub fn newest_all_users(listed: &[Listed]) -> Option<&Listed> {
    listed
        .iter()
        .filter(|l| l.version >= crate::venv::MINIMUM_PYTHON)
        .filter(|l| per_user_install(&l.executable.to_string_lossy()).is_none())
        .max_by_key(|l| l.version)
}

/// The interpreter inside a venv: `Scripts\python.exe` on Windows, `bin/python` elsewhere.
pub fn venv_python(venv: &Path, windows: bool) -> PathBuf {
    if windows {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The folder of executables inside a venv (`Scripts` or `bin`).
pub fn venv_bin(venv: &Path, windows: bool) -> PathBuf {
    venv.join(if windows { "Scripts" } else { "bin" })
}

/// `python311.dll` for `(3, 11)`.
pub fn dll_name((major, minor): (u32, u32)) -> String {
    format!("python{major}{minor}.dll")
}

/// Why a Python installation is invisible to the app pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerUser {
    /// "Install for me only": `C:\Users\<u>\AppData\Local\Programs\Python\…`.
    LocalPrograms,
    /// The Microsoft Store build: `…\AppData\Local\Microsoft\WindowsApps\…` (an app-execution
    /// alias other accounts cannot run).
    Store,
    /// Somewhere else under a user profile (`C:\Users\<u>\…`).
    Profile,
}

impl std::fmt::Display for PerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PerUser::LocalPrograms => r"installed for one user, under AppData\Local\Programs",
            PerUser::Store => "the Microsoft Store build",
            PerUser::Profile => "inside a user profile",
        })
    }
}

/// Whether `path` (Windows syntax, either separator) lies in a user's profile, where the
/// app-pool identity cannot find or read it (iis-runtime.md §10, wsgi-embedding.md §1.7).
/// `C:\Users\Public` is not a profile.
pub fn per_user_install(path: &str) -> Option<PerUser> {
    let lower = path.replace('/', "\\").to_ascii_lowercase();
    let after = lower.split_once(r"\users\")?.1;
    let (user, rest) = after.split_once('\\').unwrap_or((after, ""));
    if user.is_empty() || user == "public" || user == "default" {
        return None;
    }
    if rest.starts_with(r"appdata\local\programs\") {
        Some(PerUser::LocalPrograms)
    } else if rest.starts_with(r"appdata\local\microsoft\windowsapps") {
        Some(PerUser::Store)
    } else {
        Some(PerUser::Profile)
    }
}

/// Where a process started by IIS looks for a DLL it imports, in order (standard search
/// order with SafeDllSearchMode): the executable's folder, System32, the Windows folder, then
/// `PATH` (the app's `<environmentVariables>` PATH when it has one). The working directory
/// is left out: IIS does not set a meaningful one.
pub fn dll_search(exe_dir: &str, windir: &str, path_var: Option<&str>) -> Vec<String> {
    let mut dirs = vec![
        exe_dir.to_string(),
        format!(r"{windir}\System32"),
        windir.to_string(),
    ];
    if let Some(p) = path_var {
        dirs.extend(
            p.split(';')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        );
    }
    dirs
}

/// What an interpreter says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonInfo {
    /// The interpreter that was asked (as given).
    pub interpreter: PathBuf,
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
    /// `sys.executable`.
    pub executable: String,
    /// `sys.prefix`.
    pub prefix: String,
    /// `sys.base_prefix`: the installation (a venv's `home` parent on Unix, `home` on Windows).
    pub base_prefix: String,
}

impl PythonInfo {
    /// `(major, minor)`.
    pub fn major_minor(&self) -> (u32, u32) {
        (self.version.0, self.version.1)
    }

    /// `3.11.7`.
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }
}

/// The code [`probe`] runs: one line of tab-separated facts.
pub const PROBE_CODE: &str = "import sys; print('iiswsgi-probe', '%d.%d.%d' % sys.version_info[:3], sys.executable, sys.prefix, sys.base_prefix, sep='\\t')";

/// Reads [`PROBE_CODE`]'s output.
pub fn parse_probe(interpreter: &Path, stdout: &str) -> Option<PythonInfo> {
    let line = stdout.lines().find(|l| l.starts_with("iiswsgi-probe\t"))?;
    let mut f = line.split('\t').skip(1);
    let version = f.next()?;
    let mut v = version.split('.').map(|p| p.parse::<u32>().ok());
    let version = (v.next()??, v.next()??, v.next()??);
    Some(PythonInfo {
        interpreter: interpreter.to_path_buf(),
        version,
        executable: f.next()?.to_string(),
        prefix: f.next()?.to_string(),
        base_prefix: f.next()?.to_string(),
    })
}

/// Why an interpreter could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// It could not be started.
    #[error("cannot run {}", .interpreter.display())]
    Spawn {
        /// The interpreter.
        interpreter: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran but did not answer.
    #[error("{} did not answer the version probe (exit {status}): {stderr}", .interpreter.display())]
    NoAnswer {
        /// The interpreter.
        interpreter: PathBuf,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
}

/// Runs `interpreter [launcher_args…] -c PROBE_CODE` and reads the answer. `launcher_args` is
/// for the Windows `py` launcher (`-3.11`).
pub fn probe(interpreter: &Path, launcher_args: &[String]) -> Result<PythonInfo, ProbeError> {
    let out = Command::new(interpreter)
        .args(launcher_args)
        .args(["-c", PROBE_CODE])
        .env_remove("PYTHONHOME")
        .output()
        .map_err(|source| ProbeError::Spawn {
            interpreter: interpreter.to_path_buf(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_probe(interpreter, &stdout) {
        Some(info) if out.status.success() => Ok(info),
        _ => Err(ProbeError::NoAnswer {
            interpreter: interpreter.to_path_buf(),
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 5),
        }),
    }
}

/// The last `n` lines of `text`, trimmed, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    mod pyvenv_cfg {
        use super::*;

        #[test]
        fn stdlib_venv_keys_are_read_case_insensitively() {
            let cfg = PyVenvCfg::parse(
                "Home = C:\\Program Files\\Python311\r\ninclude-system-site-packages = TRUE\r\nversion = 3.11.7\r\n",
            );
            assert_eq!(cfg.home.as_deref(), Some(r"C:\Program Files\Python311"));
            assert_eq!(cfg.major_minor(), Some((3, 11)));
            assert!(cfg.include_system_site_packages);
        }

        #[test]
        fn virtualenv_version_info_is_the_fallback() {
            let cfg = PyVenvCfg::parse("home = /usr/bin\nversion_info = 3.12.1.final.0\n");
            assert_eq!(cfg.major_minor(), Some((3, 12)));
        }

        #[test]
        fn garbage_lines_are_ignored() {
            let cfg = PyVenvCfg::parse("[section]\nno equals here\n=\n");
            assert_eq!(cfg, PyVenvCfg::default());
        }
    }

    mod per_user {
        use super::*;

        #[test]
        fn local_programs_python_is_per_user() {
            assert_eq!(
                per_user_install(r"C:\Users\bob\AppData\Local\Programs\Python\Python311"),
                Some(PerUser::LocalPrograms)
            );
        }

        #[test]
        fn store_python_is_per_user() {
            assert_eq!(
                per_user_install(r"c:\users\Bob\AppData\Local\Microsoft\WindowsApps\python.exe"),
                Some(PerUser::Store)
            );
        }

        #[test]
        fn program_files_and_public_are_visible_to_the_pool() {
            assert_eq!(per_user_install(r"C:\Program Files\Python311"), None);
            assert_eq!(per_user_install(r"C:\Users\Public\Python311"), None);
            assert_eq!(per_user_install("/usr/lib/python3.11"), None);
        }

        #[test]
        fn anything_else_in_a_profile_is_per_user() {
            assert_eq!(
                per_user_install(r"C:\Users\bob\venvs\shop"),
                Some(PerUser::Profile)
            );
        }
    }

    #[test]
    fn dll_search_puts_exe_dir_and_system_first_then_path() {
        assert_eq!(
            dll_search(
                r"C:\Program Files\iiswsgi",
                r"C:\Windows",
                Some(r"C:\Python311; ;C:\Tools")
            ),
            [
                r"C:\Program Files\iiswsgi",
                r"C:\Windows\System32",
                r"C:\Windows",
                r"C:\Python311",
                r"C:\Tools"
            ]
        );
    }

    #[test]
    fn probe_output_is_parsed() {
        let info = parse_probe(
            Path::new("py"),
            "noise\niiswsgi-probe\t3.11.7\tC:\\Python311\\python.exe\tC:\\Python311\tC:\\Python311\r\n",
        )
        .expect("parsed");
        assert_eq!(info.version, (3, 11, 7));
        assert_eq!(info.base_prefix, r"C:\Python311");
        assert_eq!(parse_probe(Path::new("py"), "iiswsgi-probe\tx\n"), None);
    }

    #[test]
    fn py_list_of_both_launcher_generations_is_read() {
        let new = " -V:3.13 *        C:\\Program Files\\Python313\\python.exe\r\n                     -V:3.12          C:\\Users\\bob\\AppData\\Local\\Programs\\Python\\Python312\\python.exe\r\n                     -V:3.13t         C:\\Program Files\\Python313\\python3.13t.exe\r\n                     -V:Astral/CPython3.14.0 C:\\Users\\bob\\uv\\python.exe\r\n";
        assert_eq!(
            parse_py_list(new),
            [
                Listed {
                    version: (3, 13),
                    executable: PathBuf::from(r"C:\Program Files\Python313\python.exe")
                },
                Listed {
                    version: (3, 12),
                    executable: PathBuf::from(
                        r"C:\Users\bob\AppData\Local\Programs\Python\Python312\python.exe"
                    )
                },
            ]
        );
        let old =
            " -3.11-64 *     C:\\Python311\\python.exe\n -3.8-32   C:\\Python38-32\\python.exe\n";
        assert_eq!(
            parse_py_list(old),
            [Listed {
                version: (3, 11),
                executable: PathBuf::from(r"C:\Python311\python.exe")
            }]
        );
        assert_eq!(parse_py_list("No installed Pythons found!\n"), []);
    }

    #[test]
    fn the_newest_all_users_python_from_3_9_on_is_picked() {
        let l = |v, p: &str| Listed {
            version: v,
            executable: PathBuf::from(p),
        };
        let listed = [
            l((3, 8), r"C:\Python38\python.exe"),
            l((3, 11), r"C:\Program Files\Python311\python.exe"),
            l(
                (3, 14),
                r"C:\Users\bob\AppData\Local\Programs\Python\Python314\python.exe",
            ),
            l((3, 12), r"C:\Program Files\Python312\python.exe"),
        ];
        assert_eq!(
            newest_all_users(&listed),
            Some(&listed[3]),
            "3.14 is per-user"
        );
        assert_eq!(newest_all_users(&listed[..1]), None, "3.8 is too old");
    }

    #[test]
    fn dll_name_has_no_dot_between_major_and_minor() {
        assert_eq!(dll_name((3, 11)), "python311.dll");
    }
}
