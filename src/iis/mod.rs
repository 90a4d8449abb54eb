//! What only IIS does: its FastCGI environment variables, its environ quirks, appcmd and ACLs.
