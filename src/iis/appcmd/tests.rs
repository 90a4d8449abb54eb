//! Golden command lines: every appcmd command iiswsgi writes, for full IIS and IIS Express,
//! with paths plain, with spaces and with a quote (refused). Each expected string is the
//! exact display form; the argv is checked by reading the display back with the C runtime's
//! rules, so the two can never disagree.

use super::*;
use crate::deploy::FastCgiKey;

const EXE: &str = r"C:\Program Files\iiswsgi\iiswsgi.exe";
const SHOP: &str = r"C:\inetpub\wwwroot\shop";
const MY_SHOP: &str = r"C:\inetpub\wwwroot\My Shop";

/// `CommandLineToArgvW` as the Microsoft C runtime (2008 and later) splits a command line.
pub(crate) fn parse_windows_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            match c {
                '\\' => {
                    let mut n = 0;
                    while chars.peek() == Some(&'\\') {
                        chars.next();
                        n += 1;
                    }
                    if chars.peek() == Some(&'"') {
                        arg.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            arg.push('"');
                            chars.next();
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', n));
                    }
                }
                '"' => {
                    chars.next();
                    if quoted && chars.peek() == Some(&'"') {
                        arg.push('"');
                        chars.next();
                    } else {
                        quoted = !quoted;
                    }
                }
                ' ' | '\t' if !quoted => break,
                c => {
                    arg.push(c);
                    chars.next();
                }
            }
        }
        args.push(arg);
    }
}

fn defaults() -> FastCgi {
    crate::manifest::Manifest::parse(
        "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\n",
        std::path::Path::new("iiswsgi.toml"),
    )
    .expect("manifest")
    .iis
    .fastcgi
}

fn app(root: &str) -> FastCgiApplication {
    let key = FastCgiKey::for_app(EXE, root);
    FastCgiApplication::new(
        &key.full_path,
        &key.arguments,
        &defaults(),
        None,
        vec![(
            "PATH".into(),
            r"C:\Program Files\Python311;C:\Windows\System32;C:\Windows".into(),
        )],
    )
}

/// Asserts the display form, and that it reads back to the argv.
fn golden(cmd: &CommandLine, expected: &str) {
    assert_eq!(cmd.display(), expected);
    assert_eq!(parse_windows_command_line(expected), cmd.argv());
}

mod full_iis {
    use super::*;

    fn appcmd() -> AppCmd {
        AppCmd::iis(IIS_APPCMD)
    }

    #[test]
    fn add_application_writes_every_manifest_attribute_in_order() {
        golden(
            &appcmd().add_fastcgi(&app(SHOP)).expect("cmd"),
            r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /+"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest C:\inetpub\wwwroot\shop\iiswsgi.toml',maxInstances='0',instanceMaxRequests='10000',activityTimeout='600',requestTimeout='600',idleTimeout='1800',signalBeforeTerminateSeconds='30',protocol='NamedPipe',queueLength='1000',rapidFailsPerMinute='10',stderrMode='ReturnGeneric500',flushNamedPipe='false']" /commit:apphost"#,
        );
    }

    #[test]
    fn add_application_with_spaces_quotes_the_app_root_inside_arguments() {
        let cmd = appcmd().add_fastcgi(&app(MY_SHOP)).expect("cmd");
        golden(
            &cmd,
            r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /+"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest \"C:\inetpub\wwwroot\My Shop\iiswsgi.toml\"',maxInstances='0',instanceMaxRequests='10000',activityTimeout='600',requestTimeout='600',idleTimeout='1800',signalBeforeTerminateSeconds='30',protocol='NamedPipe',queueLength='1000',rapidFailsPerMinute='10',stderrMode='ReturnGeneric500',flushNamedPipe='false']" /commit:apphost"#,
        );
        assert!(
            cmd.args[3].contains(
                r#"arguments='run --manifest "C:\inetpub\wwwroot\My Shop\iiswsgi.toml"'"#
            ),
            "the argv carries plain double quotes: {}",
            cmd.args[3]
        );
    }

    #[test]
    fn environment_variable_is_added_under_the_application_key() {
        golden(
            &appcmd()
                .add_fastcgi_environment(
                    EXE,
                    r#"run --manifest "C:\inetpub\wwwroot\My Shop\iiswsgi.toml""#,
                    "PATH",
                    r"C:\Program Files\Python311;C:\Windows\System32",
                )
                .expect("cmd"),
            r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /+"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest \"C:\inetpub\wwwroot\My Shop\iiswsgi.toml\"'].environmentVariables.[name='PATH',value='C:\Program Files\Python311;C:\Windows\System32']" /commit:apphost"#,
        );
    }

    #[test]
    fn remove_application_names_only_the_key() {
        golden(
            &appcmd()
                .remove_fastcgi(EXE, r"run --manifest C:\inetpub\wwwroot\shop\iiswsgi.toml")
                .expect("cmd"),
            r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /-"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest C:\inetpub\wwwroot\shop\iiswsgi.toml']" /commit:apphost"#,
        );
    }

    #[test]
    fn list_applications_asks_for_xml() {
        golden(
            &appcmd().list_fastcgi().expect("cmd"),
            r"%windir%\system32\inetsrv\appcmd.exe list config -section:system.webServer/fastCgi /xml",
        );
        golden(
            &appcmd().list_vdirs().expect("cmd"),
            r"%windir%\system32\inetsrv\appcmd.exe list vdir /xml",
        );
        golden(
            &appcmd().list_apps().expect("cmd"),
            r"%windir%\system32\inetsrv\appcmd.exe list app /xml",
        );
    }

    #[test]
    fn handler_goes_to_the_web_config_of_the_site_location() {
        let key = FastCgiKey::for_app(EXE, MY_SHOP);
        let handler = HandlerMapping {
            name: "iiswsgi-Shop".into(),
            path: "*".into(),
            verb: "*".into(),
            script_processor: key.script_processor(),
            resource_type: "Unspecified".into(),
            require_access: "Script".into(),
            response_buffer_limit: 0,
        };
        golden(
            &appcmd()
                .add_handler("Default Web Site/My Shop", &handler)
                .expect("cmd"),
            r#"%windir%\system32\inetsrv\appcmd.exe set config "Default Web Site/My Shop" -section:system.webServer/handlers /+"[name='iiswsgi-Shop',path='*',verb='*',modules='FastCgiModule',scriptProcessor='C:\Program Files\iiswsgi\iiswsgi.exe|run --manifest \"C:\inetpub\wwwroot\My Shop\iiswsgi.toml\"',resourceType='Unspecified',requireAccess='Script',responseBufferLimit='0']""#,
        );
        golden(
            &appcmd()
                .remove_handler("Default Web Site/My Shop", "iiswsgi-Shop")
                .expect("cmd"),
            r#"%windir%\system32\inetsrv\appcmd.exe set config "Default Web Site/My Shop" -section:system.webServer/handlers /-"[name='iiswsgi-Shop']""#,
        );
    }

    #[test]
    fn resolved_appcmd_path_is_used_as_is() {
        let cmd = AppCmd::iis(r"C:\Windows\system32\inetsrv\appcmd.exe")
            .list_fastcgi()
            .expect("cmd");
        assert_eq!(cmd.program, r"C:\Windows\system32\inetsrv\appcmd.exe");
    }
}

mod iis_express {
    use super::*;

    fn appcmd() -> AppCmd {
        AppCmd::express(
            EXPRESS_APPCMD,
            Some(r"C:\Users\dev\source\My Site\.vs\config\applicationhost.config".into()),
        )
    }

    #[test]
    fn every_command_names_the_applicationhost_config() {
        golden(
            &appcmd().add_fastcgi(&app(SHOP)).expect("cmd"),
            r#""%ProgramFiles%\IIS Express\appcmd.exe" set config -section:system.webServer/fastCgi /+"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest C:\inetpub\wwwroot\shop\iiswsgi.toml',maxInstances='0',instanceMaxRequests='10000',activityTimeout='600',requestTimeout='600',idleTimeout='1800',signalBeforeTerminateSeconds='30',protocol='NamedPipe',queueLength='1000',rapidFailsPerMinute='10',stderrMode='ReturnGeneric500',flushNamedPipe='false']" /commit:apphost /apphostconfig:"C:\Users\dev\source\My Site\.vs\config\applicationhost.config""#,
        );
        golden(
            &appcmd().list_fastcgi().expect("cmd"),
            r#""%ProgramFiles%\IIS Express\appcmd.exe" list config -section:system.webServer/fastCgi /xml /apphostconfig:"C:\Users\dev\source\My Site\.vs\config\applicationhost.config""#,
        );
        golden(
            &appcmd()
                .remove_handler("WebSite1", "iiswsgi-Shop")
                .expect("cmd"),
            r#""%ProgramFiles%\IIS Express\appcmd.exe" set config WebSite1 -section:system.webServer/handlers /-"[name='iiswsgi-Shop']" /apphostconfig:"C:\Users\dev\source\My Site\.vs\config\applicationhost.config""#,
        );
        assert!(appcmd().is_express());
    }

    #[test]
    fn quote_in_the_config_path_is_refused() {
        let e = AppCmd::express(EXPRESS_APPCMD, Some(r"C:\Users\o'brien\a.config".into()))
            .list_fastcgi()
            .expect_err("refused");
        assert!(matches!(e, AppCmdError::SingleQuote { .. }));
    }
}

mod refused {
    use super::*;

    #[test]
    fn app_root_with_a_single_quote_is_refused_with_the_value() {
        let e = AppCmd::iis(IIS_APPCMD)
            .add_fastcgi(&app(r"C:\inetpub\wwwroot\Bob's Shop"))
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            r#"arguments `run --manifest "C:\inetpub\wwwroot\Bob's Shop\iiswsgi.toml"` contains `'`, which appcmd cannot quote (its values are written between single quotes); move it to a path without `'`"#
        );
    }

    #[test]
    fn handler_location_and_values_with_quotes_are_refused() {
        let a = AppCmd::iis(IIS_APPCMD);
        assert!(a.remove_handler("Bob's Site/app", "x").is_err());
        assert!(a.remove_handler("Site/app", "it's").is_err());
        assert!(
            a.add_fastcgi_environment(EXE, "run", "PATH", "C:\\a'b")
                .is_err()
        );
    }

    #[test]
    fn line_breaks_are_refused() {
        assert!(matches!(
            check_value("x", "a\r\nb"),
            Err(AppCmdError::Control { .. })
        ));
    }
}

mod quoting {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_arguments_stay_bare() {
        assert_eq!(quote_windows_arg("/xml"), "/xml");
        assert_eq!(quote_windows_arg(r"C:\x\y"), r"C:\x\y");
    }

    #[test]
    fn empty_argument_is_two_quotes() {
        assert_eq!(quote_windows_arg(""), r#""""#);
        assert_eq!(parse_windows_command_line(r#"a "" b"#), ["a", "", "b"]);
    }

    #[test]
    fn trailing_backslash_before_the_closing_quote_is_doubled() {
        assert_eq!(quote_windows_arg(r"C:\My Dir\"), r#""C:\My Dir\\""#);
    }

    #[test]
    fn cmd_metacharacters_are_quoted() {
        assert_eq!(quote_windows_arg("a&b"), r#""a&b""#);
    }

    proptest! {
        #[test]
        fn display_reads_back_to_the_same_argv(
            args in proptest::collection::vec("[a-zA-Z0-9 \\\\\"'/+\\-:\\[\\]=,&()^|]{0,12}", 1..5)
        ) {
            let cmd = CommandLine::new("appcmd.exe", args);
            prop_assert_eq!(parse_windows_command_line(&cmd.display()), cmd.argv());
        }
    }
}

mod list_output {
    use super::*;

    /// `appcmd list config -section:system.webServer/fastCgi /xml` as IIS 10 prints it (shape
    /// from iis-docs and public logs; attribute order as stored).
    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<appcmd>
    <CONFIG CONFIG.SECTION="system.webServer/fastCgi" path="MACHINE/WEBROOT/APPHOST" overrideMode="Inherit" locked="false">
        <system.webServer-fastCgi>
            <application fullPath="C:\PHP\php-cgi.exe" arguments="" monitorChangesTo="php.ini" activityTimeout="600" requestTimeout="600" instanceMaxRequests="10000">
                <environmentVariables>
                    <environmentVariable name="PHP_FCGI_MAX_REQUESTS" value="10000" />
                </environmentVariables>
            </application>
            <application fullPath="C:\Program Files\iiswsgi\iiswsgi.exe" arguments="run --manifest &quot;C:\inetpub\wwwroot\My Shop\iiswsgi.toml&quot;" maxInstances="0" instanceMaxRequests="10000" stderrMode="ReturnGeneric500">
                <environmentVariables>
                    <environmentVariable name="PATH" value="C:\Python311;C:\Windows\System32" />
                </environmentVariables>
            </application>
            <application fullPath="C:\Python311\python.exe" />
        </system.webServer-fastCgi>
    </CONFIG>
</appcmd>
"#;

    #[test]
    fn applications_and_their_variables_are_read() {
        let apps = parse_fastcgi_list(LIST).expect("parse");
        assert_eq!(apps.len(), 3);
        assert_eq!(
            apps[0].environment,
            [("PHP_FCGI_MAX_REQUESTS".to_string(), "10000".to_string())]
        );
        assert_eq!(
            apps[1].script_processor(),
            r#"C:\Program Files\iiswsgi\iiswsgi.exe|run --manifest "C:\inetpub\wwwroot\My Shop\iiswsgi.toml""#
        );
        assert_eq!(apps[1].environment.len(), 1);
        assert_eq!(apps[2].arguments, "");
        assert!(
            apps[2].environment.is_empty(),
            "variables stay with their application"
        );
        assert_eq!(apps[2].effective("instanceMaxRequests"), Some("200"));
    }

    #[test]
    fn key_comparison_ignores_case() {
        let apps = parse_fastcgi_list(LIST).expect("parse");
        let mut want = app(MY_SHOP);
        want.full_path = want.full_path.to_uppercase();
        assert!(want.same_key(&apps[1]));
        assert!(!want.same_key(&apps[0]));
    }

    #[test]
    fn differences_name_each_attribute_and_variable() {
        let apps = parse_fastcgi_list(LIST).expect("parse");
        let diffs: Vec<String> = app(MY_SHOP)
            .differences(&apps[1])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            diffs,
            [
                "activityTimeout is `70`, want `600`",
                "requestTimeout is `90`, want `600`",
                "idleTimeout is `300`, want `1800`",
                "signalBeforeTerminateSeconds is `0`, want `30`",
                r"environment variable PATH is `C:\Python311;C:\Windows\System32`, want `C:\Program Files\Python311;C:\Windows\System32;C:\Windows`",
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_fastcgi_list("<appcmd><application fullPath='x'></appcmd>").is_err());
        assert_eq!(parse_fastcgi_list("").expect("empty").len(), 0);
        assert_eq!(
            parse_fastcgi_list("ERROR ( message:Cannot read configuration file )")
                .expect("text")
                .len(),
            0
        );
    }

    #[test]
    fn vdirs_and_apps_are_read() {
        let vdirs = parse_vdirs(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<appcmd>
    <VDIR VDIR.NAME="Default Web Site/" APP.NAME="Default Web Site/" path="/" physicalPath="%SystemDrive%\inetpub\wwwroot" />
    <VDIR VDIR.NAME="Default Web Site/My Shop/" APP.NAME="Default Web Site/My Shop" path="/" physicalPath="C:\inetpub\wwwroot\My Shop" />
    <VDIR VDIR.NAME="Default Web Site/My Shop/static" APP.NAME="Default Web Site/My Shop" path="/static" physicalPath="D:\static" />
</appcmd>"#,
        )
        .expect("parse");
        assert_eq!(vdirs.len(), 3);
        assert_eq!(vdirs[1].physical_path, r"C:\inetpub\wwwroot\My Shop");
        assert_eq!(location_of(&vdirs[0].app), "Default Web Site/");
        let apps = parse_apps(
            r#"<appcmd><APP APP.NAME="Default Web Site/My Shop" APPPOOL.NAME="Shop Pool" SITE.NAME="Default Web Site" path="/My Shop" /></appcmd>"#,
        )
        .expect("parse");
        assert_eq!(apps[0].app_pool, "Shop Pool");
    }
}
