//! Request-side input validation (feature `validate`).
