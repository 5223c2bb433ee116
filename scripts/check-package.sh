#!/usr/bin/env bash
# Builds the Debian package and checks it the way an operator meets it (run as root, on a machine
# where blip-captiond is not installed; .ci/run runs it after scripts/test.sh; it installs the tools
# it needs with scripts/install-deps.sh --package):
#   1. lintian reports no errors;
#   2. the packaged executables print --version with the Swift toolchain hidden (a private mount
#      namespace with a tmpfs over it), while a debug build, linked against the toolchain's
#      runtime, fails there — so the hiding is real;
#   3. dpkg -i creates the group, enables the socket and installs units that systemd-analyze
#      verify accepts, the settings file (a conffile), man pages with their ENVIRONMENT, FILES,
#      SIGNALS, EXIT STATUS and EXAMPLES sections, and completions; installing again (an upgrade)
#      works and keeps an edited settings file;
#   4. dpkg --purge leaves no file, link, group or state behind (the file system is compared
#      with its state before the installation).
#
#   scripts/check-package.sh [DEB]      (default: build one with scripts/package-deb.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/snapshot.sh
say() { printf '== check-package: %s\n' "$*" >&2; }
fail() { printf 'check-package: FAILED: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (it installs and purges the package)"
bash scripts/install-deps.sh --package >&2
if dpkg-query -W -f='${Status}' blip-captiond 2>/dev/null | grep -q installed; then
  fail "blip-captiond is installed here already; this check installs and purges it: dpkg --purge blip-captiond first"
fi
for tool in lintian unshare systemd-analyze; do
  command -v "$tool" >/dev/null 2>&1 || fail "needs $tool (apt install lintian util-linux systemd)"
done

deb="${1:-}"
if [ -z "$deb" ]; then deb=$(bash scripts/package-deb.sh); fi
[ -f "$deb" ] || fail "$deb does not exist"
say "package: $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p' >&2

say "lintian"
# --fail-on error: warnings and informational tags are shown but do not fail the check.
lintian --fail-on error --tag-display-limit 0 "$deb" >&2 || fail "lintian reports errors (above)"

say "the executables without the Swift toolchain"
toolchain=$(toolchain_dir)
[ -d "$toolchain" ] || fail "cannot find the Swift toolchain ($toolchain)"
extracted=$(mktemp -d)
trap 'rm -rf "$extracted"' EXIT
dpkg-deb -x "$deb" "$extracted"
for p in blip-captiond blip-caption; do
  out=$(hide_toolchain "$extracted/usr/bin/$p" --version 2>&1) || fail "$p does not run with $toolchain hidden: $out"
  echo "  $p --version with $toolchain hidden: $out" >&2
done
debug_build=.build/debug/blip-caption
if [ -x "$debug_build" ]; then
  if out=$(hide_toolchain "$debug_build" --version 2>&1); then
    fail "$debug_build (dynamically linked) runs with $toolchain hidden: the hiding does not work"
  fi
  echo "  control: $debug_build with $toolchain hidden fails: $out" >&2
fi

say "dpkg -i"
before=$(mktemp)
after=$(mktemp)
trap 'rm -rf "$extracted" "$before" "$after"' EXIT
snapshot > "$before"
dpkg -i "$deb" >&2 || fail "dpkg -i failed"
getent group blip-caption >/dev/null || fail "the blip-caption group was not created"
[ -L /etc/systemd/system/sockets.target.wants/blip-captiond.socket ] || fail "blip-captiond.socket is not enabled"
echo "  group: $(getent group blip-caption); enabled: $(readlink /etc/systemd/system/sockets.target.wants/blip-captiond.socket)" >&2
for f in /usr/bin/blip-captiond /usr/bin/blip-caption /usr/bin/blip-captiond-fetch-model \
         /usr/share/man/man8/blip-captiond.8.gz /usr/share/man/man1/blip-caption.1.gz \
         /usr/share/bash-completion/completions/blip-caption /usr/share/zsh/vendor-completions/_blip-caption \
         /usr/share/fish/vendor_completions.d/blip-caption.fish /usr/share/doc/blip-captiond/copyright \
         /lib/systemd/system/blip-captiond@.socket /lib/systemd/system/blip-captiond@.service; do
  [ -e "$f" ] || fail "$f is not installed"
done
zcat /usr/share/man/man8/blip-captiond.8.gz | grep -q 'Fl -max-batch' || fail "blip-captiond(8) does not document --max-batch"
# The sections package-deb.sh adds (packaging/deb/man), no generic exit status, no `help` subcommand;
# groff renders both pages without a warning.
for page in /usr/share/man/man8/blip-captiond.8.gz /usr/share/man/man1/blip-caption.1.gz; do
  text=$(zcat "$page")
  for section in ENVIRONMENT FILES SIGNALS 'EXIT STATUS' EXAMPLES 'SEE ALSO'; do
    grep -Eq "^\.Sh \"?$section\"?$" <<<"$text" || fail "$page has no $section section"
  done
  ! grep -Eq '^\.(It Em help|Ex -std)$' <<<"$text" || fail "$page still has generate-manual's help subcommand or generic exit status"
  warnings=$(zcat "$page" | groff -mandoc -Tutf8 -ww -z 2>&1) || true
  [ -z "$warnings" ] || fail "groff warns about $page: $warnings"
done
for code in 0 1 64 75; do
  zcat /usr/share/man/man8/blip-captiond.8.gz | sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /p' | grep -qx "\.It $code" || fail "blip-captiond(8) does not explain exit status $code"
done
for code in 0 1 2 64 130 143; do
  zcat /usr/share/man/man1/blip-caption.1.gz | sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /p' | grep -qx "\.It $code" || fail "blip-caption(1) does not explain exit status $code"
done
echo "  man pages: ENVIRONMENT, FILES, SIGNALS, EXIT STATUS (0 1 64 75; 0 1 2 64 130 143), EXAMPLES, SEE ALSO" >&2
# The service's settings file: a conffile, every line commented out.
conf=/etc/blip-captiond/blip-captiond.conf
[ -f "$conf" ] || fail "$conf is not installed"
dpkg-query -W -f='${Conffiles}\n' blip-captiond | grep -q " $conf " || fail "$conf is not a conffile"
! grep -qv '^#\|^$' "$conf" || fail "$conf sets something: $(grep -v '^#\|^$' "$conf")"
/usr/bin/blip-captiond-fetch-model --help | grep -q 'model.safetensors' || fail "blip-captiond-fetch-model --help"

say "blip-captiond-fetch-model against a local hub"
# A hub on loopback serving tiny-a as revision "test" (the pinned revision's size check is skipped
# for other revisions; the header check still runs). Offline, it fails and leaves no folder; online,
# the folder appears whole; a second fetch replaces it whole.
hub=$(mktemp -d)
fetched=$(mktemp -d)
mkdir -p "$hub/Salesforce/blip-image-captioning-large/resolve/test"
cp Tests/Fixtures/models/tiny-a/* "$hub/Salesforce/blip-image-captioning-large/resolve/test/"
if HF_ENDPOINT=http://127.0.0.1:9 BLIP_MODEL_REVISION=test /usr/bin/blip-captiond-fetch-model "$fetched/state/model" >/dev/null 2>&1; then
  fail "blip-captiond-fetch-model succeeded without a hub"
fi
[ ! -e "$fetched/state" ] || fail "a failed fetch left $(find "$fetched/state")"
python3 -m http.server --bind 127.0.0.1 --directory "$hub" 18765 >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18765/ && break; sleep 0.1; done
for round in 1 2; do
  out=$(HF_ENDPOINT=http://127.0.0.1:18765 BLIP_MODEL_REVISION=test /usr/bin/blip-captiond-fetch-model "$fetched/state/model" 2>&1) \
    || { kill "$server"; fail "fetch $round: $out"; }
  cmp -s Tests/Fixtures/models/tiny-a/model.safetensors "$fetched/state/model/model.safetensors" || { kill "$server"; fail "fetch $round: the weights differ"; }
  left=$(ls -A "$fetched/state")
  [ "$left" = model ] || { kill "$server"; fail "fetch $round left more than the model: $left"; }
done
kill "$server"; wait "$server" 2>/dev/null || true
rm -rf "$hub" "$fetched"
echo "  offline: failed, nothing left; twice from the hub: the whole model, nothing beside it" >&2

say "systemd-analyze verify"
# The template units as one instance each (systemd-analyze verifies instances, not templates).
verify=$(mktemp -d)
cp /lib/systemd/system/blip-captiond@.socket "$verify/blip-captiond@large.socket"
cp /lib/systemd/system/blip-captiond@.service "$verify/blip-captiond@large.service"
out=$(cd "$verify" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
  /lib/systemd/system/blip-captiond.socket /lib/systemd/system/blip-captiond.service \
  /lib/systemd/system/blip-captiond-http.socket "$verify/blip-captiond@large.socket" "$verify/blip-captiond@large.service" 2>&1) \
  || { rm -rf "$verify"; fail "systemd-analyze verify: $out"; }
rm -rf "$verify"
# It exits 0 on some warnings; none is expected.
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "  5 units verified, no warnings" >&2

say "dpkg -i again (an upgrade to the same version)"
echo 'BLIP_CAPTIOND_OPTIONS=--queue-depth 32' >> "$conf"
dpkg -i "$deb" >&2 || fail "re-installing failed"
[ -L /etc/systemd/system/sockets.target.wants/blip-captiond.socket ] || fail "the socket is no longer enabled after the upgrade"
grep -qx 'BLIP_CAPTIOND_OPTIONS=--queue-depth 32' "$conf" || fail "the upgrade replaced the edited $conf"
echo "  the edited $conf was kept" >&2

say "dpkg --purge"
before_private=$(grep -qx /var/lib/private "$before" && echo /var/lib/private || echo /nonexistent)
# State the daemon would have made: a model folder and a per-model setting.
mkdir -p /var/lib/private/blip-captiond/model /etc/blip-captiond
ln -sfn private/blip-captiond /var/lib/blip-captiond
touch /var/lib/private/blip-captiond/model/config.json /etc/blip-captiond/large.conf
dpkg --purge blip-captiond >&2 || fail "dpkg --purge failed"
# /var/lib/private is systemd's (made at the service's first start); here the test made it.
[ -e "$before_private" ] || rmdir /var/lib/private 2>/dev/null || true
snapshot > "$after"
left=$(LC_ALL=C comm -13 "$before" "$after")
[ -z "$left" ] || fail "dpkg --purge left behind:
$left"
# /var/lib/private itself may have been made by the test above; systemd would have made it.
echo "  nothing left behind" >&2
say "ok"
