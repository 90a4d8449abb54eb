//! `examples/servers/*`: each configuration shipped for users is started as written with the
//! real Debian server, in front of `iiswsgi run` serving a `django-admin startproject` site
//! (`support::sites`), and must serve its routes, a non-ASCII path, the admin login (a
//! CSRF-protected POST) and, where the server serves files, the admin's CSS. The stock nginx
//! snippet also serves Flask's tutorial app from its sdist (`support::sites::flaskr_site`).
//!
//! "As written" means the file's text, with only its placeholders for the port (80), the
//! socket and the site folder (`/srv/mysite`) replaced by the test's; each replacement must
//! find its placeholder, so a snippet cannot drift away from what is tested. nginx's
//! `include fastcgi_params;` reaches Debian's own `/etc/nginx/fastcgi_params` through a link
//! next to the test's main config: that file is included verbatim, never copied.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::peers::{
    Peer, PeerKind, Proc, Sandbox, iiswsgi_bin, require_program, start_with_port_retry,
};
use crate::support::sites::{check_django_site, check_flaskr, django_admin_site, flaskr_site};

/// `examples/servers/<name>`, its placeholders replaced: `(placeholder, value)` in order,
/// each of which must occur.
fn snippet(name: &str, replacements: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/servers")
        .join(name);
    let mut text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (placeholder, value) in replacements {
        assert!(
            text.contains(placeholder),
            "{name} no longer contains {placeholder:?}: update this test with it"
        );
        text = text.replace(placeholder, value);
    }
    text
}

/// The site (a fresh copy) and `iiswsgi run --manifest` on `<sandbox>/mysite.sock`.
struct App {
    site: PathBuf,
    /// What the snippets' `/srv/mysite` stands for: the folder whose `static/` they serve.
    files: PathBuf,
    socket: PathBuf,
    _proc: Option<Proc>,
}

impl App {
    /// Copies the Django site; serves it unless the web server starts iiswsgi itself
    /// (`spawned`).
    fn start(sandbox: &Sandbox, spawned: bool) -> App {
        let site = django_admin_site(&sandbox.join("site"));
        App::serve(sandbox, site.clone(), site, spawned)
    }

    /// `site`, whose static files are in `files/static`.
    fn serve(sandbox: &Sandbox, site: PathBuf, files: PathBuf, spawned: bool) -> App {
        let socket = sandbox.join("mysite.sock");
        let proc = (!spawned).then(|| {
            let mut cmd = Command::new(iiswsgi_bin());
            cmd.arg("run")
                .arg("--manifest")
                .arg(site.join("iiswsgi.toml"))
                .arg("--listen")
                .arg(format!("unix:{}", socket.display()))
                .stdin(Stdio::null());
            let log = site.join("logs/iiswsgi.log");
            let mut proc = Proc::spawn("iiswsgi", sandbox.path(), cmd, vec![log]);
            proc.wait_until("the socket accepts", || {
                UnixStream::connect(&socket).is_ok()
            });
            proc
        });
        App {
            site,
            files,
            socket,
            _proc: proc,
        }
    }

    /// The placeholders of a snippet in front of `iiswsgi run --listen`: the socket, then the
    /// site folder.
    fn replacements(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "/run/iiswsgi/mysite.sock",
                self.socket.display().to_string(),
            ),
            ("/srv/mysite", self.files.display().to_string()),
        ]
    }
}

/// nginx with `snippet` inside `http {}`, as Debian's nginx.conf includes `sites-enabled/*`.
fn nginx(sandbox: &Sandbox, name: &str, app: &App) -> Peer {
    let nginx = require_program("nginx");
    let dir = sandbox.path().display().to_string();
    for sub in ["t_body", "t_fcgi", "t_proxy", "t_scgi", "t_uwsgi"] {
        fs::create_dir_all(sandbox.join(sub)).expect("nginx temp dir");
    }
    // Relative includes resolve against the main config's folder: this link makes
    // `include fastcgi_params;` read Debian's file itself.
    std::os::unix::fs::symlink("/etc/nginx/fastcgi_params", sandbox.join("fastcgi_params"))
        .expect("link Debian's fastcgi_params");
    start_with_port_retry(PeerKind::Nginx, |port| {
        let mut replacements = vec![("listen 80;", format!("listen 127.0.0.1:{port};"))];
        replacements.extend(app.replacements());
        let site = sandbox.write(
            &format!("sites-enabled-{name}"),
            &snippet(name, &replacements),
        );
        let conf = sandbox.write(
            "nginx.conf",
            &format!(
                "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n\
                 pid {dir}/nginx.pid;\nerror_log {dir}/nginx.err info;\n\
                 events {{ worker_connections 256; }}\nhttp {{\n  include /etc/nginx/mime.types;\n  \
                 access_log off;\n  client_body_temp_path {dir}/t_body;\n  \
                 fastcgi_temp_path {dir}/t_fcgi;\n  proxy_temp_path {dir}/t_proxy;\n  \
                 scgi_temp_path {dir}/t_scgi;\n  uwsgi_temp_path {dir}/t_uwsgi;\n  \
                 include {};\n}}\n",
                site.display()
            ),
        );
        let err = sandbox.join("nginx.err");
        let mut cmd = Command::new(&nginx);
        cmd.arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&err)
            .arg("-c")
            .arg(&conf);
        cmd.stdin(Stdio::null());
        (
            Proc::spawn("nginx", sandbox.path(), cmd, vec![err.clone()]),
            err,
        )
    })
}

#[test]
fn nginx_stock_fastcgi_params_serve_the_site_at_the_root() {
    let sandbox = Sandbox::new("srv-nginx");
    let app = App::start(&sandbox, false);
    let peer = nginx(&sandbox, "nginx.conf", &app);
    check_django_site(peer.port, "", true, "nginx.conf");
    peer.assert_no_upstream_errors();
    let log = fs::read_to_string(app.site.join("logs/iiswsgi.log")).unwrap_or_default();
    assert!(
        log.contains("serving the app at /"),
        "the inferred mount is logged once:\n{log}"
    );
}

/// Flask's tutorial app from its sdist, its manifest from `iiswsgi init`, behind the same
/// stock snippet (its `/static/` alias pointed at flaskr's static folder).
#[test]
fn nginx_stock_snippet_serves_flasks_tutorial_app_from_its_sdist() {
    let sandbox = Sandbox::new("srv-nginx-flaskr");
    let site = flaskr_site(&sandbox.join("site"));
    let app = App::serve(&sandbox, site.clone(), site.join("flaskr"), false);
    let peer = nginx(&sandbox, "nginx.conf", &app);
    check_flaskr(peer.port, true, "nginx.conf + flaskr");
    peer.assert_no_upstream_errors();
}

#[test]
fn nginx_subpath_snippet_serves_the_site_under_its_prefix() {
    let sandbox = Sandbox::new("srv-nginx-sub");
    let app = App::start(&sandbox, false);
    let peer = nginx(&sandbox, "nginx-subpath.conf", &app);
    check_django_site(peer.port, "/mysite", true, "nginx-subpath.conf");
    peer.assert_no_upstream_errors();
}

#[test]
fn lighttpd_snippet_starts_iiswsgi_itself_and_serves_the_site() {
    let sandbox = Sandbox::new("srv-lighttpd");
    let app = App::start(&sandbox, true);
    let lighttpd = require_program("lighttpd");
    let dir = sandbox.path().display().to_string();
    let replacements = vec![
        (
            "/srv/mysite/.venv/bin/iiswsgi",
            iiswsgi_bin().display().to_string(),
        ),
        (
            "/run/lighttpd/mysite.sock",
            format!("{dir}/lighttpd-mysite.sock"),
        ),
        ("/srv/mysite", app.site.display().to_string()),
    ];
    let site = sandbox.write("90-mysite.conf", &snippet("lighttpd.conf", &replacements));
    let peer = start_with_port_retry(PeerKind::Lighttpd, |port| {
        let err = sandbox.join("lighttpd.err");
        // Debian's lighttpd.conf: these modules, then conf-enabled/*.conf.
        let conf = sandbox.write(
            "lighttpd.conf",
            &format!(
                "server.modules = ( \"mod_indexfile\", \"mod_access\", \"mod_alias\", \
                 \"mod_redirect\" )\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
                 server.document-root = \"{dir}\"\nserver.errorlog = \"{dir}/lighttpd.err\"\n\
                 server.pid-file = \"{dir}/lighttpd.pid\"\n\
                 include \"/etc/lighttpd/conf-available/10-fastcgi.conf\"\n\
                 include \"{}\"\n",
                site.display()
            ),
        );
        let mut cmd = Command::new(&lighttpd);
        cmd.arg("-D").arg("-f").arg(&conf).stdin(Stdio::null());
        let logs = vec![err.clone(), app.site.join("logs/iiswsgi.log")];
        (Proc::spawn("lighttpd", sandbox.path(), cmd, logs), err)
    });
    check_django_site(peer.port, "", true, "lighttpd.conf");
    peer.assert_no_upstream_errors();
}

#[test]
fn apache_snippet_serves_the_site_at_the_root() {
    let sandbox = Sandbox::new("srv-apache");
    let app = App::start(&sandbox, false);
    let apache = require_program("apache2");
    let dir = sandbox.path().display().to_string();
    let peer = start_with_port_retry(PeerKind::Apache, |port| {
        let mut replacements = vec![(
            "<VirtualHost *:80>",
            format!("<VirtualHost 127.0.0.1:{port}>"),
        )];
        replacements.extend(app.replacements());
        let site = sandbox.write("mysite.conf", &snippet("apache.conf", &replacements));
        let err = sandbox.join("apache.err");
        // What `a2enmod proxy_fcgi` and Debian's apache2.conf amount to, then the site.
        let modules = "mpm_event authz_core alias mime proxy proxy_fcgi";
        let mut conf = format!(
            "ServerRoot {dir}\nServerName localhost\nListen 127.0.0.1:{port}\n\
             PidFile {dir}/apache.pid\nErrorLog {dir}/apache.err\nLogLevel warn\n\
             Mutex file:{dir} default\nDefaultRuntimeDir {dir}\nUser www-data\nGroup www-data\n\
             TypesConfig /etc/mime.types\n"
        );
        for m in modules.split(' ') {
            conf.push_str(&format!(
                "LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"
            ));
        }
        conf.push_str(&format!("Include {}\n", site.display()));
        let conf = sandbox.write("apache.conf", &conf);
        let mut cmd = Command::new(&apache);
        cmd.arg("-X").arg("-f").arg(&conf).stdin(Stdio::null());
        (
            Proc::spawn("apache", sandbox.path(), cmd, vec![err.clone()]),
            err,
        )
    });
    check_django_site(peer.port, "", true, "apache.conf");
    peer.assert_no_upstream_errors();
}

#[test]
fn haproxy_snippet_serves_the_site_at_the_root() {
    let sandbox = Sandbox::new("srv-haproxy");
    let app = App::start(&sandbox, false);
    let haproxy = require_program("haproxy");
    let peer = start_with_port_retry(PeerKind::Haproxy, |port| {
        let mut replacements = vec![("bind :80", format!("bind 127.0.0.1:{port}"))];
        replacements.extend(app.replacements());
        // Debian's haproxy.cfg global and defaults, minus what needs root (chroot, the stats
        // socket, user, daemon), then the snippet appended.
        let conf = format!(
            "global\n  log stderr format raw local0\n\ndefaults\n  log global\n  mode http\n  \
             option httplog\n  timeout connect 5000\n  timeout client 50000\n  \
             timeout server 50000\n\n{}",
            snippet("haproxy.cfg", &replacements)
        );
        let conf = sandbox.write("haproxy.cfg", &conf);
        let mut cmd = Command::new(&haproxy);
        cmd.arg("-db").arg("-f").arg(&conf).stdin(Stdio::null());
        let proc = Proc::spawn("haproxy", sandbox.path(), cmd, vec![]);
        let err = sandbox.join("haproxy.stderr");
        (proc, err)
    });
    check_django_site(peer.port, "", false, "haproxy.cfg");
}
