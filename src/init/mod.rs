//! `iiswsgi init`: scaffold an `iiswsgi.toml` from what a Python project already says about itself.
