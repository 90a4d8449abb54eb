//! Real frameworks.
