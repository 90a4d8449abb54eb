//! `iiswsgi check FILE...`: lint manifests, packages, their XML, web.config files and feeds.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::manifest;
use iiswsgi::package::check::{self, CheckOptions};

/// Arguments of `iiswsgi check`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check iiswsgi.toml, packages, Manifest.xml/Parameters.xml, web.config and WebPI feeds; exit 1 on errors",
    long_about = "Check files for mistakes before they reach a server.\n\n\
The kind of each FILE is recognised from its name and content:\n\
  iiswsgi.toml (or a folder holding one): every problem at once, each with file:line:col, \
the line, and a hint: unknown keys (with the likely spelling), invalid names and versions, \
regexes that do not compile, FastCGI values outside IIS's ranges, parameter mistakes.\n\
  *.zip: an MSDeploy package: zip rules (Z: names, Zip64, limits, folders, timestamps), \
Manifest.xml (M, and O for runCommand option blobs), Parameters.xml (P: {references}, \
IisApp, setAcl coverage, validation), web.config (C).\n\
  With --import, also [wsgi] app of each manifest, imported in its venv by the venv's own \
python (I: a missing module or dependency, an import that raises, a missing attribute with the \
module's callables, an ASGI app, a factory whose arguments do not fit, not a WSGI callable).\n\
  Manifest.xml, Parameters.xml, SetParameters.xml, web.config: the same rules on their own.\n\
  A WebPI feed: Atom namespace, entries, dependencies, dates, and sha1/size against the zip \
when it is a local file or sits next to the feed (F).\n\n\
Each finding is `error[RULE]` or `warning[RULE]` with the rule id of the spec \
(msdeploy-webpi.md §7).\n\nExit status: 0 when there are no errors, 1 otherwise.",
    after_help = "Examples:\n  iiswsgi check                 # ./iiswsgi.toml\n  iiswsgi check dist/MyApp-1.0.zip dist/MyApp-1.0.webpi.xml\n  iiswsgi check --previous-feed published/feed.xml dist/feed.xml\n  iiswsgi check --deny-warnings iiswsgi.toml\n  iiswsgi check --import        # does [wsgi] app import in its venv?"
)]
pub struct Args {
    /// Files to check (default: iiswsgi.toml in the current folder).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    deny_warnings: bool,
    /// The feed published before, to catch a reused installerURL with a new sha1 (F09).
    #[arg(long, value_name = "FEED")]
    previous_feed: Option<PathBuf>,
    /// Also import [wsgi] app of each manifest with its venv's python (a child process that
    /// runs the app's module-level code, as the server will) and report why it would not
    /// serve (I rules).
    #[arg(long = "import")]
    import_app: bool,
    /// With --import: the venv to import with, instead of [wsgi] venv (as `run --venv`).
    #[arg(long, value_name = "DIR", requires = "import_app")]
    venv: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let files = if args.files.is_empty() {
        vec![PathBuf::from(manifest::FILE_NAME)]
    } else {
        args.files
    };
    let options = CheckOptions {
        previous_feed: args.previous_feed,
        import_app: args.import_app,
        venv: args.venv,
    };
    let report = check::lint(&files, &options);
    for file in &report.files {
        if file.unreadable() {
            eprint!("{}", file.render());
        } else {
            print!("{}", file.render());
        }
    }
    if report.errors() > 0 || (args.deny_warnings && report.warnings() > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
