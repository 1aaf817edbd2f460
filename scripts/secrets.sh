#!/usr/bin/env bash
# Generates random dev secrets once into .data/secrets.env (git-ignored). Never commit that file.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FILE="$ROOT/.data/secrets.env"
mkdir -p "$ROOT/.data"
if [ ! -s "$FILE" ]; then
  rnd() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
  umask 077
  {
    echo "JWT_ACCESS_SECRET=$(rnd)"
    echo "JWT_REFRESH_SECRET=$(rnd)"
    echo "INTERNAL_SECRET=$(rnd)"
    echo "PG_PASSWORD=$(rnd)"
    echo "REDIS_PASSWORD=$(rnd)"
  } > "$FILE"
  echo "secrets: generated $FILE" >&2
fi
# added later (docker-compose's Grafana): appended to a file written before
if ! grep -q '^GRAFANA_ADMIN_PASSWORD=' "$FILE"; then
  echo "GRAFANA_ADMIN_PASSWORD=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >> "$FILE"
fi
