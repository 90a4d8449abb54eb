//! Which Python environment the embedded interpreter starts in, decided before CPython runs.
//!
//! `--venv DIR` (or the manifest's `[wsgi] venv`) names a virtual environment made by
//! `python -m venv`, virtualenv or uv, or a full installation such as conda's. CPython finds a
//! venv only through `pyvenv.cfg` next to the executable it is told about, so this module picks
//! that executable. Any CPython from 3.9 on is accepted (the binary uses the stable ABI only,
//! issue 15); which library then has to be loaded for it is `libpython`'s business, and a venv
//! older than 3.9 is refused here, before Python starts.
//!
//! Pure and Python-free: it reads one small text file and checks that paths exist. No PyO3.

use std::path::{Path, PathBuf};

pub use crate::venv::{PyVenvCfg, major_minor};

/// The environment the interpreter is configured for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// No `--venv`: the interpreter the binary was built against.
    Base {
        /// `sys.executable`; `None` when the build did not record one.
        executable: Option<PathBuf>,
    },
    /// A directory holding `pyvenv.cfg`: `executable` is its interpreter, `home` stays unset.
    Venv {
        /// The canonical venv directory; `sys.prefix` must equal it after start.
        dir: PathBuf,
        /// `<dir>/bin/python` (`<dir>\Scripts\python.exe`).
        executable: PathBuf,
        /// What `pyvenv.cfg` said.
        cfg: PyVenvCfg,
    },
    /// A directory without `pyvenv.cfg`, taken as a full installation: `home` = the directory.
    Install {
        /// The canonical installation directory, used as `PyConfig.home`.
        dir: PathBuf,
        /// Its interpreter.
        executable: PathBuf,
    },
}

impl Environment {
    /// The interpreter path to put in `PyConfig.executable`.
    pub fn executable(&self) -> Option<&Path> {
        match self {
            Environment::Base { executable } => executable.as_deref(),
            Environment::Venv { executable, .. } | Environment::Install { executable, .. } => {
                Some(executable)
            }
        }
    }

    /// The value for `PyConfig.home`: only a full installation sets it (setting it for a venv
    /// would disable `pyvenv.cfg` detection).
    pub fn home(&self) -> Option<&Path> {
        match self {
            Environment::Install { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// The directory `sys.prefix` must resolve to after start, if we chose one.
    pub fn expected_prefix(&self) -> Option<&Path> {
        match self {
            Environment::Base { .. } => None,
            Environment::Venv { dir, .. } | Environment::Install { dir, .. } => Some(dir),
        }
    }
}

/// Why `--venv DIR` cannot be used. Raised before Python starts.
#[derive(Debug, thiserror::Error)]
pub enum VenvError {
    /// The directory does not exist or cannot be resolved.
    #[error("the venv {} cannot be opened", .dir.display())]
    Missing {
        /// The directory as given.
        dir: PathBuf,
        /// Why it could not be resolved.
        source: std::io::Error,
    },
    /// `pyvenv.cfg` exists but cannot be read.
    #[error("cannot read {}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The venv was made by a Python older than the oldest one the stable-ABI build runs on.
    #[error(
        "the venv at {} is Python {found}, but iiswsgi needs CPython {}.{} or later; \
         recreate the venv with a newer Python",
        .dir.display(), MINIMUM.0, MINIMUM.1
    )]
    TooOld {
        /// The venv directory.
        dir: PathBuf,
        /// `major.minor` the venv declares.
        found: String,
    },
    /// `pyvenv.cfg` has no usable `version`/`version_info`.
    #[error("{} has no `version` or `version_info` line, so its Python cannot be checked", .path.display())]
    NoVersion {
        /// The file.
        path: PathBuf,
    },
    /// Neither a venv interpreter nor an installation's interpreter exists in the directory.
    #[error("no Python interpreter in {} (tried {})", .dir.display(), join_paths(.tried))]
    NoInterpreter {
        /// The directory.
        dir: PathBuf,
        /// The paths that were tried.
        tried: Vec<PathBuf>,
    },
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The oldest CPython the binary runs on (PyO3's `abi3-py39`).
pub const MINIMUM: (u32, u32) = crate::venv::MINIMUM_PYTHON;

/// The interpreter names tried inside a venv, in order.
fn venv_interpreters(dir: &Path, version: (u32, u32)) -> Vec<PathBuf> {
    if cfg!(windows) {
        vec![dir.join("Scripts").join("python.exe")]
    } else {
        let bin = dir.join("bin");
        vec![
            bin.join("python"),
            bin.join("python3"),
            bin.join(format!("python{}.{}", version.0, version.1)),
        ]
    }
}

/// The interpreter names tried inside a full installation, in order.
fn install_interpreters(dir: &Path, version: (u32, u32)) -> Vec<PathBuf> {
    if cfg!(windows) {
        vec![dir.join("python.exe")]
    } else {
        let bin = dir.join("bin");
        vec![
            bin.join("python3"),
            bin.join(format!("python{}.{}", version.0, version.1)),
            bin.join("python"),
        ]
    }
}

/// Chooses the environment: `venv` as given on the command line (resolved against nothing: the
/// caller passes an absolute or already-resolved path), `base_executable` the build's
/// interpreter for the no-venv case.
pub fn select(
    venv: Option<&Path>,
    base_executable: Option<&Path>,
) -> Result<Environment, VenvError> {
    let Some(dir) = venv else {
        return Ok(Environment::Base {
            executable: base_executable.map(Path::to_path_buf),
        });
    };
    let dir = fs_err::canonicalize(dir).map_err(|source| VenvError::Missing {
        dir: dir.to_path_buf(),
        source: strip_fs_err(source),
    })?;
    let cfg_path = dir.join("pyvenv.cfg");
    if cfg_path.is_file() {
        let text = fs_err::read_to_string(&cfg_path).map_err(|source| VenvError::Unreadable {
            path: cfg_path.clone(),
            source: strip_fs_err(source),
        })?;
        let cfg = PyVenvCfg::parse(&text);
        let found = cfg
            .version
            .as_deref()
            .and_then(major_minor)
            .ok_or_else(|| VenvError::NoVersion {
                path: cfg_path.clone(),
            })?;
        if found < MINIMUM {
            return Err(VenvError::TooOld {
                dir,
                found: format!("{}.{}", found.0, found.1),
            });
        }
        let tried = venv_interpreters(&dir, found);
        let Some(executable) = tried.iter().find(|p| p.exists()).cloned() else {
            return Err(VenvError::NoInterpreter { dir, tried });
        };
        Ok(Environment::Venv {
            dir,
            executable,
            cfg,
        })
    } else {
        let tried = install_interpreters(&dir, MINIMUM);
        let Some(executable) = tried.iter().find(|p| p.exists()).cloned() else {
            return Err(VenvError::NoInterpreter { dir, tried });
        };
        Ok(Environment::Install { dir, executable })
    }
}

/// `fs-err` already names the path in its message; our variants carry the path themselves, so
/// keep only the underlying error to avoid printing it twice.
fn strip_fs_err(err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    mod pyvenv_cfg {
        use super::*;

        #[test]
        fn stdlib_venv_keys_parse_case_insensitively() {
            let cfg = PyVenvCfg::parse(
                "home = /usr/bin\nInclude-System-Site-Packages = TRUE\nVERSION = 3.11.7\n",
            );
            assert_eq!(cfg.home.as_deref(), Some("/usr/bin"));
            assert_eq!(cfg.version.as_deref(), Some("3.11.7"));
            assert!(cfg.include_system_site_packages);
        }

        #[test]
        fn virtualenv_version_info_is_used_when_version_is_absent() {
            let cfg = PyVenvCfg::parse("home = /opt/py\nversion_info = 3.12.1.final.0\n");
            assert_eq!(cfg.version.as_deref(), Some("3.12.1.final.0"));
            assert!(!cfg.include_system_site_packages);
        }

        #[test]
        fn lines_without_equals_are_ignored() {
            let cfg = PyVenvCfg::parse("# comment\n\nversion = 3.11\n");
            assert_eq!(cfg.version.as_deref(), Some("3.11"));
        }

        #[test]
        fn major_minor_reads_two_leading_numbers() {
            assert_eq!(major_minor("3.11.7"), Some((3, 11)));
            assert_eq!(major_minor("3.12.1.final.0"), Some((3, 12)));
            assert_eq!(major_minor("3.9"), Some((3, 9)));
            assert_eq!(major_minor("3"), None);
            assert_eq!(major_minor("three.one"), None);
        }
    }

    mod select {
        use super::*;

        fn fake_venv(version: &str) -> tempfile::TempDir {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("pyvenv.cfg"),
                format!("home = /usr/bin\nversion = {version}\n"),
            )
            .unwrap();
            std::fs::create_dir_all(dir.path().join("bin")).unwrap();
            std::fs::write(dir.path().join("bin").join("python"), "").unwrap();
            dir
        }

        #[test]
        fn no_venv_selects_the_base_interpreter() {
            let env = select(None, Some(Path::new("/x/python3"))).unwrap();
            assert_eq!(env.executable(), Some(Path::new("/x/python3")));
            assert_eq!(env.home(), None);
        }

        #[test]
        fn venv_of_the_same_minor_selects_its_python_without_home() {
            let dir = fake_venv("3.11.2");
            let env = select(Some(dir.path()), None).unwrap();
            let canon = dir.path().canonicalize().unwrap();
            assert_eq!(
                env.executable(),
                Some(canon.join("bin").join("python").as_path())
            );
            assert_eq!(env.home(), None);
            assert_eq!(env.expected_prefix(), Some(canon.as_path()));
        }

        #[test]
        fn venv_of_any_minor_from_3_9_on_is_accepted() {
            for version in ["3.9.18", "3.12.1", "3.13.0", "3.14.2", "3.20.0"] {
                let dir = fake_venv(version);
                let env = select(Some(dir.path()), None).unwrap();
                assert!(matches!(env, Environment::Venv { .. }), "{version}");
            }
        }

        #[test]
        fn venv_older_than_3_9_is_refused_naming_the_minimum() {
            let dir = fake_venv("3.8.18");
            let err = select(Some(dir.path()), None).unwrap_err();
            let canon = dir.path().canonicalize().unwrap();
            assert_eq!(
                err.to_string(),
                format!(
                    "the venv at {} is Python 3.8, but iiswsgi needs CPython 3.9 or later; \
                     recreate the venv with a newer Python",
                    canon.display()
                )
            );
        }

        #[test]
        fn venv_without_version_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
            let err = select(Some(dir.path()), None).unwrap_err();
            assert!(matches!(err, VenvError::NoVersion { .. }), "{err}");
        }

        #[test]
        fn missing_directory_is_reported() {
            let err = select(Some(Path::new("/no/such/venv")), None).unwrap_err();
            assert!(err.to_string().contains("/no/such/venv"), "{err}");
        }

        #[test]
        fn directory_without_pyvenv_cfg_is_a_full_install_with_home() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("bin")).unwrap();
            std::fs::write(dir.path().join("bin").join("python3"), "").unwrap();
            let env = select(Some(dir.path()), None).unwrap();
            let canon = dir.path().canonicalize().unwrap();
            assert_eq!(env.home(), Some(canon.as_path()));
            assert_eq!(
                env.executable(),
                Some(canon.join("bin").join("python3").as_path())
            );
        }

        #[test]
        fn directory_without_any_interpreter_lists_what_was_tried() {
            let dir = tempfile::tempdir().unwrap();
            let err = select(Some(dir.path()), None).unwrap_err();
            assert!(err.to_string().contains("bin/python3"), "{err}");
        }
    }
}
