//! The contract between the package and the installer: what `iiswsgi package` writes and
//! `iiswsgi install` (or `iis enable`, `doctor`) must read the same way on the server.
//!
//! - [`FastCgiKey`]: IIS's `fullPath|arguments` key of the FastCGI application, which the
//!   handler's `scriptProcessor` must repeat character for character;
//! - [`INSTALL_STAMP`] and [`install_command`]: how the post-install step finds the app folder;
//! - [`web_config`] and [`render_web_config`]: the installed web.config's context and its
//!   rendering from the template the package ships, checked by the C rules.
//!
//! This is the only door from the IIS administration wing into the packaging wing
//! (`tests/architecture.rs` enforces it): a change here changes both sides at once.

use std::path::Path;

use crate::manifest::{Manifest, ManifestError};
use crate::package::check::web_config as web_config_rules;
use crate::package::render::{
    HandlerElement, RequestFilteringElement, StaticLocationElement, Templates, WebConfig,
};

pub use crate::package::render::{HandlerElement as HandlerMapping, RenderError, Template};

/// Where `iiswsgi.exe` is installed on the target, unless `[iis] iiswsgi-exe` or
/// `--iiswsgi-exe` says otherwise (the README's server set-up creates it).
pub use crate::manifest::DEFAULT_IISWSGI_EXE;

/// Where `iiswsgi install` keeps a hand-written web.config it replaced; a redeploy keeps it too.
pub const WEB_CONFIG_BACKUP: &str = "web.config.iiswsgi-backup";

/// A physical path used to render the installed web.config at package time, to check it.
pub const SAMPLE_PHYSICAL_ROOT: &str = r"C:\inetpub\wwwroot";

/// The file every package ships in the app folder; `iiswsgi install` finds the folder by it
/// (runCommand passes no path, msdeploy-webpi.md §8.1) and deletes it once it succeeded.
pub const INSTALL_STAMP: &str = "iiswsgi-install.stamp";

/// The stamp's content: one comment line, as the original's `iis_install.stamp`.
pub const INSTALL_STAMP_TEXT: &str =
    "# iiswsgi: the post-install step (iiswsgi install) has not yet run successfully here.\r\n";

/// The post-install command line msdeploy runs (runCommand `path`, also the blob's `path`):
/// `"<exe>" install --app-name <Name>`. runCommand gets no app path, so `install` looks for
/// the IIS application folder holding [`INSTALL_STAMP`] and an iiswsgi.toml named `<Name>`
/// (WebPI may have renamed the folder, so the name is matched in the manifest, not the path).
/// This is the one place that spells the flags; `iiswsgi install` parses them.
pub fn install_command(iiswsgi_exe: &str, app_name: &str) -> String {
    format!("\"{iiswsgi_exe}\" install --app-name {app_name}")
}

/// The key of a `<fastCgi><application>`: IIS runs `"fullPath" arguments` and the handler's
/// `scriptProcessor` must repeat `fullPath|arguments` character for character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCgiKey {
    /// The executable, without quotes (IIS adds them).
    pub full_path: String,
    /// The arguments; they name the app so two apps never share a process pool.
    pub arguments: String,
}

impl FastCgiKey {
    /// The key for the app installed at `physical_path`, served by `iiswsgi_exe`:
    /// `run --manifest <physical_path>\iiswsgi.toml`, the manifest path quoted when it holds a
    /// space. `run` takes the app (`[wsgi] app`, `venv`, …) from that manifest and the app root
    /// (and default log folder) from its folder, so the arguments both name the app (two apps
    /// never share a process pool) and are all `run` needs. The separator follows the path's
    /// own (`\` unless it is a `/`-only path, as on the Linux test machines).
    ///
    /// `install` (which registers and renders web.config) and `package` (which renders a
    /// sample) both call this, so the two can never disagree.
    pub fn for_app(iiswsgi_exe: &str, physical_path: &str) -> Self {
        let sep = if physical_path.contains('/') && !physical_path.contains('\\') {
            '/'
        } else {
            '\\'
        };
        let dir = physical_path.trim_end_matches(['\\', '/']);
        let manifest = format!("{dir}{sep}{}", crate::manifest::FILE_NAME);
        let manifest = if manifest.contains(' ') {
            format!("\"{manifest}\"")
        } else {
            manifest
        };
        Self {
            full_path: iiswsgi_exe.to_string(),
            arguments: format!("run --manifest {manifest}"),
        }
    }

    /// `fullPath|arguments`, the handler's `scriptProcessor`.
    pub fn script_processor(&self) -> String {
        format!("{}|{}", self.full_path, self.arguments)
    }
}

/// The context of the installed web.config for `manifest` with FastCGI `key`.
pub fn web_config(manifest: &Manifest, key: &FastCgiKey) -> WebConfig {
    let rf = &manifest.iis.request_filtering;
    WebConfig {
        iiswsgi_version: crate::VERSION.to_string(),
        app_name: manifest.app.name.to_string(),
        handler: HandlerElement::new(&manifest.iis.handler, key.script_processor()),
        request_filtering: RequestFilteringElement {
            allow_double_escaping: rf.allow_double_escaping,
            max_allowed_content_length: rf.max_allowed_content_length,
        },
        static_locations: manifest
            .iis
            .static_files
            .iter()
            .map(|s| StaticLocationElement {
                path: s.path.to_string(),
            })
            .collect(),
    }
}

/// The `[[iis.static]]` folders of `manifest`, as the C05 rule takes them.
pub fn static_paths(manifest: &Manifest) -> Vec<String> {
    manifest
        .iis
        .static_files
        .iter()
        .map(|s| s.path.to_string())
        .collect()
}

/// A shipped web.config template rendered for a sample path, and what it must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfigSample {
    /// The rendered XML.
    pub xml: String,
    /// The `scriptProcessor` its handler must name (C01).
    pub script_processor: String,
    /// The `[[iis.static]]` folders it must hand to IIS (C05).
    pub static_paths: Vec<String>,
}

/// Renders a shipped web.config template for the manifest text of a package, at a sample
/// path, with what the result must contain. Used by `iiswsgi check`.
pub fn installed_web_config_sample(
    manifest_toml: &str,
    template: &str,
) -> Result<WebConfigSample, SampleError> {
    let manifest = Manifest::parse(manifest_toml, Path::new(crate::manifest::FILE_NAME))
        .map_err(|e| SampleError::Manifest(Box::new(e)))?;
    let key = FastCgiKey::for_app(
        &manifest.iis.iiswsgi_exe,
        &sample_physical_path(manifest.app.name.as_str()),
    );
    let xml = Templates::render_source(template, &web_config(&manifest, &key))?;
    Ok(WebConfigSample {
        xml,
        script_processor: key.script_processor(),
        static_paths: static_paths(&manifest),
    })
}

/// The physical path the package renders its sample web.config for: `C:\inetpub\wwwroot\<app>`.
pub fn sample_physical_path(app: &str) -> String {
    format!(r"{SAMPLE_PHYSICAL_ROOT}\{app}")
}

/// Why a shipped web.config template could not be rendered for a sample path.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The shipped iiswsgi.toml does not validate.
    #[error("the shipped manifest is invalid: {0}\n{render}", render = .0.render())]
    Manifest(Box<ManifestError>),
    /// The template did not render.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Why a web.config could not be produced on the server.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The template did not render.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The result is not well-formed XML.
    #[error("not well-formed XML: {0}")]
    NotXml(#[from] crate::xml::XmlError),
    /// The result breaks a C rule; the rendered findings.
    #[error("{0}")]
    Lint(String),
}

/// Renders a web.config template for `manifest` and `key` and checks it: well-formed, and the
/// C rules of `iiswsgi check` with the expected `scriptProcessor` (so the handler names the
/// registration character for character) and `[[iis.static]]` folders (C05).
pub fn render_web_config(
    template: &str,
    manifest: &Manifest,
    key: &FastCgiKey,
) -> Result<String, WebConfigError> {
    let text = Templates::render_source(template, &web_config(manifest, key))?;
    let root = crate::xml::parse(&text)?;
    let findings = web_config_rules::lint_installed(
        &root,
        "web.config",
        &key.script_processor(),
        &static_paths(manifest),
    );
    if findings.errors() > 0 {
        return Err(WebConfigError::Lint(findings.render_errors()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_command_quotes_the_exe_and_names_the_app() {
        assert_eq!(
            install_command(DEFAULT_IISWSGI_EXE, "ShopApp"),
            r#""C:\iiswsgi\Scripts\iiswsgi.exe" install --app-name ShopApp"#
        );
    }

    #[test]
    fn fastcgi_key_names_the_app_root_and_quotes_spaces() {
        let k = FastCgiKey::for_app(r"C:\iiswsgi.exe", r"C:\inetpub\wwwroot\shop");
        assert_eq!(
            k.script_processor(),
            r"C:\iiswsgi.exe|run --manifest C:\inetpub\wwwroot\shop\iiswsgi.toml"
        );
        let k = FastCgiKey::for_app(r"C:\iiswsgi.exe", r"D:\My Sites\shop");
        assert_eq!(
            k.arguments,
            r#"run --manifest "D:\My Sites\shop\iiswsgi.toml""#
        );
        let k = FastCgiKey::for_app("/usr/bin/iiswsgi", "/srv/www/My Shop/");
        assert_eq!(
            k.arguments,
            r#"run --manifest "/srv/www/My Shop/iiswsgi.toml""#
        );
    }
}
