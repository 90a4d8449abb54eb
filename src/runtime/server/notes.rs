//! What the environ rules noticed ([`crate::runtime::environ::Notes`]: a fallback used, a
//! prefix that did not match, the app mounted at `/` for nginx's stock params) is worth one log
//! line per process, not one per request.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::runtime::environ::Notes;

static NOTED: [AtomicBool; 5] = [const { AtomicBool::new(false) }; 5];

/// Logs each kind of note the first time a request carries it.
pub(super) fn log_notes_once(notes: Notes) {
    let once = |i: usize, text: &str| {
        if !NOTED[i].swap(true, Ordering::Relaxed) {
            log::warn!("{text} (logged once per process)");
        }
    };
    if notes.used_url_fallback {
        once(
            0,
            "REQUEST_URI is missing: the request path comes from URL, which IIS has already \
             decoded and may have rewritten",
        );
    }
    if notes.no_target {
        once(
            1,
            "the request carries no REQUEST_URI or URL: PATH_INFO is empty",
        );
    }
    if notes.prefix_mismatch {
        once(
            2,
            "a request path does not start with the application prefix (from APPL_MD_PATH or \
             --mount): SCRIPT_NAME is empty and PATH_INFO is the whole path",
        );
    }
    if notes.no_root_segment {
        once(
            3,
            "APPL_MD_PATH has no /ROOT segment: the application prefix is empty (use --mount)",
        );
    }
    if notes.root_mount_inferred && !NOTED[4].swap(true, Ordering::Relaxed) {
        log::info!(
            "the web server sends no PATH_INFO and the whole path as SCRIPT_NAME (nginx's stock \
             fastcgi_params): serving the app at / (--mount PREFIX for a sub-path) (logged once \
             per process)"
        );
    }
}
