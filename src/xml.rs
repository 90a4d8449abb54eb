//! A small, bounded XML tree for the lint rules, built with quick-xml.
//!
//! The rules need names exactly as written (msdeploy is case-sensitive about some and not
//! others), resolved namespaces (Atom feeds), attribute order and line numbers, and they run
//! on untrusted files: a leading BOM is accepted, DTDs are refused (no entity expansion),
//! errors carry the line, and every dimension a hostile file could blow up is capped
//! ([`MAX_BYTES`], [`MAX_DEPTH`], [`MAX_ATTRIBUTES`], [`MAX_NAMESPACES`], [`MAX_NODES`]), so
//! parsing takes time and memory linear in the input, and bounded.

use std::collections::HashSet;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Largest document accepted, in bytes.
pub const MAX_BYTES: usize = 16 << 20;
/// Most attributes on one element (real files have a dozen at most).
pub const MAX_ATTRIBUTES: usize = 256;
/// Most namespace declarations in scope at once: quick-xml resolves each name by a linear
/// search through them.
pub const MAX_NAMESPACES: usize = 64;
/// Most elements and attributes in one document, together: what bounds the tree's memory
/// (a few hundred bytes each) when [`MAX_BYTES`] of `<a/>` would be four million elements.
pub const MAX_NODES: usize = 250_000;

/// One element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The qualified name as written (`MSDeploy.iisApp`, `a:feed`).
    pub name: String,
    /// The local name (after any prefix).
    pub local: String,
    /// The resolved namespace URI, if any.
    pub namespace: Option<String>,
    /// Attributes as written, in order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content (unescaped, untrimmed).
    pub text: String,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    /// The value of attribute `name` (exact case).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of attribute `name`, compared case-insensitively, with the name as written.
    pub fn attr_ci(&self, name: &str) -> Option<(&str, &str)> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Children whose local name is `local` (exact case).
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.local == local)
    }

    /// The first child named `local`.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local == local)
    }

    /// Trimmed text of the first child named `local`.
    pub fn child_text(&self, local: &str) -> Option<&str> {
        self.child(local).map(|c| c.text.trim())
    }

    /// This element and all its descendants, depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let e = out[i];
            out.extend(e.children.iter());
            i += 1;
        }
        out
    }
}

/// A document that is not well-formed, with the line where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct XmlError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses `text` into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.len() > MAX_BYTES {
        return Err(XmlError {
            line: 1,
            message: format!("document larger than {MAX_BYTES} bytes"),
        });
    }
    let lines = LineIndex::new(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_comments = true;
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    // Namespace declarations made by each open element, parallel to `stack`.
    let mut declared: Vec<usize> = Vec::new();
    let mut nodes = 0usize;
    let mut root: Option<Element> = None;
    loop {
        let pos = reader.buffer_position() as usize;
        let err = |message: String| XmlError {
            line: lines.line(pos),
            message,
        };
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| err(e.to_string()))?;
        let namespace = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(err(format!(
                    "unknown namespace prefix `{}`",
                    String::from_utf8_lossy(&p)
                )));
            }
        };
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() && stack.is_empty() => {
                let _ = start;
                return Err(err("more than one root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(format!("nested deeper than {MAX_DEPTH} elements")));
                }
                let (e, decls) = element(&start, namespace, lines.line(pos))?;
                budget(&e, decls, &declared, &mut nodes)?;
                stack.push(e);
                declared.push(decls);
            }
            Event::Empty(start) => {
                let (e, decls) = element(&start, namespace, lines.line(pos))?;
                budget(&e, decls, &declared, &mut nodes)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(err("unexpected end tag".into()));
                };
                declared.pop();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| err(e.to_string()))?;
                match stack.last_mut() {
                    Some(e) => e.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(err("text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| err(e.to_string()))?;
                if let Some(e) = stack.last_mut() {
                    e.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| err(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| err(e.to_string()))?;
                        match &*name {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => return Err(err(format!("undefined entity `&{other};`"))),
                        }
                    }
                };
                if let Some(e) = stack.last_mut() {
                    e.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(err("DTDs are not accepted".into())),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError {
            line: lines.line(text.len()),
            message: format!("`{}` is never closed", stack[stack.len() - 1].name),
        });
    }
    root.ok_or(XmlError {
        line: 1,
        message: "no root element".into(),
    })
}

/// Counts one element against [`MAX_NODES`] and its namespace declarations against
/// [`MAX_NAMESPACES`]; the error says which limit was crossed.
fn budget(e: &Element, decls: usize, open: &[usize], nodes: &mut usize) -> Result<(), XmlError> {
    let err = |message: String| XmlError {
        line: e.line,
        message,
    };
    *nodes += 1 + e.attrs.len();
    if *nodes > MAX_NODES {
        return Err(err(format!(
            "more than {MAX_NODES} elements and attributes in one document"
        )));
    }
    if decls + open.iter().sum::<usize>() > MAX_NAMESPACES {
        return Err(err(format!(
            "more than {MAX_NAMESPACES} namespace declarations in scope at `<{}>`",
            e.name
        )));
    }
    Ok(())
}

/// The element a start tag opens, on `line` (where a fault in its attributes is reported),
/// and how many namespaces it declares. Linear in the tag's length: quick-xml's own duplicate
/// check (a scan of the earlier attributes for each one) is off, a hash set does it instead.
fn element(
    start: &BytesStart<'_>,
    namespace: Option<String>,
    line: usize,
) -> Result<(Element, usize), XmlError> {
    let err = |message: String| XmlError { line, message };
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    let mut seen = HashSet::new();
    let mut decls = 0;
    for a in start.attributes().with_checks(false) {
        if attrs.len() == MAX_ATTRIBUTES {
            return Err(err(format!(
                "more than {MAX_ATTRIBUTES} attributes on `<{name}>`"
            )));
        }
        let a = a.map_err(|e| err(e.to_string()))?;
        let raw_key = a.key.into_inner();
        let key = String::from_utf8_lossy(raw_key).into_owned();
        if !seen.insert(raw_key) {
            return Err(err(format!("attribute `{key}` appears twice")));
        }
        if a.key.as_namespace_binding().is_some() {
            decls += 1;
        }
        let value = a
            .unescape_value()
            .map_err(|e| err(e.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    let e = Element {
        name,
        local,
        namespace,
        attrs,
        children: Vec::new(),
        text: String::new(),
        line,
    };
    Ok((e, decls))
}

/// Byte offset to 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_attributes_text_and_lines_are_kept() {
        let doc = "\u{FEFF}<?xml version=\"1.0\"?>\r\n<root a=\"1 &amp; 2\">\r\n  <Child b='x'>t&lt;&#65;</Child>\r\n  <e/>\r\n</root>\r\n";
        let root = parse(doc).expect("parses");
        assert_eq!(root.name, "root");
        assert_eq!(root.attr("a"), Some("1 & 2"));
        assert_eq!(root.line, 2);
        let child = root.child("Child").expect("child");
        assert_eq!(child.text, "t<A");
        assert_eq!(child.line, 3);
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.attr_ci("A"), Some(("a", "1 & 2")));
    }

    #[test]
    fn namespaces_are_resolved() {
        let root = parse(r#"<a:feed xmlns:a="urn:x"><a:entry/><entry/></a:feed>"#).expect("ok");
        assert_eq!(root.local, "feed");
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.children[0].namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.children[1].namespace, None);
    }

    #[test]
    fn malformed_documents_report_a_line() {
        for (doc, line) in [
            ("<a>\n<b>\n</a>", 3),
            ("<a>\n<!-- x -- y -->\n</a>", 2),
            ("<a/>\n<b/>", 2),
            ("<!DOCTYPE a [<!ENTITY x 'y'>]><a/>", 1),
            ("<a>&bogus;</a>", 1),
            ("<a x='1' x='2'/>", 1),
            ("", 1),
        ] {
            let err = parse(doc).expect_err(doc);
            assert_eq!(err.line, line, "{doc:?}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&doc).is_err());
    }

    /// The error for a document that must be refused (without printing a huge tree if not).
    fn refused(doc: &str) -> XmlError {
        match parse(doc) {
            Ok(root) => panic!(
                "accepted: <{}> with {} attributes",
                root.name,
                root.attrs.len()
            ),
            Err(e) => e,
        }
    }

    /// Issue 16 item 4: 200,000 attributes on one element took 92 s (a duplicate scan per
    /// attribute) and then parsed.
    #[test]
    fn attribute_bomb_is_refused() {
        let attrs: String = (0..200_000).map(|i| format!(" a{i}=''")).collect();
        let err = refused(&format!("<m{attrs}/>"));
        assert!(err.message.contains("attributes"), "{err}");
    }

    #[test]
    fn many_small_elements_are_refused_before_they_exhaust_memory() {
        let doc = format!("<r>{}</r>", "<a/>".repeat(MAX_NODES + 1));
        let err = refused(&doc);
        assert!(err.message.contains("elements"), "{err}");
    }

    #[test]
    fn namespace_declarations_in_scope_are_capped() {
        let decls: String = (0..MAX_ATTRIBUTES)
            .map(|i| format!(" xmlns:p{i}='urn:{i}'"))
            .collect();
        let doc = format!("<a{decls}><b{decls}/></a>");
        let err = refused(&doc);
        assert!(err.message.contains("namespace"), "{err}");
    }

    #[test]
    fn attributes_up_to_the_cap_are_kept_in_order() {
        let attrs: String = (0..MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}='{i}'"))
            .collect();
        let root = parse(&format!("<m{attrs}/>")).expect("parses");
        assert_eq!(root.attrs.len(), MAX_ATTRIBUTES);
        assert_eq!(root.attrs[7], ("a7".to_string(), "7".to_string()));
    }
}
