#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline: every manifest against the Kubernetes API schemas
# (kubernetes-validate --strict: unknown fields are errors), and the kustomization builds.
# `kubectl apply --dry-run=client` is not used: it needs an API server to discover the types.
#
#   scripts/check-kubernetes.sh        (installs kubernetes-validate into .build/kubernetes-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/kubernetes-venv
version="${KUBERNETES_VERSION:-1.32.0}"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi
manifests=(deploy/kubernetes/namespace.yaml deploy/kubernetes/configmap.yaml deploy/kubernetes/secret.example.yaml deploy/kubernetes/daemonset.yaml)
"$venv/bin/kubernetes-validate" --strict -k "$version" "${manifests[@]}"
# The image the DaemonSet runs is this release's (ReleaseVersion.swift holds the one version).
release=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/BLIPProtocol/ReleaseVersion.swift)
[ -n "$release" ] || { echo "check-kubernetes: no version in Sources/BLIPProtocol/ReleaseVersion.swift" >&2; exit 1; }
if grep -E '^\s+image:' deploy/kubernetes/daemonset.yaml | grep -v ":$release\$" >&2; then
  echo "check-kubernetes: deploy/kubernetes/daemonset.yaml runs another image than blip-captiond:$release (above)" >&2
  exit 1
fi
if command -v kubectl >/dev/null 2>&1; then
  # Every manifest is in the kustomization, and it builds.
  built=$(kubectl kustomize deploy/kubernetes)
  for kind in Namespace ConfigMap Secret DaemonSet; do
    grep -q "^kind: $kind$" <<<"$built" || { echo "check-kubernetes: the kustomization lacks the $kind" >&2; exit 1; }
  done
  echo "check-kubernetes: kubectl kustomize deploy/kubernetes builds ($(grep -c '^kind:' <<<"$built") objects)"
fi
