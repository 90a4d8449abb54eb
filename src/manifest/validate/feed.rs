//! `[feed]`: the WebPI feed's URLs, dependencies, keywords, summary, start page and language.

use super::Validator;
use crate::manifest::{BUILTIN_DEPENDENCIES, Feed, raw};

impl Validator<'_> {
    pub(super) fn feed(&mut self, f: Option<&raw::RawFeed>) -> Feed {
        let declared = f.is_some();
        let default_f = raw::RawFeed::default();
        let f = f.unwrap_or(&default_f);
        let download_base_url = f.download_base_url.as_ref().and_then(|u| {
            let mut url = self.url(u, "feed.download-base-url")?;
            if !url.0.ends_with('/') {
                url.0.push('/');
            }
            Some(url)
        });
        let feed_url = f
            .feed_url
            .as_ref()
            .and_then(|u| self.url(u, "feed.feed-url"));
        let mut dependencies: Vec<String> = Vec::new();
        for d in f.dependencies.iter().flatten() {
            let s = d.get();
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                self.error(
                    d.span(),
                    format!("`feed.dependencies` entry {s:?} is not a WebPI productId"),
                    "productIds are letters, digits, `_`, `.` and `-`, e.g. \"UrlRewrite2\"",
                );
            } else if BUILTIN_DEPENDENCIES
                .iter()
                .any(|b| b.eq_ignore_ascii_case(s))
            {
                self.warn(
                    d.span(),
                    format!("`{s}` is already a dependency of every iiswsgi feed entry"),
                    "remove it",
                );
            } else if dependencies.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                self.warn(
                    d.span(),
                    format!("`{s}` is listed twice"),
                    "remove the duplicate",
                );
            } else {
                dependencies.push(s.clone());
            }
        }
        let mut keywords = Vec::new();
        for k in f.keywords.iter().flatten() {
            if k.get().trim().is_empty() {
                self.error(
                    k.span(),
                    "`feed.keywords` has an empty keyword",
                    "remove it",
                );
            } else {
                keywords.push(k.get().trim().to_string());
            }
        }
        let long_summary = self.text(f.long_summary.as_ref(), "feed.long-summary");
        let start_page = match &f.start_page {
            None => String::new(),
            Some(s) => {
                let t = s.get().trim_start_matches('/');
                if t.contains("://") || t.chars().any(|c| c.is_whitespace() || c == '\\') {
                    self.error(
                        s.span(),
                        "`feed.start-page` must be a path relative to the app",
                        "e.g. \"admin/\"; leave it out to open the app's root",
                    );
                }
                t.to_string()
            }
        };
        let language = match &f.language {
            None => "en".to_string(),
            Some(l) => {
                let ok = {
                    let mut parts = l.get().split('-');
                    let first_ok = parts.next().is_some_and(|p| {
                        (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase())
                    });
                    first_ok
                        && parts.all(|p| {
                            (2..=8).contains(&p.len())
                                && p.chars().all(|c| c.is_ascii_alphanumeric())
                        })
                };
                if !ok {
                    self.error(
                        l.span(),
                        format!("`feed.language` {:?} is not a language id", l.get()),
                        "use a lower-case language id such as \"en\" or \"de\"",
                    );
                }
                l.get().clone()
            }
        };
        Feed {
            declared,
            download_base_url,
            feed_url,
            dependencies,
            keywords,
            long_summary,
            start_page,
            language,
        }
    }
}
