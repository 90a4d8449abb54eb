//! WebPI feeds: the Atom entries that let Web Platform Installer find and verify a package.
//!
//! Rules from msdeploy-webpi.md §6: every element in the Atom namespace, `webpiFile` 5.0.0.0,
//! the zip's SHA-1 in lowercase hex, `fileSize` = ceil(bytes / 1024), an `installerURL` built
//! from the download base URL and the versioned zip name (so every build gets a new URL: WebPI
//! caches by URL and fails on a stale sha1), dependencies `or(WDeployNoSMO, WDeploy)` +
//! `IISManagementConsole` + `CGI` + the manifest's extras, dates as `yyyy-MM-ddTHH:mm:ssZ`
//! (the caller passes the time, honouring `SOURCE_DATE_EPOCH`).
//!
//! [`entry`] and [`feed`] build the render contexts; [`build_feed`] is `iiswsgi feed`: it reads
//! each package's Manifest.xml and shipped `iiswsgi.toml` and writes one feed.

use std::path::{Path, PathBuf};

use crate::manifest::{Asset, Manifest, ManifestError};
use crate::package::msdeploy::reader::{self, ZipEntry};
use crate::package::msdeploy::timestamp::{TimePolicy, feed_date};
use crate::package::render::{
    FeedEntry, FeedXml, ImagesElement, InstallerFileElement, KeywordElement, LanguageElement,
    RenderError, Templates,
};

/// Why a feed could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A package could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The package.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not an iiswsgi package (no Manifest.xml, no shipped iiswsgi.toml…).
    #[error("{} is not an iiswsgi package: {reason}", path.display())]
    NotAPackage {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The manifest shipped in a package does not validate.
    #[error("the iiswsgi.toml inside {} is invalid:\n{}", path.display(), source.render())]
    Manifest {
        /// The package.
        path: PathBuf,
        /// The manifest errors.
        #[source]
        source: ManifestError,
    },
    /// Two packages are the same product.
    #[error("{} and an earlier package are both product `{product}`", path.display())]
    DuplicateProduct {
        /// The later package.
        path: PathBuf,
        /// The productId.
        product: String,
    },
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The feed could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The installer file an entry points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installer {
    /// Absolute URL the zip is downloaded from.
    pub url: String,
    /// SHA-1 of the zip.
    pub sha1: [u8; 20],
    /// Size of the zip in bytes.
    pub bytes: u64,
}

/// `fileSize`: KiB, rounded up.
pub fn file_size_kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// Where the zips are downloaded from: `--base-url` beats `[feed] download-base-url`
/// (msdeploy-webpi.md §8.4: the command line, then iiswsgi.toml, then nothing).
pub fn download_base(cli: Option<&str>, manifest: &crate::manifest::Manifest) -> Option<String> {
    cli.map(str::to_string).or_else(|| {
        manifest
            .feed
            .download_base_url
            .as_ref()
            .map(|u| u.as_str().to_string())
    })
}

/// `base` (ending in `/` or not) joined with a file name, percent-encoding what a URL path
/// cannot hold.
pub fn installer_url(base: &str, file_name: &str) -> String {
    let mut url = base.to_string();
    if !url.ends_with('/') {
        url.push('/');
    }
    push_percent_encoded(&mut url, file_name, b"-._~+");
    url
}

/// A `file:///` URL for an absolute local path (for feeds tried out before publishing).
pub fn file_url(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut url = String::from("file://");
    if !text.starts_with('/') {
        url.push('/');
    }
    push_percent_encoded(&mut url, &text, b"-._~+/:");
    url
}

/// Appends `text` to `url`, ASCII letters, digits and the bytes of `keep` as they are, every
/// other byte as `%XX`.
fn push_percent_encoded(url: &mut String, text: &str, keep: &[u8]) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
}

/// A keyword id: the keyword's letters and digits.
pub fn keyword_id(keyword: &str) -> String {
    keyword
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// Display name of a language id.
fn language_name(id: &str) -> String {
    match id.to_ascii_lowercase().as_str() {
        "en" => "English",
        "de" => "Deutsch",
        "fr" => "Français",
        "es" => "Español",
        "it" => "Italiano",
        "ja" => "日本語",
        "zh-cn" => "简体中文",
        _ => id,
    }
    .to_string()
}

/// The URL of a manifest image: as written, or `base` + the published file name.
pub fn asset_url(
    asset: &Asset,
    published_name: &str,
    base: Option<&str>,
    out_dir: &Path,
) -> String {
    match asset {
        Asset::Url(u) => u.as_str().to_string(),
        Asset::File(_) => match base {
            Some(b) => installer_url(b, published_name),
            None => file_url(&out_dir.join(published_name)),
        },
    }
}

/// The name an image file is published under next to the zip: `<Name>-<file name>`.
pub fn published_asset_name(manifest: &Manifest, asset: &Asset) -> Option<String> {
    match asset {
        Asset::Url(_) => None,
        Asset::File(rel) => {
            let file = rel.as_str().rsplit('/').next().unwrap_or(rel.as_str());
            Some(format!("{}-{file}", manifest.app.name))
        }
    }
}

/// The entry for one package built from `manifest`, published at `installer`, dated `time`.
/// `images` are the icon and screenshot URLs, already resolved.
pub fn entry(
    manifest: &Manifest,
    installer: &Installer,
    time: i64,
    images: (Option<String>, Option<String>),
) -> FeedEntry {
    let app = &manifest.app;
    let date = feed_date(time);
    let homepage = app.homepage_url.as_ref().map(|u| u.as_str().to_string());
    FeedEntry {
        product_id: app.name.to_string(),
        title: app.title.clone(),
        id: homepage.clone().unwrap_or_else(|| installer.url.clone()),
        summary: app.description.clone().unwrap_or_else(|| app.title.clone()),
        updated: date.clone(),
        published: date,
        long_summary: manifest.feed.long_summary.clone(),
        version: app.version.to_string(),
        link: homepage,
        author: app.author.clone(),
        images: match images {
            (None, None) => None,
            (icon, screenshot) => Some(ImagesElement { icon, screenshot }),
        },
        keyword_ids: manifest
            .feed
            .keywords
            .iter()
            .map(|k| keyword_id(k))
            .collect(),
        extra_dependencies: manifest.feed.dependencies.clone(),
        language: manifest.feed.language.clone(),
        installer: InstallerFileElement {
            file_size: file_size_kib(installer.bytes),
            url: installer.url.clone(),
            sha1: crate::package::hex(&installer.sha1),
        },
        start_page: manifest.feed.start_page.clone(),
        help_link: app.help_url.as_ref().map(|u| u.as_str().to_string()),
        eula_url: app.license_url.as_ref().map(|u| u.as_str().to_string()),
    }
}

/// Feed-level data around entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMeta {
    /// Feed title.
    pub title: String,
    /// The feed's own URL (its Atom `id`).
    pub id: String,
    /// `author/name`.
    pub author: String,
    /// `updated`, seconds since the Unix epoch.
    pub updated: i64,
}

/// A feed around `entries`, defining every keyword and language they use, with the
/// manifests' keyword texts.
pub fn feed(meta: &FeedMeta, entries: Vec<FeedEntry>, keyword_texts: &[String]) -> FeedXml {
    let mut keywords: Vec<KeywordElement> = Vec::new();
    for text in keyword_texts {
        let id = keyword_id(text);
        if !id.is_empty() && !keywords.iter().any(|k| k.id == id) {
            keywords.push(KeywordElement {
                id,
                text: text.clone(),
            });
        }
    }
    let mut languages: Vec<LanguageElement> = Vec::new();
    for e in &entries {
        if !languages.iter().any(|l| l.id == e.language) {
            languages.push(LanguageElement {
                id: e.language.clone(),
                name: language_name(&e.language),
                default: languages.is_empty(),
            });
        }
    }
    FeedXml {
        title: meta.title.clone(),
        id: meta.id.clone(),
        updated: feed_date(meta.updated),
        author: meta.author.clone(),
        keywords,
        languages,
        entries,
    }
}

/// Options of `iiswsgi feed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOptions {
    /// Where the feed is written.
    pub out: PathBuf,
    /// Download base URL; overrides each manifest's `[feed] download-base-url`.
    pub base_url: Option<String>,
    /// The feed's own URL (Atom `id`); default: base URL + the output's file name.
    pub feed_url: Option<String>,
    /// Feed title; default: the first package's title, or "iiswsgi feed" for several.
    pub title: Option<String>,
    /// Build time and `SOURCE_DATE_EPOCH`.
    pub time: TimePolicy,
}

/// What `iiswsgi feed` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedReport {
    /// The feed file.
    pub path: PathBuf,
    /// One line per entry: productId, version, installer URL.
    pub entries: Vec<(String, String, String)>,
}

/// `iiswsgi feed`: one feed with an entry per package.
pub fn build_feed(packages: &[PathBuf], options: &FeedOptions) -> Result<FeedReport, FeedError> {
    let templates = Templates::new()?;
    let out_dir = options.out.parent().unwrap_or(Path::new(""));
    let mut entries = Vec::new();
    let mut keywords = Vec::new();
    let mut authors = Vec::new();
    let mut titles = Vec::new();
    let mut feed_urls = Vec::new();
    let mut report = Vec::new();
    for path in packages {
        let package = read_package(path)?;
        let manifest = &package.manifest;
        if entries.iter().any(|e: &FeedEntry| {
            e.product_id
                .eq_ignore_ascii_case(manifest.app.name.as_str())
        }) {
            return Err(FeedError::DuplicateProduct {
                path: path.clone(),
                product: manifest.app.name.to_string(),
            });
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = download_base(options.base_url.as_deref(), manifest);
        let url = match &base {
            Some(b) => installer_url(b, &file_name),
            None => file_url(&std::path::absolute(path).unwrap_or_else(|_| path.clone())),
        };
        let image = |asset: &Option<Asset>| {
            asset.as_ref().map(|a| {
                let name = published_asset_name(manifest, a).unwrap_or_default();
                asset_url(a, &name, base.as_deref(), out_dir)
            })
        };
        let images = (image(&manifest.app.icon), image(&manifest.app.screenshot));
        let time = package.time.unwrap_or_else(|| options.time.generated());
        let installer = Installer {
            url: url.clone(),
            sha1: package.sha1,
            bytes: package.bytes,
        };
        entries.push(entry(manifest, &installer, time, images));
        keywords.extend(manifest.feed.keywords.iter().cloned());
        if let Some(a) = &manifest.app.author {
            authors.push(a.clone());
        }
        titles.push(manifest.app.title.clone());
        if let Some(u) = &manifest.feed.feed_url {
            feed_urls.push(u.as_str().to_string());
        }
        report.push((
            manifest.app.name.to_string(),
            manifest.app.version.to_string(),
            url,
        ));
    }
    let out_name = options
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "feed.xml".into());
    let id = options
        .feed_url
        .clone()
        .or_else(|| {
            options
                .base_url
                .as_ref()
                .map(|b| installer_url(b, &out_name))
        })
        .or_else(|| feed_urls.first().cloned())
        .unwrap_or_else(|| {
            file_url(&std::path::absolute(&options.out).unwrap_or_else(|_| options.out.clone()))
        });
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| match titles.as_slice() {
            [one] => one.clone(),
            _ => "iiswsgi feed".to_string(),
        });
    let meta = FeedMeta {
        title,
        id,
        author: authors.first().cloned().unwrap_or_else(|| "iiswsgi".into()),
        updated: options.time.generated(),
    };
    let xml = templates.render(&feed(&meta, entries, &keywords))?;
    crate::fsutil::write_atomically(&options.out, xml.as_bytes()).map_err(|source| {
        FeedError::Write {
            path: options.out.clone(),
            source,
        }
    })?;
    Ok(FeedReport {
        path: options.out.clone(),
        entries: report,
    })
}

/// Largest Manifest.xml or iiswsgi.toml `iiswsgi feed` reads from a package.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// What `iiswsgi feed` needs from one package.
struct PackageFacts {
    manifest: Manifest,
    sha1: [u8; 20],
    bytes: u64,
    /// The Manifest.xml entry time (the build time or epoch of the package).
    time: Option<i64>,
}

fn read_package(path: &Path) -> Result<PackageFacts, FeedError> {
    let not = |reason: String| FeedError::NotAPackage {
        path: path.to_path_buf(),
        reason,
    };
    let (sha1, bytes) = reader::sha1_file(path).map_err(|source| FeedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut file = fs_err::File::open(path).map_err(|source| FeedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = reader::read_directory(&mut file).map_err(|e| not(e.to_string()))?;
    let find = |name: &str| -> Option<&ZipEntry> {
        dir.entries
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    };
    let manifest_xml =
        find("Manifest.xml").ok_or_else(|| not("no Manifest.xml at the root".into()))?;
    let text = reader::read_text(&mut file, manifest_xml, MAX_TEXT_BYTES)
        .map_err(|e| not(e.to_string()))?;
    let root = crate::xml::parse(&text).map_err(|e| not(format!("Manifest.xml: {e}")))?;
    let app = root
        .children
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case("iisApp"))
        .and_then(|e| e.attr("path"))
        .ok_or_else(|| not("Manifest.xml has no <iisApp path>".into()))?
        .to_string();
    let toml_name = format!("{app}/{}", crate::manifest::FILE_NAME);
    let toml = find(&toml_name).ok_or_else(|| {
        not(format!(
            "no {toml_name} (packages built by iiswsgi ship it)"
        ))
    })?;
    let toml_text =
        reader::read_text(&mut file, toml, MAX_TEXT_BYTES).map_err(|e| not(e.to_string()))?;
    let shown = PathBuf::from(format!("{}!{toml_name}", path.display()));
    let manifest = Manifest::parse(&toml_text, &shown).map_err(|source| FeedError::Manifest {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(PackageFacts {
        manifest,
        sha1,
        bytes,
        time: manifest_xml.time.to_unix(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_size_rounds_up_to_kib() {
        assert_eq!(file_size_kib(0), 0);
        assert_eq!(file_size_kib(1), 1);
        assert_eq!(file_size_kib(1024), 1);
        assert_eq!(file_size_kib(1025), 2);
    }

    #[test]
    fn installer_url_joins_and_encodes() {
        assert_eq!(
            installer_url("https://example.com/dl", "MyApp-1.0+local.zip"),
            "https://example.com/dl/MyApp-1.0+local.zip"
        );
        assert_eq!(
            installer_url("https://x/", "a b.zip"),
            "https://x/a%20b.zip"
        );
    }

    #[test]
    fn file_urls_are_absolute() {
        assert_eq!(file_url(Path::new("/tmp/a b.zip")), "file:///tmp/a%20b.zip");
        assert_eq!(
            file_url(Path::new(r"C:\dist\a.zip")),
            "file:///C:/dist/a.zip"
        );
    }

    #[test]
    fn keyword_ids_keep_letters_and_digits() {
        assert_eq!(keyword_id("Python 3 / WSGI"), "Python3WSGI");
    }
}
