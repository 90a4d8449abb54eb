//! The context structs, one per template, named after it. Plain data: the modules that know
//! the rules (msdeploy, webpi, iis) fill them; the templates lay them out.

use serde::Serialize;

use super::{Context, Template};

/// Context of `templates/msdeploy/manifest.xml.hbs`: the providers of `Manifest.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestXml {
    /// `<iisApp path>`: the package folder holding the app (the app name).
    pub iis_app_path: String,
    /// One `<setAcl>` per writable folder or file.
    pub set_acls: Vec<SetAclElement>,
    /// The post-install step.
    pub run_command: RunCommandElement,
}

impl Context for ManifestXml {
    const TEMPLATE: Template = Template::ManifestXml;
}

/// A `<setAcl>` provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAclElement {
    /// Package-relative path, app folder included (`MyApp/App_Data`).
    pub path: String,
    /// `setAclAccess` (comma list of FileSystemRights).
    pub access: Option<String>,
    /// `setAclUser`; absent means the app-pool identity.
    pub user: Option<String>,
    /// `setAclResourceType` (`File`); absent means Directory.
    pub resource_type: Option<String>,
}

/// The `<runCommand>` provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunCommandElement {
    /// The command line, also the blob's `path`.
    pub path: String,
    /// `MSDeploy.MSDeployProviderOptions`: base64(gzip(NRBF)).
    pub provider_options: String,
}

/// Context of `templates/msdeploy/parameters.xml.hbs`: every `<parameter>` in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParametersXml {
    /// Application Path first, then the user's parameters, then the hidden setAcl ones.
    pub parameters: Vec<ParameterElement>,
}

impl Context for ParametersXml {
    const TEMPLATE: Template = Template::ParametersXml;
}

/// A `<parameter>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterElement {
    /// `name`, also the `{name}` reference key.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `defaultValue`.
    pub default_value: Option<String>,
    /// `tags` (comma list).
    pub tags: Option<String>,
    /// `<parameterValidation>`.
    pub validation: Option<ValidationElement>,
    /// `<parameterEntry>` children.
    pub entries: Vec<EntryElement>,
}

/// A `<parameterValidation>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationElement {
    /// `type` (`AllowEmpty,RegularExpression`…).
    pub kind: String,
    /// `validationString`.
    pub validation_string: Option<String>,
}

/// A `<parameterEntry>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryElement {
    /// `type` (`ProviderPath`, `TextFile`, `XmlFile`).
    pub kind: String,
    /// `scope` regex.
    pub scope: String,
    /// `match` regex or XPath.
    #[serde(rename = "match")]
    pub match_: String,
}

/// Context of `templates/web.config.hbs`: the installed app's web.config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebConfig {
    /// The iiswsgi version that rendered it (a comment).
    pub iiswsgi_version: String,
    /// The app name (a comment).
    pub app_name: String,
    /// The FastCGI handler mapping.
    pub handler: HandlerElement,
    /// `<requestFiltering>`.
    pub request_filtering: RequestFilteringElement,
    /// One `<location>` per `[[iis.static]]`: IIS's StaticFileModule serves it, not Python.
    pub static_locations: Vec<StaticLocationElement>,
}

impl Context for WebConfig {
    const TEMPLATE: Template = Template::WebConfig;
}

/// The `<handlers><add>` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerElement {
    /// `name`.
    pub name: String,
    /// `path`.
    pub path: String,
    /// `verb` (comma list).
    pub verb: String,
    /// `scriptProcessor`: exactly the registered `fullPath|arguments`.
    pub script_processor: String,
    /// `resourceType`.
    pub resource_type: String,
    /// `requireAccess`.
    pub require_access: String,
    /// `responseBufferLimit`.
    pub response_buffer_limit: u32,
}

impl HandlerElement {
    /// The mapping for the manifest's `[iis.handler]` pointing at `script_processor`
    /// (`fullPath|arguments`): what both web.config and the appcmd registration use.
    pub fn new(handler: &crate::manifest::Handler, script_processor: String) -> Self {
        Self {
            name: handler.name.clone(),
            path: handler.path.clone(),
            verb: handler.verbs.join(","),
            script_processor,
            resource_type: handler.resource_type.as_str().to_string(),
            require_access: handler.require_access.as_str().to_string(),
            response_buffer_limit: handler.response_buffer_limit,
        }
    }
}

/// A `<location path>` whose handlers are cleared down to IIS's StaticFile handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticLocationElement {
    /// `path`: the folder relative to the app, `/` separators, which is also its URL path.
    pub path: String,
}

/// `<requestFiltering>` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestFilteringElement {
    /// `allowDoubleEscaping`.
    pub allow_double_escaping: bool,
    /// `requestLimits/@maxAllowedContentLength`.
    pub max_allowed_content_length: u32,
}

/// Context of `templates/web.config.pending.hbs`: the web.config a package ships, which
/// serves nothing until `iiswsgi install` replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingWebConfig {
    /// The app name (comments).
    pub app_name: String,
}

impl Context for PendingWebConfig {
    const TEMPLATE: Template = Template::PendingWebConfig;
}

/// Context of `templates/webpi/feed.xml.hbs`: an Atom WebPI feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedXml {
    /// Feed `title`.
    pub title: String,
    /// Feed `id`: the feed's own URL.
    pub id: String,
    /// `updated`, `yyyy-MM-ddTHH:mm:ssZ`.
    pub updated: String,
    /// `author/name`.
    pub author: String,
    /// Keyword definitions the entries refer to.
    pub keywords: Vec<KeywordElement>,
    /// Languages the installers use.
    pub languages: Vec<LanguageElement>,
    /// The entries (partial `templates/webpi/entry.xml.hbs`).
    pub entries: Vec<FeedEntry>,
}

impl Context for FeedXml {
    const TEMPLATE: Template = Template::FeedXml;
}

/// A feed-level `<keyword id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordElement {
    /// The id entries use in `keywordId`.
    pub id: String,
    /// The text shown.
    pub text: String,
}

/// A feed-level `<language>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageElement {
    /// `languageId` (`en`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it is the default language.
    pub default: bool,
}

/// One `<entry type="application">`: data of the partial `templates/webpi/entry.xml.hbs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedEntry {
    /// `productId`: the app name.
    pub product_id: String,
    /// `title`.
    pub title: String,
    /// `id`: a URL.
    pub id: String,
    /// `summary`.
    pub summary: String,
    /// `updated`.
    pub updated: String,
    /// `published`.
    pub published: String,
    /// `longSummary`.
    pub long_summary: Option<String>,
    /// `version`.
    pub version: String,
    /// `link href`.
    pub link: Option<String>,
    /// `author/name`.
    pub author: Option<String>,
    /// `images`.
    pub images: Option<ImagesElement>,
    /// `keywords/keywordId`.
    pub keyword_ids: Vec<String>,
    /// productIds added to the built-in dependencies.
    pub extra_dependencies: Vec<String>,
    /// The installer's `languageId`.
    pub language: String,
    /// The zip.
    pub installer: InstallerFileElement,
    /// `msDeploy/startPage`.
    pub start_page: String,
    /// `helpLink`.
    pub help_link: Option<String>,
    /// `eulaURL`.
    pub eula_url: Option<String>,
}

/// `images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagesElement {
    /// `icon` URL.
    pub icon: Option<String>,
    /// `screenshot` URL.
    pub screenshot: Option<String>,
}

/// `installerFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallerFileElement {
    /// `fileSize` in KiB, rounded up.
    pub file_size: u64,
    /// `installerURL`.
    pub url: String,
    /// `sha1`, lowercase hex.
    pub sha1: String,
}
