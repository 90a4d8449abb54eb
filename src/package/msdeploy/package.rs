//! `iiswsgi package`: from a validated [`Manifest`] to `dist/<Name>-<version>.zip` (App Gallery
//! shape) and `dist/<Name>-<version>.webpi.xml`.
//!
//! Two phases, as the style guide asks: [`plan`] is pure: it computes every value, renders
//! Manifest.xml, Parameters.xml and the web.config files in memory and runs the check rules on
//! them (an error there stops the build before anything is written); [`Plan::write`] does the
//! I/O: it walks the app folder, streams the zip through the gate and writes the feed.
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
//! placeholder.
//!
//! Timestamps (§1.3, [`crate::package::msdeploy::timestamp`]): files keep their mtime, generated files
//! get the build time; with `SOURCE_DATE_EPOCH` everything is clamped to the epoch, which makes
//! two builds of the same checkout byte-identical. msdeploy syncs by timestamp, so a redeploy
//! over an older version still sees newer files; `msdeploy -useChecksum` avoids relying on it.

use std::path::{Path, PathBuf};

use super::error::PackageError;
use super::provider_options::ProviderOptions;
use super::timestamp::TimePolicy;
use super::writer::tree::{Visit, add_tree};
use super::writer::zip::{ZipBackend, ZipOptions, ZipSummary};
use super::writer::{Gate, PackageWriter};
use super::zip_path::ZipPath;
use crate::deploy::{
    DEFAULT_IISWSGI_EXE, FastCgiKey, INSTALL_STAMP, INSTALL_STAMP_TEXT, install_command,
    sample_physical_path, web_config,
};
use crate::manifest::dotnet_regex::literal_match;
use crate::manifest::{APPLICATION_PATH_PARAMETER, AclResourceType, Manifest, SetAcl};
use crate::package::check::manifest_xml;
use crate::package::check::parameters::{self, PackageContext};
use crate::package::check::{Findings, web_config as web_config_rules};
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
    /// Where iiswsgi.exe lives on the target.
    pub iiswsgi_exe: String,
    /// Zip writer settings.
    pub zip: ZipOptions,
}

impl PackageOptions {
    /// Defaults for a manifest: `dist/` beside it, no epoch, the default exe.
    pub fn new(out_dir: impl Into<PathBuf>, time: TimePolicy) -> Self {
        Self {
            out_dir: out_dir.into(),
            time,
            base_url: None,
            iiswsgi_exe: DEFAULT_IISWSGI_EXE.to_string(),
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

/// Everything [`Plan::write`] needs; built by [`plan`] without touching the disk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The app name (zip folder, productId).
    pub app_name: String,
    /// `out_dir/<Name>-<version>.zip`.
    pub zip_path: PathBuf,
    /// `out_dir/<Name>-<version>.webpi.xml`.
    pub feed_path: PathBuf,
    /// Manifest.xml, Parameters.xml, the web.config placeholder and template, in memory.
    pub generated: Vec<GeneratedFile>,
    /// The installed web.config rendered for a sample path (checked, not packaged).
    pub sample_web_config: String,
    /// Image files to publish next to the zip: (source, destination).
    pub assets: Vec<(PathBuf, PathBuf)>,
    /// The feed, with the installer's sha1 and size still to fill in.
    pub feed: FeedXml,
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
    /// The feed file.
    pub feed_path: PathBuf,
    /// The download URL written into the feed.
    pub installer_url: String,
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

/// Computes and renders everything; pure (no I/O, no clock).
pub fn plan(manifest: &Manifest, options: &PackageOptions) -> Result<Plan, PackageError> {
    let templates = Templates::shared()?;
    let name = manifest.app.name.as_str();
    let app_folder = ZipPath::new(name)?;
    let stem = format!("{name}-{}", manifest.app.version);
    let zip_name = format!("{stem}.zip");
    let zip_path = options.out_dir.join(&zip_name);
    let feed_path = options.out_dir.join(format!("{stem}.webpi.xml"));

    let manifest_xml = templates.render(&manifest_xml_context(manifest, options))?;
    let parameters_xml = templates.render(&parameters_context(manifest)?)?;
    let pending = templates.render(&PendingWebConfig {
        app_name: name.to_string(),
    })?;
    let key = FastCgiKey::for_app(&options.iiswsgi_exe, &sample_physical_path(name));
    let sample_web_config = templates.render(&web_config(manifest, &key))?;

    let mut warnings = Findings::default();
    lint_generated(
        &manifest_xml,
        &parameters_xml,
        &sample_web_config,
        &key,
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

    let base = webpi::download_base(options.base_url.as_deref(), manifest);
    let installer_url = match &base {
        Some(b) => webpi::installer_url(b, &zip_name),
        None => {
            warnings.warn(
                "F03",
                "",
                "no [feed] download-base-url (or --base-url): the feed points at the local zip with a file:// URL".into(),
            );
            webpi::file_url(&zip_path)
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
    let feed_name = format!("{stem}.webpi.xml");
    let meta = FeedMeta {
        title: manifest.app.title.clone(),
        id: manifest
            .feed
            .feed_url
            .as_ref()
            .map(|u| u.as_str().to_string())
            .or_else(|| base.as_ref().map(|b| webpi::installer_url(b, &feed_name)))
            .unwrap_or_else(|| webpi::file_url(&feed_path)),
        author: manifest
            .app
            .author
            .clone()
            .unwrap_or_else(|| manifest.app.title.clone()),
        updated: time,
    };
    let feed = webpi::feed(&meta, vec![entry], &manifest.feed.keywords);

    Ok(Plan {
        app_name: name.to_string(),
        zip_path,
        feed_path,
        generated,
        sample_web_config,
        assets,
        feed,
        warnings,
        manifest: manifest.clone(),
        options: options.clone(),
        app_folder,
    })
}

/// Runs the M/O/P/C rules on the generated files: errors stop the build, warnings are kept.
fn lint_generated(
    manifest_xml: &str,
    parameters_xml: &str,
    web_config: &str,
    key: &FastCgiKey,
    warnings: &mut Findings,
) -> Result<(), PackageError> {
    let parse = |text: &str, what: &'static str| {
        xml::parse(text).map_err(|e| PackageError::Generated {
            what,
            findings: format!("not well-formed XML: {e}"),
        })
    };
    let info = manifest_xml::lint(&parse(manifest_xml, "Manifest.xml")?, "Manifest.xml");
    let params = parameters::lint(
        &parse(parameters_xml, "Parameters.xml")?,
        "Parameters.xml",
        Some(PackageContext {
            manifest: &info,
            files: None,
        }),
    );
    let wc = web_config_rules::lint(
        &parse(web_config, "web.config")?,
        "web.config",
        Some(&key.script_processor()),
    );
    for (what, findings) in [
        ("Manifest.xml", info.findings),
        ("Parameters.xml", params),
        ("web.config", wc),
    ] {
        if findings.errors() > 0 {
            return Err(PackageError::Generated {
                what,
                findings: findings.render_errors(),
            });
        }
        warnings.extend(findings);
    }
    Ok(())
}

/// The Manifest.xml context.
fn manifest_xml_context(manifest: &Manifest, options: &PackageOptions) -> ManifestXml {
    let name = manifest.app.name.as_str();
    let command = install_command(&options.iiswsgi_exe, name);
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

/// The Parameters.xml context: Application Path, the manifest's parameters, hidden setAcl ones.
fn parameters_context(manifest: &Manifest) -> Result<ParametersXml, PackageError> {
    let name = manifest.app.name.as_str();
    let mut parameters = vec![ParameterElement {
        name: APPLICATION_PATH_PARAMETER.to_string(),
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
            "" => format!("{{{APPLICATION_PATH_PARAMETER}}}"),
            sub => format!("{{{APPLICATION_PATH_PARAMETER}}}/{sub}"),
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

    /// Writes the zip and the feed (and publishes image files next to them).
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
        add_tree(&mut gate, &root, &self.app_folder, |rel, is_dir| {
            if Some(rel) == manifest_rel.as_deref() || rel == crate::manifest::FILE_NAME {
                Visit::Skip
            } else if is_dir {
                if pkg.is_excluded(rel) {
                    Visit::Skip
                } else if pkg.is_packaged(rel) {
                    Visit::Add
                } else {
                    Visit::Descend
                }
            } else if pkg.is_packaged(rel) {
                Visit::Add
            } else {
                Visit::Skip
            }
        })?;
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

        let mut warnings = self.warnings.clone();
        let mut feed = self.feed.clone();
        let mut installer_url = String::new();
        for entry in &mut feed.entries {
            entry.installer.sha1 = zip.sha1_hex();
            entry.installer.file_size = webpi::file_size_kib(zip.size);
            installer_url = entry.installer.url.clone();
        }
        previous_feed_warning(
            &self.feed_path,
            &installer_url,
            &zip.sha1_hex(),
            &mut warnings,
        );
        let xml = Templates::new()?.render(&feed)?;
        crate::fsutil::write_atomically(&self.feed_path, xml.as_bytes()).map_err(|source| {
            PackageError::Write {
                path: self.feed_path.clone(),
                source,
            }
        })?;
        for (from, to) in &self.assets {
            fs_err::copy(from, to).map_err(|source| PackageError::Read {
                path: from.clone(),
                source,
            })?;
        }
        Ok(PackageReport {
            zip,
            feed_path: self.feed_path.clone(),
            installer_url,
            warnings,
        })
    }
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
        assert_eq!(plan.feed_path, Path::new("/out/ShopApp-2.1.0.webpi.xml"));
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
        let entry = &plan.feed.entries[0];
        assert_eq!(
            entry.installer.url,
            "https://dl.example.com/shop/ShopApp-2.1.0.zip"
        );
        assert_eq!(entry.updated, "2023-11-14T22:13:20Z");
        assert_eq!(
            plan.feed.id,
            "https://dl.example.com/shop/ShopApp-2.1.0.webpi.xml"
        );
        o.base_url = Some("https://mirror.example.org/x".into());
        let plan2 = super::plan(&manifest(MANIFEST), &o).expect("plan");
        assert_eq!(
            plan2.feed.entries[0].installer.url,
            "https://mirror.example.org/x/ShopApp-2.1.0.zip"
        );
    }

    #[test]
    fn web_config_sample_routes_everything_to_the_registered_key() {
        let plan = plan(&manifest(MANIFEST), &options()).expect("plan");
        let key = FastCgiKey::for_app(DEFAULT_IISWSGI_EXE, r"C:\inetpub\wwwroot\ShopApp");
        assert!(plan.sample_web_config.contains(&format!(
            "scriptProcessor=\"{}\"",
            crate::package::render::escape_xml(&key.script_processor())
        )));
        let (xml_text, expected) =
            crate::deploy::installed_web_config_sample(MANIFEST, Template::WebConfig.source())
                .expect("sample");
        assert_eq!(expected, key.script_processor());
        assert!(xml_text.contains("responseBufferLimit=\"0\""));
    }
}
