//! The embedded-Python WSGI bridge; the only module that touches PyO3.
