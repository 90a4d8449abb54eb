//! Rules F01–F09 (WebPI feeds), msdeploy-webpi.md §6 and §7.5.
//!
//! The sha1 and size of an installer are checked against the zip itself when it can be found
//! locally: a `file://` URL, a relative URL, or a file next to the feed named like the URL's last
//! segment (the layout `iiswsgi package` writes in `dist/`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{CheckOptions, Findings};
use crate::xml::{self, Element};

/// The Atom namespace every feed element must be in.
pub const ATOM: &str = "http://www.w3.org/2005/Atom";

/// Product ids Microsoft's feeds define; an app reusing one breaks installs (F02).
const MICROSOFT_IDS: &[&str] = &[
    "WDeploy",
    "WDeployNoSMO",
    "WDeployPS",
    "IISManagementConsole",
    "CGI",
    "PHP",
    "PHP53",
    "PHP54",
    "PHP55",
    "Python27",
    "MySQL",
    "SQLExpress",
    "SQLCE",
    "UrlRewrite2",
    "NETFramework4",
    "NETFramework35",
    "ASPNET",
    "ASPNET45",
    "StaticContent",
    "DefaultDocument",
    "WebMatrix",
    "IISExpress",
    "IIS7",
    "ARRv3_0",
    "WebFarmFrameworkv2",
];

/// Attributes each element may carry (F08 warns on others).
fn allowed_attrs(local: &str) -> &'static [&'static str] {
    match local {
        "webpiFile" => &["version"],
        "entry" => &["type"],
        "keyword" => &["id"],
        "language" => &["default"],
        "link" => &["href", "rel", "type"],
        "title" | "summary" | "longSummary" | "name" | "description" => &["resourceName"],
        "dependency" => &["id", "idref"],
        "os" | "osList" => &["id", "idref"],
        "tab" => &["id"],
        _ => &[],
    }
}

/// Runs the F rules; `dir` is the feed's folder (to find zips), `label` names it.
pub fn lint(root: &Element, label: &str, dir: Option<&Path>, options: &CheckOptions) -> Findings {
    let mut f = Findings::default();
    let at = |line: usize| format!("{label}:{line}");
    // F01: the root and every element in the Atom namespace.
    if root.local != "feed" || root.namespace.as_deref() != Some(ATOM) {
        f.error(
            "F01",
            at(root.line),
            format!("the root must be `<feed xmlns=\"{ATOM}\">`"),
        );
    }
    let mut reported = HashSet::new();
    for e in root.descendants() {
        if e.namespace.as_deref() != Some(ATOM) && reported.insert(e.name.clone()) {
            f.error(
                "F01",
                at(e.line),
                format!(
                    "`<{}>` is not in the Atom namespace; WebPI will not see it",
                    e.name
                ),
            );
        }
        let allowed = allowed_attrs(&e.local);
        for (k, _) in &e.attrs {
            if !k.starts_with("xmlns") && !allowed.contains(&k.as_str()) {
                f.warn(
                    "F08",
                    at(e.line),
                    format!("unknown attribute `{k}` on `<{}>`", e.local),
                );
            }
        }
    }
    if let Some(d) = root.child_text("updated") {
        date(d, &at(root.line), &mut f);
    }
    let named: HashMap<String, &Element> = root
        .child("dependencies")
        .into_iter()
        .flat_map(|d| d.children_named("dependency"))
        .filter_map(|d| d.attr("id").map(|id| (id.to_string(), d)))
        .collect();
    for d in named.values() {
        dependency_forms(d, &named, &at, &mut f);
    }
    let keywords: HashSet<&str> = root
        .child("keywords")
        .into_iter()
        .flat_map(|k| k.children_named("keyword"))
        .filter_map(|k| k.attr("id"))
        .collect();
    let languages: HashSet<&str> = root
        .child("languages")
        .into_iter()
        .flat_map(|l| l.children_named("language"))
        .filter_map(|l| l.child_text("languageId"))
        .collect();
    let has_resources = root.child("resourcesList").is_some();
    if !has_resources
        && let Some(e) = root
            .descendants()
            .into_iter()
            .find(|e| e.attr("resourceName").is_some())
    {
        f.warn(
            "F07",
            at(e.line),
            "`resourceName` is used but the feed has no `resourcesList`".into(),
        );
    }
    let previous = previous_urls(options);
    let mut product_ids: HashMap<String, usize> = HashMap::new();
    for entry in root.children_named("entry") {
        let loc = at(entry.line);
        // F02: productId present and unique.
        match entry.child_text("productId") {
            None | Some("") => f.error("F02", loc.clone(), "an entry has no productId".into()),
            Some(id) => {
                if let Some(first) = product_ids.insert(id.to_lowercase(), entry.line) {
                    f.error(
                        "F02",
                        loc.clone(),
                        format!("productId `{id}` is used twice (first at line {first}); ids are unique case-insensitively"),
                    );
                }
                if MICROSOFT_IDS.iter().any(|m| m.eq_ignore_ascii_case(id)) {
                    f.warn(
                        "F02",
                        loc.clone(),
                        format!("productId `{id}` collides with a Microsoft product"),
                    );
                }
            }
        }
        for d in ["updated", "published"] {
            if let Some(v) = entry.child_text(d) {
                date(
                    v,
                    &at(entry.child(d).map_or(entry.line, |c| c.line)),
                    &mut f,
                );
            }
        }
        if let Some(dep) = entry.child("dependency") {
            dependency_forms(dep, &named, &at, &mut f);
        }
        for k in entry
            .child("keywords")
            .into_iter()
            .flat_map(|k| k.children_named("keywordId"))
        {
            if !keywords.contains(k.text.trim()) {
                f.warn(
                    "F07",
                    at(k.line),
                    format!(
                        "keywordId `{}` is not defined in the feed's `keywords`",
                        k.text.trim()
                    ),
                );
            }
        }
        let is_app = entry.attr("type") == Some("application");
        let has_msdeploy = entry.descendants().iter().any(|e| e.local == "msDeploy");
        if !is_app && !has_msdeploy {
            continue; // a platform product
        }
        if !is_app {
            f.error(
                "F03",
                loc.clone(),
                "an entry with an msDeploy installer needs type=\"application\"".into(),
            );
        }
        if entry.child_text("title").is_none_or(str::is_empty) {
            f.error("F03", loc.clone(), "the entry has no title".into());
        }
        if let Some(dep) = entry.child("dependency") {
            let products = products_of(dep, &named, 0);
            let any = |ids: &[&str]| {
                products
                    .iter()
                    .any(|p| ids.iter().any(|i| i.eq_ignore_ascii_case(p)))
            };
            if !any(&["WDeploy", "WDeployNoSMO", "WDeployPS"]) {
                f.warn(
                    "F07",
                    loc.clone(),
                    "the entry does not depend on Web Deploy (WDeployNoSMO or WDeploy)".into(),
                );
            }
            if !any(&["IISManagementConsole"]) {
                f.warn(
                    "F07",
                    loc.clone(),
                    "the entry does not depend on IISManagementConsole".into(),
                );
            }
        } else {
            f.warn(
                "F07",
                loc.clone(),
                "the entry has no dependency on Web Deploy or IISManagementConsole".into(),
            );
        }
        installers(entry, &languages, dir, &previous, &at, &mut f);
    }
    f
}

fn installers(
    entry: &Element,
    languages: &HashSet<&str>,
    dir: Option<&Path>,
    previous: &HashMap<String, String>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    let list: Vec<&Element> = entry
        .child("installers")
        .into_iter()
        .flat_map(|i| i.children_named("installer"))
        .collect();
    if list.is_empty() {
        f.error(
            "F03",
            at(entry.line),
            "the entry has no installers/installer".into(),
        );
    }
    let mut ids = HashSet::new();
    for inst in list {
        let loc = at(inst.line);
        match inst.child_text("id").map(str::parse::<u32>) {
            Some(Ok(id)) if id > 0 => {
                if !ids.insert(id) {
                    f.error(
                        "F03",
                        loc.clone(),
                        format!("installer id {id} is used twice in this entry"),
                    );
                }
            }
            _ => f.error(
                "F03",
                loc.clone(),
                "an installer needs a positive integer `id`".into(),
            ),
        }
        if let Some(lang) = inst.child_text("languageId")
            && !languages.contains(lang)
        {
            f.warn(
                "F07",
                loc.clone(),
                format!("languageId `{lang}` is not listed in the feed's `languages`"),
            );
        }
        if inst.child("msDeploy").is_none() {
            f.error(
                "F03",
                loc.clone(),
                "an app installer needs `<msDeploy>`".into(),
            );
        }
        if let Some(ms) = inst.child("msDeploy")
            && let Some(sp) = ms.child("startPage")
            && sp.child("startPage").is_some()
        {
            f.warn(
                "F08",
                at(sp.line),
                "nested `<startPage>` (a documentation bug copied from iis-docs)".into(),
            );
        }
        let Some(file) = inst.child("installerFile") else {
            f.error(
                "F03",
                loc.clone(),
                "the installer has no installerFile".into(),
            );
            continue;
        };
        let loc = at(file.line);
        let url = file.child_text("installerURL").unwrap_or("");
        if !is_absolute_url(url) {
            f.error(
                "F03",
                loc.clone(),
                format!("installerURL `{url}` is not an absolute http(s) or file URL"),
            );
        }
        let size = file.child_text("fileSize").map(str::parse::<i32>);
        if !matches!(size, Some(Ok(n)) if n >= 0) {
            f.error(
                "F03",
                loc.clone(),
                "fileSize must be a non-negative Int32 (KiB)".into(),
            );
        }
        let sha1 = file.child_text("sha1");
        match sha1 {
            Some(s) if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {}
            Some(s) => f.error(
                "F04",
                loc.clone(),
                format!("sha1 `{s}` is not 40 hex digits"),
            ),
            None => f.warn(
                "F04",
                loc.clone(),
                "no sha1: WebPI will not verify the download".into(),
            ),
        }
        if let (Some(s), Some(prev)) = (sha1, previous.get(url))
            && !prev.eq_ignore_ascii_case(s)
        {
            f.error(
                "F09",
                loc.clone(),
                format!("installerURL `{url}` was published before with sha1 {prev}; WebPI caches by URL, so a new build needs a new URL"),
            );
        }
        let Some(zip) = dir.and_then(|d| local_zip(url, d)) else {
            continue;
        };
        match digest(&zip) {
            Ok((digest, bytes)) => {
                if let Some(s) = sha1
                    && !s.eq_ignore_ascii_case(&digest)
                {
                    f.error(
                        "F04",
                        loc.clone(),
                        format!(
                            "sha1 {s} does not match {} (sha1 {digest}); the install would fail",
                            zip.display()
                        ),
                    );
                }
                let kib = bytes.div_ceil(1024);
                if let Some(Ok(n)) = size
                    && u64::try_from(n).ok() != Some(kib)
                {
                    f.warn(
                        "F05",
                        loc.clone(),
                        format!(
                            "fileSize {n} differs from ceil({bytes}/1024) = {kib} for {}",
                            zip.display()
                        ),
                    );
                }
            }
            Err(e) => f.warn(
                "F04",
                loc.clone(),
                format!("cannot read {} to verify sha1: {e}", zip.display()),
            ),
        }
    }
}

/// F06: every dependency has exactly one form; idrefs resolve; and/or non-empty.
fn dependency_forms(
    dep: &Element,
    named: &HashMap<String, &Element>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    for d in dep.descendants() {
        if d.local != "dependency" {
            if (d.local == "and" || d.local == "or")
                && d.children_named("dependency").next().is_none()
            {
                f.error(
                    "F06",
                    at(d.line),
                    format!("`<{}>` has no dependencies", d.local),
                );
            }
            continue;
        }
        let forms = usize::from(d.attr("idref").is_some())
            + d.children
                .iter()
                .filter(|c| matches!(c.local.as_str(), "productId" | "and" | "or"))
                .count();
        // A named definition (`<dependency id>`) at feed level holds one form too.
        if forms != 1 {
            f.error(
                "F06",
                at(d.line),
                format!("a dependency must hold exactly one of productId, idref, and, or (found {forms})"),
            );
        }
        if let Some(id) = d.attr("idref")
            && !named.contains_key(id)
        {
            f.error(
                "F06",
                at(d.line),
                format!("idref `{id}` names no dependency in this feed"),
            );
        }
    }
}

/// Every productId reachable from `dep` (idrefs followed, depth-limited).
fn products_of<'a>(
    dep: &'a Element,
    named: &HashMap<String, &'a Element>,
    depth: usize,
) -> Vec<&'a str> {
    if depth > 16 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for d in dep.descendants() {
        if d.local == "productId" {
            out.push(d.text.trim());
        }
        if let Some(target) = d.attr("idref").and_then(|id| named.get(id)) {
            out.extend(products_of(target, named, depth + 1));
        }
    }
    out
}

/// F08: `yyyy-MM-ddTHH:mm:ssZ`.
fn date(value: &str, loc: &str, f: &mut Findings) {
    let b = value.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        f.warn(
            "F08",
            loc,
            format!("date `{value}` is not in the form yyyy-MM-ddTHH:mm:ssZ"),
        );
    }
}

fn is_absolute_url(url: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|p| url.len() > p.len() && url[..p.len()].eq_ignore_ascii_case(p))
}

/// Where the zip named by `url` is on this machine, if anywhere.
pub fn local_zip(url: &str, feed_dir: &Path) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if let Some(rest) = url.strip_prefix("file://") {
        let path = percent_decode(rest.trim_start_matches('/'));
        vec![PathBuf::from(format!("/{path}")), PathBuf::from(path)]
    } else if is_absolute_url(url) {
        let last = url.split(['?', '#']).next()?.rsplit('/').next()?;
        vec![feed_dir.join(percent_decode(last))]
    } else {
        vec![feed_dir.join(percent_decode(url))]
    };
    candidates.into_iter().find(|p| p.is_file())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex_digit(b[i + 1]), hex_digit(b[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// SHA-1 (lowercase hex) and size of a file, streamed.
pub fn digest(path: &Path) -> std::io::Result<(String, u64)> {
    let (sha1, bytes) = crate::package::msdeploy::reader::sha1_file(path)?;
    Ok((crate::package::hex(&sha1), bytes))
}

/// installerURL → sha1 of the previous feed (F09), empty when there is none or it is unreadable.
fn previous_urls(options: &CheckOptions) -> HashMap<String, String> {
    let Some(path) = &options.previous_feed else {
        return HashMap::new();
    };
    let Ok(text) = fs_err::read_to_string(path) else {
        return HashMap::new();
    };
    let Ok(root) = xml::parse(&text) else {
        return HashMap::new();
    };
    installer_sha1s(&root)
}

/// installerURL → sha1 for every installer of a feed.
pub fn installer_sha1s(root: &Element) -> HashMap<String, String> {
    root.descendants()
        .into_iter()
        .filter(|e| e.local == "installerFile")
        .filter_map(|e| {
            Some((
                e.child_text("installerURL")?.to_string(),
                e.child_text("sha1")?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(entry_extra: &str, sha1: &str, url: &str) -> String {
        format!(
            r#"<feed xmlns="{ATOM}"><webpiFile version="5.0.0.0"/><title>t</title><updated>2024-01-01T00:00:00Z</updated>
<languages><language default="true"><languageId>en</languageId><name>English</name></language></languages>
<entry type="application"><productId>MyApp</productId><title>My</title>{entry_extra}
<dependency><and><dependency><or><dependency><productId>WDeployNoSMO</productId></dependency><dependency><productId>WDeploy</productId></dependency></or></dependency><dependency><productId>IISManagementConsole</productId></dependency></and></dependency>
<installers><installer><id>1</id><languageId>en</languageId><installerFile><fileSize>1</fileSize><installerURL>{url}</installerURL><sha1>{sha1}</sha1></installerFile><msDeploy><startPage/></msDeploy></installer></installers></entry></feed>"#
        )
    }

    fn run(doc: &str, dir: Option<&Path>) -> Findings {
        lint(
            &xml::parse(doc).expect("xml"),
            "feed.xml",
            dir,
            &CheckOptions::default(),
        )
    }

    fn write_zip(dir: &Path, name: &str) -> (String, u64) {
        let path = dir.join(name);
        fs_err::write(&path, b"PK\x05\x06 not really a zip").expect("write");
        digest(&path).expect("digest")
    }

    #[test]
    fn good_feed_with_matching_zip_is_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sha1, _) = write_zip(dir.path(), "MyApp-1.0.zip");
        let doc = feed("", &sha1, "https://example.com/dl/MyApp-1.0.zip");
        let f = run(&doc, Some(dir.path()));
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn wrong_sha1_is_f04_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_zip(dir.path(), "MyApp-1.0.zip");
        let doc = feed("", &"a".repeat(40), "https://example.com/MyApp-1.0.zip");
        let f = run(&doc, Some(dir.path()));
        let f04 = f.0.iter().find(|x| x.rule == "F04").expect("F04");
        assert_eq!(f04.severity, crate::package::check::Severity::Error);
        assert!(f04.message.contains("does not match"), "{}", f04.message);
    }

    #[test]
    fn file_url_zip_is_verified_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_zip(dir.path(), "a b.zip");
        let url = format!("file://{}/a%20b.zip", dir.path().display());
        let f = run(&feed("", &"b".repeat(40), &url), None);
        // `dir` is None: only file:// URLs can be resolved.
        assert!(
            f.0.is_empty(),
            "without a feed dir nothing is resolved: {f:?}"
        );
        let f = run(&feed("", &"b".repeat(40), &url), Some(Path::new("/")));
        assert!(f.has("F04"), "{f:?}");
    }

    #[test]
    fn md5_in_sha1_and_bad_size_are_flagged() {
        let f = run(
            &feed("", "d41d8cd98f00b204e9800998ecf8427e", "https://x/y.zip"),
            None,
        );
        assert!(f.has("F04"));
    }

    #[test]
    fn unqualified_entry_is_f01() {
        let doc = feed("", &"a".repeat(40), "https://x/y.zip").replace(
            "<title>t</title>",
            r#"<title>t</title><entry xmlns=""><productId>X</productId></entry>"#,
        );
        assert!(run(&doc, None).has("F01"));
    }

    #[test]
    fn duplicate_and_microsoft_product_ids_are_f02() {
        let doc = feed("", &"a".repeat(40), "https://x/y.zip");
        let doc = doc.replace("</feed>", "<entry><productId>myapp</productId><title>x</title></entry><entry><productId>CGI</productId><title>c</title></entry></feed>");
        let f = run(&doc, None);
        assert_eq!(f.0.iter().filter(|x| x.rule == "F02").count(), 2, "{f:?}");
    }

    #[test]
    fn dangling_idref_and_empty_or_are_f06() {
        let doc = feed("", &"a".repeat(40), "https://x/y.zip").replace(
            "<productId>IISManagementConsole</productId></dependency>",
            r#"<productId>IISManagementConsole</productId></dependency><dependency idref="Nope"/><dependency><or/></dependency><dependency/>"#,
        );
        let f = run(&doc, None);
        assert_eq!(f.0.iter().filter(|x| x.rule == "F06").count(), 3, "{f:?}");
    }

    #[test]
    fn missing_dependencies_keywords_languages_are_f07() {
        let doc = feed(
            "<keywords><keywordId>Nope</keywordId></keywords>",
            &"a".repeat(40),
            "https://x/y.zip",
        )
        .replace(
            "<productId>IISManagementConsole</productId>",
            "<productId>Other</productId>",
        )
        .replace(
            "<languageId>en</languageId><installerFile>",
            "<languageId>de</languageId><installerFile>",
        );
        let f = run(&doc, None);
        assert_eq!(f.0.iter().filter(|x| x.rule == "F07").count(), 3, "{f:?}");
    }

    #[test]
    fn bad_dates_nested_start_page_unknown_attribute_are_f08() {
        let doc = feed(
            r#"<published>2009-1-13T00:00:00Z</published>"#,
            &"a".repeat(40),
            "https://x/y.zip",
        )
        .replace("<startPage/>", "<startPage><startPage/></startPage>")
        .replace(
            r#"<language default="true">"#,
            r#"<language defalut="true">"#,
        );
        let f = run(&doc, None);
        assert_eq!(f.0.iter().filter(|x| x.rule == "F08").count(), 3, "{f:?}");
    }

    #[test]
    fn reused_url_with_new_sha1_is_f09() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prev = dir.path().join("prev.xml");
        fs_err::write(&prev, feed("", &"a".repeat(40), "https://x/y.zip")).expect("write");
        let options = CheckOptions {
            previous_feed: Some(prev),
            ..CheckOptions::default()
        };
        let doc = feed("", &"b".repeat(40), "https://x/y.zip");
        let f = lint(&xml::parse(&doc).expect("xml"), "feed.xml", None, &options);
        assert!(f.has("F09"), "{f:?}");
    }

    #[test]
    fn app_entry_without_installer_is_f03() {
        let doc = format!(
            r#"<feed xmlns="{ATOM}"><entry type="application"><productId>A</productId></entry></feed>"#
        );
        let f = run(&doc, None);
        assert_eq!(f.0.iter().filter(|x| x.rule == "F03").count(), 2, "{f:?}");
    }
}
