//! Integration tests: one crate, one module per subject, each exercising the built binary or
//! the library's public API against real files, real servers and real Python.

mod support;

/// `check --import` and `doctor` import `[wsgi] app` in its venv (real Flask and Django).
#[cfg(all(unix, feature = "python"))]
mod app_import;
/// Who may name whom inside `src/`.
mod architecture;
/// `iiswsgi check`: lint rules on packages, their XML, feeds and manifests.
mod check;
/// The command line as a shell user meets it: help, version, pipes.
mod cli;
/// deploy.cmd and the post-install command line under Wine's cmd.exe (SKIPPED without Wine).
mod deploy_cmd;
/// `iiswsgi doctor` on fixture app folders, each with one misconfiguration.
mod doctor;
/// `iiswsgi run` driven by the IIS-emulating client, as IIS would (iis-runtime.md).
#[cfg(unix)]
mod iis;
/// `iiswsgi install` end to end on an unpacked package; `iiswsgi iis` dry runs.
mod iis_install;
/// `iiswsgi init` on fixture projects.
mod init;
/// `iiswsgi.toml`: valid examples, invalid manifests with line:col, the schema.
mod manifest;
/// `iiswsgi package`: zips reopened, reproducibility, XSD validation, golden templates.
mod package;
mod package_support;
/// `iiswsgi run` behind real nginx, lighttpd, HAProxy and Apache; hostile input.
#[cfg(unix)]
mod peers;
/// A second deploy over an installed app, with the package's skip rules, loses nothing.
#[cfg(unix)]
mod redeploy;
/// `iiswsgi run` over socketpairs, sockets and a real nginx: transports, shutdown, limits.
#[cfg(unix)]
mod run;
/// `examples/servers/*`, each started as written with the real server in front of a
/// `django-admin startproject` site.
#[cfg(all(unix, feature = "python"))]
mod servers;
/// `[[iis.static]]`: the `<location>` IIS serves static files from, packaged and installed.
mod static_files;
/// The binary in a venv's bin/, as `pip install iiswsgi` puts it: self-location, `--version`,
/// serving Flask through the IIS client (`IISWSGI_WHEEL_BIN` tests the installed wheel).
#[cfg(all(unix, feature = "python"))]
mod wheel;
/// The embedded-Python WSGI bridge: PEP 3333 conformance, lifecycle, Flask and Django.
#[cfg(all(unix, feature = "python"))]
mod wsgi;
