# Sourced by Makefile recipes: Node >= 24 first on PATH, dev secrets and the local store URLs exported.
# Store URLs: PG_URL, REDIS_URL, MONGO_URL you set are yours and stay as they are. The URLs of this checkout's
# own stores (DEV_PG_URL, ... from .data/services.env) are exported under their own names, and copied into
# PG_URL (...) only when you set none, so a part run by hand finds them. services.sh and scripts/up.ts tell the
# copy from a URL of yours by comparing it with DEV_* (a copy would otherwise read as configured: issue 19).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$("$ROOT/scripts/bootstrap-node.sh")" || return 1
[ -n "$NODE_BIN" ] && export PATH="$NODE_BIN:$PATH"
set -a
[ -f "$ROOT/.data/secrets.env" ] && . "$ROOT/.data/secrets.env"
set +a
if [ -f "$ROOT/.data/services.env" ]; then
  # only DEV_* lines (an older file's PG_URL=... lines are ignored), read as data, not run
  while IFS='=' read -r _dev_name _dev_url; do
    case "$_dev_name" in
      DEV_PG_URL | DEV_REDIS_URL | DEV_MONGO_URL)
        _user_name="${_dev_name#DEV_}"
        # unset, or equal to the DEV_* exported before (our copy): follow our store to its current URL
        if [ -z "${!_user_name:-}" ] || [ "${!_user_name}" = "${!_dev_name:-}" ]; then export "$_user_name=$_dev_url"; fi
        export "$_dev_name=$_dev_url"
        ;;
    esac
  done <"$ROOT/.data/services.env"
  unset _dev_name _dev_url _user_name
fi
