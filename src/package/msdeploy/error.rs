//! `PackageError`: everything that can stop a package build, each naming the path or entry at
//! fault. `Display` prints one level; the cause, when there is one, comes through `source()`.

use std::path::PathBuf;

use super::zip_path::ZipPathError;

/// Why a package could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// An entry name Windows or the zip format cannot hold.
    #[error(transparent)]
    InvalidName(#[from] ZipPathError),
    /// The same name was added twice.
    #[error("`{name}` is added to the package twice")]
    Duplicate {
        /// The entry name.
        name: String,
    },
    /// Two names differ only in case; Windows would make them one file.
    #[error("`{name}` and `{other}` differ only in case, which Windows cannot hold apart")]
    CaseCollision {
        /// The later name.
        name: String,
        /// The earlier name.
        other: String,
    },
    /// A name is both a file and a directory (a file `a` and an entry under `a/`).
    #[error("`{name}` is both a file and a folder in the package")]
    FileDirConflict {
        /// The name (without trailing `/`).
        name: String,
    },
    /// More entries than the package provider (and a non-Zip64 zip) can hold.
    #[error(
        "the package would have more than {max} entries (found {count}); msdeploy and a zip without Zip64 cannot hold them",
        max = super::limits::MAX_ENTRIES
    )]
    TooManyEntries {
        /// How many entries were seen when the limit was crossed.
        count: usize,
    },
    /// A file over Int32.MaxValue bytes, the package provider's per-file limit.
    #[error("{} is {size} bytes; msdeploy packages hold files up to 2,147,483,647 bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The archive would need Zip64 (an offset or the central directory at or past 4 GiB).
    #[error("the package would reach 4 GiB at `{name}`; msdeploy needs a zip without Zip64")]
    ArchiveTooLarge {
        /// The entry being written when the limit was reached.
        name: String,
    },
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file changed size or content while it was being packed.
    #[error("{} changed while it was being packed; run the build again", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// A symbolic link points outside the app folder.
    #[error("{} is a link to {}, outside the app folder {}", link.display(), target.display(), root.display())]
    SymlinkEscapes {
        /// The link.
        link: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
        /// The app folder.
        root: PathBuf,
    },
    /// A file whose name is not valid UTF-8 (zip names are written as UTF-8).
    #[error("{} has a name that is not valid UTF-8", path.display())]
    NonUtf8Name {
        /// The file.
        path: PathBuf,
    },
    /// The output (or a spool file next to it) could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template failed to render.
    #[error(transparent)]
    Render(#[from] crate::package::render::RenderError),
    /// A generated file fails the check rules (a manifest value makes it invalid).
    #[error("the generated {what} fails `iiswsgi check`:\n{findings}")]
    Generated {
        /// Which file.
        what: &'static str,
        /// The errors, one per line.
        findings: String,
    },
    /// A parameter of the manifest has the name of one iiswsgi generates.
    #[error(
        "parameter `{name}` clashes with a parameter iiswsgi generates (Application Path, SetAcl …); rename it"
    )]
    ParameterNameTaken {
        /// The name.
        name: String,
    },
    /// The app folder holds a file iiswsgi generates.
    #[error("{} would be replaced by the one iiswsgi generates; remove it or exclude it in [package] (web.config files in subfolders are kept)", path.display())]
    Reserved {
        /// The file.
        path: PathBuf,
    },
    /// `--iiswsgi-exe` (or the manifest's `[iis] iiswsgi-exe`) cannot be run safely by the
    /// post-install step.
    #[error("the iiswsgi.exe path {path:?} cannot go into the post-install command line")]
    IiswsgiExe {
        /// The path as given.
        path: String,
        /// What is wrong with it (a phrase: "contains `&`, …").
        #[source]
        source: crate::manifest::ExePathError,
    },
    /// A compression worker thread died.
    #[error("a compression worker stopped unexpectedly")]
    WorkerPanicked,
}
