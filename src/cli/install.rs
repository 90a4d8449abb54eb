//! `iiswsgi install [APP_DIR]`: the post-install step msdeploy's runCommand runs.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::iis::request::{self, InstallRequest, RequestError, WhichIis};
use iiswsgi::iis::runner::SystemRunner;

use super::iis::print_out;

/// Arguments of `iiswsgi install`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Finish installing an app on the server: venv, requirements, web.config, FastCGI registration, ACLs (run by the package)",
    long_about = "Finish installing an app msdeploy has copied: the step the package's runCommand \
runs, as administrator.\n\n\
It finds the app folder (APP_DIR, else APPL_PHYSICAL_PATH, else the IIS application folder that \
still holds iiswsgi-install.stamp and an iiswsgi.toml for --app-name), creates the venv with \
the Python this iiswsgi embeds, pip-installs the requirements, runs [package] post-install, \
registers the FastCGI application (appcmd), writes web.config from the shipped template with \
this iiswsgi as fullPath, grants the app pool's identity read on the app and Python and write on \
the writable folders and logs (icacls), and removes the stamp.\n\n\
Every step is skipped when already done, so running it again changes nothing; a venv from which \
a requirement was uninstalled is noticed (pip's own check) and repaired. On any failure it \
stops with a message naming the step and exits 1; the stamp stays. Off Windows the IIS and ACL \
steps are printed, not run.",
    after_help = "Examples:\n  iiswsgi install C:\\inetpub\\wwwroot\\shop\n  iiswsgi install --app-name Shop          # as the package's runCommand does\n  iiswsgi install --dry-run .               # print every step, change nothing"
)]
pub struct Args {
    /// The app folder, holding iiswsgi.toml (default: found, see above).
    #[arg(value_name = "APP_DIR")]
    app_dir: Option<PathBuf>,
    /// The app's [app] name: which folder to look for, and a check on APP_DIR.
    #[arg(long, value_name = "NAME")]
    app_name: Option<String>,
    /// The Python to create the venv with (default: `py -X.Y` on Windows, `pythonX.Y` or
    /// `python3` elsewhere, X.Y being the version this iiswsgi embeds).
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
    /// Print every step instead of doing it.
    #[arg(long)]
    dry_run: bool,
    /// Reinstall the requirements into the venv (pip --force-reinstall), even when pip finds
    /// nothing missing. Without it, install still repairs a venv pip finds incomplete.
    #[arg(long)]
    repair: bool,
    /// Register with IIS Express instead of IIS (no ACLs: it runs as you).
    #[arg(long)]
    express: bool,
    /// The applicationhost.config IIS Express uses (default: the one in your Documents).
    #[arg(long, value_name = "FILE", requires = "express")]
    apphostconfig: Option<String>,
    /// The IIS application as `Site/app` (default: the application serving the folder).
    #[arg(long, value_name = "SITE/APP")]
    site: Option<String>,
    /// The app pool whose identity gets the ACLs (default: the application's pool).
    #[arg(long, value_name = "NAME")]
    app_pool: Option<String>,
    /// The executable IIS starts (default: this iiswsgi).
    #[arg(long, value_name = "PATH")]
    iiswsgi_exe: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let request = InstallRequest {
        app_dir: args.app_dir,
        app_name: args.app_name,
        python: args.python,
        iiswsgi_exe: args.iiswsgi_exe,
        site: args.site,
        app_pool: args.app_pool,
        dry_run: args.dry_run,
        repair: args.repair,
        iis: WhichIis {
            express: args.express,
            apphostconfig: args.apphostconfig,
        },
    };
    match request::install(request, &mut SystemRunner) {
        Ok(report) => {
            print_out(&report);
            ExitCode::SUCCESS
        }
        Err(RequestError::Failed(failure)) => {
            print_out(&failure.report);
            super::report_error(&failure.error);
            eprintln!("  ({failure})");
            ExitCode::FAILURE
        }
        Err(e) => super::report_error(&e),
    }
}
