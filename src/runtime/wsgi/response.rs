//! Calling the app and sending what it returns: the WSGI hot path (wsgi-embedding.md §3.5).
//!
//! [`serve`] calls the app, takes the `len() == 1` and `FileWrapper` fast paths or iterates,
//! and always calls `close()` exactly once. The response in flight, with its Content-Length
//! bookkeeping, is [`Exchange`] (`super::exchange`).

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::environ::{CgiEnviron, EnvironTemplate};
use super::errors::{format_exception, type_name};
use super::exchange::{DeliverError, Ending, Exchange, Flow, deliver_err};
use super::file_wrapper;
use super::input::WsgiInput;
use super::start_response::StartResponse;
use super::{LogSink, Record};
use crate::runtime::server::{Body, Outcome, Response};
use log::Level;

/// Everything [`serve`] needs besides the request itself.
pub(super) struct Context<'a> {
    pub template: &'a EnvironTemplate,
    pub log: &'a dyn LogSink,
    /// The server's id for this request, shown on error pages and in log lines.
    pub error_id: crate::runtime::logging::ErrorId,
    /// `METHOD /path`, computed only when a line is logged.
    pub target: &'a dyn Fn() -> String,
}

/// What `serve` wants the caller to know beyond the [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Served {
    pub outcome: Outcome,
    /// The app raised `SystemExit`: exit once this response is done.
    pub exit: bool,
}

/// Clears the raw borrows of the request's body and response on every path out of [`serve`].
struct Scope<'py> {
    py: Python<'py>,
    exchange: Arc<Exchange>,
    input: Option<Bound<'py, WsgiInput>>,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.exchange.finish(self.py);
        if let Some(input) = &self.input {
            input.get().finish(self.py);
        }
    }
}

/// Calls the app for one request and sends its response.
pub(super) fn serve(
    py: Python<'_>,
    ctx: &Context<'_>,
    app: &Bound<'_, PyAny>,
    cgi: &CgiEnviron<'_>,
    body: &mut dyn Body,
    response: &mut dyn Response,
) -> Served {
    // SAFETY: `scope` below calls `finish` on both before this function returns or unwinds.
    let exchange = Arc::new(unsafe { Exchange::new(response, cgi.head) });
    let mut scope = Scope {
        py,
        exchange: exchange.clone(),
        input: None,
    };
    // SAFETY: as above; the input is finished by `scope`.
    let input = Bound::new(py, unsafe { WsgiInput::new(body, cgi.content_length) });
    let result = input.and_then(|input| {
        scope.input = Some(input.clone());
        let environ = ctx.template.build(py, cgi, input.into_any())?;
        let start_response = Bound::new(py, StartResponse::new(exchange.clone()))?;
        app.call1((environ, start_response))
    });
    let served = match result {
        Err(err) => failed(py, ctx, &exchange, err),
        Ok(iterable) => {
            let driven = drive(py, &iterable, &exchange);
            let closed = close(py, &iterable);
            match (driven, closed) {
                (Err(err), closed) => {
                    let served = failed(py, ctx, &exchange, err);
                    if let Err(close_err) = closed {
                        log_exception(py, ctx, "close() raised", &close_err);
                    }
                    served
                }
                (Ok(ending), Err(close_err)) => {
                    // The response is final; a failing close() is only logged (§3.5.6).
                    log_exception(py, ctx, "close() raised after the response", &close_err);
                    ended(ctx, &exchange, py, ending)
                }
                (Ok(ending), Ok(())) => ended(ctx, &exchange, py, ending),
            }
        }
    };
    drop(scope);
    served
}

/// Logs `METHOD /path (error id X): what` for this request.
fn note(ctx: &Context<'_>, level: Level, what: &str) {
    let message = format!("{} (error id {}): {what}", (ctx.target)(), ctx.error_id);
    ctx.log.log(&Record {
        level,
        message: &message,
        from_app: false,
    });
}

fn ended(ctx: &Context<'_>, exchange: &Exchange, py: Python<'_>, ending: Ending) -> Served {
    let (_, _, overflow) = exchange.snapshot(py);
    if overflow {
        note(
            ctx,
            Level::Warn,
            "the app produced more body than its Content-Length; the excess was dropped",
        );
    }
    match ending {
        Ending::Complete => Served {
            outcome: Outcome::Complete,
            exit: false,
        },
        Ending::Short { declared, sent } => {
            note(
                ctx,
                Level::Error,
                &format!(
                    "the app declared Content-Length {declared} but sent {sent} bytes; the \
                     response is incomplete"
                ),
            );
            Served {
                outcome: Outcome::Aborted,
                exit: false,
            }
        }
    }
}

/// As [`deliver_err`], for the end of the iterable.
fn end_err(err: DeliverError) -> PyErr {
    match err {
        DeliverError::NotStarted => {
            PyRuntimeError::new_err("the application returned without calling start_response()")
        }
        other => deliver_err(other),
    }
}

fn as_chunk<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "the application's iterable yielded {}, not bytes",
            type_name(item)
        ))
    })
}

/// Sends the iterable's items. `close()` is the caller's job.
fn drive(py: Python<'_>, iterable: &Bound<'_, PyAny>, exchange: &Exchange) -> PyResult<Ending> {
    if iterable.is_instance_of::<PyString>() || iterable.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "the application returned {} instead of an iterable of bytes",
            type_name(iterable)
        )));
    }
    if let Some(sent) = file_wrapper::send_fast(py, iterable, exchange)? {
        return Ok(sent);
    }
    let len = if let Ok(list) = iterable.cast_exact::<PyList>() {
        Some(list.len())
    } else if let Ok(tuple) = iterable.cast_exact::<PyTuple>() {
        Some(tuple.len())
    } else {
        match iterable.len() {
            Ok(n) => Some(n),
            Err(e) if e.is_instance_of::<PyTypeError>(py) => None,
            Err(e) => return Err(e),
        }
    };
    let mut rest = None;
    match len {
        Some(0) => {}
        Some(1) => {
            let (item, iter) = if let Ok(list) = iterable.cast_exact::<PyList>() {
                (Some(list.get_item(0)?), None)
            } else if let Ok(tuple) = iterable.cast_exact::<PyTuple>() {
                (Some(tuple.get_item(0)?), None)
            } else {
                let mut iter = iterable.try_iter()?;
                (iter.next().transpose()?, Some(iter))
            };
            rest = iter;
            if let Some(item) = item {
                let chunk = as_chunk(&item)?;
                let flow = if exchange.may_add_length()? {
                    exchange.deliver_whole(py, chunk.as_bytes())
                } else if chunk.as_bytes().is_empty() {
                    Ok(Flow::More)
                } else {
                    exchange.deliver(py, chunk.as_bytes())
                };
                if flow.map_err(deliver_err)? == Flow::Done {
                    return exchange.end(py).map_err(end_err);
                }
            }
            if rest.is_none() {
                return exchange.end(py).map_err(end_err);
            }
        }
        Some(_) | None => rest = Some(iterable.try_iter()?),
    }
    if let Some(iter) = rest {
        for item in iter {
            let item = item?;
            let chunk = as_chunk(&item)?;
            if chunk.as_bytes().is_empty() {
                continue;
            }
            if exchange
                .deliver(py, chunk.as_bytes())
                .map_err(deliver_err)?
                == Flow::Done
            {
                break;
            }
        }
    }
    exchange.end(py).map_err(end_err)
}

/// Calls `iterable.close()` if it has one. Exact lists and tuples have none; skipping the
/// lookup saves raising and discarding an `AttributeError` on the commonest responses.
fn close(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match iterable.getattr_opt(intern!(py, "close"))? {
        Some(close) => close.call0().map(drop),
        None => Ok(()),
    }
}

fn log_exception(py: Python<'_>, ctx: &Context<'_>, what: &str, err: &PyErr) {
    note(
        ctx,
        Level::Error,
        &format!("{what}\n{}", format_exception(py, err)),
    );
}

/// The generic page a client sees for an app failure; the id points at the log.
pub(super) fn error_page(error_id: crate::runtime::logging::ErrorId) -> String {
    format!(
        "Internal Server Error\n\nThe application failed while handling this request.\n\
         Error id: {error_id} (the server log has the details).\n"
    )
}

/// Handles an exception from the app, its iterable or the header commit.
fn failed(py: Python<'_>, ctx: &Context<'_>, exchange: &Exchange, err: PyErr) -> Served {
    let (committed, client_gone, _) = exchange.snapshot(py);
    if let Some(reason) = client_gone {
        note(ctx, Level::Info, &format!("response abandoned: {reason}"));
        return Served {
            outcome: Outcome::Aborted,
            exit: false,
        };
    }
    let exit = err.is_instance_of::<PySystemExit>(py);
    let what = if exit {
        "the application raised SystemExit; the process exits after this response"
    } else if committed {
        "unhandled exception after the headers were sent; the response is truncated"
    } else {
        "unhandled exception; answered 500"
    };
    log_exception(py, ctx, what, &err);
    if committed {
        return Served {
            outcome: Outcome::Aborted,
            exit,
        };
    }
    match exchange.replace(
        py,
        "500 Internal Server Error",
        error_page(ctx.error_id).as_bytes(),
    ) {
        Ok(()) => Served {
            outcome: Outcome::Complete,
            exit,
        },
        Err(_) => Served {
            outcome: Outcome::Aborted,
            exit,
        },
    }
}
#[cfg(test)]
mod tests {
    use super::super::testing::{Req, TestApp};
    use crate::runtime::server::Outcome;

    /// Apps routed by PATH_INFO; `STATE` records close() calls and generator clean-up.
    const APPS: &str = r#"
import sys
STATE = {"closed": 0, "finally": 0}

class Closing:
    def __init__(self, items):
        self.items = items
    def __iter__(self):
        return iter(self.items)
    def close(self):
        STATE["closed"] += 1

def gen(items, fail_after=None, exc=None):
    try:
        for i, item in enumerate(items):
            if fail_after is not None and i == fail_after:
                raise exc or ValueError("boom in generator")
            yield item
        if fail_after is not None and fail_after >= len(items):
            raise exc or ValueError("boom at end")
    finally:
        STATE["finally"] += 1

def ok(start_response, headers=None):
    return start_response("200 OK", [("Content-Type", "text/plain")] + (headers or []))

def app(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/state":
        body = "%(closed)d %(finally)d" % STATE
        ok(start_response)
        return [body.encode()]
    if p == "/list":
        ok(start_response); return [b"a", b"b", b"c"]
    if p == "/tuple":
        ok(start_response); return (b"a", b"b")
    if p == "/gen100":
        ok(start_response); return gen([b"x%d," % i for i in range(100)])
    if p == "/empty-list":
        ok(start_response); return []
    if p == "/empty-gen":
        ok(start_response); return gen([])
    if p == "/closing":
        ok(start_response); return Closing([b"one", b"two"])
    if p == "/one":
        ok(start_response); return [b"single"]
    if p == "/one-gen-len":
        ok(start_response); return Closing([b"sized"])
    if p == "/raise-before":
        try:
            raise KeyError("inner cause")
        except KeyError as e:
            raise RuntimeError("outer failure") from e
    if p == "/raise-in-gen-first":
        ok(start_response); return gen([b"never"], fail_after=0)
    if p == "/raise-after-yield":
        ok(start_response); return gen([b"before-", b"after"], fail_after=1)
    if p == "/str-first":
        ok(start_response); return ["text"]
    if p == "/str-later":
        ok(start_response); return gen([b"first", "second"])
    if p == "/return-bytes":
        ok(start_response); return b"x"
    if p == "/return-str":
        ok(start_response); return "x"
    if p == "/system-exit":
        raise SystemExit(3)
    if p == "/slow":
        ok(start_response); return gen([b"x" * 1000 for _ in range(50)])
    if p == "/cl-exact":
        ok(start_response, [("Content-Length", "6")]); return [b"ab", b"cdef"]
    if p == "/cl-short":
        ok(start_response, [("Content-Length", "5")]); return gen([b"0123456789", b"0123456789"])
    if p == "/cl-short-write":
        w = ok(start_response, [("Content-Length", "5")]); w(b"0123456789"); w(b"more"); return []
    if p == "/cl-long":
        ok(start_response, [("Content-Length", "100")]); return gen([b"only this"])
    if p == "/cl-abc":
        ok(start_response, [("Content-Length", "abc")]); return [b"x"]
    if p == "/cl-two":
        ok(start_response, [("Content-Length", "1"), ("Content-Length", "2")]); return [b"x"]
    if p == "/cl-dup":
        ok(start_response, [("Content-Length", "1"), ("Content-Length", "1")]); return [b"x"]
    if p == "/head":
        ok(start_response); return Closing([b"body bytes"])
    if p == "/head-gen":
        ok(start_response); return gen([b"", b"abc", b"def"])
    if p == "/204":
        start_response("204 No Content", []); return [b"must not be sent"]
    if p == "/304":
        start_response("304 Not Modified", [("ETag", '"x"')]); return gen([b"nope"])
    if p == "/lazy":
        def lazy():
            start_response("201 Created", [("Content-Type", "text/plain")])
            yield b"made"
        return lazy()
    if p == "/lazy-empty-first":
        def lazy():
            yield b""
            start_response("202 Accepted", [])
            yield b"ok"
        return lazy()
    if p == "/write-then-iter":
        w = ok(start_response); w(b"via-write-"); return [b"via-iter"]
    if p == "/write-interleaved":
        w = ok(start_response)
        def g():
            w(b"1"); yield b"2"; w(b"3"); yield b"4"
        return g()
    if p == "/write-str":
        w = ok(start_response); w("str"); return []
    if p == "/no-start":
        return [b"orphan"]
    if p == "/no-start-empty":
        return []
    if p == "/big":
        ok(start_response); return [b"z" * (1 << 20)]
    return [b"unrouted"]
"#;

    fn apps() -> TestApp {
        TestApp::new(APPS)
    }

    fn state(t: &TestApp) -> (u32, u32) {
        let text = t.get("/state").text();
        let mut it = text.split(' ').map(|n| n.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    mod iterables {
        use super::*;

        #[test]
        fn list_tuple_and_generator_items_arrive_in_order() {
            let t = apps();
            assert_eq!(t.get("/list").body, b"abc");
            assert_eq!(t.get("/tuple").body, b"ab");
            let generated = t.get("/gen100");
            let expected: String = (0..100).map(|i| format!("x{i},")).collect();
            assert_eq!(generated.text(), expected);
            assert_eq!(generated.header("Content-Length"), None);
        }

        #[test]
        fn empty_list_and_empty_generator_give_an_empty_200_with_length_zero() {
            let t = apps();
            for path in ["/empty-list", "/empty-gen"] {
                let r = t.get(path);
                assert_eq!(r.code(), 200, "{path}");
                assert!(r.body.is_empty(), "{path}");
                assert_eq!(r.header("Content-Length"), Some("0"), "{path}");
                assert_eq!(r.outcome, Outcome::Complete);
            }
        }

        #[test]
        fn single_item_list_gets_content_length_and_multi_item_list_does_not() {
            let t = apps();
            let one = t.get("/one");
            assert_eq!(one.header("Content-Length"), Some("6"));
            assert_eq!(one.body, b"single");
            assert_eq!(one.starts, 1);
            assert_eq!(one.finals, 1, "headers, body and end in one write");
            assert_eq!(t.get("/list").header("Content-Length"), None);
        }

        #[test]
        fn sized_custom_iterable_of_one_takes_the_fast_path_and_is_closed() {
            let t = apps();
            let before = state(&t).0;
            let r = t.get("/one-gen-len");
            assert_eq!(
                r.header("Content-Length"),
                None,
                "no __len__ on Closing: general path"
            );
            assert_eq!(r.body, b"sized");
            assert_eq!(state(&t).0, before + 1);
        }

        #[test]
        fn custom_iterable_is_closed_exactly_once_and_generator_finally_runs() {
            let t = apps();
            let (closed, fin) = state(&t);
            assert_eq!(t.get("/closing").body, b"onetwo");
            assert_eq!(t.get("/gen100").code(), 200);
            assert_eq!(state(&t), (closed + 1, fin + 1));
        }

        #[test]
        fn one_megabyte_single_chunk_arrives_intact() {
            let r = apps().get("/big");
            assert_eq!(r.body.len(), 1 << 20);
            assert!(r.body.iter().all(|&b| b == b'z'));
            assert_eq!(r.header("Content-Length"), Some("1048576"));
        }
    }

    mod errors {
        use super::*;

        #[test]
        fn exception_before_headers_is_a_500_with_an_id_and_the_full_chain_logged() {
            let t = apps();
            let r = t.get("/raise-before");
            assert_eq!(r.code(), 500);
            assert_eq!(r.outcome, Outcome::Complete);
            assert_eq!(r.starts, 1, "only the 500 went out");
            let page = r.text();
            let id = page
                .split("Error id: ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            assert!(
                !page.contains("outer failure"),
                "no traceback on the page: {page}"
            );
            assert!(
                r.log
                    .contains(&format!("GET /raise-before (error id {id})")),
                "{}",
                r.log
            );
            assert!(r.log.contains("KeyError: 'inner cause'"), "{}", r.log);
            assert!(r.log.contains("RuntimeError: outer failure"), "{}", r.log);
            assert!(r.log.contains("direct cause"), "{}", r.log);
        }

        #[test]
        fn exception_in_the_first_next_is_a_500_and_the_generator_is_finalised() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/raise-in-gen-first");
            assert_eq!(r.code(), 500);
            assert_eq!(state(&t).1, fin + 1);
        }

        #[test]
        fn exception_after_output_aborts_with_the_partial_body() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/raise-after-yield");
            assert_eq!(r.code(), 200);
            assert_eq!(r.body, b"before-");
            assert_eq!(r.outcome, Outcome::Aborted);
            assert!(r.log.contains("after the headers were sent"), "{}", r.log);
            assert!(r.log.contains("boom in generator"), "{}", r.log);
            assert_eq!(state(&t).1, fin + 1);
        }

        #[test]
        fn str_items_are_refused_before_and_after_output() {
            let t = apps();
            assert_eq!(t.get("/str-first").code(), 500);
            let later = t.get("/str-later");
            assert_eq!(later.body, b"first");
            assert_eq!(later.outcome, Outcome::Aborted);
            assert!(
                later.log.contains("yielded str, not bytes"),
                "{}",
                later.log
            );
        }

        #[test]
        fn returning_bytes_or_str_instead_of_an_iterable_is_a_500() {
            let t = apps();
            assert_eq!(t.get("/return-bytes").code(), 500);
            assert_eq!(t.get("/return-str").code(), 500);
        }

        #[test]
        fn system_exit_answers_500_then_asks_to_exit() {
            let t = apps();
            let r = t.get("/system-exit");
            assert_eq!(r.code(), 500);
            assert_eq!(r.outcome, Outcome::Exit);
            assert!(r.log.contains("SystemExit"), "{}", r.log);
            assert_eq!(
                t.app.exit_requested(),
                Some(super::super::super::ExitReason::SystemExit)
            );
        }

        #[test]
        fn client_abort_closes_the_iterable_and_logs_one_line_without_traceback() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.call(Req {
                client_reads: Some(3000),
                ..Req::get("/slow")
            });
            assert_eq!(r.outcome, Outcome::Aborted);
            assert_eq!(r.body.len(), 3000);
            assert_eq!(state(&t).1, fin + 1, "GeneratorExit reached the generator");
            let abandoned: Vec<&str> = r.log.lines().filter(|l| l.contains("abandoned")).collect();
            assert_eq!(abandoned.len(), 1, "{}", r.log);
            assert!(!r.log.contains("Traceback"), "{}", r.log);
            assert_eq!(t.get("/one").code(), 200, "the next request is served");
        }

        #[test]
        fn no_start_response_is_a_500_whether_or_not_data_was_produced() {
            let t = apps();
            assert_eq!(t.get("/no-start").code(), 500);
            let r = t.get("/no-start-empty");
            assert_eq!(r.code(), 500);
            assert!(
                r.log.contains("without calling start_response"),
                "{}",
                r.log
            );
        }
    }

    mod content_length {
        use super::*;

        #[test]
        fn matching_length_passes_the_body_through() {
            let r = apps().get("/cl-exact");
            assert_eq!(r.body, b"abcdef");
            assert_eq!(r.outcome, Outcome::Complete);
        }

        #[test]
        fn body_beyond_the_declared_length_is_cut_and_the_iterable_closed() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/cl-short");
            assert_eq!(r.body, b"01234");
            assert_eq!(r.outcome, Outcome::Complete);
            assert_eq!(state(&t).1, fin + 1);
            assert_eq!(t.get("/cl-short-write").body, b"01234");
        }

        #[test]
        fn body_shorter_than_declared_aborts_and_is_logged() {
            let r = apps().get("/cl-long");
            assert_eq!(r.body, b"only this");
            assert_eq!(r.outcome, Outcome::Aborted);
            assert!(
                r.log.contains("declared Content-Length 100 but sent 9"),
                "{}",
                r.log
            );
        }

        #[test]
        fn malformed_or_conflicting_lengths_are_500_and_identical_ones_collapse() {
            let t = apps();
            assert_eq!(t.get("/cl-abc").code(), 500);
            assert_eq!(t.get("/cl-two").code(), 500);
            let dup = t.get("/cl-dup");
            assert_eq!(dup.code(), 200);
            let lengths = dup
                .headers
                .iter()
                .filter(|(n, _)| n == "Content-Length")
                .count();
            assert_eq!(lengths, 1);
        }

        #[test]
        fn head_sends_the_get_headers_without_body_and_closes() {
            let t = apps();
            let closed = state(&t).0;
            let get = t.get("/one");
            let head = t.call(Req::get("/one").method("HEAD"));
            assert_eq!(head.headers, get.headers);
            assert!(head.body.is_empty());
            let r = t.call(Req::get("/head").method("HEAD"));
            assert!(r.body.is_empty());
            assert_eq!(state(&t).0, closed + 1);
            let lazy = t.call(Req::get("/head-gen").method("HEAD"));
            assert_eq!(lazy.code(), 200);
            assert!(lazy.body.is_empty());
        }

        #[test]
        fn no_content_and_not_modified_carry_no_body() {
            let t = apps();
            let r = t.get("/204");
            assert_eq!(r.code(), 204);
            assert!(r.body.is_empty());
            assert_eq!(r.header("Content-Length"), None);
            let r = t.get("/304");
            assert_eq!(r.code(), 304);
            assert!(r.body.is_empty());
        }
    }

    mod start_and_write {
        use super::*;

        #[test]
        fn start_response_called_lazily_in_the_first_next_sets_the_status() {
            let t = apps();
            let r = t.get("/lazy");
            assert_eq!(r.status.as_deref(), Some("201 Created"));
            assert_eq!(r.body, b"made");
            assert_eq!(t.get("/lazy-empty-first").code(), 202);
        }

        #[test]
        fn write_output_precedes_the_iterable_and_interleaves_in_order() {
            let t = apps();
            assert_eq!(t.get("/write-then-iter").body, b"via-write-via-iter");
            assert_eq!(t.get("/write-interleaved").body, b"1234");
        }

        #[test]
        fn write_with_str_is_a_type_error() {
            let r = apps().get("/write-str");
            assert_eq!(r.code(), 500);
            assert!(
                r.log
                    .contains("TypeError: write() argument must be bytes, not str"),
                "{}",
                r.log
            );
        }
    }
}
