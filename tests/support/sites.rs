//! Real projects to serve: a `django-admin startproject` site as its documentation sets it up
//! for deployment (`DEBUG = False`, `ALLOWED_HOSTS`, `STATIC_ROOT`, `migrate`,
//! `createsuperuser`, `collectstatic`), with the routes of `examples/django-site` added (its
//! `views.py` as is), and an `iiswsgi.toml` naming the frameworks venv. Built once per test
//! run, copied into each test's sandbox (each gets its own SQLite database).
//!
//! [`check_django_site`] is what every web server in front of it must get right: the
//! example's routes, a non-ASCII path, the admin login (a CSRF-protected POST), and the
//! admin's CSS when the server serves `STATIC_ROOT`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::peers::{HttpClient, HttpResponse};
use super::venv;

/// The superuser's name and password.
pub const ADMIN: (&str, &str) = ("admin", "iiswsgi-test-password-1");

/// The built template site (`<target>/tmp/django-admin-site-<pid>`).
fn template() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let venv = venv::frameworks();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("django-admin-site-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("site dir");
        run(Command::new(venv.join("bin/django-admin"))
            .args(["startproject", "mysite"])
            .arg(&dir));
        let settings = dir.join("mysite/settings.py");
        let mut text = fs::read_to_string(&settings).expect("settings.py");
        // Django's deployment checklist, the lines a user changes.
        text.push_str(
            "\nDEBUG = False\nALLOWED_HOSTS = [\"127.0.0.1\", \"localhost\"]\n\
             STATIC_ROOT = BASE_DIR / \"static\"\n",
        );
        fs::write(&settings, text).expect("settings.py");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/django-site");
        fs::copy(
            example.join("mysite/views.py"),
            dir.join("mysite/example_views.py"),
        )
        .expect("example views");
        let urls = dir.join("mysite/urls.py");
        let mut text = fs::read_to_string(&urls).expect("urls.py");
        text.push_str(
            "\n# The routes of examples/django-site.\nfrom mysite import example_views\n\
             urlpatterns += [\n    path(\"\", example_views.index),\n    \
             path(\"hello/<str:name>/\", example_views.hello),\n]\n",
        );
        fs::write(&urls, text).expect("urls.py");
        let python = venv.join("bin/python");
        run(Command::new(&python)
            .args(["manage.py", "migrate", "--noinput"])
            .current_dir(&dir));
        run(Command::new(&python)
            .args(["manage.py", "createsuperuser", "--noinput", "--username"])
            .arg(ADMIN.0)
            .args(["--email", "admin@example.com"])
            .env("DJANGO_SUPERUSER_PASSWORD", ADMIN.1)
            .current_dir(&dir));
        run(Command::new(&python)
            .args(["manage.py", "collectstatic", "--noinput"])
            .current_dir(&dir));
        fs::write(
            dir.join("iiswsgi.toml"),
            format!(
                "[app]\nname = \"MySite\"\ntitle = \"My Site\"\nversion = \"1.0.0\"\n\
                 description = \"django-admin startproject output\"\n\n[wsgi]\n\
                 app = \"mysite.wsgi:application\"\nvenv = \"{}\"\n\n[iis]\n[iis.fastcgi]\n\
                 [package]\n",
                venv.display()
            ),
        )
        .expect("iiswsgi.toml");
        dir
    })
}

/// Runs `cmd`, which must succeed (else both its streams are shown); returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh copy of the site at `dest` (created), with its own database.
pub fn django_admin_site(dest: &Path) -> PathBuf {
    copy_tree(template(), dest);
    dest.to_path_buf()
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            if entry.file_name() != "__pycache__" && entry.file_name() != "logs" {
                copy_tree(&entry.path(), &target);
            }
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The cookies a response sets, as `name=value`.
fn set_cookies(r: &HttpResponse) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next().map(str::to_owned))
        .collect()
}

/// One request on `c`, with `cookie` (if any) and, for a form, its body urlencoded; a
/// transport failure fails the test, naming `who`.
fn send(
    c: &mut HttpClient,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<&str>,
    who: &str,
) -> HttpResponse {
    let mut headers = Vec::new();
    if !cookie.is_empty() {
        headers.push(("Cookie", cookie));
    }
    if form.is_some() {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let body = form.unwrap_or_default().as_bytes();
    c.request(method, path, &headers, body)
        .unwrap_or_else(|e| panic!("{who}: {method} {path}: {e}"))
}

/// What every server in front of the site must get right, the app mounted at `prefix` (`""`
/// or `/mysite`); `static_files`: the server serves `STATIC_ROOT` at `<prefix>/static/`.
pub fn check_django_site(port: u16, prefix: &str, static_files: bool, who: &str) {
    let mut c = HttpClient::connect(port);
    let get = |c: &mut HttpClient, path: &str, cookies: &str| {
        send(c, "GET", &format!("{prefix}{path}"), cookies, None, who)
    };
    let r = get(&mut c, "/", "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Django on IIS!\n"),
        "{who}: the example's index"
    );
    let r = get(&mut c, "/hello/caf%C3%A9%20cr%C3%A8me/", "");
    assert_eq!(r.status, 200, "{who}: {}", r.text());
    assert_eq!(
        r.text(),
        format!("{{\"hello\": \"caf\\u00e9 cr\\u00e8me\", \"script_name\": \"{prefix}\"}}"),
        "{who}: a non-ASCII path arrives decoded, under SCRIPT_NAME {prefix:?}"
    );
    let r = get(&mut c, "/admin/", "");
    assert_eq!(r.status, 302, "{who}: {}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("{prefix}/admin/login/?next={prefix}/admin/").as_str()),
        "{who}: the admin redirects to its login"
    );
    let r = get(&mut c, "/admin/login/", "");
    assert_eq!(r.status, 200, "{who}: {}", r.text());
    let csrf_cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("csrftoken="))
        .unwrap_or_else(|| panic!("{who}: no csrftoken cookie: {:?}", r.headers));
    let page = r.text();
    let token = page
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{who}: no CSRF token in the form:\n{page}"))
        .to_owned();
    let form = format!(
        "csrfmiddlewaretoken={token}&username={}&password={}&next={prefix}/admin/",
        ADMIN.0, ADMIN.1
    );
    let r = send(
        &mut c,
        "POST",
        &format!("{prefix}/admin/login/"),
        &csrf_cookie,
        Some(&form),
        who,
    );
    assert_eq!(r.status, 302, "{who}: the login POST: {}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("{prefix}/admin/").as_str())
    );
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("sessionid="))
        .unwrap_or_else(|| panic!("{who}: no session cookie: {:?}", r.headers));
    let r = get(&mut c, "/admin/", &format!("{csrf_cookie}; {session}"));
    assert_eq!(r.status, 200, "{who}: {}", r.text());
    assert!(
        r.text().contains("Site administration"),
        "{who}: logged in:\n{}",
        r.text()
    );
    if static_files {
        let r = get(&mut c, "/static/admin/css/base.css", "");
        assert_eq!(r.status, 200, "{who}: the admin's CSS");
        assert!(r.text().contains("body"), "{who}: {}", r.text());
    }
}

/// Flask's own tutorial app, flaskr: `examples/tutorial` of the sdist of the Flask the
/// frameworks venv holds (fetched from PyPI once, its SHA-256 checked against the index), with
/// the `iiswsgi.toml` that `iiswsgi init` writes for it (only its `venv` line pointed at the
/// frameworks venv) and the database its README makes (`flask --app flaskr init-db`).
fn flaskr_template() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let python = venv::frameworks().join("bin/python");
        let sdists = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdists");
        fs::create_dir_all(&sdists).expect("sdists dir");
        // PyPI's index names the sdist and its digest; urllib fetches it (`pip download
        // --no-binary` would also build the package to read its metadata).
        let sdist = run(Command::new(&python)
            .arg("-c")
            .arg(FETCH_FLASK_SDIST)
            .arg(&sdists));
        let sdist = PathBuf::from(sdist.trim());
        let top = sdist
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tar.gz"))
            .unwrap_or_else(|| panic!("not an sdist: {}", sdist.display()))
            .to_owned();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("flaskr-site-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("site dir");
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(&dir)
            .args(["--strip-components", "3"])
            .arg(format!("{top}/examples/tutorial")));
        assert!(
            dir.join("flaskr/__init__.py").is_file(),
            "no flaskr in {}",
            sdist.display()
        );
        run(Command::new(super::peers::iiswsgi_bin())
            .arg("init")
            .arg(&dir));
        let manifest = dir.join("iiswsgi.toml");
        let text = fs::read_to_string(&manifest).expect("iiswsgi.toml from init");
        assert!(
            text.contains("app = \"flaskr:create_app()\""),
            "init finds the tutorial's app factory:\n{text}"
        );
        // init names the project's `.venv`: the test venv stands in for it.
        super::replace_in_file(
            &manifest,
            "venv = \".venv\"",
            &format!("venv = \"{}\"", venv::frameworks().display()),
        );
        run(Command::new(&python)
            .args(["-m", "flask", "--app", "flaskr", "init-db"])
            .current_dir(&dir));
        assert!(
            dir.join("instance/flaskr.sqlite").is_file(),
            "init-db made no database"
        );
        dir
    })
}

/// Prints the path of Flask's sdist in `sys.argv[1]`, downloading it first if needed, found
/// by PyPI's simple index in its JSON form (PEP 691), the index pip itself reads.
const FETCH_FLASK_SDIST: &str = r#"
import hashlib, importlib.metadata, json, os, sys, urllib.request
version = importlib.metadata.version("flask")
index = urllib.request.Request(
    "https://pypi.org/simple/flask/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
with urllib.request.urlopen(index, timeout=60) as r:
    files = json.load(r)["files"]
name = f"flask-{version}.tar.gz"
sdist = next(f for f in files if f["filename"].lower() == name)
path = os.path.join(sys.argv[1], sdist["filename"])
if not os.path.exists(path):
    with urllib.request.urlopen(sdist["url"], timeout=120) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != sdist["hashes"]["sha256"]:
        sys.exit(f"{sdist['url']}: SHA-256 differs from PyPI's")
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)
print(path)
"#;

/// A fresh copy of flaskr at `dest` (created), with its own database.
pub fn flaskr_site(dest: &Path) -> PathBuf {
    copy_tree(flaskr_template(), dest);
    dest.to_path_buf()
}

/// What flaskr needs from the server in front of it, as a user of its tutorial goes through
/// it: register, log in (a session cookie), write a post with a non-ASCII title, see it on
/// the index, delete it; `static_files`: the stylesheet at `/static/style.css`.
pub fn check_flaskr(port: u16, static_files: bool, who: &str) {
    let mut c = HttpClient::connect(port);
    let form = |c: &mut HttpClient, path: &str, cookie: &str, body: &str| {
        send(c, "POST", path, cookie, Some(body), who)
    };
    let get =
        |c: &mut HttpClient, path: &str, cookie: &str| send(c, "GET", path, cookie, None, who);
    let r = get(&mut c, "/", "");
    assert_eq!(r.status, 200, "{who}: {}", r.text());
    assert!(
        r.text().contains("Posts") && r.text().contains("Register"),
        "{who}: {}",
        r.text()
    );
    let user = "ana%C3%AFs";
    let credentials = format!("username={user}&password=tutorial-pass");
    let r = form(&mut c, "/auth/register", "", &credentials);
    assert_eq!(r.status, 302, "{who}: register: {}", r.text());
    assert_eq!(r.header("location"), Some("/auth/login"), "{who}");
    let r = form(&mut c, "/auth/register", "", &credentials);
    assert_eq!(r.status, 200, "{who}: a second registration");
    assert!(
        r.text().contains("User ana\u{ef}s is already registered."),
        "{who}: the flashed error, the name decoded from UTF-8: {}",
        r.text()
    );
    let r = form(&mut c, "/auth/login", "", &credentials);
    assert_eq!(r.status, 302, "{who}: log in: {}", r.text());
    assert_eq!(r.header("location"), Some("/"), "{who}");
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("session="))
        .unwrap_or_else(|| panic!("{who}: no session cookie: {:?}", r.headers));
    let r = form(
        &mut c,
        "/create",
        &session,
        "title=Caf%C3%A9+cr%C3%A8me&body=Written+through+iiswsgi.",
    );
    assert_eq!(r.status, 302, "{who}: create: {}", r.text());
    let r = get(&mut c, "/", &session);
    let page = r.text();
    assert!(
        page.contains("Caf\u{e9} cr\u{e8}me") && page.contains("by ana\u{ef}s"),
        "{who}: the post on the index:\n{page}"
    );
    let r = form(&mut c, "/1/delete", &session, "");
    assert_eq!(r.status, 302, "{who}: delete: {}", r.text());
    assert!(
        !get(&mut c, "/", &session).text().contains("Caf\u{e9}"),
        "{who}: deleted"
    );
    assert_eq!(
        get(&mut c, "/1/update", &session).status,
        404,
        "{who}: gone"
    );
    if static_files {
        let r = get(&mut c, "/static/style.css", "");
        assert_eq!(r.status, 200, "{who}: the stylesheet");
        assert!(r.text().contains("font-family"), "{who}: {}", r.text());
    }
}
