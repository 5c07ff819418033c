#!/usr/bin/env bash
# The TypeScript packages from a clean install: npm ci (lockfile, npm registry), build, type-check, tests.
# The tests start their own `memstrata serve` (SQLite in a temp dir, the hash embedder) with the Python in
# MEMSTRATA_PYTHON (default: the checkout's .venv). OpenClaw's plugin loader needs Node 24.16+: when this
# node is older, a Node 24 binary is fetched from the npm registry (package node-<platform>-<arch>) into
# clients/.cache and runs only that test.
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "clients/run-tests.sh: npm and Node 20+ are required for the TypeScript tests" >&2; exit 1; }
export MEMSTRATA_PYTHON="${MEMSTRATA_PYTHON:-$(cd .. && pwd)/.venv/bin/python}"
NODE24_VERSION=24.22.3

npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
npm run build --silent                          # tsc: the build is the type-check of src/
npm run typecheck:examples --silent -w memstrata
npm test --silent

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ -n "${OPENCLAW_NODE:-}" ]; then
  :
elif [ "$node_major" -ge 24 ]; then
  OPENCLAW_NODE=$(command -v node)
else
  platform=$(node -p 'process.platform + "-" + process.arch')
  dir=.cache/node-$platform-$NODE24_VERSION
  if [ ! -x "$dir/bin/node" ]; then
    mkdir -p "$dir"
    tarball=$(npm pack "node-$platform@$NODE24_VERSION" --pack-destination .cache --silent)
    tar -xzf ".cache/$tarball" -C "$dir" --strip-components=1
    rm -f ".cache/$tarball"
  fi
  OPENCLAW_NODE=$(pwd)/$dir/bin/node
fi
export OPENCLAW_NODE
npm run test:loader --silent -w @memstrata/openclaw
