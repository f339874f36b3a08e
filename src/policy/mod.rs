//! The whole stack from one TOML policy file, validated on load and reloadable.
