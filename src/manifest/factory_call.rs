//! `module:factory(literal arguments)`, as gunicorn accepts it: the callable part of a WSGI
//! target may end in a call whose arguments are Python literals (strings, numbers, `True`,
//! `False`, `None`, and tuples, lists, dicts and sets of them), positional or `name=value`.
//!
//! This module only checks the shape, without Python, so that `iiswsgi check` and `--app`
//! reject `create_app(os.environ)` with a clear message before anything starts. The values
//! themselves are evaluated by Python's own `ast.literal_eval` when the app is imported, as
//! gunicorn does; no code runs.

/// Most bytes of argument text accepted (a factory call is a line, not a program).
pub const MAX_ARGUMENTS_LEN: usize = 4096;

/// Most bracket levels inside the arguments.
const MAX_DEPTH: usize = 32;

/// Why the arguments of a factory call are not literals gunicorn would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactoryCallError {
    /// `(` without a matching final `)`, or text after it.
    #[error("the call must end with its closing `)`")]
    Unclosed,
    /// The arguments are longer than [`MAX_ARGUMENTS_LEN`].
    #[error("the arguments are longer than {MAX_ARGUMENTS_LEN} bytes")]
    TooLong,
    /// A name that is not `True`, `False`, `None` or a keyword argument's name.
    #[error(
        "`{0}` is not a literal: factory arguments may only be strings, numbers, True, False, \
         None and lists, tuples, dicts or sets of them (gunicorn's rule)"
    )]
    NotLiteral(String),
    /// A character that no literal contains.
    #[error("unexpected `{0}` in the arguments")]
    Unexpected(char),
    /// A string literal without its closing quote.
    #[error("a string in the arguments is not closed")]
    UnclosedString,
    /// Brackets that do not pair up, or nest too deeply.
    #[error("the brackets in the arguments do not match")]
    Brackets,
}

/// Splits `name(arguments)` into the name and, when it is a call, the argument text (empty
/// for `name()`); checks that the arguments are literals. A callable that is not a call comes
/// back as `(callable, None)`.
pub fn split(callable: &str) -> Result<(&str, Option<&str>), FactoryCallError> {
    let Some(open) = callable.find('(') else {
        if callable.contains(')') {
            return Err(FactoryCallError::Unexpected(')'));
        }
        return Ok((callable, None));
    };
    let name = &callable[..open];
    let args = callable[open + 1..]
        .strip_suffix(')')
        .ok_or(FactoryCallError::Unclosed)?;
    if args.len() > MAX_ARGUMENTS_LEN {
        return Err(FactoryCallError::TooLong);
    }
    check_literals(args)?;
    Ok((name, Some(args)))
}

/// A light lexer over Python literal syntax: enough to refuse names, calls and operators with
/// a clear message, and to make sure the final `)` closes the call (not a string or a nested
/// bracket). Python decides the rest.
fn check_literals(args: &str) -> Result<(), FactoryCallError> {
    let bytes = args.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'=' | b'+' | b'-' => i += 1,
            b'(' | b'[' | b'{' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(FactoryCallError::Brackets);
                }
                stack.push(c);
                i += 1;
            }
            b')' | b']' | b'}' => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(open) {
                    return Err(FactoryCallError::Brackets);
                }
                i += 1;
            }
            b'\'' | b'"' => i = skip_string(bytes, i)?,
            b'0'..=b'9' | b'.' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_'))
                {
                    // Exponent signs: `1e-3`.
                    if matches!(bytes[i], b'e' | b'E')
                        && matches!(bytes.get(i + 1), Some(b'+' | b'-'))
                    {
                        i += 1;
                    }
                    i += 1;
                }
            }
            c if c == b'_' || c.is_ascii_alphabetic() || !c.is_ascii() => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'_'
                        || bytes[i].is_ascii_alphanumeric()
                        || !bytes[i].is_ascii())
                {
                    i += 1;
                }
                let word = &args[start..i];
                let quote = bytes.get(i).copied();
                let prefix = word.len() <= 2
                    && word
                        .chars()
                        .all(|ch| matches!(ch.to_ascii_lowercase(), 'r' | 'b' | 'u'));
                if prefix && matches!(quote, Some(b'\'' | b'"')) {
                    i = skip_string(bytes, i)?; // r'..', b"..", rb'..'
                    continue;
                }
                let keyword = stack.is_empty()
                    && args[i..].trim_start().starts_with('=')
                    && !args[i..].trim_start().starts_with("==");
                if !(keyword || matches!(word, "True" | "False" | "None")) {
                    return Err(FactoryCallError::NotLiteral(word.to_owned()));
                }
            }
            other => return Err(FactoryCallError::Unexpected(char::from(other))),
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(FactoryCallError::Brackets)
    }
}

/// The index after the string literal starting at `start` (a quote), triple quotes and
/// backslash escapes included.
fn skip_string(bytes: &[u8], start: usize) -> Result<usize, FactoryCallError> {
    let quote = bytes[start];
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' if !triple => return Err(FactoryCallError::UnclosedString),
            q if q == quote => {
                if !triple {
                    return Ok(i + 1);
                }
                if bytes.get(i..i + 3) == Some(&[quote, quote, quote][..]) {
                    return Ok(i + 3);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Err(FactoryCallError::UnclosedString)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callable_without_parentheses_is_not_a_call() {
        assert_eq!(split("app"), Ok(("app", None)));
        assert_eq!(split("server.app"), Ok(("server.app", None)));
    }

    #[test]
    fn empty_and_literal_arguments_are_accepted_as_gunicorn_does() {
        assert_eq!(split("create_app()"), Ok(("create_app", Some(""))));
        for args in [
            "debug=False",
            "'prod', 8, None",
            r#"config={"a": [1, 2.5e-3, -4], "b": (True,)}, name=b'x'"#,
            r#"path=r'C:\site', greeting="it's \"ok\"", multi='''a)b'''"#,
            "{'a', 'b'}, 0x1F, 1_000, .5j",
            "name='café'",
        ] {
            let call = format!("make({args})");
            assert_eq!(split(&call), Ok(("make", Some(args))), "{args}");
        }
    }

    #[test]
    fn names_calls_and_operators_are_not_literals() {
        assert_eq!(
            split("make(os.environ)"),
            Err(FactoryCallError::NotLiteral("os".into()))
        );
        assert_eq!(
            split("make(debug=settings)"),
            Err(FactoryCallError::NotLiteral("settings".into()))
        );
        assert_eq!(split("make(1 * 2)"), Err(FactoryCallError::Unexpected('*')));
        assert_eq!(
            split("make(x == 1)"),
            Err(FactoryCallError::NotLiteral("x".into()))
        );
    }

    #[test]
    fn the_call_must_close_once_at_the_end() {
        assert_eq!(split("make("), Err(FactoryCallError::Unclosed));
        assert_eq!(split("make(1).app"), Err(FactoryCallError::Unclosed));
        assert_eq!(split("make(')')"), Ok(("make", Some("')'"))));
        assert_eq!(split("make(')"), Err(FactoryCallError::UnclosedString));
        assert_eq!(split("make((1)"), Err(FactoryCallError::Brackets));
        assert_eq!(split("make([1)])"), Err(FactoryCallError::Brackets));
        assert_eq!(split("app)"), Err(FactoryCallError::Unexpected(')')));
        let deep = format!("make({}{})", "[".repeat(40), "]".repeat(40));
        assert_eq!(split(&deep), Err(FactoryCallError::Brackets));
        let long = format!("make('{}')", "x".repeat(MAX_ARGUMENTS_LEN));
        assert_eq!(split(&long), Err(FactoryCallError::TooLong));
    }
}
