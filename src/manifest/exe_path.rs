//! Where `iiswsgi.exe` lives on the IIS servers (`[iis] iiswsgi-exe`, `package --iiswsgi-exe`),
//! and what may be in that path.
//!
//! The path ends up in two command lines the server runs: the package's post-install step
//! (msdeploy's runCommand, `"<exe>" install --app-name <Name>`, run through `cmd.exe /c`), and
//! the FastCGI `fullPath` `install` registers with appcmd (single-quoted values). So the path is
//! refused, not merely warned about, when it holds anything cmd.exe would interpret inside or
//! around the quotes: `"`, `&`, `|`, `<`, `>`, `^`, a `%` other than one leading `%VAR%`, a
//! control character; and `'`, which appcmd cannot carry (msdeploy-webpi.md §5.2). A value such
//! as `C:\x\iiswsgi.exe" & calc & "` would otherwise make every server run `calc`.
//!
//! Warnings cover what is legal but fragile: a path that is not absolute (runCommand has no
//! useful working directory), `/` separators, `!` (delayed expansion when a server enables it),
//! a space together with `(`, `)` or `@` (`cmd /c` then strips the quotes, `cmd /?`), and any
//! space at all (or a leading `%ProgramFiles%`-like variable, which expands to one): how
//! msdeploy quotes the command it hands to `cmd /c` is unverified (msdeploy-webpi.md §9.3), and
//! Wine's cmd.exe strips the quotes around `"C:\Program Files\...\iiswsgi.exe"`, while a path
//! without spaces (the default) runs however it is quoted.
//!
//! Pure: this module looks at the text only. [`check_exe_path`] is the one validation the
//! manifest validator, `iiswsgi package` and `iiswsgi check`'s O rules share.

/// Where `iiswsgi.exe` is on the server unless the manifest or `--iiswsgi-exe` says otherwise:
/// the README's server set-up (`py -m venv C:\iiswsgi`, then `C:\iiswsgi\Scripts\pip install`
/// the wheel) puts it here.
pub const DEFAULT_IISWSGI_EXE: &str = r"C:\iiswsgi\Scripts\iiswsgi.exe";

/// Why a path cannot be the server's iiswsgi.exe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExePathError {
    /// Nothing given.
    #[error("is empty")]
    Empty,
    /// A character cmd.exe interprets (`"`, `&`, `|`, `<`, `>`, `^`).
    #[error(
        "contains `{found}`, which cmd.exe interprets in the post-install command line \
         (\"<exe>\" install ...): it could end the quoted path and run another command"
    )]
    CmdMetacharacter {
        /// The character.
        found: char,
    },
    /// A `%` that is not part of one leading `%VAR%`.
    #[error(
        "contains a `%` outside a leading `%VAR%`: cmd.exe would expand it in the \
         post-install command line"
    )]
    Percent,
    /// A control character.
    #[error("contains the control character U+{code:04X}")]
    Control {
        /// Its code point.
        code: u32,
    },
    /// `'`, which appcmd's single-quoted FastCGI values cannot carry.
    #[error("contains `'`, which appcmd cannot register as a FastCGI fullPath")]
    SingleQuote,
    /// A character no Windows path holds (`?`, `*`, or `:` other than after a drive letter).
    #[error("contains `{found}`, which no Windows path holds")]
    NotAPath {
        /// The character.
        found: char,
    },
}

/// Something legal but fragile about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExePathWarning {
    /// Not `X:\...`, `\\server\share\...` or `%VAR%\...`.
    NotAbsolute,
    /// `/` instead of `\`.
    ForwardSlashes,
    /// `!`: expanded when a server turns on delayed expansion.
    Exclamation,
    /// A space together with `(`, `)` or `@` (or a leading `%VAR%` whose name has them, such
    /// as `%ProgramFiles(x86)%`): `cmd /c` strips the quotes around such a path.
    QuotesStripped,
    /// A space (or a leading `%ProgramFiles%`, `%CommonProgramFiles%`… that expands to one).
    Spaces,
}

impl std::fmt::Display for ExePathWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExePathWarning::NotAbsolute => {
                "is not absolute (C:\\..., \\\\server\\share\\... or %VAR%\\...): msdeploy runs \
                 the post-install step from no useful folder"
            }
            ExePathWarning::ForwardSlashes => "uses `/`; Windows command lines and IIS expect `\\`",
            ExePathWarning::Exclamation => {
                "contains `!`, which cmd.exe expands where delayed expansion is enabled"
            }
            ExePathWarning::QuotesStripped => {
                "holds a space and `(`, `)` or `@`: `cmd /c` strips the quotes around such a \
                 path and the post-install step fails; install iiswsgi under a plain path such \
                 as C:\\iiswsgi"
            }
            ExePathWarning::Spaces => {
                "holds a space (or a variable that expands to one): whether the post-install \
                 step survives cmd.exe's quote handling depends on how msdeploy quotes it, which \
                 is unverified; a path without spaces, such as C:\\iiswsgi\\Scripts\\iiswsgi.exe, \
                 runs either way"
            }
        })
    }
}

/// Checks `path` as the server's iiswsgi.exe: an error when it is unusable or unsafe, else
/// the warnings (possibly none). See the module docs for the rules.
pub fn check_exe_path(path: &str) -> Result<Vec<ExePathWarning>, ExePathError> {
    if path.trim().is_empty() {
        return Err(ExePathError::Empty);
    }
    let (var, rest) = split_leading_var(path);
    for (i, c) in rest.char_indices() {
        match c {
            '"' | '&' | '|' | '<' | '>' | '^' => {
                return Err(ExePathError::CmdMetacharacter { found: c });
            }
            '%' => return Err(ExePathError::Percent),
            '\'' => return Err(ExePathError::SingleQuote),
            '?' | '*' => return Err(ExePathError::NotAPath { found: c }),
            ':' if !(var.is_none() && i == 1 && is_drive(rest)) => {
                return Err(ExePathError::NotAPath { found: c });
            }
            c if c.is_control() => return Err(ExePathError::Control { code: c as u32 }),
            _ => {}
        }
    }
    let mut warnings = Vec::new();
    let absolute = match var {
        Some(_) => rest.starts_with('\\') || rest.starts_with('/'),
        None => (is_drive(rest) && rest[2..].starts_with(['\\', '/'])) || rest.starts_with(r"\\"),
    };
    if !absolute {
        warnings.push(ExePathWarning::NotAbsolute);
    }
    if path.contains('/') {
        warnings.push(ExePathWarning::ForwardSlashes);
    }
    if path.contains('!') {
        warnings.push(ExePathWarning::Exclamation);
    }
    let var_has_parens = var.is_some_and(|v| v.contains(['(', ')']));
    let var_has_space = var.is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v.starts_with("programfiles") || v.starts_with("commonprogramfiles") || v == "programw6432"
    });
    if var_has_parens || (path.contains(' ') && path.contains(['(', ')', '@'])) {
        warnings.push(ExePathWarning::QuotesStripped);
    } else if var_has_space || path.contains(' ') {
        warnings.push(ExePathWarning::Spaces);
    }
    Ok(warnings)
}

/// `("ProgramFiles", rest)` for `%ProgramFiles%rest`, else `(None, path)`.
fn split_leading_var(path: &str) -> (Option<&str>, &str) {
    let Some(after) = path.strip_prefix('%') else {
        return (None, path);
    };
    match after.find('%') {
        Some(end)
            if end > 0
                && after[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '(' | ')')) =>
        {
            (Some(&after[..end]), &after[end + 1..])
        }
        _ => (None, path),
    }
}

fn is_drive(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_variable_paths_pass() {
        for ok in [
            DEFAULT_IISWSGI_EXE,
            r"%SystemDrive%\iiswsgi\Scripts\iiswsgi.exe",
            r"D:\tools\iiswsgi.exe",
            r"\\fileserver\tools\iiswsgi.exe",
        ] {
            assert_eq!(check_exe_path(ok), Ok(vec![]), "{ok}");
        }
    }

    /// Issue 16 item 6: the injected path that made runCommand run `calc`.
    #[test]
    fn injection_through_a_quote_and_ampersand_is_refused() {
        assert_eq!(
            check_exe_path(r#"C:\x\iiswsgi.exe" & calc & ""#),
            Err(ExePathError::CmdMetacharacter { found: '"' })
        );
        for (bad, want) in [
            (
                r"C:\x&y\iiswsgi.exe",
                ExePathError::CmdMetacharacter { found: '&' },
            ),
            (r"C:\x|y.exe", ExePathError::CmdMetacharacter { found: '|' }),
            (r"C:\x<y.exe", ExePathError::CmdMetacharacter { found: '<' }),
            (r"C:\x>y.exe", ExePathError::CmdMetacharacter { found: '>' }),
            (r"C:\x^y.exe", ExePathError::CmdMetacharacter { found: '^' }),
            (r"C:\%TEMP%\iiswsgi.exe", ExePathError::Percent),
            (r"%A%%B%\iiswsgi.exe", ExePathError::Percent),
            (r"%\iiswsgi.exe", ExePathError::Percent),
            ("C:\\x\n.exe", ExePathError::Control { code: 10 }),
            (r"C:\Bob's\iiswsgi.exe", ExePathError::SingleQuote),
            (r"C:\x?.exe", ExePathError::NotAPath { found: '?' }),
            (r"C:\x:y.exe", ExePathError::NotAPath { found: ':' }),
            ("  ", ExePathError::Empty),
        ] {
            assert_eq!(check_exe_path(bad), Err(want), "{bad}");
        }
    }

    #[test]
    fn fragile_paths_are_warnings() {
        assert_eq!(
            check_exe_path("iiswsgi.exe"),
            Ok(vec![ExePathWarning::NotAbsolute])
        );
        assert_eq!(
            check_exe_path("C:/iiswsgi/iiswsgi.exe"),
            Ok(vec![ExePathWarning::ForwardSlashes])
        );
        assert_eq!(
            check_exe_path(r"C:\Program Files (x86)\iiswsgi\iiswsgi.exe"),
            Ok(vec![ExePathWarning::QuotesStripped])
        );
        assert_eq!(
            check_exe_path(r"%ProgramFiles(x86)%\iiswsgi\iiswsgi.exe"),
            Ok(vec![ExePathWarning::QuotesStripped])
        );
        assert_eq!(
            check_exe_path(r"C:\hi!\iiswsgi.exe"),
            Ok(vec![ExePathWarning::Exclamation])
        );
        for spaced in [
            r"%ProgramFiles%\iiswsgi\iiswsgi.exe",
            r"D:\Program Files\iiswsgi\iiswsgi.exe",
        ] {
            assert_eq!(
                check_exe_path(spaced),
                Ok(vec![ExePathWarning::Spaces]),
                "{spaced}"
            );
        }
    }
}
