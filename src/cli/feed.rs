//! `iiswsgi feed PACKAGE.zip... -o feed.xml`.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::package::msdeploy::timestamp::{TimePolicy, unix_seconds};
use iiswsgi::package::webpi::{self, FeedOptions};

/// Arguments of `iiswsgi feed`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Write one WebPI feed with an entry per package",
    long_about = "Write one WebPI feed (Atom, webpiFile 5.0.0.0) with an entry per package.\n\n\
Each package must be one `iiswsgi package` built: the entry comes from the iiswsgi.toml it \
ships, the sha1 and size from the zip itself, the download URL from --base-url (or the \
manifest's [feed] download-base-url) plus the zip's file name.",
    after_help = "Examples:\n  iiswsgi feed dist/*.zip -o dist/feed.xml\n  iiswsgi feed a.zip b.zip -o feed.xml --base-url https://downloads.example.com/apps/"
)]
pub struct Args {
    /// Package zips.
    #[arg(value_name = "PACKAGE.zip", required = true)]
    packages: Vec<PathBuf>,
    /// The feed to write.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Where the zips will be downloaded from (overrides each manifest's).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The feed's own URL (its Atom id).
    #[arg(long, value_name = "URL")]
    feed_url: Option<String>,
    /// The feed's title.
    #[arg(long)]
    title: Option<String>,
    /// Date the feed with this Unix time (seconds), for reproducible builds.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<i64>,
}

pub fn run(args: Args) -> ExitCode {
    let options = FeedOptions {
        out: args.out,
        base_url: args.base_url,
        feed_url: args.feed_url,
        title: args.title,
        time: TimePolicy::new(
            unix_seconds(std::time::SystemTime::now()),
            args.source_date_epoch,
        ),
    };
    match webpi::build_feed(&args.packages, &options) {
        Ok(report) => {
            println!("{}", report.path.display());
            for (product, version, url) in &report.entries {
                println!("  {product} {version}  {url}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::report_error(&e),
    }
}
