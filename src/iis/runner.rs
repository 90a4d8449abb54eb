//! Running the commands [`super::appcmd`] and [`super::acl`] spell, or only printing them.
//!
//! A [`Runner`] takes a [`CommandLine`] and returns its output. [`SystemRunner`] starts the
//! program directly with its argv (never through cmd.exe, whose quoting rules differ from
//! appcmd's, iis-runtime.md §8.3). Tests use a runner that emulates appcmd's configuration
//! store, so the decide-and-verify logic of `install` and `iis enable` runs on any OS.

use std::process::Command;

use super::appcmd::CommandLine;

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output, decoded lossily.
    pub stdout: String,
    /// Standard error, decoded lossily.
    pub stderr: String,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr, else of stdout (appcmd prints its errors on stdout).
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        super::python::tail(text, 6)
    }
}

/// Runs commands.
pub trait Runner {
    /// Runs `cmd` to completion and returns its output; `Err` only when it cannot start.
    fn run(&mut self, cmd: &CommandLine) -> std::io::Result<Output>;
}

/// Starts real processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&mut self, cmd: &CommandLine) -> std::io::Result<Output> {
        let out = Command::new(&cmd.program).args(&cmd.args).output()?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Expands `%NAME%` references with `lookup` (names case-insensitive, as Windows does); an
/// unknown name and a lone `%` stay as written.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) if end > 0 => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('%');
                        out.push_str(name);
                        out.push('%');
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Looks a variable up in this process's environment, ignoring case like Windows.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        std::env::vars()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_expand_and_unknown_ones_stay() {
        let lookup = |n: &str| (n.eq_ignore_ascii_case("SystemDrive")).then(|| "C:".to_string());
        assert_eq!(
            expand_env(r"%SYSTEMDRIVE%\inetpub\%NOPE%\100%", lookup),
            r"C:\inetpub\%NOPE%\100%"
        );
        assert_eq!(expand_env("%%", lookup), "%%");
    }
}
