//! Adding a folder tree to a package: walks the app folder, applies the caller's filter, follows
//! symbolic links only while they stay inside the folder, and turns every unreadable or
//! unrepresentable file into an error that names it.
//!
//! The walk records names and sizes only; bytes are read later, by the backend, one file at a
//! time, so memory does not grow with the size of the tree.

use std::io;
use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

use super::PackageWriter;
use crate::package::msdeploy::error::PackageError;
use crate::package::msdeploy::zip_path::ZipPath;

/// What to do with one path found by the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Leave it out (a folder: with everything below it).
    Skip,
    /// A folder: walk into it, but add it only if something inside is added.
    Descend,
    /// Add it (a folder: also walk into it, so it exists even when empty).
    Add,
}

/// Adds everything under `root` that `visit` accepts, under `prefix` in the package.
///
/// `visit(relative, is_dir)` receives the `/`-separated path relative to `root`. Returns how
/// many files and folders were added explicitly (the folder `prefix` itself is added too, with
/// `root`'s time).
pub fn add_tree<W, F>(
    writer: &mut W,
    root: &Path,
    prefix: &ZipPath,
    visit: F,
) -> Result<usize, PackageError>
where
    W: PackageWriter + ?Sized,
    F: Fn(&str, bool) -> Visit,
{
    let read_err = |path: &Path, source: io::Error| PackageError::Read {
        path: path.to_path_buf(),
        source,
    };
    let canonical_root = fs_err::canonicalize(root).map_err(|e| read_err(root, e))?;
    writer.add_dir(prefix, Some(root))?;
    let mut added = 1;
    let walk = WalkDir::new(root)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| match relative(root, e.path()) {
            Some(rel) => visit(&rel, e.file_type().is_dir()) != Visit::Skip,
            // Non-UTF-8 names are kept so the loop below can report them.
            None => true,
        });
    for item in walk {
        let entry = item.map_err(|e| walk_error(root, e))?;
        let path = entry.path();
        let rel = relative(root, path).ok_or_else(|| PackageError::NonUtf8Name {
            path: path.to_path_buf(),
        })?;
        if entry.path_is_symlink() {
            let target = fs_err::canonicalize(path).map_err(|e| read_err(path, e))?;
            if !target.starts_with(&canonical_root) {
                return Err(PackageError::SymlinkEscapes {
                    link: path.to_path_buf(),
                    target,
                    root: root.to_path_buf(),
                });
            }
        }
        let name = prefix.join(&rel)?;
        let kind = entry.file_type();
        if kind.is_dir() {
            if visit(&rel, true) != Visit::Add {
                continue;
            }
            writer.add_dir(&name, Some(path))?;
        } else if kind.is_file() {
            writer.add_file(&name, path)?;
        } else {
            return Err(read_err(
                path,
                io::Error::other("not a regular file or folder (socket, FIFO or device)"),
            ));
        }
        added += 1;
    }
    Ok(added)
}

/// `path` relative to `root`, `/`-separated, or `None` if a component is not UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for c in rel.components() {
        if let Component::Normal(s) = c {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(s.to_str()?);
        }
    }
    Some(out)
}

fn walk_error(root: &Path, e: walkdir::Error) -> PackageError {
    let path = e.path().map_or_else(|| root.to_path_buf(), PathBuf::from);
    let source = match e.loop_ancestor() {
        Some(ancestor) => io::Error::other(format!(
            "a symbolic link loops back to {}",
            ancestor.display()
        )),
        None => e
            .into_io_error()
            .unwrap_or_else(|| io::Error::other("cannot walk this folder")),
    };
    PackageError::Read { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::msdeploy::timestamp::TimePolicy;
    use crate::package::msdeploy::writer::Gate;
    use crate::package::msdeploy::writer::memory::MemoryBackend;

    fn app() -> ZipPath {
        ZipPath::new("App").expect("valid")
    }

    fn walk(root: &Path) -> Result<Vec<String>, PackageError> {
        let mut g = Gate::new(TimePolicy::new(1_700_000_000, None));
        add_tree(&mut g, root, &app(), |rel, is_dir| {
            if rel.ends_with(".pyc") || rel == "skip" {
                Visit::Skip
            } else if is_dir && rel.starts_with("implied") {
                Visit::Descend
            } else {
                Visit::Add
            }
        })?;
        Ok(g.finish(MemoryBackend)?
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    #[test]
    fn tree_is_added_sorted_with_empty_folders_and_filtered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs_err::create_dir_all(root.join("pkg/sub")).expect("mkdir");
        fs_err::create_dir_all(root.join("empty")).expect("mkdir");
        fs_err::create_dir_all(root.join("skip/deep")).expect("mkdir");
        fs_err::write(root.join("pkg/__init__.py"), "x").expect("write");
        fs_err::write(root.join("pkg/mod.pyc"), "x").expect("write");
        fs_err::write(root.join("skip/deep/f"), "x").expect("write");
        fs_err::write(root.join("app.py"), "x").expect("write");
        fs_err::create_dir_all(root.join("implied/empty")).expect("mkdir");
        fs_err::create_dir_all(root.join("implied2")).expect("mkdir");
        fs_err::write(root.join("implied/empty/../f.txt"), "x").expect("write");
        assert_eq!(
            walk(root).expect("walk"),
            [
                "App/",
                "App/app.py",
                "App/empty/",
                "App/implied/",
                "App/implied/f.txt",
                "App/pkg/",
                "App/pkg/__init__.py",
                "App/pkg/sub/"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_inside_the_app_folder_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs_err::write(root.join("real.txt"), "x").expect("write");
        std::os::unix::fs::symlink(root.join("real.txt"), root.join("link.txt")).expect("link");
        assert_eq!(
            walk(root).expect("walk"),
            ["App/", "App/link.txt", "App/real.txt"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escaping_the_app_folder_is_refused() {
        let outside = tempfile::tempdir().expect("tempdir");
        fs_err::write(outside.path().join("secret"), "x").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).expect("link");
        let err = walk(dir.path()).expect_err("escape");
        assert!(matches!(err, PackageError::SymlinkEscapes { .. }), "{err}");
        assert!(err.to_string().contains("escape"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::create_dir(dir.path().join("a")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/up")).expect("link");
        let err = walk(dir.path()).expect_err("loop");
        assert!(err.to_string().contains("up"), "{err}");
    }

    #[test]
    fn invalid_windows_name_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::write(dir.path().join("what?.txt"), "x").expect("write");
        let err = walk(dir.path()).expect_err("invalid");
        assert!(err.to_string().contains("what?.txt"), "{err}");
    }
}
