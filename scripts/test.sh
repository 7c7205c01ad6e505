#!/usr/bin/env bash
# The whole test suite: Rust formatting, lints and tests (core and engine,
# no Node needed), JS lint, the type test, then the node:test suites over
# real sockets against the built addon, under this Node and under Node 18.
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

# The WebSocket suites again with one I/O thread, where JavaScript's thread
# writes the frames itself (crates/sockjs-engine/src/direct.rs); above, on a
# machine with more than one core, the I/O thread wrote them.
echo "== node:test, WebSocket suites with SOCKJS_THREADS=1"
SOCKJS_THREADS=1 node --test --test-concurrency=2 __test__/websocket.test.js __test__/websocket-hostile.test.js \
  __test__/websocket-soup.test.js __test__/websocket-load.test.js __test__/websocket-tls.test.js __test__/backpressure.test.js __test__/broadcast.test.js \
  __test__/client-node.test.js __test__/workers.test.js

# The oldest Node the package supports (fetched from the npm registry).
echo "== node:test under Node 18"
bash scripts/test-node18.sh
