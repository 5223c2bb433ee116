#!/bin/sh
# Regenerates the BlipProtoC target from proto/ with protoc-c.
#
#   scripts/generate-proto.sh [OUTPUT_DIR]
#
# OUTPUT_DIR defaults to Sources/BlipProtoC. Everything in it is protoc-c output:
# blip/v1/<name>.pb-c.c, and the headers under include/blip/v1/ (SwiftPM makes
# include/ the module's umbrella directory). The output is deterministic, so
# scripts/check-proto.sh can diff it.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/Sources/BlipProtoC"}

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "generate-proto.sh: protoc-c not found; install Debian's protobuf-c-compiler" >&2
    exit 1
fi

# Sorted, so the umbrella header does not depend on directory order.
protos=$(cd "$root/proto" && find blip -name '*.proto' | LC_ALL=C sort)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# shellcheck disable=SC2086 # $protos is a list of paths without spaces
(cd "$root/proto" && protoc-c --proto_path=. --c_out="$work" $protos)

rm -rf "$out"
mkdir -p "$out/include"
(cd "$work" && find . -name '*.pb-c.h' -exec cp --parents {} "$out/include/" \;)
(cd "$work" && find . -name '*.pb-c.c' -exec cp --parents {} "$out/" \;)

