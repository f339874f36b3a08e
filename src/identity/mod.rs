//! Trusted-client identity over mutual TLS (feature `mtls`).
