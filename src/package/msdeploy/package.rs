//! `iiswsgi package`: from a validated [`Manifest`] to `dist/<Name>-<version>.zip` (App Gallery
//! shape) and, next to it, what deploys it: `<stem>.SetParameters.xml`, `<stem>.deploy.cmd`,
//! `<stem>.deploy-readme.txt` ([`super::deploy_files`]), and the WebPI feed
//! `<stem>.webpi.xml` when `[feed]` or `--feed` asks for one (WebPI is retired).
//!
//! Two phases, as the style guide asks: [`plan`] is pure: it computes every value, renders
//! Manifest.xml, Parameters.xml, the web.config files and the deploy files in memory and runs
//! the check rules on them (an error there stops the build before anything is written);
//! [`Plan::write`] does the I/O: it walks the app folder ([`super::contents`] decides what
//! goes in), streams the zip through the gate and writes the files next to it.
//!
//! Package layout (msdeploy-webpi.md §1.1):
//!
//! ```text
//! Manifest.xml                 iisApp, one setAcl per writable folder, runCommand (post-install)
//! Parameters.xml               Application Path (IisApp), the manifest's parameters, hidden setAcl ones
//! <Name>/                      the app folder (package.root, filtered by include/exclude)
//! <Name>/iiswsgi.toml          the manifest, read by `iiswsgi install` and `iiswsgi run` on the target
//! <Name>/web.config            a placeholder that serves nothing (every verb denied)
//! <Name>/web.config.hbs        the template `iiswsgi install` renders into the real web.config
//! <Name>/iiswsgi-install.stamp marks the folder as not yet installed; `iiswsgi install` finds
//!                              the folder by it and deletes it when done
//! ```
//!
//! Why the placeholder (§5.3): the real web.config needs the physical path, known only on the
//! target. Until the post-install step has run, the folder must not serve the Python sources
//! or the manifest; if the step fails, it still serves nothing. The step renders the shipped
//! template (so the package, not the installed iiswsgi version, decides the layout) with
//! [`web_config`] and [`FastCgiKey`], registers the FastCGI application, then replaces the
//! placeholder. A redeploy keeps the rendered file ([`super::redeploy`]).
//!
//! Timestamps (§1.3, [`crate::package::msdeploy::timestamp`]): files keep their mtime, generated files
//! get the build time; with `SOURCE_DATE_EPOCH` everything is clamped to the epoch, which makes
//! two builds of the same checkout byte-identical. msdeploy syncs by timestamp, so a redeploy
//! over an older version still sees newer files; deploy.cmd passes `-useChecksum` anyway.

use std::path::{Path, PathBuf};

use super::contents::{Excluded, Filter};
use super::deploy_files::{self, DeployFiles};
use super::error::PackageError;
use super::provider_options::ProviderOptions;
use super::timestamp::TimePolicy;
use super::writer::tree::add_tree;
use super::writer::zip::{ZipBackend, ZipOptions, ZipSummary};
use super::writer::{Gate, PackageWriter};
use super::zip_path::ZipPath;
use crate::deploy::{
    FastCgiKey, INSTALL_STAMP, INSTALL_STAMP_TEXT, install_command, sample_physical_path,
    static_paths, web_config,
};
use crate::manifest::dotnet_regex::literal_match;
use crate::manifest::{AclResourceType, Manifest, SetAcl, check_exe_path};
use crate::package::check::manifest_xml;
use crate::package::check::parameters::{self, PackageContext};
use crate::package::check::{Findings, set_parameters, web_config as web_config_rules};
use crate::package::render::{
    EntryElement, FeedXml, ManifestXml, ParameterElement, ParametersXml, PendingWebConfig,
    RunCommandElement, SetAclElement, Template, Templates, ValidationElement,
};
use crate::package::webpi::{self, FeedMeta, Installer};
use crate::xml;

/// runCommand `successReturnCodes`: without it a failed install step goes unreported (§2.3).
pub const SUCCESS_RETURN_CODES: &str = "0x0";

/// How to package: everything the CLI resolved (paths absolute, clock read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageOptions {
    /// Output folder (`dist/` next to the manifest by default).
    pub out_dir: PathBuf,
    /// Build time and `SOURCE_DATE_EPOCH`.
    pub time: TimePolicy,
    /// Download base URL; overrides `[feed] download-base-url`.
    pub base_url: Option<String>,
    /// Where iiswsgi.exe lives on the target; overrides `[iis] iiswsgi-exe`.
    pub iiswsgi_exe: Option<String>,
    /// Write the WebPI feed even without a `[feed]` section.
    pub feed: bool,
    /// Zip writer settings.
    pub zip: ZipOptions,
}

impl PackageOptions {
    /// Defaults for a manifest: `dist/` beside it, no epoch, the manifest's exe, a feed only
    /// if the manifest has `[feed]`.
    pub fn new(out_dir: impl Into<PathBuf>, time: TimePolicy) -> Self {
        Self {
            out_dir: out_dir.into(),
            time,
            base_url: None,
            iiswsgi_exe: None,
            feed: false,
            zip: ZipOptions::default(),
        }
    }
}

/// A file rendered in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Where it goes in the zip.
    pub path: ZipPath,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The WebPI feed a plan writes, when it writes one.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    /// `out_dir/<Name>-<version>.webpi.xml`.
    pub path: PathBuf,
    /// The feed, with the installer's sha1 and size still to fill in.
    pub feed: FeedXml,
    /// Image files to publish next to the zip: (source, destination).
    pub assets: Vec<(PathBuf, PathBuf)>,
}

/// Everything [`Plan::write`] needs; built by [`plan`] without touching the disk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The app name (zip folder, productId).
    pub app_name: String,
    /// `out_dir/<Name>-<version>.zip`.
    pub zip_path: PathBuf,
    /// Manifest.xml, Parameters.xml, the web.config placeholder and template, in memory.
    pub generated: Vec<GeneratedFile>,
    /// The installed web.config rendered for a sample path (checked, not packaged).
    pub sample_web_config: String,
    /// SetParameters.xml, deploy.cmd and its readme.
    pub deploy: DeployFiles,
    /// Their paths, in that order (`out_dir/<stem>.SetParameters.xml`, …).
    pub deploy_paths: [PathBuf; 3],
    /// The WebPI feed, when `[feed]` or `--feed` asked for one.
    pub feed: Option<FeedPlan>,
    /// Warnings from the check rules on the generated files.
    pub warnings: Findings,
    manifest: Manifest,
    options: PackageOptions,
    app_folder: ZipPath,
}

/// What [`Plan::write`] produced.
#[derive(Debug, Clone)]
pub struct PackageReport {
    /// The zip.
    pub zip: ZipSummary,
    /// SetParameters.xml, deploy.cmd, deploy-readme.txt.
    pub deploy_paths: [PathBuf; 3],
    /// Visible parameters without a default, left empty in SetParameters.xml.
    pub required: Vec<String>,
    /// The feed file and the download URL written into it, when a feed was written.
    pub feed: Option<(PathBuf, String)>,
    /// What the walk left out, and why.
    pub excluded: Vec<Excluded>,
    /// Warnings (check rules, feed URL reuse, local file URLs).
    pub warnings: Findings,
}

/// `iiswsgi package`: [`plan`] then [`Plan::write`].
pub fn package(
    manifest: &Manifest,
    options: &PackageOptions,
) -> Result<PackageReport, PackageError> {
    plan(manifest, options)?.write()
}

/// The iiswsgi.exe path the post-install step runs: `--iiswsgi-exe`, refused here when unsafe
/// (its warnings come from the O rules on the generated Manifest.xml), or the manifest's
/// (checked when the manifest was loaded).
fn iiswsgi_exe<'a>(
    manifest: &'a Manifest,
    options: &'a PackageOptions,
) -> Result<&'a str, PackageError> {
    let Some(path) = options.iiswsgi_exe.as_deref() else {
        return Ok(&manifest.iis.iiswsgi_exe);
    };
    check_exe_path(path).map_err(|source| PackageError::IiswsgiExe {
        path: path.to_string(),
        source,
    })?;
    Ok(path)
}

/// Computes and renders everything; pure (no I/O, no clock).
pub fn plan(manifest: &Manifest, options: &PackageOptions) -> Result<Plan, PackageError> {
    let templates = Templates::shared()?;
    let mut warnings = Findings::default();
    let exe = iiswsgi_exe(manifest, options)?;
    let name = manifest.app.name.as_str();
    let app_folder = ZipPath::new(name)?;
    let stem = format!("{name}-{}", manifest.app.version);
    let zip_name = format!("{stem}.zip");
    let zip_path = options.out_dir.join(&zip_name);

    let manifest_xml = templates.render(&manifest_xml_context(manifest, exe))?;
    let parameters = parameters_context(manifest)?;
    let parameters_xml = templates.render(&parameters)?;
    let pending = templates.render(&PendingWebConfig {
        app_name: name.to_string(),
    })?;
    let key = FastCgiKey::for_app(exe, &sample_physical_path(name));
    let sample_web_config = templates.render(&web_config(manifest, &key))?;
    let deploy = deploy_files::render(templates, manifest, &parameters, &stem)?;

    lint_generated(
        &Generated {
            manifest_xml: &manifest_xml,
            parameters_xml: &parameters_xml,
            web_config: &sample_web_config,
            set_parameters: &deploy.set_parameters,
        },
        (&key, &static_paths(manifest)),
        &mut warnings,
    )?;

    let generated = vec![
        GeneratedFile {
            path: ZipPath::new("Manifest.xml")?,
            bytes: manifest_xml.into_bytes(),
        },
        GeneratedFile {
            path: ZipPath::new("Parameters.xml")?,
            bytes: parameters_xml.into_bytes(),
        },
        GeneratedFile {
            path: app_folder.join("web.config")?,
            bytes: pending.into_bytes(),
        },
        GeneratedFile {
            path: app_folder.join("web.config.hbs")?,
            bytes: Template::WebConfig.source().as_bytes().to_vec(),
        },
        GeneratedFile {
            path: app_folder.join(INSTALL_STAMP)?,
            bytes: INSTALL_STAMP_TEXT.as_bytes().to_vec(),
        },
    ];
    let deploy_paths = deploy_files::names(&stem).map(|n| options.out_dir.join(n));
    let feed = (manifest.feed.declared || options.feed || options.base_url.is_some())
        .then(|| plan_feed(manifest, options, &stem, &zip_path, &mut warnings));

    Ok(Plan {
        app_name: name.to_string(),
        zip_path,
        generated,
        sample_web_config,
        deploy,
        deploy_paths,
        feed,
        warnings,
        manifest: manifest.clone(),
        options: options.clone(),
        app_folder,
    })
}

/// The WebPI feed entry for `<stem>.zip`, with an F03 warning when it can only point at the
/// local file.
fn plan_feed(
    manifest: &Manifest,
    options: &PackageOptions,
    stem: &str,
    zip_path: &Path,
    warnings: &mut Findings,
) -> FeedPlan {
    let zip_name = format!("{stem}.zip");
    let feed_name = format!("{stem}.webpi.xml");
    let path = options.out_dir.join(&feed_name);
    let base = webpi::download_base(options.base_url.as_deref(), manifest);
    let installer_url = match &base {
        Some(b) => webpi::installer_url(b, &zip_name),
        None => {
            warnings.warn(
                "F03",
                "",
                "no [feed] download-base-url (or --base-url): the feed points at the local zip with a file:// URL".into(),
            );
            webpi::file_url(zip_path)
        }
    };
    let mut assets = Vec::new();
    let mut image = |asset: &Option<crate::manifest::Asset>| {
        let asset = asset.as_ref()?;
        let published = webpi::published_asset_name(manifest, asset);
        if let (crate::manifest::Asset::File(rel), Some(published)) = (asset, &published) {
            assets.push((
                rel.under(manifest.base_dir()),
                options.out_dir.join(published),
            ));
        }
        Some(webpi::asset_url(
            asset,
            published.as_deref().unwrap_or(""),
            base.as_deref(),
            &options.out_dir,
        ))
    };
    let images = (image(&manifest.app.icon), image(&manifest.app.screenshot));
    let installer = Installer {
        url: installer_url,
        sha1: [0; 20],
        bytes: 0,
    };
    let time = options.time.generated();
    let entry = webpi::entry(manifest, &installer, time, images);
    let meta = FeedMeta {
        title: manifest.app.title.clone(),
        id: manifest
            .feed
            .feed_url
            .as_ref()
            .map(|u| u.as_str().to_string())
            .or_else(|| base.as_ref().map(|b| webpi::installer_url(b, &feed_name)))
            .unwrap_or_else(|| webpi::file_url(&path)),
        author: manifest
            .app
            .author
            .clone()
            .unwrap_or_else(|| manifest.app.title.clone()),
        updated: time,
    };
    FeedPlan {
        path,
        feed: webpi::feed(&meta, vec![entry], &manifest.feed.keywords),
        assets,
    }
}

/// The generated files the check rules run on.
struct Generated<'a> {
    manifest_xml: &'a str,
    parameters_xml: &'a str,
    web_config: &'a str,
    set_parameters: &'a str,
}

/// Runs the M/O/P/S/C rules on the generated files: errors stop the build, warnings are kept.
fn lint_generated(
    files: &Generated<'_>,
    (key, static_paths): (&FastCgiKey, &[String]),
    warnings: &mut Findings,
) -> Result<(), PackageError> {
    let parse = |text: &str, what: &'static str| {
        xml::parse(text).map_err(|e| PackageError::Generated {
            what,
            findings: format!("not well-formed XML: {e}"),
        })
    };
    let info = manifest_xml::lint(&parse(files.manifest_xml, "Manifest.xml")?, "Manifest.xml");
    let params_root = parse(files.parameters_xml, "Parameters.xml")?;
    let params = parameters::lint(
        &params_root,
        "Parameters.xml",
        Some(PackageContext {
            manifest: &info,
            files: None,
        }),
    );
    let set = set_parameters::lint(
        &parse(files.set_parameters, "SetParameters.xml")?,
        "SetParameters.xml",
        Some(&params_root),
    );
    let wc = web_config_rules::lint_installed(
        &parse(files.web_config, "web.config")?,
        "web.config",
        &key.script_processor(),
        static_paths,
    );
    for (what, findings) in [
        ("Manifest.xml", info.findings),
        ("Parameters.xml", params),
        ("SetParameters.xml", set),
        ("web.config", wc),
    ] {
        if findings.errors() > 0 {
            return Err(PackageError::Generated {
                what,
                findings: findings.render_errors(),
            });
        }
        // S04 is reported by name in the summary (`required`), not as a warning line.
        warnings.extend(Findings(
            findings.0.into_iter().filter(|f| f.rule != "S04").collect(),
        ));
    }
    Ok(())
}

/// The Manifest.xml context; `exe` is the iiswsgi.exe the post-install step runs.
fn manifest_xml_context(manifest: &Manifest, exe: &str) -> ManifestXml {
    let name = manifest.app.name.as_str();
    let command = install_command(exe, name);
    let settings = vec![
        (
            "waitAttempts".to_string(),
            manifest.package.install_wait_attempts.to_string(),
        ),
        (
            "waitInterval".to_string(),
            manifest.package.install_wait_interval_ms.to_string(),
        ),
        (
            "successReturnCodes".to_string(),
            SUCCESS_RETURN_CODES.to_string(),
        ),
    ];
    let blob = ProviderOptions::new("runCommand", command.clone(), settings).encode();
    ManifestXml {
        iis_app_path: name.to_string(),
        set_acls: manifest
            .iis
            .set_acl
            .iter()
            .map(|acl| SetAclElement {
                path: acl.package_path(name),
                access: (!acl.access.is_empty()).then(|| acl.access_attr()),
                user: acl.user.clone(),
                resource_type: (acl.resource_type == AclResourceType::File)
                    .then(|| acl.resource_type.as_str().to_string()),
            })
            .collect(),
        run_command: RunCommandElement {
            path: command,
            provider_options: blob,
        },
    }
}

/// The name of the hidden parameter of one setAcl.
fn acl_parameter_name(acl: &SetAcl) -> String {
    match acl.path.as_str() {
        "" => "SetAcl".to_string(),
        sub => format!("SetAcl {sub}"),
    }
}

/// The Parameters.xml context: the IisApp parameter (`Application Path`, or `IIS Web
/// Application Name` with `[iis] application-parameter`), the manifest's parameters, hidden
/// setAcl ones.
fn parameters_context(manifest: &Manifest) -> Result<ParametersXml, PackageError> {
    let name = manifest.app.name.as_str();
    let app_parameter = manifest.iis.application_parameter.as_str();
    let mut parameters = vec![ParameterElement {
        name: app_parameter.to_string(),
        description: Some(format!(
            "The IIS site and application to install into, e.g. Default Web Site/{name}."
        )),
        default_value: Some(manifest.iis.application_path.clone()),
        tags: Some("IisApp".into()),
        validation: manifest.iis.allow_site_root.then(|| ValidationElement {
            kind: "AllowEmpty".into(),
            validation_string: None,
        }),
        entries: vec![EntryElement {
            kind: "ProviderPath".into(),
            scope: "iisApp".into(),
            match_: literal_match(name),
        }],
    }];
    for p in &manifest.parameters {
        parameters.push(ParameterElement {
            name: p.name.clone(),
            description: p.description.clone(),
            default_value: p.default.clone(),
            tags: p.tags_attr(),
            validation: p.validation.as_ref().map(|v| ValidationElement {
                kind: v.type_attr(),
                validation_string: v.value.clone(),
            }),
            entries: p
                .entries
                .iter()
                .map(|e| EntryElement {
                    kind: e.kind.as_str().to_string(),
                    scope: e.scope.clone(),
                    match_: e.match_.clone(),
                })
                .collect(),
        });
    }
    for acl in &manifest.iis.set_acl {
        let path = acl.package_path(name);
        let default = match acl.path.as_str() {
            "" => format!("{{{app_parameter}}}"),
            sub => format!("{{{app_parameter}}}/{sub}"),
        };
        parameters.push(ParameterElement {
            name: acl_parameter_name(acl),
            description: Some(format!("Where the ACL of {path} applies (set by iiswsgi).")),
            default_value: Some(default),
            tags: Some("Hidden".into()),
            validation: None,
            entries: vec![EntryElement {
                kind: "ProviderPath".into(),
                scope: "setAcl".into(),
                match_: literal_match(&path),
            }],
        });
    }
    let mut seen = std::collections::HashSet::new();
    for p in &parameters {
        if !seen.insert(p.name.to_lowercase()) {
            return Err(PackageError::ParameterNameTaken {
                name: p.name.clone(),
            });
        }
    }
    Ok(ParametersXml { parameters })
}

impl Plan {
    /// The manifest this plan was made from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Writes the zip, the deploy files and the feed (and publishes image files next to it).
    pub fn write(&self) -> Result<PackageReport, PackageError> {
        let out_dir = &self.options.out_dir;
        fs_err::create_dir_all(out_dir).map_err(|source| PackageError::Write {
            path: out_dir.clone(),
            source,
        })?;
        let root = self.manifest.package_root();
        let pkg = &self.manifest.package;
        for reserved in ["web.config", "web.config.hbs", INSTALL_STAMP] {
            if root.join(reserved).exists() && pkg.is_packaged(reserved) {
                return Err(PackageError::Reserved {
                    path: root.join(reserved),
                });
            }
        }
        let mut gate = Gate::new(self.options.time);
        for file in &self.generated {
            gate.add_bytes(&file.path, file.bytes.clone())?;
        }
        let manifest_in_app = self.app_folder.join(crate::manifest::FILE_NAME)?;
        gate.add_file(&manifest_in_app, &self.manifest.path)?;
        let manifest_rel = self
            .manifest
            .path
            .strip_prefix(&root)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        let filter = Filter::new(&root, pkg, manifest_rel, &self.deploy.server_paths);
        add_tree(&mut gate, &root, &self.app_folder, |rel, is_dir| {
            filter.visit(rel, is_dir)
        })?;
        let excluded = filter.into_excluded();
        for acl in &self.manifest.iis.set_acl {
            if acl.resource_type == AclResourceType::Directory && !acl.path.as_str().is_empty() {
                let dir = self.app_folder.join(acl.path.as_str())?;
                let on_disk = acl.path.under(&root);
                if gate_lacks(&gate, &dir) {
                    gate.add_dir(&dir, on_disk.is_dir().then_some(on_disk.as_path()))?;
                }
            }
        }
        let zip = gate.finish(ZipBackend::new(&self.zip_path, self.options.zip.clone()))?;

        let files = [
            &self.deploy.set_parameters,
            &self.deploy.deploy_cmd,
            &self.deploy.readme,
        ];
        for (path, text) in self.deploy_paths.iter().zip(files) {
            write_file(path, text.as_bytes())?;
        }
        let mut warnings = self.warnings.clone();
        let feed = match &self.feed {
            Some(plan) => Some(write_feed(plan, &zip, &mut warnings)?),
            None => None,
        };
        Ok(PackageReport {
            zip,
            deploy_paths: self.deploy_paths.clone(),
            required: self.deploy.required.clone(),
            feed,
            excluded,
            warnings,
        })
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    crate::fsutil::write_atomically(path, bytes).map_err(|source| PackageError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Fills in the zip's sha1 and size, writes the feed and its images; returns the feed's path
/// and download URL.
fn write_feed(
    plan: &FeedPlan,
    zip: &ZipSummary,
    warnings: &mut Findings,
) -> Result<(PathBuf, String), PackageError> {
    let mut feed = plan.feed.clone();
    let mut installer_url = String::new();
    for entry in &mut feed.entries {
        entry.installer.sha1 = zip.sha1_hex();
        entry.installer.file_size = webpi::file_size_kib(zip.size);
        installer_url = entry.installer.url.clone();
    }
    previous_feed_warning(&plan.path, &installer_url, &zip.sha1_hex(), warnings);
    let xml = Templates::new()?.render(&feed)?;
    write_file(&plan.path, xml.as_bytes())?;
    for (from, to) in &plan.assets {
        fs_err::copy(from, to).map_err(|source| PackageError::Read {
            path: from.clone(),
            source,
        })?;
    }
    Ok((plan.path.clone(), installer_url))
}

/// Whether `dir` is not yet an entry of the gate (setAcl folders may be absent on disk).
fn gate_lacks(gate: &Gate, dir: &ZipPath) -> bool {
    gate.contains(dir).is_none()
}

/// F09 ahead of time: the feed already in `dist/` names the same URL with another sha1.
fn previous_feed_warning(path: &Path, url: &str, sha1: &str, warnings: &mut Findings) {
    let Ok(text) = fs_err::read_to_string(path) else {
        return;
    };
    let Ok(root) = xml::parse(&text) else { return };
    if let Some(prev) = crate::package::check::feed::installer_sha1s(&root).get(url)
        && !prev.eq_ignore_ascii_case(sha1)
    {
        warnings.warn(
            "F09",
            path.display().to_string(),
            format!("{url} was built before with sha1 {prev}; if that build was published, bump the version (WebPI caches by URL)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::DEFAULT_IISWSGI_EXE;

    const MANIFEST: &str = r#"
[app]
name = "ShopApp"
version = "2.1.0"
description = "A shop."
[wsgi]
app = "shop:app"
[[iis.set-acl]]
path = "App_Data"
access = ["Modify"]
[[iis.set-acl]]
path = "logs/app.log"
access = ["Read", "Write"]
resource-type = "File"
[[parameters]]
name = "Greeting"
default = "Hello from {Application Path}"
entries = [{ kind = "TextFile", scope = '\\shop\.py$', match = 'GREETING = "[^"]*"' }]
[feed]
download-base-url = "https://dl.example.com/shop/"
"#;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text, Path::new("/src/shop/iiswsgi.toml"))
            .unwrap_or_else(|e| panic!("test manifest invalid:\n{}", e.render()))
    }

    fn options() -> PackageOptions {
        PackageOptions::new("/out", TimePolicy::new(1_700_000_000, None))
    }

    fn file<'a>(plan: &'a Plan, name: &str) -> &'a str {
        let f = plan
            .generated
            .iter()
            .find(|f| f.path.as_str() == name)
            .unwrap_or_else(|| panic!("{name} not generated"));
        std::str::from_utf8(&f.bytes).expect("utf8")
    }

    #[test]
    fn plan_is_pure_and_names_outputs_after_name_and_version() {
        let plan = plan(&manifest(MANIFEST), &options()).expect("plan");
        assert_eq!(plan.zip_path, Path::new("/out/ShopApp-2.1.0.zip"));
        assert_eq!(
            plan.feed.as_ref().map(|f| f.path.as_path()),
            Some(Path::new("/out/ShopApp-2.1.0.webpi.xml"))
        );
        assert_eq!(
            plan.deploy_paths,
            [
                PathBuf::from("/out/ShopApp-2.1.0.SetParameters.xml"),
                PathBuf::from("/out/ShopApp-2.1.0.deploy.cmd"),
                PathBuf::from("/out/ShopApp-2.1.0.deploy-readme.txt"),
            ]
        );
        let names: Vec<&str> = plan.generated.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "Manifest.xml",
                "Parameters.xml",
                "ShopApp/web.config",
                "ShopApp/web.config.hbs",
                "ShopApp/iiswsgi-install.stamp"
            ]
        );
        assert!(plan.warnings.0.is_empty(), "{:?}", plan.warnings);
        assert!(!Path::new("/out").exists() || Path::new("/out").is_dir());
    }

    #[test]
    fn manifest_xml_has_one_setacl_per_acl_and_the_install_step() {
        let plan = plan(&manifest(MANIFEST), &options()).expect("plan");
        let text = file(&plan, "Manifest.xml");
        assert!(
            text.contains(r#"<setAcl path="ShopApp/App_Data" setAclAccess="Modify" />"#),
            "{text}"
        );
        assert!(
            text.contains(r#"<setAcl path="ShopApp/logs/app.log" setAclAccess="Read,Write" setAclResourceType="File" />"#),
            "{text}"
        );
        let root = xml::parse(text).expect("xml");
        let run = root.child("runCommand").expect("runCommand");
        let decoded =
            ProviderOptions::decode(run.attr("MSDeploy.MSDeployProviderOptions").expect("blob"))
                .expect("decodes");
        assert_eq!(
            decoded.options.path,
            install_command(DEFAULT_IISWSGI_EXE, "ShopApp")
        );
        assert_eq!(
            decoded.options.settings[2],
            ("successReturnCodes".into(), "0x0".into())
        );
    }

    #[test]
    fn parameters_cover_every_provider_with_anchored_escaped_matches() {
        let plan = plan(&manifest(MANIFEST), &options()).expect("plan");
        let text = file(&plan, "Parameters.xml");
        assert!(text.contains(r#"match="^ShopApp$""#), "{text}");
        assert!(text.contains(r#"name="SetAcl logs/app.log""#), "{text}");
        assert!(
            text.contains(r#"match="^ShopApp/logs/app\.log$""#),
            "{text}"
        );
        assert!(
            text.contains(r#"defaultValue="{Application Path}/App_Data" tags="Hidden""#),
            "{text}"
        );
    }

    #[test]
    fn a_parameter_named_like_a_generated_one_is_refused() {
        let text =
            format!("{MANIFEST}\n[[parameters]]\nname = \"setacl app_data\"\ndefault = \"x\"\n");
        let err = plan(&manifest(&text), &options()).expect_err("clash");
        assert!(
            matches!(err, PackageError::ParameterNameTaken { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_dangling_reference_in_a_default_stops_the_plan() {
        // The manifest validator refuses this too; the plan's own check is the second net.
        let mut m = manifest(MANIFEST);
        m.parameters[0].default = Some("Hello from {Nowhere}".into());
        let err = plan(&m, &options()).expect_err("dangling");
        let msg = err.to_string();
        assert!(msg.contains("P10") && msg.contains("{Nowhere}"), "{msg}");
    }

    #[test]
    fn feed_entry_uses_the_versioned_url_and_the_epoch() {
        let mut o = options();
        o.time = TimePolicy::new(1_800_000_000, Some(1_700_000_000));
        let plan = plan(&manifest(MANIFEST), &o).expect("plan");
        let feed = &plan.feed.as_ref().expect("[feed] present").feed;
        let entry = &feed.entries[0];
        assert_eq!(
            entry.installer.url,
            "https://dl.example.com/shop/ShopApp-2.1.0.zip"
        );
        assert_eq!(entry.updated, "2023-11-14T22:13:20Z");
        assert_eq!(
            feed.id,
            "https://dl.example.com/shop/ShopApp-2.1.0.webpi.xml"
        );
        o.base_url = Some("https://mirror.example.org/x".into());
        let plan2 = super::plan(&manifest(MANIFEST), &o).expect("plan");
        assert_eq!(
            plan2.feed.expect("feed").feed.entries[0].installer.url,
            "https://mirror.example.org/x/ShopApp-2.1.0.zip"
        );
    }

    /// Item 7: WebPI is retired; no `[feed]`, no `--feed`: no feed and no F03 warning.
    #[test]
    fn no_feed_section_means_no_feed_and_no_f03() {
        let text = MANIFEST.replace(
            "[feed]\ndownload-base-url = \"https://dl.example.com/shop/\"\n",
            "",
        );
        let plan = plan(&manifest(&text), &options()).expect("plan");
        assert!(plan.feed.is_none());
        assert!(!plan.warnings.has("F03"), "{:?}", plan.warnings);
        let mut o = options();
        o.feed = true;
        let plan = super::plan(&manifest(&text), &o).expect("plan");
        assert!(plan.feed.is_some());
        assert!(
            plan.warnings.has("F03"),
            "a feed without a base URL still says so"
        );
    }

    /// Item 2: SetParameters.xml lists every visible parameter with its default; required
    /// ones are empty and reported.
    #[test]
    fn set_parameters_lists_visible_parameters_and_reports_the_required_ones() {
        let text = format!(
            "{MANIFEST}\n[[parameters]]\nname = \"Secret\"\ntags = [\"Password\"]\nentries = [{{ kind = \"TextFile\", scope = '\\\\shop\\.py$', match = 'S = \"[^\"]*\"' }}]\n"
        );
        let plan = plan(&manifest(&text), &options()).expect("plan");
        let set = &plan.deploy.set_parameters;
        assert!(
            set.contains(
                r#"<setParameter name="Application Path" value="Default Web Site/ShopApp" />"#
            ),
            "{set}"
        );
        assert!(
            set.contains(
                r#"<setParameter name="Greeting" value="Hello from {Application Path}" />"#
            ),
            "{set}"
        );
        assert!(
            set.contains(r#"<setParameter name="Secret" value="" />"#),
            "{set}"
        );
        assert!(
            !set.contains("SetAcl"),
            "hidden parameters are not listed: {set}"
        );
        assert_eq!(plan.deploy.required, ["Secret"]);
        assert!(
            !plan.warnings.has("S04"),
            "reported as `required`, not as a warning"
        );
    }

    /// Item 6: the IisApp parameter named the MSBuild / Azure DevOps way, everywhere.
    #[test]
    fn application_parameter_switch_renames_the_iisapp_parameter_and_its_references() {
        let text = MANIFEST
            .replace(
                "[wsgi]",
                "[iis]\napplication-parameter = \"IIS Web Application Name\"\n[wsgi]",
            )
            .replace("{Application Path}", "{IIS Web Application Name}");
        let plan = plan(&manifest(&text), &options()).expect("plan");
        let params = file(&plan, "Parameters.xml");
        assert!(
            params.contains(r#"<parameter name="IIS Web Application Name""#),
            "{params}"
        );
        assert!(
            params.contains(r#"defaultValue="{IIS Web Application Name}/App_Data""#),
            "{params}"
        );
        assert!(!params.contains("Application Path"), "{params}");
        assert!(
            plan.deploy
                .set_parameters
                .contains(r#"name="IIS Web Application Name""#)
        );
    }

    /// Item 4 / issue 16 item 6: the exe comes from the manifest, `--iiswsgi-exe` overrides it,
    /// and an injected path is refused before anything is built.
    #[test]
    fn iiswsgi_exe_comes_from_the_manifest_and_a_bad_override_is_refused() {
        let text = MANIFEST.replace(
            "[wsgi]",
            "[iis]\niiswsgi-exe = 'D:\\tools\\iiswsgi.exe'\n[wsgi]",
        );
        let plan = plan(&manifest(&text), &options()).expect("plan");
        assert!(
            file(&plan, "Manifest.xml")
                .contains(r#"path="&quot;D:\tools\iiswsgi.exe&quot; install --app-name ShopApp""#)
        );
        let mut o = options();
        o.iiswsgi_exe = Some(r#"C:\x\iiswsgi.exe" & calc & ""#.into());
        let err = super::plan(&manifest(&text), &o).expect_err("injection");
        assert!(matches!(err, PackageError::IiswsgiExe { .. }), "{err}");
        o.iiswsgi_exe = Some("iiswsgi.exe".into());
        let plan = super::plan(&manifest(&text), &o).expect("a relative path is a warning");
        assert!(plan.warnings.has("O07"), "{:?}", plan.warnings);
    }

    #[test]
    fn web_config_sample_routes_everything_to_the_registered_key() {
        let plan = plan(&manifest(MANIFEST), &options()).expect("plan");
        let key = FastCgiKey::for_app(DEFAULT_IISWSGI_EXE, r"C:\inetpub\wwwroot\ShopApp");
        assert!(plan.sample_web_config.contains(&format!(
            "scriptProcessor=\"{}\"",
            crate::package::render::escape_xml(&key.script_processor())
        )));
        let sample =
            crate::deploy::installed_web_config_sample(MANIFEST, Template::WebConfig.source())
                .expect("sample");
        assert_eq!(sample.script_processor, key.script_processor());
        assert!(sample.xml.contains("responseBufferLimit=\"0\""));
    }
}
