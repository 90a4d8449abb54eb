//! What of the project folder goes into the package, and why the rest does not.
//!
//! [`Filter`] is the walker's decision for each path (`add_tree`'s `visit`): a path is left
//! out when
//! - it is the manifest (shipped separately, under its conventional name);
//! - the server owns it ([`ServerPath`]: the venv, the log folder, a writable `[[iis.set-acl]]`
//!   folder's contents unless `ship-contents = true`); shipping it would put a developer's
//!   uploads, logs or database on every server;
//! - an exclude glob matches it or a folder above it (`[package] exclude` and the defaults);
//! - no include glob matches it.
//!
//! A folder is written only when something in it is, or when it is empty on disk: a folder
//! whose files were all excluded (`exclude = ["tests/**"]`) does not appear as an empty folder.
//! Every path left out is recorded with its reason ([`Excluded`]); the topmost one only, since
//! a skipped folder is not walked. `iiswsgi package --verbose` prints them.

use std::cell::RefCell;
use std::path::Path;

use super::redeploy::{Owned, ServerPath};
use super::writer::tree::Visit;
use crate::manifest::Package;

/// A path left out of the package, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// Relative to the package root, `/`-separated; folders end with `/`.
    pub path: String,
    /// The rule: `exclude "logs"`, `kept on the server: …`, `not in include`.
    pub rule: String,
}

/// The walker's filter for one package build.
pub struct Filter<'a> {
    root: &'a Path,
    package: &'a Package,
    manifest_rel: Option<String>,
    server: &'a [ServerPath],
    excluded: RefCell<Vec<Excluded>>,
}

impl<'a> Filter<'a> {
    /// A filter for the tree at `root` (the package root) with `package`'s globs;
    /// `manifest_rel` is the manifest's path relative to `root`, when it is inside.
    pub fn new(
        root: &'a Path,
        package: &'a Package,
        manifest_rel: Option<String>,
        server: &'a [ServerPath],
    ) -> Self {
        Self {
            root,
            package,
            manifest_rel,
            server,
            excluded: RefCell::new(Vec::new()),
        }
    }

    /// The decision for `rel` (see the module docs).
    pub fn visit(&self, rel: &str, is_dir: bool) -> Visit {
        if Some(rel) == self.manifest_rel.as_deref() || rel == crate::manifest::FILE_NAME {
            return Visit::Skip;
        }
        if let Some(owner) = self
            .server
            .iter()
            .find(|p| !p.shipped && p.kind != Owned::WebConfig && p.covers(rel))
        {
            return self.skip(rel, is_dir, format!("owned by the server: {}", owner.why));
        }
        if let Some(glob) = self.package.excluded_by(rel) {
            return self.skip(rel, is_dir, format!("exclude {glob:?}"));
        }
        if !is_dir {
            return if self.package.is_packaged(rel) {
                Visit::Add
            } else {
                self.skip(rel, false, "not matched by [package] include".into())
            };
        }
        if self.package.is_packaged(rel) && self.is_empty_on_disk(rel) {
            Visit::Add
        } else {
            Visit::Descend
        }
    }

    /// What was left out, in walk order.
    pub fn into_excluded(self) -> Vec<Excluded> {
        self.excluded.into_inner()
    }

    fn skip(&self, rel: &str, is_dir: bool, rule: String) -> Visit {
        let path = if is_dir {
            format!("{rel}/")
        } else {
            rel.to_string()
        };
        self.excluded.borrow_mut().push(Excluded { path, rule });
        Visit::Skip
    }

    fn is_empty_on_disk(&self, rel: &str) -> bool {
        fs_err::read_dir(self.root.join(rel)).is_ok_and(|mut d| d.next().is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::package::msdeploy::redeploy::server_paths;

    fn manifest(extra: &str) -> Manifest {
        let text = format!(
            "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\nvenv = \"env\"\n{extra}"
        );
        Manifest::parse(&text, Path::new("/src/iiswsgi.toml"))
            .unwrap_or_else(|e| panic!("{}", e.render()))
    }

    #[test]
    fn server_owned_paths_and_defaults_are_left_out_with_their_reason() {
        let m = manifest(
            "[[iis.set-acl]]\npath = \"media\"\n[[iis.set-acl]]\npath = \"seed\"\nship-contents = true\n[package]\nexclude = [\"tests/**\"]\n",
        );
        let server = server_paths(&m);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Filter::new(dir.path(), &m.package, None, &server);
        assert_eq!(f.visit("env", true), Visit::Skip, "the custom venv");
        assert_eq!(f.visit("media/a.jpg", false), Visit::Skip);
        assert_eq!(f.visit("seed/a.json", false), Visit::Add);
        assert_eq!(f.visit("logs", true), Visit::Skip);
        assert_eq!(f.visit("db.sqlite3", false), Visit::Skip);
        assert_eq!(f.visit("instance", true), Visit::Skip);
        assert_eq!(f.visit(".env", false), Visit::Skip);
        assert_eq!(f.visit("pkg/.views.py.swp", false), Visit::Skip);
        assert_eq!(f.visit("tests/test_a.py", false), Visit::Skip);
        assert_eq!(f.visit("app.py", false), Visit::Add);
        let excluded = f.into_excluded();
        let rule = |p: &str| {
            excluded
                .iter()
                .find(|e| e.path == p)
                .map(|e| e.rule.clone())
                .unwrap_or_else(|| panic!("{p} not recorded: {excluded:?}"))
        };
        assert!(
            rule("env/").contains("owned by the server: the venv"),
            "{}",
            rule("env/")
        );
        assert!(rule("media/a.jpg").contains("writable"));
        assert!(rule("logs/").contains("log folder"), "{}", rule("logs/"));
        assert_eq!(rule("db.sqlite3"), "exclude \"**/*.sqlite3\"");
        assert_eq!(rule("tests/test_a.py"), "exclude \"tests/**\"");
    }

    #[test]
    fn a_folder_is_added_when_empty_on_disk_else_only_through_its_contents() {
        let m = manifest("");
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::create_dir_all(dir.path().join("empty")).expect("mkdir");
        fs_err::create_dir_all(dir.path().join("full")).expect("mkdir");
        fs_err::write(dir.path().join("full/x.py"), "x").expect("write");
        let f = Filter::new(dir.path(), &m.package, None, &[]);
        assert_eq!(f.visit("empty", true), Visit::Add);
        assert_eq!(f.visit("full", true), Visit::Descend);
    }
}
