#!/usr/bin/env bash
# Installs, upgrades or removes blip-captiond as a system service without the Debian package
# (on Debian, prefer scripts/package-deb.sh and apt install ./dist/blip-captiond_*.deb). Run as root.
#
#   scripts/install.sh [--replace-model] [MODEL_DIR]   install, or upgrade an installation
#   scripts/install.sh --uninstall [--purge]           remove it (--purge: the model and group too)
#
# Installs (after `swift build -c release --static-swift-stdlib`, which makes the executables run
# without the Swift toolchain):
#   /usr/local/bin/blip-captiond, /usr/local/bin/blip-caption, /usr/local/bin/blip-captiond-fetch-model
#   /etc/systemd/system/blip-captiond{,@}.{socket,service}, blip-captiond-http.socket (templates:
#     one instance per model, not enabled: systemctl enable --now blip-captiond@NAME.socket)
#   /etc/blip-captiond/blip-captiond.conf, the service's settings, when there is none (kept on
#     --uninstall, removed by --purge)
#   bash/zsh/fish completions under /usr/local/share; docs under /usr/local/share/doc/blip-captiond
#   group `blip-caption` (members may call the daemon: the socket is root:blip-caption 0660)
#   the model in /var/lib/blip-captiond/model, copied from MODEL_DIR when none is installed
# then enables the socket (systemd starts the daemon on the first connection).
#
# Upgrading is running it again: the files are replaced and a running daemon is restarted on the
# new binary (its socket stays open). An installed model stays: MODEL_DIR must then be the same
# model, or --replace-model swaps it for MODEL_DIR. MODEL_DIR must hold a model (config.json,
# model.safetensors or pytorch_model.bin, vocab.txt or tokenizer.json), else nothing is changed and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
me="install.sh"
say() { echo "$me: $*"; }
die() { echo "$me: $*" >&2; exit 1; }

bindir=/usr/local/bin
unitdir=/etc/systemd/system
docdir=/usr/local/share/doc/blip-captiond
executables=(blip-captiond blip-caption)
units=(blip-captiond.socket blip-captiond.service blip-captiond@.socket blip-captiond@.service blip-captiond-http.socket)
completions=(/usr/local/share/bash-completion/completions/blip-caption /usr/local/share/zsh/site-functions/_blip-caption
             /usr/local/share/fish/vendor_completions.d/blip-caption.fish)
group=blip-caption
conf=/etc/blip-captiond/blip-captiond.conf
systemd_running() { [ -d /run/systemd/system ]; }

uninstall=0 purge=0 replace_model=0 model_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    --replace-model) replace_model=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$me: unknown option $1 (see $me --help)" >&2; exit 64 ;;
    *) [ -z "$model_dir" ] || { echo "$me: one MODEL_DIR at most" >&2; exit 64; }; model_dir="$1" ;;
  esac
  shift
done
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || { echo "$me: --purge goes with --uninstall" >&2; exit 64; }
[ "$(id -u)" -eq 0 ] || die "run as root"

# With DynamicUser=yes systemd owns /var/lib/private/blip-captiond (/var/lib/blip-captiond links there).
state=/var/lib/blip-captiond
[ -e /var/lib/private/blip-captiond ] && state=/var/lib/private/blip-captiond

if [ "$uninstall" = 1 ]; then
  if systemd_running; then
    systemctl disable --now blip-captiond.socket blip-captiond-http.socket >/dev/null 2>&1 || true
    systemctl stop blip-captiond.service 'blip-captiond@*.service' 'blip-captiond@*.socket' >/dev/null 2>&1 || true
  fi
  rm -f /etc/systemd/system/sockets.target.wants/blip-captiond.socket /etc/systemd/system/sockets.target.wants/blip-captiond-http.socket
  [ "$purge" = 0 ] || rm -f /etc/systemd/system/sockets.target.wants/blip-captiond@*.socket
  for b in "${executables[@]}" blip-captiond-fetch-model; do rm -f "$bindir/$b"; done
  for u in "${units[@]}"; do rm -f "$unitdir/$u"; done
  rm -f "${completions[@]}"
  rm -rf "$docdir"
  # The folders install.sh may have made, when nothing else uses them.
  for d in "${completions[@]}"; do rmdir "$(dirname "$d")" "$(dirname "$(dirname "$d")")" 2>/dev/null || true; done
  rmdir "$(dirname "$docdir")" 2>/dev/null || true
  systemd_running && systemctl daemon-reload
  if [ "$purge" = 1 ]; then
    rm -rf /var/lib/blip-captiond /var/lib/private/blip-captiond /etc/blip-captiond
    if getent group "$group" >/dev/null; then groupdel "$group"; fi
    say "removed blip-captiond, its models, /etc/blip-captiond and the $group group"
  else
    say "removed blip-captiond; kept the models in $state, /etc/blip-captiond and the $group group (--uninstall --purge removes them)"
  fi
  exit 0
fi

# Everything is checked before anything changes.
for b in "${executables[@]}"; do
  [ -x ".build/release/$b" ] || die ".build/release/$b is missing: run swift build -c release --static-swift-stdlib first"
  if ldd ".build/release/$b" 2>/dev/null | grep -q 'libswiftCore'; then
    die ".build/release/$b needs the Swift toolchain's runtime at run time: rebuild with swift build -c release --static-swift-stdlib"
  fi
done
# The weights file the daemon reads, in its order of preference (ModelFolder.weightCandidates).
weights_of() {
  for w in model.safetensors model.safetensors.index.json pytorch_model.bin pytorch_model.bin.index.json; do
    [ -f "$1/$w" ] && { echo "$1/$w"; return 0; }
  done
  return 1
}
is_model() { [ -f "$1/config.json" ] && weights_of "$1" >/dev/null && { [ -f "$1/vocab.txt" ] || [ -f "$1/tokenizer.json" ]; }; }
# Two folders hold the same model when their small files are identical and the weights have the
# same size and header (comparing 1.9 GB byte by byte is not needed to tell models apart).
same_model() {
  for f in config.json vocab.txt tokenizer.json preprocessor_config.json; do
    if [ -e "$1/$f" ] || [ -e "$2/$f" ]; then cmp -s "$1/$f" "$2/$f" || return 1; fi
  done
  local a b
  a=$(weights_of "$1") && b=$(weights_of "$2") || return 1
  [ "$(basename "$a")" = "$(basename "$b")" ] && [ "$(stat -c %s "$a")" = "$(stat -c %s "$b")" ] || return 1
  cmp -s -n 1048576 "$a" "$b"
}
install_model=0
if [ -n "$model_dir" ]; then
  [ -d "$model_dir" ] || die "$model_dir is not a folder; nothing was changed"
  is_model "$model_dir" || die "$model_dir holds no model (needs config.json, model.safetensors or pytorch_model.bin (or the index of their shards), vocab.txt or tokenizer.json); nothing was changed"
  if ! is_model "$state/model"; then
    install_model=1
  elif same_model "$model_dir" "$state/model"; then
    say "the model in $state/model is already $model_dir"
  elif [ "$replace_model" = 1 ]; then
    install_model=1
  else
    die "$state/model holds another model than $model_dir: pass --replace-model to replace it, or leave MODEL_DIR out to keep it; nothing was changed"
  fi
fi

upgrade=0
[ -e "$bindir/blip-captiond" ] && upgrade=1
for b in "${executables[@]}"; do install -m 0755 ".build/release/$b" "$bindir/$b"; done
install -m 0755 scripts/download-model.sh "$bindir/blip-captiond-fetch-model"
install -d "$unitdir" "$docdir" "$(dirname "${completions[0]}")" "$(dirname "${completions[1]}")" "$(dirname "${completions[2]}")"
for u in "${units[@]}"; do install -m 0644 "systemd/$u" "$unitdir/$u"; done
# The plain service's settings (all commented out); an operator's copy is never replaced.
[ -e "$conf" ] || install -D -m 0644 systemd/blip-captiond.conf "$conf"
install -m 0644 README.md CHANGELOG.md LICENSE docs/*.md "$docdir/"
"$bindir/blip-caption" --generate-completion-script bash > "${completions[0]}"
"$bindir/blip-caption" --generate-completion-script zsh > "${completions[1]}"
"$bindir/blip-caption" --generate-completion-script fish > "${completions[2]}"
getent group "$group" >/dev/null || groupadd --system "$group"
say "$("$bindir/blip-captiond" --version) installed in $bindir$([ "$upgrade" = 1 ] && echo " (upgraded)")"

if [ "$install_model" = 1 ]; then
  # Copied beside the old one, then swapped in: the daemon never sees half a model.
  install -d "$state"
  rm -rf "$state/model.partial"
  mkdir -p "$state/model.partial"
  cp -r "$model_dir"/. "$state/model.partial/"
  chmod -R a+rX "$state/model.partial"
  if [ -e "$state/model" ]; then mv "$state/model" "$state/model.old.$$"; fi
  mv "$state/model.partial" "$state/model"
  rm -rf "$state/model.old.$$"
  say "model installed in $state/model from $model_dir"
fi
is_model "$state/model" || say "no model in $state/model yet: blip-captiond-fetch-model (downloads it), or $me MODEL_DIR"

if systemd_running; then
  systemctl daemon-reload
  systemctl enable --now blip-captiond.socket
  if [ "$upgrade" = 1 ] || [ "$install_model" = 1 ]; then
    # A running daemon restarts on the new binary or model; one that is not running stays so.
    systemctl try-restart blip-captiond.service 'blip-captiond@*.service'
  fi
  say "blip-captiond.socket enabled; try: blip-caption health"
  say "let a user call it: usermod -aG $group USER (then log in again)"
  say "more models: put one in /var/lib/blip-captiond/NAME, then systemctl enable --now blip-captiond@NAME.socket"
else
  say "systemd is not running here, so nothing was enabled. Run the daemon by hand (it binds the socket itself):"
  say "  install -d /run/blip-captiond && BLIP_MODEL=$state/model $bindir/blip-captiond --socket /run/blip-captiond/blip-captiond.sock"
  say "  (then chgrp $group /run/blip-captiond/blip-captiond.sock for callers), or run it in a container: deploy/kubernetes/Containerfile"
fi
