#!/usr/bin/env bash
# Checks the dependency tree against deny.toml: RustSec advisories, licenses, banned and
# duplicate crates, sources. Skips (exit 0, with the reason printed) when cargo-deny is not
# installed. When the advisory database (github.com/RustSec/advisory-db) can't be fetched, says
# so and checks licenses, bans and sources only; DENY_OFFLINE=1 does that without trying.
#
#   scripts/deny.sh                 # everything
#   DENY_OFFLINE=1 scripts/deny.sh  # no advisories (no network)
set -u

cd "$(dirname "$0")/.." || exit 1

if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny: skipped: cargo-deny not installed (cargo install cargo-deny --locked)"
    exit 0
fi

offline() {
    cargo deny --locked check licenses bans sources
}

if [ "${DENY_OFFLINE:-0}" = "1" ]; then
    echo "deny: advisories skipped (DENY_OFFLINE=1)"
    offline
    exit $?
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo deny --locked check advisories 2>&1 | tee "$log"
advisories=${PIPESTATUS[0]}
if [ "$advisories" -ne 0 ] && grep -q "failed to fetch advisory database" "$log"; then
    echo "deny: advisories skipped: the advisory database could not be fetched (no network?)"
    offline
    exit $?
fi
offline
rest=$?
[ "$advisories" -eq 0 ] && [ "$rest" -eq 0 ]
