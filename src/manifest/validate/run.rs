//! `[run]`: serving outside IIS (threads, mount point, socket mode), the log file and its
//! rotation, and the FastCGI params caps.

use super::{Sp, Validator};
use crate::manifest::{Limits, LogLevel, Run, raw};

impl Validator<'_> {
    pub(super) fn run(&mut self, r: Option<&raw::RawRun>) -> Run {
        let default_r = raw::RawRun::default();
        let r = r.unwrap_or(&default_r);
        let threads = self
            .int(
                r.threads.as_ref(),
                "run.threads",
                (1, 1024),
                8,
                "threads serve requests concurrently outside IIS",
            )
            .unwrap_or(8) as u16;
        let mount_point = r.mount_point.as_ref().and_then(|m| {
            let s = m.get();
            if s.is_empty() || s == "/" {
                return None;
            }
            if !s.starts_with('/') || s.ends_with('/') || s.chars().any(char::is_whitespace) {
                self.error(
                    m.span(),
                    format!("`run.mount-point` {s:?} must start with `/` and not end with one"),
                    "e.g. \"/shop\"",
                );
                return None;
            }
            Some(s.clone())
        });
        let log_file = r.log_file.as_ref().and_then(|l| {
            if l.get().trim().is_empty() {
                self.error(
                    l.span(),
                    "`run.log-file` is empty",
                    "remove it to use the default location",
                );
                return None;
            }
            Some(l.get().clone())
        });
        let log_max_bytes = self
            .int(
                r.log_max_bytes.as_ref(),
                "run.log-max-bytes",
                (4096, 1 << 40),
                10 * 1024 * 1024,
                "the log rotates at this size",
            )
            .unwrap_or(10 * 1024 * 1024) as u64;
        let log_keep = self
            .int(
                r.log_keep.as_ref(),
                "run.log-keep",
                (0, 100),
                5,
                "rotated logs kept",
            )
            .unwrap_or(5) as u32;
        let l = r.limits.clone().unwrap_or_default();
        let d = Limits::default();
        let mut lim = |v: Option<&Sp<i64>>, key: &str, range: (i64, i64), def: usize| {
            self.int(
                v,
                key,
                range,
                def as i64,
                "a request over the cap gets 431 and the connection stays usable",
            )
            .unwrap_or(def as i64) as usize
        };
        let limits = Limits {
            max_param_name_bytes: lim(
                l.max_param_name_bytes.as_ref(),
                "run.limits.max-param-name-bytes",
                (16, 65536),
                d.max_param_name_bytes,
            ),
            max_param_value_bytes: lim(
                l.max_param_value_bytes.as_ref(),
                "run.limits.max-param-value-bytes",
                (1024, 16 << 20),
                d.max_param_value_bytes,
            ),
            max_params_bytes: lim(
                l.max_params_bytes.as_ref(),
                "run.limits.max-params-bytes",
                (4096, 64 << 20),
                d.max_params_bytes,
            ),
            max_param_pairs: lim(
                l.max_param_pairs.as_ref(),
                "run.limits.max-param-pairs",
                (16, 1_000_000),
                d.max_param_pairs,
            ),
        };
        let socket_mode = r.socket_mode.as_ref().and_then(|m| {
            let mode = crate::manifest::parse_socket_mode(m.get());
            if mode.is_none() {
                self.error(
                    m.span(),
                    format!("`run.socket-mode` {:?} is not an octal mode", m.get()),
                    "e.g. \"0660\" (owner and group) or \"0666\" (any local user)",
                );
            }
            mode
        });
        Run {
            socket_mode,
            threads,
            mount_point,
            log_file,
            log_level: r.log_level.unwrap_or(LogLevel::Info),
            log_max_bytes,
            log_keep,
            limits,
        }
    }
}
