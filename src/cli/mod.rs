//! The command line: clap definitions (raw arguments, no I/O) and dispatch to one library
//! entry point per subcommand. Exit codes are chosen here alone: 0 success, 1 failure or lint
//! errors, 2 usage errors (clap's own).

use std::error::Error;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod check;
mod completions;
mod doctor;
mod feed;
mod iis;
mod init;
mod install;
mod package;
mod run;

/// Put Python WSGI apps on IIS: build MSDeploy packages anywhere, serve them over FastCGI.
#[derive(Debug, Parser)]
#[command(name = "iiswsgi", version, long_version = LONG_VERSION, about, long_about = ABOUT)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const ABOUT: &str = "\
Put Python WSGI apps (Flask, Django, Pyramid, ...) on IIS.

A typical first run, in your project's folder:
  iiswsgi init              # write iiswsgi.toml from pyproject.toml / setup.cfg
  iiswsgi check iiswsgi.toml
  iiswsgi package           # dist/<Name>-<version>.zip, ready for msdeploy or IIS Manager";

/// `--version`'s first line: the crate version and the CPython this build embeds (from
/// `build.rs`). Scripts may parse it; [`long_version`] adds lines after it.
const LONG_VERSION: &str = env!("IISWSGI_LONG_VERSION");

/// `--version` output: [`LONG_VERSION`], then the venv `run` would use without a manifest, then
/// (with Python) which CPython library that means.
fn long_version() -> String {
    let flag = std::env::var_os("IISWSGI_VENV")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let located = iiswsgi::venv::this_venv();
    let venv = iiswsgi::venv::describe(flag.clone(), located.clone());
    // Only when asked: finding the libpython costs a little at every start otherwise.
    #[cfg(feature = "python")]
    let asked = std::env::args_os().any(|a| a == "--version" || a == "-V");
    #[cfg(feature = "python")]
    let venv = if !asked {
        venv
    } else {
        let chosen = iiswsgi::venv::choose(flag, None, located).map(|(dir, _)| dir);
        let python = iiswsgi::runtime::wsgi::libpython::version_line(chosen.as_deref());
        format!("{venv}\n{python}")
    };
    format!("{LONG_VERSION}\n{venv}")
}

#[derive(Debug, Subcommand)]
enum Command {
    // Subcommands without a doc comment here carry `about` / `long_about` on their Args structs.
    Init(init::Args),
    Package(package::Args),
    Check(check::Args),
    Feed(feed::Args),
    /// Serve FastCGI: the process IIS (or nginx, lighttpd, Apache, HAProxy) talks to.
    Run(Box<run::Args>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions(completions::Args),
    Install(install::Args),
    Iis(iis::Args),
    Doctor(doctor::Args),
}

/// Parses the command line, runs the subcommand and turns its result into an exit code.
pub fn main() -> ExitCode {
    // The long version names this binary's venv, known only at run time; clap keeps a
    // `&'static str` without its `string` feature, and this string lives as long as the process.
    let command = Cli::command().long_version(&*long_version().leak());
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if !matches!(cli.command, Command::Run(_)) {
        die_quietly_on_closed_stdout();
    }
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Package(args) => package::run(args),
        Command::Feed(args) => feed::run(args),
        Command::Completions(args) => completions::run(args, &mut Cli::command()),
        Command::Run(args) => run::run(*args),
        Command::Install(args) => install::run(args),
        Command::Iis(args) => iis::run(args),
        Command::Doctor(args) => doctor::run(args),
    }
}

/// Makes a printing subcommand end quietly when its reader goes away (`iiswsgi check | head`),
/// as Unix filters do, instead of panicking on EPIPE. `run` keeps Rust's default (SIGPIPE
/// ignored): it must see EPIPE on a socket whose peer left and carry on serving.
fn die_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: called once on the main thread before any other thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Prints `error: <top>` and then every `caused by:` of an error chain to stderr.
pub(crate) fn report_error(err: &dyn Error) -> ExitCode {
    eprintln!("error: {}", iiswsgi::error_chain(err, "\n  caused by: "));
    ExitCode::FAILURE
}
