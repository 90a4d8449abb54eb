//! The `iiswsgi.toml` manifest: what one Python web app needs to be packaged for and served by IIS.
//!
//! Owned by issue #2. `raw` mirrors the file key for key (serde, spans, JSON schema);
//! this module holds the validated [`Manifest`] with defaults applied.
