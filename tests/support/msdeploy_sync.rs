//! `msdeploy -verb:sync -source:package=<zip> -dest:auto -useChecksum -skip:…`, emulated on a
//! Linux folder for the iisApp content of an App Gallery package: what the redeploy tests
//! replay. It parses the `-skip:` arguments itself (from the deploy.cmd the package writes), so
//! it shares no code with the generator it checks.
//!
//! The rules implemented, from web-deploy-at-scale.md §3 and Richard Szalay's "Demystifying
//! MSDeploy skip rules" (his examples are the reference behaviour):
//! - sync mirrors: an object only the source has is added; one only the destination has is
//!   deleted; a file both have is updated when its bytes differ (`-useChecksum`);
//! - the delete of a folder takes everything in it: the rules of its children are never asked
//!   ("delete rules on a child are only processed if the parent is not being deleted");
//! - a directive is `attr=value` pairs separated by commas: `objectName` (a regex over the
//!   provider name, `dirPath` / `filePath`), `absolutePath` (a .NET regex over the object's
//!   destination path with `\` separators, unanchored, case-sensitive as .NET's default), and
//!   `skipAction` (`Delete`, `Update` or `AddChild`: that action on a matching object is
//!   skipped). Without `skipAction`, a matching object is left out of the comparison on both
//!   sides: never added, updated nor deleted;
//! - the destination folder stands at `C:\inetpub\wwwroot\<name>` for the regexes.
//!
//! What this cannot tell (only a Windows run can): msdeploy's real regex options, and its
//! timestamp rule without `-useChecksum`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use regex::Regex;

/// What a directive skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Delete,
    Update,
    AddChild,
}

/// One `-skip:` directive.
#[derive(Debug)]
pub struct Skip {
    object: Option<Regex>,
    absolute_path: Option<Regex>,
    action: Option<Action>,
}

impl Skip {
    /// Parses `-skip:attr=value,attr=value` (or the part after `-skip:`).
    pub fn parse(arg: &str) -> Result<Skip, String> {
        let body = arg.strip_prefix("-skip:").unwrap_or(arg);
        let mut skip = Skip {
            object: None,
            absolute_path: None,
            action: None,
        };
        for pair in body.split(',') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not attr=value in {arg}"))?;
            let value = value.trim_matches('\'');
            match key.to_ascii_lowercase().as_str() {
                "objectname" => {
                    skip.object = Some(
                        Regex::new(&format!("(?i)^(?:{value})$"))
                            .map_err(|e| format!("objectName: {e}"))?,
                    )
                }
                "absolutepath" => {
                    skip.absolute_path =
                        Some(Regex::new(value).map_err(|e| format!("absolutePath {value}: {e}"))?)
                }
                "skipaction" => {
                    skip.action = Some(match value.to_ascii_lowercase().as_str() {
                        "delete" => Action::Delete,
                        "update" => Action::Update,
                        "addchild" => Action::AddChild,
                        other => return Err(format!("unknown skipAction {other}")),
                    })
                }
                other => return Err(format!("unknown skip attribute {other}")),
            }
        }
        Ok(skip)
    }

    fn matches(&self, object: &str, path: &str) -> bool {
        self.object.as_ref().is_none_or(|r| r.is_match(object))
            && self.absolute_path.as_ref().is_none_or(|r| r.is_match(path))
    }
}

/// What a sync did, each as `Windows path`.
#[derive(Debug, Default)]
pub struct Report {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub skipped: Vec<String>,
}

#[derive(Debug)]
enum Node {
    Dir(BTreeMap<String, Node>),
    File(Vec<u8>),
}

/// The iisApp folder `<app>/` of a package zip as a tree.
fn source_tree(zip: &Path, app: &str) -> BTreeMap<String, Node> {
    let file = std::fs::File::open(zip).expect("open zip");
    let mut archive = zip::ZipArchive::new(file).expect("read zip");
    let mut root = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let Some(rel) = entry.name().strip_prefix(&format!("{app}/")) else {
            continue;
        };
        let rel = rel.to_string();
        if rel.is_empty() {
            continue;
        }
        let is_dir = rel.ends_with('/');
        let parts: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
        let mut dir = &mut root;
        for p in &parts[..parts.len() - 1] {
            dir = match dir
                .entry(p.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()))
            {
                Node::Dir(d) => d,
                Node::File(_) => panic!("{rel}: a file is also a folder"),
            };
        }
        let last = parts[parts.len() - 1].to_string();
        if is_dir {
            dir.entry(last)
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
        } else {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("inflate");
            dir.insert(last, Node::File(bytes));
        }
    }
    root
}

struct Sync<'a> {
    skips: &'a [Skip],
    windows_root: String,
    report: Report,
}

impl Sync<'_> {
    fn skipped(&mut self, action: Action, object: &str, path: &str) -> bool {
        let hit = self
            .skips
            .iter()
            .any(|s| s.action.is_none_or(|a| a == action) && s.matches(object, path));
        if hit {
            self.report.skipped.push(format!("{action:?} {path}"));
        }
        hit
    }

    fn excluded(&self, object: &str, path: &str) -> bool {
        self.skips
            .iter()
            .any(|s| s.action.is_none() && s.matches(object, path))
    }

    fn windows(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.windows_root.clone()
        } else {
            format!("{}\\{}", self.windows_root, rel.replace('/', "\\"))
        }
    }

    fn add(&mut self, source: &Node, dest: &Path, rel: &str) {
        let object = if matches!(source, Node::Dir(_)) {
            "dirPath"
        } else {
            "filePath"
        };
        let win = self.windows(rel);
        if self.excluded(object, &win) || self.skipped(Action::AddChild, object, &win) {
            return;
        }
        self.report.added.push(win);
        match source {
            Node::File(bytes) => std::fs::write(dest, bytes).expect("write"),
            Node::Dir(children) => {
                std::fs::create_dir_all(dest).expect("mkdir");
                for (name, child) in children {
                    self.add(child, &dest.join(name), &join(rel, name));
                }
            }
        }
    }

    fn delete(&mut self, dest: &Path, rel: &str) {
        let object = if dest.is_dir() { "dirPath" } else { "filePath" };
        let win = self.windows(rel);
        if self.excluded(object, &win) || self.skipped(Action::Delete, object, &win) {
            return;
        }
        self.report.deleted.push(win);
        if dest.is_dir() {
            std::fs::remove_dir_all(dest).expect("rmdir");
        } else {
            std::fs::remove_file(dest).expect("rm");
        }
    }

    fn dir(&mut self, source: &BTreeMap<String, Node>, dest: &Path, rel: &str) {
        let mut names: Vec<String> = source.keys().cloned().collect();
        for e in std::fs::read_dir(dest).expect("read_dir").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let (path, child_rel) = (dest.join(&name), join(rel, &name));
            match (source.get(&name), path.symlink_metadata().is_ok()) {
                (Some(node), false) => self.add(node, &path, &child_rel),
                (None, true) => self.delete(&path, &child_rel),
                (Some(Node::Dir(children)), true) if path.is_dir() => {
                    let win = self.windows(&child_rel);
                    if !self.excluded("dirPath", &win) {
                        self.dir(children, &path, &child_rel);
                    }
                }
                (Some(Node::File(bytes)), true) if path.is_file() => {
                    let win = self.windows(&child_rel);
                    let same = std::fs::read(&path).is_ok_and(|b| &b == bytes);
                    if same
                        || self.excluded("filePath", &win)
                        || self.skipped(Action::Update, "filePath", &win)
                    {
                        continue;
                    }
                    std::fs::write(&path, bytes).expect("update");
                    self.report.updated.push(win);
                }
                (Some(node), true) => {
                    // A file where the package has a folder, or the other way round.
                    self.delete(&path, &child_rel);
                    if !path.exists() {
                        self.add(node, &path, &child_rel);
                    }
                }
                (None, false) => {}
            }
        }
    }
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Syncs the `<app>/` folder of `zip` into `dest` (created if missing) with `skips`.
pub fn sync(zip: &Path, app: &str, dest: &Path, skips: &[Skip]) -> Report {
    let source = source_tree(zip, app);
    std::fs::create_dir_all(dest).expect("mkdir dest");
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = Sync {
        skips,
        windows_root: format!(r"C:\inetpub\wwwroot\{name}"),
        report: Report::default(),
    };
    s.dir(&source, dest, "");
    s.report
}

/// The `-skip:` arguments a generated deploy.cmd passes (its `set SKIPS=%SKIPS% "…"` lines),
/// batch-unescaped.
pub fn skips_of_deploy_cmd(deploy_cmd: &Path) -> Vec<String> {
    std::fs::read_to_string(deploy_cmd)
        .expect("read deploy.cmd")
        .lines()
        .filter_map(|l| l.strip_prefix("set SKIPS=%SKIPS% \""))
        .map(|rest| rest.trim_end_matches('"').replace("%%", "%"))
        .collect()
}

#[test]
fn szalay_examples_behave_as_documented() {
    // His source: bin/App.dll, Views/Home/Index.cshtml, Web.config; destination:
    // App_Data/data.bin, Web.config (older).
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip_path = tmp.path().join("p.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("A/bin/App.dll", "dll"),
            ("A/Views/Home/Index.cshtml", "view"),
            ("A/Web.config", "new"),
        ] {
            w.start_file(name, o).expect("start");
            std::io::Write::write_all(&mut w, body.as_bytes()).expect("write");
        }
        w.finish().expect("finish");
    }
    let fresh = |name: &str| {
        let d = tmp.path().join(name).join("A");
        std::fs::create_dir_all(d.join("App_Data")).expect("mkdir");
        std::fs::write(d.join("App_Data/data.bin"), "data").expect("w");
        std::fs::write(d.join("Web.config"), "old").expect("w");
        d
    };
    let skip = |s: &str| Skip::parse(s).expect("parse");
    // No rules: the destination-only folder goes.
    let d = fresh("none");
    sync(&zip_path, "A", &d, &[]);
    assert!(!d.join("App_Data").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("Web.config")).expect("r"),
        "new"
    );
    // A Delete rule on the file does not save it: its folder is deleted whole.
    let d = fresh("file");
    sync(
        &zip_path,
        "A",
        &d,
        &[skip(
            r"-skip:objectName=filePath,absolutePath=data\.bin$,skipAction=Delete",
        )],
    );
    assert!(!d.join("App_Data").exists());
    // A Delete rule on the folder keeps it and its file.
    let d = fresh("dir");
    sync(
        &zip_path,
        "A",
        &d,
        &[skip(
            r"-skip:objectName=dirPath,absolutePath=App_Data$,skipAction=Delete",
        )],
    );
    assert!(d.join("App_Data/data.bin").is_file());
    // Update skips the update of a file both have, AddChild the addition of a new one.
    let d = fresh("update");
    let r = sync(
        &zip_path,
        "A",
        &d,
        &[
            skip(r"-skip:objectName=filePath,absolutePath=Web\.config$,skipAction=Update"),
            skip(r"-skip:objectName=filePath,absolutePath=Index\.cshtml$,skipAction=AddChild"),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(d.join("Web.config")).expect("r"),
        "old"
    );
    assert!(!d.join("Views/Home/Index.cshtml").exists());
    assert!(d.join("bin/App.dll").is_file(), "{r:?}");
}
