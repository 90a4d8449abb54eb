//! Finding the app folder `iiswsgi install` works on.
//!
//! msdeploy's runCommand passes no app path and no useful working directory (msdeploy-webpi.md
//! §2.3, iiswsgi 0.3 issue #2), so the install step looks for the folder it was shipped in
//! (§8.1, with the original's fragility fixed):
//! 1. the folder given on the command line;
//! 2. else `APPL_PHYSICAL_PATH`, when something set it;
//! 3. else every IIS application folder (appcmd `list vdir`) that still holds the stamp file
//!    the package ships ([`STAMP_FILE`]) and whose `iiswsgi.toml` names the app.
//!
//! Every candidate is reported with why it was taken or not; more than one candidate from the
//! site list is an error (the original silently took the newest), asking for the folder.
//! This module reads only the candidate folders; the site list is passed in.

use std::fmt;
use std::path::{Path, PathBuf};

use super::appcmd::VirtualDirectory;
use super::runner::expand_env;
use crate::manifest::{self, Manifest, ManifestError};

/// The stamp file a package ships in the app folder (see [`crate::package::msdeploy::package`]): its
/// presence marks a folder msdeploy unpacked but the post-install step has not finished.
pub use crate::deploy::INSTALL_STAMP as STAMP_FILE;

/// The stamp's content.
pub use crate::deploy::INSTALL_STAMP_TEXT as STAMP_TEXT;

/// Where a candidate folder came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Argument,
    /// `APPL_PHYSICAL_PATH`.
    Environment,
    /// The physical folder of an IIS application (`Site/app`).
    Site(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Argument => f.write_str("the command line"),
            Source::Environment => f.write_str("APPL_PHYSICAL_PATH"),
            Source::Site(app) => write!(f, "IIS application {app}"),
        }
    }
}

/// Why a folder is not the app folder.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The path is not a folder.
    #[error("not a folder")]
    NotAFolder,
    /// The folder holds no `iiswsgi.toml`.
    #[error("no {}", manifest::FILE_NAME)]
    NoManifest,
    /// A site folder without the stamp: installed already, or not by a package.
    #[error("no {STAMP_FILE}")]
    NoStamp,
    /// The manifest is another app's.
    #[error("its iiswsgi.toml is for {found}, not {wanted}")]
    OtherApp {
        /// Its `[app] name`.
        found: String,
        /// `--app-name`.
        wanted: String,
    },
    /// The manifest does not load (its one-line summary is part of the message).
    #[error("its iiswsgi.toml is invalid: {0}")]
    InvalidManifest(ManifestError),
}

/// One folder looked at.
#[derive(Debug)]
pub struct Candidate {
    /// The folder.
    pub dir: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// `None` when it qualifies, else why not.
    pub rejected: Option<Rejection>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.dir.display(), self.source)?;
        match &self.rejected {
            None => f.write_str(": candidate"),
            Some(why) => write!(f, ": not it, {why}"),
        }
    }
}

/// The chosen folder and everything looked at.
#[derive(Debug)]
pub struct Discovery {
    /// The app folder.
    pub dir: PathBuf,
    /// The IIS application serving it, when the site list said so.
    pub site: Option<String>,
    /// Every folder looked at, in order.
    pub candidates: Vec<Candidate>,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The folder given on the command line.
    pub argument: Option<PathBuf>,
    /// `APPL_PHYSICAL_PATH`.
    pub environment: Option<PathBuf>,
    /// `--app-name`: the manifest's `[app] name` (WebPI may have renamed the folder).
    pub app_name: Option<String>,
    /// IIS's virtual directories (Windows), `None` when there is no site list.
    pub vdirs: Option<Vec<VirtualDirectory>>,
}

/// Why no folder was chosen.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The given folder is not an app folder.
    #[error("{}: {why} (taken from {from})", .dir.display())]
    NotAnApp {
        /// The folder.
        dir: PathBuf,
        /// Why.
        why: Rejection,
        /// Where it was given.
        from: Source,
    },
    /// Nothing found.
    #[error("cannot find the app folder: {}", nothing_help(.app_name, .candidates))]
    NotFound {
        /// `--app-name`.
        app_name: Option<String>,
        /// Everything looked at.
        candidates: Vec<Candidate>,
    },
    /// Several folders qualify.
    #[error(
        "{} folders could be the app ({}); pass the one to install: iiswsgi install <APP_DIR>\n{}",
        .candidates.iter().filter(|c| c.rejected.is_none()).count(),
        .app_name.as_deref().unwrap_or("any app"),
        list(.candidates)
    )]
    Ambiguous {
        /// `--app-name`.
        app_name: Option<String>,
        /// Everything looked at.
        candidates: Vec<Candidate>,
    },
}

fn list(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| format!("  {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn nothing_help(app_name: &Option<String>, candidates: &[Candidate]) -> String {
    let what = match app_name {
        Some(n) => format!("no IIS application folder holds {STAMP_FILE} and an iiswsgi.toml named {n}"),
        None => "no folder given, APPL_PHYSICAL_PATH is not set and there is no IIS site list to search (or no --app-name to look for)".into(),
    };
    if candidates.is_empty() {
        format!("{what}; pass the folder: iiswsgi install <APP_DIR>")
    } else {
        format!(
            "{what}; pass the folder: iiswsgi install <APP_DIR>\n{}",
            list(candidates)
        )
    }
}

/// Checks that `dir` holds a manifest for `app_name` (when given); the reason if not.
fn check_folder(dir: &Path, app_name: Option<&str>) -> Result<(), Rejection> {
    if !dir.is_dir() {
        return Err(Rejection::NotAFolder);
    }
    let path = dir.join(manifest::FILE_NAME);
    if !path.is_file() {
        return Err(Rejection::NoManifest);
    }
    let Some(want) = app_name else {
        return Ok(());
    };
    match Manifest::load(&path) {
        Ok(m) if m.app.name.as_str().eq_ignore_ascii_case(want) => Ok(()),
        Ok(m) => Err(Rejection::OtherApp {
            found: m.app.name.to_string(),
            wanted: want.to_string(),
        }),
        Err(e) => Err(Rejection::InvalidManifest(e)),
    }
}

/// Chooses the app folder (see the module docs). `lookup` expands `%VAR%` in IIS physical
/// paths.
pub fn discover(
    request: &Request,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Discovery, DiscoverError> {
    let app_name = request.app_name.as_deref();
    for (given, source) in [
        (&request.argument, Source::Argument),
        (&request.environment, Source::Environment),
    ] {
        if let Some(dir) = given {
            return match check_folder(dir, app_name) {
                Ok(()) => Ok(Discovery {
                    dir: dir.clone(),
                    site: None,
                    candidates: vec![Candidate {
                        dir: dir.clone(),
                        source,
                        rejected: None,
                    }],
                }),
                Err(why) => Err(DiscoverError::NotAnApp {
                    dir: dir.clone(),
                    why,
                    from: source,
                }),
            };
        }
    }
    let mut candidates = Vec::new();
    let (Some(vdirs), Some(_)) = (&request.vdirs, app_name) else {
        return Err(DiscoverError::NotFound {
            app_name: request.app_name.clone(),
            candidates,
        });
    };
    for v in vdirs.iter().filter(|v| v.path == "/") {
        let dir = PathBuf::from(expand_env(&v.physical_path, &lookup));
        let rejected = if !dir.join(STAMP_FILE).is_file() {
            Some(Rejection::NoStamp)
        } else {
            check_folder(&dir, app_name).err()
        };
        candidates.push(Candidate {
            dir,
            source: Source::Site(super::appcmd::location_of(&v.app).to_string()),
            rejected,
        });
    }
    let chosen: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].rejected.is_none())
        .collect();
    match chosen.as_slice() {
        &[one] => Ok(Discovery {
            dir: candidates[one].dir.clone(),
            site: match &candidates[one].source {
                Source::Site(s) => Some(s.clone()),
                _ => None,
            },
            candidates,
        }),
        [] => Err(DiscoverError::NotFound {
            app_name: request.app_name.clone(),
            candidates,
        }),
        _ => Err(DiscoverError::Ambiguous {
            app_name: request.app_name.clone(),
            candidates,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(dir: &Path, name: &str, stamped: bool) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(
            dir.join(manifest::FILE_NAME),
            format!("[app]\nname = \"{name}\"\nversion = \"1.0\"\n[wsgi]\napp = \"a:b\"\n"),
        )
        .expect("write");
        if stamped {
            std::fs::write(dir.join(STAMP_FILE), STAMP_TEXT).expect("stamp");
        }
    }

    fn vdir(app: &str, dir: &Path) -> VirtualDirectory {
        VirtualDirectory {
            app: app.into(),
            path: "/".into(),
            physical_path: dir.display().to_string(),
        }
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn argument_wins_over_environment_and_needs_no_stamp() {
        let t = tempfile::tempdir().expect("tmp");
        let a = t.path().join("a");
        app(&a, "Shop", false);
        let d = discover(
            &Request {
                argument: Some(a.clone()),
                environment: Some(t.path().join("elsewhere")),
                app_name: Some("shop".into()),
                vdirs: None,
            },
            none,
        )
        .expect("found");
        assert_eq!(d.dir, a);
        assert_eq!(d.candidates[0].source, Source::Argument);
    }

    #[test]
    fn argument_for_another_app_is_refused_with_the_reason() {
        let t = tempfile::tempdir().expect("tmp");
        app(t.path(), "Blog", false);
        let e = discover(
            &Request {
                argument: Some(t.path().to_path_buf()),
                app_name: Some("Shop".into()),
                ..Request::default()
            },
            none,
        )
        .expect_err("refused");
        assert!(e.to_string().contains("is for Blog, not Shop"), "{e}");
    }

    #[test]
    fn site_list_finds_the_one_stamped_folder_of_the_named_app() {
        let t = tempfile::tempdir().expect("tmp");
        let (done, fresh, other) = (
            t.path().join("Shop"),
            t.path().join("Shop2"),
            t.path().join("Blog"),
        );
        app(&done, "Shop", false);
        app(&fresh, "Shop", true);
        app(&other, "Blog", true);
        let d = discover(
            &Request {
                app_name: Some("Shop".into()),
                vdirs: Some(vec![
                    vdir("Default Web Site/Shop", &done),
                    vdir("Default Web Site/Shop2", &fresh),
                    vdir("Default Web Site/Blog", &other),
                ]),
                ..Request::default()
            },
            none,
        )
        .expect("found");
        assert_eq!(d.dir, fresh);
        assert_eq!(d.site.as_deref(), Some("Default Web Site/Shop2"));
        assert_eq!(d.candidates.len(), 3, "every folder looked at is reported");
        assert_eq!(
            d.candidates[0].rejected.as_ref().map(ToString::to_string),
            Some("no iiswsgi-install.stamp".to_string())
        );
        assert!(
            d.candidates[2]
                .rejected
                .as_ref()
                .is_some_and(|r| r.to_string().contains("is for Blog"))
        );
    }

    #[test]
    fn two_stamped_folders_are_an_error_listing_both() {
        let t = tempfile::tempdir().expect("tmp");
        let (a, b) = (t.path().join("A"), t.path().join("B"));
        app(&a, "Shop", true);
        app(&b, "Shop", true);
        let e = discover(
            &Request {
                app_name: Some("Shop".into()),
                vdirs: Some(vec![vdir("S/A", &a), vdir("S/B", &b)]),
                ..Request::default()
            },
            none,
        )
        .expect_err("ambiguous");
        let text = e.to_string();
        assert!(
            text.starts_with("2 folders could be the app (Shop)"),
            "{text}"
        );
        assert!(text.contains(&a.display().to_string()) && text.contains(&b.display().to_string()));
    }

    #[test]
    fn physical_paths_with_variables_are_expanded() {
        let t = tempfile::tempdir().expect("tmp");
        let a = t.path().join("Shop");
        app(&a, "Shop", true);
        let root = t.path().display().to_string();
        let d = discover(
            &Request {
                app_name: Some("Shop".into()),
                vdirs: Some(vec![VirtualDirectory {
                    app: "S/Shop".into(),
                    path: "/".into(),
                    physical_path: "%ROOT%/Shop".into(),
                }]),
                ..Request::default()
            },
            |n| (n == "ROOT").then(|| root.clone()),
        )
        .expect("found");
        assert_eq!(d.dir, a);
    }

    #[test]
    fn nothing_to_search_says_how_to_pass_the_folder() {
        let e = discover(&Request::default(), none).expect_err("nothing");
        assert!(e.to_string().contains("iiswsgi install <APP_DIR>"), "{e}");
    }
}
