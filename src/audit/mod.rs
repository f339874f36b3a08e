//! One audit record per request (feature `audit`).
