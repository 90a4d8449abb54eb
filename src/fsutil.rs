//! File-system helpers every wing needs: a write that a reader never sees half done, and
//! Windows path equality as IIS spells paths.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder renamed into place,
/// so a reader (IIS reading web.config, a feed consumer) never sees a partial file and a
/// failed write leaves the old file as it was. The file gets mode 0644 on Unix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".iiswsgi-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Windows path equality as IIS spells paths: ASCII case-insensitive, `/` = `\`, trailing
/// separators ignored.
pub fn same_windows_path(a: &[u8], b: &[u8]) -> bool {
    let trim = |p: &[u8]| -> usize {
        let mut n = p.len();
        while n > 0 && matches!(p[n - 1], b'\\' | b'/') {
            n -= 1;
        }
        n
    };
    let (a, b) = (&a[..trim(a)], &b[..trim(b)]);
    let sep = |c: u8| {
        if c == b'/' {
            b'\\'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| sep(x) == sep(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_path_ignores_ascii_case_trailing_separators_and_slash_direction() {
        assert!(same_windows_path(br"C:\inetpub\Shop\", br"c:\INETPUB\shop"));
        assert!(same_windows_path(br"C:\inetpub\shop", b"C:/inetpub/shop/"));
        assert!(same_windows_path(
            b"/LM/W3SVC/1/ROOT/Shop",
            b"/lm/w3svc/1/root/shop"
        ));
        assert!(!same_windows_path(
            br"C:\inetpub\shop",
            br"C:\inetpub\shop2"
        ));
        assert!(!same_windows_path(br"C:\inetpub\shop", br"C:\inetpub"));
        assert!(!same_windows_path(
            "C:\\caf\u{e9}".as_bytes(),
            "C:\\CAF\u{c9}".as_bytes()
        ));
    }
}
