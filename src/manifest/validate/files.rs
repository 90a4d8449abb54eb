//! The one check that touches the disk: the files and folders the manifest names (icon,
//! screenshot, `package.root`, the requirements file) exist. Runs only when a base folder is
//! given ([`crate::manifest::Manifest::load`]).

use std::path::Path;

use super::Validator;
use crate::manifest::{App, Asset, Package, raw};

impl Validator<'_> {
    pub(super) fn files_exist(
        &mut self,
        r: &raw::RawManifest,
        app: &App,
        package: Option<&Package>,
        base: &Path,
    ) {
        let Some(a) = &r.app else { return };
        for (asset, raw) in [(&app.icon, &a.icon), (&app.screenshot, &a.screenshot)] {
            if let (Some(Asset::File(p)), Some(raw)) = (asset, raw)
                && !p.under(base).is_file()
            {
                self.error(
                    raw.span(),
                    format!("file `{p}` does not exist"),
                    format!("paths are relative to {}", display_dir(base)),
                );
            }
        }
        if let (Some(pkg), Some(rp)) = (package, r.package.as_ref()) {
            let root = base.join(&pkg.root);
            if let Some(root_sp) = &rp.root
                && !root.is_dir()
            {
                self.error(
                    root_sp.span(),
                    format!("folder `{}` does not exist", pkg.root.display()),
                    format!("`package.root` is relative to {}", display_dir(base)),
                );
            }
            if let (Some(req), Some(req_sp)) = (&pkg.requirements, &rp.requirements)
                && root.is_dir()
                && !req.under(&root).is_file()
            {
                self.error(
                    req_sp.span(),
                    format!("requirements file `{req}` does not exist"),
                    format!("it is relative to `package.root` ({})", display_dir(&root)),
                );
            }
        }
    }
}

fn display_dir(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        "the current folder".to_string()
    } else {
        format!("`{}`", p.display())
    }
}
