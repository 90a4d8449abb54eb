//! `iiswsgi package [DIR] [--manifest FILE] [--out DIR]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use iiswsgi::manifest::{self, Manifest, ManifestError};
use iiswsgi::package::msdeploy::package::{self, PackageOptions};
use iiswsgi::package::msdeploy::timestamp::{TimePolicy, unix_seconds};
use iiswsgi::package::msdeploy::writer::zip::ZipOptions;

/// Arguments of `iiswsgi package`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Build dist/<Name>-<version>.zip (an MSDeploy package), its SetParameters.xml and deploy.cmd",
    long_about = "Build an MSDeploy package for the app described by iiswsgi.toml, on any OS.\n\n\
Writes <out>/<Name>-<version>.zip in App Gallery shape (Manifest.xml and Parameters.xml at \
the root, the app under <Name>/) and, next to it, <Name>-<version>.SetParameters.xml (every \
parameter with its default; fill in the empty ones), <Name>-<version>.deploy.cmd (Visual \
Studio's /T /Y /M: /U: /P: flags around msdeploy.exe, with skip rules that keep the venv, logs, \
writable folders and the real web.config across redeploys) and <Name>-<version>.deploy-readme.txt. \
With [feed] in the manifest (or --feed) it also writes <Name>-<version>.webpi.xml, a WebPI feed \
(WebPI is retired).\n\n\
Reproducible: the same sources give the same bytes when SOURCE_DATE_EPOCH is set (use the \
release commit's time); without it generated files get the build time. Files keep their \
modification times (clamped to the epoch), because msdeploy syncs by timestamp.",
    after_help = "Examples:\n  iiswsgi package                         # ./iiswsgi.toml -> ./dist/\n  iiswsgi package examples/flask-hello --verbose\n  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) iiswsgi package --out /tmp/dist"
)]
pub struct Args {
    /// The project folder holding iiswsgi.toml.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The manifest (default: DIR/iiswsgi.toml).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Output folder (default: dist/ next to the manifest).
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the WebPI feed even without a [feed] section.
    #[arg(long)]
    feed: bool,
    /// Where the zip will be downloaded from (overrides [feed] download-base-url; implies --feed).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Path of iiswsgi.exe on the IIS servers, run by the post-install step (overrides [iis]
    /// iiswsgi-exe; default C:\iiswsgi\Scripts\iiswsgi.exe).
    #[arg(long, value_name = "PATH")]
    iiswsgi_exe: Option<String>,
    /// List what was left out of the package, and by which rule.
    #[arg(long, short)]
    verbose: bool,
    /// Clamp every timestamp to this Unix time (seconds), for reproducible builds.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<i64>,
    /// Compression threads (default: one per CPU).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Deflate level 0-9.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,
}

pub fn run(args: Args) -> ExitCode {
    let dir = absolute(&args.dir);
    let manifest_path = args
        .manifest
        .as_deref()
        .map_or_else(|| dir.join(manifest::FILE_NAME), absolute);
    let manifest = match Manifest::load(&manifest_path) {
        Ok(m) => m,
        Err(e @ ManifestError::Invalid { .. }) => {
            eprint!("{}", e.render());
            return super::report_error(&e);
        }
        Err(e) => return super::report_error(&e),
    };
    for warning in &manifest.warnings {
        eprint!(
            "{}",
            manifest::diagnostic::render(std::slice::from_ref(warning))
        );
    }
    let out_dir = args
        .out
        .as_deref()
        .map_or_else(|| manifest.base_dir().join("dist"), absolute);
    let time = TimePolicy::new(
        unix_seconds(std::time::SystemTime::now()),
        args.source_date_epoch,
    );
    let mut zip = ZipOptions {
        level: args.level,
        progress: std::io::stderr().is_terminal(),
        ..ZipOptions::default()
    };
    if let Some(jobs) = args.jobs {
        zip.threads = jobs.max(1);
    }
    let options = PackageOptions {
        out_dir,
        time,
        base_url: args.base_url,
        iiswsgi_exe: args.iiswsgi_exe,
        feed: args.feed,
        zip,
    };
    match package::package(&manifest, &options) {
        Ok(report) => {
            for w in &report.warnings.0 {
                eprintln!("{w}");
            }
            if args.verbose {
                for e in &report.excluded {
                    eprintln!("left out: {}  ({})", e.path, e.rule);
                }
            }
            println!("{}", report.zip.path.display());
            println!(
                "  sha1 {}  {} bytes  {} entries",
                report.zip.sha1_hex(),
                report.zip.size,
                report.zip.entries
            );
            for path in &report.deploy_paths {
                println!("{}", path.display());
            }
            if !report.required.is_empty() {
                println!(
                    "  fill in before deploying (no default): {}",
                    report.required.join(", ")
                );
            }
            if let Some((path, url)) = &report.feed {
                println!("{}", path.display());
                println!("  installer URL {url}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::report_error(&e),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
