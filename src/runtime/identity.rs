//! Which IIS application this process serves, checked on every IIS request
//! (`iis-runtime.md` §12 item 12).
//!
//! IIS keys its FastCGI process pools by `fullPath|arguments`. Two IIS applications whose
//! handler mappings name the same pair share one pool, so a process that imported one app can
//! be handed the other app's requests, which it would answer with the wrong code. Every IIS
//! request carries `APPL_MD_PATH` (`/LM/W3SVC/1/ROOT/shop`) and `APPL_PHYSICAL_PATH`
//! (`C:\inetpub\shop\`); [`AppIdentity::check`] compares them with the app this process
//! serves and reports a [`Mismatch`] instead of letting the request reach the app.
//!
//! The expected values are the configured ones when known, otherwise those of the first
//! request (latched). Only the physical path can be configured: it is the application root
//! (`--app-root`, or the manifest's folder) that the IIS registration passes in `arguments`.
//! It is used on Windows only; elsewhere IIS is emulated and its Windows paths cannot be
//! compared with the host's. The virtual path is always latched: `APPL_MD_PATH` names the site
//! by id, and the manifest's `[iis] application-path` (`Site/app` by name) is only the default
//! the installer proposes, which the user may change.
//!
//! Comparison: ASCII case-insensitive, `/` equal to `\`, trailing separators ignored (IIS
//! writes `APPL_PHYSICAL_PATH` with a trailing `\`). Non-ASCII letters must match exactly.
//! The matching path allocates nothing. Pure: no I/O here.

use std::fmt;
#[cfg(windows)]
use std::path::Path;

use super::environ::Param;

/// One expected value and where it came from.
#[derive(Debug, Clone)]
struct Expected {
    value: Vec<u8>,
    configured: bool,
}

/// The IIS application this process serves.
#[derive(Debug, Clone, Default)]
pub struct AppIdentity {
    md_path: Option<Expected>,
    physical_path: Option<Expected>,
}

/// A request for another IIS application than the one this process serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The expected `APPL_MD_PATH` (`None` before one was seen).
    pub expected_md_path: Option<String>,
    /// The request's `APPL_MD_PATH`.
    pub md_path: String,
    /// The expected `APPL_PHYSICAL_PATH`.
    pub expected_physical_path: Option<String>,
    /// The request's `APPL_PHYSICAL_PATH`.
    pub physical_path: String,
    /// Whether the expected physical path comes from the configuration (`--app-root`, the
    /// manifest's folder) rather than from the first request.
    pub physical_configured: bool,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not yet seen)".into());
        write!(
            f,
            "IIS sent a request for another application: APPL_MD_PATH `{}` and \
             APPL_PHYSICAL_PATH `{}`, but this process serves APPL_MD_PATH `{}` and \
             APPL_PHYSICAL_PATH `{}` ({}); answered 500 without calling the app. Likely cause: \
             two IIS applications share one FastCGI application (the same fullPath|arguments) \
             and so one process pool; give each its own `arguments` (its own --app-root)",
            self.md_path,
            self.physical_path,
            or_unset(&self.expected_md_path),
            or_unset(&self.expected_physical_path),
            if self.physical_configured {
                "physical path from --app-root or the manifest, virtual path from the first request"
            } else {
                "both from the first request"
            },
        )
    }
}

impl AppIdentity {
    /// An identity learnt entirely from the first request.
    pub fn latched() -> Self {
        Self::default()
    }

    /// An identity whose physical path is the configured application root. On Windows an
    /// absolute `app_root` becomes the expected `APPL_PHYSICAL_PATH`; elsewhere (IIS emulated)
    /// and for a relative path it is latched from the first request like the virtual path.
    pub fn configured(app_root: Option<&std::path::Path>) -> Self {
        #[cfg(windows)]
        if let Some(root) = app_root.filter(|p| p.is_absolute()) {
            return AppIdentity {
                md_path: None,
                physical_path: Some(Expected {
                    value: windows_path_bytes(root),
                    configured: true,
                }),
            };
        }
        let _ = app_root;
        Self::latched()
    }

    /// Checks one IIS request's params. The first request fills in what is not configured.
    /// A missing param is not compared (IIS always sends both).
    pub fn check(&mut self, params: &[Param]) -> Result<(), Box<Mismatch>> {
        let mut md = None;
        let mut physical = None;
        for (name, value) in params {
            match name.as_slice() {
                b"APPL_MD_PATH" => md = Some(value.as_slice()),
                b"APPL_PHYSICAL_PATH" => physical = Some(value.as_slice()),
                _ => {}
            }
        }
        let md_ok = matches(&mut self.md_path, md);
        let physical_ok = matches(&mut self.physical_path, physical);
        if md_ok && physical_ok {
            return Ok(());
        }
        let show = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
        let expected = |e: &Option<Expected>| e.as_ref().map(|e| show(Some(&e.value)));
        Err(Box::new(Mismatch {
            expected_md_path: expected(&self.md_path),
            md_path: show(md),
            expected_physical_path: expected(&self.physical_path),
            physical_path: show(physical),
            physical_configured: self.physical_path.as_ref().is_some_and(|e| e.configured),
        }))
    }
}

/// Compares `got` with `expected`, latching it if nothing is expected yet.
fn matches(expected: &mut Option<Expected>, got: Option<&[u8]>) -> bool {
    let Some(got) = got else {
        return true;
    };
    match expected {
        Some(e) => crate::fsutil::same_windows_path(&e.value, got),
        None => {
            *expected = Some(Expected {
                value: got.to_vec(),
                configured: false,
            });
            true
        }
    }
}

/// A Windows path as IIS would send it: without the `\\?\` verbatim prefix.
#[cfg(windows)]
fn windows_path_bytes(p: &Path) -> Vec<u8> {
    let s = p.to_string_lossy();
    let s: &str = &s;
    match s.strip_prefix(r"\\?\UNC\") {
        Some(rest) => format!(r"\\{rest}").into_bytes(),
        None => s.strip_prefix(r"\\?\").unwrap_or(s).as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(md: &str, physical: &str) -> Vec<Param> {
        vec![
            (b"APPL_MD_PATH".to_vec(), md.as_bytes().to_vec()),
            (b"APPL_PHYSICAL_PATH".to_vec(), physical.as_bytes().to_vec()),
            (b"REQUEST_METHOD".to_vec(), b"GET".to_vec()),
        ]
    }

    #[test]
    fn first_request_is_latched_and_the_same_app_passes() {
        let mut id = AppIdentity::latched();
        let shop = params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\");
        assert!(id.check(&shop).is_ok());
        assert!(id.check(&shop).is_ok());
        let spelled = params("/lm/w3svc/1/root/SHOP/", r"c:\inetpub\shop");
        assert!(id.check(&spelled).is_ok());
    }

    #[test]
    fn another_virtual_path_is_a_mismatch_naming_both_paths() {
        let mut id = AppIdentity::latched();
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\"))
                .is_ok()
        );
        let err = id
            .check(&params("/LM/W3SVC/1/ROOT/blog", r"C:\inetpub\shop\"))
            .expect_err("mismatch");
        assert_eq!(err.md_path, "/LM/W3SVC/1/ROOT/blog");
        assert_eq!(
            err.expected_md_path.as_deref(),
            Some("/LM/W3SVC/1/ROOT/shop")
        );
        let text = err.to_string();
        assert!(text.contains("/LM/W3SVC/1/ROOT/blog"), "{text}");
        assert!(text.contains(r"C:\inetpub\shop\"), "{text}");
        assert!(text.contains("arguments"), "{text}");
        // The latched identity does not move: the right app still passes.
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\"))
                .is_ok()
        );
    }

    #[test]
    fn another_physical_path_is_a_mismatch() {
        let mut id = AppIdentity::latched();
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\"))
                .is_ok()
        );
        let err = id
            .check(&params("/LM/W3SVC/1/ROOT/shop", r"D:\sites\shop\"))
            .expect_err("mismatch");
        assert_eq!(err.physical_path, r"D:\sites\shop\");
        assert!(!err.physical_configured);
    }

    #[test]
    fn missing_params_are_not_compared() {
        let mut id = AppIdentity::latched();
        assert!(id.check(&[]).is_ok());
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\"))
                .is_ok()
        );
        assert!(id.check(&[]).is_ok());
    }

    #[cfg(not(windows))]
    #[test]
    fn configured_root_is_latched_off_windows() {
        let mut id = AppIdentity::configured(Some(std::path::Path::new("/srv/app")));
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\shop\"))
                .is_ok()
        );
    }

    #[cfg(windows)]
    #[test]
    fn configured_root_is_expected_from_the_first_request_on_windows() {
        let mut id = AppIdentity::configured(Some(Path::new(r"\\?\C:\inetpub\Shop")));
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/shop", r"c:\inetpub\shop\"))
                .is_ok()
        );
        let err = id
            .check(&params("/LM/W3SVC/1/ROOT/shop", r"C:\inetpub\blog\"))
            .expect_err("mismatch");
        assert!(err.physical_configured);
        let mut id = AppIdentity::configured(Some(Path::new(r"C:\inetpub\shop")));
        assert!(
            id.check(&params("/LM/W3SVC/1/ROOT/blog", r"C:\inetpub\blog\"))
                .is_err()
        );
    }
}
