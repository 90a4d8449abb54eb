//! Where FastCGI bytes come from: an IIS pipe or socket on stdin, an inherited listening socket,
//! or a `--listen` address. Moves bytes; never interprets them.
