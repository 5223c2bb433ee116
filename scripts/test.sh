#!/usr/bin/env bash
# The project's test command (README "Quick start"): build and run the whole test suite.
# The tests use the tiny random-weight models committed under Tests/Fixtures, so they need no
# download and no Python.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x scripts/check-proto.sh ]; then bash scripts/check-proto.sh; fi
swift build --build-tests
swift test --skip-build
# The HTTP face against a real Prometheus and the real openai client (needs prometheus, curl, python3 -m venv).
bash scripts/check-http-face.sh
