//! Rules Z01–Z10 (the package zip), msdeploy-webpi.md §1 and §7.1, and the package lint that
//! runs every other rule on the XML inside.
//!
//! The central directory comes from [`crate::package::msdeploy::reader`], which keeps exactly what these
//! rules are about (Zip64 records, host system, flag bits, extra fields, raw name bytes). Only
//! the directory and the few entries the rules read are loaded.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use super::manifest_xml::{self, ManifestInfo};
use super::parameters::{self, PackageContext};
use super::{Findings, web_config};
use crate::package::msdeploy::reader::{
    FLAG_DATA_DESCRIPTOR, ZipDirectory, ZipEntry, has_zip64_block, read_descriptor, read_directory,
    read_local_header, read_text,
};
use crate::package::msdeploy::zip_path::{fold_case, name_problem};
use crate::xml;

/// Largest entry the rules inflate (Manifest.xml, Parameters.xml, web.config…).
pub const MAX_ENTRY_BYTES: u64 = 16 << 20;

/// Entries reported one by one for each kind of local-header fault; the rest are counted.
const MAX_REPORTED: usize = 10;

/// Z02–Z07 and Z10 on the directory alone.
pub fn lint_directory(dir: &ZipDirectory) -> Findings {
    let mut f = Findings::default();
    if dir.zip64 || dir.entries.iter().any(|e| e.zip64) {
        f.error(
            "Z05",
            "",
            "the archive uses Zip64, which msdeploy's package provider does not read".into(),
        );
    }
    if dir.entries.len() > crate::package::msdeploy::limits::MAX_ENTRIES {
        f.error(
            "Z05",
            "",
            format!(
                "{} entries; msdeploy packages hold at most 65,535",
                dir.entries.len()
            ),
        );
    }
    let mut descriptors = Vec::new();
    let mut extras = Vec::new();
    let mut hosts = Vec::new();
    let mut folded: HashMap<String, &str> = HashMap::new();
    for e in &dir.entries {
        let name = e.name.as_str();
        if e.size > crate::package::msdeploy::limits::MAX_FILE_BYTES {
            f.error(
                "Z05",
                name,
                format!("{} bytes; msdeploy reads files up to 2,147,483,647", e.size),
            );
        }
        if e.version_needed > 20 {
            f.error(
                "Z05",
                name,
                format!(
                    "needs zip version {}.{} to extract (Zip64 or another extension); msdeploy packages need 2.0",
                    e.version_needed / 10,
                    e.version_needed % 10
                ),
            );
        }
        if e.method != 0 && e.method != 8 {
            f.error(
                "Z05",
                name,
                format!(
                    "compression method {}; only stored (0) and deflate (8) are allowed",
                    e.method
                ),
            );
        }
        if e.flags & 1 != 0 {
            f.error("Z05", name, "the entry is encrypted".into());
        }
        if e.flags & 8 != 0 {
            descriptors.push(name);
        }
        if !e.extra.is_empty() {
            extras.push(name);
        }
        if e.made_by >> 8 != 0 {
            hosts.push(name);
        }
        // Z02: relative, `/`, Windows-valid.
        let trimmed = name.strip_suffix('/').unwrap_or(name);
        if let Some(reason) = name_problem(trimmed) {
            f.error("Z02", name, format!("invalid entry name: {reason}"));
        }
        // Z07: non-ASCII names need bit 11.
        if !e.raw_name.is_ascii() {
            if e.flags & (1 << 11) == 0 {
                f.error("Z07", name, "non-ASCII name without the UTF-8 flag (bit 11); readers will decode it as CP437".into());
            } else {
                f.warn("Z07", name, "non-ASCII name: whether msdeploy honours the UTF-8 flag is unverified; prefer ASCII".into());
            }
        }
        // Z04: folder attribute without a trailing slash.
        if !e.is_dir() && e.external & 0x10 != 0 && e.size == 0 && e.made_by >> 8 == 0 {
            f.error("Z04", name, "a folder entry must end in `/`".into());
        }
        // Z03: case-insensitive collisions.
        if let Some(other) = folded.insert(fold_case(trimmed), name) {
            if other == name {
                f.error("Z03", name, "the name appears twice".into());
            } else if other.ends_with('/') == name.ends_with('/') {
                f.error(
                    "Z03",
                    name,
                    format!("differs from `{other}` only in case; Windows would make them one"),
                );
            }
        }
    }
    // Z04: a file name that is also a folder prefix (case-insensitively).
    let mut prefixes: HashMap<String, &str> = HashMap::new();
    for e in &dir.entries {
        let trimmed = e.name.trim_end_matches('/');
        let mut acc = String::new();
        for seg in trimmed
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, init)| init)
        {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(seg);
            prefixes.entry(fold_case(&acc)).or_insert(e.name.as_str());
        }
    }
    for e in dir.entries.iter().filter(|e| !e.is_dir()) {
        if let Some(child) = prefixes.get(&fold_case(&e.name)) {
            f.error(
                "Z04",
                e.name.as_str(),
                format!("is a file, yet `{child}` is inside it as a folder"),
            );
        }
    }
    let sample = |v: &[&str]| {
        format!(
            "{} entr{} (first: `{}`)",
            v.len(),
            if v.len() == 1 { "y" } else { "ies" },
            v[0]
        )
    };
    if !descriptors.is_empty() {
        f.warn(
            "Z06",
            "",
            format!("{} use data descriptors (flag bit 3)", sample(&descriptors)),
        );
    }
    if !extras.is_empty() {
        f.warn("Z06", "", format!("{} carry extra fields", sample(&extras)));
    }
    if !hosts.is_empty() {
        f.warn(
            "Z06",
            "",
            format!("{} were made on a non-DOS host", sample(&hosts)),
        );
    }
    // Z10: one constant, ancient timestamp.
    if let Some(first) = dir.entries.first() {
        let same = dir.entries.iter().all(|e| e.time == first.time);
        let early = first
            .time
            .to_unix()
            .is_some_and(|t| t <= 315_532_800 + 86_400);
        if same && early {
            f.warn(
                "Z10",
                "",
                "every entry has the same timestamp, at or before 1980-01-02: msdeploy's timestamp sync may skip changed files on redeploy (use SOURCE_DATE_EPOCH from the release commit)".into(),
            );
        }
    }
    f
}

/// Z01, Z08, Z09 and the M/O/P/C rules of the XML inside, for the zip at `path`.
pub fn lint_package(path: &Path) -> Findings {
    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match fs_err::File::open(path) {
        Ok(mut file) => lint_package_from(&mut file, &label),
        Err(e) => {
            let mut f = Findings::default();
            f.error("IO", "", crate::error_chain(&e, ": "));
            f.prefixed(&label)
        }
    }
}

/// [`lint_package`] on a zip read from `file`; `label` names it in every finding.
pub fn lint_package_from<R: Read + Seek>(file: &mut R, label: &str) -> Findings {
    let mut f = Findings::default();
    let mut file = file;
    let dir = match read_directory(&mut file) {
        Ok(dir) => dir,
        Err(e) => {
            f.error("Z05", "", format!("not a readable zip: {e}"));
            return f.prefixed(label);
        }
    };
    f.extend(lint_directory(&dir));
    local_headers(&mut file, &dir, &mut f);
    let root_file = |name: &str| {
        dir.entries
            .iter()
            .find(|e| !e.name.contains('/') && e.name.eq_ignore_ascii_case(name))
    };
    let (manifest, archive) = (root_file("manifest.xml"), root_file("archive.xml"));
    let manifest = match (manifest, archive) {
        (Some(_), Some(_)) => {
            f.error("Z01", "", "both Manifest.xml and archive.xml at the root; msdeploy cannot tell which shape this is".into());
            return f.prefixed(label);
        }
        (None, Some(_)) => {
            f.warn(
                "Z01",
                "",
                "archive package (archive.xml), not checked: iiswsgi checks manifest packages"
                    .into(),
            );
            return f.prefixed(label);
        }
        (None, None) => {
            f.error("Z01", "", "no Manifest.xml at the root of the zip".into());
            return f.prefixed(label);
        }
        (Some(m), None) => m,
    };
    let mut read = |e: &ZipEntry, f: &mut Findings| -> Option<String> {
        match read_text(&mut file, e, MAX_ENTRY_BYTES) {
            Ok(t) => Some(t),
            Err(err) => {
                f.error("Z05", e.name.as_str(), format!("cannot read: {err}"));
                None
            }
        }
    };
    let Some(text) = read(manifest, &mut f) else {
        return f.prefixed(label);
    };
    let info = match xml::parse(&text) {
        Ok(root) => manifest_xml::lint(&root, &manifest.name),
        Err(e) => {
            f.error(
                "M01",
                format!("{}:{}", manifest.name, e.line),
                format!("not well-formed XML: {}", e.message),
            );
            return f.prefixed(label);
        }
    };
    // The M and O rules of the Manifest.xml inside (issue 16 item 6: an injected runCommand
    // went unreported because these findings were dropped here).
    f.extend(info.findings.clone());
    structure(&dir, &info, &mut f);
    let names: Vec<String> = dir.entries.iter().map(|e| e.name.clone()).collect();
    match root_file("parameters.xml") {
        None => f.error(
            "P08",
            "",
            "no Parameters.xml: WebPI needs the IisApp parameter".into(),
        ),
        Some(p) => {
            if let Some(text) = read(p, &mut f) {
                match xml::parse(&text) {
                    Ok(root) => f.extend(parameters::lint(
                        &root,
                        &p.name,
                        Some(PackageContext {
                            manifest: &info,
                            files: Some(&names),
                        }),
                    )),
                    Err(e) => f.error(
                        "P01",
                        format!("{}:{}", p.name, e.line),
                        format!("not well-formed XML: {}", e.message),
                    ),
                }
            }
        }
    }
    if let Some(app) = &info.iis_app_path {
        let find = |suffix: &str| {
            let want = format!("{app}/{suffix}");
            dir.entries
                .iter()
                .find(|e| e.name.eq_ignore_ascii_case(&want))
        };
        if let Some(wc) = find("web.config")
            && let Some(text) = read(wc, &mut f)
        {
            match xml::parse(&text) {
                Ok(root) => f.extend(web_config::lint(&root, &wc.name, None)),
                Err(e) => f.error(
                    "C01",
                    format!("{}:{}", wc.name, e.line),
                    format!("not well-formed XML: {}", e.message),
                ),
            }
        }
        // An iiswsgi package ships the web.config template and its manifest: render the
        // installed web.config for a sample path and check the handler matches (C01).
        if let (Some(tpl), Some(toml)) = (find("web.config.hbs"), find(crate::manifest::FILE_NAME))
            && let (Some(tpl_text), Some(toml_text)) = (read(tpl, &mut f), read(toml, &mut f))
        {
            match crate::deploy::installed_web_config_sample(&toml_text, &tpl_text) {
                Ok(sample) => match xml::parse(&sample.xml) {
                    Ok(root) => f.extend(web_config::lint_installed(
                        &root,
                        &format!("{} (rendered)", tpl.name),
                        &sample.script_processor,
                        &sample.static_paths,
                    )),
                    Err(e) => f.error(
                        "C01",
                        tpl.name.as_str(),
                        format!(
                            "renders to XML that is not well-formed: line {}: {}",
                            e.line, e.message
                        ),
                    ),
                },
                Err(e) => f.error(
                    "C01",
                    tpl.name.as_str(),
                    format!("cannot render the shipped web.config template: {e}"),
                ),
            }
        }
    }
    f.prefixed(label)
}

/// Z05 and Z06 on the local headers. Each must agree with its central record (name, method,
/// flags, CRC-32 and sizes, and the data descriptor's), since readers that trust one copy
/// extract other files than readers that trust the other; none may carry a Zip64 block; and
/// the entries' bytes must lie in directory order, without overlapping, before the central
/// directory (1,000 records sharing one member is a zip bomb). Local extra fields the
/// directory does not show are a Z06 warning.
fn local_headers<R: Read + Seek>(r: &mut R, dir: &ZipDirectory, f: &mut Findings) {
    let mut zip64 = None;
    let mut extras = None;
    let mut disagreeing = Faults::default();
    let mut misplaced = Faults::default();
    // The entry whose bytes end last so far: (name, start, end).
    let mut previous: Option<(&str, u64, u64)> = None;
    for e in &dir.entries {
        let name = e.name.as_str();
        let h = match read_local_header(r, e) {
            Ok(h) => h,
            Err(err) => {
                f.error("Z05", name, format!("unreadable local header: {err}"));
                return;
            }
        };
        if has_zip64_block(&h.extra) && zip64.is_none() {
            zip64 = Some(name);
        }
        if !h.extra.is_empty() && e.extra.is_empty() && extras.is_none() {
            extras = Some(name);
        }
        let mut differences = h.disagreements(e);
        let mut end = h.data_offset().saturating_add(e.compressed);
        if e.flags & FLAG_DATA_DESCRIPTOR != 0 {
            match read_descriptor(r, e, end) {
                Ok(d) => {
                    differences.extend(d.disagreements(e));
                    end += d.len;
                }
                Err(err) => disagreeing.push(
                    f,
                    name,
                    format!("no readable data descriptor after its data: {err}"),
                ),
            }
        }
        for d in differences {
            disagreeing.push(
                f,
                name,
                format!("{d}: readers that trust one copy extract other files than readers that trust the other"),
            );
        }
        match previous {
            Some((before, start, _)) if e.offset < start => misplaced.push(
                f,
                name,
                format!("its bytes lie before those of `{before}`, which the central directory lists earlier"),
            ),
            Some((before, _, prev_end)) if e.offset < prev_end => misplaced.push(
                f,
                name,
                format!("its bytes overlap those of `{before}`"),
            ),
            _ => {}
        }
        if end > dir.offset {
            misplaced.push(
                f,
                name,
                "its bytes run past the start of the central directory".into(),
            );
        }
        if previous.is_none_or(|(_, _, prev_end)| end >= prev_end) {
            previous = Some((name, e.offset, end));
        }
    }
    disagreeing.summary(f, "disagree with their local headers");
    misplaced.summary(f, "overlap, run out of order or past the central directory");
    if let Some(name) = zip64 {
        f.error(
            "Z05",
            name,
            "the local header carries a Zip64 extra field; msdeploy packages must not use Zip64"
                .into(),
        );
    }
    if let Some(name) = extras {
        f.warn("Z06", name, "local headers carry extra fields".into());
    }
}

/// One kind of local-header fault: the first [`MAX_REPORTED`] are Z05 errors, the rest are
/// counted in one more.
#[derive(Default)]
struct Faults {
    count: usize,
}

impl Faults {
    fn push(&mut self, f: &mut Findings, name: &str, message: String) {
        self.count += 1;
        if self.count <= MAX_REPORTED {
            f.error("Z05", name, message);
        }
    }

    fn summary(&self, f: &mut Findings, what: &str) {
        if self.count > MAX_REPORTED {
            f.error(
                "Z05",
                "",
                format!("{} more entries {what}", self.count - MAX_REPORTED),
            );
        }
    }
}

/// Z08 and Z09: the zip's folders against the manifest's paths.
fn structure(dir: &ZipDirectory, info: &ManifestInfo, f: &mut Findings) {
    let Some(app) = &info.iis_app_path else {
        return;
    };
    let app_key = fold_case(app.trim_end_matches('/'));
    let mut tops: Vec<&str> = dir
        .entries
        .iter()
        .filter_map(|e| e.name.split_once('/').map(|(top, _)| top))
        .collect();
    tops.sort_unstable();
    tops.dedup();
    for top in &tops {
        if fold_case(top) != app_key {
            f.error(
                "Z08",
                format!("{top}/"),
                format!("a second top-level folder; the package must hold only `{app}/` (the iisApp path)"),
            );
        }
    }
    if !tops.iter().any(|t| fold_case(t) == app_key) {
        f.error(
            "Z08",
            "",
            format!("the iisApp path `{app}` is not a folder in the zip"),
        );
    }
    let exists = |path: &str, as_file: bool| {
        let key = fold_case(path.trim_end_matches('/'));
        dir.entries.iter().any(|e| {
            let n = fold_case(e.name.trim_end_matches('/'));
            n == key && (!as_file || !e.is_dir()) || (!as_file && n.starts_with(&format!("{key}/")))
        })
    };
    for p in &info.providers {
        let Some(path) = p.path.as_deref() else {
            continue;
        };
        let under_app = |path: &str| {
            let k = fold_case(path);
            k == app_key || k.starts_with(&format!("{app_key}/"))
        };
        if p.is("setAcl") || p.is("alias") {
            let paths: Vec<&str> = [Some(path), p.to.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            for q in paths {
                if !under_app(q) {
                    f.error(
                        "Z09",
                        format!("Manifest.xml:{}", p.line),
                        format!(
                            "`{q}` of `<{}>` is not under the app folder `{app}/`",
                            p.name
                        ),
                    );
                }
            }
        }
        let must_exist = if p.is("setAcl") {
            !p.is_file_acl
        } else {
            p.is("alias") || p.is("dbFullSql") || p.is("dbMySql")
        };
        if must_exist && !exists(path, !p.is("setAcl")) {
            f.error(
                "Z08",
                format!("Manifest.xml:{}", p.line),
                format!("`{path}` named by `<{}>` is not in the zip", p.name),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::msdeploy::reader::read_entry;
    use crate::package::msdeploy::timestamp::{DosDateTime, TimePolicy};
    use crate::package::msdeploy::writer::zip::{ZipOptions, write_zip};
    use crate::package::msdeploy::writer::{Gate, PackageWriter};
    use crate::package::msdeploy::zip_path::ZipPath;
    use std::io::Cursor;

    /// A package zip of `files` (name, bytes), as the writer makes it (also the fuzz tests' seed).
    pub(crate) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut g = Gate::new(TimePolicy::new(1_700_000_000, None));
        for (name, data) in files {
            g.add_bytes(&ZipPath::new(*name).expect("valid"), data.to_vec())
                .expect("add");
        }
        let mut out = Vec::new();
        write_zip(
            &g.into_sorted(),
            &mut out,
            &std::env::temp_dir(),
            Path::new("t.zip"),
            &ZipOptions::default(),
        )
        .expect("zip");
        out
    }

    #[test]
    fn our_zip_reads_back_and_lints_clean() {
        let bytes = zip_of(&[("A/x.txt", b"hello hello hello hello"), ("A/ü.txt", b"")]);
        let dir = read_directory(&mut Cursor::new(&bytes)).expect("dir");
        assert_eq!(dir.entries.len(), 3);
        let f = lint_directory(&dir);
        assert_eq!(
            f.0.iter().map(|x| x.rule).collect::<Vec<_>>(),
            ["Z07"],
            "{f:?}"
        );
        let e = dir
            .entries
            .iter()
            .find(|e| e.name == "A/x.txt")
            .expect("entry");
        assert_eq!(
            read_entry(&mut Cursor::new(&bytes), e, 100).expect("read"),
            b"hello hello hello hello"
        );
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let bytes = zip_of(&[("A/x.txt", b"data")]);
        for cut in 0..bytes.len() {
            let _ = read_directory(&mut Cursor::new(&bytes[..cut]));
        }
        assert!(read_directory(&mut Cursor::new(b"not a zip at all, just text".to_vec())).is_err());
    }

    #[test]
    fn raw_name_rules_fire_on_crafted_directories() {
        let entry = |name: &str| ZipEntry {
            raw_name: name.as_bytes().to_vec(),
            name: name.to_string(),
            made_by: 20,
            version_needed: 20,
            flags: 0,
            method: 8,
            time: DosDateTime::from_unix(1_700_000_000),
            crc: 0,
            compressed: 0,
            size: 0,
            offset: 0,
            external: 0x20,
            extra: vec![],
            zip64: false,
        };
        let dir = ZipDirectory {
            entries: vec![
                entry("A\\b.txt"),
                entry("A/x"),
                entry("A/X"),
                entry("A/f"),
                entry("A/f/g"),
                entry("../evil"),
                ZipEntry {
                    method: 12,
                    flags: 9,
                    made_by: 0x031e,
                    extra: vec![1, 2, 3, 4],
                    ..entry("A/bz")
                },
            ],
            zip64: true,
            offset: 0,
        };
        let f = lint_directory(&dir);
        let count = |r: &str| f.0.iter().filter(|x| x.rule == r).count();
        assert_eq!(count("Z02"), 2, "{f:?}"); // backslash, `..`
        assert_eq!(count("Z03"), 1, "{f:?}");
        assert_eq!(count("Z04"), 1, "{f:?}");
        assert_eq!(count("Z05"), 3, "{f:?}"); // zip64, method, encryption
        assert_eq!(count("Z06"), 3, "{f:?}");
    }

    proptest::proptest! {
        /// Corrupting any bytes of a real package never panics the reader or the rules.
        #[test]
        fn mutated_zip_never_panics(edits in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..12)) {
            let mut bytes = zip_of(&[("Manifest.xml", b"<m><iisApp path='A'/></m>"), ("A/x.txt", b"hello hello")]);
            for (at, b) in edits {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            let mut cursor = Cursor::new(&bytes);
            let _ = lint_package_from(&mut cursor, "t.zip");
            if let Ok(dir) = read_directory(&mut cursor) {
                for e in &dir.entries {
                    let _ = read_entry(&mut cursor, e, 1 << 20);
                }
            }
        }
    }

    /// Where each central record starts (zips written by [`zip_of`]: no extras, no comments).
    fn central_records(dir: &ZipDirectory) -> Vec<usize> {
        let mut at = dir.offset as usize;
        dir.entries
            .iter()
            .map(|e| {
                let here = at;
                at += 46 + e.raw_name.len();
                here
            })
            .collect()
    }

    fn z05(f: &Findings, needle: &str) -> bool {
        f.0.iter()
            .any(|x| x.rule == "Z05" && x.message.contains(needle))
    }

    #[test]
    fn local_name_that_disagrees_with_the_directory_is_z05_and_not_read() {
        let mut bytes = zip_of(&[
            ("Manifest.xml", b"<m><iisApp path='A'/></m>"),
            ("A/app.py", b"print(1)"),
        ]);
        let dir = read_directory(&mut Cursor::new(&bytes)).expect("dir");
        let e = dir
            .entries
            .iter()
            .find(|e| e.name == "A/app.py")
            .expect("entry");
        bytes[e.offset as usize + 30..][..8].copy_from_slice(b"../ap.py");
        let f = lint_package_from(&mut Cursor::new(&bytes), "t.zip");
        assert!(z05(&f, "the local header names it `../ap.py`"), "{f:?}");
        let err = read_entry(&mut Cursor::new(&bytes), e, 100).expect_err("refused");
        assert!(err.to_string().contains("../ap.py"), "{err}");
    }

    #[test]
    fn entries_sharing_or_reordering_bytes_are_z05() {
        let bytes = zip_of(&[("A/a.txt", b"aaaa"), ("A/b.txt", b"bbbb")]);
        let dir = read_directory(&mut Cursor::new(&bytes)).expect("dir");
        let records = central_records(&dir);
        let offset = |i: usize| (dir.entries[i].offset as u32).to_le_bytes();
        assert!(
            lint_package_from(&mut Cursor::new(&bytes), "t.zip")
                .0
                .iter()
                .all(|x| x.rule != "Z05")
        );

        let mut shared = bytes.clone();
        shared[records[2] + 42..][..4].copy_from_slice(&offset(1));
        let f = lint_package_from(&mut Cursor::new(&shared), "t.zip");
        assert!(z05(&f, "overlap those of `A/a.txt`"), "{f:?}");

        let mut swapped = bytes.clone();
        swapped[records[1] + 42..][..4].copy_from_slice(&offset(2));
        swapped[records[2] + 42..][..4].copy_from_slice(&offset(1));
        let f = lint_package_from(&mut Cursor::new(&swapped), "t.zip");
        assert!(z05(&f, "lie before those of `A/a.txt`"), "{f:?}");
    }

    #[test]
    fn sizes_past_the_central_directory_are_z05() {
        let mut bytes = zip_of(&[("A/a.txt", b"aaaa")]);
        let dir = read_directory(&mut Cursor::new(&bytes)).expect("dir");
        let records = central_records(&dir);
        let e = &dir.entries[1];
        // A central compressed size of 1 GiB, and the local header saying the same.
        for at in [records[1] + 20, e.offset as usize + 18] {
            bytes[at..][..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        }
        let f = lint_package_from(&mut Cursor::new(&bytes), "t.zip");
        assert!(z05(&f, "past the start of the central directory"), "{f:?}");
    }

    #[test]
    fn constant_1980_timestamps_are_z10() {
        let e = ZipEntry {
            raw_name: b"A/".to_vec(),
            name: "A/".into(),
            made_by: 20,
            version_needed: 20,
            flags: 0,
            method: 0,
            time: DosDateTime::from_unix(0),
            crc: 0,
            compressed: 0,
            size: 0,
            offset: 0,
            external: 0x10,
            extra: vec![],
            zip64: false,
        };
        let dir = ZipDirectory {
            entries: vec![
                e.clone(),
                ZipEntry {
                    name: "A/b".into(),
                    raw_name: b"A/b".to_vec(),
                    ..e
                },
            ],
            zip64: false,
            offset: 0,
        };
        assert!(lint_directory(&dir).has("Z10"));
    }
}
