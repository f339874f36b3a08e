#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target and runs each for a few seconds, from the
# committed seeds (fuzz/seeds/<target>) plus whatever corpus earlier runs left in
# fuzz/corpus/<target>. Exits non-zero when any target crashes, times out or leaks; exits 0
# with a "skipped: ..." line when cargo-fuzz or a nightly toolchain is missing.
#
#   fuzz/smoke.sh                         # 5 s per target
#   FUZZ_SMOKE_SECONDS=600 FUZZ_SEED=0 fuzz/smoke.sh  # the long runs (random seed)
#
# Crash inputs land in fuzz/artifacts/<target>/; turn each into a regression case in
# tests/data/fuzz/<target>/ (see tests/fuzz_regressions.rs).
set -u

cd "$(dirname "$0")" || exit 1
seconds="${FUZZ_SMOKE_SECONDS:-5}"
# A fixed seed by default: the CI smoke run replays the same mutations from the same seeds
# each time (a check that nothing regressed, not a lottery); set FUZZ_SEED=0 for a random
# seed, as the long exploring runs use.
seed="${FUZZ_SEED:-1}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz smoke: skipped: cargo-fuzz not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi

# The fuzz workspace keeps its own build (instrumented, nightly) away from the main one.
export CARGO_TARGET_DIR="$PWD/target"
unset RUSTFLAGS RUSTDOCFLAGS

start=$(date +%s)
if ! cargo +nightly fuzz build; then
    echo "fuzz smoke: FAILED: the fuzz targets do not build"
    exit 1
fi
echo "fuzz smoke: built in $(($(date +%s) - start)) s"

failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    dirs=("corpus/$target")
    if [ -d "seeds/$target" ]; then
        dirs+=("seeds/$target")
    fi
    echo "fuzz smoke: $target for ${seconds} s"
    if ! cargo +nightly fuzz run "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -seed="$seed" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"corpus/$target.log" 2>&1; then
        failed+=("$target")
        tail -n 40 "corpus/$target.log"
    fi
    grep -E '^stat::number_of_executed_units' "corpus/$target.log" | sed "s/^/  $target /"
done

echo "fuzz smoke: finished in $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz smoke: ok"
