//! An in-memory [`Backend`] for tests: keeps every entry's name, time and bytes, so a test can
//! assert on what the gate let through without opening a zip.

use super::{Backend, Entry, Source};
use crate::package::msdeploy::error::PackageError;
use crate::package::msdeploy::timestamp::DosDateTime;

/// Collects entries in memory, reading on-disk files fully.
#[derive(Debug, Default)]
pub struct MemoryBackend;

/// One entry as the memory backend stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    /// The stored name (folders end in `/`).
    pub name: String,
    /// The entry time.
    pub time: DosDateTime,
    /// The bytes (empty for folders).
    pub data: Vec<u8>,
}

impl MemoryEntry {
    /// Whether this is a folder entry.
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

impl Backend for MemoryBackend {
    type Output = Vec<MemoryEntry>;

    fn write_entries(self, entries: Vec<Entry>) -> Result<Self::Output, PackageError> {
        entries
            .into_iter()
            .map(|e| {
                let data = match e.source {
                    Source::Dir => Vec::new(),
                    Source::Generated(b) => b,
                    Source::OnDisk { path, .. } => {
                        fs_err::read(&path).map_err(|source| PackageError::Read { path, source })?
                    }
                };
                Ok(MemoryEntry {
                    name: e.name,
                    time: e.time,
                    data,
                })
            })
            .collect()
    }
}

/// A listing for snapshots: one line per entry, `name  size`.
pub fn listing(entries: &[MemoryEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}  {}\n", e.name, e.data.len()))
        .collect()
}
