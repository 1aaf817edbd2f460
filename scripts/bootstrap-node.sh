#!/usr/bin/env bash
# Ensures Node >= 24 is available. Prints the directory to put first on PATH (empty when the
# system's node is already new enough). The pinned version is installed from the npm registry
# into .tools/ (git-ignored) when the system only has an older node.
set -euo pipefail
NODE_VERSION=24.21.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools/node24"
BIN="$TOOLS/node_modules/.bin"

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$BIN/node" ] && [ "$(major "$BIN/node")" -ge 24 ]; then echo "$BIN"; exit 0; fi
if command -v node >/dev/null && [ "$(major node)" -ge 24 ]; then echo ""; exit 0; fi

echo "bootstrap: installing node@$NODE_VERSION into $TOOLS" >&2
mkdir -p "$TOOLS"
npm install --prefix "$TOOLS" --no-save --no-audit --no-fund "node@$NODE_VERSION" >&2
[ "$(major "$BIN/node")" -ge 24 ] || { echo "bootstrap: node@$NODE_VERSION did not install" >&2; exit 1; }
echo "$BIN"
