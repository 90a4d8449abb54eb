//! `iiswsgi completions SHELL`.

use std::process::ExitCode;

use clap_complete::Shell;

/// Arguments of `iiswsgi completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    shell: Shell,
}

pub fn run(args: Args, command: &mut clap::Command) -> ExitCode {
    clap_complete::generate(args.shell, command, "iiswsgi", &mut std::io::stdout());
    ExitCode::SUCCESS
}
