#!/usr/bin/env bash
# The node:test suites under Node 18, the oldest Node that package.json's
# `engines` promises. Node 18 comes from the npm registry (the official
# binaries, as the `node-linux-<arch>` package), into target/.
#
# Three files are left to the Node 20 run: they drive tools that no longer
# run on Node 18 (playwright-core for the browser and webpack-dev-server
# tests, npm 11 for the pack test). What they test of this package is the
# same code the other files cover under Node 18.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=18.20.8
case "$(uname -m)" in
  x86_64) ARCH=x64 ;;
  aarch64) ARCH=arm64 ;;
  *) echo "no Node 18 package for $(uname -m)" >&2; exit 1 ;;
esac
DIR="$PWD/target/node-$VERSION"
if [ ! -x "$DIR/package/bin/node" ]; then
  mkdir -p "$DIR"
  (cd "$DIR" && npm pack --silent "node-linux-$ARCH@$VERSION" >/dev/null && tar xzf "node-linux-$ARCH-$VERSION.tgz")
fi
# First on PATH: tests that start `node` get this one too.
export PATH="$DIR/package/bin:$PATH"
node --version

ls sockjs.*.node >/dev/null 2>&1 || npm run build
mapfile -t files < <(ls __test__/*.test.js | grep -v -e client-browser -e webpack-dev-server -e pack.test)
node --test --test-concurrency=2 "${files[@]}"
