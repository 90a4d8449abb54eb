//! Wine for the batch-file tests: its `cmd.exe`, a prefix, and two tiny mingw-w64 programs
//! built from `tests/support/wine/`: `standin.exe` (records its command line and argument
//! vector, exits with a chosen code; it plays msdeploy.exe and iiswsgi.exe) and `launch.exe`
//! (starts a command line with CreateProcessW exactly as written, as a CI agent or msdeploy
//! would, so no Linux-to-Windows argument quoting gets in the way).
//!
//! Wine is `/usr/lib/wine/wine64` (Debian's `wine64`, installed by `.ci/setup` and
//! `.ci/windows`); the prefix is `target/wine-prefix`, the one `.ci/windows` creates, made here
//! with `wineboot --init` when missing. Without Wine or mingw-w64 the tests print a loud
//! SKIPPED line on the real stderr and pass: the Windows job is where they must run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const WINE: &str = "/usr/lib/wine/wine64";
const GCC: &str = "x86_64-w64-mingw32-gcc";

/// A usable Wine with the helper programs built.
pub struct Wine {
    prefix: PathBuf,
    /// `standin.exe`.
    pub standin: PathBuf,
    /// `launch.exe`.
    pub launch: PathBuf,
}

/// Wine, or `None` after printing why the caller's test is skipped.
pub fn wine(test: &str) -> Option<&'static Wine> {
    static WINE_SETUP: OnceLock<Result<Wine, String>> = OnceLock::new();
    match WINE_SETUP.get_or_init(setup) {
        Ok(w) => Some(w),
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPED {test}: {why} (install wine64 and gcc-mingw-w64-x86-64, \
                 as .ci/setup does) ##########\n"
            );
            None
        }
    }
}

fn setup() -> Result<Wine, String> {
    if !Path::new(WINE).exists() {
        return Err(format!("{WINE} is missing"));
    }
    if Command::new(GCC).arg("--version").output().is_err() {
        return Err(format!("{GCC} is missing"));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let prefix = root.join("target").join("wine-prefix");
    if !prefix.join("drive_c/windows/system32").is_dir() {
        let out = base(&prefix)
            .args(["wineboot", "--init"])
            .output()
            .map_err(|e| format!("wineboot: {e}"))?;
        if !prefix.join("drive_c/windows/system32").is_dir() {
            return Err(format!(
                "wineboot did not create {}: {}",
                prefix.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let tools = root.join("target").join("wine-tools");
    std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
    let src = root.join("tests/support/wine");
    let build = |name: &str, source: &str| -> Result<PathBuf, String> {
        let exe = tools.join(name);
        let source = src.join(source);
        let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if fresh(&exe).is_none() || fresh(&exe) < fresh(&source) {
            // Build beside the final name, then rename: parallel test binaries never see half
            // a file.
            let tmp = tools.join(format!("{name}.{}.tmp", std::process::id()));
            let out = Command::new(GCC)
                .args(["-municode", "-O2", "-o"])
                .arg(&tmp)
                .arg(&source)
                .output()
                .map_err(|e| format!("{GCC}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{GCC} {}: {}",
                    source.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::rename(&tmp, &exe).map_err(|e| e.to_string())?;
        }
        Ok(exe)
    };
    Ok(Wine {
        standin: build("standin.exe", "msdeploy_standin.c")?,
        launch: build("launch.exe", "launch.c")?,
        prefix,
    })
}

fn base(prefix: &Path) -> Command {
    let mut c = Command::new(WINE);
    c.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree=;mshtml=");
    c
}

impl Wine {
    /// The Linux path of `C:\<rel>` in the prefix (`rel` with `/`).
    pub fn drive_c(&self, rel: &str) -> PathBuf {
        self.prefix.join("drive_c").join(rel)
    }

    /// Runs `line` (a Windows command line, e.g. `cmd.exe /d /s /c "..."`) through launch.exe
    /// in `dir`, with `env` added (an empty value removes the variable); returns its output.
    pub fn launch(&self, line: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
        let mut c = base(&self.prefix);
        c.arg(&self.launch).current_dir(dir).env("LAUNCH", line);
        for (k, v) in env {
            if v.is_empty() {
                c.env_remove(k);
            } else {
                c.env(k, v);
            }
        }
        c.output().expect("run wine")
    }

    /// Runs a Wine builtin (`reg`, …) with `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        base(&self.prefix).args(args).output().expect("run wine")
    }
}

/// The Windows (`Z:`) path of a Linux path, as Wine maps `/`.
pub fn windows_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// What a stand-in recorded: the raw command line, then the argument vector.
pub fn recorded(file: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("the stand-in wrote no {}: {e}", file.display()));
    let mut lines = text.lines();
    let raw = lines.next().unwrap_or_default().to_string();
    let args = lines
        .filter_map(|l| l.split_once(']').map(|(_, a)| a.to_string()))
        .collect();
    (raw, args)
}
