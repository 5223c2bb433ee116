#!/usr/bin/env bash
# The project's test command (README, "Two commands"). On Debian 12 with Swift on PATH, as root or
# with sudo available, it installs what it needs and then runs every test:
#   1. the Debian packages the build and the tests use, only those missing (scripts/install-deps.sh
#      --test; without root or sudo it stops at once with the command to run as root);
#   2. the Python packages the tests use (protobuf and grpcio-tools for the Python example, the
#      openai client for the HTTP face) into a venv of its own, .build/test-venv, never the system's;
#   3. the committed protobuf-c code against proto/, the build, the whole Swift test suite, the HTTP
#      face against a real Prometheus and the openai client, deploy/kubernetes against its schemas.
# The tests use the tiny random-weight models committed under Tests/Fixtures: no model download.
# A test that needs a tool installed here fails when the tool is missing instead of skipping
# (BLIP_TESTS_REQUIRE_TOOLS=1; run outside this command, such tests are reported as skipped).
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m== test.sh: %s\033[0m\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# What this command cannot install, checked first.
if ! command -v swift >/dev/null 2>&1; then
  die "swift is not on PATH. Install Swift 6 for Debian 12 (https://www.swift.org/install/linux/, e.g. unpacked in /opt/swift), then run: PATH=/opt/swift/usr/bin:\$PATH scripts/test.sh"
fi
if ! grep -qsx 'VERSION_ID="12"' /etc/os-release || ! grep -qsx 'ID=debian' /etc/os-release; then
  say "warning: made for Debian 12; this is $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-an unknown system}")"
fi

say "Debian packages (only what is missing)"
bash scripts/install-deps.sh --test
swift --version >/dev/null 2>&1 || die "swift does not run here: $(swift --version 2>&1 | head -n 3)"

say "Python packages, in .build/test-venv"
venv=.build/test-venv
if ! "$venv/bin/python" -c 'import google.protobuf, grpc_tools, openai' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/test-requirements.txt
fi
# Tests run `python3` from PATH: the venv's.
export PATH="$PWD/$venv/bin:$PATH"
export BLIP_TESTS_REQUIRE_TOOLS=1

say "protobuf-c code against proto/"
bash scripts/check-proto.sh
say "build"
swift build --build-tests
say "swift test"
swift test --skip-build
say "the HTTP face with Prometheus and the openai client"
bash scripts/check-http-face.sh
say "deploy/kubernetes"
bash scripts/check-kubernetes.sh
say "passed"
