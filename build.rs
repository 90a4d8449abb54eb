//! Build facts the binary needs at run time, and (Linux) how it links libpython.
//!
//! With the `python` feature, PyO3 is built for CPython's stable ABI (`abi3-py39`, Cargo.toml):
//! the binary uses only functions every CPython from 3.9 on exports, so one binary embeds any
//! of them (issue 15, wsgi-embedding.md §1.6).
//!
//! - **Windows** (cross-compiled from Linux in CI, `.ci/windows`): PyO3 imports `python3.dll`,
//!   the stable-ABI forwarder every CPython install ships, through `raw-dylib`; no import
//!   library, no rpath. Which Python's `python3.dll` loads is decided by the DLL search path
//!   the installer writes (`src/iis`), and checked at start-up (`runtime::wsgi::libpython`).
//! - **Linux**: the binary must record `NEEDED libpython3.so` (the stable-ABI name every
//!   `--enable-shared` CPython installs beside `libpython3.X.so.1.0`), not the versioned name
//!   PyO3 would link. CPython's own `libpython3.so` defines no symbols (it only names
//!   `libpython3.X.so.1.0` as its dependency), so GNU ld refuses to resolve against it ("DSO
//!   missing from command line"). This script therefore links against a copy of the build
//!   interpreter's `libpython3.X.so.1.0` whose `DT_SONAME` is rewritten to `libpython3.so`: every
//!   symbol resolves at link time, and the output records the version-free name. PyO3's own
//!   link line is switched off by its `extension-module` feature. At run time the first
//!   `libpython3.so` the loader finds serves to start; `runtime::wsgi::libpython` then re-executes
//!   once with the venv's own libpython if it is another one. A build interpreter without
//!   `libpython3.so` (Debian's `python3.X`) gets the versioned name, with a warning: such a
//!   binary starts only where that library exists, and re-executes for other versions.
//! - **rpath**: `DT_RUNPATH` (not `DT_RPATH`, so `LD_LIBRARY_PATH` wins, which the re-exec
//!   relies on) to the build interpreter's `LIBDIR`, so the binary starts without any
//!   environment. `IISWSGI_NO_RPATH=1` leaves it out (a distribution's own libpython3.so).
//!
//! Exported to the crate: `IISWSGI_PY_VERSION` (the build interpreter's `major.minor`: tests
//! make venvs with it), `IISWSGI_PY_EXECUTABLE`, `IISWSGI_LIBPYTHON_NEEDED` (the library name
//! the binary records, Linux), `IISWSGI_LONG_VERSION` (`--version`'s first line).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IISWSGI_NO_RPATH");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    #[cfg(feature = "python")]
    let embeds = python::configure();
    #[cfg(not(feature = "python"))]
    let embeds = "built without Python".to_string();
    println!("cargo:rustc-env=IISWSGI_LONG_VERSION={version} ({embeds})");
}

#[cfg(feature = "python")]
mod python {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The stable-ABI library name on Linux.
    const STABLE_NAME: &str = "libpython3.so";

    /// Configures the link and returns the text for `--version`'s first line.
    pub fn configure() -> String {
        println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
        println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
        let config = pyo3_build_config::get();
        let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        // The interpreter to ask: PyO3's, else the one maturin names (its PyO3 config file has
        // no executable, and says the abi3 minimum as the version).
        let exe = config
            .executable()
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("PYO3_PYTHON").map(PathBuf::from))
            .or_else(|| std::env::var_os("PYTHON_SYS_EXECUTABLE").map(PathBuf::from));
        let built = if target_os == "linux" {
            let exe = exe.clone().unwrap_or_else(|| PathBuf::from("python3"));
            let lib = ask(&exe);
            let needed = link_linux(&lib);
            println!("cargo:rustc-env=IISWSGI_LIBPYTHON_NEEDED={needed}");
            println!("cargo:rustc-env=IISWSGI_PY_EXECUTABLE={}", lib.executable);
            lib.version
        } else {
            println!("cargo:rustc-env=IISWSGI_LIBPYTHON_NEEDED=python3.dll");
            if let Some(exe) = &exe {
                println!("cargo:rustc-env=IISWSGI_PY_EXECUTABLE={}", exe.display());
            }
            config.version().to_string()
        };
        println!("cargo:rustc-env=IISWSGI_PY_VERSION={built}");
        format!("embeds CPython 3.9 or later through the stable ABI; built with {built}")
    }

    /// What the build interpreter's `sysconfig` says about its shared library.
    struct LibPython {
        /// `LIBDIR`.
        dir: PathBuf,
        /// `INSTSONAME`: `libpython3.X.so.1.0`.
        soname: String,
        /// `major.minor`.
        version: String,
        /// `sys.executable`.
        executable: String,
    }

    fn ask(exe: &Path) -> LibPython {
        let code = "import sys, sysconfig as s\n\
                    print(s.get_config_var('LIBDIR'))\n\
                    print(s.get_config_var('INSTSONAME'))\n\
                    print(s.get_config_var('Py_ENABLE_SHARED'))\n\
                    print('%d.%d' % sys.version_info[:2])\n\
                    print(sys.executable)";
        let out = Command::new(exe)
            .args(["-c", code])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; set PYO3_PYTHON", exe.display()));
        assert!(
            out.status.success(),
            "{} -c 'import sysconfig' failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let dir = PathBuf::from(lines.next().unwrap_or_default());
        let soname = lines.next().unwrap_or_default().to_string();
        let shared = lines.next().unwrap_or_default().trim() == "1";
        let version = lines.next().unwrap_or_default().to_string();
        let executable = lines.next().unwrap_or_default().to_string();
        assert!(
            shared && dir.join(&soname).is_file(),
            "{} has no shared libpython ({}/{soname}): iiswsgi embeds CPython through it; \
             build with a CPython configured --enable-shared (pyenv: \
             PYTHON_CONFIGURE_OPTS=--enable-shared; Debian: python3-dev)",
            exe.display(),
            dir.display()
        );
        LibPython {
            dir,
            soname,
            version,
            executable,
        }
    }

    /// Emits the link lines; returns the library name the binary will record as NEEDED.
    fn link_linux(lib: &LibPython) -> String {
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let stub_dir = out.join("libpython-link");
        std::fs::create_dir_all(&stub_dir).expect("create the link directory");
        let have_stable = lib.dir.join(STABLE_NAME).exists();
        let needed = if have_stable {
            let bytes = std::fs::read(lib.dir.join(&lib.soname)).expect("read libpython");
            match with_soname(bytes, STABLE_NAME) {
                Ok(patched) => {
                    let copy = stub_dir.join(STABLE_NAME);
                    std::fs::write(&copy, patched).expect("write the link copy of libpython");
                    // By path, not `-L` + `-lpython3`: cargo puts `-L` folders of the build
                    // on LD_LIBRARY_PATH for `cargo test`/`cargo run`, and this copy (a whole
                    // libpython3.X) would then be loaded instead of the real library.
                    println!("cargo:rustc-link-arg={}", copy.display());
                    Some(STABLE_NAME.to_string())
                }
                Err(why) => {
                    println!(
                        "cargo:warning=cannot rewrite the soname of {}/{}: {why}; linking \
                         the versioned library",
                        lib.dir.display(),
                        lib.soname
                    );
                    None
                }
            }
        } else {
            println!(
                "cargo:warning={} has no {STABLE_NAME} (Debian's Python ships none): this \
                 binary records {} and starts only where that library is found; it still \
                 re-executes itself for a venv of another CPython",
                lib.dir.display(),
                lib.soname
            );
            None
        };
        let needed = needed.unwrap_or_else(|| {
            println!("cargo:rustc-link-search=native={}", lib.dir.display());
            println!("cargo:rustc-link-lib=dylib=python{}", lib.version);
            lib.soname.clone()
        });
        if std::env::var_os("IISWSGI_NO_RPATH").is_none() {
            println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.dir.display());
        }
        needed
    }

    /// `elf` (an ELF64 little-endian shared library) with its `DT_SONAME` string replaced by
    /// `name`, which must not be longer than the old one (it is written over it in `.dynstr`).
    fn with_soname(mut elf: Vec<u8>, name: &str) -> Result<Vec<u8>, String> {
        let u16_at = |b: &[u8], o: usize| -> Option<u64> {
            Some(u64::from(u16::from_le_bytes(
                b.get(o..o + 2)?.try_into().ok()?,
            )))
        };
        let u32_at = |b: &[u8], o: usize| -> Option<u64> {
            Some(u64::from(u32::from_le_bytes(
                b.get(o..o + 4)?.try_into().ok()?,
            )))
        };
        let u64_at = |b: &[u8], o: usize| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
        };
        if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
            return Err("not an ELF64 little-endian file".into());
        }
        let phoff = u64_at(&elf, 0x20).ok_or("short header")? as usize;
        let phentsize = u16_at(&elf, 0x36).ok_or("short header")? as usize;
        let phnum = u16_at(&elf, 0x38).ok_or("short header")? as usize;
        let mut loads = Vec::new();
        let mut dynamic = None;
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            let kind = u32_at(&elf, ph).ok_or("short program header")?;
            let offset = u64_at(&elf, ph + 0x08).ok_or("short program header")?;
            let vaddr = u64_at(&elf, ph + 0x10).ok_or("short program header")?;
            let filesz = u64_at(&elf, ph + 0x20).ok_or("short program header")?;
            match kind {
                1 => loads.push((vaddr, offset, filesz)),
                2 => dynamic = Some((offset, filesz)),
                _ => {}
            }
        }
        let (dyn_off, dyn_size) = dynamic.ok_or("no PT_DYNAMIC")?;
        let (mut strtab, mut soname) = (None, None);
        for i in 0..dyn_size / 16 {
            let entry = (dyn_off + i * 16) as usize;
            let tag = u64_at(&elf, entry).ok_or("short dynamic section")?;
            let value = u64_at(&elf, entry + 8).ok_or("short dynamic section")?;
            match tag {
                0 => break,
                5 => strtab = Some(value),
                14 => soname = Some(value),
                _ => {}
            }
        }
        let strtab = strtab.ok_or("no DT_STRTAB")?;
        let soname = soname.ok_or("no DT_SONAME")?;
        let file_off = loads
            .iter()
            .find(|(vaddr, _, size)| (*vaddr..vaddr + size).contains(&strtab))
            .map(|(vaddr, offset, _)| strtab - vaddr + offset)
            .ok_or("DT_STRTAB outside every PT_LOAD")?;
        let start = (file_off + soname) as usize;
        let old_len = elf
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == 0))
            .ok_or("unterminated soname")?;
        if name.len() > old_len {
            return Err(format!("{name} is longer than the old soname"));
        }
        elf[start..start + name.len()].copy_from_slice(name.as_bytes());
        elf[start + name.len()] = 0;
        Ok(elf)
    }
}
