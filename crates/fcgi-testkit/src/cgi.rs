//! The CGI response a FastCGI responder writes on STDOUT (`iis-runtime.md` §7.1), and the
//! values `iiswsgi run --diagnostic` shows on its page.

/// A CGI response: the `Status:` line, the other headers, the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgi {
    /// From the `Status:` line.
    pub status: u16,
    /// The reason phrase of the `Status:` line.
    pub reason: String,
    /// The other header lines, in order.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line.
    pub body: Vec<u8>,
    /// Whether every header line and the blank line ended in CRLF, with no other CR or LF.
    pub crlf: bool,
}

impl Cgi {
    /// Parses STDOUT as IIS does (lines end in LF or CRLF; a blank line ends the headers) and
    /// insists on what iiswsgi promises: `Status:` is the first line, each line is
    /// `Name: value`.
    pub fn parse(stdout: &[u8]) -> Result<Cgi, String> {
        let mut rest = stdout;
        let mut lines = Vec::new();
        let mut crlf = true;
        loop {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("headers are not terminated by a blank line")?;
            let mut line = &rest[..end];
            rest = &rest[end + 1..];
            match line.strip_suffix(b"\r") {
                Some(stripped) => line = stripped,
                None => crlf = false,
            }
            if line.contains(&b'\r') {
                crlf = false;
            }
            if line.is_empty() {
                break;
            }
            let text =
                std::str::from_utf8(line).map_err(|_| format!("non-UTF-8 header {line:?}"))?;
            let (name, value) = text
                .split_once(':')
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| format!("header line without `name:` {text:?}"))?;
            lines.push((
                name.trim_end().to_owned(),
                value.trim_start_matches(' ').to_owned(),
            ));
        }
        let (first, value) = lines.first().ok_or("no header lines")?;
        if !first.eq_ignore_ascii_case("Status") {
            return Err(format!("first header is {first:?}, not Status"));
        }
        let (code, reason) = value.split_once(' ').unwrap_or((value.as_str(), ""));
        let status = code
            .parse()
            .map_err(|_| format!("bad Status value {value:?}"))?;
        Ok(Cgi {
            status,
            reason: reason.to_owned(),
            headers: lines[1..].to_vec(),
            body: rest.to_vec(),
            crlf,
        })
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The value the diagnostic page shows for `name` in its first table: the cell after the
/// `<td>` holding exactly `name` (rows are `<tr><td>NAME</td><td>VALUE</td></tr>`), HTML
/// entities decoded.
pub fn diag_value(page: &str, name: &str) -> Option<String> {
    let key = format!("<tr><td>{}</td><td>", html_escape(name));
    let at = page.find(&key)? + key.len();
    let end = at + page[at..].find("</td>")?;
    Some(html_unescape(&page[at..end]))
}

/// FNV-1a 64 of `data` in hex, as the diagnostic page reports a request body's hash.
pub fn fnv1a64(data: &[u8]) -> String {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references; leaves any
/// other `&` as it is.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity = rest
            .find(';')
            .filter(|&i| i <= 10)
            .map(|semi| &rest[1..semi]);
        let decoded = entity.and_then(|entity| match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (decoded, entity) {
            (Some(c), Some(entity)) => {
                out.push(c);
                rest = &rest[entity.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_first_with_crlf_parses_and_says_so() {
        let cgi = Cgi::parse(b"Status: 404 Not Found\r\nX-A:  b\r\n\r\nbody").unwrap();
        assert_eq!((cgi.status, cgi.reason.as_str()), (404, "Not Found"));
        assert_eq!(cgi.header("x-a"), Some("b"));
        assert_eq!(cgi.text(), "body");
        assert!(cgi.crlf);
        assert!(!Cgi::parse(b"Status: 200 OK\n\n").unwrap().crlf);
        assert!(Cgi::parse(b"X: 1\r\nStatus: 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn diag_value_reads_the_cell_after_the_name_and_decodes_entities() {
        let page = "<tr><td>A&amp;B</td><td>&lt;x&gt;&#x1;&#233;&bogus</td></tr>";
        assert_eq!(diag_value(page, "A&B").as_deref(), Some("<x>\u{1}é&bogus"));
        assert_eq!(diag_value(page, "A"), None);
    }

    #[test]
    fn fnv1a64_of_nothing_is_the_offset_basis() {
        assert_eq!(fnv1a64(b""), "cbf29ce484222325");
        assert_eq!(fnv1a64(b"a"), "af63dc4c8601ec8c");
    }
}
