#!/usr/bin/env bash
# From a fresh clone to captions in one command (Debian 12, as root or with sudo):
#   installs the build dependencies, builds in release mode, starts blip-captiond the way systemd
#   would (socket activation through systemd-socket-activate, Type=notify) and captions the sample
#   images in examples/images through it with the blip-caption CLI.
#
# Model: $BLIP_MODEL, else the Hugging Face cache, else a download of
# Salesforce/blip-image-captioning-large (scripts/download-model.sh; set BLIP_DOWNLOAD=0 to skip),
# else the bundled tiny random-weight test model — whose captions are meaningless.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

if ! command -v swift >/dev/null 2>&1; then
  echo "first-run: swift is not on PATH. Install Swift 6 for Debian 12 from https://www.swift.org/install/linux/" >&2
  echo "first-run: (e.g. unpack the toolchain in /opt/swift and run: export PATH=/opt/swift/usr/bin:\$PATH), then run this again." >&2
  echo "first-run: Without Swift on this machine: build the Debian package elsewhere (scripts/package-deb.sh) and apt install it here." >&2
  exit 1
fi
say "installing what the build and systemd-socket-activate need (apt, only what is missing)"
bash scripts/install-deps.sh --activate
say "building (release; Swift's runtime linked in, so the binaries also run without the toolchain)"
swift build -c release --static-swift-stdlib --product blip-captiond
swift build -c release --static-swift-stdlib --product blip-caption
bin=.build/release

say "finding the model"
model=""
tiny=0
if [ -n "${BLIP_MODEL:-}" ] && [ -f "$BLIP_MODEL/model.safetensors" ]; then
  model="$BLIP_MODEL"
else
  hub="${HF_HOME:-$HOME/.cache/huggingface}/hub/models--Salesforce--blip-image-captioning-large/snapshots"
  for snap in $(ls -1dt "$hub"/*/ 2>/dev/null); do
    [ -f "$snap/model.safetensors" ] && { model="${snap%/}"; break; }
  done
fi
if [ -z "$model" ] && [ "${BLIP_DOWNLOAD:-1}" != 0 ]; then
  say "BLIP-large not found locally; trying to download it (about 1.9 GB)"
  model=$(bash scripts/download-model.sh) || model=""
fi
if [ -z "$model" ]; then
  model=Tests/Fixtures/models/tiny-a
  tiny=1
fi
say "model: $model"

runtime=$(mktemp -d /run/blip-captiond-first-run.XXXXXX 2>/dev/null || mktemp -d)
sock="$runtime/blip-captiond.sock"
notify="$runtime/notify.sock"
say "starting blip-captiond under systemd-socket-activate on $sock"
# The first connection starts the daemon, as systemd's blip-captiond.socket would.
systemd-socket-activate -l "$sock" --fdname=blip-captiond \
  -E BLIP_MODEL="$model" -E OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-}" \
  "$PWD/$bin/blip-captiond" --idle-exit 30 2>"$runtime/daemon.log" &
activator=$!
trap 'kill $activator 2>/dev/null; wait $activator 2>/dev/null; rm -rf "$runtime"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

say "captioning examples/images through the daemon"
if [ "$tiny" = 1 ]; then
  printf '\033[1;31m!! USING THE TINY RANDOM-WEIGHT TEST MODEL: THESE CAPTIONS ARE MEANINGLESS.\n!! Set BLIP_MODEL to a Salesforce/blip-image-captioning-large folder (or run scripts/download-model.sh) for real captions.\033[0m\n' >&2
fi
status=0
"$bin/blip-caption" caption --socket "$sock" --timeout 600 examples/images || status=$?
"$bin/blip-caption" info --socket "$sock" || true
say "daemon log:"
cat "$runtime/daemon.log" >&2
exit $status
