//! Helpers shared by the `package` and `check` tests: run the built binary, copy an example
//! into a temp folder, read a zip back, validate XML with xmllint, build zips by hand.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fixed `SOURCE_DATE_EPOCH` (2023-11-14T22:13:20Z) for reproducible outputs.
pub const EPOCH: &str = "1700000000";

/// The three examples every template is rendered for.
pub const EXAMPLES: [&str; 3] = ["flask-hello", "django-site", "plain-wsgi"];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// Runs `iiswsgi ARGS` with `SOURCE_DATE_EPOCH` set (or removed when `epoch` is None).
pub fn iiswsgi(args: &[&str], epoch: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iiswsgi"));
    cmd.args(args);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    cmd.output().expect("run iiswsgi")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Packages `dir` into `out` with the fixed epoch; panics with the output on failure.
pub fn package(dir: &Path, out: &Path) -> PathBuf {
    package_with(dir, out, &[])
}

/// [`package`] with extra flags.
pub fn package_with(dir: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "package",
        dir.to_str().expect("utf8 path"),
        "--out",
        out.to_str().expect("utf8 path"),
    ];
    args.extend_from_slice(extra);
    let o = iiswsgi(&args, Some(EPOCH));
    assert!(o.status.success(), "package failed:\n{}", text(&o));
    let first = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .expect("zip path on stdout")
        .to_string();
    PathBuf::from(first)
}

/// Copies a folder tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// A temp copy of an example (without any dist/ it may have).
pub fn example_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(name);
    copy_dir(&example(name), &dir);
    let _ = std::fs::remove_dir_all(dir.join("dist"));
    (tmp, dir)
}

/// Every entry of a zip: (name, bytes), in zip order, read with the `zip` crate.
pub fn entries(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(zip).expect("open zip");
    let mut archive = zip::ZipArchive::new(file).expect("zip crate reads the package");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).expect("entry");
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("inflate");
            (f.name().to_string(), data)
        })
        .collect()
}

/// The text of one entry.
pub fn entry_text(zip: &Path, name: &str) -> String {
    let all = entries(zip);
    let (_, data) = all
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in {}", zip.display()));
    String::from_utf8(data.clone()).expect("utf8 entry")
}

/// Validates `xml` against `schemas/<schema>`; a missing xmllint fails the test.
pub fn assert_valid(xml: &str, schema: &str, what: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).expect("write");
    let schema_path = repo().join("schemas").join(schema);
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema_path)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}): run .ci/setup to install it (Debian package libxml2-utils)")
        });
    assert!(
        out.status.success(),
        "{what} does not validate against {schema}:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Python snippet with `python3`; panics if Python is missing or the snippet fails.
pub fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
    assert!(
        out.status.success(),
        "python failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a zip with Python's `zipfile` from (name, text) pairs; `zip64` forces Zip64 records.
pub fn python_zip(path: &Path, files: &[(&str, &str)], zip64: bool) {
    let spec = serde_json::to_string(files).expect("json");
    python(
        "import json, sys, zipfile\n\
         files = json.loads(sys.argv[2])\n\
         force = sys.argv[3] == '1'\n\
         with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
         \x20   for name, text in files:\n\
         \x20       with z.open(zipfile.ZipInfo(name, (2023, 1, 1, 0, 0, 0)), 'w', force_zip64=force) as f:\n\
         \x20           f.write(text.encode())\n",
        &[
            path.to_str().expect("utf8"),
            &spec,
            if zip64 { "1" } else { "0" },
        ],
    );
}

/// One member of a zip built byte by byte with [`forge_zip`]: what its local header says and
/// the bytes that follow it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The name in the local header.
    pub name: Vec<u8>,
    /// 0 (stored) or 8 (deflate).
    pub method: u16,
    /// CRC-32 of the uncompressed bytes.
    pub crc: u32,
    /// Uncompressed size.
    pub size: u32,
    /// The bytes as stored (compressed for method 8).
    pub data: Vec<u8>,
}

impl Member {
    /// A member deflated from `data` (stored when it is empty).
    pub fn new(name: impl Into<Vec<u8>>, data: &[u8]) -> Member {
        use std::io::Write;
        let (method, stored) = if data.is_empty() {
            (0, Vec::new())
        } else {
            let mut z =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(data).expect("deflate");
            (8, z.finish().expect("deflate"))
        };
        Member {
            name: name.into(),
            method,
            crc: crc32fast::hash(data),
            size: data.len() as u32,
            data: stored,
        }
    }
}

/// A zip written by hand, so that it can lie: the members' local headers and data in order,
/// then one central record per `directory` item: (member index, the name the central
/// directory gives it, or the member's own). Everything else is as iiswsgi writes it (DOS
/// host, version 2.0, no extra fields, a fixed timestamp).
pub fn forge_zip(members: &[Member], directory: &[(usize, Option<&[u8]>)]) -> Vec<u8> {
    let (time, date) = (0u16, (43u16 << 9) | (1 << 5) | 1); // 2023-01-01 00:00
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for m in members {
        offsets.push(out.len() as u32);
        out.extend(0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0, m.method, time, date] {
            out.extend(v.to_le_bytes());
        }
        for v in [m.crc, m.data.len() as u32, m.size] {
            out.extend(v.to_le_bytes());
        }
        out.extend((m.name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(&m.name);
        out.extend(&m.data);
    }
    let cd_start = out.len() as u32;
    for &(i, name) in directory {
        let m = &members[i];
        let name = name.unwrap_or(&m.name);
        out.extend(0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, m.method, time, date] {
            out.extend(v.to_le_bytes());
        }
        for v in [m.crc, m.data.len() as u32, m.size] {
            out.extend(v.to_le_bytes());
        }
        for v in [name.len() as u16, 0, 0, 0, 0] {
            out.extend(v.to_le_bytes());
        }
        let external: u32 = if name.ends_with(b"/") { 0x10 } else { 0x20 };
        out.extend(external.to_le_bytes());
        out.extend(offsets[i].to_le_bytes());
        out.extend(name);
    }
    let cd_size = out.len() as u32 - cd_start;
    out.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, directory.len() as u16, directory.len() as u16] {
        out.extend(v.to_le_bytes());
    }
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}
