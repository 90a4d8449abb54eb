//! `[[iis.static]]`: folders IIS serves itself. Each `path` is a folder of the app and, because
//! IIS maps an application's URLs onto its folder, also the URL path it is served at. It must
//! stay inside the app, never be the app folder itself (that would publish the sources and
//! iiswsgi.toml), the venv or the log folder, and appear once.

use std::collections::HashMap;
use std::ops::Range;

use super::Validator;
use crate::manifest::{Run, StaticFolder, Venv, Wsgi, raw};

impl Validator<'_> {
    pub(super) fn static_files(&mut self, list: &[raw::RawStatic]) -> Option<Vec<StaticFolder>> {
        let mut out = Vec::new();
        let mut ok = true;
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for (n, s) in list.iter().enumerate() {
            let Some(p) = &s.path else {
                if !self
                    .removed
                    .contains(&format!("iis.static[{}].path", n + 1))
                {
                    let span = self.header_span("[iis.static]");
                    self.error(
                        span,
                        "missing required key `path` in `[[iis.static]]`",
                        "add `path = \"static\"` (a folder of the app, served by IIS at the same URL path)",
                    );
                }
                ok = false;
                continue;
            };
            let Some(path) = self.rel_path(p, "iis.static.path", "the app folder") else {
                ok = false;
                continue;
            };
            if path.as_str().is_empty() {
                self.error(
                    p.span(),
                    "`iis.static.path` names the app folder itself",
                    "name the folder of static files, e.g. \"static\"; serving the app folder would publish the Python sources and iiswsgi.toml",
                );
                ok = false;
                continue;
            }
            if let Some(c) = path.as_str().chars().find(|c| matches!(c, '%' | '#' | ';')) {
                self.error(
                    p.span(),
                    format!("`iis.static.path` contains `{c}`, which cannot appear as itself in a URL path"),
                    "rename the folder with letters, digits, `-`, `_` and `.`",
                );
                ok = false;
                continue;
            }
            let key = path.as_str().to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                let (line, _) = self.src.line_col(first.start);
                self.error(
                    p.span(),
                    format!("`iis.static` path `{path}` is listed twice"),
                    format!("remove one; the other is on line {line} (IIS compares paths case-insensitively)"),
                );
                ok = false;
                continue;
            }
            if let Some((outer, _)) = seen.iter().find(|(k, _)| {
                key.starts_with(&format!("{k}/")) || k.starts_with(&format!("{key}/"))
            }) {
                let outer = outer.clone();
                self.warn(
                    p.span(),
                    format!("`iis.static` paths `{path}` and `{outer}` overlap"),
                    "a <location> covers every folder under it; list the outer folder only",
                );
            }
            seen.insert(key, p.span());
            out.push(StaticFolder { path });
        }
        ok.then_some(out)
    }

    /// A static folder must not publish the venv or the log folder.
    pub(super) fn static_overlaps(&mut self, r: &raw::RawManifest, wsgi: Option<&Wsgi>, run: &Run) {
        let Some(list) = r.iis.as_ref().and_then(|i| i.static_files.as_ref()) else {
            return;
        };
        let mut private: Vec<(String, &str)> = Vec::new();
        if let Some(Venv::InApp(v)) = wsgi.and_then(|w| w.venv.as_ref()) {
            private.push((v.as_str().to_ascii_lowercase(), "the venv"));
        }
        let log_dir = match &run.log_file {
            Some(f) => f
                .rsplit_once(['/', '\\'])
                .map_or("", |(d, _)| d)
                .to_string(),
            None => "logs".to_string(),
        };
        if !log_dir.is_empty() {
            private.push((
                log_dir.replace('\\', "/").to_ascii_lowercase(),
                "the log folder",
            ));
        }
        for p in list.iter().filter_map(|s| s.path.as_ref()) {
            let key = p.get().trim_matches('/').to_ascii_lowercase();
            let key = key.trim_start_matches("./");
            for (dir, what) in &private {
                let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
                if !dir.is_empty() && (inside(key, dir) || inside(dir, key)) {
                    self.error(
                        p.span(),
                        format!("`iis.static` path `{}` would publish {what} (`{dir}`)", p.get()),
                        "serve only the folder of static files (Django's STATIC_ROOT), never the venv or the logs",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::Manifest;

    const HEAD: &str =
        "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\nvenv = \".venv\"\n";

    fn errors(tail: &str) -> Vec<(usize, usize, String)> {
        match Manifest::parse(&format!("{HEAD}{tail}"), Path::new("iiswsgi.toml")) {
            Ok(m) => panic!("accepted: {:?}", m.iis.static_files),
            Err(e) => e
                .diagnostics()
                .iter()
                .filter(|d| d.is_error())
                .map(|d| (d.line, d.column, d.message.clone()))
                .collect(),
        }
    }

    #[test]
    fn static_folders_are_read_and_normalised() {
        let m = Manifest::parse(
            &format!("{HEAD}[[iis.static]]\npath = \"./static/\"\n[[iis.static]]\npath = \"assets/img\"\n"),
            Path::new("iiswsgi.toml"),
        )
        .expect("valid");
        let paths: Vec<&str> = m.iis.static_files.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["static", "assets/img"]);
    }

    #[test]
    fn static_path_errors_point_at_the_value() {
        assert_eq!(
            errors("[[iis.static]]\npath = \"../static\"\n"),
            [(
                8,
                8,
                "`iis.static.path` must stay inside the app folder, but \"../static\" uses `..`"
                    .to_string()
            )]
        );
        assert_eq!(
            errors("[[iis.static]]\npath = \".\"\n"),
            [(
                8,
                8,
                "`iis.static.path` names the app folder itself".to_string()
            )]
        );
        assert_eq!(
            errors("[[iis.static]]\npath = \"st%61tic\"\n"),
            [(
                8,
                8,
                "`iis.static.path` contains `%`, which cannot appear as itself in a URL path"
                    .to_string()
            )]
        );
        assert_eq!(
            errors("[[iis.static]]\npath = \"static\"\n[[iis.static]]\npath = \"Static\"\n"),
            [(
                10,
                8,
                "`iis.static` path `Static` is listed twice".to_string()
            )]
        );
        let unknown = errors("[[iis.static]]\nfolder = \"static\"\n");
        assert_eq!(
            unknown[0].2,
            "missing required key `path` in `[[iis.static]]`"
        );
        assert_eq!(unknown[1].2, "unknown key `folder` in `[iis.static[1]]`");
    }

    #[test]
    fn static_path_must_not_publish_the_venv_or_the_logs() {
        assert_eq!(
            errors("[[iis.static]]\npath = \".venv/lib\"\n"),
            [(
                8,
                8,
                "`iis.static` path `.venv/lib` would publish the venv (`.venv`)".to_string()
            )]
        );
        assert_eq!(
            errors("[[iis.static]]\npath = \"logs\"\n"),
            [(
                8,
                8,
                "`iis.static` path `logs` would publish the log folder (`logs`)".to_string()
            )]
        );
    }
}
