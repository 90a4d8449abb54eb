//! The contexts of the files written next to the zip for the people and pipelines that deploy
//! it: SetParameters.xml, deploy.cmd and its readme (web-deploy-at-scale.md §1, §2).
//!
//! The batch and text templates use triple braces: their values are not XML-escaped. Rust
//! computes them ready to paste; for deploy.cmd that means batch-safe ([`batch_text`],
//! [`rem_text`]).

use serde::Serialize;

use super::{Context, Template};

/// Context of `templates/msdeploy/setparameters.xml.hbs`: one `<setParameter>` per visible
/// parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParametersXml {
    /// In Parameters.xml's order.
    pub parameters: Vec<SetParameterElement>,
}

impl Context for SetParametersXml {
    const TEMPLATE: Template = Template::SetParametersXml;
}

/// A `<setParameter name value>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParameterElement {
    /// The parameter's name.
    pub name: String,
    /// Its default, or empty when it has none.
    pub value: String,
}

/// Context of `templates/msdeploy/deploy.cmd.hbs`. Every field is batch-safe already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployCmd {
    /// `iiswsgi <version>`.
    pub generator: String,
    /// The app name.
    pub app_name: String,
    /// `<Name>-<version>`.
    pub stem: String,
    /// `<stem>.zip`.
    pub zip_name: String,
    /// `<stem>.SetParameters.xml`.
    pub set_parameters_name: String,
    /// `<stem>.deploy-readme.txt`.
    pub readme_name: String,
    /// The IisApp parameter's name (for the usage text).
    pub app_parameter: String,
    /// The skip rules, each with a comment line.
    pub skip_rules: Vec<SkipRuleLine>,
}

impl Context for DeployCmd {
    const TEMPLATE: Template = Template::DeployCmd;
}

/// One skip rule of deploy.cmd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkipRuleLine {
    /// The comment above it ([`rem_text`]), on the first rule of each kept path.
    pub why: Option<String>,
    /// The `-skip:` argument, written between double quotes ([`batch_text`]).
    pub arg: String,
}

/// Context of `templates/msdeploy/deploy-readme.txt.hbs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployReadme {
    /// `iiswsgi <version>`.
    pub generator: String,
    /// The app name.
    pub app_name: String,
    /// `<stem>.zip`.
    pub zip_name: String,
    /// `<stem>.SetParameters.xml`.
    pub set_parameters_name: String,
    /// `<stem>.deploy.cmd`.
    pub deploy_cmd_name: String,
    /// The parameters without a default, comma-separated (empty: none).
    pub required: String,
    /// `path: why` for each server-owned path.
    pub kept: Vec<String>,
    /// The `-skip:` arguments.
    pub skip_rules: Vec<String>,
}

impl Context for DeployReadme {
    const TEMPLATE: Template = Template::DeployReadme;
}

/// `text` for a batch file where it stands inside double quotes: `%` doubled (the only
/// character cmd.exe still interprets there).
pub fn batch_text(text: &str) -> String {
    text.replace('%', "%%")
}

/// `text` for a `rem` line: backquotes dropped, anything else but letters, digits, spaces and
/// `_ . , : ; ( ) [ ] / - '` becomes `_`, so no comment can carry a `%`, `&`, `|`, `<`, `>` or
/// `^` into cmd.exe's parser.
pub fn rem_text(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '`')
        .map(|c| {
            if c.is_ascii_alphanumeric() || " _.,:;()[]/-'".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
