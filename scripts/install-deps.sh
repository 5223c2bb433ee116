#!/usr/bin/env bash
# Installs the Debian 12 packages blip-captiond needs, only those missing. Safe to run repeatedly.
# Run as root, or with sudo available; without either it installs nothing, prints the one command
# that would, and exits 1.
#
#   scripts/install-deps.sh             to build: the Swift toolchain's own Debian 12 dependencies
#                                       (swift.org's list for its tarball) and the C libraries and
#                                       tools this package builds against
#   scripts/install-deps.sh --test      also what scripts/test.sh runs the tests with: systemd's
#                                       tools, Prometheus, curl, kubectl, python3 with venv
#   scripts/install-deps.sh --package   also what scripts/package-deb.sh and check-package.sh
#                                       need: dpkg-dev, lintian, adduser, groff, …
#   scripts/install-deps.sh --activate  also systemd-socket-activate (scripts/first-run.sh)
#
# "Swift on PATH" therefore means only the unpacked toolchain (e.g. /opt/swift/usr/bin on PATH):
# the libraries it loads and the C compiler and linker it drives come from here.
set -euo pipefail

# Swift 6's Debian 12 dependencies (https://www.swift.org/install/linux/tarball/; its binutils-gold
# is binutils on Debian 12, which provides it), plus the C++ runtime's development files, which
# --static-swift-stdlib links, and the certificates git needs to fetch the packages.
toolchain=(binutils gcc git libcurl4-openssl-dev libedit-dev libicu-dev libncurses-dev libpython3-dev
           libsqlite3-dev libxml2-dev pkg-config tzdata uuid-dev libstdc++-12-dev ca-certificates)
# The C libraries the targets link (Package.swift's system libraries) and protoc-c (check-proto.sh).
build=(libopenblas-dev libturbojpeg0-dev libprotobuf-c-dev protobuf-c-compiler libsystemd-dev libspng-dev
       libwebp-dev libgif-dev libtiff-dev libheif-dev libavif-dev libdnnl-dev)
# systemd-socket-activate, systemd-analyze and a user manager (daemon and unit tests), and procps,
# whose /bin/kill the units' ExecReload= names (systemd-analyze verify checks that it exists);
# Prometheus and curl (check-http-face.sh); kubectl (check-kubernetes.sh's kustomize build);
# python3 with venv (the Python packages go into a venv scripts/test.sh makes, never the system's).
test=(systemd procps prometheus curl kubernetes-client python3 python3-venv)
# scripts/check-package.sh: dpkg-shlibdeps, lintian, the maintainer scripts' addgroup, groff for
# the man pages, systemd-analyze, and python3 and curl for a local model hub.
package=(dpkg-dev lintian adduser gzip groff-base systemd procps python3 curl)

wanted=("${toolchain[@]}" "${build[@]}")
for flag in "$@"; do
  case "$flag" in
    --test) wanted+=("${test[@]}") ;;
    --package) wanted+=("${package[@]}") ;;
    --activate) wanted+=(systemd) ;;
    *) echo "install-deps: unknown option $flag (--test, --package, --activate)" >&2; exit 64 ;;
  esac
done

missing=()
for p in "${wanted[@]}"; do
  # Another package may provide the command (kubectl from Kubernetes' own repository).
  [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null 2>&1 && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${#wanted[@]} packages)"
  exit 0
fi

command=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}; as root, run: apt-get update && ${command[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${command[@]}"
