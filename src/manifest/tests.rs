//! Unit tests of the validated model: defaults, and the shape of what `parse` returns.

use super::*;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new("iiswsgi.toml"))
}

#[test]
fn scratch_print() {
    let text = r#"
[app]
name = "My App"
version = "v1"
homepage-url = "example.com"
colour = "red"

[wsgi]
app = "hello.py:app"
reload-regex = '(\.py'

[iis.fastcgi]
instanceMaxRequests = 5
max-instance = 3
activity-timeout = 5

[[iis.set-acl]]
path = "../logs"
access = ["Modfy"]

[[parameters]]
name = "Site"
default = "x y"
validation = { kind = "RegularExpression", value = '^\w+$' }
tags = ["Hiden"]

[[parameters]]
name = "site"
"#;
    let e = parse(text).unwrap_err();
    eprintln!("{}", e.render());
    let e = parse("[app]\nname = \"x\nversion = 1 2\n").unwrap_err();
    eprintln!("{}", e.render());
    let e =
        parse("[app]\nname = 5\n[wsgi]\napp = \"a:b\"\n[iis.fastcgi]\nprotocol = \"namedpipe\"\n")
            .unwrap_err();
    eprintln!("{}", e.render());
}
