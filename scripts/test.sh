#!/usr/bin/env bash
# The whole test suite: Rust formatting, lints and tests (core and engine,
# no Node needed), JS lint, the type test, then the node:test suites over
# real sockets against the built addon.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt / clippy / test"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

echo "== eslint / tsc"
npx eslint .
npx tsc -p __test__/types

echo "== node:test"
ls sockjs.*.node >/dev/null 2>&1 || npm run build
node --test --test-concurrency=2 __test__/*.test.js
