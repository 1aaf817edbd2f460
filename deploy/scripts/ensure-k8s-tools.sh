#!/usr/bin/env bash
# Installs what the Helm chart checks need, into .tools/ (git-ignored), once: helm built from its Go module
# (no prebuilt binary is downloaded) and a Python venv with kubernetes-validate (the Kubernetes JSON schemas
# ship inside that package, so validation works offline).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HELM_VERSION="v3.22.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
BIN="$ROOT/.tools/bin"
mkdir -p "$BIN"
if [ ! -x "$BIN/helm" ] || [ "$(cat "$BIN/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  echo "k8s tools: building helm $HELM_VERSION from its Go module (first run only, a few minutes)" >&2
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" >"$BIN/helm.version"
fi
VENV="$ROOT/.tools/py-k8s"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
