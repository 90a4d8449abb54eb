//! `iiswsgi init [DIR] [--force]`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `iiswsgi init`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Write a commented iiswsgi.toml for a Python project (reads pyproject.toml / setup.cfg / setup.py)",
    long_about = "Write a commented iiswsgi.toml for the Python project in DIR.\n\n\
It reads the name, version, description and author from pyproject.toml ([project] or \
[tool.poetry]), setup.cfg ([metadata]) or setup.py (literal arguments only; it is never run), \
and looks for the WSGI callable: Flask's `app = Flask(...)`, Django's `<project>/wsgi.py`, a \
plain `application`. It prints what it found and what you still have to fill in; anything \
it could not find is written as a TODO that `iiswsgi check` reports.",
    after_help = "Examples:\n  iiswsgi init                  # the project in the current folder\n  iiswsgi init examples/flask-hello\n  iiswsgi init --force          # replace iiswsgi.toml (the old one is kept as iiswsgi.toml.bak)"
)]
pub struct Args {
    /// The project folder (default: the current folder).
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Replace an existing iiswsgi.toml (the old file is kept as iiswsgi.toml.bak).
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> ExitCode {
    let options = iiswsgi::package::init::InitOptions {
        dir: args.dir,
        force: args.force,
    };
    match iiswsgi::package::init::init(&options) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => super::report_error(&e),
    }
}
