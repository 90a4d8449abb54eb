//! Every template renders from its context; escaping, forbidden characters, strict mode and
//! line endings behave as documented.

use super::*;

fn templates() -> Templates {
    Templates::new().expect("templates compile")
}

fn manifest_xml() -> ManifestXml {
    ManifestXml {
        iis_app_path: "MyApp".into(),
        set_acls: vec![
            SetAclElement {
                path: "MyApp/App_Data".into(),
                access: Some("Modify".into()),
                user: None,
                resource_type: None,
            },
            SetAclElement {
                path: "MyApp/log.txt".into(),
                access: Some("Read,Write".into()),
                user: Some("anonymousAuthenticationUser".into()),
                resource_type: Some("File".into()),
            },
        ],
        run_command: RunCommandElement {
            path: r#""%ProgramFiles%\iiswsgi\iiswsgi.exe" install --app-name MyApp && echo"#.into(),
            provider_options: "H4sIAAAA+/=".into(),
        },
    }
}

fn parameters_xml() -> ParametersXml {
    ParametersXml {
        parameters: vec![
            ParameterElement {
                name: "Application Path".into(),
                description: Some("Where <the> app goes".into()),
                default_value: Some("Default Web Site/MyApp".into()),
                tags: Some("IisApp".into()),
                validation: None,
                entries: vec![EntryElement {
                    kind: "ProviderPath".into(),
                    scope: "iisApp".into(),
                    match_: "^MyApp$".into(),
                }],
            },
            ParameterElement {
                name: "Mode".into(),
                description: None,
                default_value: Some("dev".into()),
                tags: None,
                validation: Some(ValidationElement {
                    kind: "Enumeration".into(),
                    validation_string: Some("dev,prod".into()),
                }),
                entries: vec![],
            },
        ],
    }
}

fn web_config() -> WebConfig {
    WebConfig {
        iiswsgi_version: "0.1.0".into(),
        app_name: "MyApp".into(),
        handler: HandlerElement {
            name: "iiswsgi-MyApp".into(),
            path: "*".into(),
            verb: "*".into(),
            script_processor: r#"C:\iiswsgi.exe|run --app-root "C:\a b""#.into(),
            resource_type: "Unspecified".into(),
            require_access: "Script".into(),
            response_buffer_limit: 0,
        },
        request_filtering: RequestFilteringElement {
            allow_double_escaping: true,
            max_allowed_content_length: 30_000_000,
        },
        static_locations: vec![StaticLocationElement {
            path: "static".into(),
        }],
    }
}

fn feed_xml() -> FeedXml {
    FeedXml {
        title: "Feed".into(),
        id: "https://example.com/feed.xml".into(),
        updated: "2024-01-02T03:04:05Z".into(),
        author: "Me".into(),
        keywords: vec![KeywordElement {
            id: "Python".into(),
            text: "Python".into(),
        }],
        languages: vec![LanguageElement {
            id: "en".into(),
            name: "English".into(),
            default: true,
        }],
        entries: vec![FeedEntry {
            product_id: "MyApp".into(),
            title: "My & App".into(),
            id: "https://example.com/".into(),
            summary: "Summary".into(),
            updated: "2024-01-02T03:04:05Z".into(),
            published: "2024-01-02T03:04:05Z".into(),
            long_summary: None,
            version: "1.0".into(),
            link: None,
            author: Some("Me".into()),
            images: None,
            keyword_ids: vec!["Python".into()],
            extra_dependencies: vec!["Python311".into()],
            language: "en".into(),
            installer: InstallerFileElement {
                file_size: 12,
                url: "https://example.com/MyApp-1.0.zip".into(),
                sha1: "0".repeat(40),
            },
            start_page: String::new(),
            help_link: None,
            eula_url: None,
        }],
    }
}

#[test]
fn every_template_compiles_and_renders_from_its_context() {
    let t = templates();
    let outputs = [
        t.render(&manifest_xml()).expect("manifest"),
        t.render(&parameters_xml()).expect("parameters"),
        t.render(&web_config()).expect("web.config"),
        t.render(&PendingWebConfig {
            app_name: "MyApp".into(),
        })
        .expect("pending"),
        t.render(&feed_xml()).expect("feed"),
    ];
    for out in outputs {
        assert!(
            out.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"),
            "{out}"
        );
        assert!(!out.contains("{{"), "unrendered handlebars in\n{out}");
        assert!(!out.contains("\r\n\r\n"), "blank line in\n{out}");
        assert!(!out.replace("\r\n", "").contains('\n'), "bare LF in\n{out}");
        let mut reader = quick_xml::Reader::from_str(&out);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{out}"),
            }
        }
    }
}

#[test]
fn manifest_template_writes_runcommand_key_and_blob_attributes() {
    let out = templates().render(&manifest_xml()).expect("render");
    assert!(out.contains(r#"MSDeploy.MSDeployKeyAttributeName="path""#));
    assert!(out.contains(r#"MSDeploy.MSDeployProviderOptions="H4sIAAAA+/=""#));
    assert!(out.contains(
        r#"path="&quot;%ProgramFiles%\iiswsgi\iiswsgi.exe&quot; install --app-name MyApp &amp;&amp; echo""#
    ));
    assert!(out.contains(r#"<setAcl path="MyApp/App_Data" setAclAccess="Modify" />"#));
    assert!(out.contains(r#"setAclUser="anonymousAuthenticationUser" setAclResourceType="File""#));
    assert!(
        !out.contains("successReturnCodes"),
        "settings only in the blob"
    );
}

#[test]
fn escaper_handles_markup_quotes_and_whitespace_controls() {
    assert_eq!(
        escape_xml(r#"<a href="x">&'b'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&apos;b&apos;&lt;/a&gt;"
    );
    assert_eq!(escape_xml("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
    assert_eq!(escape_xml("ünï €"), "ünï €");
}

#[test]
fn control_character_is_refused_naming_the_field() {
    let mut p = parameters_xml();
    p.parameters[1].default_value = Some("bell\u{7}".into());
    let err = templates().render(&p).expect_err("control char");
    let msg = err.to_string();
    assert!(msg.contains("parameters[1].default_value"), "{msg}");
    assert!(msg.contains("U+0007"), "{msg}");
    assert!(msg.contains("parameters.xml.hbs"), "{msg}");
}

#[test]
fn noncharacter_fffe_is_refused() {
    let mut m = manifest_xml();
    m.iis_app_path = "a\u{FFFE}".into();
    assert!(matches!(
        templates().render(&m),
        Err(RenderError::ForbiddenCharacter { .. })
    ));
}

#[test]
fn newline_in_an_attribute_survives_as_a_character_reference() {
    let mut p = parameters_xml();
    p.parameters[1].description = Some("line one\nline two".into());
    let out = templates().render(&p).expect("render");
    assert!(
        out.contains(r#"description="line one&#10;line two""#),
        "{out}"
    );
}

#[test]
fn strict_mode_fails_on_a_misspelt_field() {
    let source = "<x>{{app_nmae}}</x>";
    let err = Templates::render_source(
        source,
        &PendingWebConfig {
            app_name: "A".into(),
        },
    )
    .expect_err("strict");
    assert!(matches!(err, RenderError::Render { .. }), "{err}");
}

#[test]
fn shipped_template_copy_renders_like_the_builtin() {
    let builtin = templates().render(&web_config()).expect("builtin");
    let copy = Templates::render_source(Template::WebConfig.source(), &web_config()).expect("copy");
    assert_eq!(builtin, copy);
}

#[test]
fn template_paths_exist_in_the_repository() {
    for t in Template::ALL {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(t.path());
        let on_disk = std::fs::read_to_string(&path).expect("template file");
        assert_eq!(on_disk, t.source(), "{}", t.path());
    }
}

#[test]
fn web_config_scriptprocessor_is_written_verbatim_but_escaped() {
    let out = templates().render(&web_config()).expect("render");
    assert!(out.contains(r#"scriptProcessor="C:\iiswsgi.exe|run --app-root &quot;C:\a b&quot;""#));
    assert!(out.contains(r#"responseBufferLimit="0""#));
    assert!(!out.contains("<fastCgi"), "fastCgi is AppHostOnly");
}

/// Validates `xml` against `schemas/<schema>` with xmllint; a missing xmllint fails the test.
fn assert_valid(xml: &str, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).expect("write");
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(schema);
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}); run .ci/setup (Debian package libxml2-utils)")
        });
    assert!(
        out.status.success(),
        "{} does not validate:\n{}\n{xml}",
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_rendered_sample_validates_against_its_xsd() {
    let t = templates();
    assert_valid(
        &t.render(&manifest_xml()).expect("render"),
        "msdeploy-manifest.xsd",
    );
    assert_valid(
        &t.render(&parameters_xml()).expect("render"),
        "msdeploy-parameters.xsd",
    );
    assert_valid(&t.render(&web_config()).expect("render"), "web.config.xsd");
    let pending = PendingWebConfig {
        app_name: "MyApp".into(),
    };
    assert_valid(&t.render(&pending).expect("render"), "web.config.xsd");
    assert_valid(&t.render(&feed_xml()).expect("render"), "webpi-feed.xsd");
    assert_valid(
        &t.render(&set_parameters_xml()).expect("render"),
        "msdeploy-setparameters.xsd",
    );
}

fn set_parameters_xml() -> SetParametersXml {
    SetParametersXml {
        parameters: vec![
            SetParameterElement {
                name: "Application Path".into(),
                value: "Default Web Site/MyApp".into(),
            },
            SetParameterElement {
                name: "Secret \"Key\" & <more>".into(),
                value: String::new(),
            },
        ],
    }
}

fn deploy_cmd() -> DeployCmd {
    DeployCmd {
        generator: "iiswsgi 0.1.0".into(),
        app_name: "MyApp".into(),
        stem: "MyApp-1.0".into(),
        zip_name: "MyApp-1.0.zip".into(),
        set_parameters_name: "MyApp-1.0.SetParameters.xml".into(),
        readme_name: "MyApp-1.0.deploy-readme.txt".into(),
        app_parameter: "Application Path".into(),
        skip_rules: vec![SkipRuleLine {
            why: Some(rem_text("media: writable <&> 100% `x`")),
            arg: batch_text(
                r"-skip:skipAction=Delete,objectName=dirPath,absolutePath=\\media(\\.*)?$",
            ),
        }],
    }
}

#[test]
fn set_parameters_escapes_names_and_keeps_empty_values() {
    let out = templates().render(&set_parameters_xml()).expect("render");
    assert!(
        out.contains(r#"<setParameter name="Application Path" value="Default Web Site/MyApp" />"#),
        "{out}"
    );
    assert!(
        out.contains(
            r#"<setParameter name="Secret &quot;Key&quot; &amp; &lt;more&gt;" value="" />"#
        ),
        "{out}"
    );
}

/// deploy.cmd is read by cmd.exe: CRLF, ASCII, no handlebars left, values unescaped by XML,
/// comments without a character cmd.exe interprets.
#[test]
fn deploy_cmd_is_ascii_crlf_batch_with_its_values_verbatim() {
    let out = templates().render(&deploy_cmd()).expect("render");
    assert!(out.is_ascii(), "{out}");
    assert!(!out.replace("\r\n", "").contains('\n'), "bare LF");
    assert!(!out.contains("{{"), "{out}");
    assert!(out.starts_with("@echo off\r\n"), "{out}");
    assert!(
        out.contains(r#"set SKIPS=%SKIPS% "-skip:skipAction=Delete,objectName=dirPath,absolutePath=\\media(\\.*)?$""#),
        "{out}"
    );
    assert!(out.contains("rem media: writable ___ 100_ x\r\n"), "{out}");
    assert!(out.contains(r#"set "ZIP=%~dp0MyApp-1.0.zip""#), "{out}");
    for line in out.lines().filter(|l| l.starts_with("rem ")) {
        assert!(!line.contains(['%', '&', '|', '<', '>', '^']), "{line}");
    }
}

#[test]
fn batch_text_doubles_percent_signs() {
    assert_eq!(batch_text("100%"), "100%%");
    assert_eq!(rem_text("a&b|c<d>e^f%g`h`'"), "a_b_c_d_e_f_gh'");
}
