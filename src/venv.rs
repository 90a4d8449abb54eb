//! Which virtual environment iiswsgi belongs to, found from where its binary sits.
//!
//! `pip install iiswsgi` puts the executable in the app's venv: `<venv>/bin/iiswsgi`, or
//! `<venv>\Scripts\iiswsgi.exe` on Windows, with `<venv>/pyvenv.cfg` one level up. A binary in
//! that place serves that venv without `--venv`, and the IIS registration points at it. This
//! module only answers "which venv is that, and who chose it"; checking that the venv's Python
//! matches the embedded one is `wsgi::venv`'s job, at start-up.
//!
//! It also holds the one `pyvenv.cfg` reader ([`PyVenvCfg`]) that `wsgi` (the start-up check)
//! and `iis` (install, doctor, the DLL's folder) share.
//!
//! Python-free and small: path tests, one `is_file` and a text parser, so `iis` and the CLI can
//! use it in builds without the `python` feature. Main items: [`venv_of_executable`],
//! [`this_venv`], [`choose`], [`PyVenvCfg`].

use std::fmt;
use std::path::{Path, PathBuf};

/// The keys of a `pyvenv.cfg` that matter to iiswsgi.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PyVenvCfg {
    /// `home`: the folder of the interpreter that made the venv (on Windows, the installation
    /// folder, which holds `python3XY.dll`).
    pub home: Option<String>,
    /// `version` (stdlib venv) or `version_info` (virtualenv, uv), as written.
    pub version: Option<String>,
    /// `include-system-site-packages`.
    pub include_system_site_packages: bool,
}

impl PyVenvCfg {
    /// Parses `key = value` lines; keys are case-insensitive and other lines ignored, as
    /// CPython's `site.py` reads the file.
    pub fn parse(text: &str) -> Self {
        let mut cfg = PyVenvCfg::default();
        let mut version_info = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "home" => cfg.home = Some(value),
                "version" => cfg.version = Some(value),
                "version_info" => version_info = Some(value),
                "include-system-site-packages" => {
                    cfg.include_system_site_packages = value.eq_ignore_ascii_case("true")
                }
                _ => {}
            }
        }
        if cfg.version.is_none() {
            cfg.version = version_info;
        }
        cfg
    }

    /// `major.minor` of [`PyVenvCfg::version`].
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        self.version.as_deref().and_then(major_minor)
    }
}

/// The oldest CPython `(major, minor)` iiswsgi embeds: the binary links CPython's stable ABI as
/// of 3.9 (PyO3 `abi3-py39`), so every later CPython serves too (issue 15).
pub const MINIMUM_PYTHON: (u32, u32) = (3, 9);

/// `"3.11.7"`, `"3.12.1.final.0"`, `"3.11"` → `(3, 11)`.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next()?.trim().parse().ok()?;
    Some((major, minor))
}

/// Names of the folder a venv keeps its executables in: `bin` (POSIX, and MSYS2/mingw Pythons
/// on Windows) and `Scripts` (CPython on Windows, any case since NTFS ignores it).
const SCRIPT_DIRS: [&str; 2] = ["bin", "Scripts"];

/// The venv whose scripts folder holds `exe`: `exe`'s folder is named `bin` or `Scripts` and
/// its parent has a `pyvenv.cfg` file. `None` for a binary anywhere else (`target/release`,
/// `~/.cargo/bin`, `C:\Program Files\iiswsgi`), and for a `bin/` of a full Python installation,
/// which has no `pyvenv.cfg`. `exe` should be absolute; the result is `exe`'s grandparent as
/// given, not canonicalised.
pub fn venv_of_executable(exe: &Path) -> Option<PathBuf> {
    let scripts = exe.parent()?;
    let name = scripts.file_name()?.to_str()?;
    if !SCRIPT_DIRS.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return None;
    }
    let venv = scripts.parent()?;
    venv.join("pyvenv.cfg")
        .is_file()
        .then(|| venv.to_path_buf())
}

/// The venv this running binary sits in ([`venv_of_executable`] of
/// [`std::env::current_exe`]); `None` when it sits elsewhere or its path cannot be read.
/// On Linux the path is the resolved `/proc/self/exe`, so a symlink in a venv's `bin/` pointing
/// at a binary elsewhere does not make that venv this binary's.
pub fn this_venv() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    venv_of_executable(&exe)
}

/// Where the venv `run` uses came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenvSource {
    /// `--venv DIR` or `IISWSGI_VENV`.
    Flag,
    /// `[wsgi] venv` of the manifest.
    Manifest,
    /// The venv whose `bin/` (`Scripts\`) holds this binary.
    BinaryLocation,
}

impl fmt::Display for VenvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VenvSource::Flag => "from --venv / IISWSGI_VENV",
            VenvSource::Manifest => "from the manifest's [wsgi] venv",
            VenvSource::BinaryLocation => "from the binary's location",
        })
    }
}

/// The venv `run` should use: an explicit flag beats the manifest, which beats the binary's own
/// venv. `None` when none applies (the interpreter the binary was built against is used).
pub fn choose(
    flag: Option<PathBuf>,
    manifest: Option<PathBuf>,
    located: Option<PathBuf>,
) -> Option<(PathBuf, VenvSource)> {
    flag.map(|p| (p, VenvSource::Flag))
        .or_else(|| manifest.map(|p| (p, VenvSource::Manifest)))
        .or_else(|| located.map(|p| (p, VenvSource::BinaryLocation)))
}

/// The line `iiswsgi --version` prints after the version: the venv `run` would use without a
/// manifest, given the `IISWSGI_VENV` value and the located venv.
/// `venv: /srv/app/.venv (from the binary's location)` or `venv: none`.
pub fn describe(flag: Option<PathBuf>, located: Option<PathBuf>) -> String {
    match choose(flag, None, located) {
        Some((dir, source)) => format!("venv: {} ({source})", dir.display()),
        None => "venv: none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp dir holding `<root>/<venv>/<scripts>/iiswsgi`, with `pyvenv.cfg` when asked.
    fn layout(scripts: &str, with_cfg: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let venv = root.path().join("venv");
        std::fs::create_dir_all(venv.join(scripts)).unwrap();
        if with_cfg {
            std::fs::write(
                venv.join("pyvenv.cfg"),
                "home = /usr/bin\nversion = 3.11.7\n",
            )
            .unwrap();
        }
        let exe = venv.join(scripts).join("iiswsgi");
        std::fs::write(&exe, "").unwrap();
        (root, venv, exe)
    }

    mod venv_of_executable {
        use super::*;

        #[test]
        fn binary_in_venv_bin_names_the_venv() {
            let (_root, venv, exe) = layout("bin", true);
            assert_eq!(venv_of_executable(&exe), Some(venv));
        }

        #[test]
        fn binary_in_venv_scripts_names_the_venv_in_any_case() {
            for scripts in ["Scripts", "scripts", "SCRIPTS"] {
                let (_root, venv, exe) = layout(scripts, true);
                assert_eq!(venv_of_executable(&exe), Some(venv), "{scripts}");
            }
        }

        #[test]
        fn bin_without_pyvenv_cfg_is_no_venv() {
            let (_root, _venv, exe) = layout("bin", false);
            assert_eq!(venv_of_executable(&exe), None);
        }

        #[test]
        fn binary_beside_pyvenv_cfg_but_not_in_a_scripts_folder_is_no_venv() {
            let (_root, venv, _exe) = layout("bin", true);
            let elsewhere = venv.join("release").join("iiswsgi");
            std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
            assert_eq!(venv_of_executable(&elsewhere), None);
            assert_eq!(venv_of_executable(&venv.join("iiswsgi")), None);
        }

        #[test]
        fn pyvenv_cfg_that_is_a_folder_is_no_venv() {
            let (_root, venv, exe) = layout("bin", false);
            std::fs::create_dir(venv.join("pyvenv.cfg")).unwrap();
            assert_eq!(venv_of_executable(&exe), None);
        }

        #[test]
        fn paths_too_short_to_hold_a_venv_are_no_venv() {
            assert_eq!(venv_of_executable(Path::new("iiswsgi")), None);
            assert_eq!(venv_of_executable(Path::new("/")), None);
            assert_eq!(venv_of_executable(Path::new("/bin")), None);
        }

        #[test]
        fn test_binary_outside_any_venv_finds_none() {
            // The test executable lives in target/<profile>/deps, never a venv's bin/.
            assert_eq!(this_venv(), None);
        }
    }

    mod choose {
        use super::*;

        fn p(s: &str) -> Option<PathBuf> {
            Some(PathBuf::from(s))
        }

        #[test]
        fn flag_beats_manifest_and_location() {
            assert_eq!(
                choose(p("/flag"), p("/manifest"), p("/located")),
                Some((PathBuf::from("/flag"), VenvSource::Flag))
            );
        }

        #[test]
        fn manifest_beats_location() {
            assert_eq!(
                choose(None, p("/manifest"), p("/located")),
                Some((PathBuf::from("/manifest"), VenvSource::Manifest))
            );
        }

        #[test]
        fn location_is_used_when_nothing_is_explicit() {
            assert_eq!(
                choose(None, None, p("/located")),
                Some((PathBuf::from("/located"), VenvSource::BinaryLocation))
            );
        }

        #[test]
        fn nothing_anywhere_chooses_no_venv() {
            assert_eq!(choose(None, None, None), None);
        }

        #[test]
        fn describe_names_the_venv_and_its_source_or_none() {
            assert_eq!(
                describe(None, p("/srv/app/.venv")),
                "venv: /srv/app/.venv (from the binary's location)"
            );
            assert_eq!(
                describe(p("/v"), p("/srv/app/.venv")),
                "venv: /v (from --venv / IISWSGI_VENV)"
            );
            assert_eq!(describe(None, None), "venv: none");
        }
    }
}
