//! Redeploy-safe by construction: what the server owns inside the app folder after the first
//! deploy, and the msdeploy skip rules that keep a second sync from deleting or overwriting it
//! (web-deploy-at-scale.md §3).
//!
//! `msdeploy -verb:sync` mirrors: a file or folder that exists only on the server is deleted,
//! one that exists on both sides is overwritten. The server owns:
//! - the venv `iiswsgi install` creates (`[wsgi] venv`, when inside the app folder);
//! - the log folder (`[run] log-file`'s folder, `logs` by default);
//! - every writable `[[iis.set-acl]]` folder or file (uploads, SQLite databases);
//! - the rendered `web.config` (the package ships a placeholder that serves nothing), and the
//!   copy `install` keeps of a hand-written one.
//!
//! [`server_paths`] lists them; [`skip_rules`] turns them into `-skip:` directives with a
//! `skipAction`, so the first deploy still creates what the package ships (the placeholder, the
//! empty writable folders) while later ones neither delete nor update them. Semantics (Richard
//! Szalay, "Demystifying MSDeploy skip rules"): `skipAction=Delete` on a `dirPath` keeps the
//! folder and everything in it when msdeploy would delete the folder; the delete of a child of
//! a folder both sides have is a separate `filePath`/`dirPath` delete, so each kept folder gets
//! a rule for each; `skipAction=Update` keeps a file both sides have. A rule without a
//! `skipAction` would also stop the first deploy from creating the object.
//!
//! `absolutePath` is a .NET regex matched against the destination path with `\` separators.
//! The app's physical folder is unknown here (the Application Path may rename it), so each
//! regex matches the relative path at the end of the full path (`\\media(\\.*)?$`): a folder of
//! the same name deeper in the app is kept too. The regexes use only characters that survive
//! cmd.exe inside double quotes and msdeploy's `key=value,key=value` syntax: anything but
//! letters, digits, `_`, `-` and `\.` is written as `\xHH` / `\uHHHH`.

use crate::manifest::{AclResourceType, Manifest, Venv};

/// The kind of a server-owned path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// A folder and everything in it.
    Folder,
    /// One file.
    File,
    /// A file and its rotations (`<name>.1`, `<name>.rotate`, …): a log file at the app root.
    FileAndSiblings,
    /// The app's `web.config`: created by the first deploy, rendered by `install`, never
    /// overwritten by a later deploy (and never deleted, the package always has one).
    WebConfig,
}

/// A path inside the app folder the server owns after the first deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPath {
    /// Relative to the app folder, `/`-separated.
    pub path: String,
    /// Folder, file, …
    pub kind: Owned,
    /// Why the server owns it, for `package --verbose` and the deploy readme.
    pub why: String,
    /// Whether the package ships what is in it (`ship-contents = true`).
    pub shipped: bool,
}

impl ServerPath {
    /// Whether `rel` (relative to the package root, `/`-separated) is this path or inside it.
    pub fn covers(&self, rel: &str) -> bool {
        match self.kind {
            Owned::Folder => {
                rel == self.path
                    || rel
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }
            Owned::File | Owned::WebConfig => rel == self.path,
            Owned::FileAndSiblings => {
                rel == self.path
                    || rel
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|r| r.starts_with('.') && !r.contains('/'))
            }
        }
    }
}

/// What the server owns in the app folder of `manifest`'s app; see the module docs.
pub fn server_paths(manifest: &Manifest) -> Vec<ServerPath> {
    let mut out = Vec::new();
    if let Some(Venv::InApp(rel)) = &manifest.wsgi.venv
        && !rel.as_str().is_empty()
    {
        out.push(ServerPath {
            path: rel.as_str().to_string(),
            kind: Owned::Folder,
            why: "the venv `iiswsgi install` creates ([wsgi] venv)".into(),
            shipped: false,
        });
    }
    if let Some(log) = log_path(manifest) {
        out.push(log);
    }
    for acl in &manifest.iis.set_acl {
        if !acl.is_writable() || acl.path.as_str().is_empty() {
            continue;
        }
        out.push(ServerPath {
            path: acl.path.as_str().to_string(),
            kind: match acl.resource_type {
                AclResourceType::Directory => Owned::Folder,
                AclResourceType::File => Owned::File,
            },
            why: format!(
                "writable by the app ([[iis.set-acl]] {} {})",
                acl.path,
                acl.access_attr()
            ),
            shipped: acl.ship_contents,
        });
    }
    out.push(ServerPath {
        path: "web.config".into(),
        kind: Owned::WebConfig,
        why: "rendered by `iiswsgi install`; the package's copy is a placeholder".into(),
        shipped: true,
    });
    out.push(ServerPath {
        path: crate::deploy::WEB_CONFIG_BACKUP.into(),
        kind: Owned::File,
        why: "the hand-written web.config `iiswsgi install` replaced".into(),
        shipped: false,
    });
    out
}

/// The log folder `iiswsgi run` writes into (`[run] log-file`'s folder, `logs` by default),
/// or the log file itself when it sits at the app root; `None` outside the app folder.
fn log_path(manifest: &Manifest) -> Option<ServerPath> {
    let why = |what: &str| format!("{what} `iiswsgi run` writes ([run] log-file)");
    let Some(file) = &manifest.run.log_file else {
        return Some(ServerPath {
            path: "logs".into(),
            kind: Owned::Folder,
            why: why("the log folder"),
            shipped: false,
        });
    };
    let file = file.replace('\\', "/");
    let absolute = file.starts_with('/') || file.contains(':') || file.starts_with('%');
    let parts: Vec<&str> = file
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if absolute || parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    let (name, folder) = parts.split_last()?;
    Some(if folder.is_empty() {
        ServerPath {
            path: (*name).to_string(),
            kind: Owned::FileAndSiblings,
            why: why("the log file"),
            shipped: false,
        }
    } else {
        ServerPath {
            path: folder.join("/"),
            kind: Owned::Folder,
            why: why("the log folder"),
            shipped: false,
        }
    })
}

/// What a skip rule keeps msdeploy from doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipAction {
    /// Deleting the object (and, for a folder, everything in it).
    Delete,
    /// Overwriting an object both sides have.
    Update,
}

/// The provider a skip rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectName {
    /// A folder.
    DirPath,
    /// A file.
    FilePath,
}

/// One `-skip:skipAction=…,objectName=…,absolutePath=…` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipRule {
    /// What it prevents.
    pub action: SkipAction,
    /// Folders or files.
    pub object: ObjectName,
    /// The .NET regex over the destination path (`\` separators).
    pub absolute_path: String,
}

impl SkipRule {
    /// The msdeploy argument, `-skip:skipAction=Delete,objectName=dirPath,absolutePath=…`.
    pub fn arg(&self) -> String {
        let action = match self.action {
            SkipAction::Delete => "Delete",
            SkipAction::Update => "Update",
        };
        let object = match self.object {
            ObjectName::DirPath => "dirPath",
            ObjectName::FilePath => "filePath",
        };
        format!(
            "-skip:skipAction={action},objectName={object},absolutePath={}",
            self.absolute_path
        )
    }
}

/// The skip rules that keep `paths` across redeploys: for a folder, no delete of it or of
/// anything in it and no update of a file in it; for a file, no delete and no update; for
/// web.config, no update.
pub fn skip_rules(paths: &[ServerPath]) -> Vec<SkipRule> {
    let rule = |action, object, absolute_path: String| SkipRule {
        action,
        object,
        absolute_path,
    };
    let mut out = Vec::new();
    for p in paths {
        let re = path_regex(&p.path);
        match p.kind {
            Owned::Folder => {
                out.push(rule(
                    SkipAction::Delete,
                    ObjectName::DirPath,
                    format!(r"{re}(\\.*)?$"),
                ));
                out.push(rule(
                    SkipAction::Delete,
                    ObjectName::FilePath,
                    format!(r"{re}\\.*$"),
                ));
                out.push(rule(
                    SkipAction::Update,
                    ObjectName::FilePath,
                    format!(r"{re}\\.*$"),
                ));
            }
            Owned::File => {
                for action in [SkipAction::Delete, SkipAction::Update] {
                    out.push(rule(action, ObjectName::FilePath, format!("{re}$")));
                }
            }
            Owned::FileAndSiblings => {
                for action in [SkipAction::Delete, SkipAction::Update] {
                    out.push(rule(
                        action,
                        ObjectName::FilePath,
                        format!(r"{re}(\.[^\\]*)?$"),
                    ));
                }
            }
            Owned::WebConfig => {
                out.push(rule(
                    SkipAction::Update,
                    ObjectName::FilePath,
                    format!("{re}$"),
                ));
            }
        }
    }
    out
}

/// `\\seg1\\seg2` for `seg1/seg2`, each character escaped so the regex means the literal path
/// in .NET and in Rust, and holds nothing cmd.exe or msdeploy's directive syntax would read.
pub fn path_regex(rel: &str) -> String {
    let mut out = String::new();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        out.push_str(r"\\");
        for c in seg.chars() {
            match c {
                c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
                '.' => out.push_str(r"\."),
                c if c.is_ascii() => out.push_str(&format!(r"\x{:02X}", c as u32)),
                c if (c as u32) <= 0xFFFF => out.push_str(&format!(r"\u{:04X}", c as u32)),
                // Outside the BMP .NET sees two UTF-16 units; match either form.
                _ => out.push_str(".{1,2}"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest(extra: &str) -> Manifest {
        let text = format!(
            "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\nvenv = \".venv\"\n{extra}"
        );
        Manifest::parse(&text, Path::new("/src/iiswsgi.toml"))
            .unwrap_or_else(|e| panic!("{}", e.render()))
    }

    fn args(m: &Manifest) -> Vec<String> {
        skip_rules(&server_paths(m))
            .iter()
            .map(SkipRule::arg)
            .collect()
    }

    #[test]
    fn venv_logs_writable_folders_and_web_config_are_kept() {
        let m = manifest(
            "[[iis.set-acl]]\npath = \"media\"\n[[iis.set-acl]]\npath = \"App_Data/db.sqlite3\"\nresource-type = \"File\"\n[[iis.set-acl]]\npath = \"static\"\naccess = [\"Read\"]\n",
        );
        let owned = server_paths(&m);
        let paths: Vec<(&str, Owned)> = owned.iter().map(|p| (p.path.as_str(), p.kind)).collect();
        assert_eq!(
            paths,
            [
                (".venv", Owned::Folder),
                ("logs", Owned::Folder),
                ("media", Owned::Folder),
                ("App_Data/db.sqlite3", Owned::File),
                ("web.config", Owned::WebConfig),
                ("web.config.iiswsgi-backup", Owned::File),
            ],
            "a read-only setAcl folder is the package's"
        );
        let a = args(&m);
        assert!(a.contains(
            &r"-skip:skipAction=Delete,objectName=dirPath,absolutePath=\\\.venv(\\.*)?$".into()
        ));
        assert!(a.contains(
            &r"-skip:skipAction=Delete,objectName=filePath,absolutePath=\\media\\.*$".into()
        ));
        assert!(a.contains(
            &r"-skip:skipAction=Update,objectName=filePath,absolutePath=\\App_Data\\db\.sqlite3$"
                .into()
        ));
        assert!(a.contains(
            &r"-skip:skipAction=Update,objectName=filePath,absolutePath=\\web\.config$".into()
        ));
        assert!(
            !a.iter()
                .any(|r| r.contains("web\\.config$") && r.contains("Delete")),
            "the package always has a web.config: it is never deleted, and the first deploy must add it"
        );
    }

    #[test]
    fn log_file_setting_moves_the_kept_log_path() {
        let folder = server_paths(&manifest("[run]\nlog-file = \"var/log/app.log\"\n"));
        assert!(
            folder
                .iter()
                .any(|p| p.path == "var/log" && p.kind == Owned::Folder)
        );
        let root = server_paths(&manifest("[run]\nlog-file = \"app.log\"\n"));
        let log = root.iter().find(|p| p.path == "app.log").expect("log");
        assert_eq!(log.kind, Owned::FileAndSiblings);
        assert!(log.covers("app.log.1") && log.covers("app.log.rotate"));
        assert!(!log.covers("app.logger/x") && !log.covers("other.log"));
        let outside = server_paths(&manifest("[run]\nlog-file = 'C:\\logs\\app.log'\n"));
        assert!(!outside.iter().any(|p| p.why.contains("log")));
    }

    #[test]
    fn regexes_escape_everything_but_letters_digits_underscore_dash() {
        assert_eq!(
            path_regex("a b/c,d=e%f.g"),
            r"\\a\x20b\\c\x2Cd\x3De\x25f\.g"
        );
        assert_eq!(path_regex("médias"), r"\\m\u00E9dias");
        for (path, hit, miss) in [
            ("a b/c,d", r"C:\w\App\a b\c,d", r"C:\w\App\a b\c,dx"),
            ("médias", r"D:\x\médias", r"D:\x\medias"),
        ] {
            let re = regex::Regex::new(&format!("{}$", path_regex(path))).expect("compiles");
            assert!(re.is_match(hit) && !re.is_match(miss), "{path}");
        }
    }

    #[test]
    fn folder_rules_cover_the_folder_and_its_contents_only() {
        let rules = skip_rules(&[ServerPath {
            path: "media".into(),
            kind: Owned::Folder,
            why: String::new(),
            shipped: false,
        }]);
        let dir = regex::Regex::new(&rules[0].absolute_path).expect("re");
        let file = regex::Regex::new(&rules[1].absolute_path).expect("re");
        assert!(dir.is_match(r"C:\inetpub\wwwroot\Shop\media"));
        assert!(dir.is_match(r"C:\inetpub\wwwroot\Shop\media\2024"));
        assert!(!dir.is_match(r"C:\inetpub\wwwroot\Shop\mediakit"));
        assert!(file.is_match(r"C:\inetpub\wwwroot\Shop\media\a.jpg"));
        assert!(!file.is_match(r"C:\inetpub\wwwroot\Shop\media.txt"));
    }
}
