//! `[iis]`: the application path, the handler mapping, the FastCGI registration, the
//! `setAcl` entries and request filtering.

use std::collections::HashMap;
use std::ops::Range;

use super::values::closest;
use super::{Sp, Validator};
use crate::manifest::{
    AclResourceType, AppName, ApplicationParameter, DEFAULT_IISWSGI_EXE, Diagnostic,
    FILE_SYSTEM_RIGHTS, FastCgi, Handler, HandlerResourceType, Iis, MAX_SET_ACLS, Protocol,
    RelPath, RequestFiltering, RequireAccess, SetAcl, StderrMode, check_exe_path, describe_char,
    dotnet_regex, fastcgi_defaults, raw,
};

impl Validator<'_> {
    pub(super) fn iis(&mut self, i: Option<&raw::RawIis>, name: Option<&AppName>) -> Option<Iis> {
        let default_i = raw::RawIis::default();
        let i = i.unwrap_or(&default_i);
        let placeholder = name.map_or("App", |n| n.as_str());
        let application_path = match &i.application_path {
            None => Some(format!("Default Web Site/{placeholder}")),
            Some(p) => self.application_path(p),
        };
        let iiswsgi_exe = match &i.iiswsgi_exe {
            None => Some(DEFAULT_IISWSGI_EXE.to_string()),
            Some(p) => self.iiswsgi_exe(p),
        };
        let handler = self.handler(i.handler.as_ref(), placeholder);
        let fastcgi = self.fastcgi(i.fastcgi.as_ref());
        let mut set_acl = Vec::new();
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        let acls = i.set_acl.as_deref().unwrap_or(&[]);
        if let Some(extra) = acls.get(MAX_SET_ACLS) {
            let span = extra
                .path
                .as_ref()
                .map_or_else(|| self.header_span("[iis.set-acl]"), Sp::span);
            self.at_most("`[[iis.set-acl]]` entries", acls.len(), MAX_SET_ACLS, span);
        }
        for (n, acl) in acls.iter().take(MAX_SET_ACLS).enumerate() {
            if acl.path.is_none()
                && self
                    .removed
                    .contains(&format!("iis.set-acl[{}].path", n + 1))
            {
                continue;
            }
            if let Some(a) = self.set_acl(acl, placeholder) {
                let key = a.path.as_str().to_ascii_lowercase();
                let span = acl.path.as_ref().map_or(0..0, Sp::span);
                if let Some(first) = seen.get(&key) {
                    let (line, _) = self.src.line_col(first.start);
                    self.error(
                        span,
                        format!("`iis.set-acl` path `{}` is listed twice", a.path),
                        format!("merge it with the entry on line {line} (paths compare case-insensitively on Windows)"),
                    );
                    continue;
                }
                seen.insert(key, span);
                set_acl.push(a);
            }
        }
        let static_files = self.static_files(i.static_files.as_deref().unwrap_or(&[]));
        let rf = i.request_filtering.clone().unwrap_or_default();
        let max_len = self.int(
            rf.max_allowed_content_length.as_ref(),
            "iis.request-filtering.max-allowed-content-length",
            (0, u32::MAX as i64),
            30_000_000,
            "IIS stores it as a 32-bit unsigned number of bytes",
        );
        Some(Iis {
            application_path: application_path?,
            allow_site_root: i.allow_site_root.unwrap_or(false),
            application_parameter: i
                .application_parameter
                .unwrap_or(ApplicationParameter::ApplicationPath),
            iiswsgi_exe: iiswsgi_exe?,
            handler: handler?,
            fastcgi: fastcgi?,
            set_acl,
            request_filtering: RequestFiltering {
                allow_double_escaping: rf.allow_double_escaping.unwrap_or(true),
                max_allowed_content_length: max_len? as u32,
            },
            static_files: static_files?,
        })
    }

    fn application_path(&mut self, p: &Sp<String>) -> Option<String> {
        if self.is_todo(p) {
            return None;
        }
        let s = p.get();
        let problem = if s.trim().is_empty() {
            Some("must name a site, e.g. \"Default Web Site/MyApp\"".to_string())
        } else if s.contains('\\') {
            Some("uses `\\`; IIS application paths use `/`".to_string())
        } else if s.starts_with('/') || s.ends_with('/') {
            Some("must not start or end with `/`".to_string())
        } else if s.split('/').any(|seg| seg.trim().is_empty()) {
            Some("has an empty segment".to_string())
        } else {
            s.chars()
                .find(|c| *c == '\'' || *c == '"' || c.is_control())
                .map(|c| format!("must not contain {}", describe_char(c)))
        };
        match problem {
            None => Some(s.clone()),
            Some(why) => {
                self.error(
                    p.span(),
                    format!("`iis.application-path` {why}"),
                    "write `Site Name/app/path` as IIS Manager shows it, e.g. \"Default Web Site/MyApp\"",
                );
                None
            }
        }
    }

    /// `[iis] iiswsgi-exe`: refused when cmd.exe or appcmd would misread it, warned about
    /// when fragile ([`check_exe_path`]).
    fn iiswsgi_exe(&mut self, p: &Sp<String>) -> Option<String> {
        if self.is_todo(p) {
            return None;
        }
        match check_exe_path(p.get()) {
            Ok(warnings) => {
                for w in warnings {
                    self.warn(
                        p.span(),
                        format!("`iis.iiswsgi-exe` {w}"),
                        "e.g. iiswsgi-exe = 'C:\\iiswsgi\\Scripts\\iiswsgi.exe'",
                    );
                }
                Some(p.get().clone())
            }
            Err(e) => {
                self.error(
                    p.span(),
                    format!("`iis.iiswsgi-exe` {e}"),
                    "give the path of iiswsgi.exe on the servers, e.g. iiswsgi-exe = 'C:\\iiswsgi\\Scripts\\iiswsgi.exe'",
                );
                None
            }
        }
    }

    fn handler(&mut self, h: Option<&raw::RawHandler>, name: &str) -> Option<Handler> {
        let default_h = raw::RawHandler::default();
        let h = h.unwrap_or(&default_h);
        let hname = match &h.name {
            None => Some(format!("iiswsgi-{name}")),
            Some(n) => self.attr_text(n, "iis.handler.name"),
        };
        let path = match &h.path {
            None => Some("*".to_string()),
            Some(p) => self.attr_text(p, "iis.handler.path"),
        };
        let mut verbs = Vec::new();
        let mut verbs_ok = true;
        for v in h.verbs.iter().flatten() {
            let s = v.get();
            let ok = s == "*"
                || (!s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '-'));
            if !ok {
                self.error(
                    v.span(),
                    format!("`iis.handler.verbs` entry {s:?} is not an HTTP verb"),
                    "use upper-case methods such as \"GET\", \"POST\", or \"*\" for all",
                );
                verbs_ok = false;
            } else {
                verbs.push(s.clone());
            }
        }
        if let Some(list) = &h.verbs {
            if list.is_empty() {
                let span = self.header_span("iis.handler");
                self.error(
                    span,
                    "`iis.handler.verbs` is empty",
                    "list at least one verb, or remove the key to accept all (`*`)",
                );
                verbs_ok = false;
            } else if verbs.len() > 1
                && verbs.iter().any(|v| v == "*")
                && let Some(v) = list.iter().find(|v| v.get() == "*")
            {
                self.error(
                    v.span(),
                    "`*` already means every verb",
                    "use either \"*\" alone or a list of verbs",
                );
                verbs_ok = false;
            }
        } else {
            verbs.push("*".to_string());
        }
        let rbl = self.int(
            h.response_buffer_limit.as_ref(),
            "iis.handler.response-buffer-limit",
            (0, u32::MAX as i64),
            0,
            "IIS stores it as a 32-bit unsigned number of bytes; 0 streams responses",
        );
        Some(Handler {
            name: hname?,
            path: path?,
            verbs: if verbs_ok { verbs } else { return None },
            response_buffer_limit: rbl? as u32,
            require_access: h.require_access.unwrap_or(RequireAccess::Script),
            resource_type: h.resource_type.unwrap_or(HandlerResourceType::Unspecified),
        })
    }

    fn fastcgi(&mut self, f: Option<&raw::RawFastCgi>) -> Option<FastCgi> {
        use fastcgi_defaults as d;
        let default_f = raw::RawFastCgi::default();
        let f = f.unwrap_or(&default_f);
        const TIMEOUT: (i64, i64) = (10, 2_592_000);
        let max_instances = self.int(
            f.max_instances.as_ref(),
            "iis.fastcgi.max-instances",
            (0, 10_000),
            d::MAX_INSTANCES as i64,
            "IIS accepts 0-10000 (0 lets IIS decide)",
        );
        let imr = self.int(
            f.instance_max_requests.as_ref(),
            "iis.fastcgi.instance-max-requests",
            (1, 10_000_000),
            d::INSTANCE_MAX_REQUESTS as i64,
            "IIS accepts 1-10000000 requests per process",
        );
        let activity = self.int(
            f.activity_timeout.as_ref(),
            "iis.fastcgi.activity-timeout",
            TIMEOUT,
            d::ACTIVITY_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let request = self.int(
            f.request_timeout.as_ref(),
            "iis.fastcgi.request-timeout",
            TIMEOUT,
            d::REQUEST_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let idle = self.int(
            f.idle_timeout.as_ref(),
            "iis.fastcgi.idle-timeout",
            TIMEOUT,
            d::IDLE_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let signal = self.int(
            f.signal_before_terminate_seconds.as_ref(),
            "iis.fastcgi.signal-before-terminate-seconds",
            (0, 60),
            d::SIGNAL_BEFORE_TERMINATE_SECONDS as i64,
            "IIS accepts 0-60 seconds; non-zero lets iiswsgi finish the current request on shutdown",
        );
        let queue = self.int(
            f.queue_length.as_ref(),
            "iis.fastcgi.queue-length",
            (1, 100_000_000),
            d::QUEUE_LENGTH as i64,
            "IIS accepts 1-100000000 queued requests",
        );
        let rapid = self.int(
            f.rapid_fails_per_minute.as_ref(),
            "iis.fastcgi.rapid-fails-per-minute",
            (0, 1000),
            d::RAPID_FAILS_PER_MINUTE as i64,
            "IIS accepts 0-1000",
        );
        if let (Some(a), Some(r), Some(span)) =
            (activity, request, f.activity_timeout.as_ref().map(Sp::span))
            && a > r
        {
            self.warn(
                span,
                format!("`iis.fastcgi.activity-timeout` ({a}) is longer than `request-timeout` ({r})"),
                "the request timeout kills the process first, so the activity timeout never fires; make request-timeout at least as long",
            );
        }
        let monitor = f.monitor_changes_to.as_ref().and_then(|m| {
            if m.get().contains('%') {
                self.error(
                    m.span(),
                    "`iis.fastcgi.monitor-changes-to` must not contain `%`",
                    "IIS needs a literal path here; environment variables give an opaque 500",
                );
                return None;
            }
            self.rel_path(m, "iis.fastcgi.monitor-changes-to", "the app folder")
        });
        if f.monitor_changes_to.is_some() && monitor.is_none() {
            return None;
        }
        Some(FastCgi {
            max_instances: max_instances? as u32,
            instance_max_requests: imr? as u32,
            activity_timeout: activity? as u32,
            request_timeout: request? as u32,
            idle_timeout: idle? as u32,
            signal_before_terminate_seconds: signal? as u32,
            protocol: f.protocol.unwrap_or(Protocol::NamedPipe),
            queue_length: queue? as u32,
            rapid_fails_per_minute: rapid? as u32,
            stderr_mode: f.stderr_mode.unwrap_or(StderrMode::ReturnGeneric500),
            flush_named_pipe: f.flush_named_pipe.unwrap_or(false),
            monitor_changes_to: monitor,
        })
    }

    fn set_acl(&mut self, a: &raw::RawSetAcl, app: &str) -> Option<SetAcl> {
        let path = match &a.path {
            None => {
                let span = a
                    .user
                    .as_ref()
                    .map(Sp::span)
                    .or_else(|| a.access.as_ref().and_then(|l| l.first()).map(Sp::span))
                    .unwrap_or_else(|| self.header_span("[iis.set-acl]"));
                self.error(
                    span,
                    "missing required key `path` in `[[iis.set-acl]]`",
                    "add `path = \"App_Data\"` (a folder relative to the app folder)",
                );
                None
            }
            Some(p) => self.rel_path(p, "iis.set-acl.path", "the app folder"),
        };
        let path = match path {
            Some(p) if p.as_str().is_empty() => {
                if let Some(span) = a.path.as_ref().map(Sp::span) {
                    self.error(
                        span,
                        "`iis.set-acl.path` names the app folder itself",
                        "name a sub-folder such as \"App_Data\"; granting write access to the whole app lets a compromised app rewrite its own code",
                    );
                }
                None
            }
            p => p,
        };
        let path = path.filter(|p| self.set_acl_parameter(a, p, app));
        let mut access = Vec::new();
        let mut ok = true;
        match &a.access {
            None => access.push("Modify"),
            Some(list) if list.is_empty() => {
                let span = a.path.as_ref().map_or(0..0, Sp::span);
                self.error(
                    span,
                    "`iis.set-acl.access` is empty",
                    "list rights such as [\"Modify\"], or remove the key for the default",
                );
                ok = false;
            }
            Some(list) => {
                for r in list {
                    match FILE_SYSTEM_RIGHTS
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(r.get()))
                    {
                        Some(k) => access.push(*k),
                        None => {
                            let help = match closest(r.get(), FILE_SYSTEM_RIGHTS) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!(
                                    "use .NET FileSystemRights names: {}",
                                    FILE_SYSTEM_RIGHTS.join(", ")
                                ),
                            };
                            self.error(
                                r.span(),
                                format!("`iis.set-acl.access` has an unknown right {:?}", r.get()),
                                help,
                            );
                            ok = false;
                        }
                    }
                }
            }
        }
        let user = match &a.user {
            None => Some(None),
            Some(u) => self.attr_text(u, "iis.set-acl.user").map(Some),
        };
        if !ok {
            return None;
        }
        Some(SetAcl {
            path: path?,
            access,
            user: user?,
            resource_type: a.resource_type.unwrap_or(AclResourceType::Directory),
            ship_contents: a.ship_contents.unwrap_or(false),
        })
    }

    /// Whether the hidden parameter the package declares for this setAcl path is one
    /// `check` accepts: its ProviderPath `match` is judged by the same function as P04.
    fn set_acl_parameter(&mut self, a: &raw::RawSetAcl, path: &RelPath, app: &str) -> bool {
        let acl = SetAcl {
            path: path.clone(),
            access: Vec::new(),
            user: None,
            resource_type: AclResourceType::Directory,
            ship_contents: false,
        };
        let Err(e) = dotnet_regex::compile(&dotnet_regex::literal_match(&acl.package_path(app)))
        else {
            return true;
        };
        let span = a.path.as_ref().map_or(0..0, Sp::span);
        self.push(
            Diagnostic::error(
                self.src,
                span,
                format!(
                    "`iis.set-acl.path` is too long for the package's setAcl parameter: {e}"
                ),
            )
            .with_help(format!(
                "the package matches this path with a regex of at most {} bytes compiled; use a shorter path",
                dotnet_regex::SIZE_LIMIT
            )),
        );
        false
    }
}
