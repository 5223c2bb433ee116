#!/usr/bin/env bash
# Checks scripts/install.sh, the non-Debian path, as an operator meets it (run as root, where
# blip-captiond is not installed; CI runs it after scripts/check-package.sh, whose release build
# it uses):
#   1. a bad MODEL_DIR fails and changes nothing;
#   2. an installation with a model, run by hand as install.sh says when systemd is absent, with
#      the Swift toolchain hidden, answers health;
#   3. an upgrade keeps the model and an edited settings file, refuses another model unless
#      --replace-model, and replaces it then;
#   4. --uninstall keeps the model, the settings and the group; --uninstall --purge leaves nothing
#      behind.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/snapshot.sh
say() { printf '== check-install: %s\n' "$*" >&2; }
fail() { printf 'check-install: FAILED: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (it installs and removes blip-captiond)"
[ ! -e /usr/local/bin/blip-captiond ] || fail "/usr/local/bin/blip-captiond exists: scripts/install.sh --uninstall first"
for b in blip-captiond blip-caption; do
  [ -x ".build/release/$b" ] || fail ".build/release/$b is missing: run scripts/package-deb.sh (or swift build -c release --static-swift-stdlib) first"
done
state=/var/lib/blip-captiond
tiny_a=Tests/Fixtures/models/tiny-a
tiny_b=Tests/Fixtures/models/tiny-b
before=$(mktemp) after=$(mktemp) work=$(mktemp -d)
trap 'rm -rf "$before" "$after" "$work"' EXIT
snapshot > "$before"

say "a bad MODEL_DIR changes nothing"
for bad in /nonexistent docs; do
  if out=$(bash scripts/install.sh "$bad" 2>&1); then fail "install.sh $bad exited 0: $out"; fi
  echo "  install.sh $bad: $out" >&2
done
[ ! -e /usr/local/bin/blip-captiond ] || fail "a failed install.sh installed the binaries"

say "install.sh $tiny_a"
out=$(bash scripts/install.sh "$tiny_a" 2>&1) || fail "install.sh $tiny_a: $out"
echo "$out" | sed 's/^/  /' >&2
cmp -s "$tiny_a/config.json" "$state/model/config.json" || fail "the model was not installed in $state/model"
getent group blip-caption >/dev/null || fail "no blip-caption group"
conf=/etc/blip-captiond/blip-captiond.conf
cmp -s systemd/blip-captiond.conf "$conf" || fail "$conf was not installed"
if [ ! -d /run/systemd/system ]; then
  echo "$out" | grep -q "Run the daemon by hand" || fail "without systemd install.sh must say how to run the daemon"
fi

say "the installed daemon, started by hand, with the toolchain hidden"
sock="$work/blip.sock"
# exec all the way down, so that $! is the daemon itself (unshare and sh exec too) and kill reaches it.
(BLIP_MODEL="$state/model" OPENBLAS_NUM_THREADS=1 exec unshare --mount sh -c 'mount -t tmpfs tmpfs "$0" && exec "$@"' \
  "$(toolchain_dir)" /usr/local/bin/blip-captiond --socket "$sock" 2>"$work/daemon.log") &
daemon=$!
status=""
for _ in $(seq 100); do
  status=$(/usr/local/bin/blip-caption health --socket "$sock" 2>/dev/null) && break
  sleep 0.2
done
kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true
! kill -0 "$daemon" 2>/dev/null || fail "the daemon (pid $daemon) did not stop"
[ "$status" = SERVING ] || fail "the daemon did not answer SERVING: $(cat "$work/daemon.log")"
echo "  blip-caption health: $status" >&2

say "upgrade: the same model, another model, --replace-model"
echo 'BLIP_CAPTIOND_OPTIONS=--queue-depth 32' >> "$conf"
out=$(bash scripts/install.sh "$tiny_a" 2>&1) || fail "re-installing with the same model: $out"
grep -qx 'BLIP_CAPTIOND_OPTIONS=--queue-depth 32' "$conf" || fail "the upgrade replaced the edited $conf"
echo "$out" | grep -q "(upgraded)" || fail "a second install.sh is not reported as an upgrade: $out"
if out=$(bash scripts/install.sh "$tiny_b" 2>&1); then fail "install.sh with another model and no --replace-model exited 0: $out"; fi
echo "  install.sh $tiny_b: $out" >&2
cmp -s "$tiny_a/config.json" "$state/model/config.json" || fail "the model changed without --replace-model"
out=$(bash scripts/install.sh --replace-model "$tiny_b" 2>&1) || fail "install.sh --replace-model: $out"
cmp -s "$tiny_b/model.safetensors" "$state/model/model.safetensors" || fail "--replace-model did not replace the model"
[ ! -e "$state/model.partial" ] || fail "a partial model copy was left behind"

say "--uninstall, then --uninstall --purge"
bash scripts/install.sh --uninstall >&2
[ ! -e /usr/local/bin/blip-captiond ] || fail "--uninstall left the binaries"
[ -f "$state/model/config.json" ] || fail "--uninstall removed the model (only --purge should)"
[ -f "$conf" ] || fail "--uninstall removed $conf (only --purge should)"
bash scripts/install.sh --uninstall --purge >&2
snapshot > "$after"
left=$(LC_ALL=C comm -13 "$before" "$after")
[ -z "$left" ] || fail "--uninstall --purge left behind:
$left"
say "ok"
