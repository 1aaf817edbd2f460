#!/usr/bin/env bash
# Installs what the interop and fuzzing checks need, into .tools/ (git-ignored), once:
# a Python venv with PyJWT and the openai SDK (and schemathesis when asked), and the Go golang-jwt verifier.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.tools/py-interop"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c 'import jwt' 2>/dev/null || "$VENV/bin/pip" install -q --disable-pip-version-check 'pyjwt==2.15.1'
# the official OpenAI Python SDK, as a real client of our /v1 routes (e2e/scenarios/openai-sdk.test.ts)
"$VENV/bin/python" -c 'import openai; assert openai.__version__ == "3.57.0"' 2>/dev/null || "$VENV/bin/pip" install -q --disable-pip-version-check 'openai==3.57.0'
if [ "${1:-}" = "--fuzz" ]; then
  "$VENV/bin/python" -c 'import schemathesis' 2>/dev/null || "$VENV/bin/pip" install -q --disable-pip-version-check 'schemathesis>=3.39,<5'
fi
GO_BIN="$ROOT/.tools/jwtinterop"
SRC="$ROOT/e2e/interop/go"
STAMP="$(cat "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" | sha256sum | cut -c1-16)"
if [ ! -x "$GO_BIN" ] || [ "$(cat "$GO_BIN.stamp" 2>/dev/null)" != "$STAMP" ]; then
  (cd "$SRC" && go build -o "$GO_BIN" .) && echo "$STAMP" > "$GO_BIN.stamp"
fi
