//! The `iiswsgi` command: parses arguments, calls the library, prints reports and error chains.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
