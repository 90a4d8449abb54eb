//! `[package]`: the folder to package, the include and exclude globs, the requirements file
//! and the post-install commands.

use std::path::PathBuf;

use globset::{GlobSet, GlobSetBuilder};

use super::values::is_absolute_any;
use super::{Sp, Validator};
use crate::manifest::{DEFAULT_EXCLUDES, Diagnostic, Package, raw};

impl Validator<'_> {
    pub(super) fn package(&mut self, p: Option<&raw::RawPackage>) -> Option<Package> {
        let default_p = raw::RawPackage::default();
        let p = p.unwrap_or(&default_p);
        let root = match &p.root {
            None => Some(PathBuf::from(".")),
            Some(r) if self.is_todo(r) => None,
            Some(r) => {
                let s = r.get();
                if s.trim().is_empty() || is_absolute_any(s) {
                    self.error(
                        r.span(),
                        "`package.root` must be a relative folder",
                        "give the folder to package relative to this file, e.g. \".\" or \"src\"",
                    );
                    None
                } else {
                    Some(PathBuf::from(s.replace('\\', "/")))
                }
            }
        };
        let include_src: Vec<Sp<String>> = match &p.include {
            Some(list) => list.clone(),
            None => vec![Sp::new(0..0, "**".to_string())],
        };
        let include = self.globs(&include_src, "package.include");
        let mut exclude_src: Vec<Sp<String>> = Vec::new();
        if p.default_excludes.unwrap_or(true) {
            exclude_src.extend(
                DEFAULT_EXCLUDES
                    .iter()
                    .map(|s| Sp::new(0..0, s.to_string())),
            );
        }
        exclude_src.extend(p.exclude.iter().flatten().cloned());
        let exclude = self.globs(&exclude_src, "package.exclude");
        let requirements = p
            .requirements
            .as_ref()
            .and_then(|r| self.rel_path(r, "package.requirements", "`package.root`"));
        let mut post_install = Vec::new();
        for c in p.post_install.iter().flatten() {
            if self.is_todo(c) {
                continue;
            }
            if c.get().trim().is_empty() {
                self.error(
                    c.span(),
                    "`package.post-install` has an empty command",
                    "remove the empty string",
                );
            } else if c.get().contains('\0') || c.get().contains('\n') {
                self.error(
                    c.span(),
                    "`package.post-install` commands must be one line",
                    "split it into several list entries",
                );
            } else {
                post_install.push(c.get().clone());
            }
        }
        let attempts = self.int(
            p.install_wait_attempts.as_ref(),
            "package.install-wait-attempts",
            (1, 1000),
            180,
            "MSDeploy polls the post-install step this many times",
        );
        let interval = self.int(
            p.install_wait_interval_ms.as_ref(),
            "package.install-wait-interval-ms",
            (100, 600_000),
            5000,
            "milliseconds between MSDeploy's polls",
        );
        let (include, include_set) = include?;
        let (exclude, exclude_set) = exclude?;
        Some(Package {
            root: root?,
            include,
            exclude,
            requirements,
            post_install,
            install_wait_attempts: attempts? as u32,
            install_wait_interval_ms: interval? as u32,
            include_set,
            exclude_set,
        })
    }

    fn globs(&mut self, list: &[Sp<String>], key: &str) -> Option<(Vec<String>, GlobSet)> {
        let mut builder = GlobSetBuilder::new();
        let mut out = Vec::new();
        let mut ok = true;
        for g in list {
            if g.get().contains('\\') {
                self.error(
                    g.span(),
                    format!("`{key}` glob {:?} uses `\\`", g.get()),
                    format!(
                        "globs use `/` on every platform: {:?}",
                        g.get().replace('\\', "/")
                    ),
                );
                ok = false;
                continue;
            }
            let pattern = g.get().trim_end_matches('/');
            match globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
            {
                Ok(glob) => {
                    builder.add(glob);
                    out.push(g.get().clone());
                }
                Err(e) => {
                    self.push(
                        Diagnostic::error(
                            self.src,
                            g.span(),
                            format!("`{key}` has an invalid glob {:?}", g.get()),
                        )
                        .with_note(e.kind().to_string())
                        .with_help(
                            "globs use `*` (within a folder), `**` (any depth), `?` and `[abc]`",
                        ),
                    );
                    ok = false;
                }
            }
        }
        match builder.build() {
            Ok(set) if ok => Some((out, set)),
            _ => None,
        }
    }
}
