#!/usr/bin/env bash
# Installs the Debian packages blip-captiond builds against, when any is missing.
# Run as root (or with sudo available). Safe to run repeatedly.
set -euo pipefail
packages=(libopenblas-dev libturbojpeg0-dev libprotobuf-c-dev protobuf-c-compiler libsystemd-dev libspng-dev
          libwebp-dev libgif-dev libtiff-dev libheif-dev libavif-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
