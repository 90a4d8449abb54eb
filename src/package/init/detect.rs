//! What a Python project already says about itself: name, version, description, author and
//! dependencies from `pyproject.toml`, `setup.cfg` or `setup.py`, its local venv, and where
//! its WSGI callable is: a module of the project, or a mod_wsgi script (`*.wsgi`, as Trac,
//! MoinMoin and Mercurial's hgweb ship), which `init` then serves through a small shim module
//! because a `.wsgi` file cannot be imported by name.
//!
//! Reading only: `setup.py` is scanned with regular expressions for literal keyword
//! arguments and never executed. The walk is breadth-first (every file of a folder level
//! before the next level, so a shallow `wsgi.py` is found even in a huge tree), skips virtual
//! environments, VCS folders, `node_modules` and `site-packages`, and is bounded in depth and
//! file count so `init` in a large tree stays quick. An `asgi.py` is never a candidate: its
//! `application` is an ASGI app, which fails with a `TypeError` at request time.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

/// Deepest folder level searched for Python files (the project folder is level 0).
pub const MAX_DEPTH: usize = 6;
/// Most `.py` and `.wsgi` files read while looking for the WSGI callable.
pub const MAX_PY_FILES: usize = 5000;
/// Larger `.py` files are not read.
pub const MAX_PY_BYTES: u64 = 1024 * 1024;

/// Folder names never searched.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "node_modules",
    "site-packages",
    "__pycache__",
    ".tox",
    ".nox",
    "dist",
    "build",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".idea",
    ".vscode",
];

/// One metadata value and where it came from (`pyproject.toml [project]`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The value.
    pub value: String,
    /// Where it was read, for the report.
    pub source: String,
}

/// Project metadata; each field from the first source that has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Distribution name.
    pub name: Option<Found>,
    /// Version.
    pub version: Option<Found>,
    /// Summary.
    pub description: Option<Found>,
    /// Author (`Name <email>`).
    pub author: Option<Found>,
    /// License.
    pub license: Option<Found>,
    /// Home page.
    pub homepage: Option<Found>,
    /// `[project] dependencies` of pyproject.toml (PEP 508 strings).
    pub dependencies: Vec<String>,
    /// Files that were read.
    pub files: Vec<String>,
}

impl Metadata {
    fn merge(&mut self, other: Metadata) {
        fn take(a: &mut Option<Found>, b: Option<Found>) {
            if a.is_none() {
                *a = b;
            }
        }
        take(&mut self.name, other.name);
        take(&mut self.version, other.version);
        take(&mut self.description, other.description);
        take(&mut self.author, other.author);
        take(&mut self.license, other.license);
        take(&mut self.homepage, other.homepage);
        if self.dependencies.is_empty() {
            self.dependencies = other.dependencies;
        }
        self.files.extend(other.files);
    }
}

/// Which convention the callable was found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Framework {
    /// `<pkg>/wsgi.py` with `application`.
    Django,
    /// `app = Flask(...)` at module level.
    Flask,
    /// `def create_app(...)` returning a Flask app.
    FlaskFactory,
    /// `app = Bottle()` / `falcon.App()`.
    OtherFramework,
    /// A mod_wsgi script (`*.wsgi`) defining `application`, served through a shim module:
    /// after the frameworks' own objects (a `.wsgi` wrapping a Flask app often names server
    /// paths that do not exist on IIS), before a bare `application = ...`.
    ModWsgi,
    /// `application = ...` or `def application(environ, start_response)`.
    Plain,
    /// `def main(global_config, **settings)`: a PasteDeploy factory, not a WSGI app.
    Pyramid,
}

impl Framework {
    /// Human name.
    pub fn label(self) -> &'static str {
        match self {
            Framework::Django => "Django",
            Framework::ModWsgi => "mod_wsgi script",
            Framework::Flask => "Flask",
            Framework::FlaskFactory => "Flask (app factory)",
            Framework::OtherFramework => "WSGI framework",
            Framework::Plain => "plain WSGI",
            Framework::Pyramid => "Pyramid",
        }
    }
}

/// A WSGI callable found in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// How it was recognised.
    pub framework: Framework,
    /// Dotted module path.
    pub module: String,
    /// Attribute in the module.
    pub attribute: String,
    /// Call it once as a factory.
    pub call: bool,
    /// The file, relative to the project, `/` separators.
    pub file: String,
    /// 1-based line of the match.
    pub line: usize,
    /// The matched source line, trimmed.
    pub evidence: String,
    /// The `sys.path` folder the module is relative to, relative to the project ("" = the
    /// project folder).
    pub python_path: String,
}

impl Candidate {
    /// `module:attribute` (with `()` for a factory).
    pub fn target(&self) -> String {
        format!(
            "{}:{}{}",
            self.module,
            self.attribute,
            if self.call { "()" } else { "" }
        )
    }
}

/// Everything found.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// The project folder.
    pub dir: PathBuf,
    /// Metadata.
    pub metadata: Metadata,
    /// Callables, best first.
    pub candidates: Vec<Candidate>,
    /// `requirements.txt` when present.
    pub requirements: Option<String>,
    /// `manage.py` exists at the top (Django).
    pub has_manage_py: bool,
    /// The project's own venv (`.venv` or `venv` holding a `pyvenv.cfg`), when there is one.
    pub local_venv: Option<String>,
    /// `asgi.py` files passed over (their `application` is ASGI).
    pub asgi_skipped: Vec<String>,
    /// Python files read.
    pub py_files_read: usize,
    /// The walk stopped at [`MAX_PY_FILES`].
    pub truncated: bool,
    /// Files that could not be read or parsed, with why.
    pub problems: Vec<String>,
}

/// Reads what `dir` says about itself.
pub fn detect(dir: &Path) -> Detection {
    let mut d = Detection {
        dir: dir.to_path_buf(),
        ..Detection::default()
    };
    let pyproject = dir.join("pyproject.toml");
    if let Some(text) = read(&pyproject, &mut d.problems) {
        match pyproject_metadata(&text) {
            Ok(m) => d.metadata.merge(m),
            Err(e) => d.problems.push(format!("pyproject.toml: {e}")),
        }
    }
    if let Some(text) = read(&dir.join("setup.cfg"), &mut d.problems) {
        d.metadata.merge(setup_cfg_metadata(&text));
    }
    if let Some(text) = read(&dir.join("setup.py"), &mut d.problems) {
        d.metadata.merge(setup_py_metadata(&text));
    }
    if dir.join("requirements.txt").is_file() {
        d.requirements = Some("requirements.txt".to_string());
    }
    d.has_manage_py = dir.join("manage.py").is_file();
    d.local_venv = [".venv", "venv"]
        .iter()
        .find(|v| dir.join(v).join("pyvenv.cfg").is_file())
        .map(|v| v.to_string());
    find_callables(&mut d);
    d
}

fn read(path: &Path, problems: &mut Vec<String>) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    match fs_err::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}

fn found(value: &str, source: &str) -> Option<Found> {
    let v = value.trim();
    (!v.is_empty()).then(|| Found {
        value: v.to_string(),
        source: source.to_string(),
    })
}

/// `pyproject.toml` is not TOML; `Display` is the parser's message, without its excerpt.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message())]
pub struct PyprojectError(toml::de::Error);

/// `[project]` (PEP 621), then `[tool.poetry]`.
pub fn pyproject_metadata(text: &str) -> Result<Metadata, PyprojectError> {
    let doc: toml::Table = toml::from_str(text).map_err(PyprojectError)?;
    let mut m = Metadata {
        files: vec!["pyproject.toml".into()],
        ..Metadata::default()
    };
    let s = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(p) = doc.get("project").and_then(|v| v.as_table()) {
        let src = "pyproject.toml [project]";
        m.name = s(p, "name").and_then(|v| found(&v, src));
        m.version = s(p, "version").and_then(|v| found(&v, src));
        m.description = s(p, "description").and_then(|v| found(&v, src));
        m.author = p
            .get("authors")
            .and_then(|a| a.as_array())
            .and_then(|a| a.first())
            .and_then(|a| a.as_table())
            .and_then(|a| {
                let name = s(a, "name");
                let email = s(a, "email");
                match (name, email) {
                    (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
                    (Some(n), None) => Some(n),
                    (None, Some(e)) => Some(e),
                    (None, None) => None,
                }
            })
            .and_then(|v| found(&v, src));
        m.license = match p.get("license") {
            Some(toml::Value::String(l)) => found(l, src),
            Some(toml::Value::Table(t)) => s(t, "text").and_then(|v| found(&v, src)),
            _ => None,
        };
        m.dependencies = p
            .get("dependencies")
            .and_then(|v| v.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|d| d.as_str())
                    .map(str::trim)
                    .filter(|d| !d.is_empty() && !d.chars().any(char::is_control))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        m.homepage = p
            .get("urls")
            .and_then(|u| u.as_table())
            .and_then(|u| {
                u.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("homepage"))
                    .and_then(|(_, v)| v.as_str())
            })
            .and_then(|v| found(v, src));
    }
    if let Some(p) = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|v| v.as_table())
    {
        let src = "pyproject.toml [tool.poetry]";
        let mut poetry = Metadata {
            name: s(p, "name").and_then(|v| found(&v, src)),
            version: s(p, "version").and_then(|v| found(&v, src)),
            description: s(p, "description").and_then(|v| found(&v, src)),
            author: p
                .get("authors")
                .and_then(|a| a.as_array())
                .and_then(|a| a.first())
                .and_then(|a| a.as_str())
                .and_then(|v| found(v, src)),
            license: s(p, "license").and_then(|v| found(&v, src)),
            homepage: s(p, "homepage").and_then(|v| found(&v, src)),
            dependencies: Vec::new(),
            files: Vec::new(),
        };
        poetry.files.clear();
        m.merge(poetry);
    }
    Ok(m)
}

/// `[metadata]` of setup.cfg (INI). `attr:` and `file:` directives are not literal values
/// and are skipped.
pub fn setup_cfg_metadata(text: &str) -> Metadata {
    let mut section = String::new();
    let mut values: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].trim().to_string();
            continue;
        }
        if section != "metadata" || line.starts_with([' ', '\t']) {
            continue; // continuation lines of multi-line values are ignored
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            values.push((
                k.trim().replace('-', "_").to_lowercase(),
                v.trim().to_string(),
            ));
        }
    }
    let src = "setup.cfg [metadata]";
    let get = |k: &str| {
        values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.starts_with("attr:") && !v.starts_with("file:"))
            .and_then(|v| found(v, src))
    };
    let author = match (get("author"), get("author_email")) {
        (Some(a), Some(e)) => Some(Found {
            value: format!("{} <{}>", a.value, e.value),
            source: a.source,
        }),
        (a, e) => a.or(e),
    };
    Metadata {
        name: get("name"),
        version: get("version"),
        description: get("description"),
        author,
        license: get("license"),
        homepage: get("url").or_else(|| get("home_page")),
        dependencies: Vec::new(),
        files: vec!["setup.cfg".into()],
    }
}

/// Literal `name=`, `version=`, `description=`, `author=` keyword arguments in setup.py,
/// found by regex (the file is never run). Computed values are not found.
pub fn setup_py_metadata(text: &str) -> Metadata {
    static KWARG: OnceLock<Regex> = OnceLock::new();
    let re = KWARG.get_or_init(|| {
        re(r#"\b(name|version|description|author|author_email|license|url)\s*=\s*(?:"([^"\\\n]*)"|'([^'\\\n]*)')"#)
    });
    let src = "setup.py";
    let mut m = Metadata {
        files: vec!["setup.py".into()],
        ..Metadata::default()
    };
    let mut email = None;
    for c in re.captures_iter(text) {
        let key = c.get(1).map_or("", |k| k.as_str());
        let value = c.get(2).or_else(|| c.get(3)).map_or("", |v| v.as_str());
        let slot = match key {
            "name" => &mut m.name,
            "version" => &mut m.version,
            "description" => &mut m.description,
            "author" => &mut m.author,
            "license" => &mut m.license,
            "url" => &mut m.homepage,
            "author_email" => &mut email,
            _ => continue,
        };
        if slot.is_none() {
            *slot = found(value, src);
        }
    }
    if let (Some(a), Some(e)) = (&mut m.author, email) {
        a.value = format!("{} <{}>", a.value, e.value);
    }
    m
}

fn re(s: &str) -> Regex {
    match Regex::new(s) {
        Ok(r) => r,
        Err(e) => panic!("built-in regex {s:?} does not compile: {e}"),
    }
}

struct Patterns {
    flask: Regex,
    flask_factory: Regex,
    other: Regex,
    plain_assign: Regex,
    plain_def: Regex,
    django_app: Regex,
    pyramid: Regex,
    asgi: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        flask: re(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:flask\.)?Flask\("),
        flask_factory: re(r"(?m)^def\s+(create_app|make_app)\s*\("),
        other: re(
            r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:bottle\.Bottle|Bottle|falcon\.App|falcon\.API)\(",
        ),
        plain_assign: re(r"(?m)^application\s*=\s*\S"),
        plain_def: re(r"(?m)^def\s+application\s*\(\s*environ\b"),
        django_app: re(r"(?m)^application\s*=\s*(?:get_wsgi_application|StaticFilesHandler|\S)"),
        pyramid: re(r"(?m)^def\s+main\s*\(\s*global_config\b"),
        asgi: re(
            r"(?m)^application\s*=\s*(?:get_asgi_application|ASGIHandler|ProtocolTypeRouter|Starlette|FastAPI|Quart)\b",
        ),
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn skip_dir(path: &Path, name: &str) -> bool {
    SKIP_DIRS.contains(&name) || name.ends_with(".egg-info") || path.join("pyvenv.cfg").is_file()
}

fn find_callables(d: &mut Detection) {
    // Breadth-first: every file of one folder level before the next level.
    let mut queue = VecDeque::from([(d.dir.clone(), 0usize)]);
    'walk: while let Some((folder, depth)) = queue.pop_front() {
        let mut entries: Vec<fs_err::DirEntry> = match fs_err::read_dir(&folder) {
            Ok(list) => list.filter_map(Result::ok).collect(),
            Err(e) => {
                d.problems.push(e.to_string());
                continue;
            }
        };
        entries.sort_by_key(fs_err::DirEntry::file_name);
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH && !skip_dir(&path, &name) {
                    queue.push_back((path, depth + 1));
                }
                continue;
            }
            let script = name.ends_with(".wsgi");
            if !kind.is_file()
                || !(script || name.ends_with(".py"))
                || entry.metadata().is_ok_and(|m| m.len() > MAX_PY_BYTES)
            {
                continue;
            }
            if d.py_files_read >= MAX_PY_FILES {
                d.truncated = true;
                break 'walk;
            }
            d.py_files_read += 1;
            let Ok(text) = fs_err::read_to_string(&path) else {
                continue; // not UTF-8 or unreadable: not a candidate
            };
            let Ok(rel) = path.strip_prefix(&d.dir) else {
                continue;
            };
            let rel_str = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if script {
                scan_wsgi_script(&d.dir, &text, &rel_str, &mut d.candidates);
                continue;
            }
            if name == "asgi.py" {
                if patterns().plain_assign.is_match(&text) {
                    d.asgi_skipped.push(rel_str);
                }
                continue;
            }
            let Some((python_path, module)) = module_of(&d.dir, rel) else {
                continue;
            };
            scan(
                &text,
                &name,
                &rel_str,
                &module,
                &python_path,
                &mut d.candidates,
            );
        }
    }
    d.candidates.sort_by(|a, b| {
        (a.framework, a.file.matches('/').count(), &a.file).cmp(&(
            b.framework,
            b.file.matches('/').count(),
            &b.file,
        ))
    });
}

/// The module `init` writes to serve the mod_wsgi script `rel` (`contrib/hgweb.wsgi` →
/// `hgweb_wsgi`): a Python identifier from the file's stem, not clashing with a file of the
/// project that `init` did not write.
pub fn shim_module(dir: &Path, rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let stem = file.strip_suffix(".wsgi").unwrap_or(file);
    let mut base: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base.insert_str(0, "app_");
    }
    let ours = |name: &str| {
        let path = dir.join(format!("{name}.py"));
        !path.exists() || fs_err::read_to_string(&path).is_ok_and(|t| t.contains(SHIM_MARKER))
    };
    let first = format!("{base}_wsgi");
    if ours(&first) {
        return first;
    }
    (2..100)
        .map(|n| format!("{base}_wsgi{n}"))
        .find(|n| ours(n))
        .unwrap_or_else(|| format!("{base}_wsgi_iiswsgi"))
}

/// A line every shim module `init` writes carries, so a second `init` may rewrite it.
pub const SHIM_MARKER: &str = "Written by `iiswsgi init` to serve the mod_wsgi script";

/// mod_wsgi's convention: the script defines `application` at the top level.
fn scan_wsgi_script(dir: &Path, text: &str, rel: &str, out: &mut Vec<Candidate>) {
    let p = patterns();
    if p.asgi.is_match(text) {
        return;
    }
    let Some(m) = p.plain_def.find(text).or_else(|| {
        static DEF: OnceLock<Regex> = OnceLock::new();
        DEF.get_or_init(|| re(r"(?m)^def\s+application\s*\("))
            .find(text)
            .or_else(|| p.plain_assign.find(text))
    }) else {
        return;
    };
    let (line, evidence) = line_of(text, m.start());
    out.push(Candidate {
        framework: Framework::ModWsgi,
        module: shim_module(dir, rel),
        attribute: "application".to_string(),
        call: false,
        file: rel.to_string(),
        line,
        evidence,
        python_path: String::new(),
    });
}

/// The module path of `rel` (a `.py` file), and the folder it is importable from: the first
/// folder above it without `__init__.py`.
fn module_of(dir: &Path, rel: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (file, folders) = parts.split_last()?;
    let stem = file.strip_suffix(".py")?;
    let mut start = folders.len();
    while start > 0 {
        let pkg: PathBuf = folders[..start].iter().collect();
        if dir.join(&pkg).join("__init__.py").is_file() {
            start -= 1;
        } else {
            break;
        }
    }
    let mut module: Vec<&str> = folders[start..].iter().map(String::as_str).collect();
    if stem != "__init__" {
        module.push(stem);
    }
    if module.is_empty() || !module.iter().all(|m| is_identifier(m)) {
        return None;
    }
    Some((folders[..start].join("/"), module.join(".")))
}

fn line_of(text: &str, at: usize) -> (usize, String) {
    let line = text[..at].matches('\n').count() + 1;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    (line, text[start..end].trim().to_string())
}

fn scan(
    text: &str,
    file_name: &str,
    rel: &str,
    module: &str,
    python_path: &str,
    out: &mut Vec<Candidate>,
) {
    let p = patterns();
    let mut push = |framework, attribute: &str, call, at: usize| {
        let (line, evidence) = line_of(text, at);
        out.push(Candidate {
            framework,
            module: module.to_string(),
            attribute: attribute.to_string(),
            call,
            file: rel.to_string(),
            line,
            evidence,
            python_path: python_path.to_string(),
        });
    };
    if file_name == "wsgi.py"
        && let Some(m) = p.django_app.find(text)
        && text.contains("django")
    {
        push(Framework::Django, "application", false, m.start());
        return;
    }
    if let Some(c) = p.flask.captures(text)
        && let Some(var) = c.get(1)
    {
        push(Framework::Flask, var.as_str(), false, var.start());
        return;
    }
    if text.contains("Flask(")
        && let Some(c) = p.flask_factory.captures(text)
        && let Some(name) = c.get(1)
    {
        push(Framework::FlaskFactory, name.as_str(), true, name.start());
        return;
    }
    if let Some(c) = p.other.captures(text)
        && let Some(var) = c.get(1)
    {
        push(Framework::OtherFramework, var.as_str(), false, var.start());
        return;
    }
    if let Some(m) = p
        .plain_def
        .find(text)
        .or_else(|| p.plain_assign.find(text).filter(|_| !p.asgi.is_match(text)))
    {
        push(Framework::Plain, "application", false, m.start());
        return;
    }
    if let Some(m) = p.pyramid.find(text) {
        push(Framework::Pyramid, "main", false, m.start());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyproject_reads_pep621_then_poetry() {
        let m = pyproject_metadata(
            r#"
[project]
name = "shop"
authors = [{ name = "Ann", email = "ann@example.com" }]
[tool.poetry]
name = "ignored"
version = "2.0"
"#,
        )
        .unwrap();
        assert_eq!(m.name.unwrap().value, "shop");
        assert_eq!(m.version.as_ref().unwrap().value, "2.0");
        assert_eq!(m.version.unwrap().source, "pyproject.toml [tool.poetry]");
        assert_eq!(m.author.unwrap().value, "Ann <ann@example.com>");
    }

    #[test]
    fn setup_cfg_skips_attr_directives_and_other_sections() {
        let m = setup_cfg_metadata(
            "[options]\nname = nope\n[metadata]\nname = site\nversion = attr: site.__version__\nauthor = Bo\nauthor_email = bo@x.org\n",
        );
        assert_eq!(m.name.unwrap().value, "site");
        assert!(m.version.is_none());
        assert_eq!(m.author.unwrap().value, "Bo <bo@x.org>");
    }

    #[test]
    fn setup_py_takes_literal_kwargs_only() {
        let m = setup_py_metadata(
            "from setuptools import setup\nsetup(\n    name='legacy-app',\n    version=read_version(),\n    description=\"Old style\",\n)\n",
        );
        assert_eq!(m.name.unwrap().value, "legacy-app");
        assert!(m.version.is_none());
        assert_eq!(m.description.unwrap().value, "Old style");
    }

    #[test]
    fn scan_recognises_each_convention() {
        let mut out = Vec::new();
        scan(
            "from flask import Flask\napp = Flask(__name__)\n",
            "hello.py",
            "hello.py",
            "hello",
            "",
            &mut out,
        );
        scan(
            "def create_app():\n    return Flask(__name__)\n",
            "f.py",
            "f.py",
            "f",
            "",
            &mut out,
        );
        scan(
            "def application(environ, start_response):\n    pass\n",
            "a.py",
            "a.py",
            "a",
            "",
            &mut out,
        );
        scan(
            "def main(global_config, **settings):\n    pass\n",
            "p.py",
            "p.py",
            "p",
            "",
            &mut out,
        );
        scan(
            "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
            "wsgi.py",
            "s/wsgi.py",
            "s.wsgi",
            "",
            &mut out,
        );
        let got: Vec<(Framework, String, usize)> = out
            .iter()
            .map(|c| (c.framework, c.target(), c.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (Framework::Flask, "hello:app".to_string(), 2),
                (Framework::FlaskFactory, "f:create_app()".to_string(), 1),
                (Framework::Plain, "a:application".to_string(), 1),
                (Framework::Pyramid, "p:main".to_string(), 1),
                (Framework::Django, "s.wsgi:application".to_string(), 2),
            ]
        );
    }
}
