//! `iiswsgi run` as IIS drives it: the IIS-emulating client of `support::iis_client` (fd 0 is a
//! connected socketpair, KEEP_CONN always, ids wrapping 1..255, IIS's full param table) against
//! `iiswsgi run --diagnostic`, whose page shows the normalised environ.
//!
//! `client` checks the emulation itself (the param table against the spec's example) and runs
//! it against libfcgi's C responder first, so a failure in `iiswsgi` points at the server, not
//! at the harness.

use std::process::Command;

use crate::support::iis_client::{self, FIXED_TABLE, IisApp, IisProcess, IisRequest, wire};
use crate::support::peers::{Backend, Sandbox};

/// Starts `backend` as IIS would, serving `app`.
fn spawn(sandbox: &Sandbox, backend: &Backend, app: IisApp) -> IisProcess {
    let argv = backend.argv(sandbox.path());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    IisProcess::spawn(cmd, app, sandbox.path(), backend.logs(sandbox.path()))
}

/// The expected id sequence: 1..=255, then 1 again.
fn expected_id(nth: usize) -> u8 {
    (nth % 255) as u8 + 1
}

mod client {
    use super::*;

    fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_else(|| panic!("{name} not sent"))
    }

    #[test]
    fn param_table_matches_the_spec_example_for_a_sub_application() {
        let request = IisRequest::get("/shop/cart?id=7")
            .header("X-Custom", "1")
            .header("Cache-Control", "no-cache");
        let params = request.params(&IisApp::sub("/shop"));
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();

        // Headers first, known ones in IIS's order, unknown ones after.
        assert_eq!(
            &names[..5],
            [
                "HTTP_CACHE_CONTROL",
                "HTTP_ACCEPT",
                "HTTP_HOST",
                "HTTP_USER_AGENT",
                "HTTP_X_CUSTOM"
            ]
        );
        // Then exactly the 41 fixed variables, in the spec's order.
        assert_eq!(&names[5..], FIXED_TABLE);
        let expect = [
            ("APPL_MD_PATH", "/LM/W3SVC/1/ROOT/shop"),
            ("APPL_PHYSICAL_PATH", r"C:\inetpub\wwwroot\shop\"),
            ("CONTENT_LENGTH", "0"),
            ("DOCUMENT_ROOT", r"C:\inetpub\wwwroot\shop"),
            ("HTTPS", "off"),
            ("INSTANCE_ID", "1"),
            ("INSTANCE_NAME", "DEFAULT WEB SITE"),
            ("INSTANCE_META_PATH", "/LM/W3SVC/1"),
            ("PATH_INFO", "/shop/cart"),
            ("PATH_TRANSLATED", r"C:\inetpub\wwwroot\shop\cart"),
            ("QUERY_STRING", "id=7"),
            ("REQUEST_URI", "/shop/cart?id=7"),
            ("SCRIPT_NAME", "/shop/cart"),
            ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
            ("URL", "/shop/cart"),
        ];
        for (name, value) in expect {
            assert_eq!(param(&params, name), value.as_bytes(), "{name}");
        }
    }

    #[test]
    fn url_rewrite_adds_x_original_url_and_was_rewritten_and_serves_the_target() {
        let request = IisRequest::get("/shop/products/42").rewritten_to("/shop/app.wsgi?p=42");
        let params = request.params(&IisApp::sub("/shop"));
        assert_eq!(param(&params, "HTTP_X_ORIGINAL_URL"), b"/shop/products/42");
        assert_eq!(param(&params, "IIS_WasUrlRewritten"), b"1");
        assert_eq!(param(&params, "REQUEST_URI"), b"/shop/app.wsgi?p=42");
        assert_eq!(param(&params, "PATH_INFO"), b"/shop/app.wsgi");
        assert_eq!(param(&params, "QUERY_STRING"), b"p=42");
        // Module variables sit between the headers and the fixed table.
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        let was = names
            .iter()
            .position(|n| *n == "IIS_WasUrlRewritten")
            .unwrap();
        let appl = names.iter().position(|n| *n == "APPL_MD_PATH").unwrap();
        let last_header = names.iter().rposition(|n| n.starts_with("HTTP_")).unwrap();
        assert!(last_header < was && was < appl, "{names:?}");
    }

    #[test]
    fn ansi_path_turns_unrepresentable_characters_into_question_marks() {
        // é is in Windows-1252 (0xE9), € too (0x80), 日 is not.
        assert_eq!(
            iis_client::ansi_path("/caf%C3%A9/%E2%82%AC/%E6%97%A5/a%20b/%zz"),
            b"/caf\xe9/\x80/?/a b/%zz".to_vec()
        );
    }

    /// Parses the C responder's `NAME=VALUE` lines (raw bytes).
    fn c_lines(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        body.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let eq = l.iter().position(|&b| b == b'=')?;
                Some((l[..eq].to_vec(), l[eq + 1..].to_vec()))
            })
            .collect()
    }

    #[test]
    fn libfcgi_responder_serves_600_requests_with_ids_wrapping_past_255() {
        let sandbox = Sandbox::new("iis-c-ids");
        let mut process = spawn(&sandbox, &Backend::CResponder, IisApp::root());
        for nth in 0..600 {
            let response = process.send(&IisRequest::get(&format!("/item/{nth}")));
            assert_eq!(response.request_id, expected_id(nth));
            assert_eq!(response.cgi.status, 200);
            assert_eq!(response.protocol_status, 0);
            let lines = c_lines(&response.cgi.body);
            let id = format!("{}", response.request_id).into_bytes();
            assert!(
                lines.contains(&(b"REQUEST_ID".to_vec(), id)),
                "{}",
                response.cgi.text()
            );
        }
        assert_eq!(process.next_id(), expected_id(600));
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn libfcgi_responder_receives_the_whole_param_table_in_order() {
        let sandbox = Sandbox::new("iis-c-params");
        let app = IisApp::sub("/shop");
        let mut process = spawn(&sandbox, &Backend::CResponder, app.clone());
        // A 10 KB cookie makes the PARAMS stream span records mid-pair; the non-ASCII path
        // puts Windows-1252 bytes in PATH_INFO/URL.
        let cookie = "c".repeat(10_000);
        let request = IisRequest::get("/shop/caf%C3%A9/list?q=%E6%97%A5").header("Cookie", &cookie);
        let response = process.send(&request);
        assert_eq!(response.cgi.status, 200);
        let received: Vec<_> = c_lines(&response.cgi.body)
            .into_iter()
            .filter(|(n, _)| !matches!(n.as_slice(), b"REQUEST_ID" | b"FCGI_ROLE" | b"STDIN_BYTES"))
            .collect();
        let sent: Vec<_> = request
            .params(&app)
            .into_iter()
            .map(|(n, v)| (n.into_bytes(), v))
            .collect();
        assert_eq!(received.len(), sent.len());
        for (got, want) in received.iter().zip(&sent) {
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&want.0));
        }
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn libfcgi_responder_echoes_a_body_sent_as_8k_stdin_records() {
        let sandbox = Sandbox::new("iis-c-body");
        let mut process = spawn(&sandbox, &Backend::CResponder, IisApp::root());
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let response = process.send(&IisRequest::post(
            "/echo",
            "application/octet-stream",
            body.clone(),
        ));
        assert_eq!(response.cgi.status, 200);
        assert_eq!(response.cgi.body, body);
        // The next request on the same pipe still works.
        let after = process.send(&IisRequest::get("/hello"));
        assert_eq!(after.cgi.text(), "Hello, world!\n");
        process.close_pipe_and_expect_clean_exit();
    }
}

/// Against `iiswsgi run --diagnostic`.
mod iiswsgi {
    use super::*;
    use crate::support::peers::{diagnostic_value, fnv1a64, iiswsgi_log};

    fn start(label: &str, app: IisApp) -> (Sandbox, IisProcess) {
        let sandbox = Sandbox::new(label);
        let process = spawn(&sandbox, &Backend::iiswsgi(), app);
        (sandbox, process)
    }

    /// The value the diagnostic page shows for `name`, failing with the page if absent.
    fn shown(response: &iis_client::IisResponse, name: &str) -> String {
        diagnostic_value(&response.cgi.body, name).unwrap_or_else(|| {
            panic!(
                "{name} not on the diagnostic page:\n{}",
                response.cgi.text()
            )
        })
    }

    /// A good response as IIS sees it: Status 200 first, a Content-Type, no STDERR, and the
    /// stream ended properly (an empty STDOUT, then END_REQUEST{0, REQUEST_COMPLETE}).
    fn ok(response: &iis_client::IisResponse) {
        assert_eq!(response.cgi.status, 200, "{}", response.cgi.text());
        assert_eq!(response.cgi.reason, "OK");
        assert!(
            response.cgi.header("Content-Type").is_some(),
            "{:?}",
            response.cgi.headers
        );
        assert_eq!(response.protocol_status, 0, "END_REQUEST protocolStatus");
        assert_eq!(response.app_status, 0, "END_REQUEST appStatus");
        assert!(
            response.stderr.is_empty(),
            "STDERR: {:?}",
            String::from_utf8_lossy(&response.stderr)
        );
        assert_eq!(response.browser_status(), 200);
        let n = response.records.len();
        assert!(n >= 3, "{:?}", response.records);
        let (kind, _, len, _) = response.records[n - 2];
        assert_eq!(
            (kind, len),
            (wire::STDOUT, 0),
            "empty STDOUT before END_REQUEST"
        );
        assert_eq!(response.records[n - 1].0, wire::END_REQUEST);
    }

    #[test]
    fn serves_600_requests_on_one_process_with_ids_wrapping_past_255() {
        let (_sandbox, mut process) = start("iis-ids", IisApp::root());
        let pid = process.pid();
        for nth in 0..600 {
            let response = process.send(&IisRequest::get(&format!("/item/{nth}?n={nth}")));
            ok(&response);
            assert_eq!(response.request_id, expected_id(nth));
            // The server saw the id the client sent.
            assert_eq!(
                shown(&response, "iiswsgi.request_id"),
                response.request_id.to_string()
            );
            assert_eq!(shown(&response, "PATH_INFO"), format!("/item/{nth}"));
            assert_eq!(shown(&response, "QUERY_STRING"), format!("n={nth}"));
        }
        assert_eq!(process.pid(), pid, "one process served every request");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn reads_a_body_sent_as_8k_stdin_records_and_serves_the_next_request() {
        let (_sandbox, mut process) = start("iis-body", IisApp::root());
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let request = IisRequest::post("/upload", "application/octet-stream", body.clone());
        let response = process.send(&request);
        ok(&response);
        assert_eq!(shown(&response, "CONTENT_LENGTH"), "100000");
        assert_eq!(shown(&response, "CONTENT_TYPE"), "application/octet-stream");
        assert_eq!(shown(&response, "REQUEST_METHOD"), "POST");
        // The whole body arrived, in order.
        assert_eq!(shown(&response, "iiswsgi.body_bytes"), "100000");
        assert_eq!(shown(&response, "iiswsgi.body_fnv1a64"), fnv1a64(&body));
        // HTTP_CONTENT_LENGTH/TYPE (which IIS sends too) are not in the environ.
        assert_eq!(
            diagnostic_value(&response.cgi.body, "HTTP_CONTENT_LENGTH"),
            None
        );
        assert_eq!(
            diagnostic_value(&response.cgi.body, "HTTP_CONTENT_TYPE"),
            None
        );
        let after = process.send(&IisRequest::get("/after"));
        ok(&after);
        assert_eq!(shown(&after, "PATH_INFO"), "/after");
        assert_eq!(shown(&after, "iiswsgi.body_bytes"), "0");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn root_application_gets_an_empty_script_name() {
        let (_sandbox, mut process) = start("iis-root", IisApp::root());
        let response = process.send(&IisRequest::get("/shop/cart?id=7"));
        ok(&response);
        assert_eq!(shown(&response, "SCRIPT_NAME"), "");
        assert_eq!(shown(&response, "PATH_INFO"), "/shop/cart");
        assert_eq!(shown(&response, "QUERY_STRING"), "id=7");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn sub_application_takes_script_name_from_appl_md_path() {
        let (_sandbox, mut process) = start("iis-sub", IisApp::sub("/shop"));
        let cases = [
            ("/shop/cart?id=7", "/shop", "/cart"),
            ("/shop", "/shop", ""),
            ("/shop/", "/shop", "/"),
            // The prefix matches case-insensitively and keeps the request's spelling.
            ("/SHOP/Cart", "/SHOP", "/Cart"),
            // Encoded characters in the rest of the path come back decoded.
            ("/shop/a%20b", "/shop", "/a b"),
        ];
        for (url, script_name, path_info) in cases {
            let response = process.send(&IisRequest::get(url));
            ok(&response);
            assert_eq!(shown(&response, "SCRIPT_NAME"), script_name, "{url}");
            assert_eq!(shown(&response, "PATH_INFO"), path_info, "{url}");
        }
        process.close_pipe_and_expect_clean_exit();
    }

    /// iis-runtime §12 item 12: two IIS applications that share one FastCGI registration
    /// share its processes. A request for the other one is answered 500 without reaching the
    /// app, with one log line naming both paths and the fix; the process serves on.
    #[test]
    fn request_for_another_application_sharing_the_pool_gets_500_and_the_process_serves_on() {
        let (sandbox, mut process) = start("iis-shared-pool", IisApp::sub("/shop"));
        let pid = process.pid();
        ok(&process.send(&IisRequest::get("/shop/cart")));

        process.app = IisApp::sub("/blog");
        let wrong = process.send(&IisRequest::get("/blog/post"));
        assert_eq!(wrong.cgi.status, 500, "{}", wrong.cgi.text());
        let text = wrong.cgi.text();
        assert!(text.contains("error id"), "{text}");
        assert!(
            diagnostic_value(&wrong.cgi.body, "PATH_INFO").is_none(),
            "the app was called: {text}"
        );
        assert_eq!((wrong.protocol_status, wrong.app_status), (0, 0));
        let error_id = text
            .split("error id ")
            .nth(1)
            .map(|t| t.trim_end_matches([')', '\n']).to_owned())
            .expect("error id");
        let log = std::fs::read_to_string(iiswsgi_log(sandbox.path())).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("another application"))
            .collect();
        assert_eq!(lines.len(), 1, "{log}");
        for needle in [
            error_id.as_str(),
            "/LM/W3SVC/1/ROOT/blog",
            r"C:\inetpub\wwwroot\blog\",
            "/LM/W3SVC/1/ROOT/shop",
            r"C:\inetpub\wwwroot\shop\",
            "share one FastCGI application",
            "arguments",
        ] {
            assert!(lines[0].contains(needle), "{needle} missing: {}", lines[0]);
        }

        // The physical path alone differing is a mismatch too.
        process.app = IisApp {
            physical_path: r"D:\sites\shop".into(),
            ..IisApp::sub("/shop")
        };
        assert_eq!(process.send(&IisRequest::get("/shop/x")).cgi.status, 500);

        process.app = IisApp::sub("/shop");
        ok(&process.send(&IisRequest::get("/shop/after")));
        assert_eq!(process.pid(), pid, "the same process serves on");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn same_application_with_other_case_and_trailing_backslash_is_served() {
        let (_sandbox, mut process) = start("iis-same-app", IisApp::sub("/shop"));
        ok(&process.send(&IisRequest::get("/shop/a")));
        process.app = IisApp {
            virtual_path: "/SHOP".into(),
            // The client adds IIS's trailing `\`, so this one ends in two.
            physical_path: r"c:\INETPUB\wwwroot\Shop\".into(),
            ..IisApp::sub("/shop")
        };
        let response = process.send(&IisRequest::get("/SHOP/b"));
        ok(&response);
        assert_eq!(shown(&response, "PATH_INFO"), "/b");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn nested_sub_application_splits_at_its_full_virtual_path() {
        let (_sandbox, mut process) = start("iis-nested", IisApp::sub("/apps/shop"));
        let response = process.send(&IisRequest::get("/apps/shop/orders/9"));
        ok(&response);
        assert_eq!(shown(&response, "SCRIPT_NAME"), "/apps/shop");
        assert_eq!(shown(&response, "PATH_INFO"), "/orders/9");
        // A path outside the application is served whole, with an empty SCRIPT_NAME.
        let outside = process.send(&IisRequest::get("/apps/shopping/x"));
        ok(&outside);
        assert_eq!(shown(&outside, "SCRIPT_NAME"), "");
        assert_eq!(shown(&outside, "PATH_INFO"), "/apps/shopping/x");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn url_rewrite_takes_path_info_from_the_original_url() {
        let (_sandbox, mut process) = start("iis-rewrite", IisApp::sub("/shop"));
        let request =
            IisRequest::get("/shop/products/caf%C3%A9%20x").rewritten_to("/shop/app.wsgi?p=1");
        let response = process.send(&request);
        ok(&response);
        assert_eq!(shown(&response, "SCRIPT_NAME"), "/shop");
        // Decoded as bytes, then latin-1 (PEP 3333): é = C3 A9 shows as "Ã©".
        assert_eq!(shown(&response, "PATH_INFO"), "/products/caf\u{c3}\u{a9} x");
        // QUERY_STRING stays IIS's (the rewritten one).
        assert_eq!(shown(&response, "QUERY_STRING"), "p=1");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn x_original_url_without_the_rewrite_flag_is_not_trusted() {
        let (_sandbox, mut process) = start("iis-spoof", IisApp::sub("/shop"));
        let request = IisRequest::get("/shop/public").header("X-Original-URL", "/shop/admin");
        let response = process.send(&request);
        ok(&response);
        assert_eq!(shown(&response, "PATH_INFO"), "/public");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn non_ascii_percent_encoded_path_is_rebuilt_from_request_uri() {
        let (_sandbox, mut process) = start("iis-utf8", IisApp::sub("/shop"));
        // IIS's own PATH_INFO for this is "/shop/caf\xe9/??" (ANSI); iiswsgi must not use it.
        let request = IisRequest::get("/shop/caf%C3%A9/%E6%97%A5%E6%9C%AC?q=%E2%82%AC");
        assert_eq!(
            request
                .params(&IisApp::sub("/shop"))
                .iter()
                .find(|(n, _)| n == "PATH_INFO")
                .unwrap()
                .1,
            b"/shop/caf\xe9/??".to_vec()
        );
        let response = process.send(&request);
        ok(&response);
        let utf8_as_latin1 = |s: &str| s.bytes().map(char::from).collect::<String>();
        assert_eq!(shown(&response, "PATH_INFO"), utf8_as_latin1("/café/日本"));
        assert_eq!(shown(&response, "QUERY_STRING"), "q=%E2%82%AC");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn pipe_eof_ends_the_process_with_exit_0_and_no_output() {
        let (_sandbox, mut process) = start("iis-eof", IisApp::root());
        ok(&process.send(&IisRequest::get("/")));
        let status = process.close_pipe_and_expect_clean_exit();
        assert!(status.success());
    }

    #[test]
    fn https_off_gives_the_http_scheme() {
        let (_sandbox, mut process) = start("iis-https", IisApp::root());
        let response = process.send(&IisRequest::get("/"));
        ok(&response);
        assert_eq!(shown(&response, "HTTPS"), "off");
        assert_eq!(shown(&response, "wsgi.url_scheme"), "http");
        process.close_pipe_and_expect_clean_exit();
    }

    #[test]
    fn process_exits_cleanly_even_when_idle_from_the_start() {
        let (_sandbox, process) = start("iis-idle", IisApp::root());
        process.close_pipe_and_expect_clean_exit();
    }
}
