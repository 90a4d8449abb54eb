//! Diagnostics that point into a manifest: `file:line:col`, a message, the offending line with
//! a caret underline, and a hint for someone who has never seen the format.
//!
//! Rendering follows rustc and cargo so the output looks familiar:
//!
//! ```text
//! error: iiswsgi.toml:14:1: unknown key `instance-max-request` in `[iis.fastcgi]`
//!    |
//! 14 | instance-max-request = 5000
//!    | ^^^^^^^^^^^^^^^^^^^^
//!    = help: did you mean `instance-max-requests`?
//! ```
//!
//! Lines and columns are 1-based and count characters, not bytes. No I/O here: a
//! [`SourceFile`] holds the text the spans refer to. Control characters in what is printed
//! (the quoted line, values in messages) are escaped ([`crate::printable`]), and the caret
//! follows the escaped line.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The manifest cannot be used.
    Error,
    /// The manifest works but probably not as intended.
    Warning,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The text of a manifest and the name to show for it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: Arc<str>,
    /// Byte offset of each line's start, so that a position's line is a binary search: a
    /// manifest with thousands of diagnostics must not rescan the text for each one.
    line_starts: Arc<[usize]>,
    /// `(byte offset, characters before it)` every [`CHECKPOINT`] bytes (on a character
    /// boundary), so that a column on a long line is not a count from the line's start: one
    /// 700 KB line of 60,000 unknown keys took minutes to report.
    checkpoints: Arc<[(usize, usize)]>,
}

/// Bytes between two entries of [`SourceFile`]'s character index.
const CHECKPOINT: usize = 1024;

/// Characters of a long line shown on each side of a diagnostic's span; the rest is elided
/// with `…`, so a diagnostic's size does not grow with its line.
const CONTEXT: usize = 60;

/// The longest underline drawn (a span longer than this is underlined to this width, then `…`).
const MAX_UNDERLINE: usize = 120;

impl SourceFile {
    /// A source named `name` (usually the path as the user gave it) with contents `text`.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut checkpoints = vec![(0, 0)];
        let mut next = CHECKPOINT;
        for (chars, (at, _)) in text.char_indices().enumerate() {
            if at >= next {
                checkpoints.push((at, chars));
                next = at + CHECKPOINT;
            }
        }
        SourceFile {
            name: name.into(),
            text,
            line_starts,
            checkpoints: checkpoints.into(),
        }
    }

    /// How many characters precede byte offset `at` (a character boundary).
    fn chars_before(&self, at: usize) -> usize {
        let i = self.checkpoints.partition_point(|&(b, _)| b <= at) - 1;
        let (b, n) = self.checkpoints[i];
        n + self.text[b..at].chars().count()
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and character column of byte offset `at` (clamped to the text and to a
    /// character boundary).
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let at = self.floor(at);
        let (line, line_start) = self.line_of(at);
        let col = self.chars_before(at) - self.chars_before(line_start) + 1;
        (line, col)
    }

    /// The 1-based line holding byte offset `at`, and the offset where it starts: the last
    /// line starting at or before `at`, from the index (`line_starts[0]` is 0).
    fn line_of(&self, at: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= at);
        (line, self.line_starts[line - 1])
    }

    fn floor(&self, at: usize) -> usize {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// The snippet (line text and underline position) for a byte span. A long line is shown
    /// as a window of [`CONTEXT`] characters either side of the span, elided with `…`.
    fn snippet(&self, span: &Range<usize>) -> Snippet {
        let start = self.floor(span.start);
        let end = self.floor(span.end.max(start));
        // The line from the index, not a search: a search is as long as the line.
        let (line, line_start) = self.line_of(start);
        let line_end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        // The window: at most CONTEXT characters before the span's start, and after its end
        // (or after MAX_UNDERLINE of it).
        let from = self.text[line_start..start]
            .char_indices()
            .rev()
            .nth(CONTEXT - 1)
            .map_or(line_start, |(i, _)| line_start + i);
        let end = end.min(line_end);
        let underlined_end = self.text[start..end]
            .char_indices()
            .nth(MAX_UNDERLINE)
            .map_or(end, |(i, _)| start + i);
        let to = self.text[underlined_end..line_end]
            .char_indices()
            .nth(CONTEXT)
            .map_or(line_end, |(i, _)| underlined_end + i);
        let before = if from > line_start { "…" } else { "" };
        let after = if to < line_end { "…" } else { "" };
        let text = self.text[from..to].trim_end_matches('\r');
        // The underline copies the line's tabs so it stays aligned however tabs are shown;
        // an escaped character is as wide as its escape.
        let shown = |s: &str| crate::printable(s, &['\t']).chars().count();
        let lead: String = before
            .chars()
            .chain(self.text[from..start].chars())
            .flat_map(|c| {
                let (fill, n) = if c == '\t' {
                    ('\t', 1)
                } else {
                    (' ', shown(c.encode_utf8(&mut [0; 4])))
                };
                std::iter::repeat_n(fill, n)
            })
            .collect();
        let width = shown(&self.text[start..underlined_end]).max(1);
        Snippet {
            line,
            text: format!("{before}{}{after}", crate::printable(text, &['\t'])),
            lead,
            width,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snippet {
    line: usize,
    text: String,
    lead: String,
    width: usize,
}

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file name as shown.
    pub file: String,
    /// The byte range the problem is about, if it has one.
    pub span: Option<Range<usize>>,
    /// 1-based line (0 when there is no span).
    pub line: usize,
    /// 1-based character column (0 when there is no span).
    pub column: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Extra detail, such as the regex engine's own explanation.
    pub note: Option<String>,
    snippet: Option<Snippet>,
}

impl Diagnostic {
    /// An error at `span` of `source`.
    pub fn error(source: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        Self::at(Severity::Error, source, Some(span), message)
    }

    /// A warning at `span` of `source`.
    pub fn warning(source: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        Self::at(Severity::Warning, source, Some(span), message)
    }

    /// A diagnostic with an optional span.
    pub fn at(
        severity: Severity,
        source: &SourceFile,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = span.as_ref().map_or((0, 0), |s| source.line_col(s.start));
        Diagnostic {
            severity,
            file: source.name.clone(),
            snippet: span.as_ref().map(|s| source.snippet(s)),
            span,
            line,
            column,
            message: message.into(),
            help: None,
            note: None,
        }
    }

    /// Adds a `= help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a `= note:` line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: message` (or `file: message` without a span), the first line of
    /// the rendering without the severity.
    pub fn headline(&self) -> String {
        let file = crate::printable(&self.file, &[]);
        let message = crate::printable(&self.message, &[]);
        if self.span.is_some() {
            format!("{file}:{}:{}: {message}", self.line, self.column)
        } else {
            format!("{file}: {message}")
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.severity.label(), self.headline())?;
        let gutter = self
            .snippet
            .as_ref()
            .map_or(1, |s| s.line.to_string().len());
        let pad = " ".repeat(gutter);
        if let Some(s) = &self.snippet {
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {}", s.line, s.text)?;
            writeln!(f, "{pad} | {}{}", s.lead, "^".repeat(s.width))?;
        }
        if let Some(note) = &self.note {
            let note = crate::printable(note, &['\n']);
            let mut lines = note.lines();
            if let Some(first) = lines.next() {
                writeln!(f, "{pad} = note: {first}")?;
            }
            for line in lines {
                writeln!(f, "{pad}         {line}")?;
            }
        }
        if let Some(help) = &self.help {
            let help = crate::printable(help, &['\n']);
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Renders diagnostics one after another, each followed by a blank line.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns count characters across the index's checkpoints (multi-byte text on a line
    /// longer than several checkpoints).
    #[test]
    fn line_col_on_a_long_multibyte_line_counts_characters() {
        let line = "é".repeat(5000);
        let text = format!("a = 1\nk = \"{line}x\"\n");
        let src = SourceFile::new("m.toml", text.as_str());
        let at = text.find('x').expect("x");
        assert_eq!(src.line_col(at), (2, 5 + 5000 + 1));
    }

    /// A diagnostic on a 700 KB line shows a window around its span, the caret under it,
    /// and stays small: its size does not grow with the line.
    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let head = "k = 1, ".repeat(50_000);
        let text = format!("app = {{{head}bad = 2, {head}}}\n");
        let src = SourceFile::new("m.toml", text.as_str());
        let at = text.find("bad").expect("bad");
        let d = Diagnostic::error(&src, at..at + 3, "unknown key `bad`");
        let shown = d.to_string();
        assert!(shown.len() < 600, "{} bytes:\n{shown}", shown.len());
        let lines: Vec<&str> = shown.lines().collect();
        let quoted = lines[2].split_once(" | ").expect("quoted line").1;
        let caret = lines[3].split_once(" | ").expect("caret line").1;
        assert!(quoted.starts_with('…') && quoted.ends_with('…'), "{shown}");
        let col = caret.find('^').expect("caret");
        assert_eq!(caret.len() - col, 3, "{shown}");
        assert_eq!(
            quoted
                .chars()
                .skip(caret[..col].chars().count())
                .take(3)
                .collect::<String>(),
            "bad",
            "{shown}"
        );
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = SourceFile::new("m.toml", "a = 1\ntitle = \"é\" x\n");
        let at = src.text().find('x').unwrap();
        assert_eq!(src.line_col(at), (2, 13));
        assert_eq!(src.line_col(0), (1, 1));
    }

    #[test]
    fn diagnostic_renders_headline_source_line_caret_and_help() {
        let src = SourceFile::new("iiswsgi.toml", "[app]\nname = \"My App\"\n");
        let start = src.text().find("\"My").unwrap();
        let d = Diagnostic::error(&src, start..start + 8, "bad name").with_help("use letters");
        assert_eq!(
            d.to_string(),
            "error: iiswsgi.toml:2:8: bad name\n  |\n2 | name = \"My App\"\n  |        ^^^^^^^^\n  = help: use letters\n"
        );
    }

    #[test]
    fn diagnostic_underline_keeps_tabs_and_multiline_notes_indent() {
        let src = SourceFile::new("f", "\tkey = 1\n");
        let d = Diagnostic::warning(&src, 1..4, "w").with_note("one\ntwo");
        assert_eq!(
            d.to_string(),
            "warning: f:1:2: w\n  |\n1 | \tkey = 1\n  | \t^^^\n  = note: one\n          two\n"
        );
    }

    #[test]
    fn diagnostic_span_at_end_of_file_still_renders() {
        let src = SourceFile::new("f", "a = ");
        let d = Diagnostic::error(&src, 4..4, "expected a value");
        assert_eq!((d.line, d.column), (1, 5));
        assert!(d.to_string().contains("1 | a = \n  |     ^\n"));
    }

    /// Issue 16 item 7: text from the file never reaches the terminal raw.
    #[test]
    fn control_characters_in_the_source_line_are_escaped_and_the_caret_follows() {
        let src = SourceFile::new("f", "a = \"\x1b[2J\" x\n");
        let at = src.text().find('x').expect("x");
        let d = Diagnostic::error(&src, at..at + 1, "bad \x1b[31m value");
        let s = d.to_string();
        assert!(!s.contains('\x1b'), "{s:?}");
        assert!(s.contains("1 | a = \"\\x1b[2J\" x\n"), "{s}");
        assert!(s.contains(&format!("  | {}^\n", " ".repeat(14))), "{s}");
        assert!(s.contains("bad \\x1b[31m value"), "{s}");
    }
}
