#!/usr/bin/env bash
# Installs blip-captiond as a system service (run as root, after `swift build -c release`):
#   /usr/local/bin/blip-captiond, /usr/local/bin/blip-caption
#   /etc/systemd/system/blip-captiond.{socket,service}
#   /etc/systemd/system/blip-captiond@.{socket,service} (templates, one instance per model; not
#     enabled: systemctl enable --now blip-captiond@NAME.socket, model in /var/lib/blip-captiond/NAME)
#   group `blip-caption` (members may call the daemon: the socket is root:blip-caption 0660)
#   the model under /var/lib/blip-captiond/model (copied from MODEL_DIR if given and not there yet)
#   docs under /usr/share/doc/blip-captiond
# then enables the socket: systemd starts the daemon on the first connection.
#
#   scripts/install.sh [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
for b in blip-captiond blip-caption; do
  [ -x ".build/release/$b" ] || { echo "install.sh: .build/release/$b is missing: run swift build -c release first" >&2; exit 1; }
  install -m 0755 ".build/release/$b" "/usr/local/bin/$b"
done
install -d /etc/systemd/system /usr/share/doc/blip-captiond
install -m 0644 systemd/blip-captiond.socket systemd/blip-captiond.service \
  systemd/blip-captiond@.socket systemd/blip-captiond@.service /etc/systemd/system/
install -m 0644 README.md docs/*.md /usr/share/doc/blip-captiond/
getent group blip-caption >/dev/null || groupadd --system blip-caption
echo "install.sh: add callers to the group: usermod -aG blip-caption USER"

# With DynamicUser=yes systemd owns /var/lib/private/blip-captiond (/var/lib/blip-captiond links there).
state=/var/lib/blip-captiond
[ -e /var/lib/private/blip-captiond ] && state=/var/lib/private/blip-captiond
if [ -n "${1:-}" ] && [ ! -f "$state/model/model.safetensors" ]; then
  install -d "$state/model"
  cp -r "$1"/. "$state/model/"
  chmod -R a+rX "$state/model"
fi
[ -f "$state/model/model.safetensors" ] || echo "install.sh: no model in $state/model yet: scripts/install.sh MODEL_DIR, or scripts/download-model.sh $state/model" >&2

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now blip-captiond.socket
  echo "install.sh: blip-captiond.socket enabled; try: blip-caption health"
  echo "install.sh: more models: put one in /var/lib/blip-captiond/NAME, then systemctl enable --now blip-captiond@NAME.socket"
else
  echo "install.sh: systemd is not running here; units installed but not enabled" >&2
fi
