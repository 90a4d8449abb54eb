//! `iiswsgi check`: lint rules for manifests, packages, their XML and feeds, as errors and warnings.
