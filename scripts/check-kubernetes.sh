#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline: every manifest against the Kubernetes API schemas
# (kubernetes-validate --strict: unknown fields are errors), the kustomization builds, and the
# example fails closed: the repository holds no Secret and no token, the DaemonSet's HTTP face
# (on the pod's address) requires the token file, and that file comes from a Secret volume that
# is not optional — so `kubectl apply -k` without the user's Secret serves nothing.
# `kubectl apply --dry-run=client` is not used: it needs an API server to discover the types.
#
#   scripts/check-kubernetes.sh        (installs kubernetes-validate into .build/kubernetes-venv;
#                                       the kustomize build needs kubectl, skipped without it unless
#                                       BLIP_TESTS_REQUIRE_TOOLS=1, as scripts/test.sh sets)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-kubernetes: $*" >&2; exit 1; }
venv=.build/kubernetes-venv
version="${KUBERNETES_VERSION:-1.32.0}"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi
manifests=(deploy/kubernetes/namespace.yaml deploy/kubernetes/configmap.yaml deploy/kubernetes/daemonset.yaml
           deploy/kubernetes/caption-dataset-job.yaml)
"$venv/bin/kubernetes-validate" --strict -k "$version" "${manifests[@]}"
# The image the DaemonSet runs is this release's (ReleaseVersion.swift holds the one version).
release=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/BLIPProtocol/ReleaseVersion.swift)
[ -n "$release" ] || fail "no version in Sources/BLIPProtocol/ReleaseVersion.swift"
if grep -E '^\s+image:' deploy/kubernetes/daemonset.yaml deploy/kubernetes/caption-dataset-job.yaml | grep -v ":$release\$" >&2; then
  fail "deploy/kubernetes/ runs another image than blip-captiond:$release (above)"
fi

# Fails closed. kubernetes-validate's venv has PyYAML.
"$venv/bin/python" - deploy/kubernetes/*.yaml <<'PY'
import sys, yaml
def fail(message):
    sys.exit(f"check-kubernetes: {message}")
documents = [(path, d) for path in sys.argv[1:] for d in yaml.safe_load_all(open(path)) if d]
for path, d in documents:
    if d.get("kind") == "Secret" or "stringData" in d:
        fail(f"{path} holds a Secret: the token must be made by the user (kubectl create secret), never committed")
(daemonset,) = [d for _, d in documents if d.get("kind") == "DaemonSet"]
pod = daemonset["spec"]["template"]["spec"]
(container,) = pod["containers"]
args = dict(a[2:].split("=", 1) for a in container.get("args", []) if a.startswith("--") and "=" in a)
listen = args.get("http-listen")
if listen and not listen.startswith(("127.", "localhost:", "[::1]:", "/")):
    token = args.get("http-token-file")
    if not token:
        fail(f"the HTTP face listens on {listen} without --http-token-file: it would serve unauthenticated")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    mount = next((p for p in mounts if token.startswith(p.rstrip("/") + "/")), None)
    if mount is None:
        fail(f"--http-token-file {token} is on no volume")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[mount])
    secret = volume.get("secret")
    if secret is None or secret.get("optional", False):
        fail(f"{token} must come from a Secret volume that is not optional (found {volume})")
    print(f"check-kubernetes: fails closed: the HTTP face on {listen} requires {token}, from Secret "
          f"{secret['secretName']} (optional: false), which no file here defines")
PY
# No token literal anywhere in the repository's manifests and docs (the old example's included).
if git grep -nIiE 'replace-me-with|^\s*token:\s*\S' -- deploy docs README.md examples >&2; then
  fail "a token is committed (above): make it with kubectl create secret instead"
fi

if ! command -v kubectl >/dev/null 2>&1 && [ "${BLIP_TESTS_REQUIRE_TOOLS:-0}" = 1 ]; then
  fail "kubectl is not installed (scripts/install-deps.sh --test installs it)"
fi
if command -v kubectl >/dev/null 2>&1; then
  # Every manifest is in the kustomization, and it builds; it holds no Secret.
  built=$(kubectl kustomize deploy/kubernetes)
  for kind in Namespace ConfigMap DaemonSet; do
    grep -q "^kind: $kind$" <<<"$built" || fail "the kustomization lacks the $kind"
  done
  ! grep -q '^kind: Secret$' <<<"$built" || fail "the kustomization holds a Secret"
  echo "check-kubernetes: kubectl kustomize deploy/kubernetes builds ($(grep -c '^kind:' <<<"$built") objects, no Secret)"
fi
