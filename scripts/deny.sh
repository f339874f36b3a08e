#!/usr/bin/env bash
# Checks the dependency tree against deny.toml: RustSec advisories, licenses, banned and
# duplicate crates, sources. Skips (exit 0, with the reason printed) when cargo-deny is not
# installed. Without network access to GitHub (the advisory database), set
# DENY_OFFLINE=1 to check only licenses, bans and sources.
#
#   scripts/deny.sh                 # everything
#   DENY_OFFLINE=1 scripts/deny.sh  # no advisories (no network)
set -u

cd "$(dirname "$0")/.." || exit 1

if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny: skipped: cargo-deny not installed (cargo install cargo-deny --locked)"
    exit 0
fi

if [ "${DENY_OFFLINE:-0}" = "1" ]; then
    echo "deny: advisories skipped (DENY_OFFLINE=1)"
    exec cargo deny --locked check licenses bans sources
fi
exec cargo deny --locked check
