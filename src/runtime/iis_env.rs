//! IIS's environment variables, read in one place.
//!
//! IIS tells a FastCGI process what it is through its environment (`iis-runtime.md` §3, §5):
//! `APP_POOL_ID` (the pool, in every log line), `_FCGI_X_PIPE_` (named-pipe mode; the pipe is
//! already connected on stdin and never opened by name), `_FCGI_SHUTDOWN_EVENT_` (a handle to
//! the graceful-exit event). `FCGI_WEB_SERVER_ADDRS`, the FastCGI spec's allow-list, is read
//! here too. Every part of the runtime asks [`get`]; nothing else reads these variables, so
//! "are we under IIS?" has one answer per process. [`IisEnv::from_vars`] is pure, for tests.

use std::sync::OnceLock;

/// Set by IIS to the application pool's name.
pub const APP_POOL_ID_VAR: &str = "APP_POOL_ID";

/// Set by IIS in named-pipe mode: `\\.\pipe\IISFCGI-<uuid>`. Informational only; the pipe is
/// already connected on stdin and must never be opened by name.
pub const PIPE_NAME_VAR: &str = "_FCGI_X_PIPE_";

/// Set by IIS when `signalBeforeTerminateSeconds` > 0: the decimal value of an inherited
/// event handle ([`crate::runtime::shutdown`]).
pub const SHUTDOWN_EVENT_VAR: &str = "_FCGI_SHUTDOWN_EVENT_";

/// The FastCGI spec's comma-separated list of web-server addresses allowed to connect.
pub const WEB_SERVER_ADDRS_VAR: &str = "FCGI_WEB_SERVER_ADDRS";

/// What the process's environment says about the web server that started it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IisEnv {
    /// `APP_POOL_ID`.
    pub app_pool_id: Option<String>,
    /// `_FCGI_X_PIPE_`.
    pub pipe_name: Option<String>,
    /// `_FCGI_SHUTDOWN_EVENT_`, unparsed.
    pub shutdown_event: Option<String>,
    /// `FCGI_WEB_SERVER_ADDRS`, unparsed.
    pub web_server_addrs: Option<String>,
}

impl IisEnv {
    /// The variables as `var` returns them (absent or not Unicode → `None`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        IisEnv {
            app_pool_id: var(APP_POOL_ID_VAR),
            pipe_name: var(PIPE_NAME_VAR),
            shutdown_event: var(SHUTDOWN_EVENT_VAR),
            web_server_addrs: var(WEB_SERVER_ADDRS_VAR),
        }
    }

    /// Whether IIS started this process: it set the pool or the pipe name.
    pub fn started_by_iis(&self) -> bool {
        self.app_pool_id.is_some() || self.pipe_name.is_some()
    }

    /// The pool name, or `""` outside IIS.
    pub fn pool(&self) -> &str {
        self.app_pool_id.as_deref().unwrap_or("")
    }
}

/// This process's IIS environment, read once on first use.
pub fn get() -> &'static IisEnv {
    static ENV: OnceLock<IisEnv> = OnceLock::new();
    ENV.get_or_init(|| IisEnv::from_vars(|name| std::env::var(name).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> IisEnv {
        IisEnv::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn started_by_iis_when_the_pool_or_the_pipe_is_named() {
        assert!(!env(&[]).started_by_iis());
        assert!(!env(&[(WEB_SERVER_ADDRS_VAR, "127.0.0.1")]).started_by_iis());
        assert!(env(&[(APP_POOL_ID_VAR, "Shop")]).started_by_iis());
        assert!(env(&[(PIPE_NAME_VAR, r"\\.\pipe\IISFCGI-1")]).started_by_iis());
    }

    #[test]
    fn pool_is_empty_outside_iis() {
        assert_eq!(env(&[]).pool(), "");
        assert_eq!(env(&[(APP_POOL_ID_VAR, "Shop")]).pool(), "Shop");
    }

    #[test]
    fn every_variable_is_kept_unparsed() {
        let e = env(&[
            (SHUTDOWN_EVENT_VAR, "0x1c"),
            (WEB_SERVER_ADDRS_VAR, "10.0.0.1"),
        ]);
        assert_eq!(e.shutdown_event.as_deref(), Some("0x1c"));
        assert_eq!(e.web_server_addrs.as_deref(), Some("10.0.0.1"));
    }
}
