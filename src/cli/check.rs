//! `iiswsgi check FILE...`: lint manifests (and, as they land, packages and feeds).

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::manifest;

/// Arguments of `iiswsgi check`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check iiswsgi.toml manifests: every mistake with file:line:col and a hint; exit 1 on errors",
    long_about = "Check files for mistakes before they reach a server.\n\n\
For an iiswsgi.toml it reports every problem at once, each with file:line:col, the line, \
and a hint: unknown keys (with the likely spelling), invalid names and versions, regexes \
that do not compile, FastCGI values outside IIS's ranges, paths that leave the app folder, \
parameter mistakes.\n\nExit status: 0 when there are no errors, 1 otherwise.",
    after_help = "Examples:\n  iiswsgi check                 # ./iiswsgi.toml\n  iiswsgi check examples/flask-hello/iiswsgi.toml\n  iiswsgi check --deny-warnings iiswsgi.toml"
)]
pub struct Args {
    /// Files to check (default: iiswsgi.toml in the current folder).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    deny_warnings: bool,
}

pub fn run(args: Args) -> ExitCode {
    let files = if args.files.is_empty() {
        vec![PathBuf::from(manifest::FILE_NAME)]
    } else {
        args.files
    };
    let mut failed = false;
    for file in &files {
        match manifest::check_file(file) {
            Ok(report) => {
                print!("{}", report.render());
                failed |= report.errors() > 0 || (args.deny_warnings && report.warnings() > 0);
            }
            Err(e) => {
                super::report_error(&e);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
