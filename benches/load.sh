#!/usr/bin/env bash
# Whole-stack load test: the same FHIR handler bare and behind fhirwall on 127.0.0.1, driven
# alternately by wrk, for a read, a 50-resource search and a create. Prints the table and
# writes benches/results/load.md and benches/results/load-layers.svg.
#
#   benches/load.sh [--seconds 5] [--rounds 3] [--connections 16] [--handler canned|store]
#                   [--no-chart]
#
# Needs wrk (installed with apt-get when missing and allowed) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        echo "benches/load.sh needs wrk (apt-get install wrk)" >&2
        exit 1
    fi
fi

cargo build --release --example load_target
exec python3 benches/load.py "$@"
