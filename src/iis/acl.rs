//! icacls command lines that let the app-pool identity read the app and Python and write
//! where the app writes.
//!
//! IIS runs the FastCGI process as the app pool's identity (`IIS AppPool\<pool>`), not as the
//! user who installed the app. wfastcgi never set ACLs, and "the FastCGI process exited
//! unexpectedly" or "could not be imported" was the usual result (iis-runtime.md §9, §10).
//! The install step therefore grants, with inheritance to everything below:
//! - read and execute on the app folder (the venv inside it included);
//! - the manifest's `[[iis.set-acl]]` rights (usually Modify) on writable folders, and Modify
//!   on the log folder;
//! - read and execute on the Python installation the venv was made from (its DLL and stdlib).
//!
//! Pure: this module only spells commands ([`Grant::command`]); `install` runs them. icacls
//! merges an ACE equal to an existing one, so running a grant twice changes nothing.

use std::fmt;

use super::appcmd::CommandLine;
use crate::manifest::{AclResourceType, SetAcl};

/// icacls, as cmd.exe would expand it.
pub const ICACLS: &str = r"%windir%\system32\icacls.exe";

/// The account an app pool runs as (`ApplicationPoolIdentity`, the default identity).
pub fn app_pool_identity(pool: &str) -> String {
    format!(r"IIS AppPool\{pool}")
}

/// A set of rights in icacls notation: one simple right (`RX`, `M`), or a parenthesised list
/// of specific and generic rights (`(RD,WD,GR)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights(String);

impl Rights {
    /// Read and execute.
    pub fn read_execute() -> Self {
        Rights("RX".into())
    }

    /// Modify (read, write, execute, delete).
    pub fn modify() -> Self {
        Rights("M".into())
    }

    /// From .NET `FileSystemRights` names as `[[iis.set-acl]] access` lists them. One name
    /// with an icacls simple right keeps that form; otherwise every name becomes its specific
    /// or generic rights, deduplicated. `None` for an empty list or an unknown name.
    pub fn from_file_system_rights(names: &[&str]) -> Option<Self> {
        if let [one] = names
            && let Some(simple) = simple_right(one)
        {
            return Some(Rights(simple.into()));
        }
        let mut tokens: Vec<&str> = Vec::new();
        for name in names {
            for t in specific_rights(name)? {
                if !tokens.contains(t) {
                    tokens.push(t);
                }
            }
        }
        (!tokens.is_empty()).then(|| Rights(format!("({})", tokens.join(","))))
    }

    /// As icacls writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn simple_right(name: &str) -> Option<&'static str> {
    Some(match name {
        "FullControl" => "F",
        "Modify" => "M",
        "ReadAndExecute" => "RX",
        "Read" => "R",
        "Write" => "W",
        "Delete" => "D",
        _ => return None,
    })
}

fn specific_rights(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "FullControl" => &["GA"],
        "Modify" => &["GR", "GW", "GE", "D"],
        "ReadAndExecute" => &["GR", "GE"],
        "Read" => &["GR"],
        "Write" => &["GW"],
        "Delete" => &["D"],
        "ListDirectory" | "ReadData" => &["RD"],
        "WriteData" | "CreateFiles" => &["WD"],
        "CreateDirectories" | "AppendData" => &["AD"],
        "ReadExtendedAttributes" => &["REA"],
        "WriteExtendedAttributes" => &["WEA"],
        "Traverse" | "ExecuteFile" => &["X"],
        "DeleteSubdirectoriesAndFiles" => &["DC"],
        "ReadAttributes" => &["RA"],
        "WriteAttributes" => &["WA"],
        "ReadPermissions" => &["RC"],
        "ChangePermissions" => &["WDAC"],
        "TakeOwnership" => &["WO"],
        "Synchronize" => &["S"],
        _ => return None,
    })
}

/// Why a grant is made (shown in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Read the app folder (code, venv, iiswsgi.toml).
    App,
    /// A `[[iis.set-acl]]` entry.
    Writable,
    /// The log folder.
    Log,
    /// The Python installation the venv uses.
    Python,
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::App => "read the app",
            Purpose::Writable => "write (iis.set-acl)",
            Purpose::Log => "write the log",
            Purpose::Python => "read Python",
        })
    }
}

/// One `icacls PATH /grant ACCOUNT:(OI)(CI)RIGHTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The file or folder (absolute, host syntax).
    pub path: String,
    /// The account (`IIS AppPool\DefaultAppPool`).
    pub account: String,
    /// The rights.
    pub rights: Rights,
    /// A folder whose files and subfolders inherit the grant (`(OI)(CI)`).
    pub inherit: bool,
    /// Why.
    pub purpose: Purpose,
}

impl Grant {
    /// `icacls PATH /grant ACCOUNT:(OI)(CI)RIGHTS`, run with `icacls` = `program`.
    pub fn command(&self, program: &str) -> CommandLine {
        let inherit = if self.inherit { "(OI)(CI)" } else { "" };
        CommandLine::new(
            program,
            vec![
                self.path.clone(),
                "/grant".into(),
                format!("{}:{inherit}{}", self.account, self.rights),
            ],
        )
    }
}

impl Grant {
    /// `icacls PATH`: prints the ACL, read by [`has_grant`].
    pub fn show_command(&self, program: &str) -> CommandLine {
        CommandLine::new(program, vec![self.path.clone()])
    }
}

/// Whether icacls's listing of a path already gives `grant.account` at least `grant.rights`
/// (explicit or inherited, with `(OI)(CI)` for a folder grant). Lines look like
/// `C:\site IIS APPPOOL\DefaultAppPool:(I)(OI)(CI)(RX)`; icacls prints the account in its own
/// case. Anything not understood counts as "not granted", so the grant is simply made again.
pub fn has_grant(icacls_output: &str, grant: &Grant) -> bool {
    let account = format!("{}:", grant.account.to_ascii_lowercase());
    icacls_output.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        let Some(at) = lower.find(&account) else {
            return false;
        };
        let flags: Vec<String> = line[at + account.len()..]
            .split(['(', ')'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        let has = |f: &str| flags.iter().any(|t| t == f);
        if grant.inherit && !(has("OI") && has("CI")) {
            return false;
        }
        if has("DENY") {
            return false;
        }
        let want = grant
            .rights
            .as_str()
            .trim_matches(['(', ')'])
            .to_ascii_uppercase();
        flags.iter().any(|have| covers(have, &want))
    })
}

/// Whether icacls right `have` includes `want` (simple rights, or equal specific lists).
fn covers(have: &str, want: &str) -> bool {
    let set = |s: &str| {
        let mut v: Vec<String> = s.split(',').map(|t| t.trim().to_string()).collect();
        v.sort();
        v
    };
    have == want
        || set(have) == set(want)
        || have == "F"
        || (have == "M" && matches!(want, "R" | "RX" | "W" | "D"))
        || (have == "RX" && want == "R")
}

/// The grant of one `[[iis.set-acl]]` entry on `path` (absolute); the entry's own user, or
/// `default_account`. `None` when its rights cannot be expressed (validation prevents that).
pub fn set_acl_grant(acl: &SetAcl, path: String, default_account: &str) -> Option<Grant> {
    Some(Grant {
        path,
        account: acl
            .user
            .clone()
            .unwrap_or_else(|| default_account.to_string()),
        rights: Rights::from_file_system_rights(&acl.access)?,
        inherit: acl.resource_type == AclResourceType::Directory,
        purpose: Purpose::Writable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_simple_right_keeps_icacls_short_form() {
        assert_eq!(
            Rights::from_file_system_rights(&["Modify"]).map(|r| r.0),
            Some("M".into())
        );
        assert_eq!(
            Rights::from_file_system_rights(&["ReadAndExecute"]).map(|r| r.0),
            Some("RX".into())
        );
    }

    #[test]
    fn several_rights_become_a_deduplicated_specific_list() {
        assert_eq!(
            Rights::from_file_system_rights(&["Read", "Write", "ReadData", "ListDirectory"])
                .map(|r| r.0),
            Some("(GR,GW,RD)".into())
        );
    }

    #[test]
    fn unknown_or_empty_rights_are_refused() {
        assert_eq!(Rights::from_file_system_rights(&[]), None);
        assert_eq!(Rights::from_file_system_rights(&["Fly"]), None);
    }

    #[test]
    fn every_manifest_right_name_has_an_icacls_spelling() {
        for name in crate::manifest::FILE_SYSTEM_RIGHTS {
            assert!(specific_rights(name).is_some(), "{name}");
        }
    }

    #[test]
    fn folder_grant_inherits_to_files_and_subfolders() {
        let g = Grant {
            path: r"C:\inetpub\wwwroot\My Shop".into(),
            account: app_pool_identity("Shop Pool"),
            rights: Rights::read_execute(),
            inherit: true,
            purpose: Purpose::App,
        };
        assert_eq!(
            g.command(ICACLS).display(),
            r#"%windir%\system32\icacls.exe "C:\inetpub\wwwroot\My Shop" /grant "IIS AppPool\Shop Pool:(OI)(CI)RX""#
        );
    }

    const LISTING: &str = "C:\\inetpub\\wwwroot\\shop IIS APPPOOL\\Shop:(I)(OI)(CI)(RX)\r\n                        IIS APPPOOL\\Shop:(OI)(CI)(M)\r\n                        BUILTIN\\Administrators:(I)(OI)(CI)(F)\r\n\r\nSuccessfully processed 1 files; Failed processing 0 files\r\n";

    fn grant(rights: Rights, inherit: bool, account: &str) -> Grant {
        Grant {
            path: r"C:\inetpub\wwwroot\shop".into(),
            account: account.into(),
            rights,
            inherit,
            purpose: Purpose::App,
        }
    }

    #[test]
    fn existing_inherited_or_broader_grant_is_recognised() {
        assert!(has_grant(
            LISTING,
            &grant(Rights::read_execute(), true, r"IIS AppPool\Shop")
        ));
        assert!(has_grant(
            LISTING,
            &grant(Rights::modify(), true, r"IIS AppPool\Shop")
        ));
        assert!(has_grant(
            LISTING,
            &grant(Rights::modify(), true, r"BUILTIN\Administrators")
        ));
    }

    #[test]
    fn missing_account_or_weaker_right_is_not_a_grant() {
        assert!(!has_grant(
            LISTING,
            &grant(Rights::read_execute(), true, r"IIS AppPool\Blog")
        ));
        assert!(!has_grant(
            "x IIS APPPOOL\\Shop:(OI)(CI)(RX)\n",
            &grant(Rights::modify(), true, r"IIS AppPool\Shop")
        ));
        assert!(!has_grant(
            "x IIS APPPOOL\\Shop:(RX)\n",
            &grant(Rights::read_execute(), true, r"IIS AppPool\Shop")
        ));
        assert!(!has_grant(
            "x IIS APPPOOL\\Shop:(OI)(CI)(DENY)(RX)\n",
            &grant(Rights::read_execute(), true, r"IIS AppPool\Shop")
        ));
    }

    #[test]
    fn file_grant_has_no_inheritance_flags() {
        let g = Grant {
            path: r"C:\app\db.sqlite3".into(),
            account: app_pool_identity("DefaultAppPool"),
            rights: Rights::modify(),
            inherit: false,
            purpose: Purpose::Writable,
        };
        assert_eq!(
            g.command("icacls").argv(),
            [
                "icacls",
                r"C:\app\db.sqlite3",
                "/grant",
                r"IIS AppPool\DefaultAppPool:M"
            ]
        );
    }
}
