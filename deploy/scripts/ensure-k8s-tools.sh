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
# one installer at a time: `make test` starts this in the background early (scripts/test-all.ts) and the Helm
# test runs it again; the second waits here for the first instead of building helm twice
exec 9>"$ROOT/.tools/k8s-tools.lock"
flock 9
if [ ! -x "$BIN/helm" ] || [ "$(cat "$BIN/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  echo "k8s tools: building helm $HELM_VERSION from its Go module (first run only, a few minutes)" >&2
  # K8S_TOOLS_BACKGROUND=1 (make test starts it beside the suites): niced, one compile job at a time, so the
  # suites keep a core; run in the foreground it builds at full speed
  BUILD=(go install)
  if [ "${K8S_TOOLS_BACKGROUND:-}" = 1 ]; then BUILD=(nice -n 19 go install -p 1); fi
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 "${BUILD[@]}" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" >"$BIN/helm.version"
fi
VENV="$ROOT/.tools/py-k8s"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
