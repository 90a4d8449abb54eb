//! The command line as a shell user meets it: help, version, pipes.

use std::process::{Command, Stdio};

fn iiswsgi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
}

#[test]
fn printing_subcommand_ends_quietly_when_its_reader_closes() {
    // `iiswsgi completions zsh | head -0`: the reader is gone before the first write.
    let mut child = iiswsgi()
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn iiswsgi");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for iiswsgi");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "no panic on a closed stdout:\n{stderr}"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "101 is Rust's panic exit code"
    );
}

#[test]
fn version_names_the_embedded_python() {
    let out = iiswsgi()
        .arg("--version")
        .output()
        .expect("run iiswsgi --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!("iiswsgi {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    #[cfg(feature = "python")]
    assert!(text.contains("embeds CPython 3."), "{text}");
    #[cfg(not(feature = "python"))]
    assert!(text.contains("built without Python"), "{text}");
}

#[test]
fn help_lists_every_subcommand() {
    let out = iiswsgi()
        .arg("--help")
        .output()
        .expect("run iiswsgi --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "init",
        "package",
        "check",
        "feed",
        "run",
        "install",
        "iis",
        "doctor",
        "completions",
    ] {
        assert!(
            text.contains(&format!("  {sub} ")),
            "`{sub}` missing from --help:\n{text}"
        );
    }
}
