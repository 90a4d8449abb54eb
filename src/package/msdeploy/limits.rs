//! What an MSDeploy package can hold: msdeploy's package provider and a zip without Zip64 set
//! these, not any one part of iiswsgi. The writer refuses to cross them, `check` reports
//! packages that do, and [`super::PackageError`] names them in its messages.

/// Most entries a package may have (msdeploy's 65,536-file limit; a zip without Zip64).
pub const MAX_ENTRIES: usize = 65_535;

/// Largest file the package provider accepts (Int32.MaxValue bytes).
pub const MAX_FILE_BYTES: u64 = i32::MAX as u64;
