//! `iiswsgi iis enable|disable [APP_DIR]`: register or remove an app's FastCGI application and
//! handler mapping with appcmd.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::iis::request::{self, IisRequest, WhichIis};
use iiswsgi::iis::runner::SystemRunner;

/// Arguments of `iiswsgi iis`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Register (enable) or remove (disable) an app's FastCGI application and handler in IIS",
    long_about = "Register or remove the app's <fastCgi><application> (applicationHost.config, \
server level) and its handler mapping (the app's web.config), with appcmd, as administrator.\n\n\
The registration is this iiswsgi as fullPath and `run --manifest <APP_DIR>\\iiswsgi.toml` as arguments, with \
the [iis.fastcgi] values of iiswsgi.toml and a PATH naming the venv's Python installation so \
python3XY.dll loads. Running enable again changes nothing; a registration that differs (even \
only in case) is removed and added again, then read back and compared with the handler's \
scriptProcessor.\n\nOff Windows nothing can run: the commands are printed (a dry run), and \
--dry-run prints them on Windows too."
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Register the FastCGI application and the handler mapping (idempotent).
    #[command(
        after_help = "Examples:\n  iiswsgi iis enable C:\\inetpub\\wwwroot\\shop\n  iiswsgi iis enable --dry-run .\n  iiswsgi iis enable --express --site WebSite1 ."
    )]
    Enable(Common),
    /// Remove the FastCGI application and the handler mapping.
    Disable(Common),
}

/// Flags shared by `enable` and `disable`.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The app folder, holding iiswsgi.toml (default: the current folder).
    #[arg(value_name = "APP_DIR", default_value = ".")]
    app_dir: PathBuf,
    /// Print the appcmd commands instead of running them (always the case off Windows).
    #[arg(long)]
    dry_run: bool,
    /// Target IIS Express (its appcmd and applicationhost.config) instead of IIS.
    #[arg(long)]
    express: bool,
    /// The applicationhost.config IIS Express uses (default: the one in your Documents).
    #[arg(long, value_name = "FILE", requires = "express")]
    apphostconfig: Option<String>,
    /// The IIS application as `Site/app`, whose web.config gets the handler (default: the
    /// application serving APP_DIR).
    #[arg(long, value_name = "SITE/APP")]
    site: Option<String>,
    /// The executable IIS starts (default: this iiswsgi).
    #[arg(long, value_name = "PATH")]
    iiswsgi_exe: Option<String>,
    /// The app folder as IIS sees it, when APP_DIR is a copy of it.
    #[arg(long, value_name = "PATH")]
    physical_path: Option<String>,
    /// A Python interpreter whose installation goes on PATH when the app has no venv.
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
}

/// Prints a report on stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_out(text: &dyn std::fmt::Display) {
    use std::io::Write;
    let _ = write!(std::io::stdout().lock(), "{text}");
}

pub fn run(args: Args) -> ExitCode {
    let (action, c) = match args.action {
        Action::Enable(c) => (request::Action::Enable, c),
        Action::Disable(c) => (request::Action::Disable, c),
    };
    let request = IisRequest {
        app_dir: c.app_dir,
        physical_path: c.physical_path,
        iiswsgi_exe: c.iiswsgi_exe,
        site: c.site,
        python: c.python,
        dry_run: c.dry_run,
        iis: WhichIis {
            express: c.express,
            apphostconfig: c.apphostconfig,
        },
    };
    match request::iis(action, request, &mut SystemRunner) {
        Ok(report) => {
            print_out(&report);
            ExitCode::SUCCESS
        }
        Err(e) => super::report_error(&e),
    }
}
