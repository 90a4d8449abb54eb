//! `iiswsgi doctor [APP_DIR]`: what keeps the app from working under IIS, and the fix.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::iis::request::{self, DoctorRequest, WhichIis};
use iiswsgi::iis::runner::SystemRunner;

use super::iis::print_out;

/// Arguments of `iiswsgi doctor`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check an installed app: Python DLL, venv version, web.config vs FastCGI registration, ACLs, logs; each problem with its fix",
    long_about = "Check an installed app folder for what keeps it from working under IIS, and \
print the fix for each problem: the Python DLL the app pool must load, a venv made by another \
Python, a per-user Python the app pool cannot see, a scriptProcessor that is not the registered \
fullPath|arguments (0x80070585), a missing FastCGI registration, responseBufferLimit, \
instanceMaxRequests, stderrMode, permissions and the log folder.\n\nOff Windows the IIS checks \
are listed as skipped and the rest (manifest, venv, web.config) still run.\n\nExit status: 1 when \
a check fails, else 0.",
    after_help = "Examples:\n  iiswsgi doctor C:\\inetpub\\wwwroot\\shop\n  iiswsgi doctor --physical-path C:\\inetpub\\wwwroot\\shop ./copy-of-shop"
)]
pub struct Args {
    /// The app folder, holding iiswsgi.toml (default: the current folder).
    #[arg(value_name = "APP_DIR", default_value = ".")]
    app_dir: PathBuf,
    /// The executable IIS should start (default: this iiswsgi).
    #[arg(long, value_name = "PATH")]
    iiswsgi_exe: Option<String>,
    /// The app folder as IIS sees it, when APP_DIR is a copy of it.
    #[arg(long, value_name = "PATH")]
    physical_path: Option<String>,
    /// The app pool whose permissions to check (default: the pool of the app serving APP_DIR).
    #[arg(long, value_name = "NAME")]
    app_pool: Option<String>,
    /// Check against IIS Express instead of IIS.
    #[arg(long)]
    express: bool,
    /// The applicationhost.config IIS Express uses.
    #[arg(long, value_name = "FILE", requires = "express")]
    apphostconfig: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let request = DoctorRequest {
        app_dir: args.app_dir,
        iiswsgi_exe: args.iiswsgi_exe,
        physical_path: args.physical_path,
        app_pool: args.app_pool,
        iis: WhichIis {
            express: args.express,
            apphostconfig: args.apphostconfig,
        },
    };
    match request::doctor(request, &mut SystemRunner) {
        Ok(report) => {
            print_out(&report);
            if report.failures() > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => super::report_error(&e),
    }
}
