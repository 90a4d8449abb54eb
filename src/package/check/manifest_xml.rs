//! Rules M01–M05 (Manifest.xml) and O01–O07 (runCommand), msdeploy-webpi.md §2, §3 and §7.2.
//! Also extracts the providers, which the P and Z rules cross-check.
//!
//! O06 and O07 read the command line itself, which msdeploy hands to `cmd.exe /c` on every
//! server: an iiswsgi post-install step must be exactly `"<exe>" install --app-name <Name>`
//! with an exe path [`check_exe_path`] accepts (O06, an error: anything else lets cmd.exe run
//! more than iiswsgi, issue 16 item 6); a fragile exe path, or `&`, `|`, `<`, `>` outside
//! quotes in any other runCommand, is O07, a warning.

use super::Findings;
use crate::manifest::{FILE_SYSTEM_RIGHTS, check_exe_path};
use crate::package::msdeploy::provider_options::ProviderOptions;
use crate::xml::Element;

/// Providers msdeploy knows (Web Deploy API `DeploymentWellKnownProvider`, plus `alias`);
/// any other element is M02.
pub const KNOWN_PROVIDERS: &[&str] = &[
    "alias",
    "appHostAuthOverride",
    "appHostConfig",
    "appHostSchema",
    "appPoolConfig",
    "appPoolEnable32Bit",
    "appPoolNetFx",
    "appPoolPipeline",
    "archiveDir",
    "auto",
    "backupManager",
    "backupSettings",
    "cert",
    "certStoreSettings",
    "comObject32",
    "comObject64",
    "contentHash",
    "contentPath",
    "contentPathLib",
    "createApp",
    "dbDacFx",
    "dbFullSql",
    "dbMySql",
    "dbSqlite",
    "dirPath",
    "fcgiExtConfig",
    "filePath",
    "gacAssembly",
    "gacInstall",
    "iisApp",
    "machineConfig32",
    "machineConfig64",
    "manifest",
    "metaKey",
    "package",
    "recycleApp",
    "regKey",
    "regValue",
    "rootWebConfig32",
    "rootWebConfig64",
    "runCommand",
    "setAcl",
    "urlScanConfig",
    "webServer",
    "webServer60",
];

/// The providers an App Gallery package uses; others are M03.
pub const GALLERY_PROVIDERS: &[&str] = &[
    "iisApp",
    "setAcl",
    "alias",
    "dbFullSql",
    "dbMySql",
    "runCommand",
];

/// runCommand settings that belong in the options blob, never as plain attributes.
pub const RUN_COMMAND_SETTINGS: &[&str] = &[
    "waitAttempts",
    "waitInterval",
    "successReturnCodes",
    "dontUseCommandExe",
    "dontUseJobObject",
];

/// One provider element of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The element name as written.
    pub name: String,
    /// The canonical provider name when known (`setAcl` for `SETACL`).
    pub canonical: Option<&'static str>,
    /// `path` (for alias: `from`).
    pub path: Option<String>,
    /// For alias: `to`.
    pub to: Option<String>,
    /// For setAcl: whether `setAclResourceType` is File.
    pub is_file_acl: bool,
    /// 1-based line.
    pub line: usize,
}

impl Provider {
    /// Whether this provider is `name` (case-insensitively).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// What the M rules learnt about a manifest.
#[derive(Debug, Clone, Default)]
pub struct ManifestInfo {
    /// Every provider, in order.
    pub providers: Vec<Provider>,
    /// The path of the single iisApp, when there is exactly one.
    pub iis_app_path: Option<String>,
    /// The findings.
    pub findings: Findings,
}

/// Runs the M and O rules on a parsed Manifest.xml; `label` names it in locations.
pub fn lint(root: &Element, label: &str) -> ManifestInfo {
    let mut info = ManifestInfo::default();
    let f = &mut info.findings;
    let at = |line: usize| format!("{label}:{line}");
    for e in &root.children {
        let canonical = KNOWN_PROVIDERS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&e.name))
            .copied();
        match canonical {
            None => f.error(
                "M02",
                at(e.line),
                format!("`<{}>` is not an msdeploy provider", e.name),
            ),
            Some(c) if !GALLERY_PROVIDERS.contains(&c) => f.warn(
                "M03",
                at(e.line),
                format!(
                    "`<{}>` is not one of the providers App Gallery packages use (iisApp, setAcl, alias, dbFullSql, dbMySql, runCommand)",
                    e.name
                ),
            ),
            Some(_) => {}
        }
        let is_alias = canonical == Some("alias");
        let mut provider = Provider {
            name: e.name.clone(),
            canonical,
            path: if is_alias {
                e.attr("from").map(str::to_string)
            } else {
                e.attr("path").map(str::to_string)
            },
            to: e.attr("to").map(str::to_string),
            is_file_acl: false,
            line: e.line,
        };
        // M04: path (from/to for alias) non-empty.
        let required: &[&str] = if is_alias { &["from", "to"] } else { &["path"] };
        for attr in required {
            if e.attr(attr).is_none_or(|v| v.trim().is_empty()) {
                f.error(
                    "M04",
                    at(e.line),
                    format!("`<{}>` needs a non-empty `{attr}`", e.name),
                );
            }
        }
        // M05: value syntax.
        attribute_values(e, &at(e.line), f);
        if canonical == Some("setAcl") {
            provider.is_file_acl = e
                .attr("setAclResourceType")
                .is_some_and(|v| v.eq_ignore_ascii_case("File"));
        }
        if canonical == Some("runCommand") {
            run_command(e, &at(e.line), f);
        }
        info.providers.push(provider);
    }
    // M01: exactly one iisApp.
    let apps: Vec<&Provider> = info.providers.iter().filter(|p| p.is("iisApp")).collect();
    match apps.as_slice() {
        [one] => info.iis_app_path = one.path.clone(),
        [] => info.findings.error(
            "M01",
            format!("{label}:{}", root.line),
            "the manifest has no `<iisApp>` provider".into(),
        ),
        [_, second, ..] => info.findings.error(
            "M01",
            format!("{label}:{}", second.line),
            format!(
                "the manifest has {} `<iisApp>` providers; it needs exactly one",
                apps.len()
            ),
        ),
    }
    info
}

fn is_bool(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

fn is_non_negative_int(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u32>().is_ok()
}

fn attribute_values(e: &Element, at: &str, f: &mut Findings) {
    for (k, v) in &e.attrs {
        let bad = match k.as_str() {
            "setAclAccess" => v
                .split(',')
                .map(str::trim)
                .find(|t| !FILE_SYSTEM_RIGHTS.contains(t))
                .map(|t| format!("`{t}` in setAclAccess is not a FileSystemRights name")),
            "setAclResourceType" if !(v == "File" || v == "Directory") => Some(format!(
                "setAclResourceType must be File or Directory, found `{v}`"
            )),
            "transacted" | "removeCommandDelimiter" | "dontUseCommandExe" | "dontUseJobObject"
                if !is_bool(v) =>
            {
                Some(format!("`{k}` must be true or false, found `{v}`"))
            }
            "waitAttempts" | "waitInterval" if !is_non_negative_int(v) => {
                Some(format!("`{k}` must be a non-negative integer, found `{v}`"))
            }
            _ => None,
        };
        if let Some(message) = bad {
            f.error("M05", at, message);
        }
    }
}

/// O01–O07 on one runCommand element.
fn run_command(e: &Element, at: &str, f: &mut Findings) {
    command_line(e.attr("path").unwrap_or(""), at, f);
    let plain: Vec<(&str, &str)> = e
        .attrs
        .iter()
        .filter(|(k, _)| {
            RUN_COMMAND_SETTINGS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(k))
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let key = e.attr("MSDeploy.MSDeployKeyAttributeName");
    let blob = e.attr("MSDeploy.MSDeployProviderOptions");
    let Some(blob) = blob else {
        if !plain.is_empty() {
            f.error(
                "O01",
                at,
                "runCommand settings are plain attributes without MSDeploy.MSDeployProviderOptions; msdeploy ignores them".into(),
            );
        }
        f.warn(
            "O05",
            at,
            "runCommand has no options blob, so no successReturnCodes: a failed install step is not reported".into(),
        );
        return;
    };
    if key != Some("path") {
        f.error(
            "O01",
            at,
            "runCommand with an options blob needs MSDeploy.MSDeployKeyAttributeName=\"path\""
                .into(),
        );
    }
    let decoded = match ProviderOptions::decode(blob) {
        Ok(d) => d,
        Err(err) => {
            f.error(
                "O02",
                at,
                format!("MSDeploy.MSDeployProviderOptions does not decode: {err}"),
            );
            return;
        }
    };
    let options = decoded.options;
    if !options.provider_name.eq_ignore_ascii_case(&e.name) {
        f.error(
            "O02",
            at,
            format!(
                "the options blob is for provider `{}`, not `{}`",
                options.provider_name, e.name
            ),
        );
    }
    let element_path = e.attr("path").unwrap_or("");
    if options.path != element_path {
        let hint = if has_env_var(element_path) || has_env_var(&options.path) {
            " (they may differ only by %VAR% expansion)"
        } else {
            ""
        };
        f.warn(
            "O03",
            at,
            format!(
                "the blob's path `{}` differs from the element's path `{element_path}`{hint}",
                options.path
            ),
        );
    }
    for (k, v) in &plain {
        match options.settings.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some((_, bv)) if bv != v => f.error(
                "O04",
                at,
                format!("plain attribute {k}=\"{v}\" contradicts the blob's {k}=\"{bv}\""),
            ),
            _ => f.warn(
                "O04",
                at,
                format!("plain attribute `{k}` on runCommand is ignored by msdeploy; only the blob counts"),
            ),
        }
    }
    for (k, v) in &options.settings {
        if (k == "waitAttempts" || k == "waitInterval") && !is_non_negative_int(v) {
            f.error(
                "M05",
                at,
                format!("blob setting `{k}` must be a non-negative integer, found `{v}`"),
            );
        }
    }
    if !options
        .settings
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("successReturnCodes"))
    {
        f.warn(
            "O05",
            at,
            "the options blob has no successReturnCodes: a failed install step is not reported"
                .into(),
        );
    }
}

/// O06/O07: what cmd.exe will make of the command line (see the module docs).
fn command_line(path: &str, at: &str, f: &mut Findings) {
    let lower = path.to_ascii_lowercase();
    if !(lower.contains("iiswsgi") && lower.contains("install")) {
        if let Some(op) = unquoted_operator(path) {
            f.warn(
                "O07",
                at,
                format!("runCommand `{path}` has `{op}` outside quotes: cmd.exe splits the command there"),
            );
        }
        return;
    }
    let expected = r#""<exe>" install --app-name <Name>"#;
    let Some((exe, rest)) = path.strip_prefix('"').and_then(|p| p.split_once('"')) else {
        f.error(
            "O06",
            at,
            format!("the iiswsgi post-install command `{path}` is not {expected}: the exe path must be quoted"),
        );
        return;
    };
    let name_ok = rest.strip_prefix(" install --app-name ").is_some_and(|n| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !name_ok {
        f.error(
            "O06",
            at,
            format!("the iiswsgi post-install command is not {expected}: after the quoted path, cmd.exe would run `{rest}`"),
        );
    }
    match check_exe_path(exe) {
        Err(e) => f.error("O06", at, format!("the iiswsgi.exe path `{exe}` {e}")),
        Ok(warnings) => {
            for w in warnings {
                f.warn("O07", at, format!("the iiswsgi.exe path `{exe}` {w}"));
            }
        }
    }
}

/// The first `&`, `|`, `<` or `>` outside double quotes.
fn unquoted_operator(command: &str) -> Option<char> {
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            '&' | '|' | '<' | '>' if !quoted => return Some(c),
            _ => {}
        }
    }
    None
}

fn has_env_var(s: &str) -> bool {
    let mut parts = s.split('%');
    parts.next();
    parts.next().is_some_and(|v| !v.is_empty()) && s.matches('%').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn run(doc: &str) -> ManifestInfo {
        lint(&parse(doc).expect("xml"), "Manifest.xml")
    }

    fn blob(path: &str, settings: &[(&str, &str)]) -> String {
        ProviderOptions::new(
            "runCommand",
            path,
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .encode()
    }

    #[test]
    fn clean_manifest_has_no_findings_and_lists_providers() {
        let doc = format!(
            r#"<MSDeploy.iisApp><iisApp path="A"/><setAcl path="A/App_Data" setAclAccess="Modify"/><runCommand path="x" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{}"/></MSDeploy.iisApp>"#,
            blob("x", &[("successReturnCodes", "0x0")])
        );
        let info = run(&doc);
        assert!(info.findings.0.is_empty(), "{:?}", info.findings);
        assert_eq!(info.iis_app_path.as_deref(), Some("A"));
        assert_eq!(info.providers.len(), 3);
    }

    #[test]
    fn provider_names_are_case_insensitive() {
        let info = run(r#"<m><IISAPP path="A"/><SETACL path="A/x"/></m>"#);
        assert!(!info.findings.has("M02"), "{:?}", info.findings);
        assert_eq!(info.iis_app_path.as_deref(), Some("A"));
    }

    #[test]
    fn missing_or_duplicate_iisapp_is_m01() {
        assert!(run("<m/>").findings.has("M01"));
        assert!(
            run(r#"<m><iisApp path="a"/><iisApp path="b"/></m>"#)
                .findings
                .has("M01")
        );
    }

    #[test]
    fn unknown_and_non_gallery_providers_are_m02_and_m03() {
        let info = run(r#"<m><iisApp path="a"/><bogus path="x"/><recycleApp path="y"/></m>"#);
        assert!(info.findings.has("M02"));
        assert!(info.findings.has("M03"));
    }

    #[test]
    fn empty_paths_and_bad_values_are_m04_and_m05() {
        let info = run(
            r#"<m><iisApp path=""/><alias from="a"/><setAcl path="a/x" setAclAccess="Modfy" setAclResourceType="file"/><dbMySql path="i.sql" waitAttempts="-1"/></m>"#,
        );
        assert_eq!(
            info.findings.0.iter().filter(|f| f.rule == "M04").count(),
            2
        );
        assert_eq!(
            info.findings.0.iter().filter(|f| f.rule == "M05").count(),
            3
        );
    }

    #[test]
    fn plain_settings_without_blob_are_o01() {
        let info =
            run(r#"<m><iisApp path="a"/><runCommand path="x" successReturnCodes="0x0"/></m>"#);
        assert!(info.findings.has("O01"));
    }

    #[test]
    fn blob_without_key_attribute_is_o01() {
        let doc = format!(
            r#"<m><iisApp path="a"/><runCommand path="x" MSDeploy.MSDeployProviderOptions="{}"/></m>"#,
            blob("x", &[("successReturnCodes", "0x0")])
        );
        assert!(run(&doc).findings.has("O01"));
    }

    #[test]
    fn undecodable_blob_or_wrong_provider_is_o02() {
        let doc = r#"<m><iisApp path="a"/><runCommand path="x" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="H4sIbroken"/></m>"#;
        assert!(run(doc).findings.has("O02"));
        let other = ProviderOptions::new("iisApp", "x", vec![]).encode();
        let doc = format!(
            r#"<m><iisApp path="a"/><runCommand path="x" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{other}"/></m>"#
        );
        assert!(run(&doc).findings.has("O02"));
    }

    #[test]
    fn path_mismatch_is_o03_and_contradiction_is_o04_error() {
        let doc = format!(
            r#"<m><iisApp path="a"/><runCommand path="%SystemDrive%\p.exe" successReturnCodes="0x1" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{}"/></m>"#,
            blob(r"C:\p.exe", &[("successReturnCodes", "0x0")])
        );
        let info = run(&doc);
        let o03 = info
            .findings
            .0
            .iter()
            .find(|f| f.rule == "O03")
            .expect("O03");
        assert!(o03.message.contains("%VAR%"), "{}", o03.message);
        let o04 = info
            .findings
            .0
            .iter()
            .find(|f| f.rule == "O04")
            .expect("O04");
        assert_eq!(o04.severity, crate::package::check::Severity::Error);
    }

    #[test]
    fn blob_without_success_codes_is_o05() {
        let doc = format!(
            r#"<m><iisApp path="a"/><runCommand path="x" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{}"/></m>"#,
            blob("x", &[("waitAttempts", "5")])
        );
        assert!(run(&doc).findings.has("O05"));
    }

    fn run_command_doc(path: &str) -> String {
        format!(
            r#"<m><iisApp path="a"/><runCommand path="{}" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{}"/></m>"#,
            crate::package::render::escape_xml(path),
            blob(path, &[("successReturnCodes", "0x0")])
        )
    }

    /// Issue 16 item 6: a package whose runCommand would run `calc` after iiswsgi is an error.
    #[test]
    fn injected_install_command_is_o06() {
        let info = run(&run_command_doc(
            r#""C:\x\iiswsgi.exe" & calc & "" install --app-name FlaskHello"#,
        ));
        let o06: Vec<_> = info.findings.0.iter().filter(|f| f.rule == "O06").collect();
        assert!(!o06.is_empty(), "{:?}", info.findings);
        assert!(
            o06.iter()
                .all(|f| f.severity == crate::package::check::Severity::Error)
        );
        assert!(o06[0].message.contains("& calc &"), "{}", o06[0].message);
        for bad in [
            r#""C:\x&y\iiswsgi.exe" install --app-name A"#,
            r#""%TEMP%\%X%\iiswsgi.exe" install --app-name A"#,
            r#"C:\iiswsgi.exe install --app-name A"#,
            r#""C:\iiswsgi.exe" install --app-name A && del /q C:\"#,
        ] {
            assert!(run(&run_command_doc(bad)).findings.has("O06"), "{bad}");
        }
    }

    #[test]
    fn iiswsgi_install_command_with_a_clean_path_passes_and_fragile_ones_warn() {
        for ok in [
            r#""C:\iiswsgi\Scripts\iiswsgi.exe" install --app-name FlaskHello"#,
            r#""%SystemDrive%\iiswsgi\Scripts\iiswsgi.exe" install --app-name A_1"#,
        ] {
            let info = run(&run_command_doc(ok));
            assert!(info.findings.0.is_empty(), "{ok}: {:?}", info.findings);
        }
        let info = run(&run_command_doc(
            r#""C:\Program Files (x86)\iiswsgi.exe" install --app-name A"#,
        ));
        assert_eq!(info.findings.0.len(), 1, "{:?}", info.findings);
        assert_eq!(info.findings.0[0].rule, "O07");
        let spaced = run(&run_command_doc(
            r#""%ProgramFiles%\iiswsgi\iiswsgi.exe" install --app-name A"#,
        ));
        assert!(spaced.findings.has("O07") && !spaced.findings.has("O06"));
        let other = run(&run_command_doc("setup.cmd & cleanup.cmd"));
        assert!(other.findings.has("O07") && !other.findings.has("O06"));
    }

    #[test]
    fn original_iiswsgi_vector_blob_lints_with_only_the_path_warning() {
        // Vector 1 (rpatterson/iiswsgi 39c5722): element says %SystemDrive%, blob says C:.
        let vectors: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../../tests/vectors/provider-options.json"))
                .expect("json");
        let blob = vectors[0]["blob"].as_str().expect("blob");
        let doc = format!(
            r#"<m><iisApp path="a"/><runCommand path="%SystemDrive%\Python27\python.exe -u %SystemDrive%\Python27\Scripts\iiswsgi_deploy-script.py" MSDeploy.MSDeployKeyAttributeName="path" MSDeploy.MSDeployProviderOptions="{blob}"/></m>"#
        );
        let info = run(&doc);
        let rules: Vec<&str> = info.findings.0.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["O03"]);
    }
}
