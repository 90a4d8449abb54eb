//! The files `iiswsgi package` writes next to the zip for whoever deploys it, as Visual Studio
//! does next to its packages (web-deploy-at-scale.md §1, §2):
//!
//! - `<Name>-<version>.SetParameters.xml`: every visible parameter with its default; the ones
//!   without a default are left empty and reported ([`DeployFiles::required`]);
//! - `<Name>-<version>.deploy.cmd`: Visual Studio's `/T` `/Y` `/M:` `/U:` `/P:` `/A:` `/G:`
//!   flags around msdeploy.exe, with the SetParameters file and the redeploy skip rules
//!   ([`super::redeploy`]);
//! - `<Name>-<version>.deploy-readme.txt`: how to use them, what a redeploy keeps, and the same
//!   command for msdeploy.exe alone.
//!
//! Pure: renders in memory from the manifest and the Parameters.xml context the plan built.

use super::error::PackageError;
use super::redeploy::{self, ServerPath, SkipRule};
use crate::manifest::Manifest;
use crate::package::render::{
    DeployCmd, DeployReadme, ParametersXml, SetParameterElement, SetParametersXml, SkipRuleLine,
    Templates, batch_text, rem_text,
};

/// The three files, rendered, and what `package` reports about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployFiles {
    /// `<stem>.SetParameters.xml`.
    pub set_parameters: String,
    /// `<stem>.deploy.cmd`.
    pub deploy_cmd: String,
    /// `<stem>.deploy-readme.txt`.
    pub readme: String,
    /// Visible parameters without a default: empty in SetParameters.xml, to be filled in.
    pub required: Vec<String>,
    /// What the server owns in the app folder.
    pub server_paths: Vec<ServerPath>,
    /// The skip rules deploy.cmd passes.
    pub skip_rules: Vec<SkipRule>,
}

/// The file names next to `<stem>.zip`.
pub fn names(stem: &str) -> [String; 3] {
    [
        format!("{stem}.SetParameters.xml"),
        format!("{stem}.deploy.cmd"),
        format!("{stem}.deploy-readme.txt"),
    ]
}

/// Renders the three files for `manifest`, whose Parameters.xml is `parameters`.
pub fn render(
    templates: &Templates,
    manifest: &Manifest,
    parameters: &ParametersXml,
    stem: &str,
) -> Result<DeployFiles, PackageError> {
    let visible: Vec<_> = parameters
        .parameters
        .iter()
        .filter(|p| {
            !p.tags
                .as_deref()
                .unwrap_or("")
                .split([',', ' '])
                .any(|t| t.eq_ignore_ascii_case("Hidden"))
        })
        .collect();
    let required: Vec<String> = visible
        .iter()
        .filter(|p| p.default_value.is_none())
        .map(|p| p.name.clone())
        .collect();
    let set_parameters = templates.render(&SetParametersXml {
        parameters: visible
            .iter()
            .map(|p| SetParameterElement {
                name: p.name.clone(),
                value: p.default_value.clone().unwrap_or_default(),
            })
            .collect(),
    })?;

    let server_paths = redeploy::server_paths(manifest);
    let mut skip_rules = Vec::new();
    let mut lines = Vec::new();
    for path in &server_paths {
        for (i, rule) in redeploy::skip_rules(std::slice::from_ref(path))
            .into_iter()
            .enumerate()
        {
            lines.push(SkipRuleLine {
                why: (i == 0).then(|| rem_text(&format!("{}: {}", path.path, path.why))),
                arg: batch_text(&rule.arg()),
            });
            skip_rules.push(rule);
        }
    }
    let [set_parameters_name, deploy_cmd_name, readme_name] = names(stem);
    let zip_name = format!("{stem}.zip");
    let generator = format!("iiswsgi {}", crate::VERSION);
    let app_name = manifest.app.name.to_string();
    let deploy_cmd = templates.render(&DeployCmd {
        generator: generator.clone(),
        app_name: app_name.clone(),
        stem: batch_text(stem),
        zip_name: batch_text(&zip_name),
        set_parameters_name: batch_text(&set_parameters_name),
        readme_name: batch_text(&readme_name),
        app_parameter: manifest.iis.application_parameter.as_str().to_string(),
        skip_rules: lines,
    })?;
    let readme = templates.render(&DeployReadme {
        generator,
        app_name,
        zip_name,
        set_parameters_name,
        deploy_cmd_name,
        required: required.join(", "),
        kept: server_paths
            .iter()
            .map(|p| format!("{}: {}", p.path, p.why))
            .collect(),
        skip_rules: skip_rules.iter().map(SkipRule::arg).collect(),
    })?;
    Ok(DeployFiles {
        set_parameters,
        deploy_cmd,
        readme,
        required,
        server_paths,
        skip_rules,
    })
}
