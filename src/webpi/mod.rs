//! WebPI feeds: the Atom entries that let Web Platform Installer find and verify a package.
