//! `[app]`: the name (also the IIS folder and WebPI productId), the version, the display
//! text and links, and the feed's icon and screenshot.

use std::sync::OnceLock;

use regex::Regex;

use super::values::regex;
use super::{Sp, Validator};
use crate::manifest::{App, AppName, Asset, Version, raw};

impl Validator<'_> {
    pub(super) fn app(&mut self, a: &raw::RawApp) -> Option<App> {
        let name = match &a.name {
            None => {
                self.missing("app", "name", "\"MyApp\"");
                None
            }
            Some(n) if self.is_todo(n) => None,
            Some(n) => self.app_name(n),
        };
        let version = match &a.version {
            None => {
                self.missing("app", "version", "\"1.0.0\"");
                None
            }
            Some(v) if self.is_todo(v) => None,
            Some(v) => self.version(v),
        };
        let title = self.text(a.title.as_ref(), "app.title");
        let description = self.text(a.description.as_ref(), "app.description");
        let author = self.text(a.author.as_ref(), "app.author");
        let license = self.text(a.license.as_ref(), "app.license");
        let license_url = a
            .license_url
            .as_ref()
            .and_then(|u| self.url(u, "app.license-url"));
        let homepage_url = a
            .homepage_url
            .as_ref()
            .and_then(|u| self.url(u, "app.homepage-url"));
        let help_url = a
            .help_url
            .as_ref()
            .and_then(|u| self.url(u, "app.help-url"));
        let icon = a.icon.as_ref().and_then(|s| self.asset(s, "app.icon"));
        let screenshot = a
            .screenshot
            .as_ref()
            .and_then(|s| self.asset(s, "app.screenshot"));
        let name = name?;
        Some(App {
            title: title.unwrap_or_else(|| name.as_str().to_string()),
            name,
            version: version?,
            description,
            author,
            license,
            license_url,
            homepage_url,
            help_url,
            icon,
            screenshot,
        })
    }

    fn app_name(&mut self, n: &Sp<String>) -> Option<AppName> {
        match AppName::new(n.get()) {
            Ok(name) => {
                if let Some(id) = MICROSOFT_PRODUCT_IDS
                    .iter()
                    .find(|id| id.eq_ignore_ascii_case(name.as_str()))
                {
                    self.warn(
                        n.span(),
                        format!("`app.name` {name:?} is also a Microsoft WebPI productId (`{id}`)"),
                        "WebPI productIds are global across feeds; a collision breaks installs. Add a suffix such as `IISApp`",
                    );
                }
                Some(name)
            }
            Err(why) => {
                let suggestion = AppName::sanitize(n.get())
                    .map(|s| format!("; try `name = \"{s}\"`"))
                    .unwrap_or_default();
                self.error(
                    n.span(),
                    format!("`app.name` {why}"),
                    format!(
                        "the name is the IIS folder, the zip's top folder and the WebPI productId ([A-Za-z0-9_] only, starting with a letter){suggestion}"
                    ),
                );
                None
            }
        }
    }

    fn version(&mut self, v: &Sp<String>) -> Option<Version> {
        static PEP440: OnceLock<Regex> = OnceLock::new();
        static SEMVER: OnceLock<Regex> = OnceLock::new();
        let pep440 = PEP440.get_or_init(|| {
            regex(r"^(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?(?:\+[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)?$")
        });
        let semver = SEMVER.get_or_init(|| {
            regex(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
        });
        let s = v.get();
        if pep440.is_match(s) || semver.is_match(s) {
            return Some(Version(s.clone()));
        }
        let hint = if let Some(rest) = s.strip_prefix(['v', 'V']).filter(|r| pep440.is_match(r)) {
            format!("drop the leading `v`: `version = \"{rest}\"`")
        } else {
            "write a PEP 440 version (`1.2.0`, `1.2.0rc1`, `1.2.0.post1`, `1.2.0.dev3`) or a SemVer one (`1.2.0-beta.1`); it becomes part of the zip's file name".to_string()
        };
        self.error(
            v.span(),
            format!("`app.version` is not a PEP 440 or SemVer version: {s:?}"),
            hint,
        );
        None
    }

    fn asset(&mut self, s: &Sp<String>, key: &str) -> Option<Asset> {
        if self.is_todo(s) {
            return None;
        }
        if s.get().contains("://") {
            self.url(s, key).map(Asset::Url)
        } else {
            self.rel_path(s, key, "the manifest's folder")
                .map(Asset::File)
        }
    }
}

/// Microsoft productIds an app name must not collide with (a warning).
const MICROSOFT_PRODUCT_IDS: &[&str] = &[
    "WDeploy",
    "WDeployNoSMO",
    "IISManagementConsole",
    "CGI",
    "PHP",
    "UrlRewrite2",
    "ARRv3_0",
    "WebMatrix",
    "IISExpress",
    "MySQL",
    "SQLExpress",
    "NETFramework4",
    "Python27",
    "iiswsgi",
];
