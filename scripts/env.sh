# Sourced by Makefile recipes: Node >= 24 first on PATH, dev secrets and local store URLs exported.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$("$ROOT/scripts/bootstrap-node.sh")" || return 1
[ -n "$NODE_BIN" ] && export PATH="$NODE_BIN:$PATH"
set -a
[ -f "$ROOT/.data/secrets.env" ] && . "$ROOT/.data/secrets.env"
[ -f "$ROOT/.data/services.env" ] && . "$ROOT/.data/services.env"
set +a
