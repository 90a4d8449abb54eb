//! TEMPORARY: the two signatures of `msdeploy::package` (branch `package`) that `iis` builds on,
//! copied until that branch is merged. DELETE this file after `git merge main` and import
//! `crate::msdeploy::package::{FastCgiKey, install_command}` instead.

/// Copy of `msdeploy::package::FastCgiKey` (see the `package` branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCgiKey {
    /// The executable, without quotes (IIS adds them).
    pub full_path: String,
    /// The arguments; they name the app so two apps never share a process pool.
    pub arguments: String,
}

impl FastCgiKey {
    /// The key for the app installed at `physical_path`, served by `iiswsgi_exe`.
    pub fn for_app(iiswsgi_exe: &str, physical_path: &str) -> Self {
        let root = if physical_path.contains(' ') {
            format!("\"{physical_path}\"")
        } else {
            physical_path.to_string()
        };
        Self {
            full_path: iiswsgi_exe.to_string(),
            arguments: format!("run --app-root {root}"),
        }
    }

    /// `fullPath|arguments`, the handler's `scriptProcessor`.
    pub fn script_processor(&self) -> String {
        format!("{}|{}", self.full_path, self.arguments)
    }
}
