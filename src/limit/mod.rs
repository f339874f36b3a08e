//! Per-client query budgets (feature `limit`).
