#!/usr/bin/env bash
# Fuzz sockjs-core: build every cargo-fuzz target of fuzz/ and run each for
# SECONDS (default 10) from a copy of its committed seed corpus (the
# committed corpus is never modified). Exits non-zero if any target crashed
# or failed; crash inputs are kept under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only flags
# (-Zsanitizer, -Cpasses=sancov-module), which RUSTC_BOOTSTRAP=1 allows.
# No sanitizer by default (sockjs-core is safe Rust, and the address
# sanitizer halves the speed); FUZZ_SANITIZER=address works too when the
# toolchain ships its runtime (x86_64 Linux does).
#
# Environment:
#   FUZZ_TARGETS     targets to run (default: all, in `cargo fuzz list` order)
#   FUZZ_SANITIZER   none (default) | address
#   FUZZ_ARGS        extra libFuzzer arguments
#   FUZZ_WORK_DIR    keep the grown corpora and logs here (default: a temp
#                    dir, removed at the end)
#   SOCKJS_FUZZ_TOLERATE, SOCKJS_FUZZ_ANY_TIME, SOCKJS_FUZZ_TRACE: read by
#                    the targets, see fuzz/README.md
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;; esac
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

echo "== building fuzz targets (sanitizer: $sanitizer)"
build_start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
echo "== built in $((SECONDS - build_start)) s"

if [ -n "${FUZZ_WORK_DIR:-}" ]; then
    work="$FUZZ_WORK_DIR"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/sockjs-fuzz.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi

summary=()
failed=0
for t in $targets; do
    corpus="$work/corpus/$t"
    rm -rf "$corpus"
    mkdir -p "$corpus" "artifacts/$t"
    if [ -d "corpus/$t" ]; then
        cp -R "corpus/$t/." "$corpus/"
    fi
    dict=()
    case "$t" in
        route) dict=(-dict=dict/route.dict) ;;
        answer) dict=(-dict=dict/answer.dict) ;;
        decode | quote) dict=(-dict=dict/json.dict) ;;
    esac
    log="$work/$t.log"
    echo "== $t: ${seconds} s from $(ls "$corpus" | wc -l) seeds"
    set +e
    # shellcheck disable=SC2086
    cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
    status=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")"
    if [ "$status" -eq 0 ]; then
        line="$t: ok, ${runs:-?} runs in ${seconds} s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    else
        failed=1
        artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)"
        panic="$(grep -m1 -A1 'panicked at' "$log" | tr '\n' ' ' || true)"
        line="$t: FAILED (exit $status) after ${runs:-?} runs; ${panic:-see log}; input: ${artifact:-none}"
        echo "--- $t log (tail) ---"
        grep -v -E '^ +[0-9]+: |^ +at ' "$log" | tail -40
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "== fuzz summary (${seconds} s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
exit "$failed"
